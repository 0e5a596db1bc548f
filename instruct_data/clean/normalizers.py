"""Normalizers: rules that change text. The manifest counts the rows each one changed."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from instruct_data.clean.base import Normalizer, RuleSettings, split_code
from instruct_data.clean.structure import TABLE_LINE, is_art_line, is_code_line

# ------------------------------------------------------------------ fix_unicode

# Mojibake leaves Latin-1/cp1252 letters (Ã, â€, æ, ç ...) or U+FFFD behind; clean Chinese text
# rarely holds them, so ftfy (slow, pure Python) runs only on texts where one appears.
MOJIBAKE_HINT = re.compile("[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122\ufffd]")


class FixUnicodeSettings(RuleSettings):
    normalization: Literal["NFC", "NFKC", "none"] = "NFC"


class FixUnicode(Normalizer):
    """Mojibake (UTF-8 read as Latin-1/cp1252), broken surrogates, HTML escapes, via ftfy.

    Full-width characters and curly quotes are left as they are: Chinese text uses both.
    """

    name = "fix_unicode"
    Settings = FixUnicodeSettings

    @cached_property
    def _config(self):
        import ftfy

        normalization = None if self.settings.normalization == "none" else self.settings.normalization
        return ftfy.TextFixerConfig(fix_character_width=False, uncurl_quotes=False, fix_latin_ligatures=False,
                                    fix_line_breaks=False, unescape_html=False, normalization=normalization,
                                    explain=False)

    def normalize(self, text: str) -> str:
        if not MOJIBAKE_HINT.search(text):
            return text
        import ftfy

        return ftfy.fix_text(text, config=self._config)


# ------------------------------------------------------------------ strip_control

# C0/C1 controls except tab and newline; zero-width and direction marks; BOM. The zero-width
# joiner (U+200D) stays: emoji sequences need it.
_CONTROL = [c for c in range(0x00, 0x20) if c not in (0x09, 0x0A)] + [0x7F] + list(range(0x80, 0xA0))
_INVISIBLE = [0x200B, 0x200C, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061, 0x2062,
              0x2063, 0x2064, 0xFEFF, 0x00AD]
CONTROL_TABLE = {c: None for c in _CONTROL + _INVISIBLE}
CONTROL_TABLE[0x0D] = "\n"  # a lone carriage return is a line break; \r\n becomes \n\n, tidied below
CONTROL_CHARS = re.compile("[" + "".join(re.escape(chr(c)) for c in CONTROL_TABLE) + "]")


class StripControl(Normalizer):
    """Drop control characters, zero-width characters and direction marks."""

    name = "strip_control"

    def normalize(self, text: str) -> str:
        if not CONTROL_CHARS.search(text):
            return text
        return text.replace("\r\n", "\n").translate(CONTROL_TABLE)


# ------------------------------------------------------------------ tidy_whitespace

# (The lookbehind starts a match only where a run of spaces starts: without it a long run with no
# newline after it was read again from each of its spaces, n² steps.)
TRAILING_SPACE = re.compile(r"(?<![ \t\xa0])[ \t\xa0]+\n")
MANY_NEWLINES = re.compile(r"\n{3,}")
INNER_SPACES = re.compile(r"(?<=\S)[ \t\xa0]{2,}")
# A line of vertical arithmetic (竖式): digits, signs and rules, laid out in columns.
VERTICAL_ARITHMETIC = re.compile(r"^[\s\d.,+\-−×÷*/=＝＋－_—─￣‾|()（）余…]+$")


class TidyWhitespace(Normalizer):
    """Trim the text, drop spaces at line ends, collapse runs of blank lines, and collapse runs of
    inner spaces that are stray gaps in a sentence (`someone  is`, `很好，  我们`): on a line whose
    every run stands between two characters of running text.

    Layout is kept as it is: code blocks (```...``` and `...`), indentation at the start of a
    line (the first line's too when a laid-out block opens the text), the gap after a list
    marker, and every inner run of a line where one gap is layout: beside a digit, a bracket, a
    blank to fill in or a symbol (`风车：（    ）`, `电能   →   风车`, `f(x)  # note`), before an
    item marker (`A.北京  B.上海`), two gaps of three spaces or more, a tab; and the inner spaces of
    code lines, tables, ASCII art, vertical arithmetic (竖式), lines of worked maths
    (`3x + 2y = 18  （1）`) and lines laid out with their neighbours (next to a line that also holds
    a run, or sharing a column with one nearby).
    """

    name = "tidy_whitespace"

    @staticmethod
    def _untidy(text: str) -> bool:
        # (leaves_alone_text below makes the same tests: change both together.)
        # Substring tests (memchr-fast) before any regex: most texts are already tidy.
        return (text[:1].isspace() or text[-1:].isspace() or "  " in text or "\t" in text or "\r" in text
                or " \n" in text or "\n\n\n" in text or "\xa0" in text)

    def normalize(self, text: str) -> str:
        if not self._untidy(text):
            return text
        text = text.replace("\r\n", "\n")
        pieces = []
        for piece, is_code in split_code(text):
            if not is_code:
                piece = piece.replace("\xa0", " ")
                piece = TRAILING_SPACE.sub("\n", piece)
                piece = MANY_NEWLINES.sub("\n\n", piece)
                if INNER_SPACES.search(piece):
                    piece = _collapse_prose_spaces(piece)
            pieces.append(piece)
        return _trim(("".join(pieces)))


# A line of worked maths (`3x + 2y = 18  （1）`): its gaps set notes apart, as in a 竖式.
EQUATION_LINE = re.compile(r"[=＝≈≤≥<>]")
LIST_MARKER = re.compile(r"^\s*(?:[-*+•·]|\d{1,3}[.)、]|[（(]\d{1,3}[)）])[ \t]{2,}")
LEADING_BLANK_LINES = re.compile(r"^(?:[ \t\xa0]*\n)+")


def _trim(text: str) -> str:
    """Blank lines and spaces off both ends; the first line keeps its indentation when it opens a
    laid-out block (`      1 2 3` over `  ×   4 5`)."""
    text = LEADING_BLANK_LINES.sub("", text.rstrip())
    first, newline, rest = text.partition("\n")
    if first[:1] in (" ", "\t") and not (newline and (rest[:1] in (" ", "\t") or _laid_out(first.strip()))):
        return first.lstrip() + newline + rest
    return text


def _collapse_prose_spaces(text: str) -> str:
    lines = text.split("\n")
    ends = [_run_ends(line) for line in lines]
    for index, line in enumerate(lines):
        if not ends[index]:
            continue
        # a block of lines spaced out alike (equations with their notes after a gap), or columns
        # shared with a line nearby (a rule line such as ------ may sit between them)
        beside = (index > 0 and ends[index - 1]) or (index + 1 < len(lines) and ends[index + 1])
        nearby = ends[max(0, index - 2):index] + ends[index + 1:index + 3]
        if beside or any(ends[index] & other for other in nearby) or _laid_out(line):
            continue
        marker = LIST_MARKER.match(line)  # `1.  text` aligns its text with `10. text`: kept
        start = marker.end() if marker else 0
        lines[index] = line[:start] + INNER_SPACES.sub(" ", line[start:])
    return "\n".join(lines)


# What stands on both sides of a stray gap in a sentence: letters (Chinese, Latin, accented) and
# the punctuation of running text. A gap beside anything else (a digit, a bracket or blank to
# fill in `（    ）`, `__  __`, an arrow, an operator, a code comment's `#` or `//`, `]`) may be
# layout and is kept.
PROSE_SIDE = re.compile(r"[^\W\d_]|[，。、；：！？,.;:!?\"'“”‘’）》」』】…]")
# An item marker after a gap (`A.北京  B.上海`, `① …  ② …`, `(1) …  (2) …`): the gap sets items apart.
ITEM_MARKER = re.compile(r"(?:[A-Za-z]|\d{1,3})[.．、)）]|[（(](?:[A-Za-z]|\d{1,3})[)）]|[①-⑳]")


def _prose_gaps(line: str, start: int = 0) -> bool:
    """True when every run of inner spaces on the line sits between two characters of running
    text (`someone  is`, `很好，  我们`): a stray gap in a sentence, not a column, a blank to fill
    in, a separator or an alignment."""
    for match in INNER_SPACES.finditer(line, start):
        after = match.end()
        if after >= len(line):
            continue  # spaces at the end of the line: not inner
        if ("\t" in match.group() or not (PROSE_SIDE.match(line[match.start() - 1]) and PROSE_SIDE.match(line[after]))
                or ITEM_MARKER.match(line, after)):
            return False
    return True


def _run_ends(line: str) -> set[int]:
    """The columns where the line's runs of inner spaces end (where its next column starts)."""
    if "  " not in line and "\t" not in line and "\xa0" not in line:
        return set()
    return {match.end() for match in INNER_SPACES.finditer(line.rstrip())}


def _laid_out(line: str) -> bool:
    """A line whose spacing is layout whatever its neighbours: columns (two gaps of three spaces
    or more, or a gap beside something that is not running text), vertical arithmetic, worked
    maths, code, a table row, ASCII art."""
    runs = INNER_SPACES.findall(line.rstrip())
    return (len(runs) >= 2 and all(len(run) >= 3 for run in runs) or bool(runs) and not _prose_gaps(line.rstrip())
            or bool(VERTICAL_ARITHMETIC.match(line)) or bool(EQUATION_LINE.search(line)) or is_code_line(line)
            or "|" in line and bool(TABLE_LINE.match(line)) or is_art_line(line))


# ------------------------------------------------------------------ to_simplified


class ToSimplifiedSettings(RuleSettings):
    enabled: bool = False
    config: Literal["t2s", "tw2s", "hk2s", "tw2sp"] = "t2s"


class ToSimplified(Normalizer):
    """Traditional Chinese to Simplified, with OpenCC (off unless asked)."""

    name = "to_simplified"
    Settings = ToSimplifiedSettings

    @cached_property
    def _converter(self):
        import opencc

        return opencc.OpenCC(self.settings.config)

    def normalize(self, text: str) -> str:
        return self._converter.convert(text)


# ------------------------------------------------------------------ fullwidth_to_halfwidth

# Only letters and digits: Chinese punctuation (，。：？！（）) stays full-width.
FULLWIDTH_TABLE = {c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]}
FULLWIDTH_CHARS = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


