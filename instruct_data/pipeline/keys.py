"""Pass 1 in the main process: chunks out to the workers, outcomes back, in input order.

The main process writes the rejects to the ledger and keeps, per kept row, only small keys
(`Kept`: table.KEY_COLUMNS, the id and the category): no text. A source with a cap stops once
that many rows were kept; chunks already read ahead for it are dropped, so the result does not
depend on how many workers ran.
"""

from __future__ import annotations

import os
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from instruct_data.ledger import Ledger
from instruct_data.parallel import WorkerPool
from instruct_data.pipeline.sources import Plan, tasks
from instruct_data.pipeline.worker import ChunkResult, WorkerState, init_worker, process_chunk
from instruct_data.table import KEY_NAMES, add_key_columns

PENDING_PER_WORKER = 4  # chunks in flight per worker: enough to keep them busy, memory bounded


class Ids:
    """The kept rows' ids, in a file of the spool, found by their byte offsets: a Python string
    per row cost about 75 bytes of memory, and the ids are read back only where a row is
    named (a removal, a repeated id) or in order, a block at a time (dedupe's items)."""

    def __init__(self, path: str):
        self.path = path
        self.ends = array("Q")  # byte offset after each id
        self._out = open(path, "wb", buffering=0)
        self._in = None

    def extend(self, ids: list[str]) -> None:
        parts = [row_id.encode("utf-8") for row_id in ids]
        self._out.write(b"".join(parts))
        end = self.ends[-1] if self.ends else 0
        for n in map(len, parts):
            end += n
            self.ends.append(end)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        return self.read(i, i + 1)[0]

    def read(self, start: int, stop: int) -> list[str]:
        """The ids of rows start..stop-1, in one read."""
        if stop <= start:
            return []
        first = self.ends[start - 1] if start else 0
        if self._in is None:
            self._in = open(self.path, "rb")
        data = os.pread(self._in.fileno(), self.ends[stop - 1] - first, first)
        at = [0, *(end - first for end in self.ends[start:stop])]
        return [data[a:b].decode("utf-8") for a, b in zip(at, at[1:])]

    def close(self) -> None:
        self._out.close()
        if self._in is not None:
            self._in.close()


@dataclass
class Kept:
    """What the main process keeps per kept row: small keys, no text (the ids in a file). The
    key columns (rank, prompt_key, records, multi, prompt_len, reply_len) are table.KEY_COLUMNS,
    added as attributes by __post_init__, as the worker's ChunkResult has them."""

    ids: Ids
    source: array = field(default_factory=lambda: array("H"))
    stratum: array = field(default_factory=lambda: array("I"))
    # 1 where a row's id was already used by an earlier row: rejected (`duplicate_id`) in pass 2,
    # since dedupe and the ledger name rows by id. Ids are unique within a source, but a recipe's
    # source names can make two sources' ids meet: a source named `a/b`, and a source `a` holding
    # b.jsonl among other files (ids `a/b:LINE` both; tests/test_hostile_inputs.py).
    repeated_id: bytearray = field(default_factory=bytearray)
    strata: dict[str, int] = field(default_factory=dict)
    chunks: list[tuple[int, int, int]] = field(default_factory=list)  # (chunk number, rows used, rows spooled)
    dedupe_keys: list = field(default_factory=list)  # per chunk, dedupe's ExactKeys of the rows used (no near)
    # Per chunk, the byte length of each spooled line of its .conv, .train and .held files.
    line_lengths: list[tuple[array, array, array]] = field(default_factory=list)

    def __post_init__(self) -> None:
        add_key_columns(self)

    def __len__(self) -> int:
        return len(self.ids)


def run_chunks(plans: list[Plan], pool: WorkerPool):
    """Yield (chunk number, source index, ChunkResult) in chunk order, from the pool's workers."""
    sources: deque = deque()  # the source index of each chunk submitted, in order
    for number, result in pool.map(process_chunk, _noted(tasks(plans), sources)):
        yield number, sources.popleft(), result


