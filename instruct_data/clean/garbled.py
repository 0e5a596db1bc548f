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

It also reads other traces a processing step leaves, each a signal that sound text does not give:

* `spun_text`: text run through a synonym spinner (伪原创 tools, which rewrite scraped Q&A pages
  word by word so that they pass as new): in a stretch of 200 characters, three distinct words
  that such a spinner puts for a common one (救治 for 治疗, 致使 for 导致, 服食 for 服用, 再次出现 for
  出现, 需要有 for 需要, 表现出为 for 表现为, 预防工作 for 预防, 期望 ... 协助到 for 希望 ... 帮助到). Each
  word alone is Chinese, and ordinary text uses one now and then; three close together are the
  spinner's. The list (`SPUN`) was drawn from rows nobody labeled and checked against 65,044
  replies of other sources (docs/cleaning.md, "Garbled text");
* `garbled_code`: two lines or more of code whose punctuation was made full-width
  (`while l1 or l2 or carry：`, `divmod（v1+v2+carry，10）`), as a translation or a Chinese input
  method leaves it: it does not run. Strings and comments are not read;
* `calculator_markup`: a calculator's annotation left in a worked answer (`6*150=<<6*150=900>>900`);
* `stripped_latex`: LaTeX that lost its backslashes (`frac{3}{5}`);
* `broken_lines`: a line that opens with a comma or an enumeration comma (`…重心在前脚⏎搏击操⏎，看着目标`):
  a sentence cut by scraped debris.
