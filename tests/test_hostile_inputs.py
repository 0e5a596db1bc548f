"""Inputs a new user produced when trying the README, and what each must give."""

from __future__ import annotations

import json
from pathlib import Path

from entrypoint import assert_one_line_error, idata

SAMPLE = Path(__file__).resolve().parent.parent / "instruct_data" / "data" / "sample" / "collected.jsonl"


def lines(n: int, start: int = 0) -> str:
    return "".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[start:start + n])


def test_files_of_one_name_in_two_folders_keep_every_row(tmp_path):
    """raw/a/part.jsonl and raw/b/part.jsonl: ids told apart by folder, no row lost as a repeated id."""
    for folder, start in (("a", 0), ("b", 20)):
        (tmp_path / "raw" / folder).mkdir(parents=True)
        (tmp_path / "raw" / folder / "part.jsonl").write_text(lines(20, start), encoding="utf-8")
    assert idata("build", tmp_path / "raw", "--heldout", "0", "--no-near", "--out", tmp_path / "B").returncode == 0
    manifest = json.loads((tmp_path / "B" / "manifest.json").read_text())
    assert "read/duplicate_id" not in manifest["counts"]["rejects_by_reason"]
    ids = [json.loads(line)["id"] for line in (tmp_path / "B" / "conversations.jsonl").read_text().splitlines()]
    assert any(i.startswith("raw/a/part:") for i in ids) and any(i.startswith("raw/b/part:") for i in ids)
    (tmp_path / "x").mkdir()
    (tmp_path / "mine.jsonl").write_text(lines(20), encoding="utf-8")
    (tmp_path / "x" / "mine.jsonl").write_text(lines(20, 20), encoding="utf-8")
    result = idata("build", "mine.jsonl", "x/mine.jsonl", "--heldout", "0", "--out", "C", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sources = json.loads((tmp_path / "C" / "manifest.json").read_text())["counts"]["per_source"]
    assert sorted(sources) == [f"{tmp_path.name}/mine", "x/mine"] and all(s["read"] == 20 for s in sources.values())


def test_a_recipe_whose_source_names_give_one_id_twice_rejects_the_later_rows_as_duplicate_id(tmp_path):
    """Ids are positions, unique within a source; across a recipe's sources they can still meet:
    a source named `a/b`, and a source `a` of two files whose first is b.jsonl (ids `a/b:LINE`).
    The later rows are rejects (`read/duplicate_id`, naming the id), not rows lost silently."""
    rows = [json.dumps({"instruction": f"问题{n}", "output": f"回答{n}"}, ensure_ascii=False) + "\n" for n in range(9)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_text("".join(rows[:3]), encoding="utf-8")
    (tmp_path / "d" / "c.jsonl").write_text("".join(rows[3:6]), encoding="utf-8")
    (tmp_path / "one.jsonl").write_text("".join(rows[6:]), encoding="utf-8")
    (tmp_path / "mix.yaml").write_text("sources:\n  - {name: a/b, files: [one.jsonl]}\n"
                                       "  - {name: a, files: [d/b.jsonl, d/c.jsonl]}\n"
                                       "split: {heldout: 0}\n", encoding="utf-8")
    result = idata("build", "mix.yaml", "--no-near", "--out", "B", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "B" / "manifest.json").read_text())
    assert manifest["counts"]["rejects_by_reason"] == {"read/duplicate_id": {"a": 3}}
    rejects = [json.loads(line) for line in (tmp_path / "B" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["origin"].rsplit("/", 2)[-2:]) for r in rejects] == [
        (f"a/b:{n}", ["d", f"b.jsonl:{n}"]) for n in (1, 2, 3)]
    assert all("already used by an earlier row" in r["detail"] for r in rejects)
    trained = [json.loads(line)["target"] for line in (tmp_path / "B" / "train.jsonl").read_text().splitlines()]
    assert sorted(trained) == sorted(f"回答{n}" for n in (3, 4, 5, 6, 7, 8))


def test_a_csv_row_with_an_extra_cell_fails_even_as_the_first_row(tmp_path):
    """pandas reads a first row longer than the header as an index and shifts every cell."""
    first = tmp_path / "first.csv"
    first.write_text("问题,答案\n长城,很长,很长\n熊猫,吃竹子\n", encoding="utf-8")
    assert_one_line_error(idata("convert", first, "--out", tmp_path / "o.jsonl"), 2, "first.csv:2", "expected 2 cells, found 3")
    later = tmp_path / "later.csv"
    later.write_text("问题,答案\n长城,很长\n熊猫,吃竹子,多\n", encoding="utf-8")
    assert_one_line_error(idata("convert", later, "--out", tmp_path / "p.jsonl"), 2, "later.csv:3", "expected 2 cells")


def test_one_pretty_printed_object_is_named_as_such(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"instruction": "你好", "output": "好"}, ensure_ascii=False, indent=2), encoding="utf-8")
    assert_one_line_error(idata("validate", path), 2, "one.json:1", "one JSON object", "JSON lines")


def test_a_line_cut_short_names_its_own_column_and_a_cut_character_is_not_blamed_on_the_encoding(tmp_path):
    cut = tmp_path / "cut.jsonl"
    cut.write_text('{"instruction": "好", "output": "行"}\n{"instruction": "坏行", "output": ', encoding="utf-8")
    result = idata("validate", cut)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "cut.jsonl:2" in said and "(column 33)" in said
    mid = tmp_path / "mid.jsonl"
    mid.write_bytes('{"instruction": "好", "output": "行"}\n{"instruction": "坏行", "output": "中'.encode()[:-1])
    result = idata("validate", mid)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "mid.jsonl:2" in said
    assert "cut short" in said and "gb18030" not in said


def test_row_progress_off_a_terminal_prints_a_line_every_so_often(monkeypatch, capsys):
    """build, convert, dedupe and to-multiturn in a log (CI, nohup): a plain line at least every
    30 s (here every 0 s), never a silent run."""
    from instruct_data.cli import common

    monkeypatch.setattr(common, "LOG_EVERY_S", 0.0)
    with common.row_progress("reading", total=3000) as advance:
        for _ in range(3000):
            advance()
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith("reading: 1,000 of 3,000 rows") and said[-1].startswith("reading: 3,000 of 3,000 rows")
    monkeypatch.setattr(common, "LOG_EVERY_S", 30.0)
    with common.row_progress("reading") as advance:
        for _ in range(3000):
            advance()
    assert capsys.readouterr().err == ""  # a step shorter than 30 s says nothing
