"""Reading the arithmetic in a text: whole closed equations, checked with exact fractions.

    for eq in equations("计算得9×2-8=10，即(75-15×4)÷2.5+4=10"):
        eq.sides        # ['9*2-8', '10'], then ['(75-15*4)/2.5+4', '10']
        eq.wrong        # None when every '=' holds, else (left, right, value of left)

How a chain is read:
- the text is normalised first: full-width digits and signs, × ÷ − ＝ （） ％ and an `x`
  between two numbers become ASCII (`9×2` -> `9*2`); LaTeX becomes arithmetic (`\\frac{1}{8}` ->
  `((1)/(8))`, `\\text{元}`, `\\boxed{…}`, `\\times`, `\\div`, `\\approx`, `\\( \\)` dropped); a currency
  sign before a number is dropped (`$15/$10`); a fraction glued after a spaced division is one
  number (`2000 / 2/3`); `dm^3` is a unit's power;
- a chain is a maximal run of numbers (decimals, `1,000`, `25%`, a unit after a number:
  `5元`, `3 cm`), + - * / ^ ² ³, brackets, spaces and `=`; a number glued to Chinese text
  (`即5+7+10=22`) starts the chain, since Chinese is not part of it;
- each side between two `=` is parsed by Python's `ast` (numbers as names, so no literal is
  ever evaluated by Python) and computed with `fractions.Fraction`, exactly;
- neighbouring sides must be equal, to one unit in the last decimal the text shows on a
  side that is a single number (`10/3 = 3.33` and `2/3 = 0.66` hold). A running chain
  (`5+3=8×2=16`, the next side starting from the last result) is read as two steps.

What is not checked (the chain is skipped whole):
- anything with an unknown: a letter next to the chain or inside it (`5 × 58 = 1 × x`,
  `X - 5 - 8 = 10`), or a chain that starts or ends on an operator (something outside it
  belongs to the expression);
- remainders (`29 ÷ 5 = 5 … 4`, `余4`), ratios (`1：5 = 58：x`), times (`8:30`), ellipses
  (`1+2+...+100`), roots, `≈`, and anything else next to the chain the reader does not know;
- a number change between units (`2千米=2000米`): sides whose units differ;
- an equation the text itself calls wrong (`3+5=9 是错误的`), finds wrong a line later
  (`-16 = 0` / 这个方程有误), or quotes from the question;
- a text that defines its own operation (`5※4`, `规定 a*b = 13a - b/8`).
A list item's `- ` is not a minus sign; a minus after a word (`总数 - 5 = 21 - 5`) leaves its side
out. Numbers with two or more decimals that are not the question's may be rounded: a result
some rounding of them gives holds (`2×16.67 = 33.33`).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

# One character for one where possible, so the reader can cut at the same places.
_NORMAL = str.maketrans({
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)},  # ０-９
    "＋": "+", "－": "-", "−": "-", "–": "-", "×": "*", "✕": "*", "＊": "*", "÷": "/", "／": "/", "＝": "=",
    "（": "(", "）": ")", "％": "%", "．": ".", "：": ":", "∶": ":", "\u3000": " ", "\xa0": " ",
})
# `x` or `X` between two numbers is a times sign (`10 x 4`, `15元 x 80%`); elsewhere it is an unknown.
_TIMES_X = re.compile(r"(?<=[\d)%])([ \t]*)[xX]([ \t]*)(?=[\d(])|(?<=[\u4e00-\u9fff])([ \t]+)[xX]([ \t]+)(?=\d)")
# LaTeX operators and calculator notes (`10-5=<<10-5=5>>5`, GSM8K's style) read as plain text.
_LATEX = re.compile(r"\\(?:times|cdot|div|approx)(?![A-Za-z])")
# A fraction written glued after a spaced sign is one number: `2000 / 2/3` is 2000 ÷ ⅔, not 2000 ÷ 2 ÷ 3.
_GLUED_FRACTION = re.compile(r"(?<=[ \t]/[ \t])(\d+(?:\.\d+)?)/(\d+(?:\.\d+)?)(?![\d./])")
# A currency sign before a number (GSM8K's `$15/$10`), and LaTeX's `$…$` delimiters: not part of the value.
_CURRENCY = re.compile(r"[$¥€£](?=[ \t]?-?\d)|(?<=[\d)])[ \t]*\$")
_UNIT_POWER = re.compile(r"(?<=[A-Za-z])\^\{?([23])\}?(?![\d.])")
_LATEX_SIGNS = {"\\times": "*", "\\cdot": "*", "\\div": "/", "\\approx": "≈"}
_LATEX_WRAP = re.compile(r"\\(?:text|mathrm|textbf|mathbf|boxed|operatorname)\s*\{([^{}]*)\}")  # `\\boxed{3150}`: 3150
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_DELIMITER = re.compile(r"\\[()\[\]]|\\left(?=[(\[|])|\\right(?=[)\]|])|\\[,;:!]|\\quad|\\qquad|\$\$")
_CALCULATOR_NOTE = re.compile(r"<<[^<>\n]{0,80}>>")

# Units a number may carry inside an equation (`5元 + 3元 = 8元`, `6 cm × 4 cm`). Longer first.
_UNITS = sorted("""元 角 分 厘 米 厘米 毫米 分米 千米 公里 里 克 千克 公斤 斤 两 吨 毫升 升 立方米 立方厘米 立方分米
平方米 平方厘米 平方分米 平方千米 公顷 亩 个 只 本 件 人 名 位 天 小时 时 分钟 秒 年 月 周 星期 次 页 张 棵 辆 块 支 条
头 箱 盒 袋 包 瓶 杯 碗 份 组 道 题 篇 双 对 套 台 架 朵 枝 颗 粒 根 间 层 排 行 把 匹 岁 度 元/千克 元/斤 元/个
千米/时 千米/小时 米/秒 米/分 米/分钟 公里/小时 km/h m/s
km cm mm dm m kg g mg t L ml mL h min s""".split(), key=len, reverse=True)
_UNIT_WORDS = frozenset(_UNITS)
_UNIT_NAMES = "(?:" + "|".join(re.escape(u) for u in _UNITS) + ")"
# a unit, squared or cubed, and per another unit (`千克/平方米`, `m/min`) or per one character (`元/斤`)
_UNIT = rf"{_UNIT_NAMES}[²³]?(?:/(?:{_UNIT_NAMES}(?![A-Za-z])[²³]?|[\u4e00-\u9fff](?![\u4e00-\u9fff])))?"
_UNIT_START = re.compile(rf"{_UNIT}(?![A-Za-z])")
# Units of one kind: two of them in one equation mean a change of unit (`6000分钟 ÷ 60 = 100小时`).
_UNIT_KINDS = [set(kind.split()) for kind in (
    "毫米 厘米 分米 米 千米 公里 里 mm cm dm m km", "毫克 克 千克 公斤 斤 两 吨 mg g kg t",
    "秒 分 分钟 时 小时 天 周 星期 月 年 s min h", "分 角 元", "毫升 升 ml mL L",
    "平方毫米 平方厘米 平方分米 平方米 平方千米 公顷 亩", "立方厘米 立方分米 立方米")]
# What a number may carry between it and the next sign: a noun (`7支笔 - 2支笔`, `2 鸡蛋 × 8 同学`)
# or a note in brackets (`15元（绘本）+ 5元（糖果）`). Words that compute (倍, 加, 之 ...) are not nouns.
_NOUN = r"(?:(?!倍|加|减|乘|除|以|的|之|方|万|千|百|亿|多|少|半|余|又|点|和|与|等|是|约|共)[\u4e00-\u9fff]){1,4}"
_NOTE = r"\((?:[\u4e00-\u9fff]{1,10})\)"
_LABEL = rf"[ \t]?{_NOTE}(?=[ \t]*[-+*/=≈)(])"
# A noun only after a measure word: `5苹果 + 3橘子 = 8元` prices unknowns, `5个苹果 + 3个梨` counts things.
_UNIT_AND_NOUN = rf"[ \t]?{_UNIT}(?![A-Za-z])(?:{_NOUN}(?=[ \t]*[-+*/=≈)(]))?"
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"
# A chain: numbers (each with an optional unit, spaced or glued), operators, brackets, `=`.
CHAIN = re.compile(rf"(?:{_NUMBER}(?:{_UNIT_AND_NOUN})?(?:{_LABEL})?|[-+*/^²³()=≈]|[ \t])+")
TOKEN = re.compile(rf"(?P<num>{_NUMBER})(?:[ \t]?(?P<unit>{_UNIT})(?![A-Za-z])(?P<noun>{_NOUN}(?=[ \t]*[-+*/=≈)(]))?)?(?:{_LABEL})?"
                   r"|(?P<op>[-+*/^²³])|(?P<lp>\()"
                   r"|(?P<rp>\))|(?P<eq>[=≈])|[ \t]+")

# Next to a chain, these mean the chain is part of something the reader does not compute.
# Signs a text defines an operation with (`a※b = 13a - b/8`, `5※4 = 5×6×7×8`): not arithmetic.
_CUSTOM_SIGNS = "※◆◇△▲▽☆★⊕⊗⊙○●□■◎♦♥♠♣⊿"
# A definition of such an operation on letters, `a * b = …` too: the text's signs then mean something else.
# (`*` only where the text says it defines an operation: `I = P * r * t = …` is a formula, not one).
_CUSTOM_DEFINITION = re.compile(rf"(?<![A-Za-z])[A-Za-z][ \t]*[{_CUSTOM_SIGNS}][ \t]*[A-Za-z](?![A-Za-z])[ \t]*="
                                r"|(?:规定|定义|新运算|运算规则|运算法则)[^。\n]{0,20}?(?<![A-Za-z])[A-Za-z][ \t]*[*#@&][ \t]*[A-Za-z]"
                                r"(?![A-Za-z])[ \t]*=")
# (`}` ends a LaTeX group the reader left as it is: `\\frac{x}{4} - 1` is part of an expression)
_UNSAFE_BEFORE = set(_CUSTOM_SIGNS) | set(",.^√|'\"‘’[{}<>≤≥±·•_\\#@&~!?") | {"比"}
_SPACED_MINUS = re.compile(r"[ \t]*-[ \t]+")
_UNSAFE_AFTER = set("^√|[{<>≤≥±·•_\\!#@&~'\"") | {"比", "‰"} | set(_CUSTOM_SIGNS)
# Words that join a number to the chain's outer side: that side is then not all of its
# expression (`5除以2=2.5`, `百分之20=0.2`, `3的2倍+1=7`, `3又1/2`, `=5万`), so it is left out.
_WORD_BEFORE = re.compile(r"(?:加|减|乘|除|除以|乘以|加上|减去|的|倍|之|次方|平方|立方|比|差|积|商|和|与|又|第|个|负|正|零|点)$")
_WORD_AFTER = re.compile(r"(?:加|减|乘|除|倍|的|次方|平方|立方|分之|之|比|点|万|千|百|亿|多|少|又)")
# The text says the equation is wrong, or supposes it.
# A derivation the text then finds false (`17 - 34 + 1 = 0` / `-16 = 0` / 显然，这个方程有误).
_FOUND_WRONG = re.compile(r"有误|矛盾|不成立|不可能|出错|错误|不对")
_CALLED_WRONG = re.compile(r"^[^。\n]{0,6}?(?:错|不对|不正确|不成立|不相等|不等|有误|矛盾|不符合|wrong|incorrect|✗|❌)"
                           r"|^[^。\n，,]{0,3}?(?:吗|是否|对吗|对不对|\?|？)")  # or asks whether it holds
_SUPPOSED = re.compile(r"(?:如果|假如|假设|若|要是|误以为|以为|错误地|错算|算错|算成|写成|当成|误写|误算|错写|而不是|不是|错误|错解"
                       r"|有人(?:说|认为|算)|(?:他|她|学生|同学|小明|小红)(?:写|算|认为|说))[^。\n，,]{0,8}$")
# A remainder after the quotient (and its unit): `29÷5=5（个）……4（个）`, `5÷2=2（余1）`, `12/4=3......0`.
_REMAINDER = re.compile(r"\s*(?:\(?[\u4e00-\u9fff]{0,2}\)?)?\s*\(?(?:…+|\.{3,}|余数?(?:为|是)?|remainder)\s*(\d+)")
_REMAINDER_HINT = re.compile(r"[^。，,；;\n=]{0,6}?(?:…|\.\.\.|余|remainder)")
# `进球率 = 14 ÷ 20` then `进球率 = 0.7` on the next line: one chain, `14 ÷ 20 = 0.7`.
_LABELLED_LINE = re.compile(r"^(\s*)([^\d=\n]{1,12}?)\s*=\s*(\S.*)$")
_CONTINUED_LINE = re.compile(r"^\s*=\s*\S")
# The text says it rounds here (`= 2（向下取整）`, `= 14.47（保留两位小数）`): the last side may be
# rounded down, up or to nearest in its last shown decimal.
_ROUNDED_AFTER = re.compile(r"^[^。，,；;\n=]{0,4}?(?:取整|舍|进一|保留|约|近似|左右|round)")
_FUNCTION = re.compile(r"(?:[A-Za-z_]|取整|整数|根号|开方|平方根|绝对值)$")
_MAX_CHARS = 600
_MAX_TOKENS = 160
_MAX_DIGITS = 40
_MAX_EXPONENT = 64


@dataclass
class Equation:
    text: str  # the chain as normalised, stripped
    sides: list[str]
    wrong: tuple[str, str, Fraction] | None  # (left side, right side, what the left side is)


@dataclass
class _Number:
    value: Fraction
    decimals: int
    percent: bool
    unit: str | None
    noun: str | None = None  # `7支笔`: 笔
    given: bool = False  # a number of the question: exact, whatever decimals it shows


def normalise(text: str) -> str:
    text = text.translate(_NORMAL)
    if "<<" in text:
        text = _CALCULATOR_NOTE.sub("", text)
    if "$" in text or "¥" in text or "€" in text or "£" in text:
        text = _CURRENCY.sub("", text)  # `$15/$10 x 100%`: 15/10 x 100%
    if "\\" in text:
        text = _latex(text)
    if "^" in text:
        text = _UNIT_POWER.sub(lambda m: "²" if m.group(1) == "2" else "³", text)  # `dm^3`: dm³
    if "x" in text or "X" in text:
        text = _TIMES_X.sub(r"\1*\2", text)
    if "/" in text:
        text = _GLUED_FRACTION.sub(r"(\1/\2)", text)
    return text


def _latex(text: str) -> str:
    """LaTeX maths as plain arithmetic: `\\(3 \\times \\frac{1}{8} = 0.375 \\text{元}\\)` reads as
    `3 * ((1)/(8)) = 0.375 元`. Groups that hold other groups are left as they are (and then stop a chain)."""
    text = _LATEX_WRAP.sub(lambda m: m.group(1).strip(), text)  # `29.4 \\text{ 吨}`: 29.4 吨
    text = _LATEX_FRAC.sub(r"((\1)/(\2))", text)
    text = _LATEX_DELIMITER.sub(" ", text)
    return _LATEX.sub(lambda m: _LATEX_SIGNS[m.group(0)], text)


def equations(text: str, question: str = "") -> Iterator[Equation]:
    """Every closed equation chain in the text (see the module docstring), checked."""
    if "=" not in text and "＝" not in text and "≈" not in text:
        return
    for _start, _end, equation in located(plain_text(text), question):
        yield equation


def plain_text(text: str) -> str:
    """The text as the reader reads it: normalised, steps one per line joined into chains."""
    return _join_lines(normalise(text))


def located(plain: str, question: str = "") -> Iterator[tuple[int, int, Equation]]:
    """(start, end, equation) of every closed equation chain in a text `plain_text` made."""
    quoted = _squash(normalise(question)) if question else ""
    given = _given_values(normalise(question)) if question else frozenset()
    if _CUSTOM_DEFINITION.search(plain) or question and _CUSTOM_DEFINITION.search(normalise(question)):
        return  # `a * b = 13a - b/8`: the text defines its own operation, `17 * 24` is not a product
    for match in CHAIN.finditer(plain):
        chunk = match.group(0)
        if "=" not in chunk and "≈" not in chunk or not any(c.isdigit() for c in chunk):
            continue
        start, end = match.start(), match.end()
        # `- 4 × 8 = 32`: a minus and a space open a list item at the start of a line, and
        # join a word to the chain elsewhere (`总数 - 5 = 21 - 5 = 16`): not a negative number
        lead = _SPACED_MINUS.match(chunk)
        word_before = False
        if lead:
            word_before = bool(plain[:start].rsplit("\n", 1)[-1].strip())
            start, chunk = start + lead.end(), chunk[lead.end():]
        edges = _edges(plain, start, end)
        if edges is None or _called_wrong(plain, start, end):
            continue
        if word_before:
            edges = (True, *edges[1:])
        if quoted and _squash(chunk) in quoted:
            continue
        equation = _read_chain(chunk, *edges, remainder=_remainder(plain[end:end + 24]),
                               rounded=bool(_ROUNDED_AFTER.match(plain[end:end + 16])), given=given)
        if equation is not None:
            yield start, end, equation


def first_wrong(text: str, question: str = "") -> Equation | None:
    return next((eq for eq in equations(text, question) if eq.wrong), None)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _join_lines(text: str) -> str:
    """Steps written one per line read as one chain: a line that starts with `=` goes on from the
    line before it, and so does a line that names the same quantity (`x = 27 - 13` / `x = 14`)."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        previous = out[-1]
        if _CONTINUED_LINE.match(line) and "=" in previous:
            out[-1] = previous.rstrip() + " " + line.strip()
            continue
        this, last = _LABELLED_LINE.match(line), _LABELLED_LINE.match(_last_line(previous))
        if this and last and this.group(2).strip() == last.group(2).strip() and "=" not in this.group(3):
            out[-1] = previous.rstrip() + " = " + this.group(3).strip()
            continue
        out.append(line)
    return "\n".join(out)


