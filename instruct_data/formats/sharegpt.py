"""sharegpt and Belle's train_3.5M_CN: `conversations: [{"from": ..., "value": ...}]`.

Roles: human/user → user; gpt/assistant/bot/chatgpt → assistant; system (first only) →
system text. Tool dialogues (function_call/observation messages, `tools`, OpenAI tool calls,
Hermes `<tool_call>` blocks, `<think>` traces) are read by formats/tools.py: see there.
"""

from __future__ import annotations

import json
import math

from instruct_data.formats import tools as tool_reader
from instruct_data.formats.base import (BAD_ROLES, MISSING_FIELD, WRONG_TYPE, RowReject, build, category_of,
                                        text_field)

NAME = "sharegpt"
SIGNATURE = {"conversations"}
ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
              "bot": "assistant", "chatgpt": "assistant", "system": "system"}
# What in an assistant's or user's text needs the tool reader (a trace, a call, a result).
TOOL_MARKS = ("<think>", "<tool_call>", "<tool_response>")


def message_turns(messages, *, role_key: str, text_key: str, container: str):
    """([turn dicts], system text, whether the tool reader is needed) from a list of messages.

    Each turn is {"role", "text", "where"} plus, for a tool dialogue, its calls, trace or
    result fields (formats/tools.py)."""
    if isinstance(messages, str) and messages.strip().startswith("["):
        try:  # a spreadsheet cell holding the list as JSON
            messages = json.loads(messages)
        except json.JSONDecodeError as exc:
            raise RowReject(WRONG_TYPE, f"'{container}' holds invalid JSON: {exc.msg}") from None
    if not isinstance(messages, list) or not messages:
        raise RowReject(WRONG_TYPE, f"'{container}' should be a non-empty list")
    system, turns, tools_needed = None, [], False
    for index, message in enumerate(messages, start=1):
        where = f"{container}[{index}]"
        if not isinstance(message, dict):
            raise RowReject(WRONG_TYPE, f"{where} should be an object")
        raw_role = str(message.get(role_key, "")).strip().lower()
        if (weight := _weight(message)) is not None:
            _check_weight(weight, raw_role, where)
        if tool_reader.is_tool_message(raw_role, message):
            tools_needed = True
            turns += with_weight(tool_turns(message, raw_role, text_key, where), message)
            continue
        role = ROLE_NAMES.get(raw_role)
        if role is None:
            raise RowReject(BAD_ROLES, f"{where} has unknown role '{raw_role}'")
        text = message_text(message, text_key, where)
        if role == "system":
            if turns or system is not None:
                raise RowReject(BAD_ROLES, f"{where}: a system message after the dialogue began")
            system = text
            continue
        if role == "assistant" and any(mark in text for mark in TOOL_MARKS):
            tools_needed = True
            turns += with_weight([tool_reader.assistant_parts(message, text, where)], message)
            continue
        tools_needed = tools_needed or "<tool_response>" in text
        turns += with_weight([{"role": role, "text": text, "where": where}], message)
    return turns, system, tools_needed


def _check_weight(weight, raw_role: str, where: str) -> None:
    """A message's `weight` (OpenAI's fine-tuning format: 0 keeps an assistant message as
    history only, not trained), checked: 0 or 1, on an assistant message."""
    if type(weight) not in (int, float) or weight not in (0, 1):
        raise RowReject(WRONG_TYPE, f"{where}.weight should be 0 or 1, not {json.dumps(weight, ensure_ascii=False)}")
    if ROLE_NAMES.get(raw_role) != "assistant" and raw_role not in tool_reader.CALL_ROLES:
        raise RowReject(WRONG_TYPE, f"{where}.weight: only an assistant message has a weight (its role is "
                                    f"'{raw_role}')")


