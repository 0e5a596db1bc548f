"""Which copy survives: a rank from the policy, then a tie-break that ignores input order.

Every item gets one global rank (0 = best): protected items first, then the policy
(`first`: the caller's `order`; `longest-reply`: the longest reply), then the hash of the
stored text, then the id. The rank depends only on the items themselves, never on the
order they arrive in or on how the work was split, so the survivor is the same either way.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from instruct_data.dedupe.types import Removal


def ranks(policy: str, *, protected: np.ndarray, order: np.ndarray, reply_len: np.ndarray,
          content: np.ndarray, ids: list[str]) -> np.ndarray:
    """rank[i]: position of item i when all items are sorted best-first."""
    primary = order if policy == "first" else -reply_len.astype(np.int64)
    if len(primary) > 1 and bool(np.all(primary[1:] > primary[:-1])):
        # The usual case of policy "first": the items come in their order, each order once.
        # The order alone then ranks the items within each protection class, and the stable
        # sort of the protection flags gives the same permutation as the full sort below.
        sorted_idx = np.argsort(~protected, kind="stable")
        rank = np.empty(len(ids), dtype=np.int64)
        rank[sorted_idx] = np.arange(len(ids))
        return rank
    # `content` is (n, 2) uint64 halves of the stored text's hash.
    sorted_idx = np.lexsort((content[:, 1], content[:, 0], primary, ~protected))
    # Items equal in all of that (the same text, the same order) are ordered by id: rare, so
    # they are found and sorted here rather than sorting a million ids.
    keys = (~protected[sorted_idx], primary[sorted_idx], content[sorted_idx, 0], content[sorted_idx, 1])
    tie = np.ones(len(ids) - 1, dtype=bool) if len(ids) > 1 else np.zeros(0, dtype=bool)
    for key in keys:
        tie &= key[1:] == key[:-1]
    if tie.any():
        starts = np.flatnonzero(np.concatenate([[True], ~tie]))
        ends = np.concatenate([starts[1:], [len(ids)]])
        for a, b in zip(starts[ends - starts > 1], ends[ends - starts > 1]):
            run = sorted_idx[a:b].tolist()
            sorted_idx[a:b] = sorted(run, key=lambda i: ids[i])
    rank = np.empty(len(ids), dtype=np.int64)
    rank[sorted_idx] = np.arange(len(ids))
    return rank


class Clusters:
    """Union-find over item indices, to name each removal's cluster after its best member."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        root = i
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(i, i) != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, i: int, j: int, rank: np.ndarray) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            if rank[b] < rank[a]:
                a, b = b, a
            self.parent[b] = a  # the best-ranked member stays the root


def method_for(survivor_protected: bool, base: str) -> str:
    return "contamination" if survivor_protected else base


def exact_groups(keys: np.ndarray, eligible: np.ndarray, rank: np.ndarray) -> list[np.ndarray]:
    """Groups (best-ranked first) of eligible items with equal exact keys, size > 1 only."""
    idx = np.flatnonzero(eligible)
    if len(idx) < 2:
        return []
    # Only items whose first key half is shared can be in a group: found with one sort of
    # that half, so that the full sort below runs on those few items only.
    first = keys[idx, 0]
    by_first = np.argsort(first, kind="stable")
    shared = first[by_first][1:] == first[by_first][:-1]
    if not shared.any():
        return []
    candidate = np.zeros(len(idx), dtype=bool)
    candidate[1:] |= shared
    candidate[:-1] |= shared
    idx = idx[np.sort(by_first[candidate])]
    k = keys[idx]
    order = np.lexsort((rank[idx], k[:, 1], k[:, 0]))
    k, idx = k[order], idx[order]
    same = (k[1:] == k[:-1]).all(axis=1)
    if not same.any():
        return []
    bounds = np.flatnonzero(np.concatenate([[True], ~same, [True]]))
    return [idx[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b - a > 1]


def exact_survivors(group: np.ndarray, dialogue: np.ndarray, protected: np.ndarray) -> list[tuple[int, int]]:
    """(removed, kept) in one exact group (best-ranked first): each item is a copy of the
    best-ranked kept item of another dialogue; one with none (the group's others are records
    of its own dialogue, or were removed) is kept, as is a protected item."""
    kept: list[int] = []
    removed = []
    for item in group.tolist():
        keep = None if protected[item] else next((k for k in kept if dialogue[k] != dialogue[item]), None)
        if keep is None:
            kept.append(item)
        else:
            removed.append((item, keep))
    return removed


def resolve_near(pairs: np.ndarray, sims: np.ndarray, rank: np.ndarray,
                 protected: np.ndarray) -> list[tuple[int, int, float]]:
    """(removed, kept, similarity) from verified pairs, greedily in rank order.

    Walking each connected group best-first, an item is removed only when it is similar to an
    item already kept (its best such neighbour); so every removal has a checked similarity
    to its survivor, and a chain a~b~c never removes c for resembling a removed b.
    """
    neighbours: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for (i, j), s in zip(pairs.tolist(), sims.tolist()):
        neighbours[i].append((j, s))
        neighbours[j].append((i, s))
    kept: set[int] = set()
    removed: list[tuple[int, int, float]] = []
    for item in sorted(neighbours, key=lambda i: rank[i]):
        best = None
        if not protected[item]:
            for other, s in neighbours[item]:
                if other in kept and (best is None or (s, -rank[other]) > (best[1], -rank[best[0]])):
                    best = (other, s)
        if best is None:
            kept.add(item)
        else:
            removed.append((item, best[0], best[1]))
    return removed


def removal(ids: list[str], clusters: Clusters, item: int, kept: int, method: str, similarity: float) -> Removal:
    return Removal(id=ids[item], duplicate_of=ids[kept], cluster=ids[clusters.find(item)], method=method,
                   similarity=round(float(similarity), 4))
