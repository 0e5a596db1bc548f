"""A build's passes, written once for every executor, in the order they run.

    summary = run_passes(job, executor)   # the manifest's split counts and statistics

    pass 1          executor.map_chunks: chunks through the row path; here, in chunk order, steps.caps,
                    the rejects up to each cut and the reads to the ledger
    the check       job.check_reject_rates: a source over its max_reject_rate fails the build
    own ids         steps.ids over executor.partition_by_key of the rows with an own `id`, by its hash
    repeated ids    steps.ids over executor.partition_by_key of the kept rows, by `rank` (a hash of the id)
    the split       split.py's steps over executor.map_blocks of the kept rows: the blocks' group
                    sizes (merged: the quotas), then the blocks' candidates, merged as they come
    dedupe          executor.removals (steps.dedupe's)
    pass 2, stats   steps.place over executor.iterate_in_order of the kept rows; SplitStats merged

pipeline.run.build calls run_passes inside `with executor:`; the executor (instruct_data.executors)
holds the tables and runs the operations, this module says what goes from one step to the next.
Nothing here depends on which executor runs it, so the local and the Ray build write the same
bytes by construction wherever a step is written here (pass 1's caps and rejects, the ids, the
split and pass 2, so far; not yet the dedupe decision).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from instruct_data import split
from instruct_data.executors import BuildJob, Executor, FirstPass
from instruct_data.ledger import OwnIds
from instruct_data.pipeline.stats import SplitStats
from instruct_data.steps import ids as id_steps
from instruct_data.steps import place
from instruct_data.steps.caps import Caps, note


def run_passes(job: BuildJob, executor: Executor) -> dict[str, Any]:
    """Pass 1, the cross-row steps and pass 2 of a build on `executor` (entered); returns the
    manifest's split counts and statistics (SplitStats.summary)."""
    first = first_pass(job, executor)
    try:
        job.check_reject_rates()
        count_own_ids(executor, first, job)
        repeated = repeated_ids(executor, first)
        held = choose_heldout(job, executor, first, repeated)
        first.let_go(("rank", "prompt_key"))  # nothing after the split reads them
        removals = executor.removals(job, first, held, repeated)
        return write_outputs(job, executor, first, held, repeated, removals)
    finally:
        first.close()


def first_pass(job: BuildJob, executor: Executor) -> FirstPass:
    """Pass 1: the executor's map of every chunk through the row path; here, chunk by chunk in
    chunk order, what the build takes of each (steps.caps), its rejects up to the cut and its
    reads and rule counts to the ledger. Returns the taken rows' tables."""
    caps = Caps(job.plans)
    with executor.map_chunks(job) as chunks:
        for chunk in chunks:
            cut = caps.take(chunk.summary)
            if cut is None:  # read ahead of its source's cap: not taken
                chunks.drop(chunk)
                continue
            label = job.plans[cut.source].label
            for reject in chunk.rejects(cut.rejects):
                job.ledger.outcome(label, reject, strict=job.recipe.strict)
            note(cut, label, job.ledger)
            chunks.take(chunk, cut)
            if job.on_row:
                for _ in range(cut.rows):
                    job.on_row()
        return chunks.taken()


def repeated_ids(executor: Executor, first: FirstPass) -> np.ndarray:
    """The numbers of the kept rows whose id an earlier row already used (rejected in pass 2 as
    read/duplicate_id), increasing: steps.ids per partition of the rows by `rank`, a seeded hash
    of the id (equal ids, equal ranks), merged."""
    parts = executor.partition_by_key(first.kept, "rank", later_ids, ("id", "order"))
    return id_steps.merge(part["order"] for part in parts)


def later_ids(part: dict) -> dict:
    """One partition: the rows whose `id` an earlier row of it has (module level: Ray ships it)."""
    later = id_steps.later_uses(part["id"], part["order"])
    return {"order": np.asarray(part["order"], dtype=np.int64)[later]}


