"""The build: plan, pass 1, split, dedupe, pass 2, ledger, report, swap the folder in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from instruct_data.clean import Cleaner
from instruct_data.errors import IdataError
from instruct_data.io import expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.outputs_guard import fresh_work_folder, swap_in
from instruct_data.pipeline.decide import benchmark_questions, find_removals, heldout_rows
from instruct_data.pipeline.keys import clean_pass
from instruct_data.pipeline.outputs import write_outputs
from instruct_data.pipeline.sources import Plan, plan_sources
from instruct_data.pipeline.worker import WorkerState
from instruct_data.recipe import Recipe, RecipeError
from instruct_data.templates import get_template


class BuildError(IdataError):
    pass


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def build(recipe: Recipe, out_dir: str | os.PathLike, *, workers: int | None = None,
          on_row: Callable[[], None] | None = None, engine: Callable[..., dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run a recipe into `out_dir`; returns the manifest. Nothing changes at `out_dir` unless it all succeeds.

    `engine(plans, state, ledger, work, against)` runs pass 1, the split, dedupe and pass 2
    elsewhere (ray_engine) and returns what write_outputs returns; by default they run here."""
    from instruct_data import hub

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise BuildError(f"{out}: folder holds other files and no manifest.json; give an empty or new folder")
    workers = default_workers() if workers is None else max(1, workers)
    plans = plan_sources(recipe)  # fails before anything is written
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
                            [p.label for p in plans], recipe.dedupe)
        ledger = Ledger(work, command="build", parameters={
            "recipe": recipe.resolved(),
            "template": template.to_dict(),
            "cleaning_rules": state.cleaner.enabled,
        })
        for plan in plans:
            if plan.subset is not None:
                ledger.add_remote_input(source=plan.label, **hub.describe(plan.subset, plan.source.from_,
                                                                         plan.source.revision))
            for file in plan.files:
                ledger.add_input(file.path, source=plan.label, format=file.format, map=file.mapping or None,
                                 **file.column_info())
        for path in expand_inputs(recipe.against):
            ledger.add_input(path, role="against", questions=len(against))
        if engine is not None:
            summary = engine(plans, state, ledger, work, against)
        else:
            kept = clean_pass(plans, state, ledger, workers=workers, strict=recipe.strict, on_row=on_row)
            for plan in plans:
                _check_reject_rate(ledger, plan)
            heldout = heldout_rows(kept, plans, recipe.split)
            removed = find_removals(spool, kept, heldout, recipe.dedupe, workers, against)
            summary = write_outputs(work, spool, kept, heldout, removed, plans, ledger)
            kept.ids.close()
        shutil.rmtree(spool)
        ledger.extra.update({
            "template": template.name,
            "sources": [_source_summary(plan) for plan in plans],
            **summary,
        })
        manifest = ledger.finish(outputs=[work / name for name in ("train.jsonl", "heldout.jsonl",
                                                                   "conversations.jsonl")])
        from instruct_data.report import write_report

        write_report(work, manifest)
        for path in work.iterdir():  # the ledger's temp files are private (mkstemp): make all alike
            os.chmod(path, 0o666 & ~umask)
        _replace_folder(work, out)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _check_reject_rate(ledger: Ledger, plan: Plan) -> None:
    """The rejects are not written when the build fails, so the error names the commonest reasons
    (Ledger.check_reject_rate does)."""
    ledger.check_reject_rate(plan.label, plan.max_reject_rate)


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
