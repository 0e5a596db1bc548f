"""benchmarks/bench_clean_quality.py: its arithmetic on a small labeled fixture (runs anywhere),
its behaviour without the public data, and a run on real labeled rows where they are present."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_clean_quality.py"
FIXTURE = ROOT / "tests" / "fixtures" / "clean_quality"  # mini.json: 8 rows, labels.jsonl: their labels
SHARED = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "clean_quality"))
import bench_clean_quality as bench  # noqa: E402
from assemble import load, split_of  # noqa: E402


def run_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def fixture_rows():
    return load(FIXTURE, files=[FIXTURE / "labels.jsonl"]).rows


def test_wilson_interval_matches_the_textbook_values():
    # 8 of 10: centre (0.8 + z²/20) / (1 + z²/10) = 0.717, half-width 0.227, so [0.490, 0.943]
    assert bench.wilson(8, 10) == (0.49, 0.943)
    assert bench.wilson(0, 5)[0] == 0.0 and bench.wilson(5, 5)[1] == 1.0
    assert bench.wilson(0, 0) is None
    low, high = bench.wilson(95, 100)
    assert low < 0.95 < high and high < 0.99


def test_precision_and_recall_count_the_right_rows():
    fired = [True, True, False, True, False]
    drop = [True, False, True, True, False]
    reason_rows = [True, False, True, False, False]  # rows labeled drop for this rule's reason
    result = bench.score(fired, drop, reason_rows)
    assert (result["fired"], result["correct"]) == (3, 2)
    assert result["precision"]["value"] == round(2 / 3, 3) and result["precision"]["n"] == 3
    assert (result["recall"]["hits"], result["recall"]["n"]) == (1, 2)


def test_per_source_kept_garbage_and_caught_dialogue_turns_on_the_fixture():
    rows = fixture_rows()
    assert [r.label for r in rows].count("drop") == 3 and len(rows) == 8
    # verdicts as a cleaner would give them: row 3 dropped, row 7 cut (not labeled drop), others kept
    verdicts = [{"fired": i in (2, 6), "caught": i == 2, "kept_whole": i not in (2, 6), "rule": "x"}
                for i in range(8)]
    whole = bench.whole(rows, verdicts)
    assert (whole["fired"], whole["correct"]) == (2, 1)
    assert (whole["recall"]["hits"], whole["recall"]["n"]) == (1, 3)
    assert whole["missed_by_reason"] == {"missing_input": 1, "wrong_answer": 1}
    (source,) = bench.per_source(rows, verdicts)
    assert source["source"] == "mini.json" and source["rows"] == 8 and source["labeled_drop"] == 3
    garbage = bench.kept_garbage(rows, verdicts)
    # six rows were drawn at random; all six kept whole; two of them are labeled drop
    assert (garbage["hits"], garbage["n"], garbage["random_rows"]) == (2, 6, 6)
    assert garbage["by_reason"] == {"missing_input": 1, "wrong_answer": 1}


def test_facts_changed_names_numbers_code_and_layout():
    assert bench.facts("共 17636553792 元", "共 [PHONE] 元") == ["numbers"]
    assert bench.facts("```\nif x:\n    y()\n```", "```\nif x:\n y()\n```") == ["code", "layout"]
    assert bench.facts("P      |  Q", "P | Q") == ["layout"]
    assert bench.facts("答：\n  3 2\n× 4\n———\n128", "答：\n3 2\n× 4\n———\n128") == ["layout"]
    assert bench.facts("好的。  \n\n\n下一段\n", "好的。\n\n下一段") == ["whitespace"]
    assert bench.facts("a\u200bb", "ab") == ["other"]


def test_the_whole_report_on_the_fixture_is_consistent():
    done = run_bench("--labels", str(FIXTURE / "labels.jsonl"), "--data", str(FIXTURE), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 8 and report["labeled_drop"] == 3 and report["skipped_sources"] == []
    for rule in report["rules"]:
        p = rule["precision"]
        assert rule["correct"] <= rule["fired"] and p["n"] == rule["fired"]
        if p["n"]:
            assert p["value"] == round(rule["correct"] / rule["fired"], 3) and p["ci95"][0] <= p["value"] <= p["ci95"][1]
        assert rule["below_bar"] == (rule["default_on"] and (rule["fired"] < 20 or (p["value"] or 1) < 0.95))
    unk = next(r for r in report["rules"] if r["rule"] == "unk_tokens")
    assert (unk["fired"], unk["correct"], unk["recall"]["hits"], unk["recall"]["n"]) == (1, 1, 1, 1)
    assert sum(s["rows"] for s in report["by_source"]) == 8
    assert report["kept_garbage"]["random_rows"] == 6


def test_without_the_public_data_every_source_is_skipped_with_its_reason(tmp_path):
    done = run_bench("--data", str(tmp_path / "no-data"), "--mirrors", str(tmp_path / "no-mirrors"))
    assert done.returncode == 0, done.stderr
    assert "No labeled row could be read" in done.stdout
    assert "skipped belle_eval_set" in done.stdout and "no clone of LianjiaTech/BELLE" in done.stdout
    assert "skipped belle_school_math_dev1K.jsonl" in done.stdout and "not found" in done.stdout
    report = json.loads(run_bench("--data", str(tmp_path), "--mirrors", str(tmp_path), "--json").stdout)
    assert report["rows"] == 0 and {s["source"] for s in report["skipped_sources"]} >= {"medical_im_table"}


def test_every_label_sits_in_its_split():
    for name, split in (("test.jsonl", "test"), ("dev.jsonl", "dev")):
        path = ROOT / "benchmarks" / "clean_quality" / name
        if not path.exists():
            continue
        legacy = {(json.loads(line)["file"], json.loads(line).get("row", json.loads(line).get("line")))
                  for line in (ROOT / "benchmarks" / "clean_quality" / "labels.jsonl").read_text().splitlines()}
        for line in path.read_text(encoding="utf-8").splitlines():
            label = json.loads(line)
            assert split_of(label["source"], label["position"], legacy) == split, line


@pytest.mark.skipif(not SHARED.is_dir(), reason="the public files in ../shared/data are not beside this clone")
def test_quality_benchmark_runs_on_a_handful_of_labeled_rows():
    done = run_bench("--split", "all", "--json", "--limit", "40")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert 0 < report["rows"] <= 40
    assert {r["rule"] for r in report["rules"]} >= {"ai_identity", "chinese_share", "truncated"}
    assert sum(s["rows"] for s in report["by_source"]) == report["rows"]
    assert 0 <= report["default"]["precision"]["value"] <= 1
    for skipped in report["skipped_sources"]:
        assert skipped["why"]
