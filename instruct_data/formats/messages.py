"""OpenAI messages: `messages: [{"role": "system"/"user"/"assistant"/"tool", "content": ...}]`,
with `tool_calls`, `tool_call_id`, `reasoning_content` and a row-level `tools` (formats/tools.py)."""

from __future__ import annotations

from instruct_data.formats.sharegpt import finish, message_turns

NAME = "messages"
SIGNATURE = {"messages"}


def to_conversation(data, *, row_id, source, origin):
    turns, system, tools_needed = message_turns(data.get("messages"), role_key="role", text_key="content",
                                                container="messages")
    return finish(data, turns, system, tools_needed, row_id=row_id, source=source, origin=origin)
