"""report.md and its plots, and `idata stats`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe

BELLE = Path(__file__).parent / "fixtures" / "belle"


def test_build_writes_report_and_plots_and_stats_redraws_them(tmp_path):
    out = tmp_path / "out"
    build(parse_recipe({"sources": [{"belle": "0.5M", "from": str(BELLE)}, {"belle": "2M", "from": str(BELLE)}],
                        "split": {"heldout": 1}, "clean": {"pii": {"mode": "reject"}}}), out, workers=1)
    report = (out / "report.md").read_text(encoding="utf-8")
    for plot in ("lengths.png", "rejects.png", "categories.png", "duplicates.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({plot})" in report
    assert "| belle-0.5M | 8 |" in report
    assert "clean/pii" in report and "clean/truncated_reply" in report
    assert "exact: 1" in report
    (out / "report.md").unlink()
    (out / "lengths.png").unlink()
    result = CliRunner().invoke(cli, ["stats", str(out)])
    assert result.exit_code == 0, result.output
    assert "belle-2M" in result.output and "clean/pii" in result.output
    assert (out / "report.md").read_text(encoding="utf-8") == report
    assert (out / "lengths.png").exists()
    data = json.loads(CliRunner().invoke(cli, ["stats", str(out), "--json", "--no-report"]).output)
    assert data["counts"]["totals"]["read"] == 13 and sum(data["stats"]["reply_length"]) == sum(data["split"]["train"].values())


def test_stats_on_a_folder_that_is_not_a_build_fails_clearly(tmp_path):
    result = CliRunner().invoke(cli, ["stats", str(tmp_path)])
    assert result.exit_code != 0
    assert "manifest.json" in str(result.exception) or "manifest.json" in result.output


def test_report_shows_three_examples_per_reject_reason_and_says_when_labels_fall_back(tmp_path, monkeypatch):
    from instruct_data import report

    rejects = [{"stage": "clean", "reason": "ai_identity", "origin": f"data.jsonl:{n}",
                "raw": {"instruction": "描述一次难忘的经历", "output": f"作为一个人工智能助手，我没有经历。{n}"}} for n in range(1, 6)]
    rejects.append({"stage": "read", "reason": "unparseable", "origin": "data.jsonl:9", "raw": "{not json | at all"})
    (tmp_path / "rejects.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects),
                                            encoding="utf-8")
    manifest = {"template": "seed", "check": "read = written + rejected + removed",
                "counts": {"balanced": True, "totals": {"read": 6, "written": 0, "rejected": 6, "removed": 0},
                           "per_source": {"data": {"read": 6, "written": 0, "rejected": 6, "removed": 0}},
                           "rejects_by_reason": {"clean/ai_identity": {"data": 5}, "read/unparseable": {"data": 1}},
                           "pii_masks_by_kind": {"phone": 2}, "turns_cut_by_rule": {"ai_identity": 1}},
                "stats": {"categories": {"写作": 3, "math": 2}}}
    examples = report.reject_examples(tmp_path)
    assert [where for where, _ in examples["clean/ai_identity"]] == ["data.jsonl:1", "data.jsonl:2", "data.jsonl:3"]
    monkeypatch.setattr(report, "cjk_font", lambda: None)
    plots = report._plots(tmp_path, manifest)
    text = report.render_markdown(manifest, plots, examples, font=None)
    assert "- `data.jsonl:2`: 描述一次难忘的经历 → 作为一个人工智能助手，我没有经历。2" in text
    assert "- `data.jsonl:9`: {not json \\| at all" in text
    assert "fall back to `[n]`" in text and "- phone: 2" in text and "- ai_identity: 1" in text
    assert (tmp_path / "categories.png").read_bytes()[:4] == b"\x89PNG"
