"""A build's held-out set, asked the way the adapter was trained (issue 21: train and eval agree).

A build renders `heldout.jsonl` with its own template (seed by default) when it is built; the
adapter may be trained later with another (`idata train --template auto` picks a chat model's
own template). Eval prompts with the adapter's template (its `template.json`), so the held-out
rows are rendered again with it, from the build's dialogues:

- `heldout_conversations.jsonl`, where the build wrote one: each dialogue rendered with the
  template, exactly as training renders a dialogue;
- else `heldout.jsonl`: each context is read back with the template the build recorded in its
  manifest and rendered with the adapter's, by the function training uses for its eval loss
  (`training.data.rerendered_context`), so the prompts are training's by construction.

A context that cannot be read back, or a context/target file with no manifest whose prompts
lack the template's markers, is an error that names the one command that fixes it: eval never
scores a model on prompts in a template it was not trained with.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from instruct_data.errors import IdataError
from instruct_data.templates import AnyTemplate, Template, get_template

HELD_CONVERSATIONS = "heldout_conversations.jsonl"
HELD_RECORDS = "heldout.jsonl"


class TemplateMismatch(IdataError):
    """Benchmark prompts rendered with another template than the model is asked with."""


def build_folder(path: str | Path) -> Path | None:
    """The build folder `path` is, or holds `path` as its held-out file; None otherwise."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not (folder / "manifest.json").is_file():
        return None
    if path.is_dir():
        return folder if any((folder / name).is_file() for name in (HELD_CONVERSATIONS, HELD_RECORDS)) else None
    return folder if path.name in (HELD_CONVERSATIONS, HELD_RECORDS) else None


def heldout_file(folder: Path) -> Path:
    """The held-out dialogues of a build folder, else its rendered held-out rows; an error when empty."""
    for name in (HELD_CONVERSATIONS, HELD_RECORDS):
        candidate = folder / name
        if candidate.is_file() and candidate.stat().st_size and candidate.read_bytes()[:4096].strip():
            return candidate
    raise IdataError(f"{folder}: the build has no held-out rows (built with --heldout 0?): rebuild it with "
                     "--heldout 0.1, or pass another benchmark with -b")


def agree(bench, template: AnyTemplate, adapter: str | None):
    """The benchmark with every prompt in `template`; a TemplateMismatch naming the fix when that
    cannot be done. Benchmarks that are not pre-rendered (rendered here with `template`) pass as they are."""
    if bench.format != "context_target":
        return bench
    from instruct_data.training.data import recorded_template

    recorded = recorded_template(Path(bench.path))
    if recorded is None:
        warning = bench.template_warning(template)
        if warning:
            raise TemplateMismatch(f"{warning}. Give eval the dialogues instead, so it renders them as the model "
                                   f"was trained: {_eval_command(adapter, 'BUILD_FOLDER')} (a build folder, or "
                                   "any dialogue file); or --template NAME, the template this file was rendered with")
        return bench
    rendered_with = _template(recorded, bench.path)
    if _same(rendered_with, template):
        return bench
    return _rerendered(bench, template, rendered_with, adapter)


def _template(name: str, where: str) -> Template:
    try:
        return get_template(name)
    except ValueError as exc:
        raise IdataError(f"{where}: its manifest names a template this idata does not know: {exc}") from None


def _same(rendered_with: Template, template: AnyTemplate) -> bool:
    return isinstance(template, Template) and template.to_dict() == rendered_with.to_dict()


def _rerendered(bench, template: AnyTemplate, rendered_with: Template, adapter: str | None):
    from instruct_data.training.data import rerendered_context

    items, unreadable = [], []
    for item in bench.items:
        context = rerendered_context(item.prompt, template, rendered_with)
        if context is None:
            unreadable.append(item.id)
        items.append(replace(item, prompt=context or item.prompt))
    if unreadable:
        folder = build_folder(bench.path) or Path(bench.path).parent
        raise TemplateMismatch(
            f"{bench.path}: {len(unreadable)} of {len(bench.items)} held-out prompts (first: {unreadable[0]}) do not "
            f"read back as {rendered_with.name!r} prompts, the template the build rendered them with, so they cannot "
            f"be asked in {template.name!r} as the adapter was trained. Train with the build's template: "
            f"idata train --data {folder} --template {rendered_with.name} --model MODEL --out OUT")
    bench.items = items
    bench.rerendered = {"from": rendered_with.name, "to": template.name, "items": len(items)}
    return bench


def _eval_command(adapter: str | None, benchmark: str) -> str:
    return f"idata eval {'--adapter ' + adapter + ' ' if adapter else ''}-b {benchmark} --out OUT"
