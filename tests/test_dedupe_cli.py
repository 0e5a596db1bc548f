"""`idata dedupe`: kept rows in the input's own format, and a ledger that adds up."""

import csv
import json

from click.testing import CliRunner

from instruct_data.cli import cli
from tests.test_dedupe import OTHER, STUDY, edited


def write_jsonl(path, rows, bad_line=None):
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if bad_line is not None:
        lines.insert(bad_line, '{"instruction": "这一行坏了", "output": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def belle_rows():
    rows = [{"instruction": "怎样才能提高学习效率？", "input": "", "output": text} for text in STUDY]
    rows += [{"instruction": "请写一段话。", "input": f"第{i}段", "output": text} for i, text in enumerate(OTHER)]
    rows.append({"instruction": "怎样才能提高学习效率?", "input": "", "output": STUDY[0]})  # exact copy
    rows.append({"instruction": "怎样才能提高学习效率？", "input": "", "output": edited(STUDY[3])})  # near copy
    rows.append({"instruction": "好", "input": "", "output": "嗯"})  # too short to shingle
    rows.append({"instruction": "好！", "input": "", "output": "嗯。"})  # ... and its exact copy
    return rows


def run(*args):
    result = CliRunner().invoke(cli, ["dedupe", *map(str, args)])
    return result


def test_dedupe_writes_kept_rows_unchanged_and_a_ledger_that_adds_up(tmp_path):
    source = tmp_path / "belle.jsonl"
    rows = belle_rows()
    write_jsonl(source, rows, bad_line=3)
    out = tmp_path / "out"
    result = run(source, "--out", out, "--workers", "2")
    assert result.exit_code == 0, result.output

    kept = read_jsonl(out / "belle.jsonl")
    duplicates = read_jsonl(out / "duplicates.jsonl")
    rejects = read_jsonl(out / "rejects.jsonl")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))

    assert kept == [row for i, row in enumerate(rows) if i not in (len(rows) - 4, len(rows) - 3, len(rows) - 1)]
    assert [(d["id"], d["duplicate_of"], d["method"]) for d in duplicates] == [
        ("belle:9", "belle:1", "exact"),  # ids are file lines: the bad line 4 shifts every later row
        ("belle:10", "belle:5", "near"),
        ("belle:12", "belle:11", "exact"),
    ]
    assert duplicates[1]["raw"] == rows[-3] and duplicates[1]["cluster"] == "belle:5"
    assert duplicates[1]["origin"].endswith("belle.jsonl:10")
    assert 0.6 <= duplicates[1]["similarity"] < 1
    assert len(rejects) == 1 and rejects[0]["origin"].endswith("belle.jsonl:4")
    totals = manifest["counts"]["totals"]
    assert totals == {"read": 12, "written": 8, "rejected": 1, "removed": 3}
    assert manifest["counts"]["balanced"]
    assert manifest["counts"]["duplicates_by_method"] == {"exact": 2, "near": 1}
    assert manifest["parameters"]["threshold"] == 0.6 and manifest["parameters"]["key"] == "both"


