"""What to train on: context/target rows or whole conversations, as (text, supervised) pieces.

A context/target row is two pieces, `[(context, False), (target, True)]`. A conversation is
rendered by `templates.segments`, so every assistant turn is supervised in one sequence
(no per-turn copies of the dialogue) and each prompt part is exactly what `render` gives at
evaluation. A build folder stands for its `train.jsonl` and `heldout.jsonl`, with the template
recorded in its `manifest.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from instruct_data.errors import InputError, IdataError
from instruct_data.io import read_rows
from instruct_data.schema import Conversation, TrainingRecord, describe_validation_error
from instruct_data.templates import DEFAULT_TEMPLATE, Template, get_template, segments

Pieces = list[tuple[str, bool]]


@dataclass
class DataSource:
    train: Path
    eval: Path | None
    template: Template
    template_from: str  # where the template choice came from, for the run report


def recorded_template(path: Path) -> str | None:
    """The template a build or convert recorded in its manifest, if any."""
    candidates = [path / "manifest.json"] if path.is_dir() else [
        path.parent / "manifest.json", path.with_name(f"{path.name.split('.')[0]}.manifest.json")]
    for manifest in candidates:
        if not manifest.is_file():
            continue
        try:
            parameters = json.loads(manifest.read_text(encoding="utf-8")).get("parameters") or {}
        except (json.JSONDecodeError, AttributeError):
            continue
        template = parameters.get("template")
        if isinstance(template, dict):
            template = template.get("name")
        if isinstance(template, str):
            return template
    return None


def resolve_source(data: str, eval_data: str | None, template: str | None) -> DataSource:
    """The train/eval files and the template, from the options and a build folder's manifest."""
    path = Path(data)
    if not path.exists():
        raise InputError(data, "no such file or folder")
    recorded = recorded_template(path)
    if path.is_dir():
        train = path / "train.jsonl"
        if not train.is_file():
            raise InputError(data, "a build folder must hold train.jsonl")
        heldout = path / "heldout.jsonl"
        if eval_data is None and heldout.is_file() and heldout.read_bytes()[:4096].strip():
            eval_data = str(heldout)  # (a small build may have an empty held-out file: then no eval loss)
        if template and recorded and template != recorded:
            raise IdataError(f"{data} was rendered with template {recorded!r}; to train with {template!r}, "
                             f"pass --data {path / 'conversations.jsonl'} --template {template} "
                             "(the conversations are re-rendered)")
    else:
        train = path
    if eval_data is not None and not Path(eval_data).is_file():
        raise InputError(eval_data, "no such file")
    name = template or recorded or DEFAULT_TEMPLATE
    origin = "--template" if template else ("the data's manifest" if recorded else "the default")
    return DataSource(train, Path(eval_data) if eval_data else None, get_template(name), origin)


def read_pieces(path: Path, template: Template) -> tuple[str, list[Pieces]]:
    """Every row of `path` as pieces, and the data kind ("context_target" or "conversations")."""
    kind = data_kind(path)
    return kind, list(iter_pieces(path, template, kind))


def data_kind(path: Path) -> str:
    """conversations (canonical records, rendered here) or context_target, from the first row."""
    for row in read_rows(path, limit=1):
        if row.data is not None and "turns" in row.data:
            return "conversations"
    return "context_target"


def iter_pieces(path: Path, template: Template, kind: str) -> Iterator[Pieces]:
    """The rows of `path` as pieces, streamed.

    A row that is not valid is an error with file:line: training on a silently thinned file
    is worse than stopping (run `idata validate` first).
    """
    count = 0
    for row in read_rows(path):
        where = row.origin.line or row.origin.row
        if row.error:
            raise InputError(str(path), row.error, line=where)
        try:
            if kind == "conversations":
                yield segments(Conversation.model_validate(row.data), template)
            else:
                record = TrainingRecord.model_validate(
                    {k: row.data.get(k) for k in ("context", "target", "id", "source", "category") if k in row.data})
                yield [(record.context, False), (record.target, True)]
        except ValidationError as exc:
            expected = "a conversation (id, source, turns)" if kind == "conversations" else "context/target"
            raise InputError(str(path), f"not {expected}: {describe_validation_error(exc)}", line=where) from None
        count += 1
    if not count:
        raise InputError(str(path), "no rows to train on")
