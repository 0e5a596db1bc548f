"""Cleaning a dialogue with tool calls: the text rules see its prose only.

A tool dialogue (docs/tools.md) holds text that is not prose: the calls' JSON arguments, the
tools' results (often JSON), and assistant turns that only call a tool and so have no text.
The cleaning rules were written and measured on prose, so here they are run on a *prose
view* of the dialogue: each round's user turn with each of its assistant turns that has text,
as alternating user/assistant pairs. The view holds the same Turn objects, so what a
normalizer or a mask changes is changed in the dialogue; tool turns, calls and reasoning
traces are never read nor changed. A rule's verdict on a pair is mapped back to the real
round, and the Cleaner cuts rounds whole (a call is never parted from its result).

One rule reads the dialogue's tools as well: in a dialogue that declares tools, `ai_identity`
does not judge a reply that refers to them ("作为一个AI，我无法预订机票。我的功能仅限于计算距离"):
explaining what its tools can and cannot do is what such data teaches, and the reply keeps
the tool list it refers to. And one rule reads the calls and results too: `pii`, since
personal data leaks from a call's arguments as from prose (`personal_data_in_calls`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from instruct_data.clean.base import Drop
from instruct_data.schema import Conversation, Turn, tool_function

# How a reply refers to what its tools can do (its 功能/能力, the tools, functions).
REFERS_TO_TOOLS = re.compile(r"功能|能力|工具|函数|function|tool", re.IGNORECASE)


def is_tool_dialogue(conversation) -> bool:
    """True for a Conversation with tools, calls, results or traces; a plain row (the row path's
    PlainConversation, the commonest by far) has no `has_tools` and never is one."""
    return getattr(conversation, "has_tools", False)


class ProseView:
    """The prose of a tool dialogue as alternating (user, reply) pairs, for the text rules.

    `round_of[k]` is the real round (1-based) of the view's pair k+1."""

    def __init__(self, conversation: Conversation, keep_reply: Callable[[Turn], bool] = lambda turn: True):
        self.conversation = conversation
        self.tools = conversation.tools
        self.system = conversation.system
        self.turns: list[Turn] = []
        self.round_of: list[int] = []
        for number, turns in enumerate(conversation.rounds, start=1):
            for reply in turns[1:]:
                if reply.role == "assistant" and reply.text.strip() and keep_reply(reply):
                    self.turns += [turns[0], reply]
                    self.round_of.append(number)

    @property
    def n_rounds(self) -> int:
        return len(self.round_of)

    def real_turn(self, verdict: Drop) -> Drop:
        """The verdict with `turn` naming the real round; None when the dialogue has one round."""
        pair = verdict.turn if verdict.turn is not None else 1
        real = self.round_of[pair - 1] if self.round_of else 1
        return verdict._replace(turn=real if self.conversation.n_rounds > 1 else None)


def refers_to_tools(reply: Turn, tools: list[dict] | None) -> bool:
    """A reply that speaks of its tools: their names, or its 功能/能力/工具."""
    if not tools:
        return False
    if REFERS_TO_TOOLS.search(reply.text):
        return True
    return any(str(tool_function(tool).get("name", "")) in reply.text for tool in tools)


def normalize(normalizers, conversation: Conversation) -> list[str]:
    """Run the normalizers over the prose (and the system text); the names of those that changed it."""
    view = ProseView(conversation)
    changed = [n.name for n in normalizers if n.apply(view)]
    conversation.system = view.system
    return changed


def first_drop(filters, conversation: Conversation, changed: list[str]):
    """(rule, verdict) of the first filter that drops the dialogue's prose, as Cleaner._first_drop."""
    for rule in filters:
        view = (ProseView(conversation, lambda reply: not refers_to_tools(reply, conversation.tools))
                if rule.name == "ai_identity" else ProseView(conversation))
        if not view.turns:
            continue
        before = rule.changed
        verdict = rule.filter(view)
        conversation.system = view.system  # a mask may have changed it
        if verdict is not None:
            return rule, view.real_turn(verdict)
        if rule.name == "pii":
            verdict = personal_data_in_calls(rule, conversation, masked_prose=rule.changed != before)
            if verdict is not None:  # its `turn` is already the real round
                return rule, verdict._replace(turn=verdict.turn if conversation.n_rounds > 1 else None)
        changed += rule.edits_since(before)
    return None, None


def personal_data_in_calls(rule, conversation: Conversation, masked_prose: bool) -> Drop | None:
    """The `pii` rule on what is not prose: the calls' argument values and the tool results.

    Personal data is not prose, and it leaks as well from a call as from a sentence: a phone
    number masked in the user's words but left in `send_sms(phone=...)` is still there, and the
    model would learn to write a number nobody gave it. Masked (or rejected) as in the prose;
    a mask in a JSON value keeps the JSON valid (the masks hold no quotes)."""
    before = Counter(rule.row_masked)
    for number, turns in enumerate(conversation.rounds, start=1):
        for turn in turns:
            if turn.role == "tool":
                if rule.settings.mode == "reject":
                    kind = rule.find(turn.text)
                    if kind:
                        return Drop("pii", f"a tool result holds a {kind.replace('_', ' ')}", number)
                turn.text = rule.mask(turn.text) if rule.settings.mode == "mask" else turn.text
            for call in turn.tool_calls or []:
                if rule.settings.mode == "reject":
                    kind = next(filter(None, map(rule.find, _strings(call.arguments))), None)
                    if kind:
                        return Drop("pii", f"a call's arguments hold a {kind.replace('_', ' ')}", number)
                else:
                    call.arguments = _masked(rule, call.arguments)
    extra = Counter(rule.row_masked) - before
    if extra:
        rule.changed += not masked_prose  # the row counts once, prose and calls together
        rule.masked.update(extra)
    return None


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _masked(rule, value):
    if isinstance(value, str):
        return rule.mask(value)
    if isinstance(value, dict):
        return {key: _masked(rule, item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(rule, item) for item in value]
    return value


def round_start(conversation: Conversation, number: int) -> int:
    """The index in `turns` where round `number` (1-based) begins."""
    starts = [index for index, turn in enumerate(conversation.turns) if turn.role == "user"]
    return starts[number - 1]
