"""The held-out split on Ray: instruct_data.split's steps run over Ray Data blocks.

split.py writes the choice once, as steps over partitions of the rows' keys (group_sizes
then merge_sizes, quotas, candidates then merge). Here each block is a partition: its group
sizes are counted where it lies and added on the driver, then each block keeps its
candidates, and blocks are merged in rounds (repartitioned into fewer blocks, candidates
again) until one is left: a tree reduction in which at most quota rows per group travel at
each step. The local engine runs the same steps over its one in-memory partition.
"""

from __future__ import annotations

import math

import numpy as np

from instruct_data.split import SplitSettings, candidates, group_sizes, merge_sizes, quotas

MERGE_FANIN = 8  # blocks merged into one per round
KEYS = ("group", "rank", "prompt_key", "order")


def heldout_orders(rows, settings: SplitSettings, kept_rows: int) -> np.ndarray:
    """Sorted kept-row numbers (`order`) of the held-out rows, from a dataset of the rows that
    may be held out (columns group: its group's name, rank, prompt_key, order); `kept_rows`:
    every kept row, as split.quotas counts the automatic share."""
    sizes = rows.map_batches(_sizes, batch_format="numpy", batch_size=None).take_all()
    quota = quotas(settings, merge_sizes({row["group"]: row["rows"]} for row in sizes), kept_rows)
    if not quota:
        return np.zeros(0, dtype=np.int64)
    step = dict(fn_kwargs={"quota": quota}, batch_format="numpy", batch_size=None)
    rows = rows.select_columns(list(KEYS)).map_batches(candidates, **step).materialize()
    while rows.num_blocks() > 1:  # merge: candidates over the union of a few blocks' candidates
        rows = rows.repartition(math.ceil(rows.num_blocks() / MERGE_FANIN)).map_batches(candidates, **step)
        rows = rows.materialize()
    chosen = [batch["order"] for batch in rows.iter_batches(batch_size=None, batch_format="numpy")]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _sizes(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """map_batches function: split.group_sizes of one block, as rows (group, rows)."""
    sizes = group_sizes(batch["group"])
    return {"group": np.asarray(list(sizes), dtype=object), "rows": np.asarray(list(sizes.values()), dtype=np.int64)}
