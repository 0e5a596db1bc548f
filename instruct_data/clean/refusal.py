"""`refusal`: a reply that declines a harmless task ("很抱歉，我不能直接为您提供一个完整的电子商务模板").

    Refusal(Refusal.Settings(enabled=True)).apply(conversation)   # None, or Drop("refusal", ...)

It fires on a reply that opens by refusing (抱歉，我无法…, 我不能回答…, I'm sorry, but I cannot…).
The quality guide keeps some refusals, so it does not judge:

* a safety answer: the refusal, or a sentence at most two after it, judges the request harmful,
  illegal or private ("I'm sorry, but I cannot assist with illegal or unethical activities",
  "…因为这会侵犯他人的隐私") (`safety.judges_harm`);
* a dialogue that declares tools: a tool agent declining an outside task and naming what its
  tools do ("很抱歉，我无法帮您预订机票。目前我的能力仅限于计算税款") is what such data should teach;
* a reply in a role or game the user set up, in this turn or an earlier one ("假设你是一个守卫银行
  账户的终端…", then "密码为blah" → "抱歉，我无法透露密码"), unless it steps out of the role by
  naming itself an AI;
* an instruction that is itself about declining or apologising, or hands over a text to rewrite
  that holds such words ("创建一个AI助手被要求做它不能做的事情时使用的回复", "把这句话改得不正式：
  我很遗憾地通知你，我将无法出席"): the reply may be the text asked for.
"I won't say it again" (不好意思，我不会再说了) complies, and "I cannot tell" (抱歉，我无法确定这里该填
什么…如果是好消息，可以填“高兴”) is uncertainty: neither refuses.
"""

from __future__ import annotations

import re

from instruct_data.clean.ai_identity import AI_IDENTITY
from instruct_data.clean.base import Drop, Filter, RuleSettings
from instruct_data.clean.safety import judges_harm
from instruct_data.schema import Conversation

REFUSAL = re.compile(
    r"^\W{0,3}(?:(?:很|非常|十分)?抱歉|对不起|不好意思)[，,。！!\s]*(?:但是?|，)?\s*(?:作为[^，,。]{0,12}[，,]\s*)?"
    r"(?:我|本助手)?(?:无法|不能|没有办法|没办法|不可以|不会(?!再))(?!确定|判断|确认|肯定|得知)"
    r"|^\W{0,3}我(?:无法|不能)(?:回答|提供|完成|满足|帮助|协助|执行)"
    r"|^\W{0,3}(?:I'm sorry|Sorry|I apologize)[,.]?\s*(?:but\s+)?I (?:can't|cannot|am unable)",
    re.IGNORECASE,
)
# The instruction is about declining or apologising, or holds a text with such words to work on.
ABOUT_DECLINING = re.compile(r"抱歉|道歉|对不起|遗憾|拒绝|婉拒|无法|不能|不可以|做不到|办不到|\b(?:sorry|apolog\w*|refus\w*|declin\w*|can't|cannot)\b",
                             re.IGNORECASE)
# The user sets up a role or a game the reply then plays ("假设你是一个守卫银行账户的终端").
SETS_ROLE = re.compile(r"扮演|角色|假设你是|假如你是|想象你是|你现在是|现在你是|你将是|你将作为|从现在开始|游戏|假装"
                       r"|\b(?:pretend|role-?play|act as|you are now|imagine you are|let's play)\b", re.IGNORECASE)


class RefusalSettings(RuleSettings):
    enabled: bool = False


class Refusal(Filter):
    """A reply that opens by refusing (抱歉，我无法 …) a task it could do; not a safety answer, a
    tool agent naming its scope, a refusal played in a role the user set up, or a reply to a
    request about declining (see the module). Off unless asked."""

    name = "refusal"
    reasons = ("refusal",)
    Settings = RefusalSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        if getattr(conversation, "tools", None):
            return None
        turns = conversation.turns
        for index in range(0, len(turns) - 1, 2):
            earlier = [turns[i].full_text for i in range(0, index, 2)]
            verdict = self.judge(turns[index].full_text, turns[index + 1].text, earlier)
            if verdict is not None:
                return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None

    def judge(self, question: str, reply: str, earlier: list[str] | tuple[str, ...] = ()) -> Drop | None:
        match = REFUSAL.search(reply)
        if match is None or ABOUT_DECLINING.search(question) or judges_harm(reply, match.start()):
            return None
        if any(SETS_ROLE.search(text) for text in (*earlier, question)) and not AI_IDENTITY.search(reply):
            return None  # played in the user's role or game, not the assistant stepping out of it
        return Drop("refusal", f"reply opens with {match.group(0)!r}")
