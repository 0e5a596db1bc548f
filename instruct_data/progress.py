"""Progress of one long step, on stderr: a live bar on a terminal; elsewhere (a log file, CI,
`nohup`) a plain line at least every 30 seconds, so that a quiet run is never mistaken for a
hung one.

    with Progress("tokenizing train.jsonl", total=size, unit="bytes") as progress:
        for task in tasks:
            ...
            progress.advance(task_bytes, rows=task_rows)

`total` and `unit` say how far along the step is (bytes of a file, rows); `rows` counts rows
for the rate. Only the main process of a multi-process run (RANK 0) prints.
"""

from __future__ import annotations

import os
import sys
import threading
import time

EVERY_S = 30.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(self, label: str, total: float | None = None, unit: str = "rows", every: float = EVERY_S,
                 stream=None):
        self.label = label
        self.total = total
        self.unit = unit
        self.every = every
        self.stream = stream or sys.stderr
        self.done = 0.0
        self.rows = 0
        self.started = time.monotonic()
        self._quiet = int(os.environ.get("RANK", "0")) != 0
        self._terminal = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None

    def __enter__(self) -> "Progress":
        if self._quiet:
            return self
        if self._terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
                            TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, status="")
        else:
            self._thread = threading.Thread(target=self._beat, daemon=True, name="idata-progress")
            self._thread.start()
        return self

    def advance(self, amount: float, rows: int = 0) -> None:
        self.done += amount
        self.rows += rows
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=self.status())

    def status(self) -> str:
        """'45% of 12.3 MB, 120,000 rows, 1,480 rows/s, about 2m10s left'."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        parts = []
        if self.total:
            share = self.done / self.total
            parts.append(f"{share:.0%}")
            if not self.rows and self.unit != "bytes":  # eval: '0%, 0 of 278 answers', never '0 items'
                parts.append(f"{self.done:,.0f} of {self.total:,.0f} {self.unit}")
            if 0 < share < 1:
                parts.append(f"about {_duration(elapsed * (1 - share) / share)} left")
        if self.rows:
            parts.insert(1 if self.total else 0, f"{self.rows:,} rows, {self.rows / elapsed:,.0f} rows/s")
        elif not self.total:
            parts.append(f"{self.done:,.0f} {self.unit}")
        return ", ".join(parts)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            self._line(f"{self.label}: {self.status() or 'started'} ({_duration(time.monotonic() - self.started)})")

    def _line(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr must not stop the work
            pass

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        if self._bar is not None:
            self._bar.stop()
        if exc_type is None and not self._quiet and time.monotonic() - self.started >= self.every:
            self._line(f"{self.label}: done, {self.status() or 'finished'} in "
                       f"{_duration(time.monotonic() - self.started)}")
