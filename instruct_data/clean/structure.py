"""What part of a text is prose: code (fenced, inline, indented or recognisable lines), tables
and ASCII art are set apart, so that rules about language, repetition, endings and words judge
the prose only.

    prose("说明：\n```python\nprint(1)\n```\n| a | b |\n结束。")   # -> "说明：\n结束。"
    last_prose_line(text)   # None when the text ends in code, a table, art or a list item
"""

from __future__ import annotations

import re

from instruct_data.clean.base import CODE_SPAN

# A line that reads as code in most languages: keywords at the start, statements ending in
# ; { } or ):, assignments, SQL, tags, shell prompts, comments.
CODE_LINE = re.compile(
    r"^\s*(?:"
    r"(?:def|class|import|from|return|if|elif|else|for|while|try|except|with|print|function|var|let|const|"
    r"public|private|static|void|int|float|double|char|bool|struct|fn|use|package|func|#include|using|"
    r"namespace|package|echo|sudo|pip|npm|git|cd|ls|mkdir|SELECT|INSERT|UPDATE|DELETE|CREATE|FROM|WHERE|"
    r"GROUP BY|ORDER BY|HAVING|JOIN|select|insert|update|delete|create|where|group by|order by|having|join|"
    r"Select|Insert|Update|Delete|Create|From|Where|Return|Print|Import|Def|Class)\b"
    r"|[}\])]+[;,]?\s*$"                       # closing brackets alone
    r"|<\/?[A-Za-z][^>]*>"                     # a tag
    r"|(?://|#|/\*|\*/|--\s|\"\"\"|\'\'\')"      # comments and docstrings
    r"|\$\s"                                   # a shell prompt
    r")"
    r"|[;{]\s*$",                              # a statement or block opener at the end
)  # case-sensitive: IGNORECASE slows a search over Chinese text several times
# An ASCII assignment (`total = price * 2`): the line read as
#     ^[\x20-\x7e]*\b[A-Za-z_][\w.\[\]]*\s*(?:[+\-*/%]?=|==)\s*[^=\s][\x20-\x7e]*$
# As one regex, every split of the ASCII head was tried and each read the tail to the line's end:
# n² steps on a long line such as `a=a=a=…中` (2 s at 32,000 characters). is_assignment finds
# the same lines in one pass over the identifier runs (tests/test_clean_structure.py compares them).
_IDENTIFIER_RUN = re.compile(r"[\w.\[\]]+")
_IDENTIFIER_START = re.compile(r"\b[A-Za-z_]")
_ASSIGNED = re.compile(r"\s*+(?:[+\-*/%]?=|==)\s*+[^=\s]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
_PRINTABLE_ASCII = "".join(map(chr, range(0x20, 0x7f)))
# (`\s*(?:\|\s*)?`, not `\s*\|?\s*`: two runs of spaces in a row split a long run of spaces every
# way before failing, n² steps.)
TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$|^\s*(?:\|\s*)?:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+(?:\|\s*)?$"
                        r"|^[^|\n]*(?:\|[^|\n]*){2,}$")
# ASCII art and drawn boxes: lines made mostly of drawing characters.
ART_CHARS = set("+-|_=*#/\\<>^v~.:'`()[]{}░▒▓█▀▄▌▐■□▪▫●○◆◇★☆─│┌┐└┘├┤┬┴┼═║╔╗╚╝")
# Every line `_structured` finds holds one of these: most prose holds none and is passed whole.
# Case-sensitive on purpose (IGNORECASE makes a search over Chinese text several times slower).
# `[^\S\n]*`, not `\s*`, after `^`: from every line start `\s*` ran over all the blank lines below
# it before failing, so a text of n blank lines (a code block keeps them) cost n² steps: 65 s for
# 50,000, where the search now takes milliseconds.
STRUCTURE_HINT = re.compile(r"[`|{};=<>#$\t_\\░▒▓█▀▄─│┌┐└┘═║]|    |\(\)|[A-Za-z]\(|[+*~^]{2}|[-.:]{3}"
                            r"|^[^\S\n]*(?:def|class|import|from|return|if|for|while|print|var|let|const|public|fn|func|"
                            r"using|SELECT|INSERT|UPDATE|DELETE|CREATE|FROM|WHERE|select|insert|update|delete|create|"
                            r"from|where|echo|sudo|pip|npm|git|cd|ls|mkdir)\b", re.MULTILINE)
