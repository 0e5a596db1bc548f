"""Garbled text that a cheap statistic shows: Chinese prose whose punctuation was stripped.

Chinese prose puts a clause mark (，、；：) every 10 to 20 characters. A reply of a hundred
characters in two sentences or more with no comma at all and long merged clauses, or a run of 80
characters with no mark of any kind, is the trace of a processing step that lost the
punctuation, often with the character beside each mark: Toyhom's medical dialogue table
("根据你叙述的情有癫目前没正式救感觉症状越来越严重。", where "情况，" and "癫痫，" lost their last
character with the comma). Such a reply reads as broken Chinese and trains broken Chinese.

Sound text does this too, rarely: Chinese translated from English can go a long way without a
comma (a BELLE seed paragraph of 103 characters, a ShareGPT-zh reply of questions, a 75-character
ShareGPT-zh clause), which is why the rule is off by default (docs/cleaning.md, "Garbled text").

Lists, tables and layouts are not judged. It costs a few microseconds a row: `in` tests, then one
UTF-8 encode and `bytes.translate` searched in C for a run.
"""

from __future__ import annotations

import re

from pydantic import Field

from instruct_data.clean.base import Drop, RuleSettings, TurnFilter

HAN = re.compile(r"[\u4e00-\u9fff]")
# A list or a layout: numbered or bulleted items, runs of spaces, a colon closing a line. A list
# of short items needs no commas.
LAYOUT = re.compile(r"(?:^|\n|\s)(?:\d+[.、)）]|[-•*·]|[a-zA-Z][.)])\s*|[ \t\u3000]{2,}|[:：]\s*\n|\|")
SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
CLAUSE_MARK = re.compile(r"[，、；：。！？!?;:\n]+")


class GarbledSettings(RuleSettings):
    # Off: 4 of 4 right on dev and 7 of 7 on the frozen test split, under the 20 firings a default
    # rule needs; 2 sound replies of 8 firings on 11,150 public rows nobody labeled, translated text
    # the weak spot (docs/cleaning.md, "Garbled text").
    enabled: bool = False
    # 80: a sentence translated from English can run 75 characters without a mark (ShareGPT-zh)
    max_run: int = Field(80, ge=20, description="longest run of Chinese characters with no punctuation or space")
    min_commaless: int = Field(100, ge=20, description="a reply of at least this many Chinese characters, in "
                                                       "two sentences or more, with no comma at all is garbled")
    min_sentence: float = Field(20, ge=0, description="...when its sentences average at least this many characters")


class Garbled(TurnFilter):
    """A reply whose punctuation was stripped: a run of `max_run` Chinese characters with no mark
    or space at all, or `min_commaless` Chinese characters of prose in two sentences or more
    without a single comma and with two clauses of 20 characters or more (lists, layouts and
    enumerations aside)."""

    name = "garbled"
    reasons = ("run_on_text", "no_commas")
    Settings = GarbledSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        s = self.settings
        # Every reply the rule fires on is at least max_run characters long: the usual case.
        if len(reply) < min(s.max_run, s.min_commaless):
            return None
        run = longest_han_run(reply, s.max_run)
        if run >= s.max_run:
            return Drop("run_on_text", f"the reply runs {run} Chinese characters without a punctuation mark")
        if "，" in reply or "," in reply or LAYOUT.search(reply):
            return None
        sentences = [piece for piece in SENTENCE_END.split(reply) if HAN.search(piece)]
        han = sum(len(HAN.findall(piece)) for piece in sentences)
        if han < s.min_commaless or len(sentences) < 2 or han / len(sentences) < s.min_sentence:
            return None
        # Stripped commas merge clauses: two clauses of 20 characters or more between any marks.
        # An enumeration (药物包括组胺、阿托品、…；…) has no commas and short clauses.
        if sum(1 for clause in CLAUSE_MARK.split(reply) if len(HAN.findall(clause)) >= 20) < 2:
            return None
        return Drop("no_commas", f"{han} Chinese characters in {len(sentences)} sentences and not one comma")


# In UTF-8 a character of U+4000-U+9FFF (the unified ideographs and most of extension A) starts
# with a byte E4-E9. Mapping those lead bytes to "H", every other lead byte to "." and deleting
# continuation bytes turns the text into one byte per character, searched in C.
_RUN_TABLE = bytes(ord("H") if 0xE4 <= b <= 0xE9 else ord(".") for b in range(256))
_CONTINUATION = bytes(range(0x80, 0xC0))
HAN_RUN = re.compile(r"[\u4e00-\u9fff]+")


def longest_han_run(text: str, at_least: int) -> int:
    """The longest run of Chinese characters in the text when it is at least `at_least`, else 0."""
    if b"H" * at_least not in text.encode("utf-8").translate(_RUN_TABLE, _CONTINUATION):
        return 0
    return max(len(run) for run in HAN_RUN.findall(text))
