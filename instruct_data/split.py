"""The held-out benchmark: stratified, by count or fraction, seeded, independent of input order.

    chosen = choose_heldout(settings, groups=..., names=..., ranks=..., prompt_keys=...)
    # chosen[i] == 1: row i goes to heldout.jsonl

Each group (a category, or a source where rows have none, or every source with
`by: source`) gives its share: `round(fraction * n)`, or a count shared out in proportion to
the group sizes (largest remainders first, ties by group name). Within a group the rows with
the smallest `rank` (a seeded hash of the row id) are taken, so the same seed picks the same
rows whatever the order of the input; a row whose prompt equals one already taken is passed
over, so the benchmark holds no question twice. The choice is made before dedupe decides:
dedupe then protects the held-out rows and removes training rows that duplicate them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Without a `heldout` setting, a build still gets a benchmark to compare tuned and base on:
# 5% of the cleaned rows, at most 500 (generation on more items costs minutes and adds little).
AUTO_FRACTION = 0.05
AUTO_MAX = 500


class SplitSettings(BaseModel):
    """The recipe's `split:` block."""

    model_config = ConfigDict(extra="forbid")

    heldout: float | None = Field(None, ge=0, description="a count (>= 1) or a fraction (< 1) of the cleaned rows; "
                                  f"unset: {AUTO_FRACTION:.0%} of them, at most {AUTO_MAX}; 0: none")
    by: Literal["category", "source"] = Field("category", description="stratify by category (by source where a row has none), or by source")
    max_per_group: int | None = Field(None, gt=0, description="at most this many held-out rows per group")

    @field_validator("heldout")
    @classmethod
    def _count_or_fraction(cls, value: float | None) -> float | None:
        if value is not None and value >= 1 and value != int(value):
            raise ValueError("heldout is a whole count (>= 1) or a fraction (< 1)")
        return value


def choose_heldout(settings: SplitSettings, *, groups: Sequence[int], names: dict[int, str], ranks: Sequence[int],
                   prompt_keys: Sequence[int], skip: Sequence[int] | None = None) -> bytearray:
    """1 for each row taken into the held-out set.

    groups[i]: the group number of row i, named by `names`; ranks[i]: its seeded hash;
    prompt_keys[i]: a hash of its prompt; skip[i] true: a row that may not be chosen.
    """
    import numpy as np

    chosen = bytearray(len(groups))
    heldout = settings.heldout
    if heldout is None:
        heldout = min(AUTO_MAX, round(AUTO_FRACTION * len(groups)))
    if not heldout or not len(groups):
        return chosen
    # Columns, not a list of rows per group: a Python int per row cost more memory than the
    # build's every other per-row key together, at millions of rows.
    group = np.asarray(groups, dtype=np.int64)
    rows = np.arange(len(group)) if skip is None else np.flatnonzero(np.asarray(skip, dtype=np.uint8) == 0)
    group = group[rows]
    present, first, size = np.unique(group, return_index=True, return_counts=True)
    by_appearance = np.argsort(first, kind="stable")  # the groups in the order their rows come
    wanted = shares(heldout, {names[int(present[k])]: int(size[k]) for k in by_appearance.tolist()})
    # Each group's rows by rank (ties in row order: a stable sort), the groups one after another.
    rows = rows[np.lexsort((np.asarray(ranks, dtype=np.uint64)[rows], group))]
    ends = np.cumsum(size)
    for k in by_appearance.tolist():
        quota = wanted[names[int(present[k])]]
        if settings.max_per_group is not None:
            quota = min(quota, settings.max_per_group)
        _take(rows[ends[k] - size[k]:ends[k]], quota, prompt_keys, chosen)
    return chosen


def _take(ranked, quota: int, prompt_keys: Sequence[int], chosen: bytearray) -> None:
    """Mark the first `quota` rows of `ranked` whose prompt no row taken before has."""
    taken: set[int] = set()
    for start in range(0, len(ranked), 4096):  # a block at a time: the quota is usually met early
        for i in ranked[start:start + 4096].tolist():
            if quota <= 0:
                return
            if prompt_keys[i] in taken:
                continue
            taken.add(prompt_keys[i])
            chosen[i] = 1
            quota -= 1

def shares(heldout: float, sizes: dict[str, int]) -> dict[str, int]:
    """Held-out rows per group name: a fraction of each, or a count shared by largest remainders."""
    total = sum(sizes.values())
    if heldout < 1:
        return {name: round(heldout * n) for name, n in sizes.items()}
    count = min(int(heldout), total)
    exact = {name: count * n / total for name, n in sizes.items()}
    result = {name: int(value) for name, value in exact.items()}
    leftover = count - sum(result.values())
    for name in sorted(exact, key=lambda name: (-(exact[name] - result[name]), name))[:leftover]:
        result[name] += 1
    return result
