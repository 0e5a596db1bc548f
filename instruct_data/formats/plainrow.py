"""The row path's fast path (rowpath.conversation_of): plain single-turn instruction rows, without pydantic.

Most rows of Belle's instruction sets (and of most self-collected sets) are exactly
`{"instruction": str, "input": str, "output": str}` with both texts non-empty. Building a
validated `schema.Conversation` for each of them is the largest cost per row of a build
(see benchmarks/bench_build.py), and its checks cannot fail for such a row. So the row path
checks these few conditions itself and uses `PlainConversation`, which has the same fields
and properties that cleaning, templates and multi-turn expansion read, and serializes to the
same JSON bytes as `Conversation.model_dump_json(exclude_none=True)`. Every other row (a
history, a system text, a transcript, a number or a blank field, a column mapping) goes
through `formats.parse_row`, which also gives the reject reasons.
tests/test_plainrow.py and tests/test_rowpath.py (generated rows) check both paths agree.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from instruct_data.formats.base import category_of, own_id
from instruct_data.schema import Origin
from instruct_data.formats.transcript import looks_like_transcript

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # pydantic's JSON layout
# What the encoders above write for a str (quotes included): json's C string encoder.
_string = json.encoder.encode_basestring
PLAIN_KEYS = frozenset({"instruction", "input", "output", "id", "category", "class", "type"})


class PlainTurn:
    __slots__ = ("role", "text", "input")
    # schema.Turn's other fields, never set on a plain row's turns (read with getattr or not at all)
    reasoning = tool_calls = tool_call_id = name = weight = None

    def __init__(self, role: str, text: str, input: str | None = None):
        self.role, self.text, self.input = role, text, input

    @property
    def full_text(self) -> str:
        return f"{self.text}\n{self.input}" if self.input else self.text


class PlainRecord:
    """schema.Conversation's fields, unvalidated, for a conversation known to be valid and without
    tools: PlainConversation (one round) and formats.plaindialogue.PlainDialogue share it."""

    __slots__ = ("id", "own_id", "source", "system", "turns", "category", "origin", "rendered")

    def __init__(self, id: str, own: str | None, source: str, turns: list[PlainTurn], category: str | None,
                 origin: Origin):
        self.id, self.own_id, self.source, self.turns, self.category, self.origin = id, own, source, turns, category, origin
        self.system = None
        self.rendered = False

    @property
    def prompt(self) -> PlainTurn:
        return self.turns[-2]

    @property
    def reply(self) -> str:
        return self.turns[-1].text

    @property
    def n_rounds(self) -> int:
        return len(self.turns) // 2

    def to_json(self) -> str:
        """The same bytes as Conversation.model_dump_json(exclude_none=True).

        Built from json's own string encoder rather than by encoding a dict: the layout is
        fixed, and this is one of the larger costs per row of a build.
        """
        parts = ['{"id":', _string(self.id)]
        if self.own_id is not None:
            parts += [',"own_id":', _string(self.own_id)]
        parts += [',"source":', _string(self.source)]
        if self.system is not None:
            parts += [',"system":', _string(self.system)]
        parts.append(',"turns":[')
        for n, turn in enumerate(self.turns):
            parts += ['{"role":' if n == 0 else ',{"role":', _string(turn.role), ',"text":', _string(turn.text)]
            if turn.input is not None:
                parts += [',"input":', _string(turn.input)]
            parts.append("}")
        parts.append("]")
        if self.category is not None:
            parts += [',"category":', _string(self.category)]
        parts += [',"origin":', _origin_json(self.origin), ',"rendered":false}']
        return "".join(parts)

    def json_line(self) -> bytes:
        """(self.to_json() + "\n").encode("utf-8"): for a line of a file (the usual origin), one
        orjson call over the fields as a dict, which writes pydantic's compact layout and each
        string as json's encoder does (tests/test_spool_json.py); else each string encoded by
        orjson. A text orjson refuses (a lone surrogate) goes the old way, which fails as it did."""
        origin = self.origin
        if (type(origin.file) is str and type(origin.line) is int and origin.dataset is None
                and origin.revision is None and origin.row is None and origin.instance is None
                and origin.sheet is None):
            fields = {"id": self.id}
            if self.own_id is not None:
                fields["own_id"] = self.own_id
            fields["source"] = self.source
            if self.system is not None:
                fields["system"] = self.system
            fields["turns"] = [{"role": turn.role, "text": turn.text} if turn.input is None else
                               {"role": turn.role, "text": turn.text, "input": turn.input} for turn in self.turns]
            if self.category is not None:
                fields["category"] = self.category
            fields["origin"] = {"file": origin.file, "line": origin.line}
            fields["rendered"] = False
            try:
                return orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
            except orjson.JSONEncodeError:
                return (self.to_json() + "\n").encode("utf-8")
        quoted = orjson.dumps
        try:
            parts = [b'{"id":', quoted(self.id)]
            if self.own_id is not None:
                parts += [b',"own_id":', quoted(self.own_id)]
            parts += [b',"source":', quoted(self.source)]
            if self.system is not None:
                parts += [b',"system":', quoted(self.system)]
            parts.append(b',"turns":[')
            for n, turn in enumerate(self.turns):
                parts += [b'{"role":' if n == 0 else b',{"role":', quoted(turn.role), b',"text":', quoted(turn.text)]
                if turn.input is not None:
                    parts += [b',"input":', quoted(turn.input)]
                parts.append(b"}")
            parts.append(b"]")
            if self.category is not None:
                parts += [b',"category":', quoted(self.category)]
            parts += [b',"origin":', _origin_json(self.origin).encode("utf-8"), b',"rendered":false}\n']
        except orjson.JSONEncodeError:
            return (self.to_json() + "\n").encode("utf-8")
        return b"".join(parts)

    def model_dump_json(self, *, exclude_none: bool = True) -> str:
        """Conversation's own name for to_json, so callers need not tell the two apart."""
        return self.to_json()


class PlainConversation(PlainRecord):
    """A single-turn conversation known to be valid: schema.Conversation's fields, unvalidated."""

    __slots__ = ()

    @property
    def history(self) -> list[tuple[str, str]]:
        return []


def _origin_json(origin: Origin) -> str:
    """_COMPACT.encode(origin.as_dict()), by hand for a line of a file (a third of the cost)."""
    file, line = origin.file, origin.line
    if (type(file) is str and type(line) is int and origin.dataset is None and origin.revision is None
            and origin.row is None and origin.instance is None and origin.sheet is None):
        return '{"file":' + _string(file) + ',"line":' + str(line) + "}"
    return _COMPACT.encode(origin.as_dict())


def plain_conversation(data: dict[str, Any], fmt: str, source: str, origin: Origin,
                       row_id: str) -> PlainConversation | None:
    """The conversation of a plain valid instruction row, or None: then use formats.parse_row.

    `row_id` is the row's id
    (rowpath.position_id). Called only by rowpath.conversation_of, for rows without a --map.
    """
    if fmt not in ("alpaca", "belle") or not PLAIN_KEYS.issuperset(data):
        return None
    instruction, output, extra = data.get("instruction"), data.get("output"), data.get("input")
    if type(instruction) is not str or type(output) is not str or not instruction.strip() or not output.strip():
        return None
    if extra is not None and type(extra) is not str:
        return None
    if looks_like_transcript(instruction):  # parse_row reads it as a dialogue, in alpaca files too
        return None
    turns = [PlainTurn("user", instruction, extra if extra and extra.strip() else None), PlainTurn("assistant", output)]
    return PlainConversation(row_id, own_id(data), source, turns, category_of(data), origin)