def _last_line(text: str) -> str:
    return text.rsplit("\n", 1)[-1]


def _edges(text: str, start: int, end: int) -> tuple[bool, bool] | None:
    """(leave out the first side, leave out the last side) from what touches the chain; None when
    the chain is part of something the reader does not compute (a ratio, a remainder, a root)."""
    before = text[:start].rstrip(" \t")
    after = text[end:].lstrip(" \t")
    prev, nxt = before[-1:], after[:1]
    # a chain that opens on `=` has no first side for what precedes it to belong to (`v_{avg} = 96/5`)
    opens_on_equals = text[start:end].lstrip(" \t")[:1] == "="
    if prev in _UNSAFE_BEFORE and not opens_on_equals or nxt in _UNSAFE_AFTER:
        return None
    if after[:1] == "." and after[1:2].strip() and not after[1:2].isdigit() and not after.startswith(".."):
        return None  # `0.\\overline{81}`: the number goes on in a notation the reader does not compute
    if after.startswith("..") and not _REMAINDER.match(text, end):
        return None  # 1+2+...+100
    # A colon between numbers is a ratio or a time (1：5 = 58：x, 8:30) unless the chain's side
    # next to it computes something (`除以5：25÷5=5`, where it ends a label).
    ratio_before = prev == ":" and (before[:-1].rstrip(" \t")[-1:].isdigit() or before[:-1].rstrip(" \t")[-1:] == ")")
    ratio_after = nxt == ":" and after[1:].lstrip(" \t")[:1].isdigit()
    # (spaced off, `剩下的 30-27=3` could start there, but `80的 \\frac{3}{4}` shows it need not)
    first_open = bool(_WORD_BEFORE.search(before[-3:])) or _unknown_before(before, start)
    # `取整(41.67) = 42`, `f(3) = 5`: a bracket glued to a word is a function's argument
    first_open = first_open or (text[start:start + 1] == "(" and len(before) == start and bool(_FUNCTION.search(before)))
    # a word after an opened bracket is a note (`= 6.672（千米）`), not a multiplier (`= 5千`)
    note_after = text[start:end].rstrip(" \t").endswith("(")
    # `= ((10000)/(100)) 米`: the side's unit stands after its bracket, outside the chain
    unit_after = text[start:end].rstrip(" \t").endswith(")") and bool(_UNIT_START.match(after))
    # `= 5千` multiplies; `= 47  千米/小时` (spaced off by LaTeX) is a unit
    multiplied = bool(_WORD_AFTER.match(after)) and not _UNIT_START.match(after)
    last_open = multiplied and not note_after or unit_after or _unknown_after(text, after, end)
    return first_open, last_open, ratio_before, ratio_after


