"""find_duplicates: contamination, then exact groups, then verified near duplicates."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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
    index = Against.build(questions, settings) if questions else None
    spilled = SpilledFingerprints(spill, settings.num_perm, settings.bands) if spill and settings.near else None
    try:
        batches = []
        for batch in fingerprint_all(items, settings, index, workers=workers):
            if on_batch:
                on_batch(len(batch.ids))
            if ids is not None:
                batch.ids = []
            batches.append(spilled.add(batch) if spilled else batch)
        return decide(batches, settings, questions, spilled, ids)
    finally:
        if spilled:
            spilled.remove()


def decide(batches: list[Batch], settings: DedupeSettings, questions: list[tuple[str, str]],
           spilled: SpilledFingerprints | None = None, ids: Sequence[str] | None = None) -> dict[int, Removal]:
    """The removals from fingerprints computed elsewhere (batches in input order); with
    `spilled`, their signatures and band keys are read from its files; with `ids`, the
    items' ids are looked up there (the batches' own are empty)."""
    if not batches:
        return {}
    fp = _concat(batches)
    batches.clear()  # the joined fields replace theirs; the big blocks live on in Chunks
    if spilled:
        fp.sig, fp.bands = spilled.finish()
    if ids is not None:
        fp.ids = ids
    return _decide(fp, settings, questions)


def _decide(fp: Batch, settings: DedupeSettings, questions: list[tuple[str, str]]) -> dict[int, Removal]:
    rank = ranks(settings.policy, protected=fp.protected, order=fp.order, reply_len=fp.reply_len,
                 content=fp.content, ids=fp.ids)
    clusters = Clusters()
    decided: list[tuple[int, int | str, str, float]] = []  # (removed, kept index or question id, method, sim)
    alive = np.ones(len(fp.ids), dtype=bool)

    # 1. Contamination by a benchmark question: removed before anything else is decided.
    contaminated = np.flatnonzero((fp.against >= 0) & ~fp.protected)
    for i in contaminated.tolist():
        decided.append((i, questions[fp.against[i]][0], "contamination", float(fp.against_sim[i])))
    alive[contaminated] = False

    # 2. Exact: equal normalized keys; the best-ranked copy of another dialogue survives.
    if settings.exact:
        for group in exact_groups(fp.exact, alive, rank):
            for other, keep in exact_survivors(group, fp.dialogue, fp.protected):
                decided.append((other, keep, method_for(bool(fp.protected[keep]), "exact"), 1.0))
                clusters.union(other, keep, rank)
                alive[other] = False

    # 3. Near: LSH candidates among the rest, each checked against the threshold.
    if settings.near:
        eligible = np.flatnonzero(alive & fp.has_sig)
        if len(eligible) > 1:
            pairs = across_dialogues(candidate_pairs(fp.bands, rank, eligible), fp.dialogue)
            pairs, sims = verified_pairs(fp.sig, pairs, settings.threshold)
            for removed, kept, sim in resolve_near(pairs, sims, rank, fp.protected):
                decided.append((removed, kept, method_for(bool(fp.protected[kept]), "near"), sim))
                clusters.union(removed, kept, rank)

    removals = {}
    survivors: dict[int, str] = {}  # one string per survivor, however many copies name it
    for i, kept, method, sim in decided:
        if isinstance(kept, str):  # a benchmark question: its own cluster
            removals[i] = Removal(fp.ids[i], kept, kept, "contamination", round(sim, 4))
        else:
            root = clusters.find(i)
            for k in (kept, root):
                if k not in survivors:
                    survivors[k] = fp.ids[k]
            removals[i] = Removal(fp.ids[i], survivors[kept], survivors[root], method, round(sim, 4))
    return removals
