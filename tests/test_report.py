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
