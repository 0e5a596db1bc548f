"""idata: idata's own canonical records read back (a build's conversations.jsonl and
heldout_conversations.jsonl, to-multiturn's conversations.jsonl): `id`, `source`, `turns`,
and optional `system`, `tools`, `category`, `origin`, `rendered`.

So that a build's dialogues can be checked (`idata validate`), rendered with another template
(`idata convert build/conversations.jsonl --template chatml`) or mixed into a new build. As for
every format, the row gets its id and source from where it is read (`file:line`), and the
record's own `id` is kept as the row's own id; each turn is validated as the record holds it
(roles, tool calls, reasoning, weights).
"""

from __future__ import annotations

from pydantic import ValidationError

from instruct_data.formats.base import INVALID, RowReject
from instruct_data.schema import Conversation, describe_validation_error

NAME = "idata"
SIGNATURE = {"id", "source", "turns"}


def looks_like_record(data: dict) -> bool:
    turns = data.get("turns")
    return "source" in data and isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict)


def to_conversation(data, *, row_id, source, origin):
    try:
        return Conversation.model_validate({**data, "id": row_id, "source": source, "origin": origin,
                                            "own_id": None})
    except ValidationError as exc:
        raise RowReject(INVALID, describe_validation_error(exc)) from None