class FullwidthSettings(RuleSettings):
    enabled: bool = False


class FullwidthToHalfwidth(Normalizer):
    """Full-width ASCII letters and digits (Ａ１) to half-width (A1) (off unless asked)."""

    name = "fullwidth_to_halfwidth"
    Settings = FullwidthSettings

    def normalize(self, text: str) -> str:
        if not FULLWIDTH_CHARS.search(text):
            return text
        return text.translate(FULLWIDTH_TABLE)


# ------------------------------------------------------------------ doubled_label

# A field that opens with its own label ("输入：…", "Input: 输入：…", "输出：…"): the template
# labels the field already (Input: …), so the row would read "Input: 输入：…". One or more
# labels, then the content on the same line or the next.
DOUBLED_LABEL = re.compile(r"^\s*(?:(?:Input|Output|输入|输出)\s*[:：]\s*)+(?=\S)", re.IGNORECASE)


class DoubledLabel(Normalizer):
    """Drop a field label the field opens with (输入：, Input:, 输出：, Output:), which the
    template adds again ("Input: 输入：…")."""

    name = "doubled_label"

    @staticmethod
    def may_change(text: str) -> bool:
        # The pattern is anchored at the start: trying it there costs less than looking for a colon.
        return DOUBLED_LABEL.match(text) is not None

    def normalize(self, text: str) -> str:
        if not self.may_change(text):
            return text
        return DOUBLED_LABEL.sub("", text, count=1)


