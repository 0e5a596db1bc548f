"""`--engine ray`: the build's and dedupe's passes on Ray Data, byte-identical to the local engine.

    idata build mine.jsonl --engine ray --out build/           # a local Ray runtime, all cores
    idata build recipe.yaml --engine ray --ray-address HOST:6379 --out build/   # join a cluster

    from instruct_data.executors import RayExecutor            # the same from Python
    build(recipe, "build/", executor=RayExecutor("HOST:6379"))

This package is what executors.RayExecutor runs: it is handed a build's passes
(build.RayBuild) or dedupe's hooks (dedupe.RayDedupe) inside the runtime the executor
entered, and never calls pipeline.build or dedupe.runner itself.

The row path, the rules, the templates, the split, the manifest's counts and the ledger are
the local engine's own functions (pipeline.worker.process_chunk, steps.place (pass 2),
pipeline.stats.SplitStats, dedupe's ranks / exact_groups / candidate_pairs / verified_pairs /
resolve_near); the split is pipeline.flow's, over this package's map_blocks (split.py's steps
per block). This package only runs them on Ray Data blocks and joins their results with
shuffles instead of in one process's memory.

Modules: runtime (start or join Ray, the one-line errors), rows (pass 1: chunks to column
blocks), shuffle (hash partitions),
components (connected components by large-star / small-star rounds), decide (dedupe:
contamination, exact groups, LSH bands, verification, clusters), build (`idata build`'s
passes: RayBuild), dedupe (`idata dedupe`'s pool and decision: RayDedupe). `import ray`
happens only in here, and only when the engine runs.
"""

from __future__ import annotations

from instruct_data.ray_engine.runtime import EngineError, require_ray

__all__ = ["EngineError", "require_ray"]
