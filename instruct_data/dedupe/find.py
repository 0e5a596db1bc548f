"""find_duplicates: contamination, then exact groups, then verified near duplicates."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from instruct_data.allocator import return_large_blocks
from instruct_data.dedupe.fingerprint import Against, Batch, fingerprint_all
from instruct_data.dedupe.near import Chunks
from instruct_data.dedupe.select import ranks
from instruct_data.dedupe.spill import ColumnFile, HashPartitions, SpilledFingerprints
from instruct_data.dedupe.types import DedupeSettings, Item, Removal
from instruct_data.steps import dedupe as steps  # (a module reference: steps.dedupe imports dedupe's modules)


def __getattr__(name: str):
    """METHODS and RemovalTable, which moved to steps.dedupe, under their old address."""
    if name in ("METHODS", "RemovalTable"):
        return getattr(steps, name)
    raise AttributeError(name)


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

    `spill`: a folder to hold the fingerprints on disk (dedupe.spill) instead of in memory,
    where memory must not grow with the rows (a build); removed at the end.
    `ids`: each item's id, looked up where a removal names one, so that the items' ids are
    not held here (they must be the items' own)."""
    settings = settings or DedupeSettings()
    questions = against_questions(against)
    spilled = _spill(spill, settings, keep_ids=ids is None)
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
) -> tuple["steps.RemovalTable", list[str]]:
    """As find_duplicate_positions, but the removals as columns of item positions
    (RemovalTable), with the ids of the benchmark questions they may name: for a build, which
    holds them from the decision to its pass 2 and names each one only as it writes it.
    `ids` as find_duplicate_positions' (read only where items tie in rank)."""
    questions = against_questions(against)
    spilled = _spill(spill, settings, keep_ids=False)
    try:
        batches = _fingerprints(items, settings, questions, workers, None, spilled, keep_ids=False)
        return decide_table(batches, settings, spilled, ids), [qid for qid, _ in questions]
    finally:
        if spilled:
            spilled.remove()


def _spill(folder: str | None, settings: DedupeSettings, keep_ids: bool) -> SpilledFingerprints | None:
    """Where the fingerprints go on disk: a build's near dedupe (exact only keeps no signatures)."""
    if not (folder and settings.near):
        return None
    return SpilledFingerprints(folder, settings.num_perm, settings.bands, keep_ids=keep_ids)


def _fingerprints(items: Iterable[Item], settings: DedupeSettings, questions: list[tuple[str, str]],
                  workers: int, on_batch: Callable[[int], None] | None, spilled: SpilledFingerprints | None,
                  keep_ids: bool) -> list[Batch]:
    """The items' fingerprint batches, in input order; with `spilled`, none: each batch is
    written there as it comes (the decision reads it back); without `keep_ids`, no ids."""
    index = Against.build(questions, settings) if questions else None
    batches = []
    for batch in fingerprint_all(items, settings, index, workers=workers):
        if on_batch:
            on_batch(len(batch.ids))
        if not keep_ids:
            batch.ids = []
        if spilled:
            # Freed columns of millions of items go back to the system, not to a heap that
            # keeps their pages (instruct_data.allocator). Set once the first batch is back, so
            # after the workers are forked: under the fixed threshold each batch's temporaries
            # were a fresh mapping in them, ~6% more CPU for no memory that grows with rows.
            return_large_blocks()
            spilled.add(batch)
        else:
            batches.append(batch)
    return batches


def decide(batches: list[Batch], settings: DedupeSettings, questions: list[tuple[str, str]],
           spilled: SpilledFingerprints | None = None, ids: Sequence[str] | None = None) -> dict[int, Removal]:
    """The removals from fingerprints computed elsewhere (batches in input order); with
    `spilled`, their signatures and band keys are read from its files; with `ids`, the
    items' ids are looked up there (the batches' own are empty)."""
    if not (batches or spilled and spilled.rows):
        return {}
    fp = _joined(batches, spilled, ids)
    return _decide(fp, settings, _folder(spilled)).as_dict(fp.ids, [qid for qid, _ in questions])


def decide_items(batches: list[Batch], settings: DedupeSettings,
                 questions: list[tuple[str, str]]) -> steps.ItemRemovals:
    """As decide, the removals as `idata dedupe`'s pass 2 reads them: get(item), one at a time,
    from the columns (steps.dedupe.ItemRemovals) rather than a dict of Removal objects."""
    if not batches:
        return steps.ItemRemovals(steps.RemovalTable.empty(), [], [])
    fp = _joined(batches, None, None)
    return steps.ItemRemovals(_decide(fp, settings), fp.ids, [qid for qid, _ in questions])


def decide_table(batches: list[Batch], settings: DedupeSettings, spilled: SpilledFingerprints | None = None,
                 ids: Sequence[str] | None = None) -> "steps.RemovalTable":
    """As decide, the removals as columns (RemovalTable) rather than Removal objects."""
    if not (batches or spilled and spilled.rows):
        return steps.RemovalTable.empty()
    return _decide(_joined(batches, spilled, ids), settings, _folder(spilled))