def _unknown_before(before: str, start: int) -> bool:
    """A letter glued to the chain, or a one-letter word before it (`y - 3 = 5`): an unknown."""
    if not (before[-1:].isascii() and before[-1:].isalpha()):
        return False
    word = re.search(r"[A-Za-z]+$", before).group(0)
    return len(before) == start or len(word) == 1


def _unknown_after(text: str, after: str, end: int) -> bool:
    if not (after[:1].isascii() and after[:1].isalpha()):
        return False
    word = re.match(r"[A-Za-z]+", after).group(0)
    return len(text) - len(after) == end or len(word) == 1


def _called_wrong(text: str, start: int, end: int) -> bool:
    return bool(_CALLED_WRONG.search(text[end:end + 12]) or _SUPPOSED.search(text[max(0, start - 16):start])
                or _FOUND_WRONG.search(text[end:end + 40]))


def _remainder(after: str) -> int | None | bool:
    """The remainder shown after a quotient; False when none is shown; None when one is shown
    but cannot be read."""
    if not _REMAINDER_HINT.match(after):
        return False
    match = _REMAINDER.match(after)
    return int(match.group(1)) if match else None


def _read_chain(chunk: str, first_open: bool, last_open: bool, ratio_before: bool, ratio_after: bool, remainder,
                rounded: bool, given: frozenset = frozenset()) -> Equation | None:
    if len(chunk) > _MAX_CHARS:
        return None  # not worked arithmetic a reader checks by hand
    tokens = _tokens(chunk)
    if tokens is None or len(tokens) > _MAX_TOKENS:
        return None
    for kind, value in tokens:
        if kind == "num":
            value.given = value.value in given
    sides: list[list[tuple[str, object]]] = [[]]
    approx = []  # approx[i]: the sign between side i and side i + 1 is ≈
    for token in tokens:
        if token[0] == "eq":
            sides.append([])
            approx.append(token[1] == "≈")
        else:
            sides[-1].append(token)
    if len(sides) > 2 and any(not side for side in sides[1:-1]):
        return None  # `==`: code or a comparison
    # A side the chain holds only part of (a named quantity, an operator or an unknown outside
    # it) is left out: each `=` of a chain is a claim of its own.
    if not sides[0] or first_open or sides[0][0][0] == "op" and sides[0][0][1] != "-":
        sides, approx = sides[1:], approx[1:]
    if sides and (not sides[-1] or last_open or sides[-1][-1][0] == "op" and sides[-1][-1][1] not in "²³"):
        if remainder is not False:
            return None
        sides, approx = sides[:-1], approx[:-1]
    if len(sides) < 2:
        return None
    if ratio_before and _single(sides[0]) is not None or ratio_after and _single(sides[-1]) is not None:
        return None  # 1：5 = 58：x
    sides[0] = _trim_brackets(sides[0], leading=True)
    sides[-1] = _trim_brackets(sides[-1], leading=False)
    if sides[0] is None or sides[-1] is None:
        return None
    if all(_single(side) is not None for side in sides):
        return None  # `0 = -5`, `20 = 6000`: numbers with no working between them
    if _letter_unknown(sides):
        return None  # `2t + 3 = 13`: t is time, an unknown, not tonnes
    values = []
    for side in sides:
        value = _evaluate(side)
        if value is None:
            return None
        values.append(value)
    texts = [_side_text(side) for side in sides]
    if remainder is not False:
        if any(approx):
            return None
        return _division_with_remainder(chunk, sides, texts, remainder)
    wrong = None
    for i in range(len(sides) - 1):
        if _changes_unit(sides[i], sides[i + 1]) or _names_things(sides[i], sides[i + 1]):
            continue  # `10角 = 1元`, `4个苹果 + 4个橘子 = 4×1.6 + 4×2.67`: not a computation this reader checks
        if _close(values[i], values[i + 1], sides[i], sides[i + 1], approx[i]):
            continue
        if rounded and i == len(sides) - 2 and _single(sides[-1]) and abs(values[i] - values[-1]) < _ulp(_single(sides[-1])):
            continue  # rounded as the text says
        if _running(values[i], sides[i + 1]):
            continue  # `5+3=8×2=16`: the next side starts from this result
        if _percent_notation(values[i], sides[i + 1]):
            continue  # `20 ÷ 100 × 100 = 20%`: the percentage's number, written with its sign
        wrong = (texts[i], texts[i + 1], values[i])
        break
    return Equation(_squash(chunk), texts, wrong)


