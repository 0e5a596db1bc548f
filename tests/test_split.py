"""The held-out split: stratified, by count or fraction, seeded, independent of input order."""

from __future__ import annotations

from collections import Counter

import pytest
import xxhash
from pydantic import ValidationError

from instruct_data.split import SplitSettings, choose_heldout, shares

ROWS = ([(f"a:{i}", "问答", "a", f"问题{i}") for i in range(60)] + [(f"a:{i}", "翻译", "a", f"翻译{i}") for i in range(60, 90)]
        + [(f"b:{i}", None, "b", f"其他{i}") for i in range(10)])


def picked(rows, settings, seed=0) -> set[str]:
    """rows: (id, category or None, source, prompt); stratified as the build does."""
    numbers: dict[str, int] = {}
    groups = [numbers.setdefault(category or f"source:{source}", len(numbers)) for _, category, source, _ in rows]
    chosen = choose_heldout(
        settings, groups=groups, names={n: name for name, n in numbers.items()},
        ranks=[xxhash.xxh64_intdigest(row_id.encode(), seed=seed) for row_id, *_ in rows],
        prompt_keys=[xxhash.xxh64_intdigest(prompt.encode()) for *_, prompt in rows], seed=seed)
    return {rows[i][0] for i in range(len(rows)) if chosen[i]}


def category_of(row_id):
    return next(c or "source" for r, c, _, _ in ROWS if r == row_id)


def test_a_count_is_shared_in_proportion_to_each_category():
    held = picked(ROWS, SplitSettings(heldout=10))
    assert len(held) == 10
    assert Counter(category_of(r) for r in held) == {"问答": 6, "翻译": 3, "source": 1}


def test_a_fraction_is_taken_from_each_category():
    held = picked(ROWS, SplitSettings(heldout=0.1))
    assert Counter(category_of(r) for r in held) == {"问答": 6, "翻译": 3, "source": 1}


def test_a_cap_per_group():
    held = picked(ROWS, SplitSettings(heldout=0.5, max_per_group=4))
    assert Counter(category_of(r) for r in held) == {"问答": 4, "翻译": 4, "source": 4}


def test_the_choice_depends_on_the_seed_not_the_order():
    settings = SplitSettings(heldout=13)
    assert picked(ROWS, settings) == picked(list(reversed(ROWS)), settings)
    assert picked(ROWS, settings, seed=0) != picked(ROWS, settings, seed=1)


def test_a_fraction_of_many_small_categories_is_still_that_fraction_of_the_rows():
    """Rounded category by category, 0.1 of 1,000 categories of 4 rows held none out (and a source
    whose seed tasks are each a category of their own, none of it)."""
    rows = [(f"s:{c}-{k}", f"类{c}", "s", f"问题{c}-{k}") for c in range(1000) for k in range(4)]
    held = picked(rows, SplitSettings(heldout=0.1))
    assert len(held) == 400
    assert max(Counter(category_of_row(r) for r in held).values()) == 1  # spread, one per category at most
    assert shares(0.1, {"甲": 4, "乙": 4, "丙": 2}) == {"甲": 0, "乙": 1, "丙": 0}  # 1 row of 10: ties by name


def category_of_row(row_id):
    return row_id.split(":")[1].split("-")[0]


def test_remainders_are_shared_by_group_name_not_by_first_appearance():
    assert shares(2, {"乙": 1, "甲": 1, "丙": 1}) == {"乙": 1, "甲": 0, "丙": 1}
    assert shares(2, {"丙": 1, "甲": 1, "乙": 1}) == {"乙": 1, "甲": 0, "丙": 1}


def test_two_rows_with_the_same_prompt_are_never_both_held_out():
    rows = [(f"a:{i}", "问答", "a", "同一个问题") for i in range(5)] + [(f"a:{i}", "问答", "a", f"问题{i}") for i in range(5, 10)]
    held = picked(rows, SplitSettings(heldout=6))
    same = [r for r in held if int(r.split(":")[1]) < 5]
    assert len(held) == 6 and len(same) == 1


def test_every_distinct_question_is_as_likely_to_be_held_out_however_many_rows_ask_it():
    """A prompt asked by ten rows was about ten times as likely to be held out as one asked once
    (ranked by its best row): the benchmark leaned to repeated questions, and dedupe then removed
    the nine other rows from training as contamination. 100 prompts asked 10 times and 1,000
    asked once: a tenth of the held-out questions should be repeated ones (it was about half)."""
    rows = [(f"a:{p}-{k}", "问答", "a", f"常见问题{p}") for p in range(100) for k in range(10)]
    rows += [(f"a:u{i}", "问答", "a", f"少见问题{i}") for i in range(1000)]
    for seed in range(3):
        held = picked(rows, SplitSettings(heldout=200), seed=seed)
        repeated = sum(1 for r in held if "-" in r)
        assert len(held) == 200 and repeated < 40, (seed, repeated)


def test_heldout_zero_holds_nothing_out_and_bad_values_are_refused():
    assert picked(ROWS, SplitSettings(heldout=0)) == set()
    with pytest.raises(ValidationError, match="whole count"):
        SplitSettings(heldout=2.5)
    with pytest.raises(ValidationError, match="spli"):
        SplitSettings(heldout=1, spli=3)


