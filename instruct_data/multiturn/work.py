"""Dialogues to finished output lines: the part of to-multiturn that runs in worker processes.

A Batch carries the serialized train.jsonl and conversations.jsonl lines of a run of
dialogues plus one Outcome per dialogue, so the main process only writes text and keeps
the ledger. Batches come back in input order, so the output does not depend on the number
of workers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pydantic_core

from instruct_data.formats.base import position_id
from instruct_data.multiturn.expansion import MultiturnSettings, expand
from instruct_data.multiturn.grouping import Dialogue
from instruct_data.rowpath import chunk_results
from instruct_data.table import Reject
from instruct_data.templates import get_template

# pydantic-core's JSON writer (compact separators, UTF-8 kept readable): serializing is a large
# share of the run time, and this is about twice as fast as the json module.
encode = pydantic_core.to_json


@dataclass
class Outcome:
    """What one dialogue gave: a number of records, or a reject for the ledger."""

    records: int = 0
    reject: Reject | None = None  # for the ledger, as it is
    own_id: tuple[str, str] | None = None  # (the row's own `id` field, the dialogue's id), when it has one


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
        if isinstance(conversation, Reject):
            return _rejected(dialogue, conversation, dialogue.stage, source)
        records = expand(conversation, self.template, self.settings, system=self.system, stats=dropped)
        if isinstance(records, Reject):
            return _rejected(dialogue, records, "multiturn", source)
        train.extend(encode(record) for record in records)
        conversations.append(conversation.model_dump_json(exclude_none=True).encode("utf-8"))
        own = (conversation.own_id, conversation.id) if conversation.own_id is not None else None
        return Outcome(records=len(records), own_id=own)


def _lines(lines: list[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n" if lines else b""


def _rejected(dialogue: Dialogue, why: Reject, stage: str, source: str) -> Outcome:
    """The reject named after the dialogue: its first row's origin, the raw rows of a group."""
    first = dialogue.rows[0]
    if not isinstance(dialogue.result, Reject):
        the_id = dialogue.result.id
    else:
        the_id = dialogue.group_id or position_id(source, first.origin)
    return Outcome(reject=replace(why, stage=stage, origin=first.origin, raw=dialogue.raw, row_id=the_id))


# ------------------------------------------------------------------ worker processes
_EXPANDER: Expander | None = None


def start_worker(template: str, settings: MultiturnSettings, system: str | None) -> None:
    global _EXPANDER
    _EXPANDER = Expander(template, settings, system)


def expand_chunk(job: tuple) -> Batch:
    """A worker's task: a rowpath.Chunk of a file (and its source name) to a Batch. Rows,
    errors and line numbers are what a single process reading the file sees."""
    chunk, source = job
    dialogues = [Dialogue([row], result) for row, result in chunk_results(chunk, source)]
    return _EXPANDER.batch(dialogues, source)
