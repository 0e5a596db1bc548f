"""Per-item scores of a prediction against its reference, right for Chinese.

Google's `rouge-score` splits text with an English tokenizer that drops every character
outside [a-z0-9]: two identical Chinese strings score 0. Here it is always given a
tokenizer object of our own:

- ROUGE-1/2/L F1 on characters, the language-neutral choice;
- ROUGE-1/2/L F1 on jieba words, the way the ChatGLM p-tuning and LLaMA-Factory scripts
  report it (they call `rouge_chinese` on jieba words; that package counts each distinct
  n-gram once, `rouge-score` counts repeats, so the two agree wherever no word n-gram repeats);
- BLEU-4 on characters, `nltk` sentence_bleu with SmoothingFunction().method3, as
  LLaMA-Factory's `eval_bleu_rouge.py` computes it;

All three drop punctuation and whitespace before counting (`content_chars`): a reply of only
`，，，…` shares every comma with a Chinese reference and would otherwise earn ROUGE for
nothing (issue 24 measured ROUGE-L 13.3 and a "better" verdict for one). Symbols (`+`, `=`,
`%`) stay: in arithmetic they are the answer. This is where idata's numbers differ from
LLaMA-Factory's, which count punctuation.
- exact match after normalization (NFKC, case, whitespace and punctuation), only for short
  references: a long answer is never expected verbatim.

Scores are in 0–100. An empty prediction scores 0 on every metric; an item with no
reference gets no scores at all (None) and is left out of the averages.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
import warnings

CHAR_METRICS = ("rouge1_char", "rouge2_char", "rougeL_char")
WORD_METRICS = ("rouge1_word", "rouge2_word", "rougeL_word")
METRICS = CHAR_METRICS + WORD_METRICS + ("bleu4", "exact_match")
METRIC_LABELS = {
    "rouge1_char": "ROUGE-1 (char)",
    "rouge2_char": "ROUGE-2 (char)",
    "rougeL_char": "ROUGE-L (char)",
    "rouge1_word": "ROUGE-1 (jieba)",
    "rouge2_word": "ROUGE-2 (jieba)",
    "rougeL_word": "ROUGE-L (jieba)",
    "bleu4": "BLEU-4 (char)",
    "exact_match": "exact match",
}
HEADLINE = "rougeL_char"
# References up to this many characters (after normalization) are also scored by exact match.
SHORT_REFERENCE_CHARS = 20
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL"]


def _is_content(ch: str) -> bool:
    """Not whitespace and not punctuation (Unicode categories P*: ，。！？…、“” and ASCII .,!?)."""
    return not ch.isspace() and not unicodedata.category(ch).startswith("P")


def content_chars(text: str) -> list[str]:
    """The characters ROUGE and BLEU count: NFKC, ASCII lowercased, punctuation and whitespace dropped."""
    return [ch for ch in unicodedata.normalize("NFKC", text).lower() if _is_content(ch)]


class CharTokenizer:
    """rouge-score tokenizer: one token per character, punctuation and whitespace dropped."""

    def tokenize(self, text: str) -> list[str]:
        return content_chars(text)


class JiebaTokenizer:
    """rouge-score tokenizer: jieba words, words of only punctuation or whitespace dropped."""

    def tokenize(self, text: str) -> list[str]:
        return [word for word in _jieba().cut(text) if any(_is_content(ch) for ch in word)]


@functools.cache
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter on every run
    jieba.initialize()
    return jieba


@functools.cache
def char_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(ROUGE_TYPES, tokenizer=CharTokenizer())


@functools.cache
def word_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(ROUGE_TYPES, tokenizer=JiebaTokenizer())


def normalize_answer(text: str) -> str:
    """For exact match: NFKC, lowercase, no whitespace, no punctuation (Chinese or ASCII)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def is_short(reference: str) -> bool:
    return 0 < len(normalize_answer(reference)) <= SHORT_REFERENCE_CHARS


def has_reference(reference: str | None) -> bool:
    return bool(reference and reference.strip())


def bleu4(prediction: str, reference: str) -> float:
    """Sentence BLEU-4 on characters (punctuation and whitespace dropped) with smoothing method 3, in 0–100."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hypothesis, target = content_chars(prediction), content_chars(reference)
    if not hypothesis or not target:
        return 0.0
    with warnings.catch_warnings():  # nltk warns on short sentences; method3 handles them
        warnings.simplefilter("ignore")
        return 100.0 * sentence_bleu([target], hypothesis, smoothing_function=SmoothingFunction().method3)


def _rouge(scorer, prediction: str, reference: str, suffix: str) -> dict[str, float]:
    scores = scorer.score(reference, prediction)  # rouge-score takes (target, prediction)
    return {f"{kind}_{suffix}": 100.0 * scores[kind].fmeasure for kind in ROUGE_TYPES}


def score_item(prediction: str | None, reference: str | None) -> dict[str, float | None]:
    """Every metric for one item; all None when there is no reference."""
    if not has_reference(reference):
        return {name: None for name in METRICS}
    prediction = prediction or ""
    scores: dict[str, float | None] = {}
    if not prediction.strip():
        scores.update({name: 0.0 for name in CHAR_METRICS + WORD_METRICS + ("bleu4",)})
    else:
        scores.update(_rouge(char_scorer(), prediction, reference, "char"))
        scores.update(_rouge(word_scorer(), prediction, reference, "word"))
        scores["bleu4"] = bleu4(prediction, reference)
    if is_short(reference):
        scores["exact_match"] = 100.0 if normalize_answer(prediction) == normalize_answer(reference) else 0.0
    else:
        scores["exact_match"] = None
    return {name: (round(value, 4) if value is not None else None) for name, value in scores.items()}
