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


def test_a_recipes_system_text_is_in_the_builds_dialogues_as_train_jsonl_rendered_it(tmp_path):
    """The recipe's `system:` overrides a row's own (templates.render). conversations.jsonl and
    heldout_conversations.jsonl, which export, eval and `idata train` read, carry the text the
    build rendered: they had none, so everything made from them lost it."""
    own = tmp_path / "own.jsonl"  # a row with a system text of its own: the recipe's wins
    own.write_text(json.dumps({"conversations": [{"from": "system", "value": "你是一名数学老师。"},
                                                 {"from": "human", "value": "三角形的内角和是多少度？"},
                                                 {"from": "gpt", "value": "三角形的内角和是180度。"}]},
                              ensure_ascii=False) + "\n", encoding="utf-8")
    system = "你是一个乐于助人的助手。"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"sources": [{"files": [str(SAMPLE), str(GLAIVE), str(own)]}], "system": system,
                                  "split": {"heldout": 0.2}, "max_reject_rate": 1}, ensure_ascii=False),
                      encoding="utf-8")
    build = tmp_path / "build"
    result = idata("build", recipe, "--out", build)
    assert result.returncode == 0, result.stderr
    dialogues = lines(build / "conversations.jsonl")
    held = lines(build / "heldout_conversations.jsonl")
    assert held and any(d.get("tools") for d in dialogues) and any(d["origin"]["file"].endswith("own.jsonl") for d in dialogues + held)
    assert {d.get("system") for d in dialogues + held} == {system}

    # Re-rendered, each dialogue gives the build's record of its last reply, system text and all.
    out = tmp_path / "again.jsonl"
    assert idata("convert", build / "conversations.jsonl", "--out", out).returncode == 0
    last = {re.sub(r"#t\d+$", "", record["id"]): record for record in lines(build / "train.jsonl")}
    again = lines(out)
    assert len(again) == len(dialogues)
    for dialogue, record in zip(dialogues, again):
        assert (record["context"], record["target"]) == (last[dialogue["id"]]["context"], last[dialogue["id"]]["target"])
        assert record["context"].startswith(system) or dialogue.get("tools")  # seed: the system text leads


def test_a_broken_record_is_a_reject_naming_the_field(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": "x:1", "source": "x", "turns": [{"role": "assistant", "text": "先说话"}]}\n'
                    '{"id": "x:2", "source": "x", "turns": [{"role": "user", "text": "你好"}, '
                    '{"role": "assistant", "text": "你好！", "weight": 7}]}\n', encoding="utf-8")
    result = idata("validate", path)
    assert result.returncode == 1
    assert f"{path}:2: invalid: turns.1.weight: Input should be 0 or 1" in result.stderr
