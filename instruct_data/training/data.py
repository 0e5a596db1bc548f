"""What to train on: context/target rows or whole conversations, as (text, supervised) pieces.

A context/target row is two pieces, `[(context, False), (target, True)]`. A conversation is
rendered by `templates.training_examples`: one sequence supervising every assistant turn when
the template is prefix-stable over it, else one example per reply (`PerReply`, counted in the
cache's stats and printed by `idata train`), each as inference renders it. A build folder stands for its `train.jsonl` and `heldout.jsonl` when the template
is the one recorded in its `manifest.json`; for another (`--template auto` picks the model's
own chat template for a chat model), for its `conversations.jsonl`, re-rendered, and its
held-out rows read back with the build's template and re-rendered too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from instruct_data.errors import InputError, IdataError
from instruct_data.io import base_suffix, is_json_array, json_line, read_rows
from instruct_data.ledger import ledger_paths
from instruct_data.schema import Conversation, TrainingRecord, describe_validation_error
from instruct_data.templates import (AUTO, DEFAULT_TEMPLATE, NATIVE, TEMPLATES, AnyTemplate, NativeTemplate, Template,
                                     get_template, parse_prompt, parse_system, render_prompt, training_examples)
from instruct_data.tool_format import DEFAULT_REASONING

Pieces = list[tuple[str, bool]]


class PerReply(list):
    """The pieces of one example of a dialogue trained one example per reply (a template that is
    not prefix-stable over it); `first` marks the dialogue's first example."""

    def __init__(self, pieces: Pieces, first: bool):
        super().__init__(pieces)
        self.first = first


class RejectedRow(list):
    """A row that cannot be trained (unparseable, or not a record): no pieces, and why, as
    `file:line: what is wrong`. Counted and reported by the tokenizer, as every other command
    rejects such a row; the run stops only when more than half the rows are rejected."""

    def __init__(self, reason: str):
        super().__init__()
        self.reason = reason


def rejected(pieces: Pieces) -> str:
    """Why the row behind `pieces` was rejected, or ""."""
    return pieces.reason if isinstance(pieces, RejectedRow) else ""


def per_reply(pieces: Pieces) -> int:
    """0: a row trained as one example; 1: the first of a dialogue's per-reply examples; 2: a later one."""
    return 0 if not isinstance(pieces, PerReply) else 1 if pieces.first else 2


@dataclass
class DataSource:
    train: Path
    eval: Path | None
    template: AnyTemplate
    template_from: str  # which template and why, for the screen and run_config.json
    eval_rendered_with: Template | None = None  # held-out context/target rows to re-render from this template


def recorded_template(path: Path) -> str | None:
    """The template a build or convert recorded in its manifest, if any."""
    candidates = [path / "manifest.json"] if path.is_dir() else [path.parent / "manifest.json", ledger_paths(path)[-1]]
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


def resolve_source(data: str, eval_data: str | None, template: str | None, tokenizer=None) -> DataSource:
    """The train/eval files and the template (`--template auto` unless named), with why it was chosen.

    A build folder trains on its train.jsonl when the template is the one it rendered, else on
    its conversations.jsonl, re-rendered; its held-out rows are then re-rendered too.
    """
    path = Path(data)
    if not path.exists():
        raise InputError(data, "no such file or folder")
    recorded = recorded_template(path)
    conversations = _conversations_file(path)
    chosen, why = choose_template(template or AUTO, tokenizer, recorded, conversations is not None)
    train, held, rendered_with = path, None, None
    if path.is_dir():
        if chosen.name == (recorded or DEFAULT_TEMPLATE) and (path / "train.jsonl").is_file():
            train = path / "train.jsonl"
        elif conversations is not None:
            train = conversations
            rendered_with = get_template(recorded or DEFAULT_TEMPLATE)
            why += f"; trained from {conversations.name}, re-rendered (the build rendered {rendered_with.name})"
        else:
            raise InputError(data, "a build folder must hold train.jsonl (or conversations.jsonl)")
        heldout = path / "heldout.jsonl"
        if eval_data is None and heldout.is_file() and heldout.read_bytes()[:4096].strip():
            held = heldout  # (a small build may have an empty held-out file: then no eval loss)
    elif conversations is None and template not in (None, AUTO) and chosen.name != (recorded or chosen.name):
        raise IdataError(f"{data} holds context/target rows rendered with {recorded!r}; to train with "
                         f"{chosen.name!r}, pass the build's conversations.jsonl (re-rendered) instead")
    if eval_data is not None:
        if not Path(eval_data).is_file():
            raise InputError(eval_data, "no such file")
        held = Path(eval_data)
    return DataSource(train, held, chosen, why, rendered_with if held is not None and path.is_dir() else None)


def _conversations_file(path: Path) -> Path | None:
    """The canonical conversations of `path`: a build folder's conversations.jsonl, or the file itself."""
    candidate = path / "conversations.jsonl" if path.is_dir() else path
    if not candidate.is_file() or not candidate.read_bytes()[:4096].strip():
        return None
    return candidate if data_kind(candidate) == "conversations" else None


