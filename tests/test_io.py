"""Every file type, and the quirks of real files (BOM, CRLF, blank lines, no final newline)."""

import gzip
import json
import random
import zlib

import pandas as pd
import pytest

from instruct_data.errors import InputError
from instruct_data.io import JsonlWriter, atomic_path, expand_inputs, file_sha256, read_rows, write_json, write_jsonl

ROWS = [
    {"instruction": "把“早上好”翻译成英文。", "input": "", "output": "Good morning."},
    {"instruction": "十以内最大的质数是几？", "input": "", "output": "7"},
]


def data_of(path, **kwargs):
    return [row.data for row in read_rows(path, **kwargs)]


def jsonl_text(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


@pytest.mark.parametrize("name", ["a.jsonl", "a.json", "a.ndjson"])
def test_json_lines_whatever_the_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text(jsonl_text(ROWS), encoding="utf-8")
    assert data_of(path) == ROWS


def test_json_array_items_carry_their_line(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(ROWS, ensure_ascii=False, indent=1), encoding="utf-8")
    rows = list(read_rows(path))
    assert [r.data for r in rows] == ROWS
    assert [(r.origin.line, r.origin.row) for r in rows] == [(2, 1), (7, 2)]
    assert str(rows[1].origin) == f"{path}:7"


def test_bom_crlf_blank_lines_and_no_final_newline_are_normal(tmp_path):
    path = tmp_path / "messy.jsonl"
    text = "\r\n\r\n".join(json.dumps(r, ensure_ascii=False) for r in ROWS)  # no final newline
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rows = list(read_rows(path))
    assert [r.data for r in rows] == ROWS and [r.origin.line for r in rows] == [1, 3]
    array = tmp_path / "messy.json"
    array.write_bytes(b"\xef\xbb\xbf\r\n" + json.dumps(ROWS, ensure_ascii=False).encode("utf-8"))
    assert data_of(array) == ROWS
    table = tmp_path / "messy.csv"
    table.write_bytes(b"\xef\xbb\xbfinstruction,output\r\n\xe9\x97\xae,\xe7\xad\x94")  # 问,答 without newline
    assert data_of(table) == [{"instruction": "问", "output": "答"}]


def test_bad_lines_come_back_as_rows_with_errors(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(jsonl_text(ROWS[:1]).encode() + b'{"instruction": "\xff\xfe"}\n{"broken": \n[1, 2]\n')
    rows = list(read_rows(path))
    assert rows[0].data == ROWS[0]
    assert [(r.origin.line, r.error.split(":")[0]) for r in rows[1:]] == [
        (2, "undecodable bytes (utf-8)"), (3, "invalid JSON"), (4, "expected a JSON object, got list")]
    assert "gb18030" in rows[1].error and rows[2].raw == '{"broken": '


def test_csv_tsv_xlsx_parquet_and_table_origins(tmp_path):
    frame = pd.DataFrame(ROWS + [{"instruction": "数字单元格", "input": "", "output": "42"}])
    expected = frame.to_dict(orient="records")
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_csv(tmp_path / "t.tsv", index=False, sep="\t")
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for name in ["t.csv", "t.tsv", "t.xlsx", "t.parquet"]:
        rows = list(read_rows(tmp_path / name))
        assert [r.data for r in rows] == expected, name
        assert str(rows[2].origin) == f"{tmp_path / name}:row 3"


def test_nested_parquet_columns_read_like_json(tmp_path):
    rows = [{"id": "7", "conversations": [{"from": "human", "value": "你好"}, {"from": "assistant", "value": "你好！"}],
             "history": [["早", "早上好"], ["吃了吗", "吃了"]], "score": 3}]
    pd.DataFrame(rows).to_parquet(tmp_path / "nested.parquet", index=False)
    assert data_of(tmp_path / "nested.parquet") == rows


def test_parquet_integers_with_a_null_read_as_integers_and_other_types_as_before(tmp_path):
    """Parquet batches went through pandas, which makes an int64 column holding a null float64:
    10000000200000001 read as 1.00000002e+16 (written "1.00000002e+16") and 42 as 42.0. The
    values of other types are read as they were; pandas' own index column is still no column."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from instruct_data import ranges

    table = pa.table({
        "instruction": ["100000001的平方是多少", "问二", None],
        "output": pa.array([10000000200000001, None, 42], type=pa.int64()),
        "tags": [["数学", None], [], None],
        "conversations": [[{"from": "human", "value": "你好"}], [], None],
        "meta": [{"n": 1, "names": ["甲"]}, None, {"n": None, "names": None}],
        "score": [1.5, None, float("nan")],
        "at": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5), None, datetime.datetime(2024, 1, 3)],
                       type=pa.timestamp("us")),
    })
    path = tmp_path / "ints.parquet"
    pq.write_table(table, path, row_group_size=2)
    rows = data_of(path)
    assert [(row["output"], type(row["output"])) for row in rows] == [(10000000200000001, int), ("", str), (42, int)]
    assert [row["instruction"] for row in rows] == ["100000001的平方是多少", "问二", ""]
    assert [row["tags"] for row in rows] == [["数学", None], [], ""]
    assert [row["conversations"] for row in rows] == [[{"from": "human", "value": "你好"}], [], ""]
    assert [row["meta"] for row in rows] == [{"n": 1, "names": ["甲"]}, "", {"n": None, "names": None}]
    assert [row["score"] for row in rows] == [1.5, "", ""]
    assert [str(row["at"]) for row in rows] == ["2024-01-02 03:04:05", "", "2024-01-03 00:00:00"]
    pieces = ranges.parquet_pieces(path, 1)
    assert [row.data for piece in pieces for row in ranges.parquet_piece_rows(str(path), piece)] == rows
    filtered = tmp_path / "filtered.parquet"  # an index other than 0..n-1: stored as __index_level_0__
    pd.DataFrame({"instruction": ["问一", "问二"], "output": ["答一", "答二"]}).iloc[[1]].to_parquet(filtered)
    assert data_of(filtered) == [{"instruction": "问二", "output": "答二"}]


def test_blank_table_cells_are_empty_text(tmp_path):
    path = tmp_path / "t.xlsx"
    pd.DataFrame([{"instruction": "问", "input": None, "output": "答"}]).to_excel(path, index=False)
    assert data_of(path) == [{"instruction": "问", "input": "", "output": "答"}]


def test_gz_of_every_type(tmp_path):
    frame = pd.DataFrame(ROWS)
    texts = {"a.jsonl.gz": jsonl_text(ROWS), "a.json.gz": json.dumps(ROWS, ensure_ascii=False),
             "a.csv.gz": frame.to_csv(index=False), "a.tsv.gz": frame.to_csv(index=False, sep="\t")}
    for name, text in texts.items():
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as fh:
            fh.write(text)
    frame.to_excel(tmp_path / "a.xlsx", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    for name in ["a.xlsx", "a.parquet"]:
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((tmp_path / name).read_bytes()))
    for name in [*texts, "a.xlsx.gz", "a.parquet.gz"]:
        assert data_of(tmp_path / name) == ROWS, name


def test_damaged_gz_fails_with_file_line(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_text(ROWS * 200).encode("utf-8"))[:-40])
    with pytest.raises(InputError, match=r"cut\.jsonl\.gz:\d+: cannot read past this line"):
        list(read_rows(path))


def test_damaged_gz_is_read_up_to_the_damage_and_names_its_line(tmp_path):
    """The row path reads blocks of lines: a block cut by the damage was lost whole, and the error
    named the block's first line (line 1 for a small file) instead of the line that is cut."""
    from instruct_data.formats import read_conversations

    rows = [{"instruction": f"第{n}个问题 {random.Random(n).randbytes(300).hex()}", "output": "回答"} for n in range(2000)]
    text = jsonl_text(rows).encode("utf-8")  # (random text: half the .gz is about half the lines)
    data = gzip.compress(text)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[:len(data) // 2])
    whole = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(path.read_bytes()).count(b"\n")
    assert 0 < whole < text.count(b"\n")
    _, stream = read_conversations(str(path), source="cut")
    read = []
    with pytest.raises(InputError) as caught:
        for row, _ in stream:
            read.append(row)
    assert len(read) == whole  # every whole line before the damage
    assert str(caught.value).startswith(f"{path}:{whole + 1}: cannot read past this line")


def test_a_quote_never_closed_in_a_csv_names_the_line_it_opens_on(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('instruction,output\n"多行\n问题","回答，带逗号"\n"未闭合,回答\n正常,好\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        list(read_rows(path))
    assert str(caught.value) == (f"{path}:4: a quoted cell is never closed: from this line on the file would read "
                                 'as one cell (a " inside a cell is written "")')


def test_folders_and_globs_expand_in_a_stable_order(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["b.jsonl", "a.csv", "sub/c.json.gz", "notes.txt"]:
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in expand_inputs([tmp_path])] == [
        "a.csv", "b.jsonl", "sub/c.json.gz"]
    assert [p.name for p in expand_inputs([str(tmp_path / "*.jsonl"), str(tmp_path / "a.csv")])] == [
        "b.jsonl", "a.csv"]
    assert [p.name for p in expand_inputs([str(tmp_path / "*")])] == ["a.csv", "b.jsonl"]  # notes.txt, sub/ skipped
    with pytest.raises(InputError, match="no supported file matches"):
        expand_inputs([str(tmp_path / "*.txt")])


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or folder"),
    ("glob", "no file matches this pattern"),
    ("suffix", "unsupported file type .txt"),
    ("empty_dir", "folder holds no supported file"),
])
def test_inputs_that_cannot_be_found(tmp_path, case, message):
    target = {"missing": tmp_path / "nope.jsonl", "glob": tmp_path / "*.jsonl", "suffix": tmp_path / "notes.txt",
              "empty_dir": tmp_path / "empty"}[case]
    if case == "suffix":
        target.write_text("hi", encoding="utf-8")
    if case == "empty_dir":
        target.mkdir()
    with pytest.raises(InputError, match=message):
        expand_inputs([target])


def test_files_that_cannot_be_read_fail_before_any_row(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"empty\.jsonl:1: file holds no rows"):
        list(read_rows(empty))
    gbk = tmp_path / "gbk.jsonl"
    gbk.write_bytes(jsonl_text(ROWS).encode("gbk"))
    with pytest.raises(InputError, match=r"gbk\.jsonl:1: nothing in this file parses: undecodable bytes"):
        next(iter(read_rows(gbk)))
    assert data_of(gbk, encoding="gb18030") == ROWS
    gbk_csv = tmp_path / "gbk.csv"
    gbk_csv.write_bytes("instruction,output\n问题,回答\n".encode("gbk"))
    with pytest.raises(InputError, match=r"gbk\.csv:2: undecodable bytes \(utf-8\).*--encoding gb18030"):
        list(read_rows(gbk_csv))
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"a": 1},\n{"a": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"broken\.json:4: invalid JSON: Expecting value"):
        list(read_rows(broken))
    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text('[{"a": 1}', encoding="utf-8")
    with pytest.raises(InputError, match="not closed"):
        list(read_rows(unclosed))


def test_utf16_exports(tmp_path):
    table = tmp_path / "excel_unicode.tsv"  # what Excel's "Unicode text" export writes
    table.write_bytes("instruction\toutput\r\n问\t答\r\n".encode("utf-16"))
    assert data_of(table) == [{"instruction": "问", "output": "答"}]
    lines = tmp_path / "u16.jsonl"
    lines.write_bytes(jsonl_text(ROWS).encode("utf-16"))
    with pytest.raises(InputError, match=r"u16\.jsonl:1: the file is UTF-16"):
        list(read_rows(lines))


def test_ragged_csv_row_fails_with_its_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("instruction,output\n问,答\n问二,答二,多出来的一格\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"ragged\.csv:3: expected 2 cells, found 3"):
        list(read_rows(path))


def test_limit_stops_early(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(jsonl_text(ROWS * 5), encoding="utf-8")
    assert len(list(read_rows(path, limit=3))) == 3


def test_writers_are_atomic(tmp_path):
    out = tmp_path / "deep" / "out.jsonl"
    assert write_jsonl(out, ROWS) == 2
    assert out.read_text(encoding="utf-8") == jsonl_text(ROWS)  # Chinese kept readable

    def failing():
        yield ROWS[0]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "half.jsonl", failing())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    writer = JsonlWriter(tmp_path / "never.jsonl")
    writer.write(ROWS[0])
    writer.abort()
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "x.json") as tmp:
            tmp.write_text("partial", encoding="utf-8")
            raise ValueError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    write_json(tmp_path / "m.json", {"键": 1})
    assert json.loads((tmp_path / "m.json").read_text(encoding="utf-8")) == {"键": 1}
    assert len(file_sha256(tmp_path / "m.json")) == 64


def test_a_parquet_row_with_dates_decimals_and_bytes_is_recorded_not_a_crash(tmp_path):
    """Such a row, rejected or removed, stopped convert and dedupe with a traceback when its raw
    cells went to rejects.jsonl or duplicates.jsonl (JSON has no type for them)."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from instruct_data.cli import cli

    n = 3
    pq.write_table(pa.table({
        "instruction": ["问一", "问一", ""], "output": ["答一", "答一", "答三"],
        "when": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5)] * n), "day": pa.array([datetime.date(2024, 1, 2)] * n),
        "price": pa.array([decimal.Decimal("1.50")] * n, type=pa.decimal128(5, 2)), "blob": pa.array([b"ab"] * n)}),
        tmp_path / "t.parquet")
    result = CliRunner().invoke(cli, ["convert", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "o.jsonl"),
                                      "--max-reject-rate", "1"])
    assert result.exit_code == 0, result.output
    [reject] = [json.loads(line) for line in (tmp_path / "o.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert reject["raw"] == {"instruction": "", "output": "答三", "when": "2024-01-02T03:04:05", "day": "2024-01-02",
                             "price": "1.50", "blob": "ab"}
    result = CliRunner().invoke(cli, ["dedupe", str(tmp_path / "t.parquet"), "--out", str(tmp_path / "d"),
                                      "--max-reject-rate", "1"])
    assert result.exit_code == 0, result.output
    [removed] = [json.loads(line) for line in (tmp_path / "d" / "duplicates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert removed["id"] == "t:2" and removed["raw"]["when"] == "2024-01-02T03:04:05"
