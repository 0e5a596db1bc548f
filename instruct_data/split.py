"""The held-out benchmark: stratified, by count or fraction, seeded, independent of input order.

    chosen = choose_heldout(settings, groups=..., names=..., ranks=..., prompt_keys=...)
    # chosen[i] == 1: row i goes to heldout.jsonl

Each group (a category, or a source where rows have none, or every source with
`by: source`) gives its share of a count, or of a fraction of the rows (rounded once, over all
of them), in proportion to the group sizes (largest remainders first, ties by group name).
Within a group the prompts with the smallest seeded hash are taken, each by its row with the smallest `rank` (a seeded hash of
the row id), so the same seed picks the same rows whatever the order of the input, and the
benchmark holds no question twice. Every distinct prompt is as likely to be taken however many
rows ask it: ranked by its best row instead, a prompt asked by k rows was about k times as likely
to be held out, so the benchmark leaned to the most repeated questions and training lost the
most rows, since dedupe (which decides after the choice, protecting the held-out rows) removes
every training row that repeats a held-out question as contamination.

The choice is written once for every engine, as steps over partitions of the rows' keys
(columns `group`, `rank`, `prompt_key`, `order`, numpy arrays):

    sizes = merge_sizes(group_sizes(part["group"]) for part in parts)   # rows per group
    quota = quotas(settings, sizes, kept_rows)                          # held-out rows per group
    chosen = merge([candidates(part, quota) for part in parts], quota)  # any tree of merges

`candidates` keeps, per group, the first (smallest-ranked) row of each prompt key, and of those
the `quota` smallest-ranked (ties by `order`). The rows the whole choice takes are exactly
those, so the same function over any part, then over the union of the parts' answers, gives
the same answer: at most `quota` rows per group leave a partition.

A build runs these steps over blocks of its kept rows (pipeline.flow.choose_heldout, over
executor.map_blocks, the same code for every executor): `block_sizes` and `block_candidates`
take a block's columns as the executor's table holds them (order, source, category, rank,
prompt_key) and make its split keys (`split_keys`: the group of each row, the rows whose id
repeats left out); `merge` takes the blocks' candidates as they come. choose_heldout runs the
steps over one partition given as lists (the tests' and benchmarks/bench_split.py's reference).
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

    # allow_inf_nan: infinity passed ge=0 and broke the whole-count check below (int(inf)), a traceback.
    heldout: float | None = Field(None, ge=0, allow_inf_nan=False,
                                  description="a count (>= 1) or a fraction (< 1) of the cleaned rows; "
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
                   prompt_keys: Sequence[int], skip: Sequence[int] | None = None, seed: int = 0) -> bytearray:
    """1 for each row taken into the held-out set: the steps above over one partition.

    groups[i]: the group number of row i, named by `names`; ranks[i]: its seeded hash;
    prompt_keys[i]: a hash of its prompt; skip[i] true: a row that may not be chosen (it still
    counts towards the automatic share, which is taken of every row); `seed` ranks the prompts.
    """
    import numpy as np

    chosen = bytearray(len(groups))
    # Columns, not a list of rows per group: a Python int per row cost more memory than the
    # build's every other per-row key together, at millions of rows. The keys are read in
    # place; only the group column is copied, for the rows that may not be chosen to join a
    # group of their own that no quota names.
    group = np.array(groups)
    if group.dtype.kind not in "iu":
        group = group.astype(np.int64)
    skipped = np.iinfo(group.dtype).max
    if skip is not None:
        group[np.asarray(skip, dtype=np.uint8) != 0] = skipped
    sizes = group_sizes(group)
    sizes.pop(skipped, None)
    wanted = quotas(settings, {names[number]: n for number, n in sizes.items()}, len(groups))
    quota = {number: wanted[names[number]] for number in sizes if names[number] in wanted}
    prompt_key = np.asarray(prompt_keys, dtype=np.uint64)
    part = {"group": group, "rank": prompt_ranks(prompt_key, seed), "tie": np.asarray(ranks, dtype=np.uint64),
            "prompt_key": prompt_key}
    np.frombuffer(chosen, dtype=np.uint8)[candidates(part, quota)["order"]] = 1
    return chosen


def quotas(settings: SplitSettings, sizes: dict[str, int], kept_rows: int) -> dict[str, int]:
    """Held-out rows per group name (groups that give none left out). `sizes`: the rows of each
    group that may be held out; `kept_rows`: every kept row, those that may not be too (the
    automatic share is taken of them all)."""
    heldout = settings.heldout
    if heldout is None:
        heldout = min(AUTO_MAX, round(AUTO_FRACTION * kept_rows))
    if not heldout or not sizes:
        return {}
    wanted = shares(heldout, sizes)
    if settings.max_per_group is not None:
        wanted = {name: min(n, settings.max_per_group) for name, n in wanted.items()}
    return {name: n for name, n in wanted.items() if n > 0}


def group_sizes(groups) -> dict:
    """Rows per group value in one partition's `group` column."""
    import numpy as np

    values, counts = np.unique(np.asarray(groups), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def merge_sizes(parts) -> dict:
    """The group_sizes of the partitions, added up."""
    total: dict = {}
    for sizes in parts:
        for group, n in sizes.items():
            total[group] = total.get(group, 0) + n
    return total


def prompt_ranks(prompt_key, seed: int):
    """A seeded hash of each row's prompt key: the rank of its prompt in the choice, the same for
    every row that asks it."""
    import numpy as np

    from instruct_data.dedupe.shingles import mix64

    with np.errstate(over="ignore"):
        salt = mix64(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        return mix64(np.asarray(prompt_key, dtype=np.uint64) ^ salt)


def candidates(part: dict, quota: dict) -> dict:
    """The rows of one partition that could be held out: per group, the first row of each
    prompt key, the quota[group] smallest-ranked (ties by `tie`, where given, then by `order`).
    `part`: equal-length numpy columns group, rank, prompt_key and order (each row's place in the
    input; absent: its place in `part`), optionally tie, and any others, carried along; `quota`:
    keyed by the values of `group`. Returns the same columns (with `order`), for those rows only."""
    import numpy as np

    group = np.asarray(part["group"])
    if group.dtype.kind not in "iu":  # names (on Ray): compared as Python strings, never cut to a width
        group = group.astype(object)
    rows = np.flatnonzero(np.isin(group, np.asarray(list(quota), dtype=group.dtype)))
    in_group = group[rows]
    if in_group.dtype.kind not in "iu":  # names (on Ray): numbered, to sort on
        group_names, in_group = np.unique(in_group, return_inverse=True)
    else:
        group_names = None
    # Each group's rows by rank, ties by order, the groups one after another. Rows already in
    # order need no third key: lexsort is stable.
    keys = [np.asarray(part["rank"])[rows], in_group]
    if "tie" in part:  # the rows of one prompt share its rank: its best-ranked row stands for it
        keys.insert(0, np.asarray(part["tie"])[rows])
    if "order" in part:
        order = np.asarray(part["order"])[rows]
        if not np.all(order[1:] > order[:-1]):
            keys.insert(0, order)
        del order
    by_rank = np.lexsort(keys)
    del keys
    rows, in_group = rows[by_rank], in_group[by_rank]
    del by_rank
    starts = np.flatnonzero(np.r_[True, in_group[1:] != in_group[:-1]]) if len(rows) else np.zeros(0, np.int64)
    values = (in_group[starts] if group_names is None else group_names[in_group[starts]]).tolist()
    prompt_key = np.asarray(part["prompt_key"])
    taken = [_first_prompts(rows[start:end], quota[value], prompt_key)
             for value, start, end in zip(values, starts.tolist(), [*starts[1:].tolist(), len(rows)])]
    taken = np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)
    chosen = {name: np.asarray(column)[taken] for name, column in part.items()}
    if "order" not in part:
        chosen["order"] = taken
    return chosen


def merge(parts, quota: dict, hold: int | None = None) -> dict:
    """candidates over the union of partitions' candidates (or of any partitions), taken as they
    come: whenever the rows held pass `hold` (default: twice the quota's total, at least 64k),
    they are merged down to their candidates, so no more than that and one part are held at
    once (a tree of merges, which gives the answer over the union). {} for no parts."""
    bound = max(2 * sum(quota.values()), 1 << 16) if hold is None else hold
    held: list[dict] = []
    rows = 0
    for part in parts:
        held.append(part)
        rows += len(part["order"]) if "order" in part else len(next(iter(part.values()), ()))
        if len(held) > 1 and rows > bound:
            held = [_union_candidates(held, quota)]
            rows = len(held[0]["order"])
    if not held:
        return {}
    return _union_candidates(held, quota)


def _union_candidates(parts: list[dict], quota: dict) -> dict:
    import numpy as np

    return candidates({name: np.concatenate([np.asarray(part[name]) for part in parts]) for name in parts[0]}, quota)


# ---------------------------------------------------------------- a build's blocks of kept rows

BLOCK_COLUMNS = ("order", "source", "category", "rank", "prompt_key")  # what split_keys reads of a block


def split_keys(block: dict, *, by: str, labels: list[str], names: dict | None, repeated, seed: int = 0) -> dict:
    """The split's keys (group, rank, tie, prompt_key, order) of a block of kept rows (BLOCK_COLUMNS:
    `source` a source's number in `labels`, `category` a category's name, "" or None for none,
    or with `names` a number that names maps to one, as pipeline.stats reads it). A group value
    is the source's number (by source), the category's number (by category, with `names`) or
    name: group_name names it. The rows numbered in `repeated` (their ids repeat: never held
    out) get the group SKIPPED (the number column's largest value, or ""), which no quota names
    and block_sizes leaves out: the other columns are read as they are, not copied. `rank` is
    the prompt's (prompt_ranks, by `seed`), `tie` the row's own rank."""
    import numpy as np

    order = np.asarray(block["order"], dtype=np.int64)
    if by == "source" or names is not None:
        group = np.asarray(block["source" if by == "source" else "category"])
        if group.dtype.kind not in "iu":
            group = group.astype(np.int64)
    else:
        source = np.asarray(block["source"]).tolist()
        group = np.asarray([c or f"source:{labels[s]}" for c, s in zip(np.asarray(block["category"]).tolist(), source)],
                           dtype=object)
    if len(repeated) and len(order):
        skip = np.isin(order, repeated)
        if skip.any():
            group = group.copy()  # (never the table's own column)
            group[skip] = skipped(group)
    prompt_key = np.asarray(block["prompt_key"], dtype=np.uint64)
    return {"group": group, "rank": prompt_ranks(prompt_key, seed), "tie": np.asarray(block["rank"], dtype=np.uint64),
            "prompt_key": prompt_key, "order": order}


def skipped(group):
    """The group value of the rows that may not be held out, in a group column's dtype."""
    import numpy as np

    return np.iinfo(group.dtype).max if group.dtype.kind in "iu" else ""


def group_name(value, *, by: str, labels: list[str], names: dict | None) -> str:
    """The name of a group value of split_keys (a category's name; `source:LABEL` for a source,
    or for a row without a category)."""
    if by == "source":
        return f"source:{labels[value]}"
    return names[value] if names is not None else value


def block_sizes(block: dict, **keys) -> dict:
    """One block's group_sizes, as columns `group` and `rows` (split_keys' keyword arguments)."""
    import numpy as np

    group = split_keys(block, **keys)["group"]
    sizes = group_sizes(group)
    sizes.pop(skipped(group), None)
    return {"group": np.asarray(list(sizes), dtype=object), "rows": np.asarray(list(sizes.values()), dtype=np.int64)}


def block_candidates(block: dict, quota: dict, **keys) -> dict:
    """One block's candidates (columns group, rank, tie, prompt_key, order) for `quota` (keyed by
    group value)."""
    return candidates(split_keys(block, **keys), quota)


def block_quotas(settings: SplitSettings, sizes: dict, kept_rows: int, **keys) -> dict:
    """quotas, keyed by group value, from the blocks' merged sizes (keyed by group value) and
    every kept row's count; the groups that give none left out."""
    named: dict[str, int] = {}
    for value, n in sizes.items():
        name = group_name(value, **keys)
        named[name] = named.get(name, 0) + n
    wanted = quotas(settings, named, kept_rows)
    return {value: wanted[name] for value in sizes if (name := group_name(value, **keys)) in wanted}


def _first_prompts(ranked, quota: int, prompt_key):
    """The first `quota` rows of `ranked` whose prompt key no row before them has. Looked for
    in a growing head of the ranked rows: the quota is usually met within a little more than
    `quota` rows, and a row first with its key in a head of the list is first in all of it."""
    import numpy as np

    head = max(2 * quota, 64)
    while True:
        _, first = np.unique(prompt_key[ranked[:head]], return_index=True)
        if len(first) >= quota or head >= len(ranked):
            return ranked[np.sort(first)[:quota]]
        head *= 4


def shares(heldout: float, sizes: dict[str, int]) -> dict[str, int]:
    """Held-out rows per group name: a count, or a fraction of the rows (rounded once, over them
    all), shared out by largest remainders. (Rounded group by group, a fraction lost every group
    under half a row: 0.1 of a source whose 175 seed tasks are each a category of their own held
    none of it out, and of 1,000 categories of 4 rows, none at all.)"""
    total = sum(sizes.values())
    if not total:
        return {name: 0 for name in sizes}
    count = round(heldout * total) if heldout < 1 else min(int(heldout), total)
    exact = {name: count * n / total for name, n in sizes.items()}
    result = {name: int(value) for name, value in exact.items()}
    leftover = count - sum(result.values())
    for name in sorted(exact, key=lambda name: (-(exact[name] - result[name]), name))[:leftover]:
        result[name] += 1
    return result
