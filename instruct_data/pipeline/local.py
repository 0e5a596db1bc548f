"""The local executor's operations (executors.LocalExecutor): its tables are pass 1's small keys
in files of the spool (read back by range), the rows' texts and ids there too.

    map_chunks        LocalChunks: the chunks through the row path on parallel.WorkerPool, their
                      outcomes in chunk order; the rows taken to pass 1's keys (pipeline.keys), a
                      FirstPass of a KeptTable and an OwnIdTable
    partition_by_key  steps.ids.hash_partitions of the key column (read whole for it); each
                      partition's columns read then (from the spool), one partition at a time
    map_blocks        slices of the key columns (read from the spool), BLOCK_ROWS rows a block
    iterate_in_order  the spool, chunk by chunk (pipeline.outputs.chunk_batches)
    removals          steps.dedupe over hash partitions on disk (pipeline.decide.find_removals)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

from instruct_data.executors import Batch, BuildJob, FirstPass
from instruct_data.parallel import WorkerPool
from instruct_data.pipeline.keys import (PENDING_PER_WORKER, Ids, Kept, OwnIdKeys, drop_chunk, run_chunks,
                                         take_chunk)
from instruct_data.pipeline.worker import init_worker
from instruct_data.steps import ids as id_steps
from instruct_data.steps.caps import Summary


BLOCK_ROWS = 1 << 20  # rows a block of map_blocks


class KeptTable:
    """The kept rows' keys (pipeline.keys.Kept) as a table: columns `order` (the row's number),
    `id` (read from the spool), `category` (the row's stratum number: Kept.strata names it) and
    the key columns, all read from their files in the spool where asked; `spool` holds their lines."""

    def __init__(self, kept: Kept, spool: str):
        self.kept, self.spool = kept, spool

    def __len__(self) -> int:
        return len(self.kept)

    def key(self, name: str) -> np.ndarray:
        return self.file(name).load().astype(np.uint64, copy=False)

    def file(self, name: str):
        return self.kept.column("stratum" if name == "category" else name)

    def take(self, rows: np.ndarray, columns: tuple[str, ...]) -> dict:
        taken = {}
        for name in columns:
            if name == "order":
                taken[name] = rows
            elif name == "id":
                taken[name] = self.kept.ids.pick(rows)
            else:
                taken[name] = self.file(name).take(rows)
        return taken

    def block(self, start: int, stop: int, columns: tuple[str, ...]) -> dict:
        """Rows start..stop-1 (no id): the key columns' slices, read from their files."""
        return {name: np.arange(start, stop, dtype=np.int64) if name == "order" else self.file(name).read(start, stop)
                for name in columns}

    def let_go(self, columns: tuple[str, ...]) -> None:
        """Remove the files of key columns no later step reads (the split's ranks and prompt keys)."""
        for name in columns:
            self.file(name).remove()


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
            kept.close()
            own.close()

        table = KeptTable(kept, self.job.spool)
        return FirstPass(table, OwnIdTable(own, kept.ids), len(own.order), close,
                         names={index: name for name, index in kept.strata.items()}, let_go=table.let_go)


def partition_by_key(table, key: str, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
    """fn over partitions of the rows sharing a `key` value with another row (hash_partitions:
    whole groups, about 64k rows a partition); a row alone with its key is left out."""
    for rows in id_steps.hash_partitions(table.key(key)):
        yield fn(table.take(rows, columns))


def map_blocks(table: KeptTable, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
    """fn over consecutive blocks of BLOCK_ROWS kept rows, their columns read by range."""
    for start in range(0, len(table), BLOCK_ROWS):
        yield fn(table.block(start, min(start + BLOCK_ROWS, len(table)), columns))


def iterate_in_order(table: KeptTable) -> Iterator[Batch]:
    from instruct_data.pipeline.outputs import chunk_batches

    return chunk_batches(table.kept, table.spool)


def removals(job: BuildJob, first: FirstPass, held: np.ndarray, repeated: np.ndarray, workers: int) -> RowsRemovals:
    from instruct_data.pipeline.decide import SpilledRowRemovals, find_removals

    kept = first.kept.kept
    kept.repeated_id = _mask(repeated, len(kept))  # dedupe's layout reads them as a byte per row
    found = find_removals(job.spool, kept, _mask(held, len(kept)), job.recipe.dedupe, workers, job.against)
    return RowsRemovals(SpilledRowRemovals(found, os.path.join(job.spool, "removals")))


class RowsRemovals:
    """pipeline.decide.SpilledRowRemovals asked block by block (executors.Executor.removals):
    each block's removed records read from their files, made into Removals row by row."""

    def __init__(self, removed):
        self.removed = removed

    def of_rows(self, rows: np.ndarray) -> dict[int, dict]:
        if not len(rows):
            return {}
        found = self.removed.row
        # The bounds in the column's dtype (int32 where rows fit): else numpy searches a widened copy.
        lo, hi = np.searchsorted(found, np.array([rows[0], rows[-1] + 1], dtype=found.dtype)).tolist()
        if hi <= lo:
            return {}
        part = self.removed.part(lo, hi)
        return {row: part.of_row(row) for row in part.rows.tolist()}


def _mask(rows: np.ndarray, n: int) -> bytearray:
    """A byte per kept row: 1 for the rows numbered in `rows`."""
    mask = np.zeros(n, dtype=np.uint8)
    mask[np.asarray(rows, dtype=np.int64)] = 1
    return bytearray(mask.tobytes())
