"""Repeated ids: the rows whose id (or own `id` field) an earlier row already used, for both executors.

    later = later_uses(part["id"], part["order"])        # one partition: its rows that repeat
    repeated = merge(part["order"][later] for part ...)  # every partition's, in input order

A partition holds every row of the values it holds: the executor partitions the rows by a
hash of the value (the local executor by `rank`, a seeded hash of the id, or a hash of the own
id, in `hash_partitions`; Ray with a hash shuffle). Only within a partition are values compared,
as strings, so no set of every id is ever held in one place.

A repeated id is rejected (`read/duplicate_id`): dedupe and the ledger name rows by their ids.
Ids are unique within a source, but a recipe's source names can make two sources' ids meet (a
source named `a/b`, and a source `a` holding b.jsonl: ids `a/b:LINE` both). A repeated own id
drops nothing; it is counted for the manifest (ledger.OwnIds), with the first few as examples.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np


def value_hashes(values: Iterable[str]) -> np.ndarray:
    """The partition key of each value (uint64, xxh64 of its UTF-8): equal values, equal keys."""
    import xxhash

    return np.fromiter((xxhash.xxh64_intdigest(value.encode("utf-8")) for value in values), dtype=np.uint64)


def later_uses(values: Sequence[str], orders: Sequence[int]) -> np.ndarray:
    """Indices into the partition of the rows whose value a row of smaller `order` already has,
    by `order` (`orders`: the rows' numbers in input order, distinct)."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    first: set[str] = set()
    later = []
    for row in np.argsort(np.asarray(orders), kind="stable").tolist():
        value = values[row]
        if value in first:
            later.append(row)
        else:
            first.add(value)
    return np.asarray(later, dtype=np.int64)


def merge(parts: Iterable[Sequence[int]]) -> np.ndarray:
    """The orders of the rows every partition found repeated, sorted: input order."""
    arrays = [np.asarray(part, dtype=np.int64) for part in parts]
    return np.sort(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)


def hash_partitions(hashes: np.ndarray, rows: int = 1 << 16) -> Iterator[np.ndarray]:
    """Partitions of the rows by their hash, each the indices of its rows: only the rows that
    share their hash with another (a row alone with its hash repeats nothing), whole groups of
    one hash together, about `rows` rows a partition (a union of partitions is a partition: one
    call per group would cost more than the comparing, and one call for all, a set of them all)."""
    hashes = np.asarray(hashes)
    order = np.argsort(hashes, kind="stable")  # equal hashes stay in row order
    ranked = hashes[order]
    same = ranked[1:] == ranked[:-1]
    if not same.any():
        return
    shared = np.zeros(len(hashes), dtype=bool)
    shared[1:] |= same
    shared[:-1] |= same
    order, ranked = order[shared], ranked[shared]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # where each hash's group starts
    cuts = np.unique(starts[np.minimum(np.searchsorted(starts, np.arange(rows, len(order), rows)), len(starts) - 1)])
    yield from (part for part in np.split(order, cuts[cuts > 0]) if len(part))


OWN_ID_COLUMNS = ("order", "id", "own_id")  # what count_repeats reads of each row with an own id


def later_own_ids(part: dict) -> dict:
    """One partition of the rows with an own id (OWN_ID_COLUMNS): those whose own id an earlier
    row of it has, all their columns (module level: Ray ships it)."""
    later = later_uses(part["own_id"], part["order"])
    return {name: np.asarray(values)[later] for name, values in part.items()}


def note_own_id_repeats(parts: Iterable[dict], rows: int, ledger, examples: int) -> None:
    """ledger.own_ids from later_own_ids' results over every partition (any order): `rows` rows
    have an own id; the repeats are counted and the first `examples` of them, in input order,
    named. Only each partition's first few are kept on the way, never every repeat's text."""
    repeats, first = 0, []
    for part in parts:
        orders = np.asarray(part["order"], dtype=np.int64)
        repeats += len(orders)
        for k in np.argsort(orders, kind="stable")[:examples].tolist():
            first.append((int(orders[k]), str(part["own_id"][k]), str(part["id"][k])))
    ledger.own_ids.add_counted(rows, repeats, [{"own_id": own, "row": row_id}
                                              for _, own, row_id in sorted(first)[:examples]])

