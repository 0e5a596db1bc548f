"""The row path's fast path for plain dialogues (formats/plaindialogue.py) gives what formats.parse_row
gives: the same record or the validated path, the same cleaning, records, texts and bytes."""

from __future__ import annotations


import pytest

from instruct_data import rowpath
from instruct_data.clean import Cleaner
from instruct_data.dedupe.keys import record_texts
from instruct_data.formats import parse_row
from instruct_data.formats.plaindialogue import PlainDialogue, plain_dialogue
from instruct_data.io import Row
from instruct_data.multiturn import MultiturnSettings, expand
from instruct_data.pipeline import worker
from instruct_data.pipeline.dialogue import conversation_line
from instruct_data.schema import Origin
from instruct_data.table import Reject
from instruct_data.templates import get_template, render
from tests.test_plainrow import assert_same_build_without

FAST = [
    {"instruction": "再说一遍", "input": "", "output": "好的。", "history": [["你好", "你好！"], ["你是谁", "我是助手。"]]},
    {"instruction": "总结", "input": "  ", "output": "总结如下", "history": [["q\u3000", " a "]], "id": 7},
    {"instruction": "问题", "input": "补充", "output": "回答", "history": [["早", "早上好"]], "category": "chat\u00a0x"},
    {"instruction": "问题", "output": "回答", "history": [], "type": "闲聊"},
    {"instruction": "问题", "input": None, "output": "回答", "history": [["问\"引号\"\n\u2028", "答\x1b😀"]]},
    {"instruction": "Human:你好\nAssistant:", "input": "", "output": "你好！"},
    {"instruction": "Human:问\nAssistant:答\nHuman:再问\nAssistant:", "input": "", "output": "再答", "id": "x-1"},
    {"instruction": "human： 小写\n  ASSISTANT:回答\n\thuman:再问\nassistant：", "output": "再答 ", "class": "qa"},
    {"instruction": "Human: 只有问题", "input": "", "output": "回答"},
    {"instruction": "\n Human:问\nAssistant:答\nHuman:二\nAssistant:二答\nHuman:三\nAssistant:", "output": "三答"},
    {"instruction": "Human:引用\nAssistant:他说：\nHuman: 你好\nAssistant: 好\nHuman:然后\nAssistant:", "output": "好"},
    {"instruction": "Human:问\nAssistant:答\nHuman:作为一个AI语言模型我不能\nAssistant:", "output": "作为一个AI语言模型，我不能回答。"},
    {"instruction": "Human:问\nAssistant:作为一个AI语言模型，我不能。\nHuman:再问\nAssistant:", "output": "这是一个正常的回答。"},
    {"instruction": "Human:联系我 13812345678\nAssistant:好的 a@b.com\nHuman:再问\nAssistant:", "output": "回答。"},
    {"instruction": "Human:ｆｕｌｌ　ｗｉｄｔｈ\u200b\nAssistant:Ａ\r\n\nHuman:再问 \nAssistant:", "output": "答。"},
]
SLOW = [  # the validated path: rejects, or fields the fast path does not take
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", ""]]},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["", "早上好"]]},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", None]]},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", 3]]},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", "好", "多"]]},
    {"instruction": "问题", "input": "", "output": "回答", "history": "[[\"早\", \"好\"]]"},
    {"instruction": "问题", "input": "", "output": "回答", "history": "早"},
    {"instruction": "问题", "input": "", "output": "回答", "history": {"q": "a"}},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", "好"]], "system": "你是助手"},
    {"instruction": "问题", "input": "", "output": "回答", "history": [["早", "好"]], "extra": 1},
    {"instruction": "", "input": "任务", "output": "回答", "history": [["早", "好"]]},
    {"instruction": "问题", "input": 3, "output": "回答", "history": [["早", "好"]]},
    {"instruction": "问题", "input": "", "output": " ", "history": [["早", "好"]]},
    {"instruction": "Human:问\nAssistant:答", "input": "", "output": "回答", "history": [["早", "好"]]},
    {"instruction": "Human:问\nAssistant:答", "input": "", "output": "另一个回答"},
    {"instruction": "Human:\nAssistant:", "input": "", "output": "回答"},
    {"instruction": "Human:问\nAssistant:\nHuman:再问\nAssistant:", "input": "", "output": "回答"},
    {"instruction": "Human:问\nHuman:再问\nAssistant:", "input": "", "output": "回答"},
    {"instruction": "Human:问\nAssistant:", "input": "多余", "output": "回答"},
    {"instruction": "Human:问\nAssistant:", "input": 5, "output": "回答"},
    {"instruction": "Human:问\nAssistant:", "input": "", "output": 5},
    {"instruction": "前言\nHuman:问\nAssistant:", "input": "", "output": "回答"},
    {"instruction": "Human:问\nAssistant:", "input": "", "output": "回答", "system": "s"},
    {"instruction": "Human:问\nAssistant:答\nHuman:", "input": "", "output": "回答"},
    {"instruction": "Human:引用\nAssistant:他说：\nHuman: 你好\nAssistant: \nHuman:然后\nAssistant:", "output": "好"},
]
TEMPLATES = ("seed", "chatglm", "belle", "chatml", "llama3")


