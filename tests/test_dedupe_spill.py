"""Dedupe with its fingerprints spilled to disk (a build's way) decides as it does in memory."""

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_data.dedupe import DedupeSettings, Item, find_duplicate_positions
from instruct_data.dedupe.near import candidate_pairs
from instruct_data.dedupe.spill import COLUMNS, SpilledFingerprints
from tests.test_dedupe import OTHER, STUDY, edited
from tests.test_dedupe_properties import item_sets


def test_spilled_fingerprints_read_back_as_written(tmp_path):
    from instruct_data.dedupe.fingerprint import Batch, fingerprint

    items = [Item(f"r{i}", "问题", text, order=i) for i, text in enumerate(STUDY + OTHER)]
    config = DedupeSettings()
    batch = fingerprint(items, config)
    sig, bands, exact = batch.sig.copy(), batch.bands.copy(), batch.exact.copy()
    spilled = SpilledFingerprints(str(tmp_path / "fp"), config.num_perm, config.bands)
    half = len(items) // 2  # two batches, written one after the other
    for rows in (slice(0, half), slice(half, None)):
        spilled.add(Batch(**{name: value[rows] for name, value in vars(batch).items()}))
    on_disk_sig, on_disk_bands, on_disk_exact, columns = spilled.finish()
    assert spilled.ids == batch.ids
    for name in COLUMNS:  # every other column, with its dtype and row shape
        column = columns[name].load()
        assert column.dtype == getattr(batch, name).dtype and (column == getattr(batch, name)).all(), name
    assert columns["content"].load().shape == (len(items), 2)
    assert (on_disk_exact.read(0, len(items)) == exact).all()
    assert (on_disk_exact.read(2, 5) == exact[2:5]).all()
    assert (on_disk_bands.read(1, 2, 5) == bands[2:5, 1]).all()
    rows = np.array([3, 0, 3, len(items) - 1])
    assert (on_disk_sig[rows] == sig[rows]).all()
    for b in range(config.bands):
        assert (on_disk_bands.column(b) == bands[:, b]).all()
    rank = np.arange(len(items))
    assert (candidate_pairs(on_disk_bands, rank) == candidate_pairs(bands, rank)).all()
    spilled.remove()
    assert not (tmp_path / "fp").exists()


@settings(max_examples=25, deadline=None)
@given(item_sets(), st.sampled_from(["first", "longest-reply"]))
def test_spilled_decision_is_the_in_memory_one(tmp_path_factory, items, policy):
    folder = tmp_path_factory.mktemp("spill") / "fp"
    config = DedupeSettings(policy=policy)
    against = [items[0].prompt + "?"]
    expected = find_duplicate_positions(items, config, against=against)
    assert find_duplicate_positions(items, config, against=against, spill=str(folder)) == expected
    assert not folder.exists()  # removed once decided


def test_many_near_copies_spilled_give_the_same_removals(tmp_path):
    rng = random.Random(3)
    items = []
    for i in range(300):
        base = STUDY[i % len(STUDY)] + OTHER[i % len(OTHER)]
        items.append(Item(f"r{i}", "问题", edited(base, seed=rng.randrange(50)), order=i))
    config = DedupeSettings()
    expected = find_duplicate_positions(items, config)
    assert any(r.method == "near" for r in expected.values())  # the case the spill must get right
    assert find_duplicate_positions(items, config, spill=str(tmp_path / "fp")) == expected


def test_a_column_file_appended_in_pieces_reads_back_by_range_and_by_rows(tmp_path):
    from array import array

    from instruct_data.dedupe.spill import ColumnFile

    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**40, size=5000, dtype=np.uint64)
    column = ColumnFile(str(tmp_path / "c"), np.uint64)
    assert len(column) == 0 and column.load().shape == (0,)
    at = 0
    for n in (0, 1, 999, 0, 2500, 1500):  # numpy, array.array and list pieces, some empty
        piece = values[at:at + n]
        column.append(piece if n % 2 else array("Q", piece.tolist()) if n else [])
        at += n
        assert len(column) == at
        assert np.array_equal(column.read(0, at), values[:at])  # what was appended reads back at once
    assert np.array_equal(column.read(1234, 4321), values[1234:4321])
    assert column.read(7, 7).shape == (0,)
    column.BLOCK = 64  # several blocks, rows in any order and repeated
    rows = rng.integers(0, 5000, size=777)
    assert np.array_equal(column.take(rows), values[rows])
    assert column.take(np.zeros(0, dtype=np.int64)).shape == (0,)
    column.close()
    again = ColumnFile(str(tmp_path / "c"), np.uint64)  # its length from the file
    assert len(again) == 5000 and np.array_equal(again.load(), values)
    again.remove()
    assert len(again) == 0 and not (tmp_path / "c").exists()


def test_kept_rows_keys_and_line_lengths_live_in_files_and_read_back_per_chunk(tmp_path):
    from array import array

    from instruct_data.pipeline.keys import Ids, Kept

    kept = Kept(Ids(str(tmp_path / "ids")))
    kept.ids.extend(["a:1", "长:2"])
    kept.add_line_lengths((array("I", [5, 6]), array("I", [7]), array("I")))
    kept.ids.extend(["c:3"])
    kept.add_line_lengths((array("I", [8]), array("I", [9, 10, 11]), array("I", [12])))
    assert [kept.ids[i] for i in range(3)] == ["a:1", "长:2", "c:3"] and kept.ids.read(1, 3) == ["长:2", "c:3"]
    assert kept.ids.pick(np.array([2, 0])) == ["c:3", "a:1"] and len(kept) == 3
    first, second = kept.line_lengths(0), kept.line_lengths(1)
    assert [x.tolist() for x in first] == [[5, 6], [7], []]
    assert [x.tolist() for x in second] == [[8], [9, 10, 11], [12]]
    kept.close()