def _noted(chunks, sources: deque):
    for task in chunks:
        sources.append(task[1])
        yield task


def clean_pass(plans: list[Plan], state: WorkerState, ledger: Ledger, *, workers: int, strict: bool,
               on_row: Callable[[], None] | None = None) -> Kept:
    # The pool is closed here, not in a generator: an error (--strict, Ctrl-C) must stop the
    # workers before the caller removes the folder they spool into.
    with WorkerPool(workers, init_worker, (state,), ahead=PENDING_PER_WORKER) as pool:
        return _take_chunks(plans, pool, state, ledger, strict, on_row)


def _take_chunks(plans: list[Plan], pool: WorkerPool, state: WorkerState, ledger: Ledger, strict: bool,
                 on_row: Callable[[], None] | None) -> Kept:
    kept = Kept(Ids(os.path.join(state.spool, "ids")))
    for number, source_index, result in run_chunks(plans, pool):
        plan = plans[source_index]
        if plan.stopped:
            drop_chunk(state.spool, number)  # read ahead of the cap: these rows are not taken
            continue
        take, rows = len(result.ids), result.rows
        if plan.cap is not None and plan.kept + take >= plan.cap:
            take = plan.cap - plan.kept  # the rest of the chunk, after the cap-th kept row, is not taken
            rows = result.position[take - 1] + 1 if take else 0
            plan.stopped = True
        for index, reject in zip(result.reject_at, result.rejects):
            if index >= rows:
                break
            ledger.outcome(plan.label, reject, strict=strict)
        for index, own in result.own_ids:
            if index >= take:
                break
            ledger.note_own_id(own, result.ids[index])
        for index, rules in result.changed:
            if index >= take:
                break
            for rule in rules:
                ledger.note_changed(rule)
        ledger.read(plan.label, rows)
        plan.read += rows
        plan.kept += take
        _extend(kept, result, take, plan)
        kept.chunks.append((number, take, len(result.ids)))
        kept.line_lengths.append((result.conv_len, result.train_len, result.held_len))
        if result.dedupe_keys is not None:
            kept.dedupe_keys.append(result.dedupe_keys.take(slice(0, sum(result.records[:take]))))  # per record
        if on_row:
            for _ in range(rows):
                on_row()
    kept.repeated_id = repeated_ids(kept)
    return kept


def repeated_ids(kept: Kept) -> bytearray:
    """1 for each row whose id an earlier row already has (set once pass 1 is over). Equal
    ids have equal ranks (a hash of the id), so only rows sharing a rank are compared, by
    their ids read back: no set of every id in memory."""
    import numpy as np

    repeated = bytearray(len(kept))
    rank = np.frombuffer(kept.rank, dtype=np.uint64)
    order = np.argsort(rank, kind="stable")  # equal ranks stay in row order
    ranked = rank[order]
    same = ranked[1:] == ranked[:-1]
    if not same.any():
        return repeated
    shared = np.zeros(len(rank), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    rows, ranked = order[shared], ranked[shared]
    for group in np.split(rows, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1):
        seen: set[str] = set()
        for i in group.tolist():
            row_id = kept.ids[i]
            repeated[i] = row_id in seen
            seen.add(row_id)
    return repeated


def _extend(kept: Kept, result: ChunkResult, take: int, plan: Plan) -> None:
    """Append the first `take` kept rows of a chunk to the keys."""
    kept.ids.extend(result.ids[:take])
    kept.source.extend(array("H", [plan.index]) * take)
    numbers = [kept.strata.setdefault(name or f"source:{plan.label}", len(kept.strata)) for name in result.strata]
    kept.stratum.extend(array("I", map(numbers.__getitem__, result.stratum[:take])))
    for column in KEY_NAMES:
        getattr(kept, column).extend(getattr(result, column)[:take])


def drop_chunk(spool: str, number: int) -> None:
    for suffix in (".conv", ".train", ".held", ".items"):
        Path(spool, f"{number}{suffix}").unlink(missing_ok=True)
