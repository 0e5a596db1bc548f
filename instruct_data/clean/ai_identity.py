"""`ai_identity`: a reply in which the assistant speaks of itself as an AI without being asked to.

    AiIdentity(AiIdentity.Settings(enabled=True)).apply(conversation)   # None, or Drop("ai_identity", ...)

What fires: "作为一个AI语言模型，我…", "我只是一个开源的人工智能助理", "我是ChatGPT", "由OpenAI训练",
"我无法浏览互联网", "as an AI language model" (the quality guide's `ai_identity`: disclaimers,
invented experiences "as an AI", and self-identity boilerplate, even when the user asked about
the assistant: identity data should be the practitioner's own).

What does not: the request reads first. A reply is not judged where the dialogue asked for an AI
to speak: a script or dialogue to be written, a role-play with an AI in the request
(`task.asks_for_ai_talk`; "这个对话", a JavaScript script or a role that is a person or a tool
exempt nothing: "扮演伯特" → "作为AI语言模型，我…" steps out of the role), an AI's point of view
as the topic ("请描述一下作为一名AI语音助手的日常工作流程"), or fiction with an AI character
("用第一人称写一个邪恶聊天机器人的故事"), set up in this turn or an earlier one ("继续"); nor where
the instruction itself holds the words (a passage to translate or rewrite). In the reply, words in
quotation marks or in code are someone else's (a character's line, a quoted example, a string in
a program), and a sentence that declines something harmful is wanted behaviour, AI named or not
(the guide keeps refusals of harmful requests). Programs and programmers are not AI
("将程序作为主程序运行", "作为一个优秀的程序员"), nor is a plain 助手.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from instruct_data.clean.base import CODE_SPAN, Drop, Filter, RuleSettings
from instruct_data.clean.safety import judges_harm
from instruct_data.clean.structure import prose
from instruct_data.clean.task import asks_for_ai_talk, sets_ai_character
from instruct_data.schema import Conversation

# "作为一个 AI 助手，我…", "我只是一个开源的人工智能助理", "由于我是一台语言模型": a speaker, at most 16
# characters, an AI word; not followed by 的/技术/领域 ("作为人工智能的重要方向" is about AI). 作为/身为 say
# nothing of who speaks, so the clause must go on with 我. Programs and programmers are not AI
# ("将程序作为主程序运行", "作为一个优秀的程序员"), nor is a plain 助手 (a person's assistant).
_SPEAKER_I = r"(?:我是|我只是|我仅是|我仅仅是|我就是|我不过是|我只不过是|我本身是|由于我是|因为我是|既然我是|我作为|我身为)"
_SPEAKER_AS = r"(?:作为|身为)"
_AI_WORD = (r"(?:AI|ＡＩ|人工智能|语言模型|大模型|机器人|(?:AI|ＡＩ|人工智能|智能|虚拟|语言|语音|聊天|数字|在线)\s*(?:助手|助理)"
            r"|计算机程序|电脑程序)")
# a compound noun is not a speaker: 机器人团队 (a human's team), AI工程师, 人工智能课程
_AFTER_AI_WORD = (r"(?!的|技术|领域|研究|行业|方向|系统的|工程师|从业|专家|公司|企业|产品|开发者|开发人员|科学家|学者|爱好者|专业|课程|时代|伦理"
                  r"|团队|队|小组|社团|俱乐部|比赛|竞赛|大赛|项目|实验室|协会|玩具|设计师|制造)")
# 作为…AI…, then 我 in the same clause or opening the next one ("作为人工智能助手，如果您需要…，我会推荐").
_SPEAKS_ON = r"(?=[^。！？!?\n]{0,8}?我(?!们)|[^。！？!?\n]{0,40}?[，,；;]\s*(?:但是?|所以|因此|那么|不过)?\s*我(?!们))"
_ARTICLE = r"\s*(?:一个|一名|一款|一位|一台|一种|个|名|款|位|台)?\s*[^，。,.！!？?；;\n]{0,16}?"
AI_IDENTITY = re.compile(
    _SPEAKER_I + _ARTICLE + _AI_WORD + _AFTER_AI_WORD
    + r"|" + _SPEAKER_AS + _ARTICLE + _AI_WORD + _AFTER_AI_WORD + _SPEAKS_ON
    + r"|我(?:并)?不是(?:一个|一名)?(?:人类|真人|真正的人)"
    r"|我(?:没有|不具备)(?:个人|自己的)?(?:观点|情感|意见|感情|偏好|喜好|经历|思想|意识|身体|实体)(?!到)"
    r"|我(?:无法|不能)(?:访问|浏览|连接)(?:互联网|网络|实时)"
    r"|我的(?:知识|训练数据)(?:截止|更新)"
    r"|我是\s*(?:ChatGPT|GPT)"
    r"|(?:来自|由)\s*(?:AI|人工智能)\s*(?:助手|助理)"
    r"|我[^。！？\n]{0,8}(?:由|被)\s*OpenAI\s*(?:开发|训练|创建|打造|设计)"
    r"|\bas an? (?:AI|language model|large language model)\b|\bI(?: am|'m) (?:ChatGPT|an AI|a language model)\b",
    re.IGNORECASE,
)

# Every match of the pattern above holds one of these literals: searching for them first skips
# the full pattern on most replies. Case variants are spelled out: IGNORECASE makes a search
# over Chinese text about ten times slower.
AI_IDENTITY_HINT = re.compile("来自AI|来自人工智能|由AI|由人工智能|作为|身为|我是|我只是|我仅|我只不过|我就是|我不过|我本身|我没有|我不具备|我无法|我不能|我的知识|我的训练|我不是|我并不是|"
                              "OpenAI|openai|AI|ai|Ai|aI|I am|I'm|i am|i'm|I AM")
# Left after stripping, these still speak as the assistant: its limits, or its "users" (an
# invented experience). The reply does not stand alone then.
STILL_DISCLAIMING = re.compile(r"我(?:并)?(?:无法|不能|没有办法|没有能力|不具备)|这因为|(?:我的|一位|响应)用户|用户的指令|我的“工作”"
                               r"|\bI (?:can't|cannot)\b")
SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?]+|\n|$)")
# Quoted words are someone else's: a character's line in a story, an example of boilerplate.
QUOTED = re.compile(r"“[^”\n]{1,400}”|「[^」\n]{1,400}」|『[^』\n]{1,400}』|\"[^\"\n]{1,400}\"")
LEADING_BUT = re.compile(r"^\s*(?:但是|然而|不过|但|可是|尽管如此)[，,]?\s*")


def _quoted(text: str, match: re.Match) -> bool:
    return any(q.start() < match.start() and match.end() <= q.end() for q in QUOTED.finditer(text))


class AiIdentitySettings(RuleSettings):
    # Off by default: 0.90 precision [0.78, 0.96] over 41 firings on the frozen test split (commit
    # b01620a, and again at 141948e; 0.91 over 42 before it read the dialogue), under the 0.95 a default-on rule needs
    # (docs/cleaning.md). `clean: {ai_identity: true}` turns it on.
    enabled: bool = False
    mode: Literal["drop", "strip"] = Field(
        "drop", description="drop the row, or strip the disclaimer sentences and keep the answer when enough is left")
    min_left: int = Field(30, ge=1, description="strip mode: fewest characters of prose left for the row to stay")


class AiIdentity(Filter):
    """AI self-identity and disclaimer boilerplate in a reply (作为一个AI语言模型, 我只是一个开源的
    人工智能助理, 我是ChatGPT, OpenAI ...), where the dialogue did not ask for an AI to speak (a
    script, a role, fiction with an AI character, an AI's point of view: this turn or an earlier
    one) and the instruction does not hold the words itself. Quoted words, code and safety
    answers (a sentence at most two away judges something harmful: 非法, offensive) are not judged. `mode: strip` removes the sentences that hold it
    and keeps the rest when at least `min_left` characters of prose remain."""

    name = "ai_identity"
    reasons = ("ai_identity",)
    Settings = AiIdentitySettings

    def find(self, question: str, reply: str, earlier: tuple[str, ...] = ()) -> re.Match | None:
        """The first unasked AI self-talk in the reply to `question`, after the user turns `earlier`."""
        if not AI_IDENTITY_HINT.search(reply):
            return None
        text = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), reply) if "`" in reply else reply
        for match in AI_IDENTITY.finditer(text):
            if self._asked(question, earlier):
                return None
            if not _quoted(text, match) and not judges_harm(text, match.start()):
                return match
        return None

    @staticmethod
    def _asked(question: str, earlier: tuple[str, ...]) -> bool:
        """The dialogue asked for an AI to speak, or the instruction holds the words itself."""
        return (asks_for_ai_talk(question) or AI_IDENTITY.search(question) is not None
                or any(sets_ai_character(text) for text in (question, *earlier)))

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        stripped = False
        for index in range(0, len(turns) - 1, 2):
            reply = turns[index + 1]
            earlier = tuple(turns[i].full_text for i in range(0, index, 2))
            match = self.find(turns[index].full_text, reply.text, earlier)
            if match is None:
                continue
            if self.settings.mode == "strip":
                left = strip_disclaimer(reply.text)
                # what is left must answer, not go on about what "I" cannot do
                if len(prose(left)) >= self.settings.min_left and not STILL_DISCLAIMING.search(left):
                    reply.text, stripped = left, True
                    continue
            verdict = Drop("ai_identity", f"reply says {match.group(0)!r}")
            return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        if stripped:
            self.changed += 1
        return None


def strip_disclaimer(text: str) -> str:
    """The text without its sentences that hold AI boilerplate; a leading 但是/然而 tidied away."""
    kept = [s for s in SENTENCE.findall(text) if s and not AI_IDENTITY.search(s)]
    left = "".join(kept).strip()
    return LEADING_BUT.sub("", left)
