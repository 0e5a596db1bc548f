"""Deterministic tests that fail when dedupe's decisions are loosened.

Each corpus is generated from fixed seeds and holds pairs on both sides of the threshold,
with their MinHash estimate computed here from the same signatures dedupe uses; each test
first checks that its corpus has such pairs among the LSH candidates, so that a loosened
threshold, an unchecked candidate or a chained removal would show.
"""

from __future__ import annotations

import random

import numpy as np

from instruct_data.dedupe import DedupeSettings, Item, find_duplicates, normalize
from instruct_data.dedupe.near import band_keys, estimated_jaccard, signatures

THRESHOLD = 0.6  # the measured default (DedupeSettings); loosening it must be a visible change
ALPHABET = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 600))


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def edited(text: str, rate: float, rng: random.Random) -> str:
    chars = list(text)
    for pos in rng.sample(range(len(chars)), round(len(chars) * rate)):
        chars[pos] = rng.choice(ALPHABET)
    return "".join(chars)


def estimates(pairs: list[tuple[str, str]], settings: DedupeSettings) -> tuple[np.ndarray, np.ndarray]:
    """(estimated Jaccard, shares an LSH band) of each pair of texts, as dedupe computes them."""
    texts = [normalize(t) for pair in pairs for t in pair]
    sig, _ = signatures(texts, settings.ngram, settings.num_perm, settings.seed)
    a, b = sig[0::2], sig[1::2]
    bands = band_keys(sig, settings.bands)
    return estimated_jaccard(a, b), (bands[0::2] == bands[1::2]).any(axis=1)


def spread_pairs(seed: int, n: int = 120, length: int = 160) -> list[tuple[str, str]]:
    """n (text, lightly to heavily edited copy) pairs, similarities from about 0.3 to 0.8."""
    rng = random.Random(seed)
    return [(base, edited(base, rng.uniform(0.04, 0.17), rng)) for base in (random_text(rng, length) for _ in range(n))]


def test_the_default_threshold_is_the_measured_one():
    assert DedupeSettings().threshold == THRESHOLD


def test_near_removals_are_exactly_the_checked_candidates_at_or_above_the_threshold():
    settings = DedupeSettings(key="reply")
    pairs = spread_pairs(seed=7)
    sim, candidate = estimates(pairs, settings)
    # Teeth: candidates just under the threshold (a threshold loosened by 0.1 removes them) and
    # far under it (removing LSH candidates without checking them does).
    assert ((sim >= THRESHOLD - 0.1) & (sim < THRESHOLD) & candidate).sum() >= 5
    assert ((sim < THRESHOLD - 0.1) & candidate).sum() >= 5
    assert (sim >= 0.7).sum() >= 10
    items = []
    for n, (a, b) in enumerate(pairs):
        items += [Item(f"{n}a", "q", a, order=2 * n), Item(f"{n}b", "q", b, order=2 * n + 1)]
    removed = {r.id: r for r in find_duplicates(items, settings)}
    for n, s in enumerate(sim.tolist()):
        removal = removed.get(f"{n}b")
        if removal is not None:
            assert (removal.duplicate_of, removal.method) == (f"{n}a", "near")
            assert s >= THRESHOLD - 1e-6 and abs(removal.similarity - s) < 1e-3, (n, s)
        assert f"{n}a" not in removed
        if s >= 0.7:  # far enough above the threshold that LSH misses none of these pairs
            assert removal is not None, (n, s)
    assert len(removed) == sum(1 for n in range(len(pairs)) if f"{n}b" in removed)


def test_contamination_is_decided_at_the_threshold_too():
    settings = DedupeSettings()
    rng = random.Random(11)
    questions = [random_text(rng, 80) for _ in range(120)]
    prompts = [edited(q, rng.uniform(0.04, 0.17), rng) for q in questions]
    sim, candidate = estimates(list(zip(questions, prompts)), settings)
    assert ((sim >= THRESHOLD - 0.1) & (sim < THRESHOLD) & candidate).sum() >= 5
    assert (sim >= 0.7).sum() >= 10
    items = [Item(f"train-{n}", p, random_text(rng, 60), order=n) for n, p in enumerate(prompts)]
    removed = {r.id: r for r in find_duplicates(items, settings, against=questions)}
    for n, s in enumerate(sim.tolist()):
        removal = removed.get(f"train-{n}")
        if removal is not None:
            assert (removal.method, removal.duplicate_of) == ("contamination", f"against:{n + 1}")
            assert s >= THRESHOLD - 1e-6, (n, s)
        elif s >= 0.7:
            raise AssertionError(f"train-{n} asks benchmark question {n + 1} (similarity {s:.2f}) and was kept")


def test_a_chain_never_removes_a_row_for_resembling_a_removed_row():
    # a = s1 s2, b = s1 s2 s3, c = s2 s3: a~b and b~c (about 2/3), a and c far apart (1/3).
    rng = random.Random(3)
    s1, s2, s3 = (random_text(rng, 100) for _ in range(3))
    a, b, c = s1 + s2, s1 + s2 + s3, s2 + s3
    settings = DedupeSettings(key="reply", policy="first")
    sim, candidate = estimates([(a, b), (b, c), (a, c)], settings)
    assert sim[0] >= THRESHOLD and sim[1] >= THRESHOLD and sim[2] < THRESHOLD - 0.1  # a real chain
    assert candidate[0] and candidate[1]
    items = [Item("a", "q", a, order=0), Item("b", "q", b, order=1), Item("c", "q", c, order=2)]
    removed = [(r.id, r.duplicate_of) for r in find_duplicates(items, settings)]
    assert removed == [("b", "a")]  # c resembles only b, which is removed: c stays
