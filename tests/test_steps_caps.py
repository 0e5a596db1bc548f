"""steps.caps: what a build takes of each chunk, whatever the chunks' sizes (both executors)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from instruct_data.pipeline.sources import Plan
from instruct_data.steps.caps import Caps, Summary


def plans(*caps):
    return [Plan(index, f"s{index}", None, cap, None, 0.5) for index, cap in enumerate(caps)]


def rows_of(n, seed):
    """n rows read: each kept (with the rules that edited it) or rejected."""
    rng = random.Random(seed)
    return [("reject", ()) if rng.random() < 0.3 else ("kept", tuple(rng.sample(["a", "b", "c"], rng.randint(0, 2))))
            for _ in range(n)]


def summaries(rows, sizes, source=0, first=0):
    """The rows cut into chunks of `sizes` (cycled), as a worker reports them."""
    out, at, number = [], 0, first
    while at < len(rows):
        size = sizes[(number - first) % len(sizes)]
        chunk = rows[at:at + size]
        reject_at = [i for i, (kind, _) in enumerate(chunk) if kind == "reject"]
        kept = [rules for kind, rules in chunk if kind == "kept"]
        out.append(Summary(number, source, len(chunk), reject_at, [(k, r) for k, r in enumerate(kept) if r]))
        at, number = at + size, number + 1
    return out


def taken(rows, sizes, cap):
    """(rows read, kept, rejects counted, rule counts, chunks dropped) of one capped source."""
    caps = Caps(plans(cap))
    cuts = [caps.take(s) for s in summaries(rows, sizes)]
    done = [c for c in cuts if c is not None]
    rules = sum((c.rules for c in done), Counter())
    return (sum(c.rows for c in done), sum(c.take for c in done), sum(c.rejects for c in done), rules,
            cuts.count(None), caps.plans[0])


@pytest.mark.parametrize("cap", [1, 7, 100, 233, 10_000])
def test_a_cap_takes_exactly_its_rows_in_input_order_whatever_the_chunk_sizes(cap):
    rows = rows_of(500, seed=cap)
    kept_at = [i for i, (kind, _) in enumerate(rows) if kind == "kept"]
    wanted_kept = min(cap, len(kept_at))
    wanted_read = kept_at[cap - 1] + 1 if cap <= len(kept_at) else len(rows)
    wanted_rules = Counter(rule for i in kept_at[:cap] for rule in rows[i][1])
    wanted_rejects = sum(kind == "reject" for kind, _ in rows[:wanted_read])
    for sizes in ([1], [7], [64], [500], [3, 50, 1, 17], [1000]):
        read, kept, rejects, rules, _, plan = taken(rows, sizes, cap)
        assert (read, kept, rejects, rules) == (wanted_read, wanted_kept, wanted_rejects, wanted_rules), sizes
        assert (plan.read, plan.kept, plan.stopped) == (wanted_read, wanted_kept, cap <= len(kept_at))


def test_chunks_read_ahead_of_a_reached_cap_are_dropped_and_other_sources_go_on():
    first = summaries(rows_of(100, seed=1), [10])  # chunks 0-9, source 0, capped at 5
    second = summaries(rows_of(40, seed=2), [10], source=1, first=10)
    caps = Caps(plans(5, None))
    cuts = [caps.take(s) for s in first + second]
    assert cuts[0].stops and cuts[0].take == 5
    assert all(cut is None for cut in cuts[1:10])  # read ahead: not taken, not counted
    assert all(cut is not None and not cut.stops for cut in cuts[10:])
    # each cut's first row follows the rows taken before it, across sources
    assert [cut.start for cut in cuts if cut] == [0, 5, *(5 + sum(c.take for c in cuts[10:k]) for k in range(11, 14))]


def test_a_chunk_whose_rows_are_neither_kept_nor_rejected_is_a_bug():
    class Result:
        rows, ids, reject_at, changed = 3, ["a:1"], [0], []

    with pytest.raises(AssertionError, match="3 rows read, but 1 kept and 1 rejected"):
        Summary.of(0, 0, Result())
