"""Helpers the fault tests share: where a started `idata` process has got to, and how it ends.

Start processes with `entrypoint.start` (its own process group, as a shell job); then wait for a
point in its life and send a signal the way a user does.
"""

from __future__ import annotations

import time
from pathlib import Path


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


def wait_until(ready, proc, what: str, timeout: float = 60, every: float = 0.05) -> None:
    """Poll `ready()` until true; fail if `proc` ends first or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"ended (exit {proc.returncode}) before {what}: {err[-2000:]}")
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(every)