def test_result_does_not_depend_on_worker_count(tmp_path):
    source = tmp_path / "belle.jsonl"
    write_jsonl(source, belle_rows())
    for workers in (1, 2):
        assert run(source, "--out", tmp_path / f"w{workers}", "--workers", workers).exit_code == 0
    for name in ("belle.jsonl", "duplicates.jsonl"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()


def test_against_removes_benchmark_questions_across_files(tmp_path):
    mine = tmp_path / "mine.jsonl"
    write_jsonl(mine, [
        {"instruction": "请根据材料回答：长江发源于哪里，全长约多少公里，最终在哪里注入大海呢？", "input": "", "output": "唐古拉山脉。"},
        {"instruction": "长江流域有哪些重要的城市？", "input": "", "output": "上海、南京、武汉、重庆等。"},
    ])
    bench = tmp_path / "bench.jsonl"
    write_jsonl(bench, [{"question": "请根据材料回答：长江发源于哪里，全长大约多少公里，最后在哪里注入大海？",
                         "std_answer": "唐古拉山脉；约六千三百公里；东海。"}])
    out = tmp_path / "out"
    result = run(mine, "--against", bench, "--key", "reply", "--out", out)
    assert result.exit_code == 0, result.output
    duplicates = read_jsonl(out / "duplicates.jsonl")
    assert [(d["id"], d["method"]) for d in duplicates] == [("mine:1", "contamination")]
    assert duplicates[0]["duplicate_of"].startswith("against:bench")
    assert [r["instruction"] for r in read_jsonl(out / "mine.jsonl")] == ["长江流域有哪些重要的城市？"]


def test_against_reads_plain_alpaca_rows_and_dialogues_as_benchmark_questions(tmp_path):
    # A benchmark in the commonest format: alpaca rows (plain, and one with history). The row
    # path reads those on its fast paths; `idata build --against` found them, `idata dedupe
    # --against` once skipped every one of them.
    question = "请根据材料回答：长江发源于哪里，全长约多少公里，最终在哪里注入大海呢？"
    follow_up = "黄河发源于哪里，流经哪些省份，最后在哪里注入渤海呢？请逐一说明。"
    mine = tmp_path / "mine.jsonl"
    write_jsonl(mine, [
        {"instruction": question, "input": "", "output": "唐古拉山脉。"},
        {"instruction": "长江流域有哪些重要的城市？", "input": "", "output": "上海、南京、武汉、重庆等。"},
        {"instruction": follow_up, "input": "", "output": "巴颜喀拉山脉。"},
    ])
    bench = tmp_path / "bench.jsonl"
    write_jsonl(bench, [
        {"instruction": question, "input": "", "output": "唐古拉山脉；约六千三百公里；东海。"},
        {"instruction": follow_up, "input": "", "output": "巴颜喀拉山脉，九个省区，渤海。",
         "history": [["你好", "你好！有什么可以帮你？"]]},
    ])
    out = tmp_path / "out"
    result = run(mine, "--against", bench, "--key", "prompt", "--out", out)
    assert result.exit_code == 0, result.output
    duplicates = read_jsonl(out / "duplicates.jsonl")
    assert [(d["id"], d["method"]) for d in duplicates] == [("mine:1", "contamination"), ("mine:3", "contamination")]
    assert [r["instruction"] for r in read_jsonl(out / "mine.jsonl")] == ["长江流域有哪些重要的城市？"]


def test_csv_input_gives_csv_output_and_sources_are_deduplicated_together(tmp_path):
    sheet = tmp_path / "sheet.csv"
    with open(sheet, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["instruction", "output"])
        writer.writerow(["怎样才能提高学习效率？", STUDY[1]])
        writer.writerow(["长江有多长？", OTHER[1]])
    other = tmp_path / "more.jsonl"
    write_jsonl(other, [{"instruction": "怎样才能提高学习效率？", "output": STUDY[1]}])
    out = tmp_path / "out"
    result = run(sheet, other, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["counts"]["per_source"]["more"] == {"read": 1, "written": 0, "rejected": 0, "removed": 1}
    with open(out / "sheet.csv", encoding="utf-8") as fh:
        assert [row["instruction"] for row in csv.DictReader(fh)] == ["怎样才能提高学习效率？", "长江有多长？"]
    assert read_jsonl(out / "more.jsonl") == []


def test_inputs_that_share_a_name_give_visible_output_files(tmp_path, monkeypatch):
    """qa.jsonl and qa.csv in the current folder were written back as `._qa.jsonl` and
    `._qa#2.csv`: hidden from `ls`, and the pattern tools skip as macOS AppleDouble files."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "qa.jsonl", [{"instruction": "怎样才能提高学习效率？", "output": STUDY[1]}])
    (tmp_path / "qa.csv").write_text("instruction,output\n长江有多长？,约6300公里。\n", encoding="utf-8")
    result = run("qa.jsonl", "qa.csv", "--out", "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix != ".json" and "dup" not in p.name
                  and "rejects" not in p.name) == ["qa#2.csv", "qa.jsonl"]
    assert read_jsonl(tmp_path / "out" / "qa.jsonl")[0]["instruction"] == "怎样才能提高学习效率？"


def test_parquet_kept_rows_keep_their_column_types_and_nulls(tmp_path):
    """Kept parquet rows went back through pandas: an int64 column with a null came back as
    float64 (10000000200000001 as 1.00000002e+16, 42 as 42.0), and a null in a float column
    no format reads failed the run ("Could not convert '' ... to double"), writing nothing."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    ints = pa.table({"instruction": ["100000001的平方是多少", "问二", "100000001的平方是多少", "问四"],
                     "output": pa.array([10000000200000001, None, 10000000200000001, 42], type=pa.int64()),
                     "score": [1.5, 2.0, 1.5, None]})
    pq.write_table(ints, tmp_path / "ints.parquet")
    pd.DataFrame({"instruction": ["问一", "问二", "问一"], "output": ["答一", "答二", "答一"],
                  "score": [1.5, None, 1.5]}).to_parquet(tmp_path / "score.parquet")
    out = tmp_path / "out"
    result = run(tmp_path / "ints.parquet", tmp_path / "score.parquet", "--out", out, "--max-reject-rate", "1",
                 "--json")
    assert result.exit_code == 0, result.output
    written = pq.read_table(out / "ints.parquet")
    assert written.schema == ints.schema
    assert written.to_pylist() == [
        {"instruction": "100000001的平方是多少", "output": 10000000200000001, "score": 1.5},
        {"instruction": "问四", "output": 42, "score": None}]
    assert pq.read_schema(out / "score.parquet") == pq.read_schema(tmp_path / "score.parquet")
    frame = pd.read_parquet(out / "score.parquet")
    assert frame["score"].dtype == "float64" and frame["score"].isna().tolist() == [False, True]
    assert frame["output"].tolist() == ["答一", "答二"]
    manifest = json.loads(result.output)
    assert manifest["counts"]["per_source"]["ints"] == {"read": 4, "written": 2, "rejected": 1, "removed": 1}
    assert manifest["counts"]["per_source"]["score"] == {"read": 3, "written": 2, "rejected": 0, "removed": 1}


