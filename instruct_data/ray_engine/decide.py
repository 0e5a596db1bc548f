"""Dedupe's decision on Ray: the same removals as dedupe.find.decide, made with shuffles.

Input: a dataset of fingerprints, one row per compared item (dedupe.fingerprint's per-row
fields; `order` is the item's number). Output: a dataset of removals (order, id,
duplicate_of, cluster, method, similarity). The steps are
instruct_data.steps.dedupe's, the same functions the local executor calls; this module only
moves the rows each step needs into one partition (by_partition, a shuffle) and back:

1. contamination: each row on its own (steps.dedupe.contaminated);
2. exact: rows partitioned by exact key; steps.dedupe.exact_partition per partition;
3. near, as the large-scale tools do it: (band, key) entries partitioned by the key,
   steps.dedupe.band_pairs emits the candidate pairs; each pair meets the two signatures
   (two shuffles) and steps.dedupe.check_pairs keeps those at the threshold; connected
   components of the verified pairs (ray_engine.components); steps.dedupe.resolve per
   partition of whole components;
4. clusters: resolve names a removal's cluster; an exact copy takes its survivor's near
   cluster (a join, then steps.dedupe.survivor_clusters).

Ranks are computed inside each partition with dedupe.select.ranks on the partition's own
rows: they sort by the same keys as the global rank, so every comparison agrees with it.
"""

from __future__ import annotations

import numpy as np

from instruct_data.dedupe.select import ranks
from instruct_data.steps import dedupe as steps
from instruct_data.ray_engine.components import components
from instruct_data.ray_engine.runtime import note_stage
from instruct_data.ray_engine.shuffle import by_partition

RANK_FIELDS = ("order", "protected", "reply_len", "content0", "content1", "id")
REMOVAL_FIELDS = ("order", "id", "duplicate_of", "cluster", "method", "similarity")


def removals(fp, settings, question_ids: list[str], parts: int):
    """The removals dataset of a fingerprint dataset (see the module docstring)."""
    found = [fp.map_batches(_contaminated, fn_kwargs={"question_ids": question_ids}, batch_format="numpy")]
    alive = where(fp, _not_contaminated)
    if settings.exact:
        alive = by_partition(alive, "exact0", parts, _exact_partition, policy=settings.policy).materialize()
        exact = where(alive, _exact_copy)
        alive = where(alive, _exact_copy, keep=False)
    else:
        exact = None
    clusters = None
    if settings.near:
        eligible = where(alive, _has_signature).materialize()
        near, clusters = _near(eligible, settings, parts)
        found.append(near)
    if exact is not None:
        found.append(_exact_removals(exact, clusters, parts))
    return found[0].union(*found[1:]) if len(found) > 1 else found[0]


def where(ds, test, keep: bool = True, **test_kwargs):
    """The rows of `ds` for which test(batch, **test_kwargs) is true (false with keep=False)."""
    return ds.map_batches(_where, fn_args=(test, keep), fn_kwargs=test_kwargs, batch_format="numpy")


def _where(batch, test, keep: bool, **test_kwargs):
    mask = test(batch, **test_kwargs)
    mask = mask if keep else ~mask
    return {name: np.asarray(values)[mask] for name, values in batch.items()}


def _not_contaminated(batch):
    return ~steps.contaminated(batch["against"], batch["protected"])


def _exact_copy(batch):
    return batch["keep_order"] >= 0


def _has_signature(batch):
    return batch["has_sig"].astype(bool)


def _removed(batch):
    return batch["method"] != ""


# ------------------------------------------------------------------ ranks within a partition


def _local_ranks(batch, policy: str, prefix: str = "") -> np.ndarray:
    """dedupe.select.ranks over the rows of one partition."""
    n = len(batch[prefix + "order"])

    def column(name, default=0):  # policy "first" ranks by order alone: the tie-breaks may be left out
        values = batch.get(prefix + name)
        return np.asarray(values) if values is not None else np.full(n, default, dtype=object if default == "" else
                                                                     np.int64)

    content = np.stack([column("content0").astype(np.uint64), column("content1").astype(np.uint64)], axis=1)
    return ranks(policy, protected=column("protected").astype(bool), order=column("order").astype(np.int64),
                 reply_len=column("reply_len").astype(np.int64), content=content, ids=list(column("id", "")))


def _removal_columns(order, ids, duplicate_of, cluster, method, similarity) -> dict[str, np.ndarray]:
    return {"order": np.asarray(order, dtype=np.int64), "id": np.asarray(ids, dtype=object),
            "duplicate_of": np.asarray(duplicate_of, dtype=object), "cluster": np.asarray(cluster, dtype=object),
            "method": np.asarray(method, dtype=object), "similarity": np.asarray(similarity, dtype=np.float64)}


