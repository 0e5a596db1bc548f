"""Belle's `Human:…\\nAssistant:…` transcripts, parsed into alternating turns.

A speaker marker counts only at the start of a line, so prose that mentions "Human:" in the
middle of a sentence stays part of the turn. Half- and full-width colons, and a space or
none after them, are all accepted.
"""

from __future__ import annotations

import re

SPEAKERS = {"human": "user", "user": "user", "assistant": "assistant"}
MARKER = re.compile(r"(?:^|\n)[ \t]*(Human|Assistant)[ \t]*[:：][ \t]?", re.IGNORECASE)


class TranscriptError(ValueError):
    """The transcript does not parse into alternating user/assistant turns."""


def looks_like_transcript(text: str) -> bool:
    return bool(re.match(r"\s*Human\s*[:：]", text, re.IGNORECASE))


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """[(role, text), ...] in order. The last turn may be an empty assistant turn (Belle's
    trailing `Assistant:`, whose reply lives in `output`)."""
    matches = list(MARKER.finditer(text))
    if not matches:
        raise TranscriptError("no 'Human:' or 'Assistant:' marker")
    if text[: matches[0].start()].strip():
        raise TranscriptError("text before the first 'Human:' marker")
    turns: list[tuple[str, str]] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        role = SPEAKERS[match.group(1).lower()]
        turns.append((role, text[match.end():end].strip()))
    for index, (role, _) in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            raise TranscriptError(f"turn {index + 1} is {role}, expected {expected}")
    for index, (_, body) in enumerate(turns[:-1]):
        if not body:
            raise TranscriptError(f"turn {index + 1} is empty")
    return turns
