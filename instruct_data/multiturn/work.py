"""Dialogues to finished output lines: the part of to-multiturn that runs in worker processes.

A Batch carries the serialized train.jsonl and conversations.jsonl lines of a run of
dialogues plus one Outcome per dialogue, so the main process only writes text and keeps
the ledger. Batches come back in input order, so the output does not depend on the number
of workers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic_core

from instruct_data.formats import Rejected, parse_row, row_id
from instruct_data.io import Row, json_line
from instruct_data.multiturn.expansion import MultiturnSettings, expand
from instruct_data.multiturn.grouping import Dialogue
from instruct_data.schema import Origin
from instruct_data.templates import get_template

# pydantic-core's JSON writer (compact separators, UTF-8 kept readable): serializing is a large
# share of the run time, and this is about twice as fast as the json module.
encode = pydantic_core.to_json


@dataclass
class Outcome:
    """What one dialogue gave: a number of records, or a reject for the ledger."""

    records: int = 0
    reject: tuple[str, Rejected, Origin, Any, str] | None = None  # (stage, why, origin, raw, id)


@dataclass
class Batch:
    """Output lines as UTF-8 bytes: encoded in the worker, they cross the process boundary and
    reach the file without being decoded and encoded again in the main process."""

    train: bytes = b""
    conversations: bytes = b""
    outcomes: list[Outcome] = field(default_factory=list)
    rows: int = 0
    dropped: Counter = field(default_factory=Counter)


class Expander:
    """Expands dialogues with one template and one set of settings."""

    def __init__(self, template: str, settings: MultiturnSettings, system: str | None):
        self.template = get_template(template)
        self.settings = settings
        self.system = system

    def batch(self, dialogues: Iterable[Dialogue], source: str) -> Batch:
        batch = Batch()
        train: list[bytes] = []
        conversations: list[bytes] = []
        for dialogue in dialogues:
            batch.rows += len(dialogue.rows)
            batch.outcomes.append(self._one(dialogue, source, batch.dropped, train, conversations))
        batch.train = _lines(train)
        batch.conversations = _lines(conversations)
        return batch

    def _one(self, dialogue: Dialogue, source: str, dropped: Counter, train: list[bytes],
             conversations: list[bytes]) -> Outcome:
        conversation = dialogue.result
        if isinstance(conversation, Rejected):
            return _rejected(dialogue, conversation, dialogue.stage, source)
        records = expand(conversation, self.template, self.settings, system=self.system, stats=dropped)
        if isinstance(records, Rejected):
            return _rejected(dialogue, records, "multiturn", source)
        train.extend(encode(record) for record in records)
        conversations.append(conversation.__pydantic_serializer__.to_json(conversation, exclude_none=True))
        return Outcome(records=len(records))


def _lines(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n" if lines else b""


def _rejected(dialogue: Dialogue, why: Rejected, stage: str, source: str) -> Outcome:
    first = dialogue.rows[0]
    if not isinstance(dialogue.result, Rejected):
        the_id = dialogue.result.id
    else:
        the_id = dialogue.group_id or row_id(first, source)
    return Outcome(reject=(stage, why, first.origin, dialogue.raw, the_id))


# ------------------------------------------------------------------ worker processes
_EXPANDER: Expander | None = None


def start_worker(template: str, settings: MultiturnSettings, system: str | None) -> None:
    global _EXPANDER
    _EXPANDER = Expander(template, settings, system)


def expand_lines(job: tuple[str, int, bytes, str, str, dict[str, str], str]) -> Batch:
    """A worker's task: a block of whole JSON lines of a file (from line `first`) to a Batch.

    Lines are parsed by the same function the reader uses, so rows, errors and line numbers
    are what a single process would see.
    """
    path, first, block, fmt, source, mapping, encoding = job
    path = Path(path)
    lines = block.split(b"\n")
    if not lines[-1]:
        lines.pop()  # what follows the last line end is not a line
    dialogues = []
    for line_no, raw in enumerate(lines, start=first):
        row: Row | None = json_line(path, line_no, raw, encoding)
        if row is not None:  # blank lines are not rows
            dialogues.append(Dialogue([row], parse_row(row, fmt, source=source, mapping=mapping)))
    return _EXPANDER.batch(dialogues, source)
