"""The work of one chunk, in a worker process: parse (rowpath), clean, render, spool.

Kept rows go to the chunk's own spool files (conversation, train records, held-out record;
the dedupe texts too when near detection is on); the main process gets back a ChunkResult:
the rejects (table.Reject, as they go to rejects.jsonl), and the small keys of the kept rows as
columns (table.KEY_COLUMNS; with the byte length of each spooled line, and dedupe's exact keys
when near detection is off).
"""

from __future__ import annotations

import json
import os
import pickle
from array import array
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import xxhash

from instruct_data.clean import Cleaner
from instruct_data.dedupe import DedupeSettings, ExactKeys, exact_keys
from instruct_data.dedupe.keys import record_texts
from instruct_data.formats.plaindialogue import PlainDialogue
from instruct_data.pipeline.dialogue import conversation_line
from instruct_data.rowpath import chunk_results
from instruct_data.schema import Conversation
from instruct_data.table import Reject, add_key_columns
from instruct_data.templates import training_record


@dataclass
class WorkerState:
    """What every worker needs, set once per process (not sent with each chunk)."""

    cleaner: Cleaner
    template: Any
    multiturn: Any
    system: str | None
    seed: int
    spool: str
    sources: list[str]  # the label of each source, by index
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)
    categories: list[Any] = field(default_factory=list)  # per source index: a CategoryLookup, or None


_STATE: WorkerState | None = None


def init_worker(state: WorkerState) -> None:
    global _STATE
    _STATE = state


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call with options
_dumps = _ENCODER.encode
_string = json.encoder.encode_basestring  # what _dumps writes for a str, quotes included


def _record_json(record: dict) -> str:
    """_dumps(record): by hand for the usual record, a flat dict of strings (a third faster);
    anything else goes to the encoder."""
    parts = []
    for key, value in record.items():
        if type(value) is not str or type(key) is not str:
            return _dumps(record)
        parts.append(_string(key) + ": " + _string(value))
    return "{" + ", ".join(parts) + "}"


_quoted = orjson.dumps  # for a str: _string(text).encode("utf-8"), byte for byte (tests/test_spool_json.py)


# What record_line writes before a key's value: `{"key": ` for the first key, `, "key": ` after.
_KEY_BYTES: dict[str, tuple[bytes, bytes]] = {}


def _key_bytes(key: str) -> tuple[bytes, bytes]:
    quoted = _quoted(key)  # (raises for a key orjson refuses: record_line then goes the old way)
    if len(_KEY_BYTES) < 64:  # a record's keys are a few names: context, target, id, source, category
        _KEY_BYTES[key] = (b"{" + quoted + b": ", b", " + quoted + b": ")
    return b"{" + quoted + b": ", b", " + quoted + b": "


def record_line(record: dict) -> bytes:
    """(_record_json(record) + "\n").encode("utf-8"): for the usual flat dict of strings, each
    string encoded by orjson straight to UTF-8 bytes (no str built and encoded again) and joined
    once with its key's bytes, made once per key; anything else, and a text orjson refuses (a
    lone surrogate), the old way, which fails as before."""
    parts = []
    try:
        for key, value in record.items():
            if type(value) is not str or type(key) is not str:
                break
            parts.append((_KEY_BYTES.get(key) or _key_bytes(key))[1 if parts else 0])
            parts.append(_quoted(value))
        else:
            if not parts:
                return b"{}\n"
            parts.append(b"}\n")
            return b"".join(parts)
    except orjson.JSONEncodeError:
        pass
    return (_record_json(record) + "\n").encode("utf-8")


def _records(conversation: Conversation, state: WorkerState) -> list[dict] | Reject:
    """train.jsonl records: one per reply for a dialogue (multiturn settings), else one."""
    if _replies(conversation) > 1 or state.multiturn.budget is not None:
        from instruct_data.multiturn import expand

        records = expand(conversation, state.template, state.multiturn, system=state.system)
        if not isinstance(records, Reject) and len(records) == 1:
            records[0]["id"] = conversation.id  # one record (a single turn, or one reply not at weight 0): the row's id
        return records
    return [training_record(conversation, state.template, state.system)]


def _replies(conversation) -> int:
    """How many train records a dialogue gives in every-turn mode: its rounds, or its assistant
    turns when it calls tools (a call is a reply: multiturn/tools.py). A plain row has no n_replies."""
    return getattr(conversation, "n_replies", 1)