def test_unset_heldout_takes_five_percent_at_most_five_hundred():
    assert len(picked(ROWS, SplitSettings())) == round(0.05 * len(ROWS))
    many = [(f"r:{i}", None, "s", f"问题{i}") for i in range(20_000)]
    assert len(picked(many, SplitSettings())) == 500


def test_the_choice_over_partitions_merged_in_any_tree_is_the_choice_over_all_rows():
    """What lets every engine run the same steps: candidates per partition, then merges in any
    grouping, give the rows choose_heldout gives over all the rows at once."""
    import numpy as np

    from instruct_data.split import candidates, group_sizes, merge, merge_sizes, prompt_ranks, quotas

    rng = np.random.default_rng(1)
    n = 3000
    groups = rng.integers(0, 5, n)
    ranks = rng.integers(0, 50, n, dtype=np.uint64)  # many ties in rank: broken by row order
    prompts = rng.integers(0, 400, n, dtype=np.uint64)  # many repeated prompts
    skip = (rng.random(n) < 0.05).astype(np.uint8)
    names = {g: f"类{g}" for g in range(5)}
    for settings in (SplitSettings(heldout=300), SplitSettings(heldout=0.2, max_per_group=40), SplitSettings()):
        whole = choose_heldout(settings, groups=groups.tolist(), names=names, ranks=ranks.tolist(),
                               prompt_keys=prompts.tolist(), skip=skip.tolist())
        assert 0 < sum(whole) <= 400
        rows = np.flatnonzero(skip == 0)
        shuffled = rng.permutation(rows)  # partitions hold rows in any order
        parts = [{"group": np.array([names[g] for g in groups[cut]], dtype=object),
                  "rank": prompt_ranks(prompts[cut], 0), "tie": ranks[cut], "prompt_key": prompts[cut], "order": cut}
                 for cut in np.array_split(shuffled, 7)]
        quota = quotas(settings, merge_sizes(group_sizes(part["group"]) for part in parts), n)
        found = [candidates(part, quota) for part in parts]
        chosen = merge([merge(found[:3], quota), merge(found[3:5], quota), *found[5:]], quota)
        assert sorted(chosen["order"].tolist()) == [i for i in range(n) if whole[i]]


def test_a_builds_blocks_in_either_representation_give_the_choice_over_all_rows():
    """What pipeline.flow.choose_heldout runs over an executor's blocks (split.block_sizes,
    block_quotas, block_candidates, merge as they come): the same rows as choose_heldout over
    every row, whether a block's `category` holds the names (Ray) or numbers named by `names`
    (the local executor), by category or by source, blocks cut anyhow, rows in any order."""
    import numpy as np

    from instruct_data.split import block_candidates, block_quotas, block_sizes, merge, merge_sizes

    rng = np.random.default_rng(2)
    n = 4000
    labels = ["甲", "乙", "丙"]
    source = rng.integers(0, 3, n)
    category = rng.integers(0, 4, n)  # 3: none (the source's group)
    names = ["问答", "翻译", "写作", ""]
    ranks = rng.integers(0, 80, n, dtype=np.uint64)
    prompts = rng.integers(0, 600, n, dtype=np.uint64)
    repeated = np.sort(rng.choice(n, 150, replace=False))
    stratum_names = [names[c] or f"source:{labels[s]}" for c, s in zip(category, source)]
    numbers: dict[str, int] = {}
    stratum = np.asarray([numbers.setdefault(name, len(numbers)) for name in stratum_names], dtype=np.uint32)
    skip = np.isin(np.arange(n), repeated)
    for by in ("category", "source"):
        for settings in (SplitSettings(heldout=350), SplitSettings(heldout=0.2, max_per_group=60), SplitSettings()):
            groups = stratum if by == "category" else source
            group_names = ({v: k for k, v in numbers.items()} if by == "category"
                           else {i: f"source:{label}" for i, label in enumerate(labels)})
            whole = choose_heldout(settings, groups=groups.tolist(), names=group_names, ranks=ranks.tolist(),
                                   prompt_keys=prompts.tolist(), skip=skip.tolist())
            expected = [i for i in range(n) if whole[i]]
            assert len(expected) > 50
            for as_numbers in (True, False):
                table = {"order": np.arange(n), "source": source.astype(np.uint16), "rank": ranks, "prompt_key": prompts,
                         "category": stratum if as_numbers else
                         np.asarray([names[c] or None for c in category], dtype=object)}
                keys = {"by": by, "labels": labels, "names": {v: k for k, v in numbers.items()} if as_numbers else None}
                shuffled = rng.permutation(n)
                blocks = [{name: column[cut] for name, column in table.items()}
                          for cut in np.array_split(shuffled, 9)]
                sizes = merge_sizes(dict(zip(b["group"].tolist(), b["rows"].tolist()))
                                    for b in (block_sizes(block, repeated=repeated, **keys) for block in blocks))
                quota = block_quotas(settings, sizes, sum(sizes.values()) + len(repeated), **keys)
                found = (block_candidates(block, quota, repeated=repeated, **keys) for block in blocks)
                chosen = merge(found, quota, hold=300)  # merged down as they come
                assert sorted(chosen["order"].tolist()) == expected, (by, settings, as_numbers)
