"""Pass 1 in the main process: chunks out to the workers, outcomes back, in input order.

The main process writes the rejects to the ledger and keeps, per kept row, only small keys
(`Kept`): no text. A source with a cap stops once that many rows were kept; chunks already
read ahead for it are dropped, so the result does not depend on how many workers ran.
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from instruct_data.errors import StrictModeError
from instruct_data.ledger import Ledger
from instruct_data.pipeline.sources import Plan, tasks
from instruct_data.pipeline.worker import WorkerState, init_worker, process_chunk

PENDING_PER_WORKER = 4  # chunks in flight per worker: enough to keep them busy, memory bounded


@dataclass
class Kept:
    """What the main process keeps per kept row: small keys, no text."""

    ids: list[str] = field(default_factory=list)
    source: array = field(default_factory=lambda: array("H"))
    rank: array = field(default_factory=lambda: array("Q"))
    prompt_key: array = field(default_factory=lambda: array("Q"))
    stratum: array = field(default_factory=lambda: array("I"))
    records: array = field(default_factory=lambda: array("I"))
    multi: bytearray = field(default_factory=bytearray)
    prompt_len: array = field(default_factory=lambda: array("I"))
    reply_len: array = field(default_factory=lambda: array("I"))
    # 1 where a row's id was already used by an earlier row: rejected (`duplicate_id`) in pass 2,
    # since dedupe and the ledger name rows by id.
    repeated_id: bytearray = field(default_factory=bytearray)
    strata: dict[str, int] = field(default_factory=dict)
    chunks: list[tuple[int, int, int]] = field(default_factory=list)  # (chunk number, rows used, rows spooled)

    def __len__(self) -> int:
        return len(self.ids)


def run_chunks(plans: list[Plan], state: WorkerState, workers: int):
    """Yield (chunk number, source index, outcomes) in chunk order, over `workers` processes."""
    chunks = tasks(plans)
    if workers <= 1:
        init_worker(state)
        for task in chunks:
            number, outcomes = process_chunk(task)
            yield number, task[1], outcomes
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(workers, initializer=init_worker, initargs=(state,)) as pool:
        pending: deque = deque()
        # Submit by hand, a few chunks ahead: Pool.imap would read the whole input into its queue.
        for task in chunks:
            pending.append((task[1], pool.apply_async(process_chunk, (task,))))
            if len(pending) >= workers * PENDING_PER_WORKER:
                source_index, result = pending.popleft()
                number, outcomes = result.get()
                yield number, source_index, outcomes
        while pending:
            source_index, result = pending.popleft()
            number, outcomes = result.get()
            yield number, source_index, outcomes


def clean_pass(plans: list[Plan], state: WorkerState, ledger: Ledger, *, workers: int, strict: bool,
               on_row: Callable[[], None] | None = None) -> Kept:
    kept = Kept()
    seen_ids: set[str] = set()
    for number, source_index, outcomes in run_chunks(plans, state, workers):
        plan = plans[source_index]
        if plan.stopped:
            drop_chunk(state.spool, number)  # read ahead of the cap: these rows are not taken
            continue
        used = read = 0
        spooled = sum(1 for outcome in outcomes if outcome[0] == "k")
        for outcome in outcomes:
            read += 1
            if on_row:
                on_row()
            if outcome[0] == "r":
                _, stage, reason, detail, origin, raw, reject_id = outcome
                if strict and stage == "read":
                    raise StrictModeError(f"{origin}: {reason}: {detail}")
                # The worker sends the origin as text; the ledger writes str(origin) either way.
                ledger.reject(stage, reason, detail, origin, raw, source=plan.label, row_id=reject_id)
                continue
            _keep(kept, outcome, source_index, plan, ledger, seen_ids)
            used += 1
            plan.kept += 1
            if plan.cap is not None and plan.kept >= plan.cap:
                plan.stopped = True
                break
        ledger.read(plan.label, read)
        plan.read += read
        kept.chunks.append((number, used, spooled))
    return kept


def _keep(kept: Kept, outcome: tuple, source_index: int, plan: Plan, ledger: Ledger, seen_ids: set[str]) -> None:
    _, conv_id, changed, rank, prompt_key, stratum, n_records, multi, prompt_len, reply_len = outcome
    for rule in changed:
        ledger.note_changed(rule)
    repeated = conv_id in seen_ids
    seen_ids.add(conv_id)
    kept.ids.append(conv_id)
    kept.repeated_id.append(1 if repeated else 0)
    kept.source.append(source_index)
    kept.rank.append(rank)
    kept.prompt_key.append(prompt_key)
    kept.stratum.append(kept.strata.setdefault(stratum or f"source:{plan.label}", len(kept.strata)))
    kept.records.append(n_records)
    kept.multi.append(1 if multi else 0)
    kept.prompt_len.append(prompt_len)
    kept.reply_len.append(reply_len)


def drop_chunk(spool: str, number: int) -> None:
    for suffix in (".conv", ".train", ".held", ".items"):
        Path(spool, f"{number}{suffix}").unlink(missing_ok=True)
