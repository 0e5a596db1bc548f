"""A Chinese dialogue whose first user turn is not a request: an English passage with no
question in it, where a later user turn is Chinese. It is debris of a
translation pipeline that lost the first request and kept its answer in its place
(`"The rain is coming down hard." can be transformed into an exclamation by adding…` followed by
a Chinese reply and then Chinese questions). The quality guide
labels such a turn `garbled` ("a first user turn that is not a request"). Only the first round
is at fault: with `on_bad_turn: cut` (the default) the Cleaner removes that round and keeps the
rest when the next question stands on its own.

Single-round rows are not judged (an English instruction answered in Chinese may be a
translation task whose instruction sits in the system text), nor an English turn that asks
something (a question mark, please, translate, explain, how, what, can you …), nor code: a
pasted block of code with no words around it is a common way to ask what it does (a ShareGPT
dialogue opens with a C++ header and the reply explains it).
"""

from __future__ import annotations

import re

from pydantic import Field

from instruct_data.clean.base import Drop, Filter, RuleSettings
from instruct_data.schema import Conversation

HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]+")
CODE = re.compile(r"```|^[^\S\n]*(?:#include|#define|#ifndef|import |from \S+ import|def |class |public |function |const |var |let )|[{};]\s*$",
                  re.MULTILINE)
ASKS = re.compile(r"[?？]|\b(?:please|translate|write|explain|tell|give|list|describe|summari[sz]e|rewrite|correct|fix|"
                  r"how|what|why|which|who|where|when|can you|could you|would you|help|generate|create|find)\b",
                  re.IGNORECASE)


class StrayTurnSettings(RuleSettings):
    # Off: 1 of 1 right on dev, 2 of 2 on the frozen test split, under the 20 firings a default rule
    # needs (docs/cleaning.md, "Stray first turns").
    enabled: bool = False
    min_words: int = Field(6, ge=1, description="an English first turn needs this many words to be judged")
    min_han: int = Field(5, ge=1, description="a later user turn with this many Chinese characters makes the dialogue Chinese")


class StrayFirstTurn(Filter):
    """The first user turn of a Chinese dialogue is an English passage that asks nothing."""

    name = "stray_first_turn"
    reasons = ("first_turn_not_a_request",)
    Settings = StrayTurnSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        users = [turn.full_text for turn in conversation.turns if turn.role == "user"]
        if len(users) < 2 or HAN.search(users[0]):
            return None  # a single round, or a first turn with Chinese in it: the usual cases
        first = users[0].strip()
        # Code alone is not judged: pasting it is a common way to ask what it does (ShareGPT).
        if CODE.search(first) or len(LATIN_WORD.findall(first)) < self.settings.min_words or ASKS.search(first):
            return None
        if not any(len(HAN.findall(text)) >= self.settings.min_han for text in users[1:]):
            return None  # the dialogue is not Chinese
        shown = first[:40].replace("\n", " ")
        return Drop("first_turn_not_a_request", f"the first user turn asks nothing and is not Chinese ({shown!r}…)", turn=1)
