"""The manifest's split counts and training-row statistics (pipeline.stats), as both engines take them."""

from __future__ import annotations

import numpy as np

from instruct_data.pipeline.stats import LENGTH_BINS, SplitStats


def rows(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"source": rng.integers(0, 3, n).astype(np.uint16), "prompt_len": rng.integers(0, 9000, n).astype(np.uint32),
            "reply_len": rng.integers(0, 9000, n).astype(np.uint32), "records": rng.integers(1, 4, n).astype(np.uint32),
            "category": rng.choice(np.array(["问答", "翻译", "", "source:b"], dtype=object), n)}


def test_counts_per_source_lengths_and_categories_of_the_training_rows():
    stats = SplitStats(["a", "b", "c"])
    batch = {"source": np.array([0, 0, 1, 2]), "prompt_len": np.array([3, 8, 100, 9000]),
             "reply_len": np.array([0, 7, 5000, 1]), "records": np.array([1, 2, 3, 4]),
             "category": np.array(["问答", "", "source:b", "问答"], dtype=object)}
    stats.add(batch, train=np.array([True, True, False, True]), heldout=np.array([False, False, True, False]))
    stats.records_removed = 1
    summary = stats.summary()
    assert summary["split"] == {"train": {"a": 2, "c": 1}, "heldout": {"b": 1}, "train_records": 1 + 2 + 4 - 1}
    assert summary["stats"]["length_bins"] == list(LENGTH_BINS)
    instruction = summary["stats"]["instruction_length"]
    assert sum(instruction) == 3 and instruction[0] == 1 and instruction[1] == 1 and instruction[-1] == 1
    assert list(summary["stats"]["categories"].items()) == [("问答", 2), ("(none)", 1)]  # most first
    assert stats.written() == [("a", 2), ("b", 1), ("c", 1)]


def test_batches_in_any_order_merged_give_the_counts_of_all_rows_at_once():
    """The local engine adds all its rows at once, Ray a batch at a time: the same manifest."""
    data = rows(5000, 0)
    where = np.random.default_rng(1).integers(0, 3, 5000)  # 0 removed, 1 train, 2 heldout
    whole = SplitStats(["a", "b", "c"])
    whole.add(data, train=where == 1, heldout=where == 2)
    parts = []
    for cut in np.array_split(np.random.default_rng(2).permutation(5000), 4):
        part = SplitStats(["a", "b", "c"])
        part.add({name: column[cut] for name, column in data.items()}, train=where[cut] == 1, heldout=where[cut] == 2)
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged.merge(part)
    assert merged.summary() == whole.summary()
    assert list(whole.summary()["stats"]["categories"]) == sorted(
        whole.categories, key=lambda name: (-whole.categories[name], name))


def test_category_numbers_are_named_as_the_local_engine_numbers_its_strata():
    data = rows(200, 3)
    names = {0: "问答", 1: "翻译", 2: "source:a"}
    codes = np.array([{"问答": 0, "翻译": 1}.get(c, 2) for c in data["category"]], dtype=np.uint32)
    by_name, by_number = SplitStats(["a", "b", "c"]), SplitStats(["a", "b", "c"])
    train = np.ones(200, dtype=bool)
    by_name.add(data, train=train, heldout=~train)
    by_number.add({**data, "category": codes}, train=train, heldout=~train, names=names)
    assert by_name.summary() == by_number.summary()