def choose_heldout(job: BuildJob, executor: Executor, first: FirstPass, repeated: np.ndarray) -> np.ndarray:
    """The numbers of the held-out rows, increasing: split.py's steps over the executor's blocks
    of the kept rows, those numbered in `repeated` left out (their ids repeat). Each block's
    group sizes, added up, give the quotas (split.block_quotas; the automatic share is taken of
    every kept row); each block's candidates, merged as they come (split.merge), the choice."""
    keys = {"by": job.recipe.split.by, "labels": [plan.label for plan in job.plans], "names": first.names,
            "repeated": repeated}
    blocks = executor.map_blocks(first.kept, partial(split.block_sizes, **keys), split.BLOCK_COLUMNS)
    sizes = split.merge_sizes(dict(zip(block["group"].tolist(), block["rows"].tolist())) for block in blocks)
    del keys["repeated"]
    quota = split.block_quotas(job.recipe.split, sizes, sum(sizes.values()) + len(repeated), **keys)
    if not quota:
        return np.zeros(0, dtype=np.int64)
    blocks = executor.map_blocks(first.kept, partial(split.block_candidates, quota=quota, repeated=repeated,
                                                     seed=job.recipe.seed, **keys), split.BLOCK_COLUMNS)
    chosen = split.merge(blocks, quota)
    return np.sort(np.asarray(chosen["order"], dtype=np.int64)) if chosen else np.zeros(0, dtype=np.int64)


def count_own_ids(executor: Executor, first: FirstPass, job: BuildJob) -> None:
    """The manifest's own_ids entry (ledger.OwnIds): how many kept rows have an own `id`, how
    many of them repeat an earlier row's, and the first few repeats in input order: steps.ids
    per partition of those rows by the own id's hash."""
    parts = executor.partition_by_key(first.own_ids, "hash", id_steps.later_own_ids, id_steps.OWN_ID_COLUMNS)
    id_steps.note_own_id_repeats(parts, first.own_id_rows, job.ledger, OwnIds.EXAMPLES)


def write_outputs(job: BuildJob, executor: Executor, first: FirstPass, held: np.ndarray, repeated: np.ndarray,
                  removals) -> dict[str, Any]:
    """Pass 2: steps.place over the kept rows, block by block in input order, into train.jsonl,
    heldout.jsonl, conversations.jsonl and heldout_conversations.jsonl; the blocks' outcomes to
    the ledger, their stats merged."""
    labels = [plan.label for plan in job.plans]
    total = SplitStats(labels)
    # Unbuffered train and conversations: the local executor copies runs of rows into them as
    # byte ranges of its spool files (steps.place.Lines.write_plain).
    with open(job.work / "train.jsonl", "wb", buffering=0) as train, \
            open(job.work / "heldout.jsonl", "wb") as heldout, \
            open(job.work / "conversations.jsonl", "wb", buffering=0) as conversations, \
            open(job.work / "heldout_conversations.jsonl", "wb") as heldout_conversations:
        out = place.Outputs(train, heldout, conversations, heldout_conversations)
        for batch in executor.iterate_in_order(first.kept):
            rows = batch.rows
            found = removals.of_rows(rows)
            fate = place.fates(members(held, rows), members(repeated, rows),
                               np.isin(rows, np.fromiter(found, dtype=np.int64, count=len(found))))
            placed = place.place(batch.columns, fate, batch.lines, lambda k, rows=rows, found=found: found[int(rows[k])],
                                 out, labels, row_id=batch.row_id, names=batch.names)
            for label, outcome in placed.outcomes:
                job.ledger.outcome(label, outcome)
            total.merge(placed.stats)
    for label, outcome in place.written(total):
        job.ledger.outcome(label, outcome)
    return total.summary()


def members(numbers: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of `rows` (increasing) are among `numbers` (increasing): only the stretch of
    `numbers` that can hold them is compared, so a block costs what it holds, not all of them."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    lo, hi = np.searchsorted(numbers, [rows[0], rows[-1] + 1]).tolist()
    return np.isin(rows, numbers[lo:hi])


__all__ = ["choose_heldout", "count_own_ids", "first_pass", "repeated_ids", "run_passes", "write_outputs"]