def choose_template(requested: str, tokenizer, recorded: str | None, conversations: bool) -> tuple[AnyTemplate, str]:
    """(template, why): `auto` is the model's own chat template for conversation data, else the
    build's recorded template, else seed."""
    native = NativeTemplate.from_tokenizer(tokenizer) if tokenizer is not None else None
    if requested == NATIVE:
        if native is None:
            raise IdataError("--template native: the model's tokenizer has no chat_template; name a template "
                             f"({', '.join(TEMPLATES)}) or use --template auto")
        return native, "--template native: the tokenizer's own chat template"
    if requested != AUTO:
        return get_template(requested), f"--template {requested}"
    if native is not None and conversations:
        return native, "auto: the tokenizer has a chat template and the data are conversations"
    reason = ("the tokenizer has no chat template" if native is None else
              "the data are context/target rows, already rendered")
    if recorded:
        return get_template(recorded), f"auto: the template the data were rendered with ({reason})"
    return get_template(DEFAULT_TEMPLATE), f"auto: {DEFAULT_TEMPLATE}, the default ({reason}; no template recorded)"


def read_pieces(path: Path, template: AnyTemplate, rendered_with: Template | None = None,
                reasoning: str = DEFAULT_REASONING) -> tuple[str, list[Pieces]]:
    """Every example of `path` as pieces, and the data kind ("context_target" or "conversations")."""
    kind = data_kind(path)
    return kind, list(iter_pieces(path, template, kind, rendered_with, reasoning))


def data_kind(path: Path) -> str:
    """conversations (canonical records, rendered here) or context_target, from the first row."""
    for row in read_rows(path, limit=1):
        if row.data is not None and "turns" in row.data:
            return "conversations"
    return "context_target"


def iter_pieces(path: Path, template: AnyTemplate, kind: str, rendered_with: Template | None = None,
                reasoning: str = DEFAULT_REASONING) -> Iterator[Pieces]:
    """The examples of the rows of `path` as pieces, streamed (a row gives one, or one per reply).

    A row that is not valid gives a RejectedRow naming its file:line: it is counted and shown,
    never dropped in silence, and too many of them stop the run (tokenize.MAX_REJECT_RATE).
    """
    count = 0
    for row in read_rows(path):
        yield from pieces_of(row, path, template, kind, rendered_with, reasoning)
        count += 1
    if not count:
        raise InputError(str(path), "no rows to train on")


def pieces_of(row, path: Path, template: AnyTemplate, kind: str, rendered_with: Template | None,
              reasoning: str = DEFAULT_REASONING) -> list[Pieces]:
    """One row read from `path` as its examples' pieces: a RejectedRow naming its line when the
    row cannot be read or is not a record, an InputError when the template cannot render it.

    A conversation the template is not prefix-stable over gives one example per reply
    (`PerReply`); one with no reply to train (every reply of weight 0) gives none.
    """
    where = row.origin.line or row.origin.row
    if row.error:
        return [RejectedRow(str(InputError(str(path), row.error, line=where)))]
    try:
        if kind == "conversations":
            found = training_examples(Conversation.model_validate(row.data), template, reasoning=reasoning)
            return found if len(found) < 2 else [PerReply(pieces, i == 0) for i, pieces in enumerate(found)]
        record = TrainingRecord.model_validate(
            {k: row.data.get(k) for k in ("context", "target", "id", "source", "category") if k in row.data})
        return [rerender(record, template, rendered_with)]
    except ValidationError as exc:
        expected = "a conversation (id, source, turns)" if kind == "conversations" else "context/target"
        return [RejectedRow(str(InputError(str(path), f"not {expected}: {describe_validation_error(exc)}",
                                           line=where)))]
    except ValueError as exc:  # the template cannot render it (a chat template that drops tools, refuses calls)
        raise InputError(str(path), f"cannot render with the {template.name} template: {exc}", line=where) from None


@dataclass(frozen=True)
class BlockReader:
    """Reads one block of a JSON-lines file as pieces: what a tokenizing process reads itself,
    so that reading is spread over the cores with the tokenizing (picklable, for the workers)."""

    path: Path
    template: AnyTemplate
    kind: str
    rendered_with: Template | None = None
    reasoning: str = DEFAULT_REASONING

    def __call__(self, block: tuple[int, int, int]) -> Iterator[Pieces]:
        from instruct_data.rowpath import read_span

        first_line, offset, size = block
        for index, raw in enumerate(read_span(str(self.path), offset, size)):
            row = json_line(self.path, first_line + index, raw, "utf-8")
            if row is not None:
                yield from pieces_of(row, self.path, self.template, self.kind, self.rendered_with, self.reasoning)


def file_blocks(path: Path, block_bytes: int) -> list[tuple[int, int, int]] | None:
    """(first line, offset, size) blocks of a plain JSON-lines file, for reading in parallel;
    None for anything else (gzip, a JSON array, a table), which is read in one stream."""
    from instruct_data.rowpath import line_blocks

    if base_suffix(path) not in (".jsonl", ".ndjson", ".json") or path.suffix == ".gz" or is_json_array(path, "utf-8"):
        return None
    return list(line_blocks(path, block_bytes))


def rerender(record: TrainingRecord, template: AnyTemplate, rendered_with: Template | None) -> Pieces:
    """A context/target row as pieces; re-rendered with `template` when it was rendered with another."""
    if rendered_with is not None and rendered_with != template:
        context = rerendered_context(record.context, template, rendered_with)
        if context is not None:
            return [(context, False), (record.target, True)]
    return [(record.context, False), (record.target, True)]


def rerendered_context(context: str, template: AnyTemplate, rendered_with: Template) -> str | None:
    """A context rendered with `rendered_with`, read back and rendered with `template`; None when
    it does not read back. `idata eval` asks a build's held-out rows through this same function,
    so its prompts are the ones training's eval loss saw."""
    parsed = parse_prompt(rendered_with, context)
    if parsed is None:
        return None
    history, question = parsed
    return render_prompt(template, history, question, parse_system(rendered_with, context))
