"""One Conversation -> training records whose context carries the earlier rounds as history.

    settings = MultiturnSettings(mode="every-turn", max_context_chars=2048)
    result = expand(conversation, "chatglm", settings)
    # -> [{"context", "target", "id", "source", "category"?}, ...], or Reject("multiturn", reason, detail)

Modes:
- `every-turn`: one record per assistant reply, each with every round before it as history
  (the ChatGLM p-tuning way). Ids are `{conversation.id}#t{k}`, k counting the records.
- `last-turn`: one record, for the final reply; its id is the conversation's id.

A reply at weight 0 (OpenAI's `weight`; schema.record_replies) gives no record: it is history
only, in the later records' contexts. In last-turn mode the record is the last reply not at
weight 0. A dialogue whose every reply is at weight 0 gives none (`no_trained_reply`).

A "history turn" is one earlier round: a question and its reply. The budget
(`max_context_chars`, or `max_context_tokens` with a tokenizer) counts the whole training
sample, rendered context plus target, because that is what has to fit the model. History is
cut by dropping the oldest whole rounds until the sample fits; a round is never cut in half
and the current question is never dropped. When the current question and its reply alone do
not fit, the conversation is rejected (`over_budget`): in every-turn mode a conversation with
any such round is rejected whole, so no record silently loses its place in the dialogue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from instruct_data.errors import InputError
from instruct_data.table import Reject
from instruct_data.schema import NO_TRAINED_REPLY, Conversation, record_replies
from instruct_data.multiturn.tools import expand_tools
from instruct_data.templates import Template, get_template, render_prompt, rounds

OVER_BUDGET = "over_budget"  # reason code, stage "multiturn"
Mode = Literal["every-turn", "last-turn"]


class MultiturnSettings(BaseModel):
    """How dialogues become records; also a recipe block (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "every-turn"
    max_history_turns: int | None = Field(default=None, ge=0)  # earlier rounds kept at most
    max_context_chars: int | None = Field(default=None, gt=0)  # context + target, in characters
    max_context_tokens: int | None = Field(default=None, gt=0)  # context + target, in tokens
    tokenizer: str | None = None  # name or path for AutoTokenizer, with max_context_tokens
    # Reasoning traces (docs/tools.md): keep them all, drop earlier rounds' as Qwen3 does at
    # inference, or drop them all.
    reasoning: Literal["keep", "drop-history", "drop"] = "keep"

    @model_validator(mode="after")
    def _one_budget(self) -> "MultiturnSettings":
        if self.max_context_chars is not None and self.max_context_tokens is not None:
            raise ValueError("give max_context_chars or max_context_tokens, not both")
        if self.max_context_tokens is not None and not self.tokenizer:
            raise ValueError("max_context_tokens needs a tokenizer (a model name or a local folder)")
        if self.tokenizer and self.max_context_tokens is None:
            raise ValueError("tokenizer is only used with max_context_tokens")
        return self

    @property
    def budget(self) -> int | None:
        return self.max_context_chars if self.max_context_chars is not None else self.max_context_tokens

    @property
    def budget_unit(self) -> str:
        return "tokens" if self.max_context_tokens is not None else "chars"


@lru_cache(maxsize=4)
def load_tokenizer(name_or_path: str):
    """AutoTokenizer, loaded once per process. transformers is imported only here (it is heavy)."""
    # A hub name is `name` or `org/name`; anything else is a folder, and a missing one is a typo.
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local and not Path(name_or_path).expanduser().exists():
        raise InputError(name_or_path, "no such tokenizer folder")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name_or_path)
    except Exception as exc:  # OSError for a missing model, ValueError for a bad folder, ...
        raise InputError(name_or_path, f"cannot load the tokenizer: {exc}") from None


def length_function(settings: MultiturnSettings) -> Callable[[str], int] | None:
    """How the budget measures a text: characters, tokens, or not at all."""
    if settings.max_context_tokens is not None:
        tokenizer = load_tokenizer(settings.tokenizer)
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    if settings.max_context_chars is not None:
        return len
    return None


