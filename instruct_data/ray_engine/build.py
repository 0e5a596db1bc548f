"""`idata build --engine ray`: the executor's operations and steps on Ray Data.

pipeline.flow.run_passes runs the build's passes, the same for every executor; RayExecutor
answers its calls with what is here, inside the runtime it entered:

- map_chunks (RayChunks): the chunks of every source (pipeline.sources.tasks) through the
  local row path (ray_engine.rows), materialized as blocks of kept rows, rejects and per-chunk
  summaries; the driver streams only the rejects and summaries, in chunk order, for the flow's
  caps (steps.caps) and ledger. The kept rows the caps take are a dataset numbered in input
  order (`order`);
- partition_by_key: a hash shuffle (shuffle.by_partition), the flow's function per partition
  (the repeated ids and own ids: steps.ids);
- map_blocks: the flow's function per block of a dataset (map_batches), its results streamed to
  the driver (the split: split.py's steps);
- removals (RayBuild.removals): fingerprints per block, the dedupe decision
  (ray_engine.decide), sorted by row and streamed beside the kept rows (_RemovalStream);
- iterate_in_order: the kept rows stream to the driver in input order, batch by batch, for
  the flow's pass 2 (steps.place, the batches' SplitStats merged), as locally.

The driver holds per chunk one summary (4 bytes per reject, and the rules of each row a rule
edited), and per held-out row its number (the split's candidates, merged as they come: at most
twice the quota and a block's): its memory grows with no other rows.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator

import numpy as np

from instruct_data.dedupe.types import Removal
from instruct_data.executors import Batch, BuildJob, FirstPass
from instruct_data.ledger import OwnIds
from instruct_data.pipeline.decide import held_records
from instruct_data.pipeline.sources import estimate_rows, input_bytes, tasks
from instruct_data.ray_engine.decide import removals as find_removals
from instruct_data.ray_engine.decide import where
from instruct_data.ray_engine.rows import ERROR, KEPT, REJECT, chunk_block
from instruct_data.ray_engine.runtime import (block_bytes, block_rows, error_from_payload, note_stage,
                                              tasks_dataset)
from instruct_data.steps import ids as id_steps
from instruct_data.steps import place

ROWS_PER_PARTITION = 200_000  # rows per shuffle partition: a few hundred MB of band entries at most


class RayChunks:
    """executors.Executor.map_chunks on Ray: on entering, every chunk of the sources through the
    row path in Ray tasks (ray_engine.rows.chunk_block), materialized as blocks of kept rows,
    rejects and a summary per chunk; iterated, the rejects and summaries stream to the driver in
    chunk order (kept rows stay where they are), a chunk's rejects held until its summary
    arrives; `taken()` is the kept rows the build took, numbered in input order (`order`), and
    those with an own id (with the `hash` of it), as materialized datasets."""

    def __init__(self, job: BuildJob, cluster):
        self.job, self.cluster = job, cluster
        self.pass1 = None  # None: nothing to read (empty outputs, as the local executor writes them)
        self.cuts: dict[int, tuple[int, int]] = {}  # seq -> (rows taken, the number of its first)

    def __enter__(self) -> RayChunks:
        plans, cpus = self.job.plans, self.cluster.cpus
        # Arrays and tables go as pieces each task reads itself: the driver reads no row of them.
        chunks = tasks_dataset(tasks(plans, block_bytes=block_bytes(input_bytes(plans), cpus),
                                     batch_rows=block_rows(estimate_rows(self.job.recipe), cpus), in_pieces=True))
        if chunks is not None:
            self.pass1 = chunks.map_batches(chunk_block, fn_kwargs={"state": self.job.state, "cwd": os.getcwd()},
                                            batch_size=1, batch_format="numpy").materialize()
            note_stage("pass 1: rows, rejects, summaries", self.pass1)
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __iter__(self) -> Iterator[RayChunk]:
        if self.pass1 is None:
            return
        outcomes = where(self.pass1, _is_outcome).select_columns(["kind", "seq", "payload"])
        rejects: list[bytes] = []
        last = -1
        for batch in outcomes.iter_batches(batch_size=4096, batch_format="numpy"):
            for kind, seq, payload in zip(batch["kind"].tolist(), batch["seq"].tolist(), batch["payload"]):
                if seq < last:  # (the runtime preserves order: ray_engine.runtime.configure_data)
                    raise RuntimeError(f"pass 1's chunk {seq} came after chunk {last}")
                last = seq
                if kind == ERROR:
                    raise error_from_payload(payload)  # the first unreadable chunk, as locally
                if kind == REJECT:  # a chunk's rejects come before its summary, in row order
                    rejects.append(payload)
                    continue
                yield RayChunk(seq, pickle.loads(payload), rejects)
                rejects = []

    def take(self, chunk: RayChunk, cut) -> None:
        self.cuts[chunk.seq] = (cut.take, cut.start)

    def drop(self, chunk: RayChunk) -> None:
        return None  # a chunk not in `cuts` gives no kept row

    def taken(self) -> FirstPass:
        if self.pass1 is None:
            return FirstPass(None, None, 0)
        kept = self.pass1.map_batches(_kept_rows, fn_kwargs={"cuts": self.cuts}, batch_format="numpy").materialize()
        own_ids = where(kept, has_own_id).select_columns(["order", "id", "own_id"])
        own_ids = own_ids.map_batches(_id_hash, fn_kwargs={"column": "own_id"}, batch_format="numpy").materialize()
        return FirstPass(kept, own_ids, own_ids.count())


class RayChunk:
    """One chunk's outcome on the driver: its steps.caps.Summary and its rejects, pickled."""

    def __init__(self, seq: int, summary, rejects: list[bytes]):
        self.seq, self.summary, self._rejects = seq, summary, rejects

    def rejects(self, n: int) -> list:
        return [pickle.loads(payload) for payload in self._rejects[:n]]  # the row path's table.Reject