def _division_with_remainder(chunk, sides, texts, remainder) -> Equation | None:
    """`a ÷ b = q … r`: a = b×q + r with 0 ≤ r < b, in whole numbers; anything else is not read."""
    if remainder is None or len(sides) != 2:
        return None
    left, right = sides
    quotient = _single(right)
    if not (len(left) == 3 and left[0][0] == "num" and left[1] == ("op", "/") and left[2][0] == "num"
            and quotient is not None and right[0][0] == "num"):
        return None
    a, b, q = left[0][1].value, left[2][1].value, quotient.value
    if any(v.denominator != 1 for v in (a, b, q)) or b <= 0:
        return None
    if a == b * q + remainder and 0 <= remainder < b:
        return Equation(_squash(chunk), texts, None)
    return Equation(_squash(chunk), texts, (texts[0], f"{texts[1]} … {remainder}", a / b))


def _tokens(chunk: str) -> list[tuple[str, object]] | None:
    tokens: list[tuple[str, object]] = []
    position = 0
    while position < len(chunk):
        match = TOKEN.match(chunk, position)
        if match is None or match.end() == position:
            return None
        position = match.end()
        kind = match.lastgroup
        if kind is None:
            continue  # spaces
        if kind in ("num", "unit", "noun"):
            if len(match.group("num")) > _MAX_DIGITS:
                return None
            number = _number(match.group("num"), match.group("unit"))
            number.noun = match.group("noun")
            if number.noun in _UNIT_WORDS:
                number.unit = number.noun  # `52个星期`: counted in weeks, a unit of time
            tokens.append(("num", number))
        else:
            tokens.append((kind, match.group(0)))
    return tokens


