"""Properties of find_duplicates over generated rows (hypothesis)."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_data.dedupe import DedupeSettings, Item, find_duplicates
from tests.test_dedupe import OTHER, STUDY, edited

TEXTS = STUDY + OTHER + ["好", "嗯。", "是的", "长江很长。"]


@st.composite
def item_sets(draw):
    """Rows drawn from a few texts: some copied as they are, some edited, some protected."""
    n = draw(st.integers(2, 14))
    items = []
    for i in range(n):
        text = draw(st.sampled_from(TEXTS))
        kind = draw(st.sampled_from(["as is", "edited", "spaced"]))
        if kind == "edited" and len(text) > 20:
            text = edited(text, seed=draw(st.integers(0, 5)))
        elif kind == "spaced":
            text = text.replace("，", ", ")
        items.append(Item(f"r{i}", draw(st.sampled_from(["问题一", "问题二"])), text, order=i,
                          protected=draw(st.booleans()) and draw(st.booleans())))
    return items


@settings(max_examples=60, deadline=None)
@given(item_sets(), st.sampled_from(["first", "longest-reply"]), st.sampled_from(["prompt", "reply", "both"]),
       st.randoms(use_true_random=False))
def test_removals_are_checked_stable_and_never_protected(items, policy, key, rng):
    config = DedupeSettings(policy=policy, key=key)
    removals = find_duplicates(items, config)
    by_id = {item.id: item for item in items}
    removed = {r.id for r in removals}
    for r in removals:
        assert not by_id[r.id].protected
        assert r.cluster not in removed  # a cluster is named after a row that stays
        if r.method == "exact":
            assert r.similarity == 1.0
        elif r.method == "near":
            assert r.similarity >= config.threshold
        else:
            assert r.method == "contamination" and by_id[r.duplicate_of].protected
    shuffled = items[:]
    rng.shuffle(shuffled)
    assert find_duplicates(shuffled, config) == removals  # `order` travels with each row


@settings(max_examples=15, deadline=None)
@given(item_sets())
def test_result_does_not_depend_on_batches_or_workers(items):
    from instruct_data.dedupe import fingerprint

    config = DedupeSettings()
    expected = find_duplicates(items, config)
    original = fingerprint.BATCH
    try:
        fingerprint.BATCH = random.Random(len(items)).randint(1, 4)
        assert find_duplicates(items, config, workers=2) == expected
    finally:
        fingerprint.BATCH = original
