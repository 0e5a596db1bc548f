"""Belle's `Human:…\\nAssistant:…` transcripts, parsed into alternating turns.

A speaker marker counts only at the start of a line (after optional spaces), so prose that
mentions "Human:" in the middle of a sentence stays part of the turn. Half- and full-width
colons, and a space or none after them, are all accepted; each turn's text is stripped.

The choice for a line *inside* a turn that starts with "Human:" or "Assistant:" (a reply
quoting a dialogue): it is read as a marker. Belle writes its own markers exactly that way,
so nothing in the text tells a quote from a real turn. When the quote breaks the alternation
(the usual case: a quoted `Human:` line followed by the real `Human:` turn) the row is a
reject, never a mangled sample; a quote that happens to alternate cleanly cannot be told
apart and is split as turns.

A transcript that cannot be read as alternating turns raises TranscriptError: text before
the first marker, two turns of the same speaker in a row, an empty turn before the last.
"""

from __future__ import annotations

import re

SPEAKERS = {"human": "user", "user": "user", "assistant": "assistant"}
# `^` with MULTILINE: a line start. (Twice as fast as matching `(?:^|\n)` by hand.)
MARKER = re.compile(r"^[ \t]*(Human|Assistant)[ \t]*[:：][ \t]?", re.IGNORECASE | re.MULTILINE)
STARTS_WITH_HUMAN = re.compile(r"\s*Human[ \t]*[:：]", re.IGNORECASE)
HUMAN_LINE = re.compile(r"\n[ \t]*Human[ \t]*[:：]", re.IGNORECASE)
ENDS_WITH_ASSISTANT = re.compile(r"\n[ \t]*Assistant[ \t]*[:：]\s*$", re.IGNORECASE)


class TranscriptError(ValueError):
    """The transcript does not parse into alternating user/assistant turns."""


def looks_like_transcript(text: str) -> bool:
    """A transcript starts with `Human:`, or has a line-start `Human:` and ends with a bare
    `Assistant:` (Belle's shape with stray text in front, which parsing then rejects)."""
    if STARTS_WITH_HUMAN.match(text):
        return True
    return bool(ENDS_WITH_ASSISTANT.search(text) and HUMAN_LINE.search(text))


def parse_transcript(text: str) -> list[tuple[str, str]]:
    """[(role, text), ...] in order. The last turn may be an empty assistant turn (Belle's
    trailing `Assistant:`, whose reply lives in `output`)."""
    # split() with the speaker captured: [text before, speaker, body, speaker, body, ...]
    pieces = MARKER.split(text)
    if len(pieces) == 1:
        raise TranscriptError("no 'Human:' or 'Assistant:' marker")
    if pieces[0].strip():
        raise TranscriptError("text before the first 'Human:' marker")
    roles = [SPEAKERS[speaker.lower()] for speaker in pieces[1::2]]
    bodies = [body.strip() for body in pieces[2::2]]
    if "assistant" in roles[0::2] or "user" in roles[1::2]:
        _raise_alternation(roles)
    if not all(bodies[:-1]):
        raise TranscriptError(f"turn {bodies.index('') + 1} is empty")
    return list(zip(roles, bodies))


def _raise_alternation(roles: list[str]) -> None:
    for index, role in enumerate(roles):
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected:
            speaker = "Human" if role == "user" else "Assistant"
            if index == 0:
                raise TranscriptError(f"the first turn is '{speaker}:', not 'Human:'")
            raise TranscriptError(f"turns {index} and {index + 1} are both '{speaker}:' (turns must alternate)")
