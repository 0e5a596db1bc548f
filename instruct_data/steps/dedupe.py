"""Dedupe's decision, written once as steps over partitions for both executors.

Each function below takes the columns of one partition (numpy arrays) and returns row
positions within it, or plain arrays; the executor chooses the partitions, moves them, and
maps the positions back to its own item numbers. dedupe.find (the local executor: hash
partitions spilled to disk) and ray_engine.decide (Ray shuffles) call the same functions:

1. contamination, row by row: `contaminated` (the benchmark match was found while fingerprinting);
2. exact, over rows partitioned by exact key (every copy of a key in one partition):
   `exact_partition`;
3. near, over (band, key) entries of the rows left, partitioned by key (every member of a
   bucket in one partition): `band_pairs` gives candidate pairs; over the pairs partitioned
   by item, with the signatures of both ends: `check_pairs` keeps those at the threshold; over
   whole connected components of the verified pairs: `resolve` walks each best-first;
4. clusters: `resolve` names each near removal's cluster (the best-ranked member of its tree
   of removals); `survivor_clusters` gives an exact copy its survivor's.

`rank` is any integer array that orders the partition's rows as dedupe.select.ranks orders all
items: the global ranks of those rows, or ranks() over the partition's own rows (they sort by
the same keys), give the same answer. So the removals do not depend on how rows are partitioned.

The removals of a decision are one RemovalTable (columns of item numbers), for a build and
for `idata dedupe` alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from instruct_data.dedupe.near import across_dialogues, candidate_pairs, verified_pairs
from instruct_data.dedupe.select import Clusters, exact_groups, exact_survivors, resolve_near
from instruct_data.dedupe.types import Removal

METHODS: tuple[str, ...] = ("exact", "near", "contamination")  # RemovalTable.method indexes this
EXACT, NEAR, CONTAMINATION = range(3)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def partition_of(values: np.ndarray, parts: int) -> np.ndarray:
    """A partition number in [0, parts) for each integer value (a key or an item number),
    spread by a multiplicative hash."""
    with np.errstate(over="ignore"):
        mixed = np.asarray(values).astype(np.uint64) * _MIX
    return ((mixed >> np.uint64(32)) % np.uint64(parts)).astype(np.int64)


def contaminated(against: np.ndarray, protected: np.ndarray) -> np.ndarray:
    """Rows whose prompt matched a benchmark question (`against` >= 0), unless protected."""
    return (np.asarray(against) >= 0) & ~np.asarray(protected, dtype=bool)


def _method(protected_survivor: np.ndarray, base: int) -> np.ndarray:
    """A copy of a protected row is contamination, whatever found it."""
    return np.where(protected_survivor, CONTAMINATION, base).astype(np.uint8)


def exact_partition(keys: np.ndarray, rank: np.ndarray, dialogue: np.ndarray,
                    protected: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(removed, kept, method) among rows with equal exact keys ((n, 2) uint64): in each group,
    best-ranked first, a row is a copy of the best-ranked kept row of another dialogue
    (dedupe.select.exact_survivors); protected rows are kept. Positions in the partition."""
    protected = np.asarray(protected, dtype=bool)
    removed, kept = [], []
    for group in exact_groups(keys, np.ones(len(rank), dtype=bool), rank):
        for other, keep in exact_survivors(group, dialogue, protected):
            removed.append(other)
            kept.append(keep)
    removed_at = np.asarray(removed, dtype=np.int64)
    kept_at = np.asarray(kept, dtype=np.int64)
    return removed_at, kept_at, _method(protected[kept_at], EXACT)


def band_pairs(band: np.ndarray, key: np.ndarray, rank: np.ndarray, dialogue: np.ndarray) -> np.ndarray:
    """Candidate pairs (i < j, positions in the partition, unique and sorted) among band
    entries (one per row and band: its band number and that band's key): two rows of
    different dialogues sharing a key in one band (dedupe.near.candidate_pairs, bucket by
    bucket). Every entry of a (band, key) bucket must be in the partition."""
    band = np.asarray(band)
    key = np.asarray(key).astype(np.uint64)
    bands = np.unique(band)
    found = []
    for b in bands.tolist():
        rows = np.flatnonzero(band == b) if len(bands) > 1 else np.arange(len(band))
        pairs = across_dialogues(candidate_pairs(key[rows][:, None], rank[rows]), dialogue[rows])
        found.append(rows[pairs])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(found).astype(np.int64), axis=1)
    return unique_pairs(pairs)


