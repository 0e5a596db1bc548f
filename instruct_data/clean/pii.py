"""Personal data in a row (phone numbers, ID card numbers, e-mail addresses): masked or rejected,
without rewriting facts.

What is matched: mobile numbers (+86 optional), landlines written with their area code
(010-12345678, (021)12345678), 400/800 service numbers, ID card numbers whose GB 11643 check
digit is right, and e-mail addresses, also where Chinese text touches them
(请发邮件到zhangsan@example.com联系我们 finds the address only). Full-width digits and ＠ are
read as their ASCII forms (the text keeps its characters; only the match is replaced).

What is left alone, because it is not a person's data:
- code: fenced and inline code and recognisable code lines (`is_valid_email('a@b.com')`);
- arithmetic: a number next to = × ÷ + − 次方 乘 等于 … (2的34次方等于17179869184), and that
  number anywhere else in the row (`123456 × 142857 = 17636553792，所以答案是17636553792`);
- results: the numbers of a reply to a question that computes (`123456789乘以111等于多少` →
  `13703703579`, `2^34=?` → `17179869184`);
- example and placeholder addresses: example.com, test, localhost, xxx, your_email@…, and
  `git@github.com`-style SSH remotes.

Every mask is counted per kind (`masked`), and the Cleaner reports them to the manifest.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from pydantic import Field

from instruct_data.clean.base import CODE_SPAN, Drop, Filter, RuleSettings
from instruct_data.clean.structure import STRUCTURE_HINT, is_code_line
from instruct_data.schema import Conversation

KINDS = ("phone", "landline", "service_number", "id_card", "email")

# Full-width digits, letters, ＠ + - . read as ASCII: one character for one, so positions hold.
_FULLWIDTH = {c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B),
                                      0xFF20, 0xFF0B, 0xFF0D, 0xFF0E, 0xFF3F]}

# One scan for any character _FULLWIDTH maps: str.translate with a dict costs ~40 ns a character
# even where it changes nothing, most texts hold none of them, and the text is then its own plain form.
_ANY_FULLWIDTH = re.compile("[" + "".join(map(chr, sorted(_FULLWIDTH))) + "]")


def _plain(text: str) -> str:
    """text.translate(_FULLWIDTH): full-width digits, letters and ＠ + - . _ as ASCII."""
    return text.translate(_FULLWIDTH) if _ANY_FULLWIDTH.search(text) else text


MOBILE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![\d.])")
LANDLINE = re.compile(r"(?<![\d.])(?:[(（]0\d{2,3}[)）][- ]?|0\d{2,3}-)[2-9]\d{6,7}(?![\d.])")
SERVICE = re.compile(r"(?<![\d.])[48]00[- ]?\d{3}[- ]?\d{4}(?![\d.])")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx]"
                     r"(?![0-9A-Za-z])")
# ASCII only on both sides: \w would take the Chinese characters touching an address into it.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
PATTERNS = {"phone": MOBILE, "landline": LANDLINE, "service_number": SERVICE, "id_card": ID_CARD, "email": EMAIL}

NUMBER_RUN = re.compile(r"\d\d\d")  # every number kind holds one (faster to scan than \d{3}); \d takes full-width digits too
ARITHMETIC_BEFORE = re.compile(r"(?:[=×÷*/^＝+＋−-]|次方|乘以?|等于|加上?|减去?|除以?|之和|之积|的积|的和)\s*$")
ARITHMETIC_AFTER = re.compile(r"^\s*(?:[=×÷*/^＝+＋−]|-\s*\d|次方|乘|等于|加|减|除)")
PLACEHOLDER_DOMAIN = re.compile(r"(?:^|\.)(?:example|test|invalid|localhost|domain|yourdomain|xxx+|x+)\.|"
                                r"(?:^|\.)(?:example|test|invalid|localhost)$|xxx", re.IGNORECASE)
PLACEHOLDER_LOCAL = re.compile(r"^(?:git|your[._-]?\w*|you|user(?:name)?|name|email|someone|xxx+|test|example|"
                               r"foo|bar|admin)$|xxx|your", re.IGNORECASE)


def valid_id_card(number: str) -> bool:
    """The GB 11643 check digit: random 18-digit numbers rarely pass it."""
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS))
    return "10X98765432"[total % 11] == number[17].upper()


def _placeholder_email(address: str) -> bool:
    local, _, domain = address.partition("@")
    return bool(PLACEHOLDER_LOCAL.search(local) or PLACEHOLDER_DOMAIN.search(domain))


def _in_arithmetic(text: str, start: int, end: int) -> bool:
    return bool(ARITHMETIC_BEFORE.search(text[max(0, start - 6):start]) or ARITHMETIC_AFTER.search(text[end:end + 4]))


LONG_NUMBER = re.compile(r"(?<![\d.])\d[\d,]{4,}\d(?![\d.])")
ARITHMETIC_SIGN = re.compile(r"[=×÷*/^＝+＋−]|次方|乘|等于|加|减|除|之和|之积")
# Stricter than _in_arithmetic: a sign between two operands (`+86 139…` is a country code, not a sum).
OPERAND_BEFORE = re.compile(r"(?:[\d)）]\s*[=×÷*/^＝+＋−-]|等于|次方|乘以?|除以?|加上?|减去?)\s*$")
OPERAND_AFTER = re.compile(r"^\s*(?:[=×÷*/^＝+＋−-]\s*[\d(（]|次方|乘|等于|加|减|除)")


def arithmetic_numbers(texts) -> frozenset[str]:
    """The digits of every long number that stands in arithmetic somewhere in these texts: the same
    number elsewhere in the row (the answer repeated) is a result, not a phone number."""
    found = set()
    for text in texts:
        if not text or not ARITHMETIC_SIGN.search(text):
            continue
        plain = _plain(text)
        for match in LONG_NUMBER.finditer(plain):
            start, end = match.span()
            if OPERAND_BEFORE.search(plain[max(0, start - 8):start]) or OPERAND_AFTER.search(plain[end:end + 6]):
                found.add(_digits(match.group(0)))
    return frozenset(found)


# A question that computes: two numbers joined by an operator (not `-`, which also joins an area
# code to a number: `010-12345678`), a power (`2的34次方`), or a difference that equals something.
COMPUTATION = re.compile(r"\d\s*(?:[×÷*/^+＋−]|乘以?|除以?|加上?|减去?)\s*\d|\d\s*的\s*\d+\s*次[方幂]"
                         r"|\d\s*-\s*\d[\d\s()（）+\-×÷*/^]*(?:=|＝|等于)")


def computed_results(turns) -> frozenset[str]:
    """The digits of every long number in a reply whose question computes: the reply's numbers
    are its results (`123456789乘以111等于多少` → `13703703579`), not phone numbers."""
    found = set()
    question = ""
    for turn in turns:
        if turn.role == "user":
            question = turn.full_text
        elif turn.role == "assistant" and question and COMPUTATION.search(_plain(question)):
            found.update(_digits(m.group(0)) for m in LONG_NUMBER.finditer(_plain(turn.text)))
    return frozenset(found)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def code_ranges(text: str) -> list[tuple[int, int]]:
    """(start, end) of the code in a text: fenced and inline spans, and code lines."""
    if not STRUCTURE_HINT.search(text):
        return []
    ranges = [m.span() for m in CODE_SPAN.finditer(text)] if "`" in text else []
    position = 0
    for line in text.split("\n"):
        if is_code_line(line):
            ranges.append((position, position + len(line)))
        position += len(line) + 1
    return ranges


class PiiSettings(RuleSettings):
    mode: Literal["mask", "reject"] = "mask"
    phone: bool = True
    landline: bool = True
    service_number: bool = Field(True, description="400/800 numbers")
    id_card: bool = True
    email: bool = True
    masks: dict[Literal["phone", "landline", "service_number", "id_card", "email"], str] = Field(
        default_factory=lambda: {"phone": "[PHONE]", "landline": "[PHONE]", "service_number": "[PHONE]",
                                 "id_card": "[ID_CARD]", "email": "[EMAIL]"})


class Pii(Filter):
    """Phone numbers (mobile, landline, 400/800), ID card numbers (check digit verified) and
    e-mail addresses, in every turn and the system text: masked or rejected. Code, arithmetic and
    placeholder addresses are left alone (see the module docstring)."""

    name = "pii"
    reasons = ("pii",)
    Settings = PiiSettings

    def __init__(self, settings=None):
        super().__init__(settings)
        self._kinds = [kind for kind in KINDS if getattr(self.settings, kind)]
        self.masked: Counter = Counter()  # kind -> masks made, over every row
        self.row_masked: Counter = Counter()  # kind -> masks made in the last row
        self._row_texts: list[str | None] = []  # the row being judged, for `protected`
        self._row_turns: list = []
        self._protected: frozenset[str] | None = None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of each piece of personal data in the text, in order, not overlapping."""
        # \d is any decimal digit, full-width ones (０-９) included: one scan finds both.
        if "@" not in text and "＠" not in text and NUMBER_RUN.search(text) is None:
            return []
        plain = _plain(text)
        found: list[tuple[int, int, str]] = []
        code = None
        has_at, has_number = "@" in plain, NUMBER_RUN.search(plain) is not None
        for kind in self._kinds:
            if not (has_at if kind == "email" else has_number):
                continue
            for match in PATTERNS[kind].finditer(plain):
                start, end = match.span()
                value = match.group(0)
                if kind == "id_card" and not valid_id_card(value):
                    continue
                if kind == "email" and _placeholder_email(value):
                    continue
                if kind != "email" and (_in_arithmetic(plain, start, end) or _digits(value) in self.protected):
                    continue
                if code is None:
                    code = code_ranges(plain)
                if any(a < end and start < b for a, b in code):
                    continue
                if any(a < end and start < b for a, b, _ in found):
                    continue
                found.append((start, end, kind))
        return sorted(found)

    @property
    def protected(self) -> frozenset[str]:
        """The digits of the row's numbers in arithmetic and of the results of its computing
        questions, worked out only when a number might be masked."""
        if self._protected is None:
            self._protected = arithmetic_numbers(self._row_texts) | computed_results(self._row_turns)
        return self._protected

    def find(self, text: str) -> str | None:
        """The kind of the first personal data found in the text, or None."""
        spans = self.spans(text)
        return spans[0][2] if spans else None

    def mask(self, text: str) -> str:
        spans = self.spans(text)
        if not spans:
            return text
        pieces, position = [], 0
        for start, end, kind in spans:
            pieces += [text[position:start], self.settings.masks.get(kind, f"[{kind.upper()}]")]
            position = end
            self.row_masked[kind] += 1
        pieces.append(text[position:])
        return "".join(pieces)

    def filter(self, conversation: Conversation) -> Drop | None:
        if self.row_masked:  # (an empty one is reused: most rows hold nothing to mask)
            self.row_masked = Counter()
        self._row_texts = [conversation.system, *(t.text for t in conversation.turns), *(t.input for t in conversation.turns)]
        self._row_turns = conversation.turns
        self._protected = None
        if self.settings.mode == "reject":
            texts = [("system", conversation.system)] if conversation.system else []
            texts += [(turn.role, turn.full_text) for turn in conversation.turns]
            for role, text in texts:
                kind = self.find(text)
                if kind:
                    return Drop("pii", f"the {role} text holds a {kind.replace('_', ' ')}")
            return None
        changed = False
        for turn in conversation.turns:
            new = self.mask(turn.text)
            if new != turn.text:
                turn.text, changed = new, True
            if turn.input:
                new = self.mask(turn.input)
                if new != turn.input:
                    turn.input, changed = new, True
        if conversation.system:
            new = self.mask(conversation.system)
            if new != conversation.system:
                conversation.system, changed = new, True
        if changed:
            self.changed += 1
            self.masked.update(self.row_masked)
        return None
