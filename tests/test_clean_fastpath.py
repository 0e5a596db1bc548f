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
