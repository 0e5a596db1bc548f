"""Metrics against hand-computed values, and the traps of scoring Chinese text."""

import math

import pytest

from instruct_data.evaluation import metrics
from instruct_data.evaluation.aggregate import mean_interval, paired_delta, summarize
from instruct_data.evaluation.metrics import CharTokenizer, JiebaTokenizer, score_item


def test_identical_chinese_strings_score_100_on_every_metric():
    text = "今天天气很好，我们一起去公园散步吧，顺便买点水果回家。"
    scores = score_item(text, text)
    assert set(scores) == set(metrics.METRICS)
    for name in ("rouge1_char", "rouge2_char", "rougeL_char", "rouge1_word", "rouge2_word", "rougeL_word", "bleu4"):
        assert scores[name] == pytest.approx(100.0), name
    assert scores["exact_match"] is None  # a long reference is never expected verbatim


def test_short_identical_answer_is_an_exact_match():
    assert score_item("北京", "北京")["exact_match"] == 100.0
    # Normalization: punctuation, whitespace, full-width forms and case do not matter.
    assert score_item(" 北京。", "北京")["exact_match"] == 100.0
    assert score_item("ＡＢＣ", "abc")["exact_match"] == 100.0
    assert score_item("上海", "北京")["exact_match"] == 0.0


def test_partial_overlap_matches_hand_computed_rouge_and_bleu():
    # prediction 今天天气不错 vs reference 今天天气很好, both 6 characters.
    scores = score_item("今天天气不错", "今天天气很好")
    # unigrams: 今 天 天 气 shared (4 of 6 each way) -> F1 = 4/6
    assert scores["rouge1_char"] == pytest.approx(100 * 4 / 6, abs=1e-3)
    # bigrams: 今天 天天 天气 shared (3 of 5) -> 3/5
    assert scores["rouge2_char"] == pytest.approx(60.0, abs=1e-3)
    # longest common subsequence 今天天气 = 4 -> 4/6
    assert scores["rougeL_char"] == pytest.approx(100 * 4 / 6, abs=1e-3)
    # BLEU-4: precisions 4/6, 3/5, 2/4, 1/3, no brevity penalty -> (1/15) ** (1/4)
    assert scores["bleu4"] == pytest.approx(100 * (1 / 15) ** 0.25, abs=1e-3)
    assert scores["exact_match"] == 0.0


def test_brevity_penalty_for_a_short_prediction():
    scores = score_item("今天天气", "今天天气很好")
    assert scores["rouge1_char"] == pytest.approx(100 * 2 * 1 * (4 / 6) / (1 + 4 / 6), abs=1e-3)  # P=1, R=4/6
    assert scores["rouge2_char"] == pytest.approx(100 * 2 * 1 * (3 / 5) / (1 + 3 / 5), abs=1e-3)
    # every n-gram precision is 1; brevity penalty exp(1 - 6/4)
    assert scores["bleu4"] == pytest.approx(100 * math.exp(1 - 6 / 4), abs=1e-3)


def test_jieba_word_rouge_on_known_segmentation():
    prediction, reference = "我喜欢吃苹果", "我喜欢吃香蕉"
    pred_words = JiebaTokenizer().tokenize(prediction)
    ref_words = JiebaTokenizer().tokenize(reference)
    assert pred_words == ["我", "喜欢", "吃", "苹果"]
    assert ref_words == ["我", "喜欢", "吃", "香蕉"]
    scores = score_item(prediction, reference)
    assert scores["rouge1_word"] == pytest.approx(75.0, abs=1e-3)  # 3 of 4 words
    assert scores["rouge2_word"] == pytest.approx(100 * 2 / 3, abs=1e-3)  # 我喜欢, 喜欢吃 of 3 bigrams
    assert scores["rougeL_word"] == pytest.approx(75.0, abs=1e-3)


def test_the_character_tokenizer_is_the_one_in_use():
    assert isinstance(metrics.char_scorer()._tokenizer, CharTokenizer)
    assert isinstance(metrics.word_scorer()._tokenizer, JiebaTokenizer)
    assert CharTokenizer().tokenize("你好 世界Ａ。") == ["你", "好", "世", "界", "a"]
    # The trap the character tokenizer avoids: rouge-score's default drops every Chinese character.
    from rouge_score import rouge_scorer

    default = rouge_scorer.RougeScorer(["rouge1"]).score("今天天气很好", "今天天气很好")
    assert default["rouge1"].fmeasure == 0.0
    assert score_item("今天天气很好", "今天天气很好")["rouge1_char"] == 100.0


