"""What every format adapter shares: the reject signal and small helpers."""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError

from instruct_data.schema import Conversation, Origin, describe_validation_error


class RowReject(Exception):
    """A row the canonical record cannot hold. `reason` is a stable code, `detail` says why."""

    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


# Reason codes for rows rejected while reading (stage "read").
UNPARSEABLE = "unparseable"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
EMPTY_INSTRUCTION = "empty_instruction"
EMPTY_REPLY = "empty_reply"
BAD_ROLES = "bad_roles"
BAD_TRANSCRIPT = "bad_transcript"
INVALID = "invalid"

# Tool dialogues (calls, results, traces) have their own reasons: formats/tools.py.


def text_field(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    """A field as text: numbers become text (spreadsheets), None and missing become ''."""
    if key not in data:
        if required:
            raise RowReject(MISSING_FIELD, f"no '{key}' field")
        return ""
    return as_text(data[key], f"'{key}'")


def as_text(value: Any, name: str) -> str:
    """A value as text: numbers become text (spreadsheets); None and NaN become '', since
    pandas marks an empty cell NaN and `json.dumps` writes it as `NaN` (read as "nan" it would be
    trained on); Infinity, booleans, lists and objects are rejects naming `name`."""
    if value is None:
        return ""
    if type(value) is float and not math.isfinite(value):
        if math.isnan(value):
            return ""
        raise RowReject(WRONG_TYPE, f"{name} should be text, got {'-' if value < 0 else ''}Infinity")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowReject(WRONG_TYPE, f"{name} should be text, got {type(value).__name__}")
    return str(value)


def required_text(data: dict[str, Any], key: str, reason: str) -> str:
    """A field that must hold text: missing, wrong type and blank are rejects naming the field."""
    text = text_field(data, key)
    if not text.strip():
        raise RowReject(reason, f"'{key}' is empty")
    return text


def position_id(source: str, origin: Origin) -> str:
    """A row's id: `source:position`, the position being the line of a JSON line, the index of an
    array item (1-based), or the row of a table or hub dataset, with `#n` for the n-th row of an
    expanded record. Never the row's own `id` field, which can repeat (see own_id)."""
    where = origin.row if origin.row is not None else origin.line
    if origin.sheet is not None:  # a workbook with several sheets counts rows per sheet
        where = f"{origin.sheet}!{where}"
    if origin.instance is not None:
        return f"{source}:{where}#{origin.instance}"
    return f"{source}:{where}"


def own_id(data: dict[str, Any] | None) -> str | None:
    """The row's own `id` field as text, when it has one: kept on the Conversation as `own_id`."""
    own = data.get("id") if data is not None else None
    if isinstance(own, (str, int)) and not isinstance(own, bool) and str(own).strip():
        return str(own)
    return None


def category_of(data: dict[str, Any]) -> str | None:
    """`category`, `class` (BELLE's eval set) or `type`, with odd spaces (NBSP) made plain."""
    for key in ("category", "class", "type"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return None


def history_pairs(data: dict[str, Any], key: str = "history") -> list[tuple[str, str]]:
    """alpaca/ChatGLM `history`: [[question, answer], ...]."""
    history = data.get(key)
    if isinstance(history, str) and history.strip().startswith("["):
        try:  # a spreadsheet cell holding the pairs as JSON
            history = json.loads(history)
        except json.JSONDecodeError as exc:
            raise RowReject(WRONG_TYPE, f"'{key}' holds invalid JSON: {exc.msg}") from None
    if history is None or (isinstance(history, (str, list)) and not history):
        return []
    if not isinstance(history, list):
        raise RowReject(WRONG_TYPE, f"'{key}' should be a list of [question, answer] pairs")
    pairs = []
    for index, pair in enumerate(history, start=1):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            raise RowReject(WRONG_TYPE, f"'{key}' item {index} should be a [question, answer] pair")
        question, answer = (as_text(value, f"'{key}' item {index}") for value in pair)
        if not question.strip():
            raise RowReject(EMPTY_INSTRUCTION, f"'{key}' item {index} has an empty question")
        if not answer.strip():
            raise RowReject(EMPTY_REPLY, f"'{key}' item {index} has an empty answer")
        pairs.append((question, answer))
    return pairs


def build(
    *,
    row_id: str,
    source: str,
    origin: Origin,
    turns: list[tuple[str, str] | tuple[str, str, str | None]],
    system: str | None = None,
    category: str | None = None,
    rendered: bool = False,
    weights: list[int | None] | None = None,
) -> Conversation:
    """A Conversation from (role, text[, input]) tuples, bad shapes turned into RowReject.
    `weights`, if given, is each turn's schema.Turn.weight (0: a reply kept as history only)."""
    if not turns:
        raise RowReject(BAD_ROLES, "no user or assistant turns")
    for index, turn in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if turn[0] != expected:
            previous = f" after a {turns[index - 1][0]} turn" if index else ""
            raise RowReject(BAD_ROLES, f"turns: turn {index + 1} is {turn[0]}{previous}, expected {expected}")
    if turns[-1][0] != "assistant":
        raise RowReject(BAD_ROLES, f"turns: the last turn ({len(turns)}) is a user turn with no reply")
    for index, turn in enumerate(turns):
        has_input = len(turn) > 2 and turn[2]
        if not str(turn[1]).strip() and not has_input:
            if turn[0] == "assistant":
                where = "the reply" if index == len(turns) - 1 else f"turn {index + 1} (assistant)"
                raise RowReject(EMPTY_REPLY, f"turns: {where} is empty")
            raise RowReject(EMPTY_INSTRUCTION, f"turns: turn {index + 1} (user) is empty")
    try:
        # One validation call over plain dicts: about 40% cheaper than building each Turn first.
        return Conversation.model_validate({
            "id": row_id,
            "source": source,
            "system": system,
            "turns": [{"role": t[0], "text": t[1], "input": t[2] if len(t) > 2 else None,
                       "weight": weights[i] if weights else None} for i, t in enumerate(turns)],
            "category": category,
            "origin": origin,
            "rendered": rendered,
        })
    except ValidationError as exc:
        raise RowReject(INVALID, describe_validation_error(exc)) from None
