"""`terse_reply` (instruct_data/clean/terse.py): a few words to a request that asks why, how or
for an account. Rows written for these tests, in the manner of the public rows they stand for."""

from __future__ import annotations

import pytest

from instruct_data.clean import Cleaner
from instruct_data.clean.terse import TerseReply
from instruct_data.schema import Conversation, Turn

RULE = TerseReply(TerseReply.Settings(enabled=True))


def conv(*texts: str, input: str | None = None) -> Conversation:
    return Conversation(id="t:1", source="t", turns=[
        Turn(role="user" if i % 2 == 0 else "assistant", text=text, input=input if i == 0 else None)
        for i, text in enumerate(texts)])


@pytest.mark.parametrize("request_text, reply", [
    ("长城为什么能保存这么久？", "因为修得好。"),
    ("如何提高英语口语？", "多练"),
    ("请阐述一名合格的数据分析师需要掌握哪些技能。", "多学习"),
    ("请详细介绍新能源汽车近年的进展。", "电池"),
])
def test_a_few_words_to_an_open_question_are_dropped(request_text, reply):
    verdict = RULE.apply(conv(request_text, reply))
    assert verdict is not None and verdict.reason == "terse_reply"


@pytest.mark.parametrize("request_text, reply, input", [
    ("请以一个字总结2020年", "疫", None),  # asked for one character
    ("为这篇介绍长城的文章起一个标题。", "《万里长城》", None),  # a title
    ("将每个句子分类为陈述句或疑问句。", "疑问句。", "你为什么要这样做？"),  # 为什么 is in the passage
    ("详细说明：根据提示将回答分类为“是”或“否”。", "否。", None),  # a label before the colon; a class
    ("对以下评论进行情感分析：这家店为什么这么难吃？", "负面。", None),  # a class, the passage after the colon
    ("长城为什么能保存这么久？", "长城能保存至今，一是因为选址多在干燥少雨的山脊，二是因为历代反复修缮。", None),
    ("如何计算 12 × 15？", "180", None),  # a number, not words
    ("这个办法可行吗？", "可行。", None),  # a yes/no question
])
def test_short_answers_that_were_asked_for_are_kept(request_text, reply, input):
    assert RULE.apply(conv(request_text, reply, input=input)) is None


def test_a_terse_later_round_is_cut_and_the_rule_is_off_by_default():
    assert "terse_reply" not in Cleaner().enabled
    row = conv("你好", "你好！有什么可以帮你？", "如何快速学会游泳？", "多练")
    verdict, changed = Cleaner({"terse_reply": True}).clean(row)
    assert verdict is None and changed == ["turns_cut.terse_reply"] and len(row.turns) == 2


@pytest.mark.parametrize("request_text, reply", [
    ("一名年轻女性出现皮疹和嗜酸性粒细胞增多，诊断为什么疾病？", "变应性肉芽肿。"),  # 为什么 = "as what", a name is the answer
    ("我会问你问题，不要写解释，像上帝一样回答。你是谁？", "我是神。"),  # what it must not do is not what it asks
    ("你的任务是先只回复“好的”，然后再介绍博客写作的步骤。", "好的。"),  # the reply it asked for
    ("患者被确诊为何种疾病？", "创伤性气胸。"),  # 为何种 = "as which kind"
    ("这种肿瘤的预后如何？", "预后不良。"),  # how it is, not how to do it
    ("骨折后需要进行哪些检查？", "X线和CT检查。"),  # a short list answers "which"
])
def test_requests_that_want_a_short_reply_after_all(request_text, reply):
    # false firings read on unlabeled public rows (a medical QA set, ShareGPT-zh), rewritten here
    assert RULE.apply(conv(request_text, reply)) is None
