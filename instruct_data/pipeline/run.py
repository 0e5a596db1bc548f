"""The build's flow: plan, record the inputs, the executor's passes, ledger, report, swap the folder in.

The flow is the same whatever runs the passes: the passes themselves are pipeline.flow's
(run_passes), written once over the operations of an executor (instruct_data.executors: the
local worker processes by default, or Ray).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from instruct_data.clean import Cleaner
from instruct_data.errors import IdataError
from instruct_data.executors import BuildJob, Executor, LocalExecutor
from instruct_data.io import expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.outputs_guard import fresh_work_folder, swap_in
from instruct_data.pipeline.decide import benchmark_questions
from instruct_data.pipeline.flow import run_passes
from instruct_data.pipeline.sources import Plan, plan_sources
from instruct_data.pipeline.worker import WorkerState
from instruct_data.recipe import Recipe, RecipeError
from instruct_data.templates import get_template


class BuildError(IdataError):
    pass


def build(recipe: Recipe, out_dir: str | os.PathLike, *, executor: Executor | None = None,
          workers: int | None = None, on_row: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run a recipe into `out_dir`; returns the manifest. Nothing changes at `out_dir` unless it all succeeds.

    `executor` runs the passes (instruct_data.executors); the build enters it once the inputs
    are planned and recorded. By default a LocalExecutor with `workers` processes (`workers`
    is its shorthand: give one or the other)."""
    from instruct_data import hub

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise BuildError(f"{out}: folder holds other files and no manifest.json; give an empty or new folder")
    if executor is not None and workers is not None:
        raise TypeError("build: give `executor` or `workers`, not both (workers= is LocalExecutor(workers))")
    executor = executor if executor is not None else LocalExecutor(workers)
    plans = plan_sources(recipe, download=executor.reads_this_machines_files)  # fails before anything is written
    try:
        against = benchmark_questions(recipe.against) if recipe.against else []
    except IdataError as exc:
        raise RecipeError(f"against: {exc}") from None
    template = get_template(recipe.template)
    work = fresh_work_folder(out)
    umask = os.umask(0)  # (read back at once: the outputs get the user's usual permissions)
    os.umask(umask)
    try:
        spool = str(work / ".spool")
        os.mkdir(spool)
        state = WorkerState(Cleaner(recipe.clean), template, recipe.multiturn, recipe.system, recipe.seed, spool,
                            [p.label for p in plans], recipe.dedupe, [p.categories for p in plans])
        ledger = Ledger(work, command="build", parameters={
            "recipe": recipe.resolved(),
            "template": template.to_dict(),
            "cleaning_rules": state.cleaner.enabled,
        })
        for plan in plans:
            if plan.subset is not None:
                downloaded = plan.files[0].path if plan.files and plan.source.from_ is None else None
                ledger.add_remote_input(source=plan.label, **hub.describe(plan.subset, plan.source.from_,
                                                                         plan.source.revision, downloaded))
            for file in plan.files if plan.subset is None else ():  # (a Belle copy's file: described above)
                ledger.add_input(file.path, source=plan.label, format=file.format, map=file.mapping or None,
                                 **file.column_info())
            if plan.categories is not None:
                ledger.add_input(plan.categories.path, source=plan.label, role="categories", **plan.categories.summary())
        for path in expand_inputs(recipe.against):
            ledger.add_input(path, role="against", questions=len(against))
        job = BuildJob(recipe, plans, state, ledger, work, spool, against, on_row)
        with executor:
            engine = executor.manifest_entry()
            if engine is not None:
                ledger.extra["engine"] = engine
            summary = run_passes(job, executor)
        shutil.rmtree(spool)
        ledger.extra.update({
            "template": template.name,
            "sources": [_source_summary(plan) for plan in plans],
            **summary,
        })
        manifest = ledger.finish(outputs=[work / name for name in ("train.jsonl", "heldout.jsonl",
                                                                   "conversations.jsonl", "heldout_conversations.jsonl")])
        from instruct_data.report import write_report

        write_report(work, manifest)
        for path in work.iterdir():  # the ledger's temp files are private (mkstemp): make all alike
            os.chmod(path, 0o666 & ~umask)
        _replace_folder(work, out)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _source_summary(plan: Plan) -> dict[str, Any]:
    info = {"name": plan.label, "kind": "belle" if plan.subset is not None else "files", "read": plan.read,
            "kept_after_cleaning": plan.kept, "cap": plan.cap, "limit": plan.limit,
            "stopped_at_cap": plan.stopped}
    if plan.subset is not None:
        info["subset"] = plan.subset.name
    else:
        info["formats"] = sorted({f.format for f in plan.files})
    return info


def _replace_folder(work: Path, out: Path) -> None:
    """Swap the finished folder into place; the old outputs go only once the new ones are there."""
    swap_in(work, out)
