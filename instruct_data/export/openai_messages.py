"""OpenAI-style chat JSON lines: `{"messages": [...], "tools": [...]}` per conversation.

The layout TRL's SFTTrainer (conversational datasets), most serving stacks and the OpenAI
fine-tuning API read: system, user, assistant (with `tool_calls`, arguments as a JSON string)
and `tool` messages.
"""

from __future__ import annotations

from pathlib import Path

from instruct_data.export.messages import openai_row
from instruct_data.io import write_jsonl
from instruct_data.schema import Conversation


def write_openai(conversations: list[Conversation], path: Path) -> int:
    return write_jsonl(path, (openai_row(c) for c in conversations))
