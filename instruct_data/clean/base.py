"""What every cleaning rule shares (in the style of datatrove's filters).

A **normalizer** changes text: `normalize(text) -> text`. It is applied to every turn (and
its input) and to the system text; the row counts as changed by it when any text changed.

A **filter** decides: `filter(conversation) -> None` (keep) or `Drop(reason, detail)`.
A dropped row goes to rejects.jsonl with stage `clean` and the reason code.

The base classes count what each rule did, so the rules stay tiny and the accounting lives
in one place. Each rule has a pydantic `Settings` model (its recipe block, `enabled` plus its
parameters); `true`/`false` in a recipe is short for `{enabled: ...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, model_validator

from instruct_data.schema import Conversation


class RuleSettings(BaseModel):
    """A rule's recipe block. `true`/`false` stands for `{enabled: true/false}`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _bool_shorthand(cls, value):
        if isinstance(value, bool):
            return {"enabled": value}
        return value


class Drop(NamedTuple):
    """A filter's verdict on a row it drops: a stable reason code and a readable detail.

    `turn` names the assistant turn (1-based) a per-turn rule judged bad in a dialogue: the
    Cleaner may then cut the dialogue before it instead of dropping it (`on_bad_turn`)."""

    reason: str
    detail: str
    turn: int | None = None


KEEP = None

# Fenced (```...```) and inline (`...`) code: whitespace and language rules leave it alone.
CODE_SPAN = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)


def split_code(text: str) -> Iterator[tuple[str, bool]]:
    """(piece, is_code) pieces of the text, in order."""
    position = 0
    for match in CODE_SPAN.finditer(text):
        if match.start() > position:
            yield text[position:match.start()], False
        yield match.group(0), True
        position = match.end()
    if position < len(text):
        yield text[position:], False


def without_code(text: str) -> str:
    if "`" not in text:
        return text
    return "".join(piece for piece, is_code in split_code(text) if not is_code)


def user_texts(conversation: Conversation) -> list[str]:
    """Every user turn as one text each (an alpaca `input` joined on)."""
    turns = conversation.turns
    if len(turns) == 2:  # single-turn, the usual case: turns alternate from user
        return [turns[0].full_text]
    return [turn.full_text for turn in turns if turn.role == "user"]


def reply_texts(conversation: Conversation) -> list[str]:
    turns = conversation.turns
    if len(turns) == 2:
        return [turns[1].text]
    return [turn.text for turn in turns if turn.role == "assistant"]


class Normalizer:
    """Changes text. Subclasses set `name` and `Settings` and implement `normalize`."""

    name: ClassVar[str]
    Settings: ClassVar[type[RuleSettings]] = RuleSettings
    default_enabled: ClassVar[bool] = True

    def __init__(self, settings: RuleSettings | None = None):
        self.settings = settings or self.Settings()
        self.changed = 0

    def normalize(self, text: str) -> str:
        raise NotImplementedError

    def apply(self, conversation: Conversation) -> bool:
        """Normalize every text of the conversation in place; True when something changed."""
        changed = False
        for turn in conversation.turns:
            new = self.normalize(turn.text)
            if new != turn.text:
                turn.text = new
                changed = True
            if turn.input:
                new = self.normalize(turn.input)
                if new != turn.input:
                    turn.input = new
                    changed = True
        if conversation.system:
            new = self.normalize(conversation.system)
            if new != conversation.system:
                conversation.system = new
                changed = True
        if changed:
            self.changed += 1
        return changed


class Filter:
    """Keeps or drops a row. Subclasses set `name`, `reasons` and implement `filter`."""

    name: ClassVar[str]
    reasons: ClassVar[tuple[str, ...]]  # every reason code the rule can give
    Settings: ClassVar[type[RuleSettings]] = RuleSettings
    default_enabled: ClassVar[bool] = True

    def __init__(self, settings: RuleSettings | None = None):
        self.settings = settings or self.Settings()
        self.dropped = 0
        self.changed = 0  # filters that can also edit (PII masking) count here
        self.turns_cut = 0  # rounds cut from dialogues at a turn this rule judged bad

    def filter(self, conversation: Conversation) -> Drop | None:
        raise NotImplementedError

    def apply(self, conversation: Conversation) -> Drop | None:
        verdict = self.filter(conversation)
        if verdict is not None:
            self.dropped += 1
        return verdict

    def edits_since(self, before: int) -> list[str]:
        """The change codes of the edits this rule made to the row since `changed` was `before`:
        its name, then `name.kind` for each kind of text it masked (PII's `row_masked`)."""
        if self.changed == before:
            return []
        masked = getattr(self, "row_masked", None) or {}
        return [self.name] + [f"{self.name}.{kind}" for kind, n in sorted(masked.items()) for _ in range(n)]


class TurnFilter(Filter):
    """A filter that judges each round (question, reply) on its own. In a dialogue its Drop
    names the bad assistant turn, so the Cleaner can keep the rounds before it."""

    def judge(self, question: str, reply: str) -> Drop | None:
        raise NotImplementedError

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        if len(turns) == 2:  # single-turn, the usual case: its verdict names no turn
            return self.judge(turns[0].full_text, turns[1].text)
        for index in range(0, len(turns) - 1, 2):
            verdict = self.judge(turns[index].full_text, turns[index + 1].text)
            if verdict is not None:
                return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None
