"""`deflection`: a short reply that does not answer (issue 19 item 8, recall).

    Deflection(Deflection.Settings(enabled=True)).apply(conversation)   # None, or Drop(reason, ...)

Three kinds (reason codes):

* `bare_yes_no`: only "不能", "是的", "没有" to a question that is not a yes/no question
  ("如何在Excel中把数字转换成大写金额？" → "不能");
* `no_content`: only "不知道", "无", "略", "同上", "我无法回答这个问题";
* `deflection`: a reply of at most 60 characters that only points elsewhere ("…见财务书写规范",
  "请咨询当地医院", "详见说明书"), where the instruction did not ask where to look.

A short reply is an answer where the instruction asks for one: a yes/no question (吗, 是否, 判断),
a task that decides something (分类为哺乳动物, 检测仇恨言论, 评估为“是”或“否”), an answer it offers
(输出“好”或“坏”, 输出 yes/no, 相关性类型（正、负或无）: 是的 answers “是”, 没有 answers 无), or a single
word (改为一个词).
"""

from __future__ import annotations

import re

from instruct_data.clean.base import Drop, RuleSettings, TurnFilter

# A bare yes or no: an answer only to a yes/no question.
BARE_YES_NO = re.compile(r"^\W*(?:是|不是|是的|能|不能|可以|不可以|会|不会|有|没有|对|不对|行|不行|要|不要|否|Yes|No)\W*$",
                         re.IGNORECASE)
# A question a yes or no answers: asked (吗, 是否), or a task that decides (分类, 检测, 判断, 评估).
YES_NO_QUESTION = re.compile(r"[吗么嘛][？?。\s]*$|[吗么嘛][？?]|是否|能否|可否|会否|有无|是不是|能不能|可不可以|会不会|有没有|对不对|"
                             r"行不行|要不要|该不该|判断|对错|正确|真假|是非|或否|还是|分类|归类|检测|识别|评估|区分|辨别|核实|验证"
                             r"|yes or no|true or false|\b(?:is|are|can|do|does|will|should)\b[^?]*\?"
                             r"|\b(?:classify|detect|identify|verify|evaluate|whether)\b", re.IGNORECASE)
# A reply that says nothing: "不知道", "无", "略", "同上".
NO_CONTENT = re.compile(r"^\W*(?:我?不知道|我?不清楚|我?不确定|无|暂无|略|同上|见上|见下|N/?A|无可奉告|没有答案|不好说|说不清|"
                        r"因人而异|看情况|随便|都行|我?无法回答(?:这个问题|您的问题|你的问题)?)\W*$", re.IGNORECASE)
# A reply that only points elsewhere: "…见财务书写规范", "详见说明书", "请咨询当地医院" (not 请见谅).
DEFLECTION = re.compile(r"(?:详见|参见|请见(?!谅)|请参考|请参阅|请查阅|请查看|请咨询|请自行(?:查询|搜索|查阅|百度)|可以?参考|可以?查阅|可以?咨询|"
                        r"具体(?:请|可)?(?:见|看|参考|咨询)|(?<![再看遇碰会接召拜晋引意])见[^。！？\n，,]{0,15}?(?:规范|规定|标准|文件|手册|"
                        r"说明书|附件|附录|官网|网站|链接|资料|文档|百科|教材|课本|第.{1,4}[章节条页]))")
# The instruction asks where to find something: pointing there is the answer.
ASKS_WHERE = re.compile(r"哪里|哪儿|在哪|出处|来源|参考|推荐|资料|文献|链接|网址|网站|书|找|查|咨询|渠道|途径")
# The instruction asks for one word: a short reply is the answer ("将短语“这些都不是”改为一个词" → 无).
ONE_WORD = re.compile(r"一个(?:词|字|单词|词语)|一词|单个词|\bone word\b|\bsingle word\b", re.IGNORECASE)
DEFLECTION_MAX = 60

# Words that give the same answer: an instruction offering “是” is answered by 是的.
SAME_ANSWER = (
    {"是", "是的", "对", "对的", "正确", "真", "yes", "true", "能", "可以", "会", "有"},
    {"否", "不是", "不", "不对", "错", "错误", "假", "no", "false", "不能", "不可以", "不会", "没有", "无"},
)
_LETTER = r"[\u4e00-\u9fffA-Za-z]"


def offered(text: str, question: str) -> bool:
    """The reply is an answer the instruction offers: in quotes (输出“好”或“坏” → 好), or as a
    word of a list of options (输出 yes，否则输出 no → 是的; （正、负或无） → 没有)."""
    core = text.strip("。.!！？? \n").casefold()
    if not core:
        return False
    if re.search(rf"[“\"'「『‘]{re.escape(core)}[”\"'」』’]", question, re.IGNORECASE):
        return True
    same = next((group for group in SAME_ANSWER if core in group), {core})
    return any(re.search(rf"(?:^|(?!{_LETTER}).|或|还是|或者){re.escape(word)}(?:$|(?!{_LETTER}).|或)", question,
                         re.IGNORECASE) for word in same)


class DeflectionSettings(RuleSettings):
    # Off until measured on the frozen test split (docs/cleaning.md).
    enabled: bool = False


class Deflection(TurnFilter):
    """A reply that does not answer and is not an acknowledgement: a bare yes or no ("不能") to a
    question that is not a yes/no question; nothing ("不知道", "略"); or, in a short reply, only
    a pointer elsewhere ("…见财务书写规范", "请咨询当地医院") when the instruction did not ask
    where to look. An answer the instruction offers (输出“是”或“否”, （正、负或无）), a task that
    decides (分类为…, 检测…) and a one-word answer asked for are answers."""

    name = "deflection"
    reasons = ("bare_yes_no", "no_content", "deflection")
    Settings = DeflectionSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        text = reply.strip()
        if len(text) > DEFLECTION_MAX:
            return None  # the usual case
        if len(text) <= 16 and (offered(text, question) or ONE_WORD.search(question)):
            return None  # 输出“好”或“坏” -> 好; 改为一个词 -> 无
        if len(text) <= 8 and BARE_YES_NO.match(text) and not YES_NO_QUESTION.search(question):
            return Drop("bare_yes_no", f"the reply is only {text!r}, and the question is not a yes/no question")
        if len(text) <= 16 and NO_CONTENT.match(text):
            return Drop("no_content", f"the reply is only {text!r}")
        match = DEFLECTION.search(text)
        if match and not ASKS_WHERE.search(question):
            return Drop("deflection", f"the short reply only points elsewhere ({match.group(0)!r})")
        return None
