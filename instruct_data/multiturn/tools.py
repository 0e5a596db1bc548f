"""Expanding a dialogue with tool calls or reasoning traces into training records.

In such a dialogue a *reply* is any assistant turn: a call is a reply too (the model has to
learn to make it), and so is the answer written after the call's results. So:

- `every-turn` gives one record per assistant turn (ids `{id}#t{k}`, k counting the records),
  each with everything before it as context: the earlier rounds, and in the current round the
  calls already made and their results;
- `last-turn` gives one record, for the last assistant turn.

An assistant turn at weight 0 gives no record (history only), as in a dialogue without tools.

A record is rendered by the template's own rules for tools (templates.render on the dialogue
cut at that reply: the tool list with the system text, results in the user slot, calls and
traces in the reply, as instruct_data/tool_format.py writes them), and `reasoning` says which
traces are kept (keep, drop-history as Qwen3 renders at inference, drop).

History is still cut by whole rounds (a user turn and everything up to the next one):
`max_history_turns` counts rounds, and the length budget drops the oldest rounds first; the
current round is never cut, so a call is never parted from its result. A current round that
alone is over the budget is rejected (`over_budget`), as in a dialogue without tools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from instruct_data.table import Reject
from instruct_data.schema import NO_TRAINED_REPLY, Conversation, record_replies


def replies(conversation: Conversation) -> list[tuple[int, int]]:
    """(index in turns, index of the turn that opens its round) of every assistant turn."""
    found, opened = [], 0
    for index, turn in enumerate(conversation.turns):
        if turn.role == "user":
            opened = index
        elif turn.role == "assistant":
            found.append((index, opened))
    return found


def expand_tools(conversation: Conversation, template, settings, *, system: str | None,
                 measure: Callable[[str], int] | None, record: Callable[..., dict[str, Any]],
                 dropped: Counter) -> list[dict[str, Any]] | Reject:
    """The records of a tool dialogue (see the module's docstring), or why it cannot give any.

    `record(conversation, context, target, record_id)` builds one record, as multiturn.expand does."""
    from instruct_data.multiturn.expansion import OVER_BUDGET

    found = replies(conversation)
    starts = [index for index, turn in enumerate(conversation.turns) if turn.role == "user"]
    wanted = record_replies(conversation.turns, settings.mode == "every-turn")  # none at weight 0
    if not wanted:
        return Reject("multiturn", NO_TRAINED_REPLY, "every reply has weight 0: nothing to train")
    records = []
    for number, k in enumerate(wanted):
        end, opened = found[k]
        current = starts.index(opened)
        first = 0 if settings.max_history_turns is None else max(0, current - settings.max_history_turns)
        dropped["history_rounds_dropped_by_limit"] += first
        context, target = _render(conversation, template, system, settings.reasoning, starts[first], end)
        if measure is not None:
            while measure(context) + measure(target) > settings.budget:
                if first == current:
                    length = measure(context) + measure(target)
                    return Reject("multiturn", OVER_BUDGET, f"reply {k + 1}: its round alone is {length:,} "
                                                            f"{settings.budget_unit}, over the budget of "
                                                            f"{settings.budget:,}")
                first += 1
                dropped["history_rounds_dropped_by_budget"] += 1
                context, target = _render(conversation, template, system, settings.reasoning, starts[first], end)
        record_id = f"{conversation.id}#t{number + 1}" if settings.mode == "every-turn" else conversation.id
        records.append(record(conversation, context, target, record_id))
    return records


def _render(conversation: Conversation, template, system: str | None, reasoning: str, start: int,
            end: int) -> tuple[str, str]:
    """(context, target) of the reply at turns[end], with the turns from `start` (a user turn) before it."""
    from instruct_data.templates import render

    part = conversation.model_copy(update={"turns": conversation.turns[start:end + 1]})
    return render(part, template, system=system, reasoning=reasoning)