# ------------------------------------------------------------------ one test for the usual text

# Every character fix_unicode and strip_control look for, and tidy_whitespace's tab, carriage
# return and no-break space, in one class: one scan of a text instead of one per rule.
_ANY_HINT = re.compile(MOJIBAKE_HINT.pattern[:-1] + CONTROL_CHARS.pattern[1:-1] + "\t\r\xa0]")
# _ANY_HINT, or tidy_whitespace's "  ", " \n" and "\n\n\n", in one scan: the pattern opens with a
# class (the hints, space and newline), so re skips in C to the next such character and only
# there looks at what follows (space and newline are not hints: the lookbehinds tell them apart).
_ANY_HINT_OR_SPACING = re.compile(_ANY_HINT.pattern[:-1] + " \n](?:(?<= )[ \n]|(?<=\n)\n\n|(?<="
                                  + _ANY_HINT.pattern + "))")
_QUICK = frozenset({"fix_unicode", "strip_control", "tidy_whitespace", "doubled_label"})


def leaves_alone(names) -> bool:
    """True when `leaves_alone_text` speaks for every one of these normalizers."""
    return _QUICK.issuperset(names)


def leaves_alone_text(text: str) -> bool:
    """True only for a text that fix_unicode, strip_control, tidy_whitespace and doubled_label
    would all return unchanged (each one's own first test, joined): most texts."""
    # TidyWhitespace._untidy's tests, less the characters _ANY_HINT looks for; its substring tests
    # are in _ANY_HINT_OR_SPACING (one scan instead of four: tests/test_clean_fastpath.py).
    return not (text[:1].isspace() or text[-1:].isspace() or _ANY_HINT_OR_SPACING.search(text)
                or DoubledLabel.may_change(text))


NORMALIZERS: tuple[type[Normalizer], ...] = (FixUnicode, StripControl, TidyWhitespace, DoubledLabel, ToSimplified,
                                              FullwidthToHalfwidth)