def unique_pairs(pairs: np.ndarray) -> np.ndarray:
    """The distinct rows of an (n, 2) int64 array of pairs (i < j), sorted."""
    if len(pairs) < 2:
        return pairs
    top = int(pairs.max()) + 1
    if top > 1 << 31:  # (Ray's item numbers carry their file in the high bits)
        return np.unique(pairs, axis=0)
    # One int64 per pair: far faster and smaller to make unique than rows of two.
    codes = np.unique(pairs[:, 0] * top + pairs[:, 1])
    return np.stack([codes // top, codes % top], axis=1)


def check_pairs(sig, pairs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose signatures (sig[i]: row i's; a matrix, or anything indexed by
    an array of rows) estimate a Jaccard at or above the threshold, with that similarity."""
    return verified_pairs(sig, pairs, threshold)


@dataclass
class Resolved:
    """What `resolve` decided, in positions of its partition: the near removals, and the
    cluster (best-ranked member of the tree of removals) of any node (`cluster_of`)."""

    removed: np.ndarray  # int64
    kept: np.ndarray  # int64
    similarity: np.ndarray  # float64, as verified (rounded where a Removal is made)
    method: np.ndarray  # uint8: index into METHODS
    clusters: Clusters

    def cluster_of(self, nodes: np.ndarray) -> np.ndarray:
        return np.fromiter((self.clusters.find(i) for i in np.asarray(nodes).tolist()), dtype=np.int64,
                           count=len(nodes))


def resolve(pairs: np.ndarray, sims: np.ndarray, rank: np.ndarray, protected: np.ndarray) -> Resolved:
    """The near removals among verified pairs (positions i, j into rank and protected) that
    hold whole connected components: each component walked best-ranked first, a row removed
    when it is similar to a row already kept (dedupe.select.resolve_near); protected rows are
    kept. A component's answer does not depend on the others, so any grouping of whole
    components gives the same."""
    protected = np.asarray(protected, dtype=bool)
    clusters = Clusters()
    removed, kept, sim = [], [], []
    for r, k, s in resolve_near(pairs, sims, rank, protected):
        removed.append(r)
        kept.append(k)
        sim.append(s)
        clusters.union(r, k, rank)
    kept_at = np.asarray(kept, dtype=np.int64)
    return Resolved(np.asarray(removed, dtype=np.int64), kept_at, np.asarray(sim, dtype=np.float64),
                    _method(protected[kept_at], NEAR), clusters)


def survivor_clusters(keep: np.ndarray, node: np.ndarray, cluster: np.ndarray,
                      own: np.ndarray | None = None) -> np.ndarray:
    """The cluster of each exact copy, from its survivor `keep`: the survivor's near cluster
    where it is a node of a verified pair (`node` sorted, with its `cluster`), else the
    survivor itself (`own`: how to name it; default its number)."""
    keep = np.asarray(keep, dtype=np.int64)
    own = keep if own is None else np.asarray(own)
    if not len(node):
        return own.copy()
    at = np.minimum(np.searchsorted(node, keep), len(node) - 1)
    return np.where(node[at] == keep, np.asarray(cluster)[at], own)


@dataclass
class RemovalTable:
    """The removals of one decision as columns, one entry per removed item: about 33 bytes
    each, where a Removal with its strings and the dict that held it took about 0.8 KB. A
    benchmark question q is named -1 - q in `kept` and `cluster`. The one shape of dedupe's
    answer: a build turns it into rows and records (pipeline.decide.RowRemovals), `idata
    dedupe` reads it item by item (ItemRemovals)."""

    item: np.ndarray  # int64: the removed item
    kept: np.ndarray  # int64: the item it duplicates (or -1 - q)
    cluster: np.ndarray  # int64: its cluster's best-ranked item (or -1 - q)
    method: np.ndarray  # uint8: index into METHODS
    similarity: np.ndarray  # float64, as found (rounded where a Removal is made)

    @classmethod
    def empty(cls) -> "RemovalTable":
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.float64))

    @classmethod
    def join(cls, tables: Sequence["RemovalTable"]) -> "RemovalTable":
        """One table of several (the partitions' answers), in the order given."""
        if not tables:
            return cls.empty()
        return cls(*(np.concatenate([getattr(t, name) for t in tables])
                     for name in ("item", "kept", "cluster", "method", "similarity")))

    def __len__(self) -> int:
        return len(self.item)

    def sorted(self) -> "RemovalTable":
        """The same removals sorted by removed item."""
        order = np.argsort(self.item, kind="stable")
        return RemovalTable(self.item[order], self.kept[order], self.cluster[order], self.method[order],
                            self.similarity[order])

    def as_dict(self, ids: Sequence[str], question_ids: list[str]) -> dict[int, Removal]:
        """{removed item: Removal}, in the table's order."""
        names = _Names(ids, question_ids)
        return {int(i): names.removal_of(self, k) for k, i in enumerate(self.item.tolist())}


class _Names:
    """Item numbers to ids (a benchmark question q is -1 - q), each survivor's string made once."""

    def __init__(self, ids: Sequence[str], question_ids: list[str]):
        self.ids, self.question_ids = ids, question_ids
        self._survivors: dict[int, str] = {}

    def name(self, k: int) -> str:
        if k not in self._survivors:
            self._survivors[k] = self.question_ids[-1 - k] if k < 0 else self.ids[k]
        return self._survivors[k]

    def removal_of(self, table: RemovalTable, k: int) -> Removal:
        return Removal(self.ids[int(table.item[k])], self.name(int(table.kept[k])), self.name(int(table.cluster[k])),
                       METHODS[int(table.method[k])], round(float(table.similarity[k]), 4))


class ItemRemovals:
    """A RemovalTable read item by item, as `idata dedupe`'s pass 2 asks (dedupe.runner):
    `get(item)` is the item's Removal or None; `clusters` the number of distinct clusters.
    Held as the sorted columns; a Removal is made only for an item asked about."""

    def __init__(self, table: RemovalTable, ids: Sequence[str], question_ids: list[str]):
        self.table = table.sorted()
        self._names = _Names(ids, question_ids)
        # Distinct cluster names (two items may share an id): one string per cluster.
        self.clusters = len({self._names.name(c) for c in np.unique(self.table.cluster).tolist()})

    def __len__(self) -> int:
        return len(self.table)

    def get(self, item: int) -> Removal | None:
        k = int(np.searchsorted(self.table.item, item))
        if k == len(self.table) or self.table.item[k] != item:
            return None
        return self._names.removal_of(self.table, k)

    def values(self) -> list[Removal]:
        return [self._names.removal_of(self.table, k) for k in range(len(self.table))]
