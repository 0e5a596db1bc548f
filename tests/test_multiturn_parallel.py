"""Worker processes give exactly the output of a single process: same lines, same ledger."""

import gzip
import json
from pathlib import Path

import pytest

from instruct_data.errors import StrictModeError
from instruct_data.multiturn import MultiturnSettings
from instruct_data.multiturn import run as run_module
from instruct_data.multiturn.run import to_multiturn
from instruct_data.rowpath import file_chunks, open_file, read_span

FIXTURES = Path(__file__).parent / "fixtures" / "dialogues"


@pytest.fixture
def mixed_file(tmp_path):
    """Good and bad dialogues, a blank line and a line that is not JSON, a few lines per chunk below."""
    lines = (FIXTURES / "belle_multiturn.jsonl").read_text(encoding="utf-8").splitlines()
    lines += ["", "{not json", *(FIXTURES / "belle_conversations.jsonl").read_text(encoding="utf-8").splitlines()]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    return path


def outputs(out):
    files = {name: (out / name).read_bytes() for name in ("train.jsonl", "conversations.jsonl", "rejects.jsonl")}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["parameters"].pop("workers", None)
    return files, manifest


def test_workers_write_the_same_bytes_and_ledger_as_one_process(tmp_path, mixed_file, monkeypatch):
    settings = MultiturnSettings(max_context_chars=60)
    monkeypatch.setattr(run_module, "CHUNK_BYTES", 700)
    monkeypatch.setattr(run_module, "SERIAL_BELOW_BYTES", 0)
    pools = []
    real_pool = run_module._pool
    monkeypatch.setattr(run_module, "_pool", lambda *args: pools.append(args) or real_pool(*args))
    to_multiturn([mixed_file], tmp_path / "one", template="chatglm", settings=settings, workers=1, max_reject_rate=1)
    to_multiturn([mixed_file], tmp_path / "two", template="chatglm", settings=settings, workers=2, max_reject_rate=1)
    assert len(pools) == 1  # workers ran (only for workers=2)
    one, two = outputs(tmp_path / "one"), outputs(tmp_path / "two")
    assert one == two
    files, manifest = two
    assert manifest["counts"]["totals"]["read"] == 3 * (9 + 1 + 3)  # the blank line is not a row
    reasons = manifest["counts"]["rejects_by_reason"]
    assert reasons["read/unparseable"] == {"mixed": 3}
    origins = [json.loads(line)["origin"] for line in files["rejects.jsonl"].decode().splitlines()]
    assert f"{mixed_file}:11" in origins  # `{not json` keeps its own line number in a later chunk


def test_strict_stops_at_the_first_bad_row_with_workers(tmp_path, mixed_file, monkeypatch):
    monkeypatch.setattr(run_module, "CHUNK_BYTES", 300)
    monkeypatch.setattr(run_module, "SERIAL_BELOW_BYTES", 0)
    with pytest.raises(StrictModeError, match=r"mixed.jsonl:6: bad_transcript"):
        to_multiturn([mixed_file], tmp_path / "out", workers=2, strict=True)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_gzipped_json_lines_go_to_workers_and_a_json_array_stays_in_process(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setattr(run_module, "CHUNK_BYTES", 200)
    monkeypatch.setattr(run_module, "SERIAL_BELOW_BYTES", 0)
    rows = (FIXTURES / "belle_conversations.jsonl").read_text(encoding="utf-8").splitlines()
    packed = tmp_path / "dialogues.jsonl.gz"
    packed.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode("utf-8")))
    array = tmp_path / "dialogues.json"
    array.write_text("[\n" + ",\n".join(rows) + "\n]\n", encoding="utf-8")
    assert run_module._worth_workers(open_file(packed)) and not run_module._worth_workers(open_file(array))
    for path in (packed, array):
        manifest = to_multiturn([path], tmp_path / path.name.replace(".", "-"), workers=2, max_reject_rate=1)
        assert manifest["counts"]["totals"] == {"read": 3, "written": 2, "rejected": 1, "removed": 0}
        assert manifest["multiturn"]["records_written"] == 4


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_line_chunks_cover_the_file_in_whole_lines_with_their_numbers(tmp_path, chunk):
    content = b'{"a": 1}\r\n\n' + b'{"b": "' + "长".encode() * 50 + b'"}\n{"c": 3}'  # CRLF, blank, long, no final \n
    for path in (tmp_path / "x.jsonl", tmp_path / "x.jsonl.gz"):  # byte ranges, and lines of a .gz
        path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
        chunks = list(file_chunks(open_file(path, fmt="alpaca"), block_bytes=chunk))
        blocks = [b"".join(c.lines if c.lines is not None else read_span(c.spec.path, *c.span)) for c in chunks]
        assert b"".join(blocks) == content
        offset = 0
        for index, (c, block) in enumerate(zip(chunks, blocks)):
            assert content[:offset].count(b"\n") + 1 == c.first_line  # that block's line number
            assert block.endswith(b"\n") or index == len(chunks) - 1  # whole lines only
            offset += len(block)


def test_crlf_and_no_final_line_end_give_the_same_output_with_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "CHUNK_BYTES", 100)
    monkeypatch.setattr(run_module, "SERIAL_BELOW_BYTES", 0)
    text = (FIXTURES / "belle_multiturn.jsonl").read_text(encoding="utf-8")
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(text.replace("\n", "\r\n").rstrip("\r\n").encode("utf-8"))
    to_multiturn([path], tmp_path / "one", workers=1, max_reject_rate=1)
    to_multiturn([path], tmp_path / "two", workers=2, max_reject_rate=1)
    assert outputs(tmp_path / "one") == outputs(tmp_path / "two")
    assert outputs(tmp_path / "two")[1]["counts"]["totals"] == {"read": 9, "written": 5, "rejected": 4, "removed": 0}
