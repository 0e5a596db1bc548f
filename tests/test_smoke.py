import json

from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.schema import Conversation, Turn
from instruct_data.templates import render


def test_seed_template_renders_instruction_and_input():
    conv = Conversation(id="a", source="s", turns=[Turn(role="user", text="翻译", input="你好"),
                                                   Turn(role="assistant", text="Hello")])
    assert render(conv, "seed") == ("Instruction: 翻译\nInput: 你好\nAnswer: ", "Hello")


def test_demo_writes_train_file_and_balanced_manifest(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records and all(r["context"].startswith("Instruction: ") for r in records)
    manifest = json.loads((tmp_path / "train.manifest.json").read_text(encoding="utf-8"))
    totals = manifest["counts"]["totals"]
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
