"""Helpers the fault tests share: where a started `idata` process has got to, how a signal is
sent to it, and how it and the processes it started must end.

Start a command with `entrypoint.start` (its own process group, as a shell job), wait for a
point in its life with `wait_until`, note its workers (`children`, `descendants`), `send` a
signal as a user does, then `finish` it and check with `assert_gone` that no worker outlived it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


# ---------------------------------------------------------------- processes, from /proc


def running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def children(pid: int) -> list[int]:
    """The processes `pid` started itself (a command's workers)."""
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (workers, their children, multiprocessing's resource tracker)."""
    below: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        below.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in below.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def signals_caught(pid: int) -> set[int]:
    """The signals `pid` has a handler for (SigCgt in /proc/PID/status); empty once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                mask = int(line.split()[1], 16)
                return {n + 1 for n in range(64) if mask >> n & 1}
    except OSError:
        pass
    return set()


# ---------------------------------------------------------------- waiting, signalling, ending


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 60,
               every: float = 0.05, said: Callable[[], str] | None = None) -> None:
    """Poll `ready()` until true. Fail if `proc` ends first (with what it printed: `said()`, or
    its stderr) or if `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            text = said() if said else proc.communicate()[1]
            pytest.fail(f"{proc.args[1]} ended (exit {proc.returncode}) before {what}: {text[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(every)


def send(proc: subprocess.Popen, sig: signal.Signals) -> None:
    """SIGINT to the whole process group, as Ctrl-C in a terminal does; any other signal to the
    process alone, as `kill` does."""
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)


def finish(proc: subprocess.Popen, within: float, where: str) -> tuple[str, str]:
    """(stdout, stderr) of `proc` once it ends; fail, after killing its group, if it has not
    ended `within` seconds."""
    try:
        return proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{where}: hung")


def assert_gone(pids: list[int], within: float, message: str) -> None:
    """Every process in `pids` ends within `within` seconds."""
    deadline = time.monotonic() + within
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(running, pids)), message