def _number(text: str, unit: str | None) -> _Number:
    percent = text.endswith("%")
    digits = text.rstrip("%").replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    value = Fraction(digits)
    return _Number(value / 100 if percent else value, decimals, percent, unit)


def _trim_brackets(side, *, leading: bool):
    """A chain cut out of `还剩3元（6元-3元=3元）` or `=8（个）` holds brackets that open or close outside
    the equation: its outer side is cut at the bracket left unmatched."""
    if _balance(side) == 0:
        return side
    depth = 0
    if leading:  # the last `(` never closed: the side starts after it
        cut = None
        for index, token in enumerate(side):
            depth += token[0] == "lp"
            depth -= token[0] == "rp"
            if depth < 0:
                return None
        depth = 0
        for index in range(len(side) - 1, -1, -1):
            depth += side[index][0] == "rp"
            depth -= side[index][0] == "lp"
            if depth < 0:
                cut = index
                break
        side = side[cut + 1:] if cut is not None else side
    else:  # the first `)` never opened (or a `(` left open at the end): the side stops before it
        for index, token in enumerate(side):
            depth += token[0] == "lp"
            depth -= token[0] == "rp"
            if depth < 0:
                side = side[:index]
                break
        if _balance(side) > 0 and side and side[-1][0] == "lp":
            side = side[:-1]
    return side if side and _balance(side) == 0 else None


