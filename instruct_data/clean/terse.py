"""A terse reply to an open question: a few words where the request asks why, how, or for an
account ("武汉火神山医院为什么能十天建成?" -> "因为中国速度。", "请阐述一个合格的Go语言工程师需要掌握哪些
技能。" -> "多看多学", "如何快速脱单" -> "去相亲"). The quality guide calls
such a reply `unhelpful` ("a two-word answer to an open question"): it teaches a model to brush
a question off.

Only the request's own words are read for what it asks (its first line, before a colon): a
passage it works on may hold 为什么 or 如何 ("将每个句子分类…\\n你为什么要这样做？"). Requests that
ask for something short are not judged: a word, a title, a name, a number, a class or label, a
yes or no, a choice ("请以一个字总结2020年" -> "疫").
"""

from __future__ import annotations

import re

from pydantic import Field

from instruct_data.clean.base import Drop, RuleSettings, TurnFilter

HAN = re.compile(r"[\u4e00-\u9fff]")
# The request asks for reasons, a way, an account or several things.
# 为什么/为何 before a noun is "as what" (诊断为什么疾病, 确诊为何种病), not "why"; 如何/怎么/怎样 ending a
# clause asks how something is (预后如何？ -> 预后不良), not how to do it; 哪些 asks for items, and a
# short list is an answer (需要做哪些检查？ -> B超、X线检查): all three read on a public medical QA set.
# 分析/介绍/描述… count as the request's own verb only (请分析…, 详细介绍…): 血气分析 is a noun.
OPEN_QUESTION = re.compile(r"为什么(?!病|疾病|症|病症|类型|样的|东西|名字)|为何(?!种)|(?:如何|怎么|怎样)(?=[\u4e00-\u9fff])(?!样)"
                           r"|(?:^|请|你|您|帮我|能否|可以|详细|[，,。；;])\s*(?:详细)?(?:阐述|解释|介绍|描述|分析|讨论|论述|探讨|谈谈|说明)")
# What the request says not to do ("不要写解释") is not what it asks for.
NEGATED = re.compile(r"(?:不要|不用|无需|不必|别|请勿|不需要)[^，。,.！？!?；;\n]*")
# ... unless it asks for something short, or for a class, a label, a choice or a yes/no.
ASKS_SHORT = re.compile(
    r"[一二两三四五六七八九十几\d]+\s*个?(?:字|词|单词|句话)|一句|一个词|短语|简短|简要|简洁|简单回答|只回答|只需|仅回答|只用|"
    r"标题|名字|名称|题目|口号|密码|用户名|数字|多少|几[个岁年天次]|"
    r"分类|归类|类别|类型|情感|情绪|极性|标签|判断|是否|对错|正确|错误|真假|是或否|选择|选项|哪一个|哪个|"
    r"吗[？?。]?\s*$|么[？?。]?\s*$|翻译|改写|重写|同义|反义|缩写|计算|求")


LABEL = re.compile(r"^[^:：\n]{1,8}[:：]\s*")


class TerseSettings(RuleSettings):
    # Off: 1 of 1 right on dev, no firing on the frozen test split (0 of 1 before the fixes that
    # public rows nobody labeled called for): too rare to judge (docs/cleaning.md, "Terse replies").
    enabled: bool = False
    max_han: int = Field(6, ge=1, description="a reply with at most this many Chinese characters (and 12 characters in all) is terse")


class TerseReply(TurnFilter):
    """A reply of a few words (at most `max_han` Chinese characters) to a request that asks why,
    how, or for an account, and not for something short (see the module)."""

    name = "terse_reply"
    reasons = ("terse_reply",)
    Settings = TerseSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        text = reply.strip()
        if len(text) > 2 * self.settings.max_han:
            return None  # the usual case
        han = len(HAN.findall(text))
        if not 0 < han <= self.settings.max_han:
            return None  # an empty reply is `empty`'s; a code or a number is not judged here
        # the first line, less a leading label ("详细说明：", "问题："), up to the passage after a colon
        request = LABEL.sub("", question.strip().split("\n", 1)[0])
        request = re.split(r"[:：]", request, maxsplit=1)[0]
        request = NEGATED.sub("", request)
        # what it asks is read in its first line; anything in the row that asks for something short
        # (可选项, 一个字 …, even after a passage) spares the reply
        if not OPEN_QUESTION.search(request) or ASKS_SHORT.search(question) or _quoted_in(text, question):
            return None
        return Drop("terse_reply", f"the reply is only {text!r} to a request that asks for an account")


def _quoted_in(reply: str, question: str) -> bool:
    """The request quotes the reply it wants (你的任务是只回复“好的”)."""
    core = reply.strip("。.!！？? ")
    return bool(core) and re.search(rf"[“\"'「『‘]{re.escape(core)}[。.!！]?[”\"'」』’]", question) is not None