def _both(data: dict, fmt: str):
    origin = Origin(file="x.jsonl", line=3)
    fast = rowpath.conversation_of(Row(origin, data), fmt, "src")
    slow = parse_row(Row(origin, data), fmt, source="src")
    return fast, slow


@pytest.mark.parametrize("data", FAST)
@pytest.mark.parametrize("fmt", ["alpaca", "belle"])
def test_plain_dialogues_match_parse_row_through_cleaning_records_and_texts(data, fmt):
    fast, slow = _both(data, fmt)
    assert type(fast) is PlainDialogue
    assert fast.model_dump_json() == slow.model_dump_json(exclude_none=True)
    assert fast.json_line() == (slow.model_dump_json(exclude_none=True) + "\n").encode("utf-8")
    assert (fast.own_id, fast.n_rounds, fast.n_replies, fast.history) == \
        (slow.own_id, slow.n_rounds, slow.n_replies, slow.history)
    for name in TEMPLATES:
        assert render(fast, get_template(name)) == render(slow, get_template(name))
    cleaner = Cleaner()
    assert cleaner.clean(fast) == cleaner.clean(slow)  # the verdict, the edits, a dialogue cut short
    assert fast.model_dump_json() == slow.model_dump_json(exclude_none=True)
    for mode in ("every-turn", "last-turn"):
        for history in (None, 1):
            settings = MultiturnSettings(mode=mode, max_history_turns=history)
            for name in TEMPLATES:
                assert expand(fast, get_template(name), settings) == expand(slow, get_template(name), settings)
            records = expand(slow, get_template("seed"), settings)
            if not isinstance(records, Reject):
                assert worker._conversation_line(fast, len(records)) == conversation_line(slow, len(records))
        assert record_texts(fast, mode == "every-turn") == record_texts(slow, mode == "every-turn")
    assert fast.as_conversation() == slow


@pytest.mark.parametrize("data", SLOW)
@pytest.mark.parametrize("fmt", ["alpaca", "belle"])
def test_other_dialogues_take_the_validated_path(data, fmt):
    assert plain_dialogue(data, fmt, "src", Origin(file="x", line=1), "src:1") is None
    fast, slow = _both(data, fmt)
    if isinstance(slow, Reject):
        assert fast == slow
    else:
        assert fast.model_dump_json(exclude_none=True) == slow.model_dump_json(exclude_none=True)


def test_only_alpaca_and_belle_rows_are_read_as_plain_dialogues():
    for fmt in ("sharegpt", "messages", "prompt_response", "context_target"):
        assert plain_dialogue(FAST[0], fmt, "src", Origin(file="x", line=1), "src:1") is None


@pytest.mark.parametrize("mode", ["every-turn", "last-turn"])
def test_a_build_gives_the_same_bytes_without_the_dialogue_fast_path(tmp_path, monkeypatch, mode):
    rows = FAST + SLOW + [{"instruction": "你好", "input": "", "output": "你好，有什么可以帮你？"}] * 2 + FAST[:3]
    assert_same_build_without("plain_dialogue", rows, tmp_path, monkeypatch,
                              split={"heldout": 3}, multiturn={"mode": mode}, max_reject_rate=1)


def test_a_group_of_fast_path_rows_merges_as_validated_rows_do():
    """to-multiturn --group-by category: rows the fast paths read (a plain row, a dialogue) join one
    dialogue as the validated rows do (pydantic refused their PlainTurns before)."""
    from instruct_data.multiturn.grouping import merge

    rows = [{"instruction": "问一", "input": "", "output": "答一", "category": "c"}, {**FAST[0], "category": "c"}]
    origin = Origin(file="x.jsonl", line=1)
    fast = [(Row(origin, r), rowpath.conversation_of(Row(origin, r), "alpaca", "src")) for r in rows]
    slow = [(Row(origin, r), parse_row(Row(origin, r), "alpaca", source="src")) for r in rows]
    assert type(fast[1][1]) is PlainDialogue
    merged = merge(fast, group_id="src:category=c", order_by=None)
    assert merged == merge(slow, group_id="src:category=c", order_by=None)
    assert merged.n_rounds == 4
