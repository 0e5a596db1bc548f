"""Pass 1 in the main process: chunks out to the workers, outcomes back, in input order.

The main process keeps, per kept row, only small keys (`Kept`: table.KEY_COLUMNS, the id and
the category): no text. What it takes of each chunk, and the rejects it writes, is decided in
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

from instruct_data.parallel import WorkerPool
from instruct_data.pipeline.sources import Plan, tasks
from instruct_data.pipeline.worker import ChunkResult, process_chunk
from instruct_data.steps import ids as id_steps
from instruct_data.steps.caps import Cut
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
        first = self.ends[i - 1] if i else 0
        if self._in is None:
            self._in = open(self.path, "rb")
        return os.pread(self._in.fileno(), self.ends[i] - first, first).decode("utf-8")

    def pick(self, rows) -> list[str]:
        """The ids of `rows` (numpy, any order), read in spans of nearby rows: where the rows
        are dense (a file read twice), far fewer reads than one per row."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        picked: list[str] = [""] * len(rows)
        for span in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(ranked) > 64) + 1):
            if not len(span):
                continue
            first = int(ranked[span[0]])
            ids = self.read(first, int(ranked[span[-1]]) + 1)
            for at, row in zip(order[span].tolist(), ranked[span].tolist()):
                picked[at] = ids[row - first]
        return picked

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


def take_chunk(kept: Kept, own_ids: OwnIdKeys, number: int, result: ChunkResult, cut: Cut, plan: Plan) -> None:
    """Add what the build takes of a chunk (steps.caps' Cut: its first `cut.take` kept rows) to
    the keys; the rest of the chunk stays in its spool files, unread."""
    own_ids.add(result.own_ids, cut.take, cut.start)
    _extend(kept, result, cut.take, plan)
    kept.chunks.append((number, cut.take, len(result.ids)))
    kept.line_lengths.append((result.conv_len, result.train_len, result.held_len))
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
