"""`refusal` (issue 19): a reply that declines a harmless task, not a safety answer, a tool agent
naming its scope, a refusal played in the user's game, or text the user asked for. Each row of
tests/fixtures/clean/refusal.jsonl runs through the Cleaner as a build runs it with
`clean: {refusal: true}`; the kept rows are false drops found on unlabeled real rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_data.clean import CleanSettings, Cleaner
from instruct_data.schema import Conversation, Turn

FIXTURE = Path(__file__).parent / "fixtures" / "clean" / "refusal.jsonl"
CASES = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def conversation(case: dict) -> Conversation:
    roles = {"human": "user", "gpt": "assistant"}
    return Conversation(id=f"t:{case['case']}", source="t", tools=case.get("tools"),
                        turns=[Turn(role=roles[m["from"]], text=m["value"]) for m in case["conversations"]])


def with_refusal() -> Cleaner:
    return Cleaner(CleanSettings(refusal=True))


def test_refusal_is_off_by_default():
    assert "refusal" not in Cleaner().enabled


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] == "keep"], ids=lambda c: c["case"])
def test_refusals_the_guide_keeps_are_kept_whole(case):
    row = conversation(case)
    verdict, changed = with_refusal().clean(row)
    assert verdict is None and not any(c.startswith("turns_cut.") for c in changed), case["note"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] == "drop"], ids=lambda c: c["case"])
def test_refusing_a_harmless_task_is_dropped(case):
    verdict, _ = with_refusal().clean(conversation(case))
    assert verdict is not None and verdict.reason == "refusal", case["note"]


def test_the_same_tool_refusal_without_its_tools_is_judged():
    case = next(c for c in CASES if c["case"] == "tool_agent_names_its_scope")
    bare = dict(case, tools=None)
    verdict, _ = with_refusal().clean(conversation(bare))
    assert verdict is not None and verdict.reason == "refusal"
