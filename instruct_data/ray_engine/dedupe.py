"""`idata dedupe --engine ray`: dedupe.runner's passes, with the work of each on Ray Data.

executors.RayExecutor.dedupe_engine() gives the runner a RayDedupe (dedupe_files(executor=...)
asks for it), inside the runtime the executor entered; nothing here calls the runner.

The runner's own pass 1 (`_read_file`: the ledger, rejects and `--strict` in input order)
runs against a pool whose map() executes the runner's chunk function on Ray: each chunk's
fingerprints stay in Ray's object store as a block, only the per-row outcomes (None, or a
reject) stream back. The decision is ray_engine.decide's; the runner's own pass 2
(`_write_kept`) re-reads the inputs and asks, row by row in input order, whether a row was
removed: the answer comes from the removals, sorted, streamed beside the items' numbers.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from instruct_data.errors import IdataError
from instruct_data.ledger import Reject
from instruct_data.ray_engine.build import count_own_ids, has_own_id
from instruct_data.ray_engine.decide import REMOVAL_FIELDS, removals as decide_removals
from instruct_data.ray_engine.runtime import block_bytes, error_from_payload, error_payload, in_driver_dir, tasks_dataset

ITEMS_PER_PARTITION = 200_000


class RayDedupe:
    """The engine hook of dedupe_files on the Ray cluster `cluster` (runtime.Cluster): a pool
    for pass 1, then the decision; the manifest adds `engine`."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.fingerprints: list = []  # one materialized dataset per input file
        self.own_ids: list = []  # per input file: its items whose row has an `id` field

    def block_bytes(self, files: list[Path]) -> int:
        """Bytes of a JSON-lines file per task: blocks grow with the input (runtime.block_bytes)."""
        return block_bytes(sum(path.stat().st_size for path in files), self.cluster.cpus)

    def pool(self, settings, index, files=None) -> "_RayPool":
        return _RayPool(self, settings, index)

    def decide(self, settings, questions: list[tuple[str, str]], ledger, batches=None) -> "_Removals":
        # (`batches`: the runner's pass-1 results, all None here: the fingerprints stay on Ray)
        ledger.extra["engine"] = self.cluster.to_dict()
        fp = _union(self.fingerprints)
        if fp is None or not fp.count():
            return _Removals([], None)
        parts = max(self.cluster.cpus, -(-fp.count() // ITEMS_PER_PARTITION), 1)
        count_own_ids(self.cluster, _union(self.own_ids), ledger)
        found = decide_removals(fp, settings, [qid for qid, _ in questions], parts)
        found = found.select_columns(list(REMOVAL_FIELDS)).sort("order").materialize()
        # Each file's items in turn: a union's blocks need not come out in its inputs' order.
        return _Removals([ds.select_columns(["order"]) for ds in self.fingerprints], found)


def _union(datasets: list):
    return datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0] if datasets else None


class _RayPool:
    """map(fn, tasks) as the runner's pass 1 calls it: fn runs on Ray, chunk by chunk; the
    fingerprints stay there, the outcomes come back in task order."""

    def __init__(self, engine: RayDedupe, settings, index):
        self.engine, self.settings, self.index = engine, settings, index

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map(self, fn, tasks) -> Iterator[tuple[list, None]]:
        chunks = tasks_dataset(tasks)
        if chunks is None:
            return
        done = chunks.map_batches(
            _run_chunks, fn_kwargs={"fn": fn, "settings": self.settings, "index": self.index, "cwd": os.getcwd()},
            batch_size=1,
            batch_format="numpy").materialize()
        self.engine.fingerprints.append(done.map_batches(_fingerprint_rows, batch_format="numpy").materialize())
        self.engine.own_ids.append(done.map_batches(_own_id_rows, batch_format="numpy"))
        outcomes = done.map_batches(_outcome_rows, batch_format="numpy")
        for batch in outcomes.iter_batches(batch_size=1, batch_format="numpy"):
            for blob, failed in zip(batch["outcomes"], batch["failed"]):
                if failed:
                    raise error_from_payload(blob)
                yield pickle.loads(blob), None


def _run_chunks(batch, fn, settings, index, cwd=None):
    """One chunk through the runner's own chunk function: its fingerprints as columns, and its
    rows' outcomes (pickled) on the first row of the block (relative paths are the driver's, `cwd`)."""
    from instruct_data.dedupe.fingerprint import fingerprint, init_worker

    from instruct_data.ray_engine.build import fingerprint_columns

    init_worker(settings, index)
    (blob,) = batch["task"]
    try:
        with in_driver_dir(cwd):
            outcomes, fp = fn(pickle.loads(blob))
    except IdataError as exc:
        # A file that cannot be read travels back as data (Ray would wrap the exception and
        # lose it): pass 1 raises it where the local engine would, in chunk order.
        outcomes, fp = error_payload(exc), fingerprint([], settings)
    columns = fingerprint_columns(fp)
    columns["own_id"] = np.full(len(fp.ids), None, dtype=object)
    if not isinstance(outcomes, bytes) and any(isinstance(o, tuple) for o in outcomes):
        # A row's own `id` stays here, beside its item (one per outcome that is not a reject),
        # counted by a shuffle in decide rather than in a set on the driver: the (own id, id)
        # outcomes go back as None.
        columns["own_id"] = np.asarray([o[0] if isinstance(o, tuple) else None for o in outcomes
                                        if not isinstance(o, Reject)], dtype=object)
        outcomes = [None if isinstance(o, tuple) else o for o in outcomes]
    # The chunk's outcomes ride on one extra row (order -1) in front of its fingerprints.
    columns["outcomes"] = np.full(len(fp.ids), None, dtype=object)
    columns["failed"] = np.zeros(len(fp.ids), dtype=bool)
    head = {name: _one_blank(name, values) for name, values in columns.items()}
    failed = isinstance(outcomes, bytes)
    head["outcomes"] = np.asarray([outcomes if failed else pickle.dumps(outcomes, protocol=pickle.HIGHEST_PROTOCOL)],
                                  dtype=object)
    head["failed"] = np.asarray([failed])
    head["order"] = np.asarray([-1], dtype=np.int64)
    return {name: np.concatenate([head[name], columns[name]]) for name in columns}


def _one_blank(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype == object:
        return np.asarray([b"" if name in ("sig", "bands") else ""], dtype=object)
    return np.zeros(1, dtype=values.dtype)


def _fingerprint_rows(batch):
    keep = batch["order"] >= 0
    return {name: np.asarray(values)[keep] for name, values in batch.items()
            if name not in ("outcomes", "failed", "own_id")}


def _own_id_rows(batch):
    keep = has_own_id(batch) & (batch["order"] >= 0)
    return {name: np.asarray(batch[name])[keep] for name in ("order", "id", "own_id")}


def _outcome_rows(batch):
    keep = batch["order"] < 0
    return {"outcomes": np.asarray(batch["outcomes"])[keep], "failed": np.asarray(batch["failed"])[keep]}


class _Removals:
    """The removals as the runner's pass 2 asks for them: get(item number), in increasing item
    number; items are numbered in input order, so the n-th item is the n-th smallest `order`.
    `orders`: the items' numbers, one dataset per input file, in input order."""

    def __init__(self, orders, removals):
        self._orders = _stream(orders, "order")
        self._removals = _stream_rows(removals)
        self._item, self._order = -1, None
        self._head = next(self._removals, None)
        self.clusters = 0 if removals is None else removals.groupby("cluster").count().count()

    def get(self, item: int):
        from instruct_data.dedupe.types import Removal

        while self._item < item:
            self._order = next(self._orders)
            self._item += 1
        while self._head is not None and self._head["order"] < self._order:
            self._head = next(self._removals, None)
        if self._head is None or self._head["order"] != self._order:
            return None
        row = self._head
        return Removal(row["id"], row["duplicate_of"], row["cluster"], row["method"], row["similarity"])


def _stream(datasets, column: str) -> Iterator[int]:
    return (value for ds in datasets for batch in ds.iter_batches(batch_size=65536, batch_format="numpy")
            for value in batch[column].tolist())


def _stream_rows(ds) -> Iterator[dict]:
    if ds is None:
        return iter(())
    return (dict(zip(batch, values)) for batch in ds.iter_batches(batch_size=8192, batch_format="numpy")
            for values in zip(*(batch[name].tolist() for name in batch)))
