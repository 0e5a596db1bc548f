"""The row path's fast path for plain dialogues (rowpath.conversation_of), without pydantic.

Beside plain single-turn rows (formats/plainrow.py), the commonest rows of Belle's releases and of
self-collected sets are dialogues without tools:

- an alpaca row with `history` ([[question, answer], ...]) before its `instruction`/`output`;
- a Belle transcript: `instruction` holds `Human:…\\nAssistant:…` rounds ending with a bare
  `Assistant:`, and the reply is `output` (formats/belle.py, formats/transcript.py).

For such a row whose every field is text and whose every turn is non-blank, every check
formats.parse_row makes passes, so the row path checks these conditions itself and gives a
`PlainDialogue`: schema.Conversation's fields, unvalidated, the same properties the cleaner, the
templates, multi-turn expansion and dedupe's texts read, and the same JSON bytes as
`Conversation.model_dump_json(exclude_none=True)`. Any row it is not sure of (a number, a None or
a blank text, a system text, a transcript that does not parse, an unknown key) returns None and
goes through formats.parse_row, which also gives the reject reasons.
tests/test_dialogue_fastpath.py (hostile dialogues) and tests/test_rowpath.py (generated rows)
check both paths agree.
"""

from __future__ import annotations

from typing import Any

from instruct_data.formats.base import category_of, own_id
from instruct_data.formats.plainrow import PLAIN_KEYS, PlainRecord, PlainTurn
from instruct_data.formats.transcript import TranscriptError, looks_like_transcript, parse_transcript
from instruct_data.schema import Conversation, Origin

HISTORY_KEYS = PLAIN_KEYS | {"history"}


class PlainDialogue(PlainRecord):
    """A dialogue of alternating user/assistant turns (no tools, no system text) known to be valid."""

    __slots__ = ()
    tools = None
    has_tools = False

    @property
    def history(self) -> list[tuple[str, str]]:
        """schema.Conversation.history: the earlier (question, reply) rounds, oldest first."""
        turns = self.turns
        return [(turns[i].full_text, turns[i + 1].text) for i in range(0, len(turns) - 2, 2)]

    @property
    def rounds(self) -> list[list[PlainTurn]]:
        turns = self.turns
        return [[turns[i], turns[i + 1]] for i in range(0, len(turns), 2)]

    @property
    def n_replies(self) -> int:
        return len(self.turns) // 2

    def as_conversation(self) -> Conversation:
        """The validated schema.Conversation of the same fields (for the rare callers that edit
        turns with pydantic's model_copy)."""
        conversation = Conversation.model_validate({
            "id": self.id, "source": self.source, "system": self.system,
            "turns": [{"role": t.role, "text": t.text, "input": t.input} for t in self.turns],
            "category": self.category, "origin": self.origin, "rendered": self.rendered})
        conversation.own_id = self.own_id
        return conversation


def plain_dialogue(data: dict[str, Any], fmt: str, source: str, origin: Origin, row_id: str) -> PlainDialogue | None:
    """The dialogue of a plain valid alpaca-with-history row or Belle transcript, or None: then
    use formats.parse_row. Called only by rowpath.conversation_of, for rows without a --map,
    after formats.plainrow.plain_conversation declined the row."""
    if fmt not in ("alpaca", "belle"):
        return None
    instruction, output, extra = data.get("instruction"), data.get("output"), data.get("input")
    if type(instruction) is not str or type(output) is not str or not output.strip():
        return None
    if extra is not None and type(extra) is not str:
        return None
    if "history" in data:
        if not HISTORY_KEYS.issuperset(data):
            return None
        turns = _history_turns(data["history"], instruction, extra)
    elif PLAIN_KEYS.issuperset(data) and looks_like_transcript(instruction):
        if extra and extra.strip():  # belle rejects a transcript with an input
            return None
        turns = _transcript_turns(instruction, output)
    else:
        return None
    if turns is None:
        return None
    turns.append(PlainTurn("assistant", output))
    return PlainDialogue(row_id, own_id(data), source, turns, category_of(data), origin)


def _history_turns(history: Any, instruction: str, extra: str | None) -> list[PlainTurn] | None:
    """formats.alpaca's turns before the reply, for a history of text pairs; else None."""
    if type(history) is not list or not instruction.strip() or looks_like_transcript(instruction):
        # (a transcript in `instruction` is read as one by parse_row, which ignores `history`)
        return None
    turns = []
    for pair in history:
        if type(pair) is not list or len(pair) != 2:
            return None
        question, answer = pair
        if type(question) is not str or type(answer) is not str or not question.strip() or not answer.strip():
            return None
        turns += (PlainTurn("user", question), PlainTurn("assistant", answer))
    turns.append(PlainTurn("user", instruction, extra if extra and extra.strip() else None))
    return turns


def _transcript_turns(instruction: str, output: str) -> list[PlainTurn] | None:
    """formats.belle's turns before the reply (`output`), for a transcript that parses into
    non-blank alternating turns ending with a bare `Assistant:` or a user turn; else None."""
    try:
        parsed = parse_transcript(instruction)
    except TranscriptError:
        return None
    if parsed[-1][0] == "assistant":
        if parsed[-1][1]:  # a reply in the transcript and another in output: a reject
            return None
        parsed.pop()
    # parse_transcript gives alternating roles starting with a user turn, its texts stripped
    # and non-empty but (maybe) the last; the last kept one here is a user turn.
    if not parsed[-1][1]:
        return None
    return [PlainTurn(role, text) for role, text in parsed]
