"""The held-out split: stratified, by count or fraction, seeded, independent of input order."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import xxhash

from instruct_data.pipeline import Kept, choose_heldout
from instruct_data.recipe import SplitSettings


def kept_rows(rows, seed=0) -> Kept:
    """rows: (id, category or '', source index, prompt)."""
    kept = Kept()
    for row_id, category, source, prompt in rows:
        kept.ids.append(row_id)
        kept.repeated_id.append(0)
        kept.source.append(source)
        kept.rank.append(xxhash.xxh64_intdigest(row_id.encode(), seed=seed))
        kept.prompt_key.append(xxhash.xxh64_intdigest(prompt.encode()))
        kept.stratum.append(kept.strata.setdefault(category or f"source:{source}", len(kept.strata)))
    return kept


ROWS = ([(f"a:{i}", "问答", 0, f"问题{i}") for i in range(60)] + [(f"a:{i}", "翻译", 0, f"翻译{i}") for i in range(60, 90)]
        + [(f"b:{i}", "", 1, f"其他{i}") for i in range(10)])


def picked(rows, split, seed=0) -> set[str]:
    kept = kept_rows(rows, seed)
    chosen = choose_heldout(kept, split)
    return {kept.ids[i] for i in range(len(kept)) if chosen[i]}


def category_of(row_id):
    return next(c or "source" for r, c, _, _ in ROWS if r == row_id)


def test_a_count_is_shared_in_proportion_to_each_category():
    held = picked(ROWS, SplitSettings(heldout=10))
    assert len(held) == 10
    assert Counter(category_of(r) for r in held) == {"问答": 6, "翻译": 3, "source": 1}


def test_a_fraction_is_taken_from_each_category():
    held = picked(ROWS, SplitSettings(heldout=0.1))
    assert Counter(category_of(r) for r in held) == {"问答": 6, "翻译": 3, "source": 1}


def test_by_source_and_a_cap_per_group():
    held = picked(ROWS, SplitSettings(heldout=0.5, by="source", max_per_group=4))
    assert Counter(r.split(":")[0] for r in held) == {"a": 4, "b": 4}


def test_the_choice_depends_on_the_seed_not_the_order():
    split = SplitSettings(heldout=12)
    assert picked(ROWS, split) == picked(list(reversed(ROWS)), split)
    assert picked(ROWS, split, seed=0) != picked(ROWS, split, seed=1)


def test_two_rows_with_the_same_prompt_are_never_both_held_out():
    rows = [(f"a:{i}", "问答", 0, "同一个问题") for i in range(5)] + [(f"a:{i}", "问答", 0, f"问题{i}") for i in range(5, 10)]
    held = picked(rows, SplitSettings(heldout=6))
    same = [r for r in held if int(r.split(":")[1]) < 5]
    assert len(held) == 6 and len(same) == 1


def test_no_heldout_means_nothing_is_held_out():
    assert picked(ROWS, SplitSettings()) == set()
