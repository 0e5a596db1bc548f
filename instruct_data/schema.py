"""The canonical record (Conversation) and the training record (context/target).

Every input format is read *into* a Conversation; every output is rendered *from* one.

A dialogue with tools (docs/tools.md) uses the same record: the conversation declares its
`tools` (JSON schemas, as the data gave them), an assistant turn may carry `tool_calls`
(then its text may be empty) and a `reasoning` trace, and each call's result is a `tool`
turn. The order is user, assistant (maybe with calls), the calls' results, assistant, ...,
user, ..., ending with an assistant turn. A dialogue without tools, calls or traces is the
plain alternating user/assistant record, and serializes to the same bytes as before.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

Role = Literal["user", "assistant", "tool"]


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


class ToolCall(BaseModel):
    """One function call an assistant turn makes: the tool's name and its arguments (a JSON object)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any]
    id: str | None = None  # OpenAI's tool_call_id, which the result turn names

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("a tool call needs a name")
        return name


class Turn(BaseModel):
    """One message. A user turn may carry a separate `input` (alpaca's second field); an
    assistant turn may carry `reasoning` (a trace kept apart from the reply) and `tool_calls`
    (then its text may be empty); a tool turn is the result of a call (`name`: the tool,
    `tool_call_id`: the call's id, where the data gives them)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    text: str
    input: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    # 0: an assistant turn kept as history only, not trained (OpenAI's fine-tuning `weight`):
    # a build writes it on a reply dedupe removed from train.jsonl, so that conversations.jsonl
    # trains exactly the replies train.jsonl does. None (1) trains it.
    weight: Literal[0, 1] | None = None

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str, info: ValidationInfo) -> str:
        # An assistant turn that only calls tools has no text: checked with its calls below.
        if not text.strip() and info.data.get("role") != "assistant":
            raise ValueError("text is empty")
        return text

    @model_validator(mode="after")
    def _fields_fit_the_role(self) -> "Turn":
        if self.input is not None and self.role != "user":
            raise ValueError("only a user turn can have an input")
        if self.input is not None and not self.input.strip():
            self.input = None
        if self.role != "assistant" and (self.tool_calls is not None or self.reasoning is not None):
            raise ValueError("only an assistant turn can have tool calls or reasoning")
        if self.role != "tool" and (self.tool_call_id is not None or self.name is not None):
            raise ValueError("only a tool turn can have a tool_call_id or a name")
        if self.weight is not None and self.role != "assistant":
            raise ValueError("only an assistant turn can have a weight")
        if self.tool_calls is not None and not self.tool_calls:
            self.tool_calls = None
        if self.reasoning is not None and not self.reasoning.strip():
            self.reasoning = None
        if self.role == "assistant" and not self.text.strip() and not self.tool_calls:
            raise ValueError("text is empty (an assistant turn needs text or tool calls)")
        return self

    @property
    def full_text(self) -> str:
        """The text with its input joined on, for templates and keys with no separate input slot."""
        return f"{self.text}\n{self.input}" if self.input else self.text


NO_TRAINED_REPLY = "no_trained_reply"  # the reject of a row whose every reply is at weight 0


def is_trained(turn) -> bool:
    """A reply of weight 0 (Turn.weight) is history only; any other is trained."""
    return getattr(turn, "weight", None) != 0


def record_replies(turns, every_turn: bool = True) -> list[int]:
    """Which replies give train records, as positions among the assistant turns (0 is the first
    reply): each reply not at weight 0 in every-turn mode, the last of them in last-turn mode.
    A reply at weight 0 (OpenAI's fine-tuning `weight`, or one a build marked: pipeline.dialogue)
    is history only. Empty when every reply is at weight 0 (the readers reject such a row)."""
    trained = [k for k, turn in enumerate(t for t in turns if t.role == "assistant") if is_trained(turn)]
    return trained if every_turn else trained[-1:]


def tool_function(tool: dict) -> dict:
    """The function schema of a declared tool, in either layout data uses: OpenAI's
    `{"type": "function", "function": {"name", "parameters", ...}}` or the bare
    `{"name", "description", "parameters"}` (glaive, LLaMA-Factory)."""
    inner = tool.get("function")
    return inner if isinstance(inner, dict) else tool


def calls_json(calls: list[ToolCall] | None) -> str:
    """Calls as one canonical JSON text (keys sorted, ids left out): what dedupe keys and scores
    compare. Not a template's format: templates render calls their own way."""
    if not calls:
        return ""
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], ensure_ascii=False, sort_keys=True)


