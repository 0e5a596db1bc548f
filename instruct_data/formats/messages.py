"""OpenAI messages: `messages: [{"role": "system"/"user"/"assistant", "content": ...}]`."""

from __future__ import annotations

from instruct_data.formats.base import build, category_of
from instruct_data.formats.sharegpt import message_turns

NAME = "messages"
SIGNATURE = {"messages"}


def to_conversation(data, *, row_id, source, origin):
    turns, system = message_turns(data.get("messages"), role_key="role", text_key="content", container="messages")
    return build(row_id=row_id, source=source, origin=origin, turns=turns, system=system, category=category_of(data))