class RayBuild:
    """One build's dedupe decision on the Ray cluster `cluster` (ray_engine.runtime.Cluster),
    which the executor has started or joined."""

    def __init__(self, job: BuildJob, cluster):
        self.job = job
        self.recipe, self.plans, self.state, self.ledger = job.recipe, job.plans, job.state, job.ledger
        self.cluster = cluster

    def removals(self, first: FirstPass, held: np.ndarray, repeated: np.ndarray) -> _RemovalStream:
        if first.kept is None:
            return _RemovalStream(None)
        parts = partitions(self.cluster, first.kept.count())
        return _RemovalStream(self._removals(first.kept, held, repeated, self.job.against, parts))

    # ------------------------------------------------------------------ dedupe

    def _removals(self, kept, held: np.ndarray, repeated: np.ndarray, against: list[str], parts: int):
        from instruct_data.dedupe.find import against_questions
        from instruct_data.dedupe.fingerprint import Against
        from instruct_data.ray_engine.decide import REMOVAL_FIELDS

        settings = self.recipe.dedupe
        if not (settings.exact or settings.near or against or len(held)) or not kept.count():
            return None
        held_rows = where(kept, _in_orders, orders=held).select_columns(["order", "id", "texts", "held", "multi"])
        held_rows = sorted(held_rows.take_all(), key=lambda r: r["order"])
        # The held-out records' prompts, in input order: each held-out row's held-out records.
        items = record_items({name: np.asarray([r[name] for r in held_rows], dtype=object)
                              for name in ("id", "order", "texts", "held", "multi")}, held)
        questions = against_questions([*against, *items])
        index = Against.build(questions, settings) if questions else None
        compared = where(kept, _in_orders, orders=repeated, keep=False)
        fp = compared.map_batches(_fingerprints, fn_kwargs={"settings": settings, "against": index, "held": held},
                                  batch_format="numpy").materialize()
        note_stage("fingerprints", fp)
        found = find_removals(fp, settings, [qid for qid, _ in questions], parts)
        return found.select_columns(list(REMOVAL_FIELDS)).sort("order").materialize()