# ------------------------------------------------------------------ 1. contamination


def _contaminated(batch, question_ids: list[str]):
    hit = np.flatnonzero(steps.contaminated(batch["against"], batch["protected"]))
    questions = [question_ids[q] for q in batch["against"][hit].tolist()]
    sims = [round(float(s), 4) for s in batch["against_sim"][hit]]
    return _removal_columns(batch["order"][hit], batch["id"][hit], questions, questions,
                            ["contamination"] * len(hit), sims)


# ------------------------------------------------------------------ 2. exact


def _exact_partition(batch, policy: str):
    """All rows of the partition, with keep_order / keep_id / method set on the exact copies removed."""
    n = len(batch["order"])
    keep_order = np.full(n, -1, dtype=np.int64)
    keep_id = np.full(n, "", dtype=object)
    method = np.full(n, "", dtype=object)
    if n > 1:
        keys = np.stack([batch["exact0"].astype(np.uint64), batch["exact1"].astype(np.uint64)], axis=1)
        rank = _local_ranks(batch, policy)
        protected = batch["protected"].astype(bool)
        dialogue = batch["dialogue"].astype(np.uint64)
        removed, kept, code = steps.exact_partition(keys, rank, dialogue, protected)
        keep_order[removed] = np.asarray(batch["order"])[kept]
        keep_id[removed] = np.asarray(batch["id"], dtype=object)[kept]
        method[removed] = [steps.METHODS[c] for c in code.tolist()]
    return {**batch, "keep_order": keep_order, "keep_id": keep_id, "method": method}


def _exact_removals(exact, clusters, parts: int):
    """Exact copies as removals; the cluster is their survivor's near cluster, where it has one."""
    if clusters is None:
        return exact.map_batches(_exact_as_removals, batch_format="numpy")
    rows = exact.map_batches(_exact_for_join, batch_format="numpy").union(
        clusters.map_batches(_cluster_for_join, batch_format="numpy"))
    return by_partition(rows, "key", parts, _join_clusters)


def _exact_as_removals(batch, cluster=None):
    cluster = batch["keep_id"] if cluster is None else cluster
    return _removal_columns(batch["order"], batch["id"], batch["keep_id"], cluster, batch["method"],
                            np.ones(len(batch["order"])))


_JOIN_FIELDS = ("key", "is_cluster", "order", "id", "keep_id", "method")


def _exact_for_join(batch):
    n = len(batch["order"])
    return {"key": batch["keep_order"], "is_cluster": np.zeros(n, dtype=bool), "order": batch["order"],
            "id": batch["id"], "keep_id": batch["keep_id"], "method": batch["method"]}


def _cluster_for_join(batch):
    n = len(batch["node"])
    return {"key": batch["node"], "is_cluster": np.ones(n, dtype=bool), "order": batch["node"],
            "id": batch["cluster"], "keep_id": np.full(n, "", dtype=object), "method": np.full(n, "", dtype=object)}


def _join_clusters(batch):
    is_cluster = batch["is_cluster"].astype(bool)
    node, named = np.asarray(batch["key"])[is_cluster], np.asarray(batch["id"], dtype=object)[is_cluster]
    order = np.argsort(node, kind="stable")
    node, named = node[order].astype(np.int64), named[order]
    rows = {name: np.asarray(values)[~is_cluster] for name, values in batch.items()}
    names = steps.survivor_clusters(rows["key"], node, named, own=rows["keep_id"])
    return _exact_as_removals(rows, np.asarray(names, dtype=object))


# ------------------------------------------------------------------ 3. near


def _near(eligible, settings, parts: int):
    """(near removals, (node, cluster) of every node in a verified pair)."""
    keep_ids = settings.policy != "first"  # policy "first" ranks by order alone: ids never break a tie
    entries = eligible.map_batches(_band_entries, fn_kwargs={"bands": settings.bands, "keep_ids": keep_ids},
                                   batch_format="numpy")
    pairs = by_partition(entries, "key", parts, _bucket_pairs, policy=settings.policy).materialize()
    note_stage("candidate pairs (from band entries)", pairs, shuffled=entries)
    if not pairs.count():
        return _no_removals(eligible), eligible.limit(0).map_batches(_no_clusters, batch_format="numpy")
    verified = _verify(eligible, pairs, settings.threshold, parts).materialize()
    note_stage("verified pairs", verified)
    if not verified.count():
        return _no_removals(eligible), eligible.limit(0).map_batches(_no_clusters, batch_format="numpy")
    labels = components(verified.select_columns(["a", "b"]), parts)
    joined = verified.map_batches(_edge_rows, batch_format="numpy").union(
        labels.map_batches(_label_rows, batch_format="numpy"))
    with_roots = by_partition(joined, "a", parts, _attach_roots)
    resolved = by_partition(with_roots, "root", parts, _resolve, policy=settings.policy).materialize()
    near = where(resolved, _removed).map_batches(_as_removals, batch_format="numpy")
    clusters = resolved.map_batches(_as_clusters, batch_format="numpy")
    return near, clusters


