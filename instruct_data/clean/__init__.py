"""Cleaning: normalizers (change text) then filters (keep, or drop with a reason code).

    cleaner = Cleaner(CleanSettings(length={"min_instruction": 4}, refusal=True))
    verdict, changed = cleaner.clean(conversation)   # conversation's texts edited in place
    # verdict: None (keep) or Drop(reason, detail); changed: names of the rules that edited it

Every rule is one small class in normalizers.py, filters.py or pii.py, switched and tuned by
its block in a recipe's `clean:` section (`CleanSettings`). Rules run in the order listed in
RULES; the first filter that drops a row gives its reason.

Dialogues are judged turn by turn: when a rule finds a bad assistant turn after the first,
the dialogue is cut before that turn's round and judged again (`on_bad_turn: cut`, the
default); a bad first turn removes the first round when the next question stands on its own
(it does not point back with 这/那/它/上面/继续/再…), else the dialogue is dropped. With
`on_bad_turn: drop-dialogue` a bad turn drops the dialogue whole. `changed` then holds
`turns_cut.RULE` once per round cut, and `pii.KIND` once per mask made, for the manifest.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

import re

from instruct_data.clean import tools as tool_cleaning
from instruct_data.clean.base import KEEP, Drop, Filter, Normalizer, RuleSettings
from instruct_data.clean.filters import FILTERS
from instruct_data.clean.normalizers import NORMALIZERS, leaves_alone, leaves_alone_text
from instruct_data.schema import Conversation

# A question that points back at the round before it (这/那/它/上面/刚才/继续/再…): the round it
# follows cannot be removed from under it.
POINTS_BACK = re.compile(r"这|那|它|他们|她|上面|上述|以上|刚才|前面|继续|再|还有|重新|改|换|其中|哪一|哪个|你说|你的回答|翻译一下|谢谢|好的|"
                         r"\b(?:it|that|this|those|them|again|continue|more)\b", re.IGNORECASE)

RULES: tuple[type[Normalizer] | type[Filter], ...] = (*NORMALIZERS, *FILTERS)
RULES_BY_NAME = {rule.name: rule for rule in RULES}

_SettingsBase = type("_SettingsBase", (BaseModel,), {"model_config": ConfigDict(extra="forbid")})

# The recipe's `clean:` block: one field per rule, named after it. A wrong key is an error naming it.
CleanSettings = create_model(
    "CleanSettings",
    __base__=_SettingsBase,
    __doc__="Which cleaning rules run, and their parameters (`name: true|false` or `name: {...}`).",
    on_bad_turn=(Literal["cut", "drop-dialogue"], "cut"),
    **{rule.name: (rule.Settings, rule.Settings()) for rule in RULES},
)


def _texts(conversation: Conversation):
    """Every text Normalizer.apply normalizes (a turn's input and the system text where not empty)."""
    for turn in conversation.turns:
        yield turn.text
        if turn.input:
            yield turn.input
    if conversation.system:
        yield conversation.system


def reason_codes() -> dict[str, tuple[str, ...]]:
    """Filter name -> the reason codes it can give."""
    return {rule.name: rule.reasons for rule in FILTERS}


class Cleaner:
    """Runs the enabled rules over conversations and counts what each did."""

    def __init__(self, settings: Any = None):
        if settings is None:
            settings = CleanSettings()
        elif isinstance(settings, dict):
            settings = CleanSettings.model_validate(settings)
        self.settings = settings
        self.normalizers: list[Normalizer] = []
        self.filters: list[Filter] = []
        for rule in RULES:
            rule_settings: RuleSettings = getattr(settings, rule.name)
            if not rule_settings.enabled:
                continue
            instance = rule(rule_settings)
            (self.normalizers if isinstance(instance, Normalizer) else self.filters).append(instance)
        self._quick = leaves_alone(n.name for n in self.normalizers)

    @property
    def enabled(self) -> list[str]:
        return [rule.name for rule in (*self.normalizers, *self.filters)]

    def clean(self, conversation: Conversation) -> tuple[Drop | None, list[str]]:
        """Normalize in place, then filter. Returns (None or Drop, names of rules that changed text).

        A dialogue with a bad turn after its first round is cut before that round (in place)
        and filtered again, unless `on_bad_turn` is `drop-dialogue`."""
        # A dialogue with tool calls: the rules read its prose only (clean/tools.py).
        tools = tool_cleaning.is_tool_dialogue(conversation)
        changed = (tool_cleaning.normalize(self.normalizers, conversation) if tools
                   else self._normalize(conversation))
        cut = self.settings.on_bad_turn == "cut"
        while True:
            rule, verdict = (tool_cleaning.first_drop(self.filters, conversation, changed) if tools
                             else self._first_drop(conversation, changed))
            if verdict is None:
                return KEEP, changed
            turns = conversation.turns
            # Rounds are cut whole: in a tool dialogue a round is longer than two turns.
            second = 2 if not tools or conversation.n_rounds < 2 else tool_cleaning.round_start(conversation, 2)
            if cut and verdict.turn is not None and verdict.turn > 1:
                removed = conversation.n_rounds - (verdict.turn - 1)
                end = 2 * (verdict.turn - 1) if not tools else tool_cleaning.round_start(conversation, verdict.turn)
                conversation.turns = turns[:end]
            elif (cut and verdict.turn == 1 and conversation.n_rounds > 1
                  and not POINTS_BACK.search(turns[second].full_text)):
                removed = 1
                conversation.turns = turns[second:]
            else:
                rule.dropped += 1
                return verdict, changed
            rule.turns_cut += removed
            changed += [f"turns_cut.{rule.name}"] * removed

    def _normalize(self, conversation: Conversation) -> list[str]:
        """Names of the normalizers that changed the conversation. A conversation whose every
        text passes the normalizers' joint first test is left as it is without calling them."""
        if self._quick and all(leaves_alone_text(text) for text in _texts(conversation)):
            return []
        return [n.name for n in self.normalizers if n.apply(conversation)]

    def _first_drop(self, conversation: Conversation, changed: list[str]) -> tuple[Filter | None, Drop | None]:
        for rule in self.filters:
            before = rule.changed
            verdict = rule.filter(conversation)
            if verdict is not None:
                return rule, verdict
            if rule.changed != before:  # (most rules never edit: no call for them)
                changed += rule.edits_since(before)
        return None, None

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            "changed": {n.name: n.changed for n in self.normalizers} | {f.name: f.changed for f in self.filters if f.changed},
            "dropped": {f.name: f.dropped for f in self.filters},
            "turns_cut": {f.name: f.turns_cut for f in self.filters if f.turns_cut},
        }


__all__ = ["CleanSettings", "Cleaner", "Drop", "Filter", "KEEP", "Normalizer", "RULES", "RuleSettings", "reason_codes"]
