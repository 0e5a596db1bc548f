"""`idata convert` end to end through the CLI: outputs, ledger, and every way a run can fail."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.convert import convert
from instruct_data.ledger import source_names

GOOD = [
    {"instruction": "把“你好”翻译成英文。", "input": "", "output": "Hello."},
    {"instruction": "三角形内角和是多少度？", "input": "", "output": "180 度。", "category": "math"},
    {"instruction": "给这句话换个说法。", "input": "他跑得很快。", "output": "他的速度很快。"},
]
BAD = {"instruction": "写一首关于雪的诗。", "input": "", "output": ""}


def write_jsonl(path, rows, extra=b""):
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8") + extra)
    return path


def run(*args):
    return CliRunner().invoke(cli, ["convert", *map(str, args)])


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_convert_writes_records_rejects_and_a_balanced_manifest(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD[:2] + [BAD] + GOOD[2:], extra=b"{oops\n")
    out = tmp_path / "out" / "train.jsonl"
    result = run(src, "--out", out)
    assert result.exit_code == 0, result.output
    records = lines(out)
    assert records[0] == {"context": "Instruction: 把“你好”翻译成英文。\nAnswer: ", "target": "Hello.",
                          "id": "mine:1", "source": "mine"}
    assert records[1]["category"] == "math"
    assert records[2]["context"] == "Instruction: 给这句话换个说法。\nInput: 他跑得很快。\nAnswer: "
    assert [r["id"] for r in records] == ["mine:1", "mine:2", "mine:4"]  # ids are positions: stable
    rejects = lines(out.parent / "train.rejects.jsonl")
    assert [(r["stage"], r["reason"], r["origin"]) for r in rejects] == [
        ("read", "empty_reply", f"{src}:3"), ("read", "unparseable", f"{src}:5")]
    assert rejects[0]["raw"] == BAD and rejects[1]["raw"] == "{oops"
    manifest = json.loads((out.parent / "train.manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["totals"] == {"read": 5, "written": 3, "rejected": 2, "removed": 0}
    assert manifest["counts"]["per_source"]["mine"] == manifest["counts"]["totals"]
    assert manifest["counts"]["balanced"] is True and manifest["check"] == "read = written + rejected + removed"
    assert manifest["counts"]["rejects_by_reason"] == {"read/empty_reply": {"mine": 1}, "read/unparseable": {"mine": 1}}
    assert manifest["inputs"][0]["format"] == "alpaca" and len(manifest["inputs"][0]["sha256"]) == 64
    assert [o["path"] for o in manifest["outputs"]] == ["train.jsonl", "train.rejects.jsonl"]
    assert "wrote" in result.output and "empty_reply" in result.output


def test_same_input_gives_byte_identical_outputs(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD + [BAD])
    for name in ("a", "b"):
        assert run(src, "-o", tmp_path / name / "train.jsonl").exit_code == 0
    for name in ("train.jsonl", "train.rejects.jsonl", "train.manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_several_sources_are_counted_apart(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    write_jsonl(tmp_path / "x" / "data.jsonl", GOOD)
    write_jsonl(tmp_path / "y" / "data.jsonl", GOOD[:1] + [BAD])
    pd.DataFrame(GOOD).to_excel(tmp_path / "sheet.xlsx", index=False)
    manifest = convert([tmp_path / "x", tmp_path / "y" / "data.jsonl", tmp_path / "sheet.xlsx"],
                       tmp_path / "out" / "train.jsonl")
    per_source = manifest["counts"]["per_source"]
    assert per_source == {
        "x/data": {"read": 3, "written": 3, "rejected": 0, "removed": 0},
        "y/data": {"read": 2, "written": 1, "rejected": 1, "removed": 0},
        "sheet": {"read": 3, "written": 3, "rejected": 0, "removed": 0},
    }
    ids = [r["id"] for r in lines(tmp_path / "out" / "train.jsonl")]
    assert len(ids) == len(set(ids)) and "sheet:3" in ids and "y/data:1" in ids
    assert source_names([tmp_path / "a.jsonl", tmp_path / "a.jsonl"]) == [f"{tmp_path.name}/a", f"{tmp_path.name}/a#2"]


def test_map_and_template_options(tmp_path):
    src = tmp_path / "问答.csv"
    pd.DataFrame({"问": ["长江有多长？"], "答": ["约 6300 公里。"]}).to_csv(src, index=False)
    out = tmp_path / "train.jsonl"
    result = run(src, "--map", "instruction=问,output=答", "--template", "chatglm", "-o", out)
    assert result.exit_code == 0, result.output
    assert lines(out)[0]["context"] == "[Round 1]\n问：长江有多长？\n答："
    manifest = json.loads((tmp_path / "train.manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"][0]["map"] == {"instruction": "问", "output": "答"}
    assert manifest["parameters"]["template"] == "chatglm"


def test_a_map_naming_a_column_the_file_lacks_says_so(tmp_path):
    src = tmp_path / "问答.csv"
    pd.DataFrame({"问题": ["长江有多长？"], "答案": ["约 6300 公里。"], "分类": ["地理"]}).to_csv(src, index=False)
    result = run(src, "--map", "instruction=提问,output=答案", "-o", tmp_path / "train.jsonl")
    assert result.exit_code == 2
    assert result.output.strip() == (f"error: {src}:1: --map instruction=提问: no such column in this file "
                                     "(its columns: 问题, 答案, 分类)")


def test_a_csv_split_by_semicolons_says_so(tmp_path):
    src = tmp_path / "export.csv"
    src.write_text("instruction;output\n长江有多长？;约 6300 公里。\n", encoding="utf-8")
    result = run(src, "-o", tmp_path / "train.jsonl")
    assert result.exit_code == 2
    assert "the columns look separated by ';'" in result.output and f"{src}:1: unknown format" in result.output


def test_a_json_object_holding_its_rows_under_a_key_says_where_they_are(tmp_path):
    """{"version": ..., "data": [rows]}, as many published sets are shipped, on one line or
    pretty-printed: the rows are named and how to take them out, where it said 'no known fields
    (found: version, data)' or 'write a JSON array of objects'."""
    rows = [{"instruction": "长江有多长？", "output": "约 6300 公里。"}, {"instruction": "黄河呢？", "output": "约 5464 公里。"}]
    for indent, said in ((None, f"unknown format: the file is one object: its 'data' holds a list of 2 rows (alpaca "
                                "format)"),
                         (2, "holds one JSON object, not rows: its 'data' holds a list of 2 objects")):
        src = tmp_path / "set.json"
        src.write_text(json.dumps({"version": "1.0", "data": rows}, ensure_ascii=False, indent=indent), encoding="utf-8")
        result = run(src, "-o", tmp_path / "train.jsonl")
        assert result.exit_code == 2
        assert result.output.strip() == (f"error: {src}:1: {said}; idata reads a file of rows, a JSON array or "
                                         "JSON lines: take them out, e.g. jq -c '.[\"data\"][]' set.json > rows.jsonl")


