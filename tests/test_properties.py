"""Property: whatever mix of good rows, bad rows and undecodable lines a file holds,
read = written + rejected, and every reject says where it came from and why."""

import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruct_data.convert import convert
from instruct_data.errors import InputError

TEXT = st.text(alphabet="春夏秋冬你好世界问答一二三abc 123，。！？\t\"\\", min_size=1, max_size=12).filter(str.strip)

good_rows = st.builds(lambda q, a, i: {"instruction": q, "input": i, "output": a}, TEXT, TEXT,
                      st.one_of(st.just(""), TEXT)).map(lambda r: ("good", json.dumps(r, ensure_ascii=False).encode()))
bad_rows = st.one_of(
    TEXT.map(lambda q: {"instruction": q, "input": "", "output": ""}),  # empty reply
    TEXT.map(lambda q: {"instruction": q}),  # no output
    TEXT.map(lambda q: {"instruction": q, "output": [q]}),  # wrong type
    TEXT.map(lambda a: {"instruction": " ", "input": "", "output": a}),  # empty instruction
    TEXT.map(lambda q: {"instruction": q, "output": "答", "history": [[q]]}),  # bad history
).map(lambda r: ("bad", json.dumps(r, ensure_ascii=False).encode()))
broken_lines = st.one_of(
    # not UTF-8 (a lone continuation byte first; never a UTF-16 byte-order mark, which names another encoding)
    st.binary(min_size=1, max_size=10).map(lambda b: b"\x80" + b.replace(b"\n", b"") + "问".encode()),
    TEXT.map(lambda t: ('{"instruction": "' + t.replace('"', "")).encode()),  # invalid JSON
    st.sampled_from([b"[1, 2]", b"42", b'"just a string"', b"null"]),  # JSON, but not an object
).map(lambda line: ("broken", line))
blank_lines = st.sampled_from([b"", b"   ", b"\t"]).map(lambda line: ("blank", line))

ITEMS = st.lists(st.one_of(good_rows, bad_rows, broken_lines, blank_lines), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=ITEMS, newline=st.sampled_from([b"\n", b"\r\n"]), bom=st.booleans(), final_newline=st.booleans())
def test_every_row_is_written_or_rejected_with_origin_and_reason(items, newline, bom, final_newline):
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mixed.jsonl"
        body = newline.join(line for _, line in items) + (newline if final_newline else b"")
        src.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body)
        out = Path(tmp) / "out" / "train.jsonl"
        rows = [(n, kind) for n, (kind, line) in enumerate(items, start=1) if kind != "blank"]
        try:
            manifest = convert([str(src)], out, fmt="alpaca", max_reject_rate=1.0)
        except InputError as exc:
            # Only a file with no rows, or none of whose rows parse, may fail; and then nothing is written.
            assert all(kind == "broken" for _, kind in rows)
            assert re.match(rf"{re.escape(str(src))}:\d+: ", str(exc))
            assert not out.parent.exists() or not any(out.parent.iterdir())
            return
        totals = manifest["counts"]["totals"]
        assert totals["read"] == len(rows)
        assert totals["read"] == totals["written"] + totals["rejected"]
        assert totals["written"] == sum(kind == "good" for _, kind in rows)
        rejects = [json.loads(line) for line in (out.parent / "train.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
        assert len(rejects) == totals["rejected"]
        expected_lines = [n for n, kind in rows if kind != "good"]
        assert [r["origin"] for r in rejects] == [f"{src}:{n}" for n in expected_lines]
        assert all(r["reason"] and r["detail"] and r["stage"] == "read" for r in rejects)
        written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [w["id"] for w in written] == [f"mixed:{n}" for n, kind in rows if kind == "good"]
