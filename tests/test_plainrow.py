"""The build's unvalidated fast path for plain instruction rows agrees with formats.parse_row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_data import pipeline, rowpath
from instruct_data.clean import Cleaner
from instruct_data.formats import parse_row
from instruct_data.io import Row
from instruct_data.formats.plainrow import PlainConversation, plain_conversation
from instruct_data.recipe import parse_recipe
from instruct_data.schema import Origin
from instruct_data.templates import get_template, training_record

PLAIN = [
    {"instruction": "解释一下光合作用。", "input": "", "output": "光合作用是植物把光能转化为化学能的过程。"},
    {"instruction": "总结下面的内容", "input": "今天开会讨论了预算。", "output": "会议讨论了预算。"},
    {"instruction": "  分类\u200b  ", "input": "   ", "output": "积极 ", "category": "classification"},
    {"instruction": "问题\t\"引号\"\n\u2028", "output": "回答\x1b", "id": 12, "class": "closed\u00a0qa"},
    {"instruction": "问题", "input": None, "output": "回答", "type": "open qa", "id": "x-1"},
]
NOT_PLAIN = [
    {"instruction": "", "input": "任务在这里", "output": "回答"},
    {"instruction": "问题", "input": "", "output": "  "},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", "早上好"]]},
    {"instruction": "问题", "input": "", "output": "回答", "system": "你是助手"},
    {"instruction": "Human:你好\nAssistant:", "input": "", "output": "你好！"},
    {"instruction": 3, "input": "", "output": "回答"},
    {"instruction": "问题", "input": ["x"], "output": "回答"},
]


@pytest.mark.parametrize("data", PLAIN)
@pytest.mark.parametrize("fmt", ["alpaca", "belle"])
def test_plain_rows_match_parse_row_through_cleaning_and_rendering(data, fmt):
    origin = Origin(file="x.jsonl", line=3)
    fast = rowpath.conversation_of(Row(origin, data), fmt, "src")
    slow = parse_row(Row(origin, data), fmt, source="src")
    assert isinstance(fast, PlainConversation)
    assert fast.to_json() == slow.model_dump_json(exclude_none=True)
    cleaner = Cleaner()
    assert cleaner.clean(fast) == cleaner.clean(slow)
    assert fast.to_json() == slow.model_dump_json(exclude_none=True)
    for name in ("seed", "chatglm", "chatml"):
        assert training_record(fast, get_template(name)) == training_record(slow, get_template(name))


@pytest.mark.parametrize("data", NOT_PLAIN)
def test_other_rows_take_the_validated_path(data):
    for fmt in ("alpaca", "belle"):
        assert plain_conversation(data, fmt, "src", {"file": "x", "line": 1}, "src:1") is None
    assert plain_conversation(PLAIN[0], "sharegpt", "src", {"file": "x", "line": 1}, "src:1") is None


def assert_same_build_without(fast_path: str, rows, tmp_path, monkeypatch, **settings):
    """Build `rows` plus Belle's fixture with `rowpath.<fast_path>` on, then off (every row through
    formats.parse_row): every output file and the manifest must be the same bytes."""
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    belle = Path(__file__).parent / "fixtures" / "belle"
    recipe = parse_recipe({"sources": [{"files": [str(data)]}, {"belle": "2M", "from": str(belle)}], **settings})
    pipeline.build(recipe, tmp_path / "fast", workers=1)
    monkeypatch.setattr(rowpath, fast_path, lambda *args: None)
    pipeline.build(recipe, tmp_path / "slow", workers=1)
    for name in ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl", "rejects.jsonl",
                 "duplicates.jsonl", "manifest.json"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes(), name


def test_a_build_gives_the_same_bytes_without_the_fast_path(tmp_path, monkeypatch):
    rows = PLAIN + NOT_PLAIN + [{"instruction": "你好", "input": "", "output": "作为一个AI语言模型，我很好。"}]
    assert_same_build_without("plain_conversation", rows, tmp_path, monkeypatch, split={"heldout": 2})
