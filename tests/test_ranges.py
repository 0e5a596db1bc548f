"""Files read in pieces (instruct_data/ranges.py) give the rows, origins and errors of the whole-file
reader, io.read_rows: JSON arrays cut at items, CSV/TSV cut at records, parquet cut at row groups."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from instruct_data import ranges
from instruct_data.errors import InputError
from instruct_data.io import read_rows

# Text that trips a scan for structure: quotes, escapes, brackets and separators inside strings.
NASTY = ['引号"在里面"', "反斜杠\\", "\\\\", '\\"', "括号{[]}", "逗号,,", "换行\n第二行", "tab\t", "}]", "\r\n",
         "普通的句子。", "", "a\\\\\"b"]


def _rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        row = {"instruction": f"{i}:" + "".join(rng.choice(NASTY) for _ in range(rng.randint(0, 4))),
               "output": "".join(rng.choice(NASTY) for _ in range(rng.randint(1, 5)))}
        if rng.random() < 0.2:
            row["history"] = [[rng.choice(NASTY), rng.choice(NASTY)]]
        if rng.random() < 0.1:
            row["n"] = rng.choice([1, 2.5, 10**30, -0.0, True, None])
        rows.append(row)
    return rows


def _same(path: Path, got) -> None:
    want = [(r.origin, r.data, r.error, r.raw) for r in read_rows(path)]
    assert [(r.origin, r.data, r.error, r.raw) for r in got] == want
    assert len(want) > 1


def _array_rows(path: Path, target: int):
    pieces = ranges.array_pieces(path, "utf-8", target)
    assert pieces is not None and pieces[-1].last
    assert len(pieces) > 2 or target > path.stat().st_size // 2
    return [row for piece in pieces for row in ranges.array_piece_rows(str(path), "utf-8", piece)]


@pytest.mark.parametrize("layout", ["pretty", "one line", "compact"])
def test_json_array_pieces_read_as_the_whole_file(tmp_path, layout):
    rows = _rows(300, seed=len(layout))
    rows[7] = "a string, not an object"  # a row the reader rejects, with its reason
    rows[8] = [1, {"x": "]"}]
    path = tmp_path / "rows.json"
    if layout == "pretty":
        text = json.dumps(rows, ensure_ascii=False, indent=2)
    elif layout == "one line":
        text = "\ufeff" + json.dumps(rows, ensure_ascii=False)
    else:
        text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows) + " , ]\n"
    path.write_text(text, encoding="utf-8")
    for target in (1, 97, 1000, 1 << 20):
        _same(path, _array_rows(path, target))


def test_json_array_pieces_fail_as_the_whole_file_fails(tmp_path):
    good = json.dumps(_rows(50, seed=3), ensure_ascii=False, indent=1)
    broken = {
        "missing comma": good.replace("},\n {", "}\n {", 1),
        "missing value": good.replace("},\n {", "},,\n {", 1),
        "bad string": good[:2000] + "\x01" + good[2000:],
        "not closed": good.rstrip().rstrip("]"),
        "bad bytes": None,
    }
    for name, text in broken.items():
        path = tmp_path / f"{name}.json"
        if text is None:
            data = good.encode("utf-8")
            path.write_bytes(data[:3000] + b"\xff" + data[3000:])
        else:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as whole:
            list(read_rows(path))
        with pytest.raises(InputError) as pieces:
            _array_rows(path, 500)
        assert str(pieces.value) == str(whole.value), name


def test_what_follows_the_array_is_not_read(tmp_path):
    path = tmp_path / "after.json"
    path.write_text(json.dumps(_rows(40, seed=1), ensure_ascii=False, indent=1) + '\n{"more": "x"}, ]]', encoding="utf-8")
    _same(path, _array_rows(path, 300))


def _table_rows(path: Path, suffix: str, target: int, encoding: str = "utf-8"):
    pieces = ranges.table_pieces(path, suffix, encoding, target)
    assert pieces is not None and len(pieces) > 2
    return [row for piece in pieces for row in ranges.table_piece_rows(str(path), suffix, encoding, piece)]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_table_pieces_with_quoted_newlines_read_as_the_whole_file(tmp_path, suffix):
    import pandas as pd

    frame = pd.DataFrame([{k: str(v) for k, v in r.items() if k != "history"} for r in _rows(400, seed=5)])
    path = tmp_path / f"rows{suffix}"
    frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False, lineterminator="\r\n")
    text = path.read_text(encoding="utf-8")
    assert '\n第二行' in text  # quoted newlines, quotes and separators in cells
    path.write_text("\ufeff" + text.replace("\r\n", "\r\n\r\n", 3), encoding="utf-8")  # a BOM, blank lines
    for target in (64, 1000):
        _same(path, _table_rows(path, suffix, target))


def test_table_pieces_name_the_files_line_of_a_ragged_row(tmp_path):
    path = tmp_path / "ragged.csv"
    lines = ["instruction,output"] + [f'"问题{i}\n续",回答{i}' for i in range(200)]
    lines[150] = "多,了,一格"
    path.write_text("\n".join(lines) + "\n", encoding="gb18030")
    with pytest.raises(InputError) as whole:
        list(read_rows(path, encoding="gb18030"))
    with pytest.raises(InputError) as pieces:
        _table_rows(path, ".csv", 300, encoding="gb18030")
    assert str(pieces.value) == str(whole.value) and ":151:" in str(whole.value)  # the header is line 1


def test_tables_the_scan_cannot_prove_are_read_whole(tmp_path):
    unquoted = tmp_path / "quote_inside.csv"
    unquoted.write_text("a,b\n" + "".join(f'x{i}"y,z\n' for i in range(50)), encoding="utf-8")
    lone_cr = tmp_path / "old_mac.csv"
    lone_cr.write_bytes(b"a,b\r" + b"".join(b"1,2\r" for _ in range(50)))
    for path in (unquoted, lone_cr):
        assert ranges.table_pieces(path, ".csv", "utf-8", 16) is None, path.name
    assert ranges.table_pieces(unquoted, ".csv", "utf-16", 16) is None


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_lines_of_spaces_are_skipped_as_pandas_skips_them(tmp_path, suffix):
    """A line of spaces is no row; in a TSV a line with a tab is a row of empty cells."""
    sep = "\t" if suffix == ".tsv" else ","
    path = tmp_path / f"spaces{suffix}"
    path.write_text(f"a{sep}b\n" + "".join(f" {i}{sep}2\n   \n \t\n\t \n" for i in range(40)), encoding="utf-8")
    _same(path, _table_rows(path, suffix, 30))


def test_parquet_pieces_follow_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = _rows(500, seed=9)
    table = pa.Table.from_pylist([{"instruction": r["instruction"], "output": r["output"],
                                   "history": r.get("history") or []} for r in rows])
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=70)
    pieces = ranges.parquet_pieces(path, 100)
    assert [p.size for p in pieces] == [140, 140, 140, 80]  # whole row groups
    assert [p.first_row for p in pieces] == [1, 141, 281, 421]
    _same(path, [row for piece in pieces for row in ranges.parquet_piece_rows(str(path), piece)])
    pq.write_table(table, path, row_group_size=500)  # one large group: cut inside it
    pieces = ranges.parquet_pieces(path, 100)
    assert len(pieces) == 5
    _same(path, [row for piece in pieces for row in ranges.parquet_piece_rows(str(path), piece)])


def test_an_arrays_first_rows_are_read_from_its_start_alone(tmp_path):
    """The format is detected on the first rows: for an array, read without decoding the rest."""
    rows = _rows(3000, seed=4)
    rows[3] = 5
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    want = [(r.origin, r.data, r.error, r.raw) for r in read_rows(path, limit=200)]
    assert [(r.origin, r.data, r.error, r.raw) for r in ranges.array_head(path, "utf-8", 200)] == want
    small = tmp_path / "small.json"
    small.write_text(json.dumps(rows[:20], ensure_ascii=False), encoding="utf-8")
    assert [r.data for r in ranges.array_head(small, "utf-8", 200)] == [r.data for r in read_rows(small)]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(rows[:20], ensure_ascii=False, indent=1).replace("},", "}", 1), encoding="utf-8")
    assert ranges.array_head(broken, "utf-8", 200) is None  # read whole, which says what is wrong
