"""Executors: where a build's passes run. The build owns the flow; an executor runs the passes.

    from instruct_data.executors import LocalExecutor, RayExecutor
    from instruct_data.pipeline import build

    build(recipe, "out/")                                          # LocalExecutor(): processes here
    build(recipe, "out/", executor=LocalExecutor(workers=2))
    build(recipe, "out/", executor=RayExecutor("head-node:6379"))   # Ray Data, on a cluster

`pipeline.run.build` runs the same flow whatever the executor: plan the sources, record the
inputs in the ledger, then `with executor:` (start or join its runtime) the passes, then the
ledger's finish, the report and the swap of the folder into place. The passes are written once,
in pipeline/flow.py (run_passes: pass 1 -> the reject-rate check -> own ids and repeated ids ->
the split -> the dedupe decision -> pass 2 and the stats), as calls on the executor. An
executor never calls back into the build. `executor_for(name, ...)` is the one place the
command line's `--engine` becomes an executor.

The executor's interface (Executor): four operations, which the flow's steps are written in,
and, for the step not yet written in them, the step itself:

    map_chunks(job) -> Chunks                  pass 1's map: every chunk through the row path; its
                                               outcomes (Chunk: a steps.caps.Summary, the rejects)
                                               in chunk order; take or drop each; taken() -> FirstPass
    partition_by_key(table, key, fn, columns)  fn over partitions of the rows, every row of a key
                                               value in one partition; results in any order
    map_blocks(table, fn, columns)             fn over blocks of the rows, every row in one block;
                                               results in any order
    iterate_in_order(kept)                     the kept rows, a Batch at a time, in input order
    removals(job, first, held, repeated)       dedupe's removals, asked block by block (of_rows)

Every decision that looks across rows is a function of instruct_data/steps/ (or split.py)
over one partition plus a merge. The steps' tests (tests/test_steps_*.py) show that any
partitioning gives the answer over all rows; tests/test_executors.py that a build's outputs do
not depend on how an executor partitions by key or cuts blocks; tests/test_ray_engine.py still compares the
two engines' outputs byte for byte. Step by step:

    step                                 written                       LocalExecutor                      RayExecutor
    pass 1: chunks through the row path  map_chunks                    pipeline.worker.process_chunk on   ray_engine.rows.chunk_block on
      (pipeline.worker.process_chunk)                                    parallel.WorkerPool (LocalChunks,  Ray Data blocks (RayChunks,
                                                                         pipeline.local); taken rows to     ray_engine.build); the kept rows
                                                                         pipeline.keys.Kept                 a dataset
    caps per source, reads, rejects      pipeline.flow: steps.caps     each chunk's outcome as the        rejects and summaries streamed
      in input order, rule counts          over the chunks' outcomes     workers return it (the source      to the driver in chunk order
                                           in chunk order                stops being read at its cap)
    the reject-rate check                pipeline.flow                 BuildJob.check_reject_rates        the same
    own ids and repeated ids             pipeline.flow: steps.ids      partition_by_key: hash_partitions  partition_by_key: a hash
      (duplicate_id)                       per partition_by_key          of a hash in memory, ids read      shuffle (shuffle.by_partition)
                                           (own id's hash; rank)         from the spool (pipeline.local)    (ray_engine.build)
    the held-out split                   pipeline.flow: split.py's     map_blocks: slices of the key      map_blocks: map_batches per block
      (group sizes, quotas, candidates,    block_sizes, then             columns read in place, 1M rows     (ray_engine.build), the results
      merge)                               block_candidates per block    a block (pipeline.local)           streamed to the driver
                                           of map_blocks; merged as
                                           they come (split.merge)
    the dedupe decision: contamination,  each executor's removals      steps.dedupe over hash partitions  steps.dedupe per partition of
      exact, band pairs, verification,     (steps.dedupe in both)        spilled to the spool               Ray shuffles (ray_engine.decide,
      resolve, clusters                                                  (dedupe.find, via                  components.py); removals as a
                                                                         decide.find_removals);             dataset sorted by row, streamed
                                                                         RowRemovals                        (_RemovalStream)
    pass 2: where each kept row goes,    pipeline.flow: steps.place    iterate_in_order: the spool, chunk iterate_in_order: batches of kept
      what is written for it; the          per Batch, SplitStats         by chunk (pipeline.outputs: runs   rows streamed to the driver
      split counts and stats               merged                        of train rows copied as byte       (ray_engine.build)
                                                                         ranges)

Also shared: the row path, the rules, the templates, dedupe's fingerprints, ranks and
verification, the removal of some of a dialogue's records (pipeline.dialogue) and the ledger.
Not yet: the dedupe decision is still each executor's own sequence of the shared steps
(removals), not written in the operations; a kept row and a reject still
have one shape per executor (the local worker's ChunkResult and pipeline.keys.Kept, Ray's block
of kinds), which Chunk, FirstPass's tables and Batch hide from the flow rather than replace; on
Ray the driver runs pass 2's steps.place over batches streamed to it in order.

`idata dedupe` takes an executor too: dedupe.runner.dedupe_files(executor=...) enters it and
runs its passes on the executor's `dedupe_engine()` (the runner's LocalDedupe: its worker pool;
ray_engine.dedupe.RayDedupe), the same calls whichever it is. Not yet in the operations above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # (the build imports this module: no import of the pipeline at run time)
    from instruct_data.ledger import Ledger
    from instruct_data.pipeline.sources import Plan
    from instruct_data.pipeline.worker import WorkerState
    from instruct_data.recipe import Recipe


@dataclass
class BuildJob:
    """What the build hands its executor: the planned sources and the state of this build.

    `plans` (pipeline.sources.Plan) are updated by the executor (rows read and kept, caps);
    `ledger` receives every read, reject, removal and write; `work` is the folder the outputs
    go to (train, heldout, conversations; the build writes the rest), `spool` a scratch folder
    inside it; `against` the benchmark questions; `on_row` is called per row read, if given."""

    recipe: Recipe
    plans: list[Plan]
    state: WorkerState  # what every chunk's worker needs: the cleaner, template, spool folder...
    ledger: Ledger
    work: Path
    spool: str
    against: list[str]
    on_row: Callable[[], None] | None = None

    def check_reject_rates(self) -> None:
        """Fail the build when a source rejected more than its max_reject_rate; each executor
        calls it once pass 1's rejects are counted. The rejects are not written when the build
        fails, so the error names the commonest reasons (Ledger.check_reject_rate)."""
        for plan in self.plans:
            self.ledger.check_reject_rate(plan.label, plan.max_reject_rate)


@dataclass
class Batch:
    """A block of kept rows as iterate_in_order gives it, in input order: `rows` their numbers
    among the kept rows (numpy int64, increasing), `columns` their key columns (numpy arrays:
    source, records, multi, prompt_len, reply_len, category), `lines` their spooled lines
    (steps.place.Lines), `row_id(k)` the id of its row k, `names` the category numbers' names
    (None where `category` holds the names themselves)."""

    rows: Any
    columns: dict[str, Any]
    lines: Any
    row_id: Callable[[int], str]
    names: dict | None = None


@dataclass
class FirstPass:
    """What pass 1 leaves, as the executor holds it: `kept`, a table of the rows the caps
    took (columns as table.KEY_COLUMNS, with `id` and `order`, the row's number in input
    order), `own_ids`, a table of those of them with an own `id` field (columns `order`,
    `id`, `own_id`, and `hash` of the own id), and `own_id_rows`, how many rows that is.
    `names`: the names of the numbers the kept table's `category` column holds (None where it
    holds the names themselves). `let_go(columns)`: no later step reads these columns of the
    kept table, which may release them; `close()` releases what the tables hold once the build
    is done with them."""

    kept: Any
    own_ids: Any
    own_id_rows: int
    close: Callable[[], None] = lambda: None
    names: dict | None = None
    let_go: Callable[[tuple[str, ...]], None] = lambda columns: None


class Chunk(Protocol):
    """One chunk's outcome of pass 1: its steps.caps.Summary, and its rejects (table.Reject)."""

    summary: Any

    def rejects(self, n: int) -> list[Any]:
        """Its first n rejects, in row order."""