def _calls_tools(conversation) -> bool:
    return any(getattr(turn, "tool_calls", None) for turn in conversation.turns)


class Spool:
    """The spool lines of one chunk (UTF-8, newline included), written to its files at the end:
    the conversations, the train records and the held-out records of dialogues."""

    def __init__(self, base: str):
        self.base = base
        self.conv: list[bytes] = []
        self.train: list[bytes] = []
        self.held: list[bytes] = []
        self.prompts: list[str] = []  # the dedupe texts of every train record (keys.record_texts)
        self.replies: list[str] = []
        self.last_prompts: list[str] = []  # of each kept row's final record: the split's and the stats' texts
        self.last_replies: list[str] = []

    def close(self, result: "ChunkResult") -> None:
        """Write the files; the byte length of every line goes back, so that pass 2 copies
        runs of lines as byte ranges instead of splitting the files into lines again."""
        for suffix, lines, lengths in ((".conv", self.conv, result.conv_len), (".train", self.train, result.train_len),
                                       (".held", self.held, result.held_len)):
            with open(self.base + suffix, "wb") as fh:
                fh.write(b"".join(lines))
            lengths.extend(map(len, lines))

    def finish_dedupe(self, settings: DedupeSettings) -> ExactKeys | None:
        """Without near detection, the exact keys are computed here, where the texts are, and
        only they go back (the main process decides on them); near detection needs the texts
        back in one place, so they are spooled."""
        if not settings.near:
            return exact_keys(self.prompts, self.replies, settings)
        with open(self.base + ".items", "wb") as fh:
            pickle.dump(list(zip(self.prompts, self.replies)), fh, protocol=pickle.HIGHEST_PROTOCOL)
        return None


@dataclass
class ChunkResult:
    """What a worker sends back for one chunk: its rejects in full, its kept rows as columns of
    small keys (arrays pickle as plain bytes: far cheaper than a tuple per row). The key columns
    (rank, prompt_key, records, multi, prompt_len, reply_len) are table.KEY_COLUMNS, added as
    attributes by __post_init__."""

    rows: int = 0  # rows read from the chunk
    rejects: list[Reject] = field(default_factory=list)
    reject_at: array = field(default_factory=lambda: array("I"))  # row index of each reject (the caps cut by it)
    position: array = field(default_factory=lambda: array("I"))  # row index of each kept row
    ids: list[str] = field(default_factory=list)
    changed: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)  # (kept index, rules that edited it)
    own_ids: list[tuple[int, str]] = field(default_factory=list)  # (kept index, the row's own `id` field)
    strata: list[str] = field(default_factory=list)  # the chunk's distinct categories ("" for none)
    stratum: array = field(default_factory=lambda: array("H"))  # index into `strata`
    dedupe_keys: ExactKeys | None = None  # without near detection: the kept rows' exact keys
    conv_len: array = field(default_factory=lambda: array("I"))  # bytes of each spooled line, per file
    train_len: array = field(default_factory=lambda: array("I"))
    held_len: array = field(default_factory=lambda: array("I"))

    def __post_init__(self) -> None:
        add_key_columns(self)

    def reject(self, reject: Reject) -> None:
        """A reject of the row being read (the `rows`-th of the chunk)."""
        self.rejects.append(reject)
        self.reject_at.append(self.rows)


def process_chunk(task: tuple) -> tuple[int, ChunkResult]:
    """Parse, clean and render one chunk; spool the kept rows; return their keys and the rejects."""
    number, source_index, id_prefix, chunk = task
    state = _STATE
    label = state.sources[source_index]
    lookup = state.categories[source_index] if state.categories else None
    spool = Spool(os.path.join(state.spool, str(number)))
    result = ChunkResult()
    try:
        for row, parsed in chunk_results(chunk, id_prefix, label):
            if isinstance(parsed, Reject):
                result.reject(parsed)
            else:
                if lookup is not None and not parsed.category and parsed.own_id is not None:
                    parsed.category = lookup.of(parsed.own_id)  # the source's categories file, by the row's id
                _clean_and_spool(parsed, row, state, spool, result)
            result.rows += 1
        _text_keys(result, spool, state.seed)
        result.dedupe_keys = spool.finish_dedupe(state.dedupe)
    finally:
        spool.close(result)
    return number, result


