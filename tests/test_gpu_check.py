"""`make gpu-check` cannot rot between GPU loans: its --smoke mode runs the whole script here, on the CPU."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from gpu_carry import REAL_LENGTHS, WHEELS, normalize, sample_length  # noqa: E402

# The data pipeline's libraries: a build folder is made on the CPU side, so training and
# generation on the GPU machine must not need them (nor ship them).
PIPELINE_ONLY = {"jieba", "rensa", "datasketch", "ftfy", "opencc-python-reimplemented", "openpyxl", "rouge-score", "nltk"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))


def rows_of(results: dict, kind: str) -> list[dict]:
    return [r for r in results["rows"] if r["kind"] == kind]


@pytest.mark.slow
def test_smoke_trains_every_variant_and_prints_one_table(smoke):
    stdout, results = smoke
    trained = {r["run"]: r for r in rows_of(results, "train")}
    assert set(trained) == {"idata", "baseline", "liger", "idata-gc", "idata-packed"}
    for run in ("idata", "baseline", "idata-gc", "idata-packed"):
        assert trained[run]["status"] == "ok", trained[run]
        assert trained[run]["result"]["tokens"] > 0 and trained[run]["result"]["tokens_per_s"] > 0
    assert trained["idata"]["result"]["loss_path"].startswith("reply tokens")
    assert trained["baseline"]["result"]["loss_path"] == "the model's own"
    assert trained["liger"]["status"] == "skipped" and "CUDA" in trained["liger"]["note"]
    assert stdout.count("| train ") == 5 and "| eval " in stdout and "| tests " in stdout


@pytest.mark.slow
def test_smoke_compares_batched_and_single_generation(smoke):
    _, results = smoke
    (row,) = rows_of(results, "eval")
    assert row["status"] == "ok", row
    batched, big, single = row["result"]["rows"]
    assert single["batch"] == 1 and batched["batch"] > 1
    assert batched["new_tokens"] > 0 and single["new_tokens"] > 0
    assert 0 <= row["result"]["agreement"]["same"] <= row["result"]["agreement"]["of"] == single["prompts"]


@pytest.mark.slow
def test_smoke_deselects_the_gpu_tests_without_cuda(smoke):
    # --smoke hides CUDA (the CPU on any machine), so this holds on a GPU machine too
    _, results = smoke
    (row,) = rows_of(results, "tests")
    assert row["status"] == "ok"
    assert "deselected" in row["result"]["summary"] and "passed" not in row["result"]["summary"]


@pytest.mark.slow
def test_the_gpu_path_needs_only_carried_wheels_and_no_pipeline_library(smoke):
    _, results = smoke
    needed = set(results["travel"]["needed"])
    assert results["travel"]["not_carried"] == []
    assert "pydantic" in needed  # the walk finds what the device really lacks (the rows' schema)
    assert not needed & PIPELINE_ONLY
    assert {normalize(n) for n in WHEELS} >= needed


def test_lengths_follow_the_real_files_percentiles():
    rng = random.Random(0)
    lengths = sorted(sample_length(rng) for _ in range(20_000))
    for percentile, chars in REAL_LENGTHS[2:-2]:  # p10 .. p98
        drawn = lengths[int(percentile / 100 * len(lengths))]
        assert abs(drawn - chars) <= max(0.08 * chars, 4), (percentile, drawn, chars)
