"""A final answer that contradicts the working just above it.

    mismatch("5 + 3 = 8\n答：小明一共有9个苹果。", "小明有5个苹果…")   # Mismatch(result='8', stated='9个', …)

A worked solution ends on a result, the last closed equation `arithmetic` reads (or an unknown
it solved, `x = 24`), and then states its answer: the rest of that equation's sentence and each
later sentence with 答：, 所以, 因此, 答案是, 最终, 综上 … A statement that gives a *new* number
for the result (one the question and the working never named) that is not the result, in the
result's unit (or with no unit, or as the sentence's only new number), contradicts the working:
`5 + 3 = 8` then `答：一共有9个`; `120 = 5x`, `x = 24` then `宽为20厘米`.

Left alone, so that a reply is flagged only where the contradiction is plain:
- more working after the result (another sign between numbers, 除以, 倍 …), or a number said on
  the way in a sentence that is not a statement (`再摸出1个球`, `198 的个位数字是 8`);
- a remainder beside the quotient (`5 ÷ 2 = 2 余 1`, 每份2个，还剩1个);
- a result the statement rounds (to its shown decimals, or to a whole number either way:
  `13 ÷ 2 = 6.5`, `最多能买6个`), or gives as a percentage (`0.75`, 答案是75%);
- a statement that hedges or leaves the reader's ground (约, 取整, 不能, 或, 如果, 验, 倍, `/`, `%`,
  a power, LaTeX), or that is not Chinese (code, English);
- a number in another unit (`0.0033公里/秒`, 答案3.3米/秒), several new numbers where the result has
  no unit, a heading's or list item's number;
- a result that is a number of the question (`3 × 5 = 15个`, 与题目相符): the working checks a given;
- a step of a column calculation (`5-5=0，4-3=1`, then 答案是15元): single digits nobody named;
- several unknowns set on one line (`a = 4, b = 2, c = 1`);
- statements between two equations: there the prose goes on to other quantities.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from instruct_data.clean.arithmetic import _UNIT, located, normalise, plain_text

# Words that open the statement of the answer.
_ANSWER = re.compile(r"答[:：]|答案(?:是|为|[:：])|所以|因此|最终|最后|综上|故|总之|一共|总共")
# Words after which a stated number may differ from the result on purpose.
_HEDGED = re.compile(r"取整|舍|进一|保留|约|大概|左右|近似|不能|无法|不够|整数|整个|余数|多出|不到|超过|以上|以下"
                     r"|或|~|～|\d\s*[到至]\s*\d|之间|分之|/|\d\s*比\s*\d|倍|%|％|百分|折|假设|如果|若|验|检查|核对"
                     r"|\^|\{|\\")  # a power, or LaTeX the reader left as it is (`\\boxed{10^{4}}`)
# A number in the statement, with its unit (`9个`, `2.5元`, `12 cm`).
_STATED = re.compile(rf"(?<![\d.,])(\d+(?:\.\d+)?)[ \t]?({_UNIT})?(?![\d.,])")
# After the last equation, more working: another sign between numbers, or a fraction.
_MORE_WORK = re.compile(r"\d\s*[-+*/×÷=≈<>]\s*\d|[=≈]|除以|乘以|加上|减去|相加|相减|相乘|相除|一半|倍")
# A remainder written after the quotient: `= 2 余 1`, `= 4（余1）`, `= 1 ... 3`, `= 0 （余数为 69）`.
_REMAINDER_AFTER = re.compile(r"[ \t]*[（(]?[ \t]*(?:余数?(?:为|是)?|…+|\.{2,}|remainder)[ \t]*\d+(?:\.\d+)?[ \t]*[）)]?")
# A list item's number (`4. `, `2、`, `(3)`) or bold marks: not a number the text states.
_LIST_MARK = re.compile(r"^\s*(?:\d{1,2}[.、)）]|[(（]\d{1,2}[)）]|[-*•])?\s*|\*\*|#+|步骤\s*\d+|第\s*\d+\s*步|[Ss]tep\s*\d+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
# An unknown solved: `x = 23`, `X=15元` (a letter alone before `=`, one number after it).
_SOLVED = re.compile(rf"(?<![A-Za-z0-9_])([A-Za-z])[ \t]*=[ \t]*(\d+(?:\.\d+)?)[ \t]?({_UNIT})?(?![\d.])"
                     r"(?![ \t]*[-+*/^(%A-Za-z])")
_RESULT = re.compile(rf"^(\d+(?:\.\d+)?)({_UNIT})?$")
# Sentences end at these; the statement of the answer is one sentence.
_SENTENCE = re.compile(r"[^。！？!?\n]*[。！？!?\n]?")


@dataclass(frozen=True)
class Mismatch:
    result: str  # the working's last result, as the text shows it (`8个`)
    stated: str  # the number the statement gives for it (`9个`)
    statement: str  # the statement, stripped


def mismatch(reply: str, question: str = "") -> Mismatch | None:
    """The final statement (答：…, 所以…) that contradicts the result of the working's last
    equation, if the reply has one. Statements between equations are not checked: there the
    prose goes on to other quantities (`0.67小时，那么他到学校的时间是7.67小时`)."""
    if "=" not in reply and "＝" not in reply:
        return None
    plain = plain_text(reply)
    last = None
    for last in located(plain, question):
        pass
    given = _numbers(question)
    solved = None
    for solved in _SOLVED.finditer(plain):
        pass
    if solved is not None and "=" not in plain[solved.end():] and (last is None or solved.start() >= last[1]) \
            and _alone(plain, solved.start()):
        # the working ends on a solved unknown (`x = 23`): that is its result
        shown = solved.group(2) + (solved.group(3) or "")
        return _against(plain, given, solved.start(), solved.end(), shown, None, plain[solved.end():])
    if last is None or last[2].wrong:
        return None  # no equation, or a wrong one (`wrong_arithmetic` says so)
    eq_start, eq_end, equation = last
    return _against(plain, given, eq_start, eq_end, equation.sides[-1], "".join(equation.sides[:-1]),
                    plain[eq_end:])


def _against(plain: str, given: set[Fraction], start: int, end: int, shown: str, operands: str | None,
             after: str) -> Mismatch | None:
    """The statement in `after` (the text after the result) that contradicts the result `shown`,
    which the working computes from `operands` (None: an unknown it solved)."""
    result = _RESULT.match(shown)
    if result is None:
        return None  # not one number
    value, unit = Fraction(result.group(1)), result.group(2)
    remainder = _REMAINDER_AFTER.match(after)
    if remainder:  # `5 ÷ 2 = 2 余 1`: the remainder is part of the result, stated beside it
        after = after[remainder.end():]
    if _MORE_WORK.search(after):
        return None  # more working after it: the statement may be about something else
    if value in given:
        return None  # a given of the question worked back (`3 × 5 = 15个`, 与题目相符): a check
    before = given | _numbers(plain[:start])
    if operands is not None and _digit_step(_numbers(operands), before):
        return None  # `4-3=1` of a column subtraction: a step on digits, not on the problem's quantities
    # A number of the question or of the working is not a new answer: the statement may name a
    # given or an earlier result (`10 - 7 = 3元`, 所以他花了7元) beside the answer.
    known = before | _numbers(plain[start:end]) | (_numbers(remainder.group(0)) if remainder else set())
    if any(any(c.isdigit() for c in _LIST_MARK.sub("", other)) for other in _others(after)):
        return None  # a number said on the way (`再摸出1个球`, `198 的个位数字是 8`): working in words
    for sentence in _statements(after):
        found = _contradiction(sentence, value, unit, known)
        if found is not None:
            return Mismatch(shown, found, sentence.strip())
    return None


def _alone(plain: str, start: int) -> bool:
    """The solved unknown is the only one set on its line (`a = 4, b = 2, c = 1` names three)."""
    line_start = plain.rfind("\n", 0, start) + 1
    line_end = plain.find("\n", start)
    line = plain[line_start:line_end if line_end >= 0 else len(plain)]
    return len(re.findall(r"(?<![A-Za-z])[A-Za-z][ \t]*=", line)) == 1


def _others(conclusion: str) -> list[str]:
    """The sentences of the conclusion that `_statements` does not read as statements."""
    sentences = [m.group(0) for m in _SENTENCE.finditer(conclusion) if m.group(0).strip()]
    own = not conclusion.lstrip(" \t").startswith("\n")
    return [s for s in sentences[own:] if not _ANSWER.search(s)]


def _digit_step(operands: set[Fraction], before: set[Fraction]) -> bool:
    """Single digits that neither the question nor the working named before: a step of a column
    calculation (`先算个位5-5=0，再算十位4-3=1`)."""
    return not operands & before and all(n.denominator == 1 and 0 <= n <= 9 for n in operands)


def _statements(conclusion: str) -> list[str]:
    """The sentences of the conclusion that state an answer: the rest of the equation's own
    sentence (`= 7，答案是7`), and each later sentence with a marker (答：, 所以, 因此 …)."""
    sentences = [m.group(0) for m in _SENTENCE.finditer(conclusion) if m.group(0).strip()]
    if not sentences:
        return []
    # the first sentence is the equation's own only when no line break comes first
    own = not conclusion.lstrip(" \t").startswith("\n")
    return sentences[:own] + [s for s in sentences[own:] if _ANSWER.search(s)]


def _contradiction(sentence: str, value: Fraction, unit: str | None, known: set[Fraction]) -> str | None:
    """The number this sentence states for the result when it is not the result, else None."""
    if _HEDGED.search(sentence) or not _CJK.search(sentence):
        return None  # hedged, or not a Chinese sentence (code, English: not what this reads)
    stated = [(m.group(1), m.group(2)) for m in _STATED.finditer(_LIST_MARK.sub("", sentence))]
    if not stated or any(_agrees(value, number) for number, _ in stated):
        return None
    # the sentence's new numbers: of the result's unit, or, for a result without one, the only new number
    new = [(number, u) for number, u in stated if Fraction(number) not in known]
    if len(stated) == 1:
        # the sentence's only number (`答案：12。`) is the answer, unless it is in another unit
        # (`0.0033公里/秒` stated as `3.3米/秒`: a change of unit this reader does not compute)
        new = [(number, u) for number, u in new if u is None or unit is None or u == unit]
    elif unit is None:
        if len(new) != 1:
            return None  # several new numbers and no unit to tell which one is the result
    else:
        new = [(number, u) for number, u in new if u == unit]
    if not new:
        return None
    number, u = new[0]
    return number + (u or "")


def _numbers(text: str) -> set[Fraction]:
    return {Fraction(m.group(0).replace(",", "")) for m in re.finditer(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?",
                                                                      normalise(text))}


def _agrees(value: Fraction, shown: str) -> bool:
    """The stated number is the result, rounded to its shown decimals or to a whole number."""
    number = Fraction(shown)
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    unit = Fraction(1, 10 ** decimals)
    if abs(number - value) <= unit / 2 or number in (math.floor(value), math.ceil(value)):
        return True
    return value * 100 == number  # 0.75 stated as 75 (per cent)


__all__ = ["Mismatch", "mismatch", "normalise"]
