"""The batched normalization of dedupe keys (keys.strip_non_word_many, normalize_many) gives
exactly the texts the one-at-a-time functions give: the build's exact keys and signatures
depend on it byte for byte."""

from __future__ import annotations

import random

from instruct_data.dedupe.keys import normalize, normalize_many, strip_non_word, strip_non_word_many


def test_every_code_point_is_kept_or_dropped_as_the_regex_does():
    # every code point (surrogates included), 64 to a text, each text between two word characters
    points = [chr(c) for c in range(0x110000)]
    texts = ["a" + "".join(points[i:i + 64]) + "b" for i in range(0, len(points), 64)]
    assert strip_non_word_many(texts) == [strip_non_word(t) for t in texts]


def _texts(rng: random.Random, n: int) -> list[str]:
    pieces = ["今天天气很好", "，", "。", "！", "？", " ", "\n", "_", "abc", "ＡＢＣ１２３", "１", "Ⅻ", "①", "ß", "İ",
              "\u200b", "\ufeff", "\x00", "\ud800", "😀", "𠀀", "\U0001d7d8", "é", "e\u0301", "ﬁ", "…", "—", "٣", "x_y"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))) for _ in range(n)]


def test_random_texts_normalize_alike():
    rng = random.Random(0)
    for size in (0, 1, 15, 16, 17, 200):
        texts = _texts(rng, size)
        assert strip_non_word_many(texts) == [strip_non_word(t) for t in texts]
        assert normalize_many(texts) == [normalize(t) for t in texts]
        assert normalize_many(texts, True) == [normalize(t, True) for t in texts]


def test_case_folded_alike_whether_a_character_grows_or_not():
    # ß and İ grow when folded (the batch then folds text by text); Σ, Ａ and ℌ do not
    rng = random.Random(1)
    pieces = ["ΣΑΣ", "σς", "ABC", "Ａｂ", "ℌ", "Ǆ", "今天", "ǅ", "，", "_"]
    for grows in ("", "ß", "İ"):
        texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(40)] + [grows]
        assert normalize_many(texts) == [normalize(t) for t in texts]


def test_empty_and_punctuation_only_texts_keep_their_fallback_key():
    texts = ["", "，。！", " ", "😀😀", "好"] * 5
    assert normalize_many(texts) == [normalize(t) for t in texts]
    assert normalize_many(texts)[2] == ""  # nothing to keep at all: an empty key, as before


def test_every_code_point_is_case_folded_as_casefold_does():
    """_casefold_many folds only the texts holding a character casefold changes (a table over
    the BMP; beyond it, text by text): the same texts as str.casefold on each."""
    from instruct_data.dedupe.keys import _casefold_many

    points = [chr(c) for c in range(0x110000)]
    texts = ["中" + "".join(points[i:i + 64]) for i in range(0, len(points), 64)] + ["中文", "", "ǅ", "𐐀"] * 8
    assert _casefold_many(texts) == [t.casefold() for t in texts]
