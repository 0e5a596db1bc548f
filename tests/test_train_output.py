"""What `idata train` prints: one formatted line per logging step (no raw Trainer dicts, no
third-party noise), a line at least every 30 s of a long step when stderr is a file, and
"no such folder" for a mistyped local model folder."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from entrypoint import assert_one_line_error, idata
from instruct_data.progress import Progress
from instruct_data.training.loop import log_line


def test_a_long_step_says_it_is_alive_when_stderr_is_not_a_terminal():
    stream = io.StringIO()  # not a terminal: a log file, CI
    with Progress("tokenizing x.jsonl", total=100, unit="bytes", every=0.05, stream=stream) as progress:
        progress.advance(40, rows=4000)
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3, lines  # every 0.05 s, and a last line since the step took longer than that
    assert lines[0].startswith("tokenizing x.jsonl: 40%, 4,000 rows") and "left" in lines[0]
    assert lines[-1].startswith("tokenizing x.jsonl: done")


def test_a_log_dict_is_one_readable_line():
    line = log_line({"loss": 2.34567, "grad_norm": 1.5, "learning_rate": 0.0002, "tokens_per_s": 1234.5,
                     "epoch": 0.1}, step=10, max_steps=100, elapsed=60)
    assert line == "step 10/100  loss 2.3457  grad-norm 1.5  lr 2.00e-04  1,234 tokens/s  (1m00s, about 9m00s left)"
    assert log_line({"eval_loss": 1.23}, 100, 100, 600) == "step 100/100  held-out loss 1.2300"
    assert log_line({"train_runtime": 3.0, "train_loss": 2.0}, 100, 100, 600) is None  # the summary is said once, at the end


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from instruct_data.training.tiny import make_tiny_model

    work = tmp_path_factory.mktemp("train-output")
    rows = [{"context": f"Instruction: 第{i}题，请回答。\nAnswer: ", "target": "这是一个回答。" * (1 + i % 3)}
            for i in range(40)]
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data, make_tiny_model(work / "models" / "tiny", "llama")


@pytest.mark.slow
def test_training_prints_one_formatted_line_per_logging_step_and_no_noise(tiny, tmp_path):
    data, model = tiny
    result = idata("train", "--data", data, "--model", model, "--out", tmp_path / "run", "--max-steps", "2",
                   "--logging-steps", "1", "--cache-dir", tmp_path / "cache", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = [line for line in result.stderr.splitlines() if line.startswith("step ")]
    assert [line.split("  ")[0] for line in steps] == ["step 1/2", "step 2/2"], result.stderr
    assert all("  loss " in line and "tokens/s" in line for line in steps)
    for noise in ("{'loss'", "Warning", "warnings.warn", "Loading weights", "\r"):
        assert noise not in result.stderr, (noise, result.stderr)


def test_a_mistyped_local_model_folder_is_no_such_folder(tiny, tmp_path):
    data, model = tiny
    typo = model.parent / "tinyy"  # models/ exists: this is a folder name, not a hub id
    result = idata("train", "--data", data, "--model", typo, "--out", tmp_path / "run", "--max-steps", "1")
    assert_one_line_error(result, 2, "no such folder", str(typo))
    assert "huggingface.co" not in result.stderr and not (tmp_path / "run").exists()
    relative = idata("train", "--data", data, "--model", "models/tinyy", "--out", tmp_path / "run",
                     cwd=model.parent.parent)  # as the issue typed it, from the folder holding models/
    assert_one_line_error(relative, 2, "--model models/tinyy: no such folder")
