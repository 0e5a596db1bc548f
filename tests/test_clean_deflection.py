"""`deflection` (issue 19 recall): a short reply that does not answer, and the short answers it
must leave alone (a task that decides, an answer the instruction offers, a one-word answer asked
for). Rows of tests/fixtures/clean/deflection.jsonl (alpaca-style) run through the Cleaner with
`clean: {deflection: true}`; the kept rows are false drops found on unlabeled real rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_data.clean import CleanSettings, Cleaner
from instruct_data.clean.deflection import offered
from instruct_data.schema import Conversation, Turn

FIXTURE = Path(__file__).parent / "fixtures" / "clean" / "deflection.jsonl"
CASES = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def conversation(case: dict) -> Conversation:
    return Conversation(id=f"t:{case['case']}", source="t",
                        turns=[Turn(role="user", text=case["instruction"], input=case["input"]),
                               Turn(role="assistant", text=case["output"])])


def with_deflection() -> Cleaner:
    return Cleaner(CleanSettings(deflection=True))


def test_deflection_is_off_by_default():
    assert "deflection" not in Cleaner().enabled


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] == "keep"], ids=lambda c: c["case"])
def test_short_answers_are_kept(case):
    verdict, _ = with_deflection().clean(conversation(case))
    assert verdict is None, case["note"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] == "drop"], ids=lambda c: c["case"])
def test_non_answers_are_dropped(case):
    verdict, _ = with_deflection().clean(conversation(case))
    assert verdict is not None and verdict.reason == case["note"]


def test_an_offered_answer_must_stand_alone_in_the_instruction():
    assert offered("是的", "回答“是”或“否”")
    assert offered("没有", "相关性（正、负或无）")
    assert not offered("是的", "这是一个关于长城的问题")  # 是 inside a sentence offers nothing
    assert not offered("没有", "无论如何写一段话")  # 无 starts a word