"""

from __future__ import annotations

import re

from pydantic import Field

from instruct_data.clean.base import Drop, RuleSettings, TurnFilter
from instruct_data.clean.structure import is_code_line

HAN = re.compile(r"[\u4e00-\u9fff]")
# A list or a layout: numbered or bulleted items, runs of spaces, a colon closing a line. A list
# of short items needs no commas.
LAYOUT = re.compile(r"(?:^|\n|\s)(?:\d+[.、)）]|[-•*·]|[a-zA-Z][.)])\s*|[ \t\u3000]{2,}|[:：]\s*\n|\|")
SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
CLAUSE_MARK = re.compile(r"[，、；：。！？!?;:\n]+")


class GarbledSettings(RuleSettings):
    # Off: with spun text, garbled code and debris, 25 fired and 24 right on dev (0.96, interval
    # down to 0.81); `no_commas` misfires on comma-free translated text (46 of 51,869 translated
    # Alpaca replies). The frozen test split's figure is the lead's to take (docs/cleaning.md,
    # "Garbled text").
    enabled: bool = False
    # 80: a sentence translated from English can run 75 characters without a mark (ShareGPT-zh)
    max_run: int = Field(80, ge=20, description="longest run of Chinese characters with no punctuation or space")
    min_commaless: int = Field(100, ge=20, description="a reply of at least this many Chinese characters, in "
                                                       "two sentences or more, with no comma at all is garbled")
    min_sentence: float = Field(20, ge=0, description="...when its sentences average at least this many characters")
    spun_words: int = Field(3, ge=0, description="distinct spinner words in one stretch that make a reply spun "
                                                 "text (0: not judged)")
    spun_window: int = Field(200, ge=20, description="...the stretch, in characters")
    code: bool = Field(True, description="judge code whose punctuation was made full-width")
    debris: bool = Field(True, description="judge calculator markup, LaTeX without backslashes, and lines that "
                                           "open with a comma")


class Garbled(TurnFilter):
    """A reply whose punctuation was stripped: a run of `max_run` Chinese characters with no mark
    or space at all, or `min_commaless` Chinese characters of prose in two sentences or more
    without a single comma and with two clauses of 20 characters or more (lists, layouts and
    enumerations aside). Also spun text, code with full-width punctuation, calculator markup,
    LaTeX without backslashes and lines broken before a comma (module docstring)."""

    name = "garbled"
    reasons = ("run_on_text", "no_commas", "spun_text", "garbled_code", "calculator_markup", "stripped_latex",
               "broken_lines")
    Settings = GarbledSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        s = self.settings
        if s.debris:
            verdict = _debris(reply)
            if verdict is not None:
                return verdict
        if s.code and FULLWIDTH_IN_CODE.search(reply):
            lines = garbled_code_lines(reply)
            if len(lines) >= 2:
                return Drop("garbled_code", f"{len(lines)} code lines with full-width punctuation: {lines[0][:60]!r}")
        if s.spun_words:
            words = spun_words(reply, s.spun_words, s.spun_window)
            if words:
                return Drop("spun_text", f"words a synonym spinner puts for common ones: {'、'.join(words)}")
        # Every reply the rules below fire on is at least max_run characters long: the usual case.
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


# ------------------------------------------------------------------ spun text

# Words a synonym spinner (a 伪原创 tool) puts for a common word, each with the word it replaces:
# every one is Chinese, but ordinary text prefers the common word, and the expanded forms
# (需要有 + verb, 表现出为, 预防工作 + object) are not grammatical where the spinner puts them.
# Drawn from the unlabeled rows of a spun medical Q&A table (not from labeled rows); each is in
# at most 57 of 65,044 replies of other sources (translated Alpaca, Huatuo's medical answers,
# ShareGPT-zh, the quality set's other sources), and three distinct ones within 200 characters
# in none of them (docs/cleaning.md, "Garbled text").
SPUN = {
    "救治": "治疗", "服食": "服用", "致使": "导致", "引来": "引起", "引致": "引起", "再次出现": "出现",
    "再次发生": "发生", "仔细检查": "检查", "复检": "复查", "复诊": "就诊", "诊病": "就诊", "发觉": "发现",
    "留意": "注意", "看重": "重视", "始终保持": "保持", "恰当": "合理", "减低": "降低", "纾解": "缓解",
    "考量": "考虑", "歇息": "休息", "操劳": "劳累", "散播": "传播", "忧心": "担心", "锻练": "锻炼",
    "避忌": "忌讳", "伤损": "损伤", "撵走": "赶走", "抗衡": "对抗", "动用": "使用", "碰触": "接触",
    "作好": "做好", "处在": "处于", "理应": "应该", "方才": "才", "约莫": "大约", "知晓": "知道",
    "全愈": "痊愈", "降生": "出生", "出外": "外出", "给与": "给予", "不定期": "定期", "发生改变": "改变",
    "互相配合": "配合", "监测数据": "监测", "看一看": "看看", "表现出为": "表现为", "需要有": "需要",
    "预防工作": "预防", "期望上述": "希望上述", "协助到": "帮助到", "做为": "作为", "重新调整": "调整",
    "直面": "面对", "放柔": "放松", "寻问": "询问", "对换": "更换", "提示音": "提示", "转好": "好转",
    "消化维生素": "吸收维生素", "决定合适": "选择合适", "病发": "发病",
}
SPUN_WORD = re.compile("|".join(sorted(SPUN, key=len, reverse=True)))


def spun_words(text: str, distinct: int = 3, window: int = 200) -> list[str]:
    """The spinner words of the first stretch of `window` characters that holds `distinct` of
    them, else []."""
    hits = [(match.start(), match.group()) for match in SPUN_WORD.finditer(text)]
    if len({word for _, word in hits}) < distinct:
        return []
    first = 0
    for last in range(len(hits)):
        while hits[last][0] - hits[first][0] > window:
            first += 1
        words = sorted({word for _, word in hits[first:last + 1]})
        if len(words) >= distinct:
            return words
    return []


# ------------------------------------------------------------------ code with full-width punctuation

# Full-width punctuation where code has ASCII: an identifier or bracket before （, a block
# opener's ： at the line's end, an argument list's ， between identifiers. (The pattern opens
# with the class of the three marks so that re skips in C to the next one; the lookbehinds
# then read the character before it.)
FULLWIDTH_IN_CODE = re.compile(r"[（，：](?:(?<=[A-Za-z_0-9\])]（)|(?<=[A-Za-z_0-9)]，)(?=[ \t]*[A-Za-z_])"
                               r"|(?<=[A-Za-z_0-9)]：)(?=[ \t]*$))", re.MULTILINE)
_STRING = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|“[^”\n]*”|‘[^’\n]*’|`[^`\n]*`")
_COMMENT = re.compile(r"(?:#|//|--\s).*$")
_TO_ASCII = str.maketrans("（）：，；", "():,;")


def garbled_code_lines(text: str) -> list[str]:
    """Lines that are code once their full-width punctuation is made ASCII (strings and comments
    left out, no Chinese outside them), and that hold such punctuation."""
    found = []
    for line in text.split("\n"):
        core = _COMMENT.sub("", _STRING.sub('""', line))
        if core.strip() and not HAN.search(core) and FULLWIDTH_IN_CODE.search(core) \
                and is_code_line(core.translate(_TO_ASCII)):
            found.append(line.strip())
    return found


# ------------------------------------------------------------------ debris

CALCULATOR_MARKUP = re.compile(r"<<[^<>\n]{1,80}=[^<>\n]{1,40}>>")
STRIPPED_LATEX = re.compile(r"(?<![\\A-Za-z])d?frac\{[^{}\n]*\}\{")
# a line that opens with a clause mark and goes on with the sentence (not a list of the marks)
BROKEN_LINE = re.compile(r"\n[ \t]*[，、；][\u4e00-\u9fff]")


def _debris(reply: str) -> Drop | None:
    if "<<" in reply and (match := CALCULATOR_MARKUP.search(reply)):
        return Drop("calculator_markup", f"a calculator's markup left in: {match.group()}")
    if "frac{" in reply and (match := STRIPPED_LATEX.search(reply)):
        return Drop("stripped_latex", f"LaTeX without its backslashes: {match.group()}")
    if "\n" in reply and (match := BROKEN_LINE.search(reply)):
        return Drop("broken_lines", f"a line opens with {match.group().strip()[:1]!r}: a sentence cut by debris")
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
