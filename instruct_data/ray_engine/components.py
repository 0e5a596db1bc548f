"""Connected components of a graph held as a Ray dataset of edges, never in one process.

Large-star / small-star rounds (Kiveris et al., "Connected Components in MapReduce and
Beyond", 2014), the scheme Spark dedupe tools use: each star step groups the edges by one
endpoint (a shuffle) and links that node's neighbours to the smallest node in sight. When a
round changes no edge, every edge links a node to the smallest node of its component.
"""

from __future__ import annotations

import numpy as np

from instruct_data.ray_engine.shuffle import by_partition, partition_of

MAX_ROUNDS = 64  # O(log^2 n) rounds suffice; this bound is never reached on real graphs


def components(edges, parts: int):
    """(node, root) for every node of `edges` (columns a, b: int64), root = the smallest node of
    its component."""
    for _ in range(MAX_ROUNDS):
        edges, large = _star(edges, _large_star, parts, both_ways=True)
        edges, small = _star(edges, _small_star, parts, both_ways=False)
        if not large and not small:
            break
    else:
        raise RuntimeError("connected components did not converge")
    labels = edges.map_batches(_labels_of_edges, batch_format="numpy")
    return by_partition(labels, "node", parts, _unique_labels)


def _star(edges, step, parts: int, *, both_ways: bool):
    oriented = edges.map_batches(_orient, fn_kwargs={"both_ways": both_ways}, batch_format="numpy")
    result = by_partition(oriented, "u", parts, step).materialize()
    changed = result.sum("changed") if result.count() else 0
    return result.select_columns(["a", "b"]), int(changed or 0)


def _orient(batch, both_ways: bool):
    a, b = batch["a"], batch["b"]
    if both_ways:
        return {"u": np.concatenate([a, b]), "v": np.concatenate([b, a])}
    return {"u": np.maximum(a, b), "v": np.minimum(a, b)}


def _groups(batch):
    """The distinct (u, v) edges sorted by u, where each u's run starts, and each row's run."""
    u, v = np.asarray(batch["u"], dtype=np.int64), np.asarray(batch["v"], dtype=np.int64)
    keep = u != v
    pairs = np.unique(np.stack([u[keep], v[keep]], axis=1), axis=0) if keep.any() else np.zeros((0, 2), np.int64)
    u, v = pairs[:, 0], pairs[:, 1]
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]])) if len(u) else np.zeros(0, np.int64)
    run = np.repeat(np.arange(len(starts)), np.diff(np.concatenate([starts, [len(u)]])))
    return u, v, starts, run


def _large_star(batch):
    """Each node u: its larger neighbours are linked to m = min(u, neighbours)."""
    u, v, starts, run = _groups(batch)
    if not len(u):
        return _edges([], [], [])
    m = np.minimum(np.minimum.reduceat(v, starts), u[starts])[run]
    out = v > u
    return _edges(v[out], m[out], (m != u)[out])


def _small_star(batch):
    """Each node u with smaller neighbours N: u and N are linked to m = min(N)."""
    u, v, starts, run = _groups(batch)
    if not len(u):
        return _edges([], [], [])
    m_run = np.minimum.reduceat(v, starts)
    m = m_run[run]
    moved = v != m  # (u, v) becomes (v, m); the edge (u, m) stays
    a = np.concatenate([v[moved], u[starts]])
    b = np.concatenate([m[moved], m_run])
    changed = np.concatenate([np.ones(int(moved.sum()), dtype=bool), np.zeros(len(starts), dtype=bool)])
    return _edges(a, b, changed)


def _edges(a, b, changed):
    return {"a": np.asarray(a, dtype=np.int64), "b": np.asarray(b, dtype=np.int64),
            "changed": np.asarray(changed, dtype=np.int64)}


def _labels_of_edges(batch):
    a, b = np.asarray(batch["a"], dtype=np.int64), np.asarray(batch["b"], dtype=np.int64)
    return {"node": np.concatenate([a, b]), "root": np.concatenate([np.minimum(a, b), np.minimum(a, b)])}


def _unique_labels(batch):
    node, root = np.asarray(batch["node"], dtype=np.int64), np.asarray(batch["root"], dtype=np.int64)
    order = np.lexsort((root, node))
    node, root = node[order], root[order]
    first = np.concatenate([[True], node[1:] != node[:-1]]) if len(node) else np.zeros(0, dtype=bool)
    return {"node": node[first], "root": root[first]}


__all__ = ["components", "partition_of"]