def tool_name(tool: dict) -> str | None:
    name = tool_function(tool).get("name")
    return name if isinstance(name, str) and name.strip() else None


def role_order_problem(turns: list) -> str | None:
    """Why these turns are not in legal order, or None. Legal: user, assistant (maybe with
    calls), the results of its calls (tool turns), assistant, ..., ending with an assistant
    turn. A tool turn follows an assistant turn that calls tools, or another tool turn."""
    previous = None
    for index, turn in enumerate(turns, start=1):
        role = turn.role
        if previous is None:
            ok = role == "user"
            expected = "user"
        elif previous.role == "user":
            ok, expected = role == "assistant", "assistant"
        elif previous.role == "tool":
            ok, expected = role in ("tool", "assistant"), "tool or assistant"
        elif previous.tool_calls:
            ok, expected = role in ("tool", "user"), "tool or user"
        else:
            ok, expected = role == "user", "user"
        if not ok:
            if role == "tool" or (index == 1 and role == "assistant"):
                return f"turn {index} is {role}, expected {expected}"
            return f"turn {index} is {role}, expected {expected} (turns must alternate user/assistant)"
        previous = turn
    if turns and turns[-1].role != "assistant":
        return "the last turn must be an assistant reply"
    return None


class Conversation(BaseModel):
    """User and assistant turns, starting with user and ending with assistant; in a dialogue
    with tools, the results of an assistant turn's calls (tool turns) follow it."""

    model_config = ConfigDict(extra="forbid")

    id: str  # `source:position` (rowpath.position_id): unique, whatever the rows hold
    own_id: str | None = None  # the row's own `id` field, kept, never used as its id (it can repeat)
    source: str
    system: str | None = None
    tools: list[dict[str, Any]] | None = None  # the tools the dialogue declares (JSON schemas)
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
        problem = role_order_problem(turns)
        if problem:
            raise ValueError(problem)
        return turns

    @field_validator("tools")
    @classmethod
    def _named_tools(cls, tools: list[dict] | None) -> list[dict] | None:
        if tools is None:
            return None
        for index, tool in enumerate(tools, start=1):
            if tool_name(tool) is None:
                raise ValueError(f"tool {index} has no name")
        return tools or None

    @field_validator("system")
    @classmethod
    def _blank_system_is_none(cls, system: str | None) -> str | None:
        return system if system is not None and system.strip() else None

    @property
    def prompt(self) -> Turn:
        """The last user turn: the question the final reply answers."""
        if self.turns[-2].role == "user":
            return self.turns[-2]
        return next(turn for turn in reversed(self.turns) if turn.role == "user")

    @property
    def reply(self) -> str:
        """The last turn's text ('' when the dialogue ends on a call: see `tool_calls`)."""
        return self.turns[-1].text

    @property
    def has_tools(self) -> bool:
        """True when the dialogue declares tools, calls one, or holds a reasoning trace: then
        `turns` (not `history`) is what a renderer must read."""
        return self.tools is not None or any(
            turn.role == "tool" or turn.tool_calls or turn.reasoning is not None for turn in self.turns)

    @property
    def rounds(self) -> list[list[Turn]]:
        """The turns cut at each user turn: [user, assistant, (tool, assistant)...] per round."""
        found: list[list[Turn]] = []
        for turn in self.turns:
            if turn.role == "user":
                found.append([turn])
            else:
                found[-1].append(turn)
        return found

    @property
    def history(self) -> list[tuple[str, str]]:
        """Earlier (user, assistant) rounds, oldest first. In a dialogue with tools, a round's
        reply is its last assistant text; its calls and results are only in `turns`."""
        if not self.has_tools:
            pairs = self.turns[:-2]
            return [(pairs[i].full_text, pairs[i + 1].text) for i in range(0, len(pairs), 2)]
        return [(r[0].full_text, next((t.text for t in reversed(r) if t.role == "assistant" and t.text.strip()), ""))
                for r in self.rounds[:-1]]

    @property
    def n_rounds(self) -> int:
        """The number of user turns (each opens a round)."""
        return sum(1 for turn in self.turns if turn.role == "user")

    @property
    def n_replies(self) -> int:
        """The number of assistant turns: the records a dialogue gives in every-turn mode (a call
        is a reply too). n_rounds, unless the dialogue calls tools."""
        return sum(1 for turn in self.turns if turn.role == "assistant")


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