def _no_removals(ds):
    return ds.limit(0).map_batches(lambda b: _removal_columns([], [], [], [], [], []), batch_format="numpy")


def _no_clusters(batch):
    return {"node": np.zeros(0, dtype=np.int64), "cluster": np.zeros(0, dtype=object)}


def _band_entries(batch, bands: int, keep_ids: bool):
    """One row per (item, band): the band key and what ranks the item (with policy "first",
    its order and protection only: the largest shuffle of the job, kept narrow)."""
    n = len(batch["order"])
    keys = np.frombuffer(b"".join(batch["bands"]), dtype=np.uint64).reshape(n, bands) if n else \
        np.zeros((0, bands), dtype=np.uint64)
    repeat = lambda column: np.repeat(np.asarray(column), bands)  # noqa: E731
    entries = {"band": np.tile(np.arange(bands, dtype=np.int16), n), "key": keys.reshape(-1).view(np.int64),
               "order": repeat(batch["order"]), "protected": repeat(batch["protected"]),
               "dialogue": repeat(batch["dialogue"])}
    if keep_ids:
        entries.update(reply_len=repeat(batch["reply_len"]), content0=repeat(batch["content0"]),
                       content1=repeat(batch["content1"]), id=repeat(batch["id"]))
    return entries


def _bucket_pairs(batch, policy: str):
    """steps.dedupe.band_pairs on the partition's entries: (a, b) orders, a < b."""
    band = np.asarray(batch["band"])
    # Ranked band by band: an item has one entry per band, and only a band's entries meet.
    rank = np.empty(len(band), dtype=np.int64)
    for b in np.unique(band).tolist():
        rows = np.flatnonzero(band == b)
        rank[rows] = _local_ranks({name: np.asarray(values)[rows] for name, values in batch.items()}, policy)
    pairs = steps.band_pairs(band, batch["key"], rank, np.asarray(batch["dialogue"]).astype(np.uint64))
    pairs = steps.unique_pairs(np.sort(np.asarray(batch["order"], dtype=np.int64)[pairs], axis=1))
    return {"a": pairs[:, 0], "b": pairs[:, 1]}


_SIDE_FIELDS = ("protected", "reply_len", "content0", "content1", "id")


def _verify(eligible, pairs, threshold: float, parts: int):
    """Each candidate pair meets both signatures; the pairs at the threshold, with what ranks
    both ends (a_*, b_* columns) and their similarity."""
    signatures = eligible.map_batches(_signature_rows, batch_format="numpy")
    ends = pairs.map_batches(_pair_ends, batch_format="numpy")
    with_sig = by_partition(signatures.union(ends), "node", parts, _attach_signature)
    return by_partition(with_sig, "a", parts, _check_pairs, threshold=threshold)


def _signature_rows(batch):
    n = len(batch["order"])
    return {"node": batch["order"], "a": np.full(n, -1, dtype=np.int64), "b": np.full(n, -1, dtype=np.int64),
            "sig": batch["sig"], **{name: batch[name] for name in _SIDE_FIELDS}}


def _pair_ends(batch):
    a, b = np.asarray(batch["a"], dtype=np.int64), np.asarray(batch["b"], dtype=np.int64)
    n = 2 * len(a)
    return {"node": np.concatenate([a, b]), "a": np.concatenate([a, a]), "b": np.concatenate([b, b]),
            "sig": np.full(n, b"", dtype=object), "protected": np.zeros(n, dtype=bool),
            "reply_len": np.zeros(n, dtype=np.int64), "content0": np.zeros(n, dtype=np.uint64),
            "content1": np.zeros(n, dtype=np.uint64), "id": np.full(n, "", dtype=object)}


def _attach_signature(batch):
    """Pair ends with the signature (and rank fields) of their node."""
    is_sig = np.asarray(batch["a"]) < 0
    at = {node: i for i, node in zip(np.flatnonzero(is_sig).tolist(), np.asarray(batch["node"])[is_sig].tolist())}
    ends = np.flatnonzero(~is_sig)
    source = np.asarray([at[node] for node in np.asarray(batch["node"])[ends].tolist()], dtype=np.int64)
    out = {name: np.asarray(batch[name])[source] for name in ("node", "sig", *_SIDE_FIELDS)}
    out["a"], out["b"] = np.asarray(batch["a"])[ends], np.asarray(batch["b"])[ends]
    return out