def _folder(spilled: SpilledFingerprints | None) -> str | None:
    """Where the decision's hash partitions go: beside the spilled fingerprints, if any."""
    return os.path.join(spilled.folder, "partitions") if spilled else None


def _joined(batches: list[Batch], spilled: SpilledFingerprints | None, ids: Sequence[str] | None) -> Batch:
    """The batches as one: joined in memory, or (`spilled`) as readers of its files, each
    column read by the step of the decision that needs it (_column)."""
    if spilled:
        sig, bands, exact, columns = spilled.finish()
        fp = Batch(ids=spilled.ids or [], sig=sig, bands=bands, exact=exact, **columns)
    else:
        fp = _concat(batches)
        batches.clear()  # the joined fields replace theirs; the big blocks live on in Chunks
    if ids is not None:
        fp.ids = ids
    return fp


def _column(fp: Batch, name: str):
    """A per-item column of `fp` as an array: held in memory, or read whole from its file."""
    value = getattr(fp, name)
    return value.load() if isinstance(value, ColumnFile) else value


def _ranks(fp: Batch, policy: str) -> np.ndarray:
    """select.ranks over the items. Policy "first" over items in their order (a build's) is
    select.ranks' fast path, ranked by order and protection alone: the text hashes (16 bytes
    per item) are then not read from disk."""
    order = _column(fp, "order")
    first_in_order = policy == "first" and len(order) > 1 and bool(np.all(order[1:] > order[:-1]))
    return ranks(policy, protected=fp.protected, order=order,
                 reply_len=None if policy == "first" else _column(fp, "reply_len"),
                 content=None if first_in_order else _column(fp, "content"), ids=fp.ids)


# Entries (exact keys, one band's keys, candidate pairs) per hash partition on disk: a step of
# the decision holds one partition of them (a few MB), never all the items'.
PARTITION_ROWS = 1 << 18


def _decide(fp: Batch, settings: DedupeSettings, folder: str | None = None) -> steps.RemovalTable:
    """The decision of steps.dedupe: with `folder`, over hash partitions of the exact keys,
    band keys and candidate pairs written there (fp.exact, fp.bands and fp.sig are then
    spill's readers); without, over all the items as one partition in memory."""
    partition_rows = PARTITION_ROWS
    # Read by every step: the protection flags and dialogue keys (9 bytes per item) are held
    # through the decision; every other column is read for its step and let go after it.
    fp.protected, fp.dialogue = _column(fp, "protected"), _column(fp, "dialogue")
    rank = _ranks(fp, settings.policy)
    if len(rank) < 2**31:  # a position among the items: 32 bits hold it (4 bytes per item less, held throughout)
        rank = rank.astype(np.int32)
    fp.order = fp.reply_len = fp.content = None
    alive = np.ones(len(fp.ids), dtype=bool)

    # 1. Contamination by a benchmark question: removed before anything else is decided.
    against = _column(fp, "against")
    contaminated = np.flatnonzero(steps.contaminated(against, fp.protected))
    alive[contaminated] = False
    question = -1 - against[contaminated].astype(np.int64)
    del against
    tables = [steps.RemovalTable(contaminated, question, question,
                           np.full(len(contaminated), steps.CONTAMINATION, dtype=np.uint8),
                           _column(fp, "against_sim")[contaminated].astype(np.float64))]
    fp.against = fp.against_sim = None

    # 2. Exact: equal normalized keys; the best-ranked copy of another dialogue survives.
    exact = None
    if settings.exact:
        exact = _exact(fp, rank, alive, folder, partition_rows)
        alive[exact[0]] = False
    fp.exact = None

    # 3. Near: LSH candidates among the rest, each checked against the threshold.
    nodes, node_cluster = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if settings.near:
        eligible = alive & _column(fp, "has_sig")
        fp.has_sig = None
        if np.count_nonzero(eligible) > 1:
            if folder is None:
                pairs = _candidate_pairs(fp.bands, np.flatnonzero(eligible), rank, fp.dialogue)
                pairs, sims = steps.check_pairs(fp.sig, pairs, settings.threshold)
            else:
                pairs, sims = _verified_by_partition(fp, eligible, rank, settings.threshold, folder, partition_rows)
            nodes = np.unique(pairs)
            resolved = steps.resolve(np.searchsorted(nodes, pairs), sims, rank[nodes], fp.protected[nodes])
            node_cluster = nodes[resolved.cluster_of(np.arange(len(nodes)))]
            tables.append(steps.RemovalTable(nodes[resolved.removed], nodes[resolved.kept],
                                       node_cluster[resolved.removed], resolved.method, resolved.similarity))

    # 4. An exact copy's cluster is its survivor's near cluster, where it has one.
    if exact is not None:
        removed, kept, method = exact
        tables.append(steps.RemovalTable(removed, kept, steps.survivor_clusters(kept, nodes, node_cluster), method,
                                   np.ones(len(removed))))
    return steps.RemovalTable.join(tables)


