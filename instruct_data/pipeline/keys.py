"""Pass 1 in the main process: chunks out to the workers, outcomes back, in input order.

The main process keeps, per kept row, only small keys (`Kept`: table.KEY_COLUMNS, the id and
the category), and those in files of the spool: no text, nothing per row in memory. What it takes of each chunk, and the rejects it writes, is decided in
pipeline.flow (steps.caps: a source with a cap stops once that many rows were kept; chunks
already read ahead for it are dropped), as on Ray; `take_chunk` adds a chunk's taken rows. The
repeated ids and own ids are pipeline.flow's too (steps.ids over partitions of these keys by
hash, pipeline.local.partition_by_key).
"""

from __future__ import annotations

import os
from array import array
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instruct_data.dedupe.spill import ColumnFile
from instruct_data.parallel import WorkerPool
from instruct_data.pipeline.sources import Plan, tasks
from instruct_data.pipeline.worker import ChunkResult, process_chunk
from instruct_data.steps import ids as id_steps
from instruct_data.steps.caps import Cut
from instruct_data.table import KEY_COLUMNS, KEY_NAMES

PENDING_PER_WORKER = 4  # chunks in flight per worker: enough to keep them busy, memory bounded


class Ids:
    """The kept rows' ids, in a file of the spool, found by their byte offsets (`ends`, a
    column in a file beside it): a Python string per row cost about 75 bytes of memory, the
    offsets 8 more, and the ids are read back only where a row is named (a removal, a
    repeated id) or in order, a block at a time (dedupe's items)."""

    def __init__(self, path: str):
        self.path = path
        self.ends = ColumnFile(path + ".ends", np.uint64)  # byte offset after each id
        self._out = open(path, "wb", buffering=0)
        self._end = 0
        self._in = None

    def extend(self, ids: list[str]) -> None:
        parts = [row_id.encode("utf-8") for row_id in ids]
        self._out.write(b"".join(parts))
        ends = np.cumsum(np.fromiter(map(len, parts), dtype=np.uint64, count=len(parts)), dtype=np.uint64)
        ends += np.uint64(self._end)
        self.ends.append(ends)
        if len(ends):
            self._end = int(ends[-1])

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        return self.read(i, i + 1)[0]

    def pick(self, rows) -> list[str]:
        """The ids of `rows` (numpy, any order), read in spans of nearby rows: where the rows
        are dense (a file read twice), far fewer reads than one per row."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        picked: list[str] = [""] * len(rows)
        for span in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(ranked) > 64) + 1):
            if not len(span):
                continue
            first = int(ranked[span[0]])
            data, at_of = self._span(first, int(ranked[span[-1]]) + 1)
            for at, row in zip(order[span].tolist(), ranked[span].tolist()):  # only the rows asked decoded
                picked[at] = data[at_of[row - first]:at_of[row - first + 1]].decode("utf-8")
        return picked

    def _span(self, start: int, stop: int) -> tuple[bytes, list[int]]:
        """The bytes of the ids of rows start..stop-1 (one read) and where each starts, and the last ends, in them."""
        ends = self.ends.read(start - 1 if start else 0, stop).tolist()
        first = ends.pop(0) if start else 0
        if self._in is None:
            self._in = open(self.path, "rb")
        data = os.pread(self._in.fileno(), ends[-1] - first, first)
        return data, [0, *(end - first for end in ends)]

    def read(self, start: int, stop: int) -> list[str]:
        """The ids of rows start..stop-1, in one read (and one of their offsets)."""
        if stop <= start:
            return []
        data, at = self._span(start, stop)
        return [data[a:b].decode("utf-8") for a, b in zip(at, at[1:])]

    def close(self) -> None:
        self._out.close()
        self.ends.close()
        if self._in is not None:
            self._in.close()


# Kept's per-row columns besides the key columns: (name, dtype).
ROW_COLUMNS = (("source", "uint16"), ("stratum", "uint32"))
LINE_FILES = ("conv", "train", "held")  # the spool files whose line lengths Kept holds


@dataclass
class Kept:
    """What pass 1 keeps per kept row: small keys, no text, all in files beside the ids (the
    spool), appended chunk by chunk and read back by range where a step needs them, so that
    the main process holds nothing per row. The key columns (rank, prompt_key, records, multi,
    prompt_len, reply_len) are table.KEY_COLUMNS, as the worker's ChunkResult has them, and
    with source and stratum are attributes (dedupe.spill.ColumnFile: `column(name)`)."""

    ids: Ids
    # 1 where a row's id was already used by an earlier row: rejected (`duplicate_id`) in pass 2,
    # since dedupe and the ledger name rows by id. Ids are unique within a source, but a recipe's
    # source names can make two sources' ids meet: a source named `a/b`, and a source `a` holding
    # b.jsonl among other files (ids `a/b:LINE` both; tests/test_hostile_inputs.py).
    repeated_id: bytearray = field(default_factory=bytearray)
    strata: dict[str, int] = field(default_factory=dict)
    chunks: list[tuple[int, int, int]] = field(default_factory=list)  # (chunk number, rows used, rows spooled)
    dedupe_keys: list = field(default_factory=list)  # per chunk, dedupe's ExactKeys of the rows used (no near)
    # Per chunk, where its lines' byte lengths start in each of the `lines` files (LINE_FILES
    # order), and the end of the last chunk's.
    line_at: list[tuple[int, int, int]] = field(default_factory=lambda: [(0, 0, 0)])

    def __post_init__(self) -> None:
        folder = os.path.dirname(self.ids.path) or "."
        for name, dtype in (*KEY_COLUMNS, *ROW_COLUMNS):
            # A bool column as bytes: what numpy read of the array("B") it was, a uint8 per row.
            setattr(self, name, ColumnFile(os.path.join(folder, f"kept.{name}"), "uint8" if dtype == "bool" else dtype))
        # The byte length of each spooled line of the chunks' .conv, .train and .held files.
        self.lines = {name: ColumnFile(os.path.join(folder, f"kept.{name}_len"), np.uint32) for name in LINE_FILES}

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, name: str) -> ColumnFile:
        return getattr(self, name)

    def add_line_lengths(self, lengths: tuple) -> None:
        """A chunk's line lengths (of its .conv, .train and .held lines), appended."""
        for name, column in zip(LINE_FILES, lengths):
            self.lines[name].append(np.frombuffer(column, dtype=np.uint32) if isinstance(column, array)
                                    else np.asarray(column, dtype=np.uint32))
        self.line_at.append(tuple(len(self.lines[name]) for name in LINE_FILES))

    def line_lengths(self, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The line lengths of the `chunk`-th chunk taken (its .conv, .train and .held lines)."""
        return tuple(self.lines[name].read(a, b)
                     for name, a, b in zip(LINE_FILES, self.line_at[chunk], self.line_at[chunk + 1]))

    def close(self) -> None:
        self.ids.close()
        for name, _ in (*KEY_COLUMNS, *ROW_COLUMNS):
            self.column(name).close()
        for column in self.lines.values():
            column.close()


def run_chunks(plans: list[Plan], pool: WorkerPool):
    """Yield (chunk number, source index, ChunkResult) in chunk order, from the pool's workers."""
    sources: deque = deque()  # the source index of each chunk submitted, in order
    for number, result in pool.map(process_chunk, _noted(tasks(plans), sources)):
        yield number, sources.popleft(), result


def _noted(chunks, sources: deque):
    for task in chunks:
        sources.append(task[1])
        yield task


def take_chunk(kept: Kept, own_ids: OwnIdKeys, number: int, result: ChunkResult, cut: Cut, plan: Plan) -> None:
    """Add what the build takes of a chunk (steps.caps' Cut: its first `cut.take` kept rows) to
    the keys; the rest of the chunk stays in its spool files, unread."""
    own_ids.add(result.own_ids, cut.take, cut.start)
    _extend(kept, result, cut.take, plan)
    kept.chunks.append((number, cut.take, len(result.ids)))
    kept.add_line_lengths((result.conv_len, result.train_len, result.held_len))
    if result.dedupe_keys is not None:
        kept.dedupe_keys.append(result.dedupe_keys.take(slice(0, sum(result.records[:cut.take]))))  # per record


class OwnIdKeys:
    """The taken rows' own `id` fields (of the rows that have one), for the manifest's count of
    repeats (ledger.OwnIds): a hash and the row's number in memory, the text in a spool file."""

    def __init__(self, path: str):
        self.text = Ids(path)
        self.hash = array("Q")
        self.order = array("Q")  # the row's number among the kept rows (ascending)

    def add(self, own_ids: list[tuple[int, str]], take: int, start: int) -> None:
        """A chunk's (kept index, own id) pairs, of its first `take` kept rows, numbered from `start`."""
        own_ids = [(index, own) for index, own in own_ids if index < take]
        self.text.extend([own for _, own in own_ids])
        self.hash.extend(id_steps.value_hashes(own for _, own in own_ids).tolist())
        self.order.extend([start + index for index, _ in own_ids])

    def close(self) -> None:
        self.text.close()


def _extend(kept: Kept, result: ChunkResult, take: int, plan: Plan) -> None:
    """Append the first `take` kept rows of a chunk to the keys (their files)."""
    kept.ids.extend(result.ids[:take])
    kept.source.append(np.full(take, plan.index, dtype=np.uint16))
    numbers = [kept.strata.setdefault(name or f"source:{plan.label}", len(kept.strata)) for name in result.strata]
    kept.stratum.append(np.asarray(numbers, dtype=np.uint32)[np.asarray(result.stratum[:take], dtype=np.int64)])
    for column in KEY_NAMES:
        values = getattr(result, column)[:take]
        kept.column(column).append(np.frombuffer(values, dtype=kept.column(column).dtype)
                                   if isinstance(values, array) else values)


def drop_chunk(spool: str, number: int) -> None:
    for suffix in (".conv", ".train", ".held", ".items"):
        Path(spool, f"{number}{suffix}").unlink(missing_ok=True)
