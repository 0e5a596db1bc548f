"""`idata build`: sources -> read -> clean -> cap -> split -> dedupe -> write, with the ledger.

    from instruct_data.pipeline import build
    from instruct_data.recipe import load_recipe
    manifest = build(load_recipe("recipes/mix.yaml"), "out/")

Two passes keep memory flat. Pass 1 reads every source in chunks and hands each chunk to a
worker process, which parses, cleans and renders its rows and spools the kept ones to files
of its own; the main process keeps only a few small keys per kept row (id, source, stratum,
lengths; without near detection also dedupe's exact keys, computed in the workers). The
split and the dedupe decision are made on those keys (with near detection, dedupe reads the
spooled texts back as a stream for its signatures). Pass 2 copies the spooled lines into the
outputs in input order, run by run as byte ranges, so the outputs do not depend on how many
workers ran.

The flow (run.build) is the same on every executor (instruct_data.executors): this package's
passes are what the local executor runs; `executor=RayExecutor(...)` runs them on Ray Data
instead (ray_engine), with the same outputs.

Modules, in the order of the flow: sources (plan and chunk the inputs), worker (one chunk:
parse, clean, render, spool), keys (pass 1 in the main process), decide (split and dedupe),
outputs (pass 2), run (the whole build: plan, ledger, the executor's passes, report, swap).

Everything is written into a hidden folder beside the output folder, which replaces the
output folder only at the very end: an interrupted build leaves the old outputs (or none).
"""

from __future__ import annotations

from instruct_data.executors import default_workers
from instruct_data.pipeline.run import BuildError, build
from instruct_data.pipeline.sources import estimate_rows

__all__ = ["BuildError", "build", "default_workers", "estimate_rows"]
