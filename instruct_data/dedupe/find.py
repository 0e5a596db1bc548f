"""find_duplicates: contamination, then exact groups, then verified near duplicates."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from instruct_data.dedupe.fingerprint import Against, Batch, fingerprint_all
from instruct_data.dedupe.near import Chunks, across_dialogues, candidate_pairs, verified_pairs
from instruct_data.dedupe.select import Clusters, exact_groups, exact_survivors, method_for, ranks, resolve_near
from instruct_data.dedupe.spill import SpilledFingerprints
from instruct_data.dedupe.types import DedupeSettings, Item, Removal


def against_questions(against: Iterable[str | Item]) -> list[tuple[str, str]]:
    """(id, text) of each benchmark question: Items keep their id, texts get `against:N`."""
    questions = []
    for n, entry in enumerate(against, start=1):
        if isinstance(entry, Item):
            questions.append((entry.id, entry.prompt))
        else:
            questions.append((f"against:{n}", str(entry)))
    return questions


SMALL_FIELDS = ("order", "protected", "reply_len", "content", "exact", "has_sig", "against", "against_sim", "dialogue")


def _concat(batches: list[Batch]) -> Batch:
    """One Batch from many: the small per-row fields joined, the signatures and band keys
    (most of the memory) left in their blocks and read through Chunks."""
    joined = {}
    for field in SMALL_FIELDS:  # field by field, each batch's copy let go once joined: not all held twice
        joined[field] = np.concatenate([getattr(b, field) for b in batches])
        for b in batches:
            setattr(b, field, None)
    return Batch(ids=[i for b in batches for i in b.ids], sig=Chunks([b.sig for b in batches]),
                 bands=Chunks([b.bands for b in batches]), **joined)


def find_duplicates(
    items: Iterable[Item],
    settings: DedupeSettings | None = None,
    against: Iterable[str | Item] = (),
    *,
    workers: int = 1,
    on_batch: Callable[[int], None] | None = None,
) -> list[Removal]:
    """Every item to remove, with the kept item it duplicates; nothing else is removed.

    `against`: benchmark questions (texts, or Items whose prompt is the question); a training
    item whose prompt is an exact or near duplicate of one is removed as "contamination".
    Protected items are never removed; items duplicating one are removed as "contamination".
    The result is the same for any `workers` and any input order (policy "first" aside, which
    follows the caller's `order`). Removals are sorted by id.
    """
    found = find_duplicate_positions(items, settings, against, workers=workers, on_batch=on_batch)
    return sorted(found.values(), key=lambda r: r.id)


def find_duplicate_positions(
    items: Iterable[Item],
    settings: DedupeSettings | None = None,
    against: Iterable[str | Item] = (),
    *,
    workers: int = 1,
    on_batch: Callable[[int], None] | None = None,
    spill: str | None = None,
    ids: Sequence[str] | None = None,
) -> dict[int, Removal]:
    """As find_duplicates, keyed by each removed item's position in `items` (0-based): for
    callers that stream rows and need no id lookup to find them again.

    `spill`: a folder to hold the signatures and band keys on disk (dedupe.spill) instead of
    in memory, where memory must not grow with the rows (a build); removed at the end.
    `ids`: each item's id, looked up where a removal names one, so that the items' ids are
    not held here (they must be the items' own)."""
    settings = settings or DedupeSettings()
    questions = against_questions(against)
    spilled = SpilledFingerprints(spill, settings.num_perm, settings.bands) if spill and settings.near else None
    try:
        batches = _fingerprints(items, settings, questions, workers, on_batch, spilled, keep_ids=ids is None)
        return decide(batches, settings, questions, spilled, ids)
    finally:
        if spilled:
            spilled.remove()


def find_removal_table(
    items: Iterable[Item],
    settings: DedupeSettings,
    against: Iterable[str | Item] = (),
    *,
    ids: Sequence[str],
    workers: int = 1,
    spill: str | None = None,
) -> tuple["RemovalTable", list[str]]:
    """As find_duplicate_positions, but the removals as columns of item positions
    (RemovalTable), with the ids of the benchmark questions they may name: for a build, which
    holds them from the decision to its pass 2 and names each one only as it writes it.
    `ids` as find_duplicate_positions' (read only where items tie in rank)."""
    questions = against_questions(against)
    spilled = SpilledFingerprints(spill, settings.num_perm, settings.bands) if spill and settings.near else None
    try:
        batches = _fingerprints(items, settings, questions, workers, None, spilled, keep_ids=False)
        return decide_table(batches, settings, spilled, ids), [qid for qid, _ in questions]
    finally:
        if spilled:
            spilled.remove()


def _fingerprints(items: Iterable[Item], settings: DedupeSettings, questions: list[tuple[str, str]],
                  workers: int, on_batch: Callable[[int], None] | None, spilled: SpilledFingerprints | None,
                  keep_ids: bool) -> list[Batch]:
    """The items' fingerprint batches, in input order; with `spilled`, their signatures and
    band keys written there (the batches keep the small columns); without `keep_ids`, no ids."""
    index = Against.build(questions, settings) if questions else None
    batches = []
    for batch in fingerprint_all(items, settings, index, workers=workers):
        if on_batch:
            on_batch(len(batch.ids))
        if not keep_ids:
            batch.ids = []
        batches.append(spilled.add(batch) if spilled else batch)
    return batches


def decide(batches: list[Batch], settings: DedupeSettings, questions: list[tuple[str, str]],
           spilled: SpilledFingerprints | None = None, ids: Sequence[str] | None = None) -> dict[int, Removal]:
    """The removals from fingerprints computed elsewhere (batches in input order); with
    `spilled`, their signatures and band keys are read from its files; with `ids`, the
    items' ids are looked up there (the batches' own are empty)."""
    if not batches:
        return {}
    fp = _joined(batches, spilled, ids)
    return _decide(fp, settings).as_dict(fp.ids, [qid for qid, _ in questions])


def decide_table(batches: list[Batch], settings: DedupeSettings, spilled: SpilledFingerprints | None = None,
                 ids: Sequence[str] | None = None) -> "RemovalTable":
    """As decide, the removals as columns (RemovalTable) rather than Removal objects."""
    if not batches:
        return RemovalTable.empty()
    return _decide(_joined(batches, spilled, ids), settings)


def _joined(batches: list[Batch], spilled: SpilledFingerprints | None, ids: Sequence[str] | None) -> Batch:
    fp = _concat(batches)
    batches.clear()  # the joined fields replace theirs; the big blocks live on in Chunks
    if spilled:
        fp.sig, fp.bands = spilled.finish()
    if ids is not None:
        fp.ids = ids
    return fp


METHODS: tuple[str, ...] = ("exact", "near", "contamination")  # RemovalTable.method indexes this
_METHOD = {name: code for code, name in enumerate(METHODS)}


@dataclass
class RemovalTable:
    """The removals of one decision as columns, one entry per removed item, in the order they
    were decided: about 33 bytes each, where a Removal with its strings and the dicts that
    held it took about 0.8 KB (a build holds them from the decision to its pass 2). A
    benchmark question q is named -1 - q in `kept` and `cluster`."""

    item: np.ndarray  # int64: the removed item
    kept: np.ndarray  # int64: the item it duplicates (or -1 - q)
    cluster: np.ndarray  # int64: its cluster's best-ranked item (or -1 - q)
    method: np.ndarray  # uint8: index into METHODS
    similarity: np.ndarray  # float64, as found (rounded where a Removal is made)

    @classmethod
    def empty(cls) -> "RemovalTable":
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.float64))

    def __len__(self) -> int:
        return len(self.item)

    def as_dict(self, ids: Sequence[str], question_ids: list[str]) -> dict[int, Removal]:
        """{removed item: Removal}, in the order decided."""
        def name(k: int) -> str:
            return question_ids[-1 - k] if k < 0 else ids[k]

        survivors: dict[int, str] = {}  # one string per survivor, however many copies name it
        removals = {}
        for i, kept, root, method, sim in zip(self.item.tolist(), self.kept.tolist(), self.cluster.tolist(),
                                              self.method.tolist(), self.similarity.tolist()):
            for k in (kept, root):
                if k not in survivors:
                    survivors[k] = name(k)
            removals[i] = Removal(ids[i], survivors[kept], survivors[root], METHODS[method], round(sim, 4))
        return removals


