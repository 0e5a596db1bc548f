"""What a user sees of an eval besides the numbers: the chart's Chinese labels, progress in a log."""

import re
import warnings

import pytest

from instruct_data.evaluation import report as eval_report
from instruct_data.evaluation.aggregate import summarize
from instruct_data.evaluation.metrics import score_item
from instruct_data.report import cjk_font

CATEGORIES = ["开放问答", "头脑风暴", "closed qa"]


def _results():
    rows = [{"id": f"{c}:{i}", "category": c, "prediction": p, "reference": "今天天气很好",
             "scores": score_item(p, "今天天气很好")}
            for c in CATEGORIES for i, p in enumerate(["今天天气很好", "今天下雨", "天气不错"])]
    return {"metrics": {"model": summarize(rows, resamples=50)}}


def _render(tmp_path):
    """Draw the chart with every warning recorded; (font used, missing-glyph warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        font = eval_report.write_chart(_results(), tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000
    return font, [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_categories_in_the_eval_chart_are_drawn_with_the_build_plots_cjk_font(tmp_path):
    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font installed here (make fonts installs fonts-wqy-microhei)")
    used, missing = _render(tmp_path)
    assert used == font  # the same lookup as the build's plots (WenQuanYi Micro Hei from `make fonts`)
    assert missing == []  # every glyph of 开放问答 and 头脑风暴 was in the font: no boxes


def test_without_a_cjk_font_labels_are_numbered_and_the_report_says_which(tmp_path, monkeypatch):
    import instruct_data.report

    monkeypatch.setattr(instruct_data.report, "cjk_font", lambda: None)
    used, missing = _render(tmp_path)
    assert used is None and missing == []  # [n] labels, never boxes
    assert eval_report.chart_labels(["overall", *CATEGORIES], None) == ["overall", "[2]", "[3]", "closed qa"]
    results = {**_results(), "chart": "chart.png", "chart_font": None,
               "bootstrap": {"resamples": 50, "seed": 0, "short_reference_chars": 20}}
    text = "\n".join(eval_report._reference_sections(results))
    assert "[3] 头脑风暴, [4] 开放问答" in text and "make fonts" in text  # the chart's order: overall, then sorted


def test_a_logged_eval_prints_a_progress_line_at_least_every_interval(tmp_path, monkeypatch):
    """Not on a terminal (a log, CI): plain lines from instruct_data.progress, every 30 s in a real run."""
    from click.testing import CliRunner

    from instruct_data.cli import cli, eval_cmd
    from instruct_data.training.tiny import make_tiny_model

    assert eval_cmd.PROGRESS_EVERY_S == 30.0
    monkeypatch.setattr(eval_cmd, "PROGRESS_EVERY_S", 0.2)
    model = make_tiny_model(tmp_path / "model", "llama")
    result = CliRunner().invoke(cli, ["eval", "-m", str(model), "-b", "idata-zh-mini", "--per-category", "1",
                                       "--max-new-tokens", "4", "--batch-size", "2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("eval: ")]
    assert len(lines) >= 2, result.output
    assert any("%" in line for line in lines)
    # Every line says how many answers of how many, from the first (while the model loads), never "0 items".
    items = int(re.search(r"scored (\d+) items", result.output).group(1))
    counts = [re.search(r"(\d+) of (\d+) answers", line) for line in lines]
    assert all(counts) and {int(c.group(2)) for c in counts} == {items}, lines
    assert "items" not in "\n".join(lines)
