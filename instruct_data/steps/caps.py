"""Pass 1's step: what the build takes of each chunk, in chunk order, for both executors.

    caps = Caps(plans)                          # the sources' caps (pipeline.sources.Plan)
    for summary in summaries:                   # one per chunk, in chunk order
        cut = caps.take(summary)                # None: read ahead of its source's cap, dropped
        ...                                     # the executor keeps cut.take rows, writes cut.rejects
        note(cut, label, ledger)                # rows read and rules applied, to the ledger

A chunk reports a `Summary`: its source, how many rows it read, the index of the row of each
of its rejects and the rules that edited each kept row. A source with a cap stops once that
many rows were kept: the chunk that reaches it is cut after its cap-th kept row (the rows read
up to it are read; its rejects after it are not), and chunks of that source read ahead after it
are dropped, so the result does not depend on how many chunks were read ahead (workers, Ray
tasks). The local executor calls `take` as its chunks come back from the workers, so that a
source stops being read; Ray once the summaries of every chunk are in, sorted by number.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Summary:
    """What one chunk reports to the caps. Every row read is kept or rejected, once, so the kept
    rows are the rows not in `reject_at` (their positions need not travel)."""

    number: int  # the chunk's number: chunks are taken in this order
    source: int  # its source's index
    rows: int  # rows read from it
    reject_at: Sequence[int] = ()  # per reject, the index of its row among the rows read (ascending)
    changed: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (kept index, rules that edited it)

    @property
    def kept(self) -> int:
        return self.rows - len(self.reject_at)

    @classmethod
    def of(cls, number: int, source: int, result: Any) -> Summary:
        """The summary of a pipeline.worker.ChunkResult."""
        if result.rows != len(result.ids) + len(result.reject_at):
            raise AssertionError(f"chunk {number}: {result.rows} rows read, but {len(result.ids)} kept "
                                 f"and {len(result.reject_at)} rejected")
        return cls(number, source, result.rows, result.reject_at, result.changed)

    def rows_through(self, take: int) -> int:
        """How many rows were read up to and including the `take`-th kept row (0 for none)."""
        if take <= 0:
            return 0
        rows = take
        for at in self.reject_at:  # each reject before the row pushes it one further
            if at >= rows:
                break
            rows += 1
        return rows


@dataclass(frozen=True)
class Cut:
    """What the build takes of one chunk: its first `take` kept rows, its first `rows` rows read
    and the `rejects` among them; `start`, the number of its first taken row in input order."""

    number: int
    source: int
    take: int
    rows: int
    rejects: int
    start: int
    rules: Counter  # rule -> taken rows it edited, in the order the rules first edit a row
    stops: bool  # its source's cap was reached in it


class Caps:
    """The caps of the sources `plans` (pipeline.sources.Plan: cap; read, kept and stopped are
    updated here, as the build reports them), applied chunk by chunk in chunk order."""

    def __init__(self, plans: Sequence[Any]):
        self.plans = plans
        self.taken = 0  # rows taken so far, every source

    def take(self, summary: Summary) -> Cut | None:
        """The cut of the next chunk, or None when its source already reached its cap."""
        plan = self.plans[summary.source]
        if plan.stopped:
            return None
        take, rows = summary.kept, summary.rows
        stops = plan.cap is not None and plan.kept + take >= plan.cap
        if stops:
            take = plan.cap - plan.kept  # the rest of the chunk, after the cap-th kept row, is not taken
            rows = summary.rows_through(take)
            plan.stopped = True
        rejects = bisect.bisect_left(summary.reject_at, rows)  # the rejects among the rows read
        rules = Counter(rule for index, names in summary.changed if index < take for rule in names)
        cut = Cut(summary.number, summary.source, take, rows, rejects, self.taken, rules, stops)
        plan.read += rows
        plan.kept += take
        self.taken += take
        return cut


def note(cut: Cut, label: str, ledger: Any) -> None:
    """The ledger's share of a cut: the rows read, the rules that edited the taken rows. (Its
    rejects, the first `cut.rejects` of the chunk, the executor writes: they are where it holds them.)"""
    for rule, n in cut.rules.items():
        ledger.note_changed(rule, n)
    ledger.read(label, cut.rows)