def _balance(side) -> int:
    return sum(1 for t in side if t[0] == "lp") - sum(1 for t in side if t[0] == "rp")


def _side_text(side) -> str:
    parts = []
    for kind, value in side:
        if kind == "num":
            number = value
            parts.append(_show(number))
        else:
            parts.append(value)
    return "".join(parts)


def _show(number: _Number) -> str:
    value = number.value * 100 if number.percent else number.value
    text = f"{float(value):.{number.decimals}f}" if number.decimals else str(int(value))
    return text + ("%" if number.percent else "") + (number.unit or "")


def _evaluate(side) -> Fraction | None:
    """The exact value of one side, parsed by `ast` with each number as a name (n0, n1, ...)."""
    names: dict[str, Fraction] = {}
    source = []
    previous = None
    for kind, value in side:
        if kind in ("num", "lp") and previous in ("num", "rp"):
            return None  # two numbers side by side, or `3元（…）`: not one expression
        if kind == "num":
            name = f"n{len(names)}"
            names[name] = value.value
            source.append(name)
        elif kind == "op" and value in "²³":
            if previous == "rp" and source and source[-1].startswith("**"):
                return None  # 10²³: an exponent of two digits, not a power of a power
            name = f"n{len(names)}"
            names[name] = Fraction(2 if value == "²" else 3)
            source.append(f"**{name}")
        elif kind == "op":
            source.append("**" if value == "^" else value)
        else:
            source.append(value)
        previous = "rp" if kind == "op" and value in "²³" else kind
    try:
        tree = ast.parse(" ".join(source), mode="eval")
        return _value(tree.body, names)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None


