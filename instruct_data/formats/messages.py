"""OpenAI messages: `messages: [{"role": "system"/"user"/"assistant"/"tool", "content": ...}]`,
with `tool_calls`, `tool_call_id`, `reasoning_content` and a row-level `tools` (formats/tools.py);
a row-level `system` text is read too (in a system message or beside the messages, not both)."""

from __future__ import annotations

from instruct_data.formats.base import BAD_ROLES, RowReject, text_field
from instruct_data.formats.sharegpt import finish, message_turns

NAME = "messages"
SIGNATURE = {"messages"}


def to_conversation(data, *, row_id, source, origin):
    turns, system, tools_needed = message_turns(data.get("messages"), role_key="role", text_key="content",
                                                container="messages")
    if "system" in data:  # a row-level system text, as sharegpt rows carry it
        row_system = text_field(data, "system", required=False) or None
        if row_system and system is not None and row_system.strip() != system.strip():
            raise RowReject(BAD_ROLES, "two system texts, in 'system' and in a system message: keep one")
        system = system or row_system
    return finish(data, turns, system, tools_needed, row_id=row_id, source=source, origin=origin)
