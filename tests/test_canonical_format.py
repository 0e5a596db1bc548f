"""idata's own canonical records as an input format: a build's conversations.jsonl and
heldout_conversations.jsonl can be validated, rendered with another template and built from."""

import json
import re
from pathlib import Path

from entrypoint import idata

GLAIVE = Path(__file__).parent / "fixtures" / "tools" / "glaive.json"
SAMPLE = Path(__file__).resolve().parents[1] / "instruct_data" / "data" / "sample"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_builds_dialogues_read_back_and_render_as_the_build_rendered_them(tmp_path):
    build = tmp_path / "build"
    result = idata("build", SAMPLE, GLAIVE, "--heldout", "0.2", "--max-reject-rate", "1", "--out", build)
    assert result.returncode == 0, result.stderr
    checked = idata("validate", build / "conversations.jsonl", build / "heldout_conversations.jsonl")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.count("(idata)") == 2

    # Each dialogue, converted with the build's template, gives the build's record of its last reply.
    out = tmp_path / "again.jsonl"
    assert idata("convert", build / "conversations.jsonl", "--out", out).returncode == 0
    last = {}
    for record in lines(build / "train.jsonl"):
        last[re.sub(r"#t\d+$", "", record["id"])] = record
    dialogues = lines(build / "conversations.jsonl")
    again = lines(out)
    assert len(again) == len(dialogues) and any(d.get("tools") for d in dialogues)
    for dialogue, record in zip(dialogues, again):
        assert (record["context"], record["target"]) == (last[dialogue["id"]]["context"], last[dialogue["id"]]["target"])

    # And in another template, tools included.
    chatml = tmp_path / "chatml.jsonl"
    assert idata("convert", build / "conversations.jsonl", "--template", "chatml", "--out", chatml).returncode == 0
    assert all(r["context"].startswith("<|im_start|>") for r in lines(chatml))


def test_a_broken_record_is_a_reject_naming_the_field(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": "x:1", "source": "x", "turns": [{"role": "assistant", "text": "先说话"}]}\n'
                    '{"id": "x:2", "source": "x", "turns": [{"role": "user", "text": "你好"}, '
                    '{"role": "assistant", "text": "你好！", "weight": 7}]}\n', encoding="utf-8")
    result = idata("validate", path)
    assert result.returncode == 1
    assert f"{path}:2: invalid: turns.1.weight: Input should be 0 or 1" in result.stderr
