"""The texts a person reads in the view: a row or record as lines of `role: text`, and the
character differences between two texts."""

from __future__ import annotations

import difflib
import json
from typing import Any

MAX_CHARS = 1500  # per text shown; the files hold the rest
ROLE_NAMES = {"user": "用户", "assistant": "助手", "tool": "工具", "system": "系统"}


def clip(text: str, limit: int = MAX_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f" …（还有 {len(text) - limit} 字）"


def conversation_text(conversation: dict[str, Any], rounds: int | None = None) -> str:
    """A canonical record as `role: text` lines; `rounds`: only its first N user turns' rounds."""
    lines = [f"{ROLE_NAMES['system']}: {conversation['system']}"] if conversation.get("system") else []
    seen = 0
    for turn in conversation.get("turns") or []:
        if turn.get("role") == "user":
            seen += 1
            if rounds is not None and seen > rounds:
                break
        text = turn.get("text") or ""
        if turn.get("input"):
            text += "\n" + turn["input"]
        for call in turn.get("tool_calls") or []:
            text += f"\n→ {call.get('name')}({json.dumps(call.get('arguments'), ensure_ascii=False)})"
        lines.append(f"{ROLE_NAMES.get(turn.get('role'), turn.get('role'))}: {text}")
    return clip("\n".join(lines))


def row_text(raw: Any) -> str:
    """A raw input row as read: a canonical record's turns, a context/target pair, or its fields."""
    if isinstance(raw, dict) and isinstance(raw.get("turns"), list):
        return conversation_text(raw)
    if isinstance(raw, dict) and "context" in raw and "target" in raw:
        return clip(f"{raw['context']}{raw['target']}")
    if isinstance(raw, dict):
        return clip("\n".join(f"{key}: {_plain(value)}" for key, value in raw.items() if value not in (None, "", [])))
    return clip(_plain(raw))


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def differences(left: str, right: str) -> tuple[list[list], list[list]]:
    """Each text as [[same, piece], ...]: same=1 where the other text has the piece too."""
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    a: list[list] = []
    b: list[list] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        same = int(op == "equal")
        if i2 > i1:
            a.append([same, left[i1:i2]])
        if j2 > j1:
            b.append([same, right[j1:j2]])
    return a, b