def partitions(cluster, rows: int) -> int:
    """Shuffle partitions for `rows` rows: one per CPU at least, ROWS_PER_PARTITION rows at most."""
    return max(cluster.cpus, -(-rows // ROWS_PER_PARTITION), 1)


def partition_by_key(cluster, table, key: str, fn, columns: tuple[str, ...]) -> Iterator[dict]:
    """executors.Executor.partition_by_key on Ray: a hash shuffle on `key` (shuffle.by_partition),
    fn per partition, its results streamed to the driver."""
    from instruct_data.ray_engine.shuffle import by_partition

    if table is None:
        return iter(())
    table = table.select_columns(list(dict.fromkeys([*columns, key]))).materialize()
    found = by_partition(table, key, partitions(cluster, table.count()), _partition_call, call=fn,
                         columns=columns)
    return found.iter_batches(batch_format="numpy")


def _partition_call(batch, call, columns: tuple[str, ...]):
    return call({name: batch[name] for name in columns})


def map_blocks(cluster, table, fn, columns: tuple[str, ...]) -> Iterator[dict]:
    """executors.Executor.map_blocks on Ray: fn per block of the dataset (map_batches, whole
    blocks), its results streamed to the driver."""
    if table is None:
        return iter(())
    found = table.select_columns(list(columns)).map_batches(_partition_call, fn_kwargs={"call": fn, "columns": columns},
                                                            batch_size=None, batch_format="numpy")
    return found.iter_batches(batch_size=None, batch_format="numpy")


def iterate_in_order(kept) -> Iterator[Batch]:
    """executors.Executor.iterate_in_order on Ray: the kept rows streamed to the driver in input
    order (the runtime preserves order), a batch at a time, their lines in the batch's columns."""
    if kept is None:
        return
    columns = ["order", "source", "id", "conv", "train", "held", "multi", "records", "prompt_len", "reply_len",
               "category"]
    for batch in kept.select_columns(columns).iter_batches(batch_size=8192, batch_format="numpy"):
        yield Batch(np.asarray(batch["order"], dtype=np.int64), batch, _BatchLines(batch),
                    lambda k, ids=batch["id"]: ids[k])


class _BatchLines:
    """A batch of kept rows (numpy columns conv, train, held) as steps.place.Lines."""

    def __init__(self, batch):
        self.conv, self.train, self.held_lines = batch["conv"], batch["train"], batch["held"]

    def conversation(self, k: int) -> bytes:
        return self.conv[k]

    def records(self, k: int) -> list[bytes]:
        return self.train[k].splitlines(keepends=True)

    def held(self, k: int) -> bytes:
        return self.held_lines[k]

    def write_plain(self, begin: int, end: int, out: place.Outputs) -> None:
        out.conversations.write(b"".join(self.conv[begin:end]))
        out.train.write(b"".join(self.train[begin:end]))


class _RemovalStream:
    """The removals, sorted by row number, read alongside the kept rows (both in order)."""

    def __init__(self, removals):
        self._batches = iter(()) if removals is None else \
            removals.iter_batches(batch_size=8192, batch_format="numpy")
        self._next = self._rows()
        self._head = next(self._next, None)

    def _rows(self) -> Iterator[dict]:
        for batch in self._batches:
            names = list(batch)
            for values in zip(*(batch[name].tolist() for name in names)):
                yield dict(zip(names, values))

    def of_rows(self, orders: np.ndarray) -> dict[int, dict[int, Removal]]:
        """{row number: {record number: Removal}} of the rows numbered `orders` (increasing;
        asked for in order, batch after batch) that lose records."""
        found: dict[int, dict[int, Removal]] = {}
        wanted = set(orders.tolist())
        last = int(orders[-1]) if len(orders) else -1
        while self._head is not None and self._head["order"] >> RECORD_BITS <= last:
            row, head = self._head["order"] >> RECORD_BITS, self._head
            if row in wanted:
                found.setdefault(row, {})[head["order"] & ((1 << RECORD_BITS) - 1)] = Removal(
                    head["id"], head["duplicate_of"], head["cluster"], head["method"], head["similarity"])
            self._head = next(self._next, None)
        return found


# ------------------------------------------------------------------ block functions


def _is_outcome(batch):
    return batch["kind"] != KEPT  # a reject, a summary or an error


def has_own_id(batch):
    # isinstance, not `is not None`: a block whose own ids are all missing reads back as NaNs
    return np.asarray([isinstance(own, str) for own in batch["own_id"]], dtype=bool)


def _in_orders(batch, orders: np.ndarray):
    return np.isin(batch["order"], orders)


def _kept_rows(batch, cuts: dict[int, tuple[int, int]]):
    """The kept rows the caps take, numbered in input order (`order`); cuts: seq -> (rows taken,
    the number of its first)."""
    seq, index = batch["seq"], batch["index"]
    take = np.asarray([cuts.get(s, (0, 0))[0] for s in seq.tolist()], dtype=np.int64)
    start = np.asarray([cuts.get(s, (0, 0))[1] for s in seq.tolist()], dtype=np.int64)
    keep = (batch["kind"] == KEPT) & (index < take)
    out = {name: np.asarray(values)[keep] for name, values in batch.items() if name not in ("kind", "payload")}
    out["order"] = start[keep] + index[keep]
    return out


def count_own_ids(cluster, with_own, ledger) -> None:
    """ledger.own_ids from a dataset of the rows that have their own `id` (columns order, id,
    own_id): steps.ids per partition of a shuffle on the own id's hash, as the build counts them
    (pipeline.flow.count_own_ids); the driver never holds a set of them."""
    with_own = with_own.map_batches(_id_hash, fn_kwargs={"column": "own_id"}, batch_format="numpy").materialize()
    rows = with_own.count()
    if rows:
        parts = partition_by_key(cluster, with_own, "hash", id_steps.later_own_ids, id_steps.OWN_ID_COLUMNS)
        id_steps.note_own_id_repeats(parts, rows, ledger, OwnIds.EXAMPLES)


def _id_hash(batch, column: str):
    return {**batch, "hash": id_steps.value_hashes(batch[column]).view(np.int64)}


RECORD_BITS = 20  # an item's number: its row's number, then which of the row's records it is


def record_items(batch, held: np.ndarray):
    """The dedupe Items of a block of kept rows, as pipeline.decide.Layout lays them out: one
    per train record (named `id#tN` when a row has several), only its held-out records for a
    held-out row (protected; decide.held_records). Item.order = row number << RECORD_BITS |
    record: input order."""
    from instruct_data.dedupe import Item

    items = []
    is_held = np.isin(np.asarray(batch["order"], dtype=np.int64), held).tolist()
    for row_id, order, blob, protected, entry, multi in zip(batch["id"].tolist(), batch["order"].tolist(),
                                                            batch["texts"], is_held, batch["held"], batch["multi"]):
        texts = pickle.loads(blob)
        n_held = held_records(entry, bool(multi)) if protected else 0
        numbered = list(enumerate(texts))[-n_held:] if protected else list(enumerate(texts))
        for record, (prompt, reply) in numbered:
            item_id = row_id if len(texts) == 1 or n_held == 1 else f"{row_id}#t{record + 1}"
            items.append(Item(item_id, prompt, reply, order << RECORD_BITS | record, protected, row_id))
    return items


def _fingerprints(batch, settings, against, held: np.ndarray):
    """dedupe.fingerprint of the block's items: the per-item fields the decision needs."""
    from instruct_data.dedupe.fingerprint import fingerprint

    items = record_items(batch, held)
    return fingerprint_columns(fingerprint(items, settings, against))


def fingerprint_columns(fp) -> dict[str, np.ndarray]:
    """A dedupe.fingerprint Batch as the columns ray_engine.decide reads (signatures and band
    keys as bytes, one value per item)."""
    n = len(fp.ids)
    return {"order": fp.order, "id": np.asarray(fp.ids, dtype=object), "protected": fp.protected,
            "reply_len": fp.reply_len, "content0": fp.content[:, 0], "content1": fp.content[:, 1],
            "exact0": fp.exact[:, 0].view(np.int64), "exact1": fp.exact[:, 1], "has_sig": fp.has_sig,
            "against": fp.against, "against_sim": fp.against_sim, "dialogue": fp.dialogue,
            "sig": np.asarray([row.tobytes() for row in fp.sig], dtype=object) if n else np.zeros(0, dtype=object),
            "bands": np.asarray([row.tobytes() for row in fp.bands], dtype=object) if n else
            np.zeros(0, dtype=object)}


__all__ = ["RayBuild"]
