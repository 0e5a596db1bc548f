"""Progress as plain lines, for a run whose output goes to a log rather than a terminal.

rich's bars draw only on a terminal; under `nohup`, a scheduler or `2>&1 | tee`, a long eval
would otherwise print nothing for minutes. The lines go to stderr, where idata's messages go, so
`--json` output on stdout stays parseable. `LoggedProgress` prints a line when the work starts, then
at least every `every` seconds from a ticker thread (so a slow batch that reports nothing still
shows the run is alive), and when it ends:

    eval: 96/400 (24%), 1m30s elapsed, about 4m45s left
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

EVERY_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class LoggedProgress:
    """A context manager; `update(done, total)` records the state, the ticker prints it."""

    def __init__(self, label: str, every: float = EVERY_S, stream: TextIO | None = None):
        self.label, self.every, self.stream = label, every, stream
        self.done, self.total = 0, None
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._tick, name=f"{label}-progress", daemon=True)

    def __enter__(self) -> LoggedProgress:
        self.started = time.monotonic()
        self._print(f"{self.label}: started")
        self._thread.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self._stop.set()
        self._thread.join()
        if kind is None:
            self._print(self.line(final=True))

    def update(self, done: int, total: int | None = None) -> None:
        with self._lock:
            self.done, self.total = done, total

    def line(self, final: bool = False) -> str:
        with self._lock:
            done, total = self.done, self.total
        elapsed = time.monotonic() - self.started
        text = f"{self.label}: {done}/{total}" if total else f"{self.label}: {done}"
        if total:
            text += f" ({100 * done // total}%)"
        text += f", {_duration(elapsed)} elapsed"
        if final:
            return text + ", done"
        if total and 0 < done < total:
            text += f", about {_duration(elapsed * (total - done) / done)} left"
        return text

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self._print(self.line())

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stderr  # beside the summary lines; stdout stays clean for --json
        stream.write(text + "\n")
        stream.flush()