def _check_pairs(batch, threshold: float):
    """steps.dedupe.check_pairs on the pairs of the partition (both ends of each are here)."""
    nodes, first = np.unique(np.asarray(batch["node"], dtype=np.int64), return_index=True)
    if not len(nodes):
        return _pair_columns(np.zeros((0, 2), np.int64), np.zeros(0, np.float32), {}, nodes)
    sig = np.frombuffer(b"".join(np.asarray(batch["sig"])[first]), dtype=np.uint32).reshape(len(nodes), -1)
    pairs = np.unique(np.stack([np.asarray(batch["a"]), np.asarray(batch["b"])], axis=1).astype(np.int64), axis=0)
    local = np.searchsorted(nodes, pairs)
    local, sims = steps.check_pairs(sig, local, threshold)
    fields = {name: np.asarray(batch[name])[first] for name in _SIDE_FIELDS}
    return _pair_columns(nodes[local], sims, fields, local)


def _pair_columns(pairs, sims, fields, local):
    out = {"a": pairs[:, 0].astype(np.int64), "b": pairs[:, 1].astype(np.int64), "sim": sims.astype(np.float32)}
    for name in _SIDE_FIELDS:
        values = fields.get(name)
        for side, column in (("a", 0), ("b", 1)):
            out[f"{side}_{name}"] = values[local[:, column]] if values is not None else np.zeros(0, dtype=object)
    return out


_EDGE_FIELDS = ("a", "b", "sim", *(f"{s}_{n}" for s in "ab" for n in _SIDE_FIELDS))


def _edge_rows(batch):
    return {**{name: batch[name] for name in _EDGE_FIELDS}, "root": np.full(len(batch["a"]), -1, dtype=np.int64)}


def _label_rows(batch):
    n = len(batch["node"])
    rows = {"a": batch["node"], "b": np.full(n, -1, dtype=np.int64), "sim": np.zeros(n, dtype=np.float32),
            "root": batch["root"]}
    for side in "ab":
        rows.update({f"{side}_protected": np.zeros(n, dtype=bool), f"{side}_reply_len": np.zeros(n, dtype=np.int64),
                     f"{side}_content0": np.zeros(n, dtype=np.uint64), f"{side}_content1": np.zeros(n, dtype=np.uint64),
                     f"{side}_id": np.full(n, "", dtype=object)})
    return rows


def _attach_roots(batch):
    """Verified pairs with the component (root) of their first node."""
    is_label = np.asarray(batch["b"]) < 0
    root_of = dict(zip(np.asarray(batch["a"])[is_label].tolist(), np.asarray(batch["root"])[is_label].tolist()))
    edges = {name: np.asarray(values)[~is_label] for name, values in batch.items()}
    edges["root"] = np.asarray([root_of[a] for a in edges["a"].tolist()], dtype=np.int64)
    return edges


def _resolve(batch, policy: str):
    """steps.dedupe.resolve on the components of the partition; per node, its removal (method
    "" when kept) and its cluster (the best-ranked member of its tree of removals)."""
    a, b = np.asarray(batch["a"], dtype=np.int64), np.asarray(batch["b"], dtype=np.int64)
    nodes, first = np.unique(np.concatenate([a, b]), return_index=True)
    members = {"order": nodes}
    for name in _SIDE_FIELDS:
        both = np.concatenate([np.asarray(batch[f"a_{name}"]), np.asarray(batch[f"b_{name}"])])
        members[name] = both[first]
    rank = _local_ranks(members, policy)
    protected = members["protected"].astype(bool)
    pairs = np.stack([np.searchsorted(nodes, a), np.searchsorted(nodes, b)], axis=1)
    n = len(nodes)
    duplicate_of, method, sim = np.full(n, "", dtype=object), np.full(n, "", dtype=object), np.zeros(n)
    ids = np.asarray(members["id"], dtype=object)
    resolved = steps.resolve(pairs, np.asarray(batch["sim"], dtype=np.float32), rank, protected)
    duplicate_of[resolved.removed] = ids[resolved.kept]
    method[resolved.removed] = [steps.METHODS[c] for c in resolved.method.tolist()]
    sim[resolved.removed] = [round(s, 4) for s in resolved.similarity.tolist()]
    cluster = ids[resolved.cluster_of(np.arange(n))]
    return {"order": nodes, "id": ids, "duplicate_of": duplicate_of, "cluster": cluster, "method": method,
            "similarity": sim}


def _as_removals(batch):
    return {name: batch[name] for name in REMOVAL_FIELDS}


def _as_clusters(batch):
    return {"node": batch["order"], "cluster": batch["cluster"]}
