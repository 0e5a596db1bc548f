"""A Conversation as the plain rows other tools read: OpenAI messages, alpaca, ShareGPT.

No template is applied: the texts are the record's own. A user turn's `input` (alpaca's second
field) is joined to its text with a newline where a format has no slot for it, as the
templates do. Tool calls keep their arguments as JSON objects in OpenAI messages and as the JSON
text LLaMA-Factory's `function_call` turns hold.
"""

from __future__ import annotations

import json
from typing import Any

from instruct_data.schema import Conversation, Turn, tool_function


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- OpenAI messages


def openai_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """The conversation as OpenAI chat messages (system first; `tool_calls` with JSON-string
    arguments and ids; `tool` results naming their call; `reasoning_content` for traces)."""
    messages: list[dict[str, Any]] = []
    if conversation.system:
        messages.append({"role": "system", "content": conversation.system})
    call_ids: list[str] = []  # ids of the calls still waiting for their result, in order
    for number, turn in enumerate(conversation.turns):
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.full_text})
        elif turn.role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": turn.text}
            if turn.weight is not None:
                message["weight"] = turn.weight  # 0: history only, not trained (OpenAI's fine-tuning field)
            if turn.reasoning:
                message["reasoning_content"] = turn.reasoning
            if turn.tool_calls:
                call_ids = [call.id or f"call_{number}_{k}" for k, call in enumerate(turn.tool_calls)]
                message["tool_calls"] = [
                    {"id": call_id, "type": "function",
                     "function": {"name": call.name, "arguments": _dumps(call.arguments)}}
                    for call_id, call in zip(call_ids, turn.tool_calls)]
            messages.append(message)
        else:
            call_id = turn.tool_call_id or (call_ids.pop(0) if call_ids else None)
            message = {"role": "tool", "content": turn.text}
            if call_id:
                message["tool_call_id"] = call_id
            if turn.name:
                message["name"] = turn.name
            messages.append(message)
    return messages


def openai_tools(conversation: Conversation) -> list[dict[str, Any]] | None:
    """The declared tools in OpenAI's layout: {"type": "function", "function": schema}."""
    if not conversation.tools:
        return None
    return [{"type": "function", "function": tool_function(tool)} for tool in conversation.tools]


def openai_row(conversation: Conversation) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": openai_messages(conversation)}
    tools = openai_tools(conversation)
    if tools:
        row["tools"] = tools
    return row


# ---------------------------------------------------------------- LLaMA-Factory


def is_single_turn(conversation: Conversation) -> bool:
    """One question and its reply, no tools: what alpaca holds."""
    return len(conversation.turns) == 2 and not conversation.has_tools


def alpaca_row(conversation: Conversation) -> dict[str, Any]:
    question, reply = conversation.turns
    # Every column dataset_info.json declares is in every row: LLaMA-Factory's converter reads
    # each declared column by name (a missing one is a KeyError there); "" means none.
    return {"instruction": question.text, "input": question.input or "", "output": reply.text,
            "system": conversation.system or ""}


SHAREGPT_TAGS = {"user": "human", "assistant": "gpt", "tool": "observation", "call": "function_call"}


def sharegpt_row(conversation: Conversation) -> tuple[dict[str, Any], int]:
    """The conversation as LLaMA-Factory's sharegpt row, and how many assistant turns held text
    beside a call. LLaMA-Factory's `function_call` turn holds only the call's JSON, plus a
    leading `<think>…</think>` block that its FunctionFormatter keeps in front of the call for
    every template (LLaMA-Factory 0.9.5, data/formatter.py): the text (and a trace) goes there
    rather than being lost, and is counted."""
    turns: list[dict[str, str]] = []
    with_text = 0
    for turn in conversation.turns:
        if turn.role == "assistant" and turn.tool_calls:
            calls = [{"name": call.name, "arguments": call.arguments} for call in turn.tool_calls]
            value = _dumps(calls[0] if len(calls) == 1 else calls)
            preamble = "\n\n".join(part.strip() for part in (turn.reasoning or "", turn.text) if part.strip())
            if preamble:
                with_text += bool(turn.text.strip())
                value = f"<think>\n{preamble}\n</think>\n\n{value}"
            turns.append({"from": SHAREGPT_TAGS["call"], "value": value})
        elif turn.role == "tool" and turns and turns[-1]["from"] == "observation":
            turns[-1]["value"] += "\n" + turn.text  # several results of one call turn: one observation
        else:
            text = turn.full_text if turn.role == "user" else _with_reasoning(turn)
            turns.append({"from": SHAREGPT_TAGS[turn.role], "value": text})
    tools = _dumps([tool_function(tool) for tool in conversation.tools]) if conversation.tools else ""
    return {"conversations": turns, "system": conversation.system or "", "tools": tools}, with_text


def _with_reasoning(turn: Turn) -> str:
    """A reply with its trace as LLaMA-Factory's reasoning templates read it: <think>…</think> first."""
    return f"<think>\n{turn.reasoning}\n</think>\n\n{turn.text}" if turn.reasoning else turn.text
