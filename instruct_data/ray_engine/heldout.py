"""The held-out split on Ray, row for row the choice split.choose_heldout makes locally.

choose_heldout takes, per group, the `quota` rows of smallest rank, passing over a row whose
prompt key an earlier-ranked row of the group already has. The rows it takes are therefore the
`quota` smallest-ranked among the first (smallest-ranked) row of each prompt key. That choice
can be made on any part of the rows and again on the union of the parts' choices, with the
same answer: so each block keeps its own candidates, and blocks are merged in rounds until
one is left (a tree reduction; at most quota rows per group travel at each step).
"""

from __future__ import annotations

import math

import numpy as np

from instruct_data.split import AUTO_FRACTION, AUTO_MAX, SplitSettings, shares

MERGE_FANIN = 8  # blocks merged into one per round


def quotas(settings: SplitSettings, sizes: dict[str, int], kept_rows: int) -> dict[str, int]:
    """Held-out rows per group name, as choose_heldout counts them (`kept_rows`: every kept
    row, those with a repeated id too, as the local engine counts the automatic share)."""
    heldout = settings.heldout
    if heldout is None:
        heldout = min(AUTO_MAX, round(AUTO_FRACTION * kept_rows))
    if not heldout or not sizes:
        return {}
    wanted = shares(heldout, sizes)
    if settings.max_per_group is not None:
        wanted = {name: min(n, settings.max_per_group) for name, n in wanted.items()}
    return {name: n for name, n in wanted.items() if n > 0}


def candidates(batch: dict[str, np.ndarray], quota: dict[str, int]) -> dict[str, np.ndarray]:
    """map_batches function: the rows of `batch` (group, rank, prompt_key, order) that could be
    held out: per group, the first row of each prompt key, the `quota` smallest-ranked."""
    group = np.asarray(batch["group"], dtype=object)
    keep = []
    for name in np.unique(group).tolist():
        wanted = quota.get(name, 0)
        if not wanted:
            continue
        rows = np.flatnonzero(group == name)
        by_rank = rows[np.lexsort((batch["order"][rows], batch["rank"][rows]))]
        _, first = np.unique(batch["prompt_key"][by_rank], return_index=True)
        keep.append(by_rank[np.sort(first)][:wanted])
    rows = np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64)
    return {name: np.asarray(batch[name])[rows] for name in ("group", "rank", "prompt_key", "order")}


def heldout_orders(rows, quota: dict[str, int]) -> np.ndarray:
    """Sorted kept-row numbers (`order`) of the held-out rows, from a dataset of the rows that
    may be held out (columns group, rank, prompt_key, order)."""
    if not quota:
        return np.zeros(0, dtype=np.int64)
    step = dict(fn_kwargs={"quota": quota}, batch_format="numpy", batch_size=None)
    rows = rows.map_batches(candidates, **step).materialize()
    while rows.num_blocks() > 1:
        rows = rows.repartition(math.ceil(rows.num_blocks() / MERGE_FANIN)).map_batches(candidates, **step)
        rows = rows.materialize()
    chosen = [batch["order"] for batch in rows.iter_batches(batch_size=None, batch_format="numpy")]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
