"""idata score: predictions made elsewhere, scored with idata eval's metrics."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruct_data.errors import InputError
from instruct_data.evaluation import score

FIXTURES = Path(__file__).parent / "fixtures" / "eval"


def test_llamafactory_predict_label_file_is_scored(tmp_path):
    results = score(FIXTURES / "llamafactory_predictions.jsonl", tmp_path, resamples=100)
    assert results["counts"] == {"items": 3, "with_reference": 3, "without_reference": 0, "empty_predictions": 1}
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["scores"]["rouge1_char"] for r in rows] == [100.0, pytest.approx(66.6667), 0.0]
    # mean of 100, 66.6667 and 0 (the empty prediction counts as 0)
    assert results["metrics"]["model"]["overall"]["metrics"]["rouge1_char"]["mean"] == pytest.approx(55.5556, abs=1e-3)
    assert "base" not in results["metrics"]
    assert (tmp_path / "report.md").is_file() and (tmp_path / "scores_by_category.png").is_file()


def test_base_predictions_give_deltas(tmp_path):
    path = tmp_path / "preds.jsonl"
    rows = [{"id": str(i), "category": "math", "reference": "42", "prediction": "42", "base_prediction": "41"}
            for i in range(6)]
    rows.append({"id": "x", "category": "generation", "reference": "", "prediction": "一首诗", "base_prediction": ""})
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    results = score(path, tmp_path / "out", resamples=100)
    delta = results["metrics"]["delta"]
    assert delta["math"]["exact_match"]["mean"] == 100.0 and delta["math"]["exact_match"]["better"]
    assert delta["generation"]["rougeL_char"]["n"] == 0  # no reference: counted, not scored
    assert results["metrics"]["model"]["generation"]["counts"]["without_reference"] == 1
    assert results["worse_categories"] == []


def test_numbers_are_answers_too(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text(json.dumps({"predict": 42, "label": 42}) + "\n" + json.dumps({"predict": "41", "label": 42}) + "\n")
    results = score(path, tmp_path / "out", resamples=50)
    assert results["counts"]["with_reference"] == 2
    assert results["metrics"]["model"]["overall"]["metrics"]["exact_match"]["mean"] == 50.0


def test_a_file_without_predictions_fails_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "你好", "answer": "你好"}, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:1: no prediction field"):
        score(path, tmp_path / "out")


def test_cli_score_writes_a_folder_beside_the_predictions_by_default(tmp_path):
    from instruct_data.cli import cli

    path = tmp_path / "preds.jsonl"
    shutil.copy(FIXTURES / "llamafactory_predictions.jsonl", path)
    result = CliRunner().invoke(cli, ["score", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "preds-scored"
    assert (out / "results.json").is_file() and (out / "report.md").is_file()
    assert (out / "predictions.jsonl").is_file()  # the rescored rows, with per-item scores
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds-scored", "preds.jsonl"]


def test_out_that_is_a_file_is_a_clear_error(tmp_path):
    from instruct_data.errors import IdataError

    (tmp_path / "taken").write_text("x")
    with pytest.raises(IdataError, match="is a file"):
        score(FIXTURES / "llamafactory_predictions.jsonl", tmp_path / "taken")
