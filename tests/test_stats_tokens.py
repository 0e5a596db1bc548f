"""`idata stats BUILD --tokenizer M --max-len N`: token lengths before training, as the trainer
counts them (checked against a real `idata train` run's own counts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoint import idata


@pytest.fixture(scope="module")
def build_and_model(tmp_path_factory) -> tuple[Path, Path]:
    from instruct_data.demo import demo_build
    from instruct_data.training.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tokens")
    demo_build(root / "build")
    rows = [json.loads(line) for line in (root / "build" / "train.jsonl").read_text().splitlines()]
    make_tiny_model(root / "tiny", texts=[r["context"] + r["target"] for r in rows])
    return root / "build", root / "tiny"


def stats(build: Path, *args) -> dict:
    result = idata("stats", build, "--json", *args, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["tokens"]


@pytest.mark.slow
def test_token_counts_are_the_trainers(build_and_model, tmp_path):
    build, tiny = build_and_model
    tokens = stats(build, "--tokenizer", tiny, "--max-len", "64")
    run = tmp_path / "run"
    result = idata("train", "--data", build, "--model", tiny, "--out", run, "--max-len", "64", "--max-steps", "1",
                   "--batch-size", "2", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads((run / "metrics.json").read_text())["data"]["train"]
    over = tokens["max_len"]
    assert tokens["examples"] == trained["rows"]
    assert over["truncate"]["truncated"] == trained["truncated"] > 0
    assert over["truncate"]["skipped"] == trained["skipped"]
    assert over["truncate"]["tokens"] == trained["tokens"]
    assert tokens["template"] == json.loads((run / "template.json").read_text())["name"]


def test_lengths_per_part_source_and_category(build_and_model):
    build, tiny = build_and_model
    tokens = stats(build, "--tokenizer", tiny)
    overall = tokens["overall"]
    manifest = json.loads((build / "manifest.json").read_text())
    assert overall["examples"] == manifest["split"]["train_records"]
    for part in ("prompt", "reply", "whole"):
        assert overall[part]["p50"] <= overall[part]["p90"] <= overall[part]["p99"] <= overall[part]["p100"]
    assert overall["whole"]["p100"] >= overall["prompt"]["p100"]
    assert sum(s["examples"] for s in tokens["by_category"].values()) == overall["examples"]
    assert set(tokens["by_category"]) >= {"math", "code"}
    assert sum(tokens["histogram"]["counts"]) == overall["examples"]
    assert (build / "token_lengths.png").stat().st_size > 1000
    assert "max_len" not in tokens


def test_token_options_need_a_tokenizer(build_and_model):
    build, _ = build_and_model
    result = idata("stats", build, "--max-len", "64")
    assert result.returncode == 2 and "give --tokenizer" in result.stderr


def test_a_mistyped_tokenizer_folder(build_and_model, tmp_path):
    build, _ = build_and_model
    result = idata("stats", build, "--tokenizer", str(tmp_path / "models" / "tinyy"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no such folder" in result.stderr