def _weight(message: dict):
    """A message's `weight`, None when it has none: a table's column (parquet, a Hugging Face
    dataset, idata's own export) gives every message the field, null (or NaN) where unset."""
    weight = message.get("weight")
    return None if weight is None or (type(weight) is float and math.isnan(weight)) else weight


def with_weight(turns: list[dict], message: dict) -> list[dict]:
    """The turns of one message, its weight 0 on its assistant turns (1, the default, is not written)."""
    if _weight(message) == 0:
        for turn in turns:
            if turn["role"] == "assistant":
                turn["weight"] = 0
    return turns


def tool_turns(message: dict, raw_role: str, text_key: str, where: str) -> list[dict]:
    """The turns of a message that calls a tool, answers a call, or holds a reasoning trace."""
    if raw_role in tool_reader.CALL_ROLES:  # ShareGPT: the value is the call's JSON (or the call itself)
        value = message.get(text_key)
        if isinstance(value, (dict, list)):
            items = value if isinstance(value, list) else [value]
            text, calls = "", [tool_reader.parse_call(item, where) for item in items]
        else:
            text, calls = tool_reader.split_call_value(message_text(message, text_key, where), where)
        return [{"role": "assistant", "text": text, "tool_calls": calls, "where": where}]
    calls_only = raw_role not in tool_reader.RESULT_ROLES and text_key not in message
    text = "" if calls_only else message_text(message, text_key, where)  # an OpenAI call may leave content out
    if raw_role in tool_reader.RESULT_ROLES:
        return tool_reader.result_turns(message, text, where)
    if ROLE_NAMES.get(raw_role) != "assistant":
        raise RowReject(BAD_ROLES, f"{where} has role '{raw_role}', but only an assistant turn can call tools "
                                   "or carry reasoning")
    return [tool_reader.assistant_parts(message, text, where)]


def finish(data: dict, turns: list[dict], system: str | None, tools_needed: bool, *, row_id, source, origin):
    """The Conversation: the plain way when nothing in the row is about tools, else the tool reader's."""
    tools = tool_reader.parse_tools(data.get("tools"), "tools")
    if tools is None and data.get("functions"):  # OpenAI's legacy name
        tools = tool_reader.parse_tools(data.get("functions"), "functions")
    if not tools_needed and tools is None:
        return build(row_id=row_id, source=source, origin=origin, turns=[(t["role"], t["text"]) for t in turns],
                     system=system, category=category_of(data), weights=[t.get("weight") for t in turns])
    return tool_reader.build_tool_dialogue(row_id=row_id, source=source, origin=origin, turns=turns, system=system,
                                           tools=tools, category=category_of(data))


def message_text(message: dict, key: str, where: str) -> str:
    """A message's text; OpenAI content parts ([{"type": "text", "text": ...}]) are joined."""
    content = message.get(key)
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RowReject(WRONG_TYPE, f"{where}.{key} has a '{kind}' part; only text can be held")
            texts.append(part["text"])
        return "".join(texts)
    if key not in message:
        raise RowReject(MISSING_FIELD, f"{where} has no '{key}' field")
    try:
        return text_field(message, key)
    except RowReject as exc:
        raise RowReject(exc.reason, f"{where}: {exc.detail}") from None


def to_conversation(data, *, row_id, source, origin):
    turns, system, tools_needed = message_turns(data.get("conversations"), role_key="from", text_key="value",
                                                container="conversations")
    return finish(data, turns, with_row_system(data, system), tools_needed, row_id=row_id, source=source,
                  origin=origin)


def with_row_system(data: dict, system: str | None) -> str | None:
    """The dialogue's system text: its system message's, or the row's own `system` field (the
    same text in both is read once; two different texts are a bad_roles reject, not a guess)."""
    if "system" not in data:
        return system
    row_system = text_field(data, "system", required=False) or None
    if row_system and system is not None and row_system.strip() != system.strip():
        raise RowReject(BAD_ROLES, "two system texts, in 'system' and in a system message: keep one")
    return system or row_system