def _decide(fp: Batch, settings: DedupeSettings) -> RemovalTable:
    rank = ranks(settings.policy, protected=fp.protected, order=fp.order, reply_len=fp.reply_len,
                 content=fp.content, ids=fp.ids)
    # Each column is let go once its step is over: the near step's band columns and pairs are
    # the peak of a build's memory, and these were about 60 bytes per item beside them.
    fp.order = fp.reply_len = fp.content = None
    clusters = Clusters()
    # The exact and near removals as they are decided: (removed, kept), method, similarity.
    pairs, methods, sims = array("q"), array("B"), array("d")
    alive = np.ones(len(fp.ids), dtype=bool)

    # 1. Contamination by a benchmark question: removed before anything else is decided.
    contaminated = np.flatnonzero((fp.against >= 0) & ~fp.protected)
    alive[contaminated] = False
    question = -1 - fp.against[contaminated].astype(np.int64)
    question_sim = fp.against_sim[contaminated].astype(np.float64)
    fp.against = fp.against_sim = None

    # 2. Exact: equal normalized keys; the best-ranked copy of another dialogue survives.
    if settings.exact:
        for group in exact_groups(fp.exact, alive, rank):
            for other, keep in exact_survivors(group, fp.dialogue, fp.protected):
                pairs.extend((other, keep))
                methods.append(_METHOD[method_for(bool(fp.protected[keep]), "exact")])
                sims.append(1.0)
                clusters.union(other, keep, rank)
                alive[other] = False
    fp.exact = None

    # 3. Near: LSH candidates among the rest, each checked against the threshold.
    if settings.near:
        eligible = np.flatnonzero(alive & fp.has_sig)
        if len(eligible) > 1:
            pairs_found = across_dialogues(candidate_pairs(fp.bands, rank, eligible), fp.dialogue)
            pairs_found, found_sims = verified_pairs(fp.sig, pairs_found, settings.threshold)
            for removed, kept, sim in resolve_near(pairs_found, found_sims, rank, fp.protected):
                pairs.extend((removed, kept))
                methods.append(_METHOD[method_for(bool(fp.protected[kept]), "near")])
                sims.append(sim)
                clusters.union(removed, kept, rank)

    decided = np.frombuffer(pairs, dtype=np.int64).reshape(-1, 2)
    roots = np.fromiter((clusters.find(i) for i in decided[:, 0].tolist()), dtype=np.int64, count=len(decided))
    return RemovalTable(
        item=np.concatenate([contaminated, decided[:, 0]]),
        kept=np.concatenate([question, decided[:, 1]]),
        cluster=np.concatenate([question, roots]),
        method=np.concatenate([np.full(len(contaminated), _METHOD["contamination"], dtype=np.uint8),
                               np.frombuffer(methods, dtype=np.uint8)]),
        similarity=np.concatenate([question_sim, np.frombuffer(sims)]),
    )
