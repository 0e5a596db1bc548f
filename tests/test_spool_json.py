"""The spool lines the workers write with orjson are the bytes json's encoder wrote (issue 22 item 3).

Workers encode each string of a train record and of a plain conversation with orjson, straight
to UTF-8, instead of building the line with json's string encoder and encoding it again. The
output files must not change by a byte.
"""

from __future__ import annotations

import json
import random

import orjson

from instruct_data.formats.plainrow import PlainConversation, PlainTurn
from instruct_data.pipeline.worker import _record_json, record_line
from instruct_data.schema import Origin

_string = json.encoder.encode_basestring


def _json_way(text: str):
    try:
        return _string(text).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json builds the str, UTF-8 refuses it
        return None


def _orjson_way(text: str):
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:
        return None


def test_every_code_point_is_written_as_json_writes_it():
    # Both encoders escape one character at a time, so equal bytes for every character are
    # equal bytes for every text; both refuse the same ones (lone surrogates).
    for code in range(0x110000):
        char = chr(code)
        assert _orjson_way(char) == _json_way(char), hex(code)


ALPHABET = ["你好", "。", "a", '"', "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "\u2028", "😀", "é", "/", " "]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def test_record_lines_match_the_json_encoder():
    rng = random.Random(0)
    for _ in range(3000):
        record = {"context": _text(rng), "target": _text(rng), "id": f"s:{rng.randint(1, 99)}"}
        if rng.random() < 0.3:
            record["category"] = _text(rng)
        if rng.random() < 0.1:
            record["weight"] = rng.choice([0, 1.5, None, [1, "x"]])  # not a flat dict of strings
        assert record_line(record) == (_record_json(record) + "\n").encode("utf-8")
        assert record_line(record) == (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def test_a_lone_surrogate_fails_as_it_did():
    record = {"context": "a\ud800", "target": "b"}
    for way in (record_line, lambda r: (_record_json(r) + "\n").encode("utf-8")):
        try:
            way(record)
        except UnicodeEncodeError:
            continue
        raise AssertionError("a lone surrogate was written")


def test_plain_conversation_lines_match_to_json():
    rng = random.Random(1)
    for n in range(2000):
        turns = [PlainTurn("user", _text(rng) or "q", _text(rng) or None), PlainTurn("assistant", _text(rng) or "a")]
        own = _text(rng) if rng.random() < 0.3 else None
        category = _text(rng) if rng.random() < 0.3 else None
        origin = Origin(file=f"/data/{_text(rng)}.jsonl", line=n + 1) if n % 3 else Origin(dataset="d", row=n)
        conversation = PlainConversation(f"s:{n}", own, "s", turns, category, origin)
        if n % 5 == 0:
            conversation.system = _text(rng)
        assert conversation.json_line() == (conversation.to_json() + "\n").encode("utf-8")