def test_json_flag_prints_the_manifest(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    result = CliRunner().invoke(cli, ["convert", str(src), "-o", str(tmp_path / "t.jsonl"), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["counts"]["totals"]["written"] == 3


def assert_failed_cleanly(result, out, message, code=2):
    assert result.exit_code == code, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.parent.exists() or list(out.parent.iterdir()) == [], list(out.parent.iterdir())


def test_missing_file_fails_before_writing(tmp_path):
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(tmp_path / "nope.jsonl", "-o", out), out, f"{tmp_path / 'nope.jsonl'}: no such file")


def test_unknown_format_name_and_unknown_keys(tmp_path):
    src = write_jsonl(tmp_path / "odd.jsonl", [{"foo": "1", "bar": "2"}])
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(src, "--format", "vicuna", "-o", out), out, "unknown format 'vicuna'")
    assert_failed_cleanly(run(src, "-o", out), out, f"{src}:1: unknown format: no known fields (found: foo, bar)")


def test_undecodable_file_fails_with_file_line(tmp_path):
    src = tmp_path / "gbk.jsonl"
    src.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in GOOD).encode("gbk"))
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(src, "-o", out), out, f"{src}:1: nothing in this file parses: undecodable bytes")
    assert run(src, "--encoding", "gb18030", "-o", out).exit_code == 0


