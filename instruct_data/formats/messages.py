"""OpenAI messages: `messages: [{"role": "system"/"user"/"assistant"/"tool", "content": ...}]`,
with `tool_calls`, `tool_call_id`, `reasoning_content` and a row-level `tools` (formats/tools.py);
a row-level `system` text is read too (sharegpt.with_row_system)."""

from __future__ import annotations

from instruct_data.formats.sharegpt import finish, message_turns, with_row_system

NAME = "messages"
SIGNATURE = {"messages"}


def to_conversation(data, *, row_id, source, origin):
    turns, system, tools_needed = message_turns(data.get("messages"), role_key="role", text_key="content",
                                                container="messages")
    # A row-level system text too, as sharegpt rows carry it.
    return finish(data, turns, with_row_system(data, system), tools_needed, row_id=row_id, source=source,
                  origin=origin)
