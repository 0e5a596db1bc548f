"""`idata export`: a build as LLaMA-Factory, Hugging Face and OpenAI-messages data, read back by
the tools that consume them (LLaMA-Factory's own loader, `datasets.load_dataset`)."""

from __future__ import annotations

import importlib.machinery
import json
import re
import shutil
import sys
import types
from pathlib import Path

import pytest
import yaml

from entrypoint import assert_one_line_error, idata
from instruct_data.schema import Conversation

FIXTURE = Path(__file__).parent / "fixtures" / "export" / "tool_dialogue.json"


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """The bundled sample built as a user would, plus one tool dialogue with a reasoning trace
    in its conversations (the record idata reads tool data into), and one multi-turn dialogue
    held out, whatever the split drew (the sample's 17 dialogues in 290 rows may give none)."""
    from instruct_data.demo import demo_build

    folder = tmp_path_factory.mktemp("export") / "build"
    demo_build(folder)
    with open(folder / "conversations.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(json.loads(FIXTURE.read_text(encoding="utf-8")), ensure_ascii=False) + "\n")
    dialogue = next(line for line in (folder / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
                    if sum(turn["role"] == "assistant" for turn in json.loads(line)["turns"]) > 1)
    with open(folder / "heldout_conversations.jsonl", "a", encoding="utf-8") as fh:
        fh.write(dialogue + "\n")
    return folder


def conversations(build: Path) -> list[Conversation]:
    return [Conversation.model_validate_json(line) for line in (build / "conversations.jsonl").read_text().splitlines()]


def heldout_count(build: Path) -> int:
    """The held-out dialogues (a dialogue that calls tools gives heldout.jsonl a line per reply)."""
    return sum(1 for line in (build / "heldout_conversations.jsonl").read_text().splitlines() if line.strip())


def test_held_out_tool_dialogues_are_exported_with_their_calls_results_and_tools(tmp_path):
    """The held-out split is exported from the build's held-out dialogues: read back from the
    rendered heldout.jsonl, each reply of a dialogue that calls tools became a dialogue of its own,
    its calls `<tool_call>` text, its results user turns, and its tools were lost."""
    from datasets import load_dataset

    glaive = Path(__file__).parent / "fixtures" / "tools" / "glaive.json"
    build = tmp_path / "build"
    assert idata("build", glaive, "--heldout", "3", "--max-reject-rate", "1", "--out", build).returncode == 0
    held = [Conversation.model_validate_json(line)
            for line in (build / "heldout_conversations.jsonl").read_text(encoding="utf-8").splitlines()]
    calling = [c for c in held if any(t.tool_calls for t in c.turns)]
    assert calling, "the fixture's split holds out no dialogue that calls tools: pick another --heldout"
    out = tmp_path / "hf"
    assert idata("export", build, "--to", "hf", "--out", out).returncode == 0
    rows = {row["id"]: row for row in load_dataset(str(out))["heldout"]}
    assert sorted(rows) == sorted(c.id for c in held)  # one per dialogue, under the dialogue's id
    for conversation in calling:
        row = rows[conversation.id]
        roles = [m["role"] for m in row["messages"] if m["role"] != "system"]
        assert roles == [t.role for t in conversation.turns] and "tool" in roles
        assert any(m["tool_calls"] for m in row["messages"]) and json.loads(row["tools"])
        assert not any("<tool_call>" in (m["content"] or "") for m in row["messages"])


def test_hf_export_round_trips_through_load_dataset(build, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "hf"
    result = idata("export", build, "--to", "hf", "--out", out)
    assert result.returncode == 0, result.stderr
    dataset = load_dataset(str(out))
    train = conversations(build)
    assert dataset["train"].num_rows == len(train)
    assert dataset["heldout"].num_rows == heldout_count(build)
    by_id = {row["id"]: row for row in dataset["train"]}
    for conversation in train:
        messages = by_id[conversation.id]["messages"]
        texts = [m["content"] for m in messages if m["role"] != "system"]
        assert texts == [t.full_text if t.role == "user" else t.text for t in conversation.turns]
    agent = by_id["agent:1"]
    assert agent["messages"][0] == {"role": "system", "content": "你是一个出行助手。", "reasoning_content": None,
                                    "tool_calls": None, "tool_call_id": None, "name": None, "weight": None}
    call = agent["messages"][2]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "北京", "date": "明天"}
    assert agent["messages"][3]["role"] == "tool" and agent["messages"][3]["tool_call_id"] == call["id"]
    assert agent["messages"][-1]["reasoning_content"] == "用户只是道谢，简短回应即可。"
    assert json.loads(agent["tools"])[0]["function"]["name"] == "get_weather"


def test_hf_dataset_card_says_what_the_data_is(build, tmp_path):
    out = tmp_path / "hf"
    assert idata("export", build, "--to", "hf", "--out", out, "--license", "apache-2.0").returncode == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "apache-2.0" and front["language"] == ["zh"]
    assert front["task_categories"] == ["text-generation"] and front["size_categories"] == ["n<1K"]
    assert [f["split"] for f in front["configs"][0]["data_files"]] == ["train", "heldout"]
    manifest = json.loads((build / "manifest.json").read_text())
    totals = manifest["counts"]["totals"]
    assert f"Of {totals['read']:,} rows read, {totals['written']:,} were written" in card
    for reason, per_source in manifest["counts"]["rejects_by_reason"].items():
        assert f"| `{reason}` | {sum(per_source.values()):,} |" in card  # every reason, with its count
    assert "## Deduplication and contamination" in card and "| `truncated` |" in card
    assert json.loads((out / "idata_manifest.json").read_text()) == manifest
    # each rule's precision on the frozen test split, as the benchmark recorded it (it said "not
    # measured" for every rule: nothing wrote the file the card reads)
    from instruct_data.export.card import MEASURED

    measured = json.loads(MEASURED.read_text(encoding="utf-8"))
    assert measured["split"] == "test" and measured["rows"] >= 1000
    truncated = measured["rules"]["truncated"]
    assert re.search(rf"\| `truncated` \| [\d,]+ \| {truncated['precision']:.3f} \[[\d.]+, [\d.]+\] over "
                     rf"{truncated['fired']} firings \|", card)


def test_openai_export_keeps_calls_results_and_tools(build, tmp_path):
    out = tmp_path / "train.messages.jsonl"
    assert idata("export", build, "--to", "openai", "--out", out).returncode == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(conversations(build))
    agent = rows[-1]
    assert [m["role"] for m in agent["messages"]] == ["system", "user", "assistant", "tool", "assistant", "user",
                                                      "assistant"]
    calling = agent["messages"][2]
    assert calling["content"] == "我来查一下。"  # text and call in one turn: both kept
    assert json.loads(calling["tool_calls"][0]["function"]["arguments"])["city"] == "北京"
    assert agent["messages"][3]["tool_call_id"] == calling["tool_calls"][0]["id"]
    assert agent["tools"] == [{"type": "function", "function": json.loads(FIXTURE.read_text())["tools"][0]}]
    held = tmp_path / "heldout.messages.jsonl"
    assert idata("export", build, "--to", "openai", "--split", "heldout", "--out", held).returncode == 0
    assert len(held.read_text().splitlines()) == heldout_count(build)


def _llamafactory():
    """LLaMA-Factory's data loader, as its users call it. Installed without its dependencies
    (`make setup`: its pins would downgrade datasets, peft and transformers); its media plugin
    imports torchaudio at import time, which has no wheel for this torch, and text data never
    reach it, so an empty module stands in for it."""
    pytest.importorskip("omegaconf", reason="LLaMA-Factory's hparams need omegaconf: make setup installs it")
    if importlib.util.find_spec("llamafactory") is None:
        pytest.skip("llamafactory is not installed: `pip install --no-deps llamafactory==0.9.5` (make setup does)")
    if importlib.util.find_spec("torchaudio") is None:
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules.setdefault("torchaudio", stub)
    import os

    os.environ["DISABLE_VERSION_CHECK"] = "1"  # its transformers pin stops at 5.6; the data code runs on ours
    from llamafactory.data.loader import _load_single_dataset
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.hparams import DataArguments, ModelArguments

    return get_dataset_list, _load_single_dataset, DataArguments, ModelArguments


def test_llama_factory_export_loads_and_aligns_in_llamafactory(build, tmp_path):
    from transformers import Seq2SeqTrainingArguments

    get_dataset_list, load_single, DataArguments, ModelArguments = _llamafactory()
    out = tmp_path / "lf"
    result = idata("export", build, "--to", "llama-factory", "--out", out, "--name", "mine")
    assert result.returncode == 0, result.stderr
    info = json.loads((out / "dataset_info.json").read_text())
    assert sorted(info) == ["mine_alpaca", "mine_heldout_alpaca", "mine_heldout_sharegpt", "mine_sharegpt"]
    data_args = DataArguments(dataset_dir=str(out))
    model_args = ModelArguments(model_name_or_path=str(tmp_path))
    training_args = Seq2SeqTrainingArguments(output_dir=str(tmp_path / "run"), report_to=[])
    aligned = {name: load_single(attr, model_args, data_args, training_args)
               for name, attr in zip(info, get_dataset_list(list(info), str(out)))}
    train = conversations(build)
    single = [c for c in train if len(c.turns) == 2 and not c.has_tools]
    assert len(aligned["mine_alpaca"]) == len(single)
    assert len(aligned["mine_sharegpt"]) == len(train) - len(single)
    assert len(aligned["mine_heldout_alpaca"]) + len(aligned["mine_heldout_sharegpt"]) == heldout_count(build)
    first = aligned["mine_alpaca"][0]
    assert first["_prompt"][0]["content"] == single[0].turns[0].full_text
    assert first["_response"][0]["content"] == single[0].turns[1].text
    agent = aligned["mine_sharegpt"][len(aligned["mine_sharegpt"]) - 1]
    assert agent["_system"] == "你是一个出行助手。"
    assert json.loads(agent["_tools"])[0]["name"] == "get_weather"
    roles = [m["role"] for m in agent["_prompt"]] + [m["role"] for m in agent["_response"]]
    assert roles == ["user", "function", "observation", "assistant", "user", "assistant"]
    call = agent["_prompt"][1]["content"]
    assert call.startswith("<think>\n我来查一下。\n</think>")  # the text beside the call is kept, not lost
    assert json.loads(call.split("</think>\n\n")[1]) == {"name": "get_weather", "arguments": {"city": "北京", "date": "明天"}}
    assert agent["_response"][0]["content"].startswith("<think>\n用户只是道谢")


def test_export_refuses_a_folder_of_yours_and_replaces_its_own(build, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("my notes")
    result = idata("export", build, "--to", "hf", "--out", out)
    assert_one_line_error(result, 1, "notes.md")
    assert (out / "notes.md").read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == ["notes.md"]
    fresh = tmp_path / "fresh"
    for _ in range(2):  # a second export into its own folder replaces it
        assert idata("export", build, "--to", "llama-factory", "--out", fresh).returncode == 0
    assert not [p for p in fresh.parent.iterdir() if p.name.startswith(".")]  # no staged folder left


def test_a_dataset_name_that_is_a_path_is_refused_and_writes_nothing(build, tmp_path):
    """`--name ../notes` wrote `notes_alpaca.jsonl` beside --out, over a user's file of that name."""
    (tmp_path / "notes_alpaca.jsonl").write_text("my notes")
    for name in ("../notes", "a/b", ".hidden", ".."):
        result = idata("export", build, "--to", "llama-factory", "--out", tmp_path / "lf", "--name", name)
        assert_one_line_error(result, 2, "a dataset name, not a path")
    assert (tmp_path / "notes_alpaca.jsonl").read_text() == "my notes" and not (tmp_path / "lf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes_alpaca.jsonl"]
    assert idata("export", build, "--to", "llama-factory", "--out", tmp_path / "lf", "--name", "我的数据.v2").returncode == 0
    assert (tmp_path / "lf" / "我的数据.v2_alpaca.jsonl").exists()


def test_export_never_writes_into_the_build_it_reads(build, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(build, copy)
    before = (copy / "conversations.jsonl").read_bytes()
    for to, out in (("openai", copy / "conversations.jsonl"), ("hf", copy / "hf")):
        result = idata("export", copy, "--to", to, "--out", out, "--overwrite")
        assert_one_line_error(result, 1, "inside the build folder")
    assert (copy / "conversations.jsonl").read_bytes() == before and not (copy / "hf").exists()


def test_export_of_a_folder_that_is_not_a_build(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "x.json")
    result = idata("export", folder, "--to", "hf", "--out", tmp_path / "hf")
    assert_one_line_error(result, 2, "not a build folder")


def test_a_build_without_a_held_out_split_exports_its_training_rows(tmp_path):
    """A build made without --heldout (the default) writes empty held-out files; the export read
    them as input files and failed with 'heldout.jsonl:1: file holds no rows' for every format."""
    from datasets import load_dataset

    rows = tmp_path / "mine.jsonl"
    rows.write_text("".join(json.dumps({"instruction": f"第{n}个问题：请解释一下这个概念", "output": f"第{n}个回答，内容在这里。"},
                                       ensure_ascii=False) + "\n" for n in range(5)), encoding="utf-8")
    build = tmp_path / "build"
    assert idata("build", rows, "--out", build).returncode == 0
    assert (build / "heldout_conversations.jsonl").read_bytes() == b""

    assert idata("export", build, "--to", "openai", "--out", tmp_path / "m.jsonl").returncode == 0
    assert len((tmp_path / "m.jsonl").read_text(encoding="utf-8").splitlines()) == 5
    assert idata("export", build, "--to", "hf", "--out", tmp_path / "hf").returncode == 0
    assert list(load_dataset(str(tmp_path / "hf"))) == ["train"]
    assert idata("export", build, "--to", "llama-factory", "--out", tmp_path / "lf").returncode == 0
    assert list(json.loads((tmp_path / "lf" / "dataset_info.json").read_text(encoding="utf-8"))) == ["build_alpaca"]
    assert_one_line_error(idata("export", build, "--to", "openai", "--split", "heldout", "--out", tmp_path / "h.jsonl"),
                          2, "held no rows out", "--heldout")


WEATHER = {"messages": [
    {"role": "user", "content": "请帮我查一下北京今天的天气情况，我准备出门。"},
    {"role": "assistant", "content": "好的，我来帮您查询。", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"北京\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "{\"weather\": \"晴\", \"temp\": 20}"},
    {"role": "assistant", "content": "北京今天晴，气温20度，适合出门。"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "查询天气", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]}


def test_a_llama_factory_export_reads_back_as_the_records_it_was_built_from(tmp_path):
    """Build, export to LLaMA-Factory, build the export again: the same records, context for
    context. The text beside a call (the call turn's leading <think> block) was read as part of
    the call's JSON, a bad_arguments reject; the recipe's system text was missing from the export."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in (
        {"instruction": "什么是光合作用？请简要说明其过程和意义", "input": "",
         "output": "光合作用是绿色植物利用光能把二氧化碳和水合成有机物并释放氧气的过程。"},
        {"instruction": "那它对人类有什么意义？", "output": "它提供了人类呼吸所需的氧气和食物的来源。",
         "history": [["请写一句关于秋天的诗句", "秋风萧瑟天气凉，草木摇落露为霜。"]]})), encoding="utf-8")
    weather = tmp_path / "weather.jsonl"  # text beside a call (OpenAI messages: a file of its own format)
    weather.write_text(json.dumps(WEATHER, ensure_ascii=False) + "\n", encoding="utf-8")
    agent = tmp_path / "agent.jsonl"  # text beside a call, a reply with a reasoning trace, its own system text
    agent.write_text(json.dumps(json.loads(FIXTURE.read_text(encoding="utf-8")), ensure_ascii=False) + "\n",
                     encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"sources": [{"files": [str(rows), str(weather), str(agent)]}],
                                  "system": "你是一个乐于助人的助手。", "split": {"heldout": 0}}, ensure_ascii=False),
                      encoding="utf-8")
    build = tmp_path / "build"
    assert idata("build", recipe, "--out", build).returncode == 0
    assert idata("export", build, "--to", "llama-factory", "--out", tmp_path / "lf", "--name", "rt").returncode == 0
    exported = [tmp_path / "lf" / "rt_alpaca.jsonl", tmp_path / "lf" / "rt_sharegpt.jsonl"]
    calls = [turn["value"] for line in exported[1].read_text(encoding="utf-8").splitlines()
             for turn in json.loads(line)["conversations"] if turn["from"] == "function_call"]
    assert sorted(call.split("\n</think>")[0] for call in calls) == ["<think>\n好的，我来帮您查询。", "<think>\n我来查一下。"]

    again = tmp_path / "again"
    result = idata("build", *exported, "--heldout", "0", "--out", again)
    assert result.returncode == 0, result.stderr

    def records(folder: Path) -> list[tuple[str, str]]:
        return sorted((r["context"], r["target"]) for r in map(json.loads, (folder / "train.jsonl").read_text(
            encoding="utf-8").splitlines()))

    built = records(build)
    assert len(built) == 1 + 2 + 2 + 3 and records(again) == built
    assert all(context.startswith("你是一个乐于助人的助手。") for context, _ in built)
    assert ("好的，我来帮您查询。\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"北京\"}}\n"
            "</tool_call>") in [target for _, target in built]