def expand(conversation: Conversation, template: Template | str, settings: MultiturnSettings | None = None, *,
           system: str | None = None, stats: Counter | None = None) -> list[dict[str, Any]] | Reject:
    """The training records of one conversation, or why it cannot give any.

    `system` overrides the conversation's own system text. `stats`, when given, counts the
    history rounds dropped (`history_rounds_dropped_by_limit` / `..._by_budget`).
    """
    if isinstance(template, str):
        template = get_template(template)
    settings = settings or MultiturnSettings()
    measure = length_function(settings)
    if conversation.rendered:  # a context/target row read back: its context is already final
        return _rendered_record(conversation, settings, measure)
    dropped = Counter()  # added to `stats` only when the conversation gives its records
    if getattr(conversation, "has_tools", False):  # calls, results or traces: multiturn/tools.py
        records = expand_tools(conversation, template, settings, system=system, measure=measure, record=_record,
                               dropped=dropped)
        if stats is not None and not isinstance(records, Reject):
            stats.update(+dropped)
        return records
    pairs = rounds(conversation)
    system = system or conversation.system
    wanted = record_replies(conversation.turns, settings.mode == "every-turn")  # round k's reply is reply k
    if not wanted:
        return Reject("multiturn", NO_TRAINED_REPLY, "every reply has weight 0: nothing to train")
    if (measure is None and settings.max_history_turns is None and settings.mode == "every-turn"
            and type(template) is Template):
        return _every_turn(conversation, template, pairs, system, wanted)
    records = []
    for number, k in enumerate(wanted):
        first = 0 if settings.max_history_turns is None else max(0, k - settings.max_history_turns)
        dropped["history_rounds_dropped_by_limit"] += first
        if measure is None:
            context = render_prompt(template, pairs[first:k], pairs[k][0], system)
        else:
            fitted = _fit(template, pairs, k, first, system, measure, settings)
            if isinstance(fitted, Reject):
                return fitted
            dropped["history_rounds_dropped_by_budget"] += fitted[0] - first
            context = fitted[1]
        target = pairs[k][1].text
        records.append(_record(conversation, context, target, f"{conversation.id}#t{number + 1}"
                               if settings.mode == "every-turn" else conversation.id))
    if stats is not None:
        stats.update(+dropped)  # unary + keeps only counts above zero
    return records


def _every_turn(conversation: Conversation, template: Template, pairs, system: str | None,
                wanted: list[int]) -> list[dict[str, Any]]:
    """The records of rounds `wanted` with their whole history (no limit, no budget), each
    context built on the one before: render_prompt(template, pairs[:k], pairs[k][0], system) is
    the previous context, its reply's block and this round's question block (the same pieces,
    joined in the same order), so each block is rendered once instead of once per later record."""
    records = []
    trained = set(wanted) if len(wanted) < len(pairs) else None  # None: every round (the usual)
    so_far = template.prefix + template.system_block(system)
    for k, (question, answer) in enumerate(pairs):
        context = so_far + template.user_block(k + 1, question)
        if trained is None or k in trained:
            records.append(_record(conversation, context, answer.text, f"{conversation.id}#t{len(records) + 1}"))
        so_far = context + template.assistant_block(answer.text)
    return records


def _fit(template: Template, pairs, k: int, first: int, system: str | None, measure: Callable[[str], int],
         settings: MultiturnSettings) -> tuple[int, str] | Reject:
    """(first kept round, context) for the longest recent history that fits, or a reject.

    Dropping rounds only shortens the context, so the first round to keep is found by bisection
    (a tokenizer call per try is the cost worth saving).
    """
    budget = settings.budget
    question, answer = pairs[k]
    reply_length = measure(answer.text)

    def context_at(start: int) -> str:
        return render_prompt(template, pairs[start:k], question, system)

    context = context_at(first)
    if measure(context) + reply_length <= budget:
        return first, context
    alone = context_at(k)
    alone_length = measure(alone) + reply_length
    if alone_length > budget:
        return Reject("multiturn", OVER_BUDGET, f"round {k + 1}: the question and its reply alone are {alone_length:,} "
                                                f"{settings.budget_unit}, over the budget of {budget:,}")
    low, high = first + 1, k  # context_at(high) fits, context_at(low - 1) does not
    while low < high:
        middle = (low + high) // 2
        if measure(context_at(middle)) + reply_length <= budget:
            high = middle
        else:
            low = middle + 1
    return high, (alone if high == k else context_at(high))


def _rendered_record(conversation: Conversation, settings: MultiturnSettings,
                     measure: Callable[[str], int] | None) -> list[dict[str, Any]] | Reject:
    context, target = conversation.turns[0].text, conversation.reply
    if measure is not None:
        length = measure(context) + measure(target)
        if length > settings.budget:
            return Reject("multiturn", OVER_BUDGET, f"the context and target are {length:,} {settings.budget_unit}, "
                                                    f"over the budget of {settings.budget:,}")
    record_id = conversation.id if settings.mode == "last-turn" else f"{conversation.id}#t1"
    return [_record(conversation, context, target, record_id)]


def _record(conversation: Conversation, context: str, target: str, record_id: str) -> dict[str, Any]:
    record = {"context": context, "target": target, "id": record_id, "source": conversation.source}
    if conversation.category:
        record["category"] = conversation.category
    return record
