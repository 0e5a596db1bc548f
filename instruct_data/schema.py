"""The canonical record (Conversation) and the training record (context/target).

Every input format is read *into* a Conversation; every output is rendered *from* one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Role = Literal["user", "assistant"]


class Origin(BaseModel):
    """Where a row came from: a file and line (or row), or a hub dataset, revision and row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = None
    line: int | None = None  # 1-based line in a text file, or 1-based row in a table
    dataset: str | None = None
    revision: str | None = None
    row: int | None = None  # 1-based row of a table or hub dataset, or index of a JSON array item
    instance: int | None = None  # the n-th row of a record that holds several (rowpath.register_expander)
    sheet: str | None = None  # the sheet of a workbook with several (then `row` counts within it)

    def as_dict(self) -> dict:
        """The origin as Conversation.model_dump_json(exclude_none=True) writes it."""
        return {key: value for key in ("file", "line", "dataset", "revision", "row", "instance", "sheet")
                if (value := getattr(self, key)) is not None}

    def __str__(self) -> str:
        return self._place() + (f"#{self.instance}" if self.instance is not None else "")

    def _place(self) -> str:
        if self.dataset:
            rev = f"@{self.revision}" if self.revision else ""
            return f"{self.dataset}{rev}:row {self.row}"
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.row is not None:
            # A table row (header not counted) or an item of a JSON array without line numbers.
            sheet = f"[{self.sheet}]" if self.sheet is not None else ""
            return f"{self.file}{sheet}:row {self.row}"
        return str(self.file)


class Turn(BaseModel):
    """One message. A user turn may carry a separate `input` (alpaca's second field)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    input: str | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text

    @model_validator(mode="after")
    def _input_only_on_user(self) -> "Turn":
        if self.input is not None and self.role != "user":
            raise ValueError("only a user turn can have an input")
        if self.input is not None and not self.input.strip():
            self.input = None
        return self

    @property
    def full_text(self) -> str:
        """The text with its input joined on, for templates and keys with no separate input slot."""
        return f"{self.text}\n{self.input}" if self.input else self.text


class Conversation(BaseModel):
    """Alternating user/assistant turns, starting with user and ending with assistant."""

    model_config = ConfigDict(extra="forbid")

    id: str  # `source:position` (rowpath.position_id): unique, whatever the rows hold
    own_id: str | None = None  # the row's own `id` field, kept, never used as its id (it can repeat)
    source: str
    system: str | None = None
    turns: list[Turn] = Field(min_length=2)
    category: str | None = None
    origin: Origin = Field(default_factory=Origin)
    # True when the first user turn is an already-rendered context (a context/target file read
    # back): templates then pass it through instead of wrapping it a second time.
    rendered: bool = False

    # Field validators (not one model validator) so an error names its field: `turns: ...`.
    @field_validator("turns")
    @classmethod
    def _alternating(cls, turns: list[Turn]) -> list[Turn]:
        for index, turn in enumerate(turns):
            expected = "user" if index % 2 == 0 else "assistant"
            if turn.role != expected:
                raise ValueError(
                    f"turn {index + 1} is {turn.role}, expected {expected} (turns must alternate user/assistant)"
                )
        if turns and turns[-1].role != "assistant":
            raise ValueError("the last turn must be an assistant reply")
        return turns

    @field_validator("system")
    @classmethod
    def _blank_system_is_none(cls, system: str | None) -> str | None:
        return system if system is not None and system.strip() else None

    @property
    def prompt(self) -> Turn:
        """The last user turn: the question the final reply answers."""
        return self.turns[-2]

    @property
    def reply(self) -> str:
        return self.turns[-1].text

    @property
    def history(self) -> list[tuple[str, str]]:
        """Earlier (user, assistant) rounds, oldest first."""
        pairs = self.turns[:-2]
        return [(pairs[i].full_text, pairs[i + 1].text) for i in range(0, len(pairs), 2)]

    @property
    def n_rounds(self) -> int:
        return len(self.turns) // 2


class TrainingRecord(BaseModel):
    """One line of train.jsonl: the seed format plus bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    context: str
    target: str
    id: str | None = None
    source: str | None = None
    category: str | None = None

    @field_validator("context", "target")
    @classmethod
    def _not_blank(cls, text: str, info) -> str:
        if not text.strip():
            raise ValueError(f"{info.field_name} is empty")
        return text


def describe_validation_error(error: ValidationError) -> str:
    """One readable line per problem: `turns.2.text: text is empty`."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "record"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
