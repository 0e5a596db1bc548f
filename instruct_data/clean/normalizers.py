"""Normalizers: rules that change text. The manifest counts the rows each one changed."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from instruct_data.clean.base import Normalizer, RuleSettings, split_code

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

TRAILING_SPACE = re.compile(r"[ \t\xa0]+\n")
MANY_NEWLINES = re.compile(r"\n{3,}")
INNER_SPACES = re.compile(r"(?<=\S)[ \t\xa0]{2,}")


class TidyWhitespace(Normalizer):
    """Trim the text, drop spaces at line ends, collapse runs of blank lines and of inner spaces.

    Code blocks (```...``` and `...`) and indentation at the start of a line are kept as they are.
    """

    name = "tidy_whitespace"

    @staticmethod
    def _untidy(text: str) -> bool:
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
                piece = INNER_SPACES.sub(" ", piece)
            pieces.append(piece)
        return "".join(pieces).strip()


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

    def normalize(self, text: str) -> str:
        if ":" not in text[:40] and "：" not in text[:40]:
            return text
        return DOUBLED_LABEL.sub("", text, count=1)


NORMALIZERS: tuple[type[Normalizer], ...] = (FixUnicode, StripControl, TidyWhitespace, DoubledLabel, ToSimplified,
                                              FullwidthToHalfwidth)