class Chunks(Protocol):
    """Pass 1 as the flow drives it (executors' map_chunks): iterate for every chunk's outcome
    in chunk order, tell each chunk's fate (take with steps.caps' Cut, or drop), then `taken()`."""

    def __enter__(self) -> Chunks: ...

    def __exit__(self, *exc: Any) -> bool | None: ...

    def __iter__(self) -> Iterator[Chunk]: ...

    def take(self, chunk: Chunk, cut: Any) -> None:
        """The build takes the chunk's first `cut.take` kept rows, numbered from `cut.start`."""

    def drop(self, chunk: Chunk) -> None:
        """The build takes nothing of the chunk (read ahead of its source's cap)."""

    def taken(self) -> FirstPass:
        """The rows taken, as this executor's tables."""


class Executor(Protocol):
    """Where a build's passes run. Entered by the build (or, for dedupe, its caller) around the
    passes: __enter__ starts or joins its runtime, __exit__ stops what it started.

    The build's flow (pipeline.flow.run_passes) is written once, over the operations every
    executor has: map_chunks (pass 1), and partition_by_key, map_blocks and iterate_in_order
    over its tables (pass 1's FirstPass). The step not yet written in them is each executor's
    own (removals; the table in this module's docstring)."""

    draws_own_progress: bool  # True: the command line shows no row progress of its own
    reads_this_machines_files: bool  # its workers can read a file only this machine has (the hub cache)

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: Any) -> bool | None: ...

    def manifest_entry(self) -> dict[str, Any] | None:
        """The manifest's `engine` entry, or None for none (the local executor)."""

    def partition_by_key(self, table: Any, key: str, fn: Callable[[dict], dict],
                         columns: tuple[str, ...]) -> Iterator[dict]:
        """fn over partitions of the rows of `table` (one of this executor's: FirstPass's),
        every row of one `key` value in the same partition (`key`: an integer column, a hash);
        each call gets a partition's `columns` (arrays or lists, its rows in any order) and
        returns columns (numpy arrays of one length); its results, in no particular order. A row whose key no other row has may be
        left out: partition_by_key is for steps that compare rows sharing a key (steps.ids)."""

    def map_blocks(self, table: Any, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
        """fn over blocks of the rows of `table` (one of this executor's: FirstPass's), every row
        in exactly one block: each call gets a block's `columns` (arrays, its rows in any order)
        and returns columns (numpy arrays of one length); its results, in no particular order
        (the split: split.block_sizes, split.block_candidates)."""

    def iterate_in_order(self, table: Any) -> Iterator[Batch]:
        """The rows of the `kept` table, a block at a time, in input order (pass 2)."""

    def map_chunks(self, job: BuildJob) -> Chunks:
        """Pass 1's map: every chunk of the job's sources through the row path
        (pipeline.worker.process_chunk), as a Chunks context (the work runs inside it)."""

    def removals(self, job: BuildJob, first: FirstPass, held: Any, repeated: Any) -> Any:
        """Dedupe's decision (steps.dedupe) over the kept rows' records, held-out rows
        protected: an object whose of_rows(rows) (increasing, asked block after block) gives
        {row: {record number: Removal}} of those of `rows` that lose records."""

    def dedupe_engine(self) -> Any:
        """What dedupe.runner.dedupe_files runs its passes on (pool, block_bytes, decide): the
        runner's LocalDedupe, or ray_engine.dedupe.RayDedupe."""


def default_workers() -> int:
    """The local executor's worker processes when none are asked for: the cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


class LocalExecutor:
    """Worker processes on this machine (parallel.WorkerPool); the cross-row steps in this
    process, with what grows with the rows spilled to disk."""

    draws_own_progress = False
    reads_this_machines_files = True  # its workers run here: a release downloaded into the cache is theirs to read

    def __init__(self, workers: int | None = None):
        self.workers = workers  # None: default_workers() for a build, dedupe.runner's own default for dedupe

    def __enter__(self) -> LocalExecutor:
        return self  # nothing to start: the pool lives for pass 1 only

    def __exit__(self, *exc: Any) -> None:
        return None

    def manifest_entry(self) -> None:
        return None

    def partition_by_key(self, table, key: str, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
        from instruct_data.pipeline.local import partition_by_key

        return partition_by_key(table, key, fn, columns)

    def map_blocks(self, table, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
        from instruct_data.pipeline.local import map_blocks

        return map_blocks(table, fn, columns)

    def iterate_in_order(self, table) -> Iterator[Batch]:
        from instruct_data.pipeline.local import iterate_in_order

        return iterate_in_order(table)

    def map_chunks(self, job: BuildJob) -> Chunks:
        from instruct_data.pipeline.local import LocalChunks

        return LocalChunks(job, default_workers() if self.workers is None else max(1, self.workers))

    def removals(self, job: BuildJob, first: FirstPass, held, repeated):
        from instruct_data.pipeline.local import removals

        return removals(job, first, held, repeated, default_workers() if self.workers is None else max(1, self.workers))

    def dedupe_engine(self):
        from instruct_data.dedupe.runner import LocalDedupe

        return LocalDedupe(self.workers)


class RayExecutor:
    """Ray Data: a running Ray session of this process, else the cluster at `address`, else a
    local Ray runtime with `num_cpus` (default: all cores), shut down again on exit. `import
    ray` happens on entering, never before (ray_engine.runtime)."""

    draws_own_progress = True  # Ray Data draws a bar per stage

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        self.address, self.num_cpus = address, num_cpus
        # A runtime on this machine reads what this machine has; a cluster's nodes read the
        # inputs at shared paths, not this machine's Hugging Face cache: a hub release is then
        # streamed by the driver rather than downloaded.
        self.reads_this_machines_files = address is None
        self.cluster = None  # ray_engine.runtime.Cluster while entered
        self._stack: ExitStack | None = None

    def __enter__(self) -> RayExecutor:
        from instruct_data.ray_engine.runtime import ray_runtime

        with ExitStack() as stack:
            self.cluster = stack.enter_context(ray_runtime(self.address, num_cpus=self.num_cpus))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        # ray_runtime turns a Ray task's wrapped error back into the error the task met
        # (`file:line: ...`): its __exit__ raises that one instead.
        stack, self._stack, self.cluster = self._stack, None, None
        return stack.__exit__(*exc) if stack is not None else None

    def _entered(self):
        if self.cluster is None:
            raise RuntimeError("RayExecutor used outside `with executor:`")
        return self.cluster

    def manifest_entry(self) -> dict[str, Any]:
        return self._entered().to_dict()

    def partition_by_key(self, table, key: str, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
        from instruct_data.ray_engine.build import partition_by_key

        return partition_by_key(self._entered(), table, key, fn, columns)

    def map_blocks(self, table, fn: Callable[[dict], dict], columns: tuple[str, ...]) -> Iterator[dict]:
        from instruct_data.ray_engine.build import map_blocks

        return map_blocks(self._entered(), table, fn, columns)

    def iterate_in_order(self, table) -> Iterator[Batch]:
        from instruct_data.ray_engine.build import iterate_in_order

        return iterate_in_order(table)

    def map_chunks(self, job: BuildJob) -> Chunks:
        from instruct_data.ray_engine.build import RayChunks

        return RayChunks(job, self._entered())

    def removals(self, job: BuildJob, first: FirstPass, held, repeated):
        from instruct_data.ray_engine.build import RayBuild

        return RayBuild(job, self._entered()).removals(first, held, repeated)

    def dedupe_engine(self):
        from instruct_data.ray_engine.dedupe import RayDedupe

        return RayDedupe(self._entered())


ENGINES = ("local", "ray")  # the command line's --engine choices


def executor_for(engine: str = "local", *, workers: int | None = None, address: str | None = None,
                 num_cpus: int | None = None) -> Executor:
    """The executor the command line's `--engine` names (`--workers` is the local executor's,
    `--ray-address` Ray's)."""
    if engine == "local":
        return LocalExecutor(workers)
    if engine == "ray":
        # --workers sizes a Ray runtime this process starts; a cluster at `address` has its own CPUs.
        return RayExecutor(address, num_cpus=num_cpus if num_cpus is not None else (None if address else workers))
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["Batch", "BuildJob", "Chunk", "Chunks", "ENGINES", "Executor", "FirstPass", "LocalExecutor", "RayExecutor", "default_workers", "executor_for"]
