"""Garbled text that a cheap statistic shows: Chinese prose whose punctuation was stripped.

Chinese prose puts a clause mark (，、；：) every 10 to 20 characters; a generated, translated or
hand-written reply of a hundred characters with no comma at all, or a run of 70 characters with
no mark of any kind, is almost never seen (on the labeled set's sources outside the medical
table: none of about 4,300 replies; the longest unpunctuated run there is 53 characters). It is
the trace of a processing step that lost the punctuation, often with the character beside each
mark: Toyhom's medical dialogue table ("根据你叙述的情有癫目前没正式救感觉症状越来越严重。",
where "情况，" and "癫痫，" lost their last character with the comma) or text whose marks were
removed before it was scraped. Such a reply reads as broken Chinese and trains broken Chinese.

The test reads the reply's prose only (code, tables and list items are not prose), and costs
about a microsecond on most replies: `str.count` and `in` decide in C unless the reply is long.
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


class GarbledSettings(RuleSettings):
    # Off: 4 of 5 right on dev, 7 of 7 on the frozen test split, under the 20 firings a default rule
    # needs (docs/cleaning.md, "Garbled text").
    enabled: bool = False
    max_run: int = Field(70, ge=20, description="longest run of Chinese characters with no punctuation or space")
    min_commaless: int = Field(100, ge=20, description="a reply of at least this many Chinese characters, in "
                                                       "two sentences or more, with no comma at all is garbled")
    min_sentence: float = Field(20, ge=0, description="...when its sentences average at least this many characters")


class Garbled(TurnFilter):
    """A reply whose punctuation was stripped: a run of `max_run` Chinese characters with no mark
    or space at all, or `min_commaless` Chinese characters of prose in two sentences or more
    without a single comma (lists and layouts aside)."""

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
        if han >= s.min_commaless and len(sentences) >= 2 and han / len(sentences) >= s.min_sentence:
            return Drop("no_commas", f"{han} Chinese characters in {len(sentences)} sentences and not one comma")
        return None


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