_MAX_PAIR_PARTS = 256  # files open at once for the candidate pairs

_EXACT_ENTRY = np.dtype([("k0", "<u8"), ("k1", "<u8"), ("item", "<i8")])
_BAND_ENTRY = np.dtype([("key", "<u8"), ("item", "<i8")])
_PAIR = np.dtype([("a", "<i8"), ("b", "<i8")])


def _parts(entries: int, partition_rows: int) -> int:
    return max(1, -(-entries // partition_rows))


def _slices(n: int, step: int):
    for start in range(0, n, step):
        yield start, min(n, start + step)


def _exact(fp: Batch, rank: np.ndarray, alive: np.ndarray, folder: str | None,
           partition_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(removed, kept, method) items: steps.dedupe.exact_partition over the alive items, as
    one partition in memory, or (with `folder`) over hash partitions of their exact keys."""
    if folder is None:
        rows = np.flatnonzero(alive)
        removed, kept, method = steps.exact_partition(fp.exact[rows], rank[rows], fp.dialogue[rows],
                                                      fp.protected[rows])
        return rows[removed], rows[kept], method
    parts = HashPartitions(folder, "exact", _parts(int(np.count_nonzero(alive)), partition_rows), _EXACT_ENTRY)
    for start, stop in _slices(len(alive), partition_rows):
        rows = start + np.flatnonzero(alive[start:stop])
        keys = fp.exact.read(start, stop)[rows - start]
        entries = np.empty(len(rows), dtype=_EXACT_ENTRY)
        entries["k0"], entries["k1"], entries["item"] = keys[:, 0], keys[:, 1], rows
        parts.add(entries, keys[:, 0])
    found = [(np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0, dtype=np.uint8),)]
    for part in parts:
        items = part["item"]
        keys = np.stack([part["k0"], part["k1"]], axis=1)
        removed, kept, method = steps.exact_partition(keys, rank[items], fp.dialogue[items], fp.protected[items])
        found.append((items[removed], items[kept], method))
    return tuple(np.concatenate(column) for column in zip(*found))


def _verified_by_partition(fp: Batch, eligible: np.ndarray, rank: np.ndarray, threshold: float, folder: str,
                           partition_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The verified near pairs (items) and their similarity: band by band, the eligible items'
    (key, item) entries hash-partitioned by key, steps.dedupe.band_pairs per partition; the
    candidate pairs hash-partitioned by their first item, steps.dedupe.check_pairs per
    partition (a pair found in several bands is checked once)."""
    items = int(np.count_nonzero(eligible))
    parts = _parts(items, partition_rows)
    # A pair is written once per band it shares (most of them, for a near copy) until its
    # partition is read and made unique: sized for up to one pair per item and band.
    candidates = HashPartitions(folder, "pairs", min(_MAX_PAIR_PARTS, _parts(items * fp.bands.shape[1],
                                                                               partition_rows)), _PAIR)
    for band in range(fp.bands.shape[1]):
        entries = HashPartitions(folder, f"band{band}", parts, _BAND_ENTRY)
        for start, stop in _slices(len(eligible), partition_rows):
            rows = start + np.flatnonzero(eligible[start:stop])
            found = np.empty(len(rows), dtype=_BAND_ENTRY)
            found["key"], found["item"] = fp.bands.read(band, start, stop)[rows - start], rows
            entries.add(found, found["key"])
        for part in entries:
            items = part["item"]  # ascending: added in order, scattered stably
            pairs = items[steps.band_pairs(np.zeros(len(items), dtype=np.int8), part["key"], rank[items],
                                           fp.dialogue[items])]
            candidates.add(np.ascontiguousarray(pairs).view(_PAIR).reshape(-1), pairs[:, 0])
    verified, sims = [np.zeros((0, 2), dtype=np.int64)], [np.zeros(0, dtype=np.float32)]
    for part in candidates:
        pairs = steps.unique_pairs(np.stack([part["a"], part["b"]], axis=1))
        pairs, sim = steps.check_pairs(fp.sig, pairs, threshold)
        verified.append(pairs)
        sims.append(sim)
    return np.concatenate(verified), np.concatenate(sims)


def _candidate_pairs(bands, eligible: np.ndarray, rank: np.ndarray, dialogue: np.ndarray) -> np.ndarray:
    """steps.band_pairs over each band's keys of the eligible items, as one partition; the
    pairs (item numbers) merged band by band: a near copy shares most of its bands, and
    keeping every band's copies of a pair until the end held tens of times more pairs."""
    rank, dialogue = rank[eligible], dialogue[eligible]
    no_band = np.zeros(len(eligible), dtype=np.int16)
    found = np.zeros((0, 2), dtype=np.int64)
    for b in range(bands.shape[1]):
        # Blocks (Chunks) or files (spill.BandColumns) give one band's column at a time.
        column = (bands.column(b) if hasattr(bands, "column") else bands[:, b])[eligible]
        found = steps.unique_pairs(np.concatenate([found, steps.band_pairs(no_band, column, rank, dialogue)]))
    return eligible[found]
