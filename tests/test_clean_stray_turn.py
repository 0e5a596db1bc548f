"""`stray_first_turn` (instruct_data/clean/stray_turn.py): a Chinese dialogue whose first user
turn is an English passage that asks nothing. Rows written for these tests, in the
manner of the translated tool-call dialogues they stand for."""

from __future__ import annotations

import pytest

from instruct_data.clean import Cleaner
from instruct_data.clean.stray_turn import StrayFirstTurn
from instruct_data.schema import Conversation, Turn

RULE = StrayFirstTurn(StrayFirstTurn.Settings(enabled=True))


def conv(*texts: str, system: str | None = None) -> Conversation:
    return Conversation(id="t:1", source="t", system=system,
                        turns=[Turn(role="user" if i % 2 == 0 else "assistant", text=text) for i, text in enumerate(texts)])


ENGLISH_ANSWER = "The sentence can be made into an exclamation by adding an exclamation mark at the end."
LATER = ("你能解释一下熵的概念吗？", "熵是衡量系统无序程度的物理量。")


@pytest.mark.parametrize("first", [ENGLISH_ANSWER, "Spaghetti or penne with tomato sauce is a classic choice for dinner"])
def test_an_english_passage_that_asks_nothing_opens_a_chinese_dialogue(first):
    verdict = RULE.apply(conv(first, "哇，雨下得好大啊！", *LATER))
    assert verdict is not None and verdict.reason == "first_turn_not_a_request" and verdict.turn == 1


@pytest.mark.parametrize("texts", [
    (ENGLISH_ANSWER, "这句话可以加上感叹号。"),  # a single round: may be a task set in the system text
    ("Can you translate this sentence into Chinese for me, please?", "当然可以。", *LATER),  # it asks
    ("Hello there", "你好！", *LATER),  # too short to judge
    ("请把这句话改成感叹句：The rain is coming down hard.", "雨下得好大啊！", *LATER),  # Chinese in it
    (ENGLISH_ANSWER, "Yes.", "What about entropy?", "It measures disorder."),  # not a Chinese dialogue
    # pasted code with no words: a common way to ask what it does (read on a ShareGPT-zh row)
    ("#ifndef DATA_HPP\n#define DATA_HPP\n#include <QObject>\nclass Data : public QObject {\n};\n#endif",
     "这段代码定义了一个名为 Data 的类。", *LATER),
    ("```python\narea = 4 * math.pi * 5 ** 2\nprint(area)\n```", "这段代码计算球的表面积。", *LATER),
])
def test_requests_and_other_dialogues_are_kept(texts):
    assert RULE.apply(conv(*texts)) is None


def test_the_cleaner_removes_only_the_stray_round_and_the_rule_is_off_by_default():
    assert "stray_first_turn" not in Cleaner().enabled
    row = conv(ENGLISH_ANSWER, "哇，雨下得好大啊！", *LATER)
    verdict, changed = Cleaner({"stray_first_turn": True}).clean(row)
    assert verdict is None and changed == ["turns_cut.stray_first_turn"]
    assert [turn.text for turn in row.turns] == list(LATER)