def test_csv_written_back_keeps_its_byte_order_mark_and_line_endings(tmp_path):
    """A CSV saved by Excel (a UTF-8 BOM, CRLF) came back without the BOM, which Excel needs to
    read the Chinese as UTF-8, and with LF line endings."""
    excel = tmp_path / "excel.csv"
    excel.write_bytes("\ufeff问题,答案\r\n你好吗,我很好\r\n你好吗,我很好\r\n今天星期几,星期一\r\n".encode("utf-8"))
    plain = tmp_path / "plain.tsv"
    plain.write_bytes("问题\t答案\n你好吗\t我很好\n长江有多长\t约6300公里\n".encode("utf-8"))
    out = tmp_path / "out"
    result = run(excel, plain, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "excel.csv").read_bytes() == "\ufeff问题,答案\r\n你好吗,我很好\r\n今天星期几,星期一\r\n".encode("utf-8")
    assert (out / "plain.tsv").read_bytes() == "问题\t答案\n长江有多长\t约6300公里\n".encode("utf-8")


def test_missing_input_fails_with_one_line_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["dedupe", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out")],
                                standalone_mode=True)
    assert result.exit_code != 0
    assert not (tmp_path / "out").exists()


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["dedupe", "--help"])
    assert result.exit_code == 0 and "idata dedupe" in result.output and "--against" in result.output


def test_blank_lines_bom_gzip_and_undecodable_lines_keep_rows_aligned(tmp_path):
    import gzip

    rows = belle_rows()
    lines = [json.dumps(row, ensure_ascii=False).encode("utf-8") for row in rows]
    lines.insert(2, b"")  # a blank line is not a row
    lines.insert(4, "\u3000 ".encode("utf-8"))  # nor is one of ideographic spaces
    lines.insert(6, b'{"instruction": "\xff\xfe", "output": "x"}')  # undecodable: a reject
    payload = b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n"
    source = tmp_path / "belle.jsonl.gz"
    source.write_bytes(gzip.compress(payload))
    out = tmp_path / "out"
    result = run(source, "--out", out, "--workers", "2")
    assert result.exit_code == 0, result.output
    kept = read_jsonl(out / "belle.jsonl")
    assert kept == [row for i, row in enumerate(rows) if i not in (len(rows) - 4, len(rows) - 3, len(rows) - 1)]
    assert not (out / "belle.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    duplicates = read_jsonl(out / "duplicates.jsonl")
    assert [d["raw"] for d in duplicates] == [rows[-4], rows[-3], rows[-1]]
    assert [d["origin"].rsplit(":", 1)[1] for d in duplicates] == ["11", "12", "14"]  # file lines
    assert len(read_jsonl(out / "rejects.jsonl")) == 1
    totals = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["counts"]["totals"]
    assert totals == {"read": 12, "written": 8, "rejected": 1, "removed": 3}


def test_longest_reply_keeps_the_same_rows_when_the_file_is_shuffled(tmp_path):
    import random

    rows = belle_rows() + [{"instruction": "怎样才能提高学习效率？", "input": "", "output": STUDY[0] + "坚持就是胜利。"}]
    kept_sets = []
    for seed in (0, 1, 2):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        source = tmp_path / f"s{seed}" / "rows.jsonl"
        source.parent.mkdir()
        write_jsonl(source, shuffled)
        result = run(source, "--policy", "longest-reply", "--out", tmp_path / f"out{seed}")
        assert result.exit_code == 0, result.output
        kept_sets.append(sorted(json.dumps(r, ensure_ascii=False) for r in read_jsonl(tmp_path / f"out{seed}" / "rows.jsonl")))
    assert kept_sets[0] == kept_sets[1] == kept_sets[2]
    assert json.dumps(rows[-1], ensure_ascii=False) in kept_sets[0]  # the longest copy survives


def test_byte_ranges_cover_every_line_once_with_its_number(tmp_path):
    from instruct_data.rowpath import chunk_rows, file_chunks, open_file

    lines = [f'{{"n": {i}, "t": "{"字" * (i % 7)}"}}'.encode("utf-8") for i in range(200)]
    for ending in (b"\n", b""):  # with and without a newline at the end of the file
        path = tmp_path / "lines.jsonl"
        path.write_bytes(b"\n".join(lines) + ending)
        spec = open_file(path, fmt="alpaca")
        got = [row for chunk in file_chunks(spec, block_bytes=64) for row in chunk_rows(chunk)]
        assert [row.origin.line for row in got] == list(range(1, 201))
        assert [row.data["n"] for row in got] == list(range(200))
