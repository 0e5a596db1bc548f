"""sharegpt and Belle's train_3.5M_CN: `conversations: [{"from": ..., "value": ...}]`.

Roles: human/user → user; gpt/assistant/bot/chatgpt → assistant; system (first only) →
system text. Tool and function roles cannot be held and are rejects.
"""

from __future__ import annotations

import json

from instruct_data.formats.base import (BAD_ROLES, MISSING_FIELD, TOOL_ROLES, UNSUPPORTED_ROLE, WRONG_TYPE, RowReject,
                                        build, category_of, text_field)

NAME = "sharegpt"
SIGNATURE = {"conversations"}
ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
              "bot": "assistant", "chatgpt": "assistant", "system": "system"}


def message_turns(messages, *, role_key: str, text_key: str, container: str):
    """[(role, text)] and the system text from a list of message objects."""
    if isinstance(messages, str) and messages.strip().startswith("["):
        try:  # a spreadsheet cell holding the list as JSON
            messages = json.loads(messages)
        except json.JSONDecodeError as exc:
            raise RowReject(WRONG_TYPE, f"'{container}' holds invalid JSON: {exc.msg}") from None
    if not isinstance(messages, list) or not messages:
        raise RowReject(WRONG_TYPE, f"'{container}' should be a non-empty list")
    system, turns = None, []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise RowReject(WRONG_TYPE, f"{container}[{index}] should be an object")
        raw_role = str(message.get(role_key, "")).strip().lower()
        if raw_role in TOOL_ROLES:
            raise RowReject(UNSUPPORTED_ROLE, f"{container}[{index}] has role '{raw_role}', which a user/assistant conversation cannot hold")
        if message.get("tool_calls") or message.get("function_call"):
            raise RowReject(UNSUPPORTED_ROLE, f"{container}[{index}] is a function call, which a user/assistant "
                                              "conversation cannot hold")
        role = ROLE_NAMES.get(raw_role)
        if role is None:
            raise RowReject(BAD_ROLES, f"{container}[{index}] has unknown role '{raw_role}'")
        text = message_text(message, text_key, f"{container}[{index}]")
        if role == "system":
            if turns or system is not None:
                raise RowReject(BAD_ROLES, f"{container}[{index}]: a system message after the dialogue began")
            system = text
            continue
        turns.append((role, text))
    return turns, system


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
    turns, system = message_turns(data.get("conversations"), role_key="from", text_key="value",
                                  container="conversations")
    if "system" in data and system is None:
        system = text_field(data, "system", required=False) or None
    return build(row_id=row_id, source=source, origin=origin, turns=turns, system=system, category=category_of(data))