def _clean_and_spool(conversation, row, state: WorkerState, spool: Spool, result: ChunkResult) -> None:
    """Clean and render one conversation; spool it and add its keys if kept, else add the reject."""
    verdict, changed = state.cleaner.clean(conversation)
    if verdict is not None:
        result.reject(Reject("clean", verdict.reason, verdict.detail, str(row.origin), _raw(row), conversation.id))
        return
    _apply_system(conversation, state.system)
    records = _records(conversation, state)
    if isinstance(records, Reject):  # multiturn's budget: the row it names is known here
        result.reject(replace(records, origin=str(row.origin), raw=_raw(row), row_id=conversation.id))
        return
    spool.conv.append(_conversation_line(conversation, len(records)))
    for record in records:
        spool.train.append(record_line(record))
    multi = _replies(conversation) > 1
    if multi:
        # A held-out dialogue that calls tools keeps every reply as a benchmark item, so that its
        # calls are scored (evaluation/toolcalls.py); any other, its last reply.
        spool.held.append(b"".join(map(record_line, _held_records(conversation, records, state))))
    texts = record_texts(conversation, state.multiturn.mode == "every-turn")
    if len(texts) != len(records):  # one text per record is what dedupe and pass 2 count on
        raise AssertionError(f"{conversation.id}: {len(records)} records but {len(texts)} dedupe texts")
    for prompt, reply in texts:
        spool.prompts.append(prompt)
        spool.replies.append(reply)
    spool.last_prompts.append(prompt)
    spool.last_replies.append(reply)
    if changed:
        result.changed.append((len(result.ids), tuple(changed)))
    if conversation.own_id is not None:
        result.own_ids.append((len(result.ids), conversation.own_id))
    result.position.append(result.rows)
    result.ids.append(conversation.id)
    category = conversation.category or ""
    try:
        result.stratum.append(result.strata.index(category))
    except ValueError:
        result.stratum.append(len(result.strata))
        result.strata.append(category)
    result.records.append(len(records))
    result.multi.append(multi)


def _apply_system(conversation, system: str | None) -> None:
    """Give the conversation the system text its records are rendered with, so that
    conversations.jsonl (what export, eval and `idata train` read) says what train.jsonl says.
    The recipe's text overrides the row's own, as templates.render takes it (`system or
    conversation.system`); a rendered row's context is passed through, no system added, so it
    keeps its own. Set after cleaning: the recipe's text is rendered as written, never cleaned."""
    if system and not conversation.rendered:
        conversation.system = system


def _conversation_line(conversation, records: int) -> bytes:
    """dialogue.conversation_line (replies with no record at weight 0). A plain dialogue whose
    every reply gives a record (every-turn mode) is written as it is, as a plain row is; one with
    replies at weight 0 (last-turn mode) is made a validated Conversation first."""
    if type(conversation) is PlainDialogue:
        if records >= conversation.n_replies:
            return conversation.json_line()
        conversation = conversation.as_conversation()
    return conversation_line(conversation, records)


def _held_records(conversation, records: list[dict], state: WorkerState) -> list[dict]:
    """A dialogue's held-out records: every reply's when it calls tools, else its last reply's
    (templates.training_record). Without a budget, a history limit or tools, multiturn.expand
    rendered that record last, with the same arguments (render_prompt over every earlier round):
    it is taken under the dialogue's own id instead of being rendered again."""
    if _calls_tools(conversation):
        return records
    settings = state.multiturn
    if (settings.budget is None and settings.max_history_turns is None and not conversation.rendered
            and not getattr(conversation, "has_tools", False)):
        return [{**records[-1], "id": conversation.id}]  # (the same keys in the same order)
    return [training_record(conversation, state.template, state.system)]


def _raw(row) -> Any:
    """What rejects.jsonl keeps of a row: as read, or its text when it did not parse."""
    return row.data if row.data is not None else row.raw


def _text_keys(result: ChunkResult, spool: Spool, seed: int) -> None:
    """The keys computed from the kept rows' ids and texts, for the whole chunk at once
    (a comprehension per column costs less than a few statements per row)."""
    seed &= 0xFFFFFFFFFFFFFFFF
    hash64 = xxhash.xxh64_intdigest
    result.rank.extend([hash64(row_id.encode("utf-8"), seed=seed) for row_id in result.ids])
    result.prompt_key.extend([hash64(prompt.strip().encode("utf-8")) for prompt in spool.last_prompts])
    result.prompt_len.extend(map(len, spool.last_prompts))
    result.reply_len.extend(map(len, spool.last_replies))
