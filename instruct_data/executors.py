"""Executors: where a build's passes run. The build owns the flow; an executor runs the passes.

    from instruct_data.executors import LocalExecutor, RayExecutor
    from instruct_data.pipeline import build

    build(recipe, "out/")                                          # LocalExecutor(): processes here
    build(recipe, "out/", executor=LocalExecutor(workers=2))
    build(recipe, "out/", executor=RayExecutor("head-node:6379"))   # Ray Data, on a cluster

`pipeline.run.build` runs the same flow whatever the executor: plan the sources, record the
inputs in the ledger, then `with executor:` (start or join its runtime) `executor.run_build(job)`
(pass 1, the cross-row steps, pass 2; returns the manifest's counts), then the ledger's
finish, the report and the swap of the folder into place. An executor never calls back into
the build. `executor_for(name, ...)` is the one place the command line's `--engine` becomes an
executor.

What run_build runs, step by step, on each executor. Every decision that looks across rows is
a function of instruct_data/steps/ (or split.py) over one partition plus a merge, called by
both executors. An executor only forms and moves partitions and calls them; the steps' tests
(tests/test_steps_*.py) show that any partitioning gives the answer over all rows, and
tests/test_ray_engine.py still compares the two engines' outputs byte for byte:

    step                                 LocalExecutor                      RayExecutor
    pass 1: chunks through the row path  pipeline.keys.clean_pass on       ray_engine.rows.chunk_block on
      (pipeline.worker.process_chunk)      parallel.WorkerPool                Ray Data blocks
    caps per source, reads, rejects      steps.caps.Caps over each chunk's  the same, over the chunks'
      in input order, rule counts          Summary as it comes back           summaries in chunk order
      (steps.caps)                         (pipeline.keys)                    (ray_engine.build)
    the reject-rate check                BuildJob.check_reject_rates        the same
    repeated ids (duplicate_id) and      steps.ids per partition of the     steps.ids per partition of a
      own ids (steps.ids)                  rows sharing a hash                hash shuffle (ray_engine.build)
                                           (pipeline.keys)
    the held-out split (split.py:        split.candidates over one          split.candidates per block, then
      quotas, candidates, merge)           partition (decide.heldout_rows)    merged in rounds (ray_engine.heldout)
    the dedupe decision: contamination,  steps.dedupe over hash partitions  steps.dedupe per partition of
      exact, band pairs, verification,     spilled to the spool                Ray shuffles (ray_engine.decide,
      resolve, clusters (steps.dedupe)     (dedupe.find, via                   components.py); removals as a
                                           decide.find_removals); removals     dataset sorted by row
                                           as a RemovalTable (RowRemovals)
    pass 2: where each kept row goes     steps.place per chunk of the       steps.place per batch of kept
      and what is written for it           spool (pipeline.outputs: runs      rows streamed to the driver
      (steps.place)                        of train rows copied as byte       (ray_engine.build), removals
                                           ranges), RowRemovals                read alongside
    the split counts and stats           pipeline.stats.SplitStats per      the same, per batch
                                           chunk, merged (SplitStats.merge)

Also shared: the row path, the rules, the templates, dedupe's fingerprints, ranks and
verification, the removal of some of a dialogue's records (pipeline.dialogue) and the ledger.
Not yet: an executor's interface is still one method per command (run_build), not issue 22's
three operations (map blocks, partition by key, iterate in order), and on Ray the driver still
runs pass 2's steps.place over batches streamed to it in order.

`idata dedupe` takes an executor too: the command line enters it and hands the runner its
`dedupe_engine()` (dedupe.runner.dedupe_files(engine=...); None runs the runner's own worker
pool).
"""

from __future__ import annotations

import os
from collections.abc import Callable
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


class Executor(Protocol):
    """Where a build's passes run. Entered by the build (or, for dedupe, its caller) around the
    passes: __enter__ starts or joins its runtime, __exit__ stops what it started."""

    draws_own_progress: bool  # True: the command line shows no row progress of its own

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: Any) -> bool | None: ...

    def manifest_entry(self) -> dict[str, Any] | None:
        """The manifest's `engine` entry, or None for none (the local executor)."""

    def run_build(self, job: BuildJob) -> dict[str, Any]:
        """Pass 1, the cross-row steps and pass 2 of a build (the table above); returns the
        manifest's counts of the outputs (what pipeline.outputs.write_outputs returns)."""

    def dedupe_engine(self) -> Any:
        """dedupe.runner.dedupe_files' `engine` hook, or None for the runner's own pool."""


def default_workers() -> int:
    """The local executor's worker processes when none are asked for: the cores, at most 8."""
    return max(1, min(os.cpu_count() or 1, 8))


class LocalExecutor:
    """Worker processes on this machine (parallel.WorkerPool); the cross-row steps in this
    process, with what grows with the rows spilled to disk."""

    draws_own_progress = False

    def __init__(self, workers: int | None = None):
        self.workers = workers  # None: default_workers() for a build, dedupe.runner's own default for dedupe

    def __enter__(self) -> LocalExecutor:
        return self  # nothing to start: the pool lives for pass 1 only

    def __exit__(self, *exc: Any) -> None:
        return None

    def manifest_entry(self) -> None:
        return None

    def run_build(self, job: BuildJob) -> dict[str, Any]:
        from instruct_data.pipeline.decide import find_removals, heldout_rows
        from instruct_data.pipeline.keys import clean_pass
        from instruct_data.pipeline.outputs import write_outputs

        workers = default_workers() if self.workers is None else max(1, self.workers)
        kept = clean_pass(job.plans, job.state, job.ledger, workers=workers, strict=job.recipe.strict,
                          on_row=job.on_row)
        job.check_reject_rates()
        heldout = heldout_rows(kept, job.plans, job.recipe.split)
        removed = find_removals(job.spool, kept, heldout, job.recipe.dedupe, workers, job.against)
        summary = write_outputs(job.work, job.spool, kept, heldout, removed, job.plans, job.ledger)
        kept.ids.close()
        return summary

    def dedupe_engine(self) -> None:
        return None


class RayExecutor:
    """Ray Data: a running Ray session of this process, else the cluster at `address`, else a
    local Ray runtime with `num_cpus` (default: all cores), shut down again on exit. `import
    ray` happens on entering, never before (ray_engine.runtime)."""

    draws_own_progress = True  # Ray Data draws a bar per stage

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None):
        self.address, self.num_cpus = address, num_cpus
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

    def run_build(self, job: BuildJob) -> dict[str, Any]:
        from instruct_data.ray_engine.build import RayBuild

        return RayBuild(job, self._entered()).run()

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


__all__ = ["BuildJob", "ENGINES", "Executor", "LocalExecutor", "RayExecutor", "default_workers", "executor_for"]