def _value(node: ast.AST, names: dict[str, Fraction]) -> Fraction:
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(node.operand, names)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow):
            # integer powers only, and small ones: 2^0.5 is not exact, 9^9^9 is not arithmetic on paper
            if right.denominator != 1 or abs(right) > _MAX_EXPONENT or abs(left) > 10 ** 12:
                raise ValueError("power")
            return left ** int(right)
    raise ValueError("not arithmetic")


def _single(side) -> _Number | None:
    """The number a side is, when it is one number (a sign allowed)."""
    if len(side) == 1 and side[0][0] == "num":
        return side[0][1]
    if len(side) == 2 and side[0] == ("op", "-") and side[1][0] == "num":
        return side[1][1]
    return None


def _ulp(number: _Number) -> Fraction:
    unit = Fraction(1, 10 ** number.decimals)
    return unit / 100 if number.percent else unit


def _close(left: Fraction, right: Fraction, left_side, right_side, approx: bool = False) -> bool:
    if left == right:
        return True
    if approx:  # `4 ÷ 7 ≈ 0.5714`: rounded in the last shown decimal, either way
        number = _single(right_side)
        return number is not None and abs(left - right) < _ulp(number)
    # A side that is one number with decimals may be rounded or cut (10/3 = 3.33, 2/3 = 0.66).
    shown = False
    for side, other in ((right_side, left), (left_side, right)):
        number = _single(side)
        if number is None or not (number.decimals or number.percent):
            continue
        shown = True
        # rounded to nearest (within half a unit of its last decimal), or cut (2/3 = 0.66)
        if abs(left - right) <= _ulp(number) / 2 or _cut(other, number) == number.value:
            return True
        # the other side computes from rounded numbers (`2×16.67 = 33.33`, 16.67 for 50/3): any
        # result those numbers could round from holds
        # (numbers shown with fewer decimals than this result count as rounded too: `… + 33.3 = 123.33`)
        span = _rounding_span(left_side if side is right_side else right_side, fewer_than=number.decimals)
        if span is not None and span[0] - _ulp(number) / 2 <= number.value <= span[1] + _ulp(number) / 2:
            return True
    if shown:
        return False
    # two expressions, one with a value put in rounded (`100-10+(100/3) = 100-10+33.3`): it holds
    # when some rounding of that side's own decimals gives the other side
    if _single(left_side) is None and _single(right_side) is None:
        for side, other in ((right_side, left), (left_side, right)):
            span = _rounding_span(side, min_decimals=1)
            if span is not None and span[0] <= other <= span[1]:
                return True
    # a rounded number inside an expression (3.14 for π, 0.33 for 1/3): the result may be off by
    # the rounding carried through, which a relative bound covers
    if _max_decimals(left_side) >= 2 or _max_decimals(right_side) >= 2:
        return abs(left - right) <= abs(right) * Fraction(1, 200)
    return False


