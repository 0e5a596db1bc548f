"""io.json_line reads a line with orjson where it can (speed), and must give exactly what
json.loads gives (or json's own reject) for every line: the rows a build writes depend on it."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from hypothesis import given, settings, strategies as st

from instruct_data.io import TOO_DEEP, json_line, lone_surrogate

PATH = Path("rows.jsonl")


def by_json(raw: bytes, line_no: int = 2):
    """What reading the line with json alone gives: (data, error)."""
    text = raw.decode("utf-8")
    if line_no == 1:
        text = text.lstrip("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} (column {exc.colno})"
    except RecursionError:
        return None, TOO_DEEP
    if isinstance(data, dict) and lone_surrogate(text, data):  # read, but no UTF-8 output could hold it
        return None, lone_surrogate(text, data)
    return data, None


def same(a, b) -> bool:
    """Equal, with the same types all the way down (1 and 1.0 differ; nan equals nan)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))  # the deep lines below (json.loads ran at the usual limit)
    try:
        return _same(a, b)
    finally:
        sys.setrecursionlimit(limit)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


LINES = [
    b'{"instruction": "\xe4\xbd\xa0\xe5\xa5\xbd", "output": "ok"}\n',
    b'{"a": 100000000000000000000}\n',  # more than 64 bits: orjson would give a float
    b'{"a": -9223372036854775809, "b": 18446744073709551615}\n',
    b'{"a": [1.5e308, 123456789012345678901234567890.5, 0.30000000000000004, -0.0, 1E5]}\n',
    b'{"a": NaN, "b": Infinity}\n',  # json accepts them, orjson does not
    b'{"a": 1e400}\n',
    b'{"a": "\\ud800 lone surrogate"}\n',
    b'{"a": 1, "a": 2}\n',  # the last wins in both
    b'{"a": "\\u0000\\ud83d\\ude00"}\n',
    b'{"a": 1,}\n',
    b'[1, 2]\n',
    b'"just a string"\n',
    b'{"deep": ' + b"[" * 995 + b"]" * 995 + b"}\n",  # json's recursion limit, under orjson's 1,024
    b'{"deep": ' + b"[" * 500 + b"]" * 500 + b"}\n",
]


def test_lines_read_as_json_reads_them():
    for raw in LINES:
        row = json_line(PATH, 2, raw, "utf-8")
        data, error = by_json(raw)
        if error is None and not isinstance(data, dict):
            assert row.data is None and row.error.startswith("expected a JSON object"), raw[:40]
            continue
        assert row.error == error, raw[:40]
        assert same(row.data, data), raw[:40]


def test_big_integers_stay_exact():
    row = json_line(PATH, 3, b'{"id": 123456789012345678901234567890, "n": -9223372036854775809}\n', "utf-8")
    assert row.data == {"id": 123456789012345678901234567890, "n": -9223372036854775809}
    assert type(row.data["id"]) is int


def test_bad_bytes_and_blank_lines_as_before():
    assert json_line(PATH, 2, b"   \n", "utf-8") is None
    row = json_line(PATH, 4, b'{"a": "\xff"}\n', "utf-8")
    assert row.data is None and row.error.startswith("undecodable bytes (utf-8)")
    first = json_line(PATH, 1, b'\xef\xbb\xbf{"a": 1}\n', "utf-8")  # a BOM on the first line is skipped
    assert first.data == {"a": 1} and first.origin.line == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6), st.booleans())
def test_any_object_reads_as_json_reads_it(obj, ascii_only):
    raw = (json.dumps(obj, ensure_ascii=ascii_only) + "\n").encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return  # a lone surrogate written raw: not UTF-8, rejected the same way by both
    row = json_line(PATH, 7, raw, "utf-8")
    data, error = by_json(raw)
    assert row.error == error
    assert same(row.data, data)


def test_a_lone_surrogate_is_rejected_with_its_line_and_the_rest_is_built(tmp_path):
    """`"\\ud800"` with no partner is valid JSON text but no character: the row is a read reject
    naming its line (the build used to stop with a UTF-8 error and no file:line); a proper pair
    (an emoji) is kept. Both for JSON lines and a JSON array."""
    from instruct_data.pipeline import build
    from instruct_data.recipe import parse_recipe

    rows = ['{"instruction": "你好\\ud800呀", "output": "这是一个回答，内容足够长。"}',
            '{"instruction": "第二个问题是什么", "output": "第二个回答，内容足够长。"}',
            '{"instruction": "笑脸\\ud83d\\ude00是什么意思", "output": "一个表情符号，内容足够长。"}']
    (tmp_path / "lines.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "array.json").write_text("[" + ",\n".join(rows) + "]\n", encoding="utf-8")
    for name in ("lines.jsonl", "array.json"):
        out = tmp_path / f"out-{name}"
        build(parse_recipe({"sources": [{"name": "s", "files": [str(tmp_path / name)]}]}), out, workers=1)
        rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
        assert [(r["origin"], r["reason"]) for r in rejects] == [(f"{tmp_path / name}:1", "unparseable")], rejects
        assert "lone surrogate (\\ud800)" in rejects[0]["detail"] and "\\ud800" in rejects[0]["raw"]
        train = (out / "train.jsonl").read_text(encoding="utf-8")
        assert len(train.splitlines()) == 2 and "😀" in train