def test_file_where_nothing_parses(tmp_path):
    src = tmp_path / "notjson.jsonl"
    src.write_text("这不是 JSON\n也不是\n", encoding="utf-8")
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(src, "-o", out), out, f"{src}:1: nothing in this file parses: invalid JSON")


def test_forced_wrong_format_trips_the_reject_rate(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD)
    out = tmp_path / "out" / "train.jsonl"
    result = run(src, "--format", "messages", "-o", out)
    assert_failed_cleanly(result, out, f"{src}:1: wrong_type: 'messages' should be a non-empty list", code=3)
    assert "3 of 3 rows of mine rejected (100% > 50%); check --format and --map" in result.output


def test_max_reject_rate(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD[:1] + [BAD, BAD])
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(src, "-o", out), out, "2 of 3 rows of mine rejected (67% > 50%)", code=3)
    assert run(src, "--max-reject-rate", "0.7", "-o", out).exit_code == 0
    assert len(lines(out)) == 1


def test_strict_fails_on_the_first_bad_row(tmp_path):
    src = write_jsonl(tmp_path / "mine.jsonl", GOOD + [BAD] + GOOD)
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(src, "--strict", "-o", out), out,
                          f"{src}:4: empty_reply: 'output' is empty (--strict)", code=3)


def test_a_failed_run_leaves_an_earlier_output_untouched(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    out = tmp_path / "out" / "train.jsonl"
    assert run(good, "-o", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    bad = write_jsonl(tmp_path / "bad.jsonl", [BAD, BAD, GOOD[0]])
    result = run(good, bad, "-o", out)  # fails on the second file, after the first was converted
    assert result.exit_code == 3
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before  # no temp files, nothing changed


def test_a_later_bad_file_fails_the_whole_run_before_output(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    out = tmp_path / "out" / "train.jsonl"
    assert_failed_cleanly(run(good, tmp_path / "missing.csv", "-o", out), out, "missing.csv: no such file")


def test_rerun_into_the_input_folder_does_not_read_its_own_output(tmp_path):
    write_jsonl(tmp_path / "mine.jsonl", GOOD + [BAD])
    for _ in range(2):
        manifest = convert([tmp_path], tmp_path / "train.jsonl")
        assert [i["source"] for i in manifest["inputs"]] == ["mine"]
        assert manifest["counts"]["totals"]["read"] == 4


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["validate", "--help"]])
def test_help_has_an_example(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Example" in result.output


def test_an_output_name_with_dots_keeps_its_ledger_and_its_guard_together(tmp_path):
    """`--out train.zh.jsonl`: the ledger is train.zh.rejects.jsonl / train.zh.manifest.json, and
    the guard reads those (it read train.manifest.json, so a second run refused its own output
    and a user's train.zh.rejects.jsonl was overwritten unchecked)."""
    from instruct_data.training.data import resolve_source

    src = write_jsonl(tmp_path / "mine.jsonl", GOOD + [BAD])
    out = tmp_path / "train.zh.jsonl"
    for _ in range(2):  # the second run replaces the first's outputs
        result = run(src, "-o", out, "--template", "chatml")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.jsonl", "train.zh.jsonl", "train.zh.manifest.json",
                                                           "train.zh.rejects.jsonl"]
    assert resolve_source(str(out), None, None).template.name == "chatml"  # training finds the recorded template

    other = tmp_path / "other.v2.jsonl"
    (tmp_path / "other.v2.rejects.jsonl").write_text("mine, not idata's\n", encoding="utf-8")
    result = run(src, "-o", other)
    assert result.exit_code == 1 and "other.v2.rejects.jsonl exists and was not written by idata" in result.output
    assert (tmp_path / "other.v2.rejects.jsonl").read_text(encoding="utf-8") == "mine, not idata's\n"
    assert not other.exists()
