"""Fault injection: `build`, `dedupe` and `to-multiturn` killed part-way through a 100,000-row
file by SIGINT (Ctrl-C, sent to the whole process group as a terminal does), SIGTERM and
SIGKILL, at points spread over the run. Each must end at once (no hang), print no traceback
(one line for SIGINT/SIGTERM, exit 130/143), take its workers with it, and leave the
previous outputs as they were; the next run removes what the killed runs left and writes
the same bytes as before.

Kill points are fractions of the time the same command took for real, counted from when it
took the lock on --out (by then its signal handlers are in place and its work has begun).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from entrypoint import start
from faultkit import assert_gone, children, finish, send, wait_until
from test_guarantees import leftovers, tree

ROWS = 100_000
KILLS = ((signal.SIGINT, 0.1), (signal.SIGTERM, 0.35), (signal.SIGKILL, 0.6))
COMMANDS = {
    "build": ["--no-near", "--heldout", "100", "--workers", "2"],
    "dedupe": ["--no-near", "--workers", "2"],
    "to-multiturn": ["--workers", "2"],
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """100,000 rows, one in ten a Belle multi-turn transcript, one in fifty a repeat (for dedupe)."""
    path = tmp_path_factory.mktemp("faults") / "rows.jsonl"
    rng = random.Random(0)
    chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]

    def text(low: int, high: int) -> str:
        return "".join(rng.choices(chars, k=rng.randint(low, high)))

    lines = []
    for i in range(ROWS):
        if i % 50 == 49:
            lines.append(lines[i // 2])
        elif i % 10 == 9:
            lines.append(json.dumps({"instruction": f"Human:{text(6, 12)}\nAssistant:{text(10, 30)}\nHuman:"
                                                    f"{text(6, 12)}\nAssistant:", "input": "",
                                     "output": text(10, 40)}, ensure_ascii=False))
        else:
            lines.append(json.dumps({"instruction": text(6, 20), "input": "", "output": text(20, 80)},
                                    ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _started(args: list, lock: Path) -> tuple[subprocess.Popen, float]:
    """Start a run; return it and when it took the lock on --out."""
    proc = start(*args)
    wait_until(lock.exists, proc, "the lock on --out", timeout=60, every=0.01)
    return proc, time.monotonic()


def _running_at(args: list, lock: Path, at: float, work: float, tries: int = 4) -> tuple[subprocess.Popen, float]:
    """A run that is still going at `at` of `work` seconds after it took the lock. On a machine
    whose load changes, a run can be faster than the one measured: then that run's time is the
    new measure and the point is tried again (the run is sized to the machine as it is now)."""
    for _ in range(tries):
        proc, began = _started(args, lock)
        time.sleep(max(0.0, began + at * work - time.monotonic()))
        if proc.poll() is None:
            return proc, work
        proc.communicate()
        assert proc.returncode == 0, proc.returncode
        work = min(work, time.monotonic() - began) * 0.8
    pytest.fail(f"every run ended before {at:.0%} of the measured time: the corpus is too small for this machine")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_killed_runs_end_at_once_and_leave_the_previous_outputs(tmp_path, corpus, command):
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    args = [command, corpus, "--out", out, *COMMANDS[command]]
    proc, began = _started(args, lock)
    stdout, stderr = proc.communicate(timeout=300)
    work = time.monotonic() - began
    assert proc.returncode == 0, stderr
    previous = tree(out)

    for sig, at in KILLS:
        proc, work = _running_at(args, lock, at, work)
        workers = children(proc.pid)
        send(proc, sig)  # SIGINT to the group, what Ctrl-C in a terminal does
        where = f"{command}, {sig.name} at {at:.0%}"
        _, stderr = finish(proc, 20, where)
        assert "Traceback" not in stderr and "Error" not in stderr, (where, stderr)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL, (where, stderr)
        else:
            assert proc.returncode == 128 + sig, (where, proc.returncode, stderr)
            lines = [line for line in stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and "interrupted" in lines[0], (where, stderr)
        assert_gone(workers, 10, f"{where}: workers outlived their parent")
        assert tree(out) == previous, f"{where}: the previous outputs changed"

    proc, _ = _started(args, lock)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert leftovers(tmp_path) == [] and leftovers(out) == []
    assert tree(out) == previous  # byte-identical to the run before the kills
