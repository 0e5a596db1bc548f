"""structure.is_assignment finds exactly the lines the assignment pattern it replaces found,
in one pass (the pattern took n² steps on a long line like `a=a=a=…中`)."""

import random
import re

from instruct_data.clean.structure import is_assignment, is_code_line

PATTERN = re.compile(r"^[\x20-\x7e]*\b[A-Za-z_][\w.\[\]]*\s*(?:[+\-*/%]?=|==)\s*[^=\s][\x20-\x7e]*$")
ALPHABETS = [list("ab_Z1.[]=+-*/% \t\u3000中é") + ["==", "+=", "x", "答", ";", "(", ")", "\x7f", "\x1f", "\n"],
             list("a=. [") + ["中", "\n", " ", "b", "_", "1"]]


def test_is_assignment_agrees_with_the_pattern_on_random_lines():
    for seed, alphabet in enumerate(ALPHABETS):
        rng = random.Random(seed)
        for _ in range(60000):
            line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 18)))
            assert is_assignment(line) == bool(PATTERN.search(line)), repr(line)


def test_assignments_and_not():
    assert is_code_line("total = price * 2") and is_code_line("counts[i] += 1") and is_code_line("x == y")
    assert is_assignment("x名字 = 1") and not is_assignment("名字x = 1")  # \w inside an identifier, not before it
    assert not is_assignment("x = 1 中") and not is_assignment("1 = x") and not is_assignment("x =")
    assert is_assignment("a=" * 16000 + "中") and not is_assignment("a=" * 16000 + "中文")