def test_a_reply_of_only_punctuation_earns_nothing():
    """Issue 24: a tuned model that answered only commas scored ROUGE-L 13.3 and looked better."""
    reference = "首先，准备食材，然后，把锅烧热，最后，放入调料。"
    for reply in ("，，，，，，…", "，。！？、 \n ……", ". , ! ?"):
        scores = score_item(reply, reference)
        for name in ("rouge1_char", "rouge2_char", "rougeL_char", "rouge1_word", "rouge2_word", "rougeL_word", "bleu4"):
            assert scores[name] == 0.0, (reply, name)
    # Punctuation neither helps nor hurts a real answer: the same words, punctuated differently, score 100.
    same = score_item("首先准备食材 然后把锅烧热。最后放入调料！", reference)
    assert same["rougeL_char"] == pytest.approx(100.0) and same["bleu4"] == pytest.approx(100.0)
    assert CharTokenizer().tokenize("1+1=2，对吗？") == ["1", "+", "1", "=", "2", "对", "吗"]  # symbols stay


def test_empty_prediction_scores_zero_without_a_crash():
    for prediction in ("", "   ", None):
        scores = score_item(prediction, "今天天气很好")
        assert all(value == 0.0 for name, value in scores.items() if name != "exact_match")
        assert scores["exact_match"] == 0.0


def test_item_without_reference_has_no_scores():
    for reference in ("", "  ", None):
        assert all(value is None for value in score_item("随便说点什么", reference).values())


def _rows():
    texts = [("今天天气很好", "今天天气很好", "open qa"), ("", "你好", "open qa"), ("写诗", None, "generation"),
             ("上海", "北京", "closed qa"), ("北京", "北京", "closed qa")]
    return [{"id": str(i), "category": c, "prediction": p, "reference": r, "scores": score_item(p, r)}
            for i, (p, r, c) in enumerate(texts)]


def test_summary_counts_empty_and_unreferenced_items_and_excludes_the_latter():
    summary = summarize(_rows(), resamples=200)
    overall = summary["overall"]
    assert overall["counts"] == {"items": 5, "with_reference": 4, "without_reference": 1, "empty_predictions": 1}
    # rouge1_char over the 4 referenced items: 100, 0 (empty), 0, 100
    assert overall["metrics"]["rouge1_char"]["mean"] == pytest.approx(50.0)
    assert overall["metrics"]["rouge1_char"]["n"] == 4
    assert summary["generation"]["counts"]["without_reference"] == 1
    assert summary["generation"]["metrics"]["rouge1_char"]["n"] == 0
    assert summary["generation"]["metrics"]["rouge1_char"]["mean"] is None
    assert list(summary) == ["overall", "closed qa", "generation", "open qa"]


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [0.0, 10.0, 20.0, 30.0, 90.0, 100.0, 55.0, 42.0]
    first = mean_interval(values, resamples=500, seed=3, key="x")
    again = mean_interval(values, resamples=500, seed=3, key="x")
    other = mean_interval(values, resamples=500, seed=4, key="x")
    assert first == again
    assert first != other
    assert first["low"] < first["mean"] < first["high"]
    assert 0.0 <= first["low"] and first["high"] <= 100.0
    assert mean_interval([], resamples=10, seed=0, key="x")["mean"] is None


def test_paired_delta_marks_a_category_worse_only_beyond_the_interval():
    rows = []
    for i in range(12):
        # "math": tuned always worse than base; "open qa": tuned and base trade places.
        rows.append({"id": f"m{i}", "category": "math", "reference": "42",
                     "scores": {n: 0.0 for n in metrics.METRICS}, "base_scores": {n: 100.0 for n in metrics.METRICS}})
        tuned, base = (100.0, 0.0) if i % 2 else (0.0, 100.0)
        rows.append({"id": f"q{i}", "category": "open qa", "reference": "x",
                     "scores": {n: tuned for n in metrics.METRICS}, "base_scores": {n: base for n in metrics.METRICS}})
    deltas = paired_delta(rows, resamples=300)
    assert deltas["math"]["rougeL_char"]["mean"] == -100.0
    assert deltas["math"]["rougeL_char"]["worse"] is True
    assert deltas["open qa"]["rougeL_char"]["mean"] == 0.0
    assert deltas["open qa"]["rougeL_char"]["worse"] is False
