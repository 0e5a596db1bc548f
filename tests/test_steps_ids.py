"""steps.ids: repeated ids found per hash partition, merged, equal a scan of every row in order."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
import xxhash

from instruct_data.executors import FirstPass, LocalExecutor
from instruct_data.ledger import Ledger
from instruct_data.pipeline.flow import count_own_ids
from instruct_data.pipeline.keys import Ids, OwnIdKeys
from instruct_data.pipeline.local import OwnIdTable
from instruct_data.steps.ids import hash_partitions, later_uses, merge


def scan(values):
    """The rows (numbers) whose value an earlier row has: the plain answer, every row in one place."""
    seen, later = set(), []
    for order, value in enumerate(values):
        if value in seen:
            later.append(order)
        seen.add(value)
    return later


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("parts", [1, 2, 7, 64])
def test_partitions_by_hash_in_any_row_order_merged_equal_the_scan(seed, parts):
    rng = random.Random(seed)
    values = [f"src:{rng.randint(0, 300)}" for _ in range(1000)]
    by_part: dict[int, list[int]] = {}
    for order, value in enumerate(values):
        by_part.setdefault(xxhash.xxh64_intdigest(value.encode()) % parts, []).append(order)
    found = []
    for orders in by_part.values():
        rng.shuffle(orders)  # a partition's rows come in any order (a shuffle's output)
        orders = np.asarray(orders)
        found.append(orders[later_uses(np.asarray([values[o] for o in orders], dtype=object), orders)])
    rng.shuffle(found)
    assert merge(found).tolist() == scan(values)


def test_no_repeats_and_no_partitions_give_nothing():
    assert merge([]).tolist() == [] and later_uses([], []).tolist() == []
    assert later_uses(["a", "b"], [5, 3]).tolist() == []


def test_hash_partitions_hold_the_rows_that_share_a_hash_whole_groups_together():
    hashes = np.asarray([5, 1, 5, 2, 1, 9, 5], dtype=np.uint64)
    assert [sorted(g.tolist()) for g in hash_partitions(hashes)] == [[0, 1, 2, 4, 6]]
    assert sorted(sorted(g.tolist()) for g in hash_partitions(hashes, rows=1)) == [[0, 2, 6], [1, 4]]
    assert list(hash_partitions(np.asarray([3, 2, 1], dtype=np.uint64))) == []
    rng = np.random.default_rng(0)
    many = rng.integers(0, 5000, 20_000).astype(np.uint64)
    for rows in (1, 7, 1000, 1 << 16):
        parts = list(hash_partitions(many, rows=rows))
        held = np.concatenate(parts)
        assert len(held) == len(set(held.tolist())) == sum(np.bincount(many.astype(np.int64))[many.astype(np.int64)] > 1)
        # a hash in one partition only
        assert sum(len(set(many[part].tolist())) for part in parts) == len(set(many[held].tolist()))
        assert max(map(len, parts)) < rows + 20


def test_own_ids_counted_by_partitions_equal_the_ledger_counting_them_in_input_order(tmp_path):
    """The local build's own-id counts (OwnIdKeys: hashes in memory, texts in a file) give the
    manifest what a ledger counting every row in order gives: rows, repeats, the first five."""
    rng = random.Random(3)
    rows = [(f"s:{n}", f"own{rng.randint(0, 40)}" if rng.random() < 0.7 else None) for n in range(400)]
    row_ids, own_ids, taken = Ids(str(tmp_path / "ids")), OwnIdKeys(str(tmp_path / "own")), []
    for start in range(0, 400, 37):  # chunks of 37 rows, the last 5 of each not taken (as a cap would)
        chunk = rows[start:start + 37]
        take = max(0, len(chunk) - 5)
        own_ids.add([(k, own) for k, (_, own) in enumerate(chunk) if own is not None], take, len(row_ids))
        row_ids.extend([row_id for row_id, _ in chunk[:take]])
        taken += chunk[:take]
    plain = Ledger(tmp_path / "a", command="t")
    for row_id, own in taken:
        plain.note_own_id(own, row_id)
    counted = Ledger(tmp_path / "b", command="t")
    # As the build counts them: pipeline.flow over the local executor's partitions of OwnIdKeys.
    first = FirstPass(None, OwnIdTable(own_ids, row_ids), len(own_ids.order))
    count_own_ids(LocalExecutor(), first, SimpleNamespace(ledger=counted))
    assert counted.own_ids.summary() == plain.own_ids.summary()
    assert counted.own_ids.summary()["rows_repeating_an_earlier_own_id"] > 100


def test_the_spooled_ids_picked_in_any_order_are_the_ids_at_those_rows(tmp_path):
    ids = Ids(str(tmp_path / "ids"))
    rows = [f"源/{n}:{n * 7}" for n in range(5000)]
    for start in range(0, 5000, 333):
        ids.extend(rows[start:start + 333])
    rng = np.random.default_rng(2)
    for picked in (rng.permutation(5000)[:700], rng.integers(0, 5000, 3000), np.arange(4990, 5000), np.zeros(0)):
        assert ids.pick(picked) == [rows[i] for i in picked.astype(int)]
    assert [ids[i] for i in (0, 4999, 17)] == [rows[0], rows[4999], rows[17]]
