"""The local executor's operations (executors.LocalExecutor): its tables are pass 1's small keys
in this process's memory, the rows' texts and ids in the spool.

    map_chunks        LocalChunks: the chunks through the row path on parallel.WorkerPool, their
                      outcomes in chunk order; the rows taken to pass 1's keys (pipeline.keys), a
                      FirstPass of a KeptTable and an OwnIdTable
    partition_by_key  steps.ids.hash_partitions of the key column (in memory); each partition's
                      columns read then (ids from the spool), one partition at a time
    iterate_in_order  the spool, chunk by chunk (pipeline.outputs.chunk_batches)
    heldout           split.py's steps over the one in-memory partition (pipeline.decide.heldout_rows)
    removals          steps.dedupe over hash partitions on disk (pipeline.decide.find_removals)
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator

import numpy as np

from instruct_data.executors import Batch, BuildJob, FirstPass
from instruct_data.parallel import WorkerPool
from instruct_data.pipeline.keys import (PENDING_PER_WORKER, Ids, Kept, OwnIdKeys, drop_chunk, run_chunks,
                                         take_chunk)
from instruct_data.pipeline.worker import init_worker
from instruct_data.steps import ids as id_steps
from instruct_data.steps.caps import Summary


class KeptTable:
    """The kept rows' keys (pipeline.keys.Kept) as a table: columns `order` (the row's number),
    `id` (read from the spool) and the key columns; `spool` holds their lines."""

    def __init__(self, kept: Kept, spool: str):
        self.kept, self.spool = kept, spool

    def key(self, name: str) -> np.ndarray:
        return np.frombuffer(getattr(self.kept, name), dtype=np.uint64)

    def take(self, rows: np.ndarray, columns: tuple[str, ...]) -> dict:
        taken = {}
        for name in columns:
            if name == "order":
                taken[name] = rows
            elif name == "id":
                taken[name] = self.kept.ids.pick(rows)
            else:  # an array or bytearray of Kept: its memoryview gives numpy the dtype
                taken[name] = np.asarray(memoryview(getattr(self.kept, name)))[rows]
        return taken


class OwnIdTable:
    """The own ids of the kept rows that have one (pipeline.keys.OwnIdKeys) as a table: columns
    `order`, `own_id` (read from the spool), `id` (the row's, from `row_ids`) and `hash`."""

    def __init__(self, own: OwnIdKeys, row_ids: Ids):
        self.own, self.row_ids = own, row_ids

    def key(self, name: str) -> np.ndarray:
        assert name == "hash", name
        return np.frombuffer(self.own.hash, dtype=np.uint64)

    def take(self, rows: np.ndarray, columns: tuple[str, ...]) -> dict:
        order = np.frombuffer(self.own.order, dtype=np.uint64).astype(np.int64)[rows]
        readers = {"order": lambda: order, "own_id": lambda: self.own.text.pick(rows),
                   "id": lambda: self.row_ids.pick(order), "hash": lambda: self.key("hash")[rows]}
        return {name: readers[name]() for name in columns}


class LocalChunk:
    """One chunk's outcome, as the workers returned it (pipeline.worker.ChunkResult)."""

    def __init__(self, number: int, source: int, result):
        self.number, self.source, self.result = number, source, result
        self.summary = Summary.of(number, source, result)

    def rejects(self, n: int) -> list:
        return self.result.rejects[:n]


class LocalChunks:
    """Pass 1 on this machine (executors.Executor.map_chunks): the chunks through the row path
    on a WorkerPool, their outcomes in chunk order as the workers return them (the pool reads
    ahead a few chunks a worker, so a source whose cap is reached stops being read); the rows
    taken go to pass 1's keys (pipeline.keys.Kept), their texts stay in the spool."""

    def __init__(self, job: BuildJob, workers: int):
        self.job, self.workers = job, workers
        self.kept = Kept(Ids(os.path.join(job.spool, "ids")))
        self.own = OwnIdKeys(os.path.join(job.spool, "own_ids"))
        self.pool: WorkerPool | None = None

    def __enter__(self) -> LocalChunks:
        self.pool = WorkerPool(self.workers, init_worker, (self.job.state,), ahead=PENDING_PER_WORKER).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        # The pool is closed here, on an error too (--strict, Ctrl-C): the workers must stop
        # before the build removes the folder they spool into.
        pool, self.pool = self.pool, None
        pool.__exit__(*exc)

    def __iter__(self) -> Iterator[LocalChunk]:
        for number, source, result in run_chunks(self.job.plans, self.pool):
            yield LocalChunk(number, source, result)

    def take(self, chunk: LocalChunk, cut) -> None:
        take_chunk(self.kept, self.own, chunk.number, chunk.result, cut, self.job.plans[chunk.source])

    def drop(self, chunk: LocalChunk) -> None:
        drop_chunk(self.job.spool, chunk.number)  # read ahead of the cap: these rows are not taken

    def taken(self) -> FirstPass:
        kept, own = self.kept, self.own

        def close() -> None:
            kept.ids.close()
            own.close()

        return FirstPass(KeptTable(kept, self.job.spool), OwnIdTable(own, kept.ids), len(own.order), close)


def partition_by_key(table, key: str, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
    """fn over partitions of the rows sharing a `key` value with another row (hash_partitions:
    whole groups, about 64k rows a partition); a row alone with its key is left out."""
    for rows in id_steps.hash_partitions(table.key(key)):
        yield fn(table.take(rows, columns))


def iterate_in_order(table: KeptTable) -> Iterator[Batch]:
    from instruct_data.pipeline.outputs import chunk_batches

    return chunk_batches(table.kept, table.spool)


def heldout(job: BuildJob, first: FirstPass, repeated: np.ndarray) -> np.ndarray:
    from instruct_data.pipeline.decide import heldout_rows

    kept = first.kept.kept
    # The split and dedupe's layout read the repeated ids as a byte per row.
    kept.repeated_id = _mask(repeated, len(kept))
    held = np.flatnonzero(np.frombuffer(heldout_rows(kept, job.plans, job.recipe.split), dtype=np.uint8))
    # Nothing after the split reads the rows' ranks and prompt keys (16 bytes a row): they go
    # before the dedupe decision, where the main process peaks.
    kept.rank, kept.prompt_key = array(kept.rank.typecode), array(kept.prompt_key.typecode)
    return held


def removals(job: BuildJob, first: FirstPass, held: np.ndarray, workers: int) -> RowsRemovals:
    from instruct_data.pipeline.decide import find_removals

    kept = first.kept.kept
    return RowsRemovals(find_removals(job.spool, kept, _mask(held, len(kept)), job.recipe.dedupe, workers,
                                      job.against))


class RowsRemovals:
    """pipeline.decide.RowRemovals asked block by block (executors.Executor.removals)."""

    def __init__(self, removed):
        self.removed = removed

    def of_rows(self, rows: np.ndarray) -> dict[int, dict]:
        if not len(rows):
            return {}
        found = self.removed.rows
        # The bounds in the column's dtype (int32 where rows fit): else numpy searches a widened copy.
        lo, hi = np.searchsorted(found, np.array([rows[0], rows[-1] + 1], dtype=found.dtype)).tolist()
        return {row: self.removed.of_row(row) for row in found[lo:hi].tolist()}


def _mask(rows: np.ndarray, n: int) -> bytearray:
    """A byte per kept row: 1 for the rows numbered in `rows`."""
    mask = np.zeros(n, dtype=np.uint8)
    mask[np.asarray(rows, dtype=np.int64)] = 1
    return bytearray(mask.tobytes())
