"""The cleaning fast paths (issue 22 item 3) give the verdicts and texts the rules give alone.

A text that passes `normalizers.leaves_alone_text` is skipped by the Cleaner without calling
the normalizers: every default normalizer must leave such a text unchanged. Checked on random
texts built from the characters the normalizers react to, and on the Cleaner's results.
"""

from __future__ import annotations

import random

from instruct_data.clean import Cleaner
from instruct_data.clean.normalizers import (DoubledLabel, FixUnicode, StripControl, TidyWhitespace,
                                             leaves_alone, leaves_alone_text)
from instruct_data.schema import Conversation

# Plain Chinese and English, and every kind of character or layout a default normalizer acts on.
PIECES = ["你好", "世界。", "abc", " ", "  ", "\n", "\n\n\n", "\t", "\r\n", "\r", "\xa0", "\u200b", "\ufeff",
          "Ã©", "â€™", "\ufffd", "&amp;", "输入：", "Input: ", "输出:", "：", ":", "```", "`x`", "1. ", "=", "\x07"]


def random_texts(count: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))


def test_a_text_left_alone_is_unchanged_by_every_default_normalizer():
    rules = [FixUnicode(), StripControl(), TidyWhitespace(), DoubledLabel()]
    assert leaves_alone(rule.name for rule in rules)
    skipped = 0
    for text in random_texts(20_000):
        if leaves_alone_text(text):
            skipped += 1
            assert all(rule.normalize(text) == text for rule in rules), repr(text)
    assert skipped > 500  # the test reaches the fast path, not only the slow one


def test_the_fast_path_stands_aside_when_another_normalizer_is_on():
    assert not leaves_alone(["fix_unicode", "to_simplified"])
    assert not Cleaner({"to_simplified": True})._quick
    assert Cleaner()._quick


def test_cleaner_results_match_the_normalizers_called_one_by_one():
    fast, slow = Cleaner(), Cleaner()
    slow._quick = False
    for n, text in enumerate(random_texts(3_000, seed=1)):
        turns = [{"role": "user", "text": "请回答：" + text, "input": text or None},
                 {"role": "assistant", "text": "好的。" + text}]
        a = Conversation(id=f"r{n}", source="t", turns=turns, system=text or None)
        b = a.model_copy(deep=True)
        assert fast.clean(a) == slow.clean(b)
        assert a == b
    assert fast.counts() == slow.counts()


def test_the_joint_scan_finds_what_the_hint_class_and_the_spacing_tests_find():
    """_ANY_HINT_OR_SPACING (one scan) answers as _ANY_HINT plus tidy_whitespace's substring
    tests did, on texts of every hint character, spaces and newlines."""
    from instruct_data.clean.normalizers import _ANY_HINT, _ANY_HINT_OR_SPACING, CONTROL_TABLE

    hints = [chr(c) for c in CONTROL_TABLE] + ["\x80", "\xa0", "\xe9", "\xff", "\u2026", "\u20ac", "\ufffd", "\t", "\r"]
    alphabet = hints + [" ", " ", "\n", "\n", "你", "a", "。"]
    rng = random.Random(2)
    found = 0
    for _ in range(50_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        old = bool(_ANY_HINT.search(text)) or "  " in text or " \n" in text or "\n\n\n" in text
        assert bool(_ANY_HINT_OR_SPACING.search(text)) == old, repr(text)
        found += old
    assert 1_000 < found < 49_000  # both answers are reached


def test_repetition_splits_sentences_as_before():
    """SENTENCE_END and PUNCT_SPACE open with a class now (`[x][x]*` for `[x]+`): same pieces."""
    import re

    from instruct_data.clean.filters import PUNCT_SPACE, SENTENCE_END

    old_end, old_punct = re.compile(r"[。！？!?；;\n]+\s*"), re.compile(r"[\s\W_]+")
    alphabet = ["。", "！", "？", "!", "?", "；", ";", "\n", " ", "\t", "\u3000", "好", "a", "_", ",", "1"]
    rng = random.Random(3)
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        assert SENTENCE_END.split(text) == old_end.split(text), repr(text)
        assert PUNCT_SPACE.sub("", text) == old_punct.sub("", text), repr(text)


def test_pii_reads_full_width_forms_as_translate_does():
    """pii._plain skips str.translate on a text holding no character it maps: the same text."""
    from instruct_data.clean.pii import _FULLWIDTH, _plain

    for code in range(0x110000):
        if not 0xD800 <= code < 0xE000:
            text = "电话" + chr(code) + "1"
            assert _plain(text) == text.translate(_FULLWIDTH), hex(code)
    assert _plain("１３８＠ｘ") == "138@x"


def test_repetition_counts_ngrams_a_block_at_a_time_with_the_same_verdicts():
    """Repetition._ngrams stops counting once the reply is surely kept: the same verdicts and
    details as counting every n-gram, on replies around the threshold."""
    from instruct_data.clean.base import Drop
    from instruct_data.clean.filters import Repetition

    rule = Repetition(Repetition.Settings(probes=0))  # every reply counted, none decided by the probes

    def counted(text):
        s, n = rule.settings, rule.settings.ngram
        total = len(text) - n + 1
        share = 1 - len({text[i:i + n] for i in range(total)}) / total
        return Drop("repeated_ngrams", f"{share:.0%} of {n}-character n-grams repeat earlier ones") \
            if share > s.max_duplicate_ngrams else None

    rng = random.Random(6)
    drops = 0
    for _ in range(3_000):
        unit = "".join(rng.choice("春眠不觉晓处处闻啼鸟夜来风雨声花落知多少") for _ in range(rng.randint(5, 40)))
        fresh = "".join(rng.choice("白日依山尽黄河入海流欲穷千里目更上一层楼") for _ in range(rng.randint(0, 1500)))
        text = fresh[:len(fresh) // 2] + unit * rng.randint(1, 60) + fresh[len(fresh) // 2:]
        if len(text) < 61:
            continue
        assert rule._ngrams(text) == counted(text)
        drops += counted(text) is not None
    assert 300 < drops < 2_700