def _rounding_span(side, min_decimals: int = 2, fewer_than: int = 0) -> tuple[Fraction, Fraction] | None:
    """The least and greatest value of a side whose numbers of two or more decimals may each be
    rounded by half a unit of their last decimal (every corner computed; the four arithmetic
    operations are monotonic in each operand, so the corners bound it)."""
    rounded = [i for i, (kind, value) in enumerate(side)
               if kind == "num" and (value.decimals >= min_decimals or 0 < value.decimals < fewer_than)
               and not value.percent and not value.given]
    if not rounded or len(rounded) > 4:
        return None
    values = []
    for corner in itertools.product((-1, 1), repeat=len(rounded)):
        moved = list(side)
        for index, sign in zip(rounded, corner):
            number = side[index][1]
            moved[index] = ("num", replace(number, value=number.value + sign * _ulp(number) / 2))
        value = _evaluate(moved)
        if value is None:
            return None
        values.append(value)
    return min(values), max(values)


def _cut(value: Fraction, number: _Number) -> Fraction:
    """The value cut (towards zero) to the number's shown decimals."""
    unit = _ulp(number)
    steps = abs(value) // unit
    return steps * unit * (1 if value >= 0 else -1)


def _max_decimals(side) -> int:
    """The most decimals a number of the side shows, numbers of the question left out (exact)."""
    return max((value.decimals for kind, value in side if kind == "num" and not value.given), default=0)


def _given_values(question: str) -> frozenset:
    """The values of the question's numbers with decimals (`4.5%` is 0.045): given, so exact."""
    values = set()
    for match in re.finditer(r"\d+\.\d+%?", question):
        text = match.group(0)
        value = Fraction(text.rstrip("%"))
        values.add(value / 100 if text.endswith("%") else value)
        if text.endswith("%"):
            values.add(value)
    return frozenset(values)


def _running(value: Fraction, next_side) -> bool:
    """`5+3=8×2=16`: the next side is a new step that starts from this side's result."""
    if _single(next_side) is not None or next_side[0][0] != "num":
        return False
    first = next_side[0][1]
    return first.value == value or (first.decimals > 0 and abs(first.value - value) <= _ulp(first))


def _names_things(left_side, right_side) -> bool:
    """One side counts named things (`4个苹果 + 4个橘子`) and the other carries no unit: the
    equation says what the things cost or weigh, not how many there are."""
    def units(side):
        return {value.unit for kind, value in side if kind == "num" and value.unit}

    def named(side):
        return any(kind == "num" and value.noun for kind, value in side)

    return named(left_side) and not units(right_side) or named(right_side) and not units(left_side)


def _percent_notation(value: Fraction, right_side) -> bool:
    number = _single(right_side)
    return number is not None and number.percent and abs(value - number.value * 100) <= _ulp(number) * 100 / 2


def _letter_unknown(sides) -> bool:
    """A one-letter unit (m, s, t, h, g, L) that is not on every side, or beside a number without
    a unit (`400t = 300t + 300`, `5×2L - 15×104`): it is more likely a variable."""
    letters = [{value.unit for kind, value in side if kind == "num" and value.unit and len(value.unit.rstrip("²³")) == 1
                and value.unit.isascii()} for side in sides]
    used = set().union(*letters)
    if used and any(kind == "num" and not value.unit for side in sides for kind, value in side):
        return True
    return any(unit not in side_letters for unit in used for side_letters in letters)


def _changes_unit(left_side, right_side) -> bool:
    """The two sides hold two units of one kind (`10角 = 1元`, `6000分钟 ÷ 60 = 100小时`)."""
    # a compound unit counts by its parts: `2千米/小时 × 3小时 = 6000米` changes 千米 into 米
    units = {part.rstrip("²³") for side in (left_side, right_side) for kind, value in side
             if kind == "num" and value.unit for part in value.unit.split("/")}
    return len(units) > 1 and any(len(units & kind) > 1 for kind in _UNIT_KINDS)
