"""The README's main command: `idata demo` runs build -> train -> eval on the bundled sample."""

import json

from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.schema import Conversation, Turn
from instruct_data.templates import render


def test_seed_template_renders_instruction_and_input():
    conv = Conversation(id="a", source="s", turns=[Turn(role="user", text="翻译", input="你好"),
                                                   Turn(role="assistant", text="Hello")])
    assert render(conv, "seed") == ("Instruction: 翻译\nInput: 你好\nAnswer: ", "Hello")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_builds_trains_and_evaluates_offline(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output

    build = tmp_path / "build"
    train, heldout = read_jsonl(build / "train.jsonl"), read_jsonl(build / "heldout.jsonl")
    assert train and heldout
    assert all(r["context"].startswith("Instruction: ") for r in train)
    manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    totals = manifest["counts"]["totals"]
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
    assert totals["rejected"] > 0 and totals["removed"] > 0  # the sample's planted noise is caught
    # A dialogue becomes one record per reply, so there are at least as many records as rows kept.
    assert len(train) + len(heldout) >= totals["written"]

    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert json.loads((adapter / "template.json").read_text(encoding="utf-8"))["name"] == "seed"

    results = json.loads((tmp_path / "eval" / "results.json").read_text(encoding="utf-8"))
    assert results["counts"]["items"] == len(heldout)
    assert set(results["metrics"]) == {"model", "base", "delta"}
    assert (tmp_path / "eval" / "report.md").is_file()
    # the shipped multiple-choice set, base vs tuned, in the report's first section
    knowledge = results["knowledge"]["idata-zh-mc"]
    assert knowledge["benchmark"]["items"] == 100 and "forgot_subjects" in knowledge["summary"]
    report = (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")
    assert "## Did tuning help or hurt?" in report and "knowledge: accuracy" in report
    assert "knowledge (idata-zh-mc, 100 multiple-choice items)" in result.output
    # The summary tells the truth about a tiny model trained for seconds, and ends with where to look.
    empty = results["counts"]["empty_predictions"]
    worse = ", ".join(results["worse_categories"]) or "none"
    assert f"{empty} of {len(heldout)} tuned predictions are empty" in result.output
    assert f"categories worse than base: {worse}" in result.output and "expected to lose to its base" in result.output
    assert result.output.strip().splitlines()[-1].startswith(f"Read the report: {tmp_path}/eval/report.md")
    metrics = json.loads((adapter / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["last_loss"] < metrics["first_loss"] - 0.3  # the tiny model's loss visibly falls