# str.translate deletes the drawing characters and spaces: what is left is the rest of the line.
_NOT_DRAWN = {ord(c): None for c in ART_CHARS} | {ord(c): None for c in " \t\u3000"}
_HAN = re.compile("[\u4e00-\u9fff]")


def is_art_line(line: str) -> bool:
    stripped = line.strip()
    if len(stripped) < 3:
        return False
    rest = len(stripped.translate(_NOT_DRAWN))
    return rest <= 0.4 * len(stripped)


def is_code_line(line: str) -> bool:
    return (bool(CODE_LINE.search(line)) or is_assignment(line)) and not _mostly_han(line)


def is_assignment(line: str) -> bool:
    """An ASCII assignment (the pattern above): an identifier that starts within the line's
    printable-ASCII head, an operator ending in `=`, and a value whose first character may be
    anything but `=` or a space and whose rest is printable ASCII to the end of the line."""
    if line.endswith("\n"):
        line = line[:-1]  # (as `$` matches before a final newline)
    first_odd = _NOT_PRINTABLE_ASCII.search(line)
    head_end = first_odd.start() if first_odd else len(line)  # line[:head_end] is printable ASCII
    # The value's first character sits at or after the last character that is not printable ASCII.
    tail_from = len(line.rstrip(_PRINTABLE_ASCII)) - 1 if first_odd else 0
    for run in _IDENTIFIER_RUN.finditer(line):
        if run.start() > head_end:
            break
        # Every identifier that starts in this run ends where the run ends: the earliest start is
        # as good as any, and the same operator and value follow it.
        start = _IDENTIFIER_START.search(line, run.start(), run.end())
        if start is None or start.start() > head_end:
            continue
        assigned = _ASSIGNED.match(line, run.end())
        if assigned and assigned.end() - 1 >= tail_from:
            return True
    return False


def _mostly_han(line: str) -> bool:
    return len(_HAN.findall(line)) > 0.3 * max(1, len(line.strip()))


def _structured(line: str) -> bool:
    """A line of code, table or art (indented code counts as code)."""
    if line.startswith(("    ", "\t")) and line.strip() and not _mostly_han(line):
        return True
    return is_code_line(line) or bool(TABLE_LINE.match(line)) and "|" in line or is_art_line(line)


# A docstring, whole: its first line is a code line, and the lines inside it are the code's too
# (`"""\nThis function will take an email address as an argument…\n"""`).
DOCSTRING = re.compile(r'"""[\s\S]*?(?:"""|\Z)|\'\'\'[\s\S]*?(?:\'\'\'|\Z)')


def prose_lines(text: str) -> list[str]:
    """The lines of the text that are prose: fenced and inline code, docstrings, code lines,
    tables and art left out."""
    if not STRUCTURE_HINT.search(text) and '"""' not in text and "\'\'\'" not in text:
        return [line for line in text.split("\n") if line.strip()]
    if "`" in text:
        text = CODE_SPAN.sub("\n", text)
    if '"""' in text or "\'\'\'" in text:
        text = DOCSTRING.sub("\n", text)
    return [line for line in text.split("\n") if line.strip() and not _structured(line)]


def prose(text: str) -> str:
    return "\n".join(prose_lines(text))


def last_prose_line(text: str) -> str | None:
    """The text's last line when it is a prose line (a list item counts); None when the text ends
    in a code block, a code line, a table or art (their ends are not sentence ends)."""
    stripped = text.rstrip()
    if stripped.endswith("```"):
        return None
    last = stripped.rsplit("\n", 1)[-1]
    if not last.strip() or _structured(last):
        return None
    return last
