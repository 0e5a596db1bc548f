"""Benchmarks: the registry, the shipped idata-zh-mini, belle-eval's quirks, heldout files."""

import json
from pathlib import Path

import pytest

from instruct_data.evaluation import benchmarks
from instruct_data.evaluation.benchmarks import BenchmarkError, load_benchmark, registry
from instruct_data.io import file_sha256
from instruct_data.templates import get_template

FIXTURES = Path(__file__).parent / "fixtures" / "eval"
BELLE_CLASSES = {"open qa", "brainstorming", "rewrite", "generation", "math", "classification", "closed qa",
                 "summarization", "code", "extract"}


def test_registry_pins_belle_eval_by_commit_and_sha256():
    entry = registry()["belle-eval"]
    assert entry["url"] == "https://raw.githubusercontent.com/LianjiaTech/BELLE/645084d/eval/eval_set.json"
    assert entry["sha256"] == "a6a13d9968571e381bbe4b67b173134e99f402e6379e416bd9b089f148cd4671"
    assert entry["format"] == "qa_benchmark"


def test_repository_eval_folder_shows_the_packaged_registry_and_benchmark():
    root = Path(__file__).parent.parent / "eval"
    assert (root / "registry.yaml").read_bytes() == (benchmarks.data_dir() / "registry.yaml").read_bytes()
    assert (root / "idata-zh-mini.jsonl").read_bytes() == (benchmarks.data_dir() / "idata-zh-mini.jsonl").read_bytes()
    assert (root / "idata-zh-mini.md").is_file()  # the datasheet


def test_shipped_benchmark_is_the_default_and_covers_every_belle_category():
    bench = load_benchmark()
    assert bench.name == "idata-zh-mini"
    assert bench.sha256 == registry()["idata-zh-mini"]["sha256"]
    assert len(bench.items) == 100
    assert {item.category for item in bench.items} == BELLE_CLASSES
    assert all(item.reference for item in bench.items)
    assert len({item.id for item in bench.items}) == 100
    first = bench.items[0]
    assert first.prompt == "Instruction: 中国的首都是哪座城市？\nAnswer: "  # the seed template
    assert first.reference == "北京"


def test_prompts_follow_the_template():
    bench = load_benchmark("idata-zh-mini", get_template("belle"), limit=3)
    assert len(bench.items) == 3
    assert bench.items[0].prompt == "Human: \n中国的首都是哪座城市？\n\nAssistant: \n"


def test_belle_eval_schema_loads_from_a_local_copy_with_its_quirks():
    path = FIXTURES / "belle_eval_sample.json"
    bench = load_benchmark("belle-eval", from_path=str(path))
    assert bench.name == "belle-eval"
    # 10 rows: one has no question at all (a reject with its reason), nine are items
    assert len(bench.items) == 9
    assert [r["reason"] for r in bench.rejected] == ["empty_instruction"]
    assert bench.rejected[0]["origin"].endswith("belle_eval_sample.json:10")
    # empty std_answer: kept, without reference
    unreferenced = [item for item in bench.items if item.reference is None]
    assert {item.category for item in unreferenced} == {"brainstorming", "generation", "rewrite"}
    assert len(unreferenced) == 3
    # the non-breaking space in `closed\u00a0qa` is shown as a plain space, and both items group together
    closed = [item for item in bench.items if item.category == "closed qa"]
    assert len(closed) == 2
    assert all("\u00a0" not in (item.category or "") for item in bench.items)
    info = bench.describe()
    assert info["sha256"] == file_sha256(path)
    assert info["sha256_matches_registry"] is False  # a fixture, not BELLE's file


def test_belle_eval_offline_without_from_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("IDATA_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchmarkError, match="--from"):
        load_benchmark("belle-eval")


def test_a_cached_download_is_used_only_when_its_checksum_matches(monkeypatch, tmp_path):
    monkeypatch.setenv("IDATA_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = FIXTURES / "belle_eval_sample.json"
    cached = tmp_path / "benchmarks" / "belle-eval" / "eval_set.json"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(source.read_bytes())
    with pytest.raises(BenchmarkError):  # wrong sha256: not BELLE's file, not used
        load_benchmark("belle-eval")
    entries = registry()
    entries["belle-eval"]["sha256"] = file_sha256(source)
    monkeypatch.setattr(benchmarks, "registry", lambda: entries)
    assert len(load_benchmark("belle-eval").items) == 9


def test_heldout_context_is_the_prompt_as_is():
    bench = load_benchmark(str(FIXTURES / "heldout.jsonl"), get_template("belle"))
    assert bench.format == "context_target"
    assert [item.id for item in bench.items] == ["h1", "h2", "h3"]
    assert bench.items[2].prompt == "[Round 1]\n问：你好\n答：你好！\n[Round 2]\n问：今天星期几？\n答："
    assert bench.items[0].reference == "雨是从云中落到地面的水滴。"
    assert bench.items[0].category == "open_qa"
    # rendered with seed prompts (2 of 3): fine for a seed model, a warning for a belle one
    assert load_benchmark(str(FIXTURES / "heldout.jsonl"), get_template("seed")).template_warning(get_template("seed")) is None
    assert "3 of 3 prompts" in bench.template_warning(get_template("belle"))


def test_any_reader_format_is_rendered_and_its_rejects_are_counted():
    bench = load_benchmark(str(FIXTURES / "alpaca_bench.jsonl"))
    assert bench.format == "alpaca"
    assert len(bench.items) == 2
    assert bench.items[0].prompt == "Instruction: 把下面的句子翻译成英文。\nInput: 我喜欢春天。\nAnswer: "
    assert bench.items[0].reference == "I like spring."
    assert bench.items[0].category == "rewrite"
    assert [r["reason"] for r in bench.rejected] == ["empty_reply"]


def test_unknown_benchmark_is_a_clear_error():
    with pytest.raises(BenchmarkError, match="idata-zh-mini"):
        load_benchmark("no-such-benchmark")


def test_shipped_benchmark_rows_are_well_formed():
    path = benchmarks.data_dir() / "idata-zh-mini.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) == {"id", "class", "question", "std_answer"}
        assert row["question"].strip() and row["std_answer"].strip()


def test_per_category_keeps_every_category():
    bench = load_benchmark("idata-zh-mini", per_category=2)
    assert len(bench.items) == 20
    assert {item.category for item in bench.items} == BELLE_CLASSES


def _remote_entry(monkeypatch, tmp_path, sha256):
    source = FIXTURES / "belle_eval_sample.json"
    entries = registry()
    entries["belle-eval"]["url"] = source.resolve().as_uri()  # file://: urllib's same download path
    entries["belle-eval"]["sha256"] = sha256
    monkeypatch.setattr(benchmarks, "registry", lambda: entries)
    monkeypatch.setenv("IDATA_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("IDATA_OFFLINE", raising=False)
    return source


def test_download_is_checked_against_the_pinned_sha256(monkeypatch, tmp_path):
    source = _remote_entry(monkeypatch, tmp_path, "0" * 64)
    with pytest.raises(BenchmarkError, match="expected 0000"):
        load_benchmark("belle-eval")
    assert not any(p.is_file() for p in (tmp_path / "benchmarks").rglob("*"))  # nothing half-written is kept
    _remote_entry(monkeypatch, tmp_path, file_sha256(source))
    bench = load_benchmark("belle-eval")
    assert len(bench.items) == 9
    assert Path(bench.path) == tmp_path / "benchmarks" / "belle-eval" / "belle_eval_sample.json"
    assert bench.describe()["sha256_matches_registry"] is True


def _record(i, turns, system=None):
    found = {"id": f"mine:{i}", "source": "mine", "turns": [{"role": r, "text": t} for r, t in turns]}
    return {**found, "system": system} if system else found


def test_canonical_conversations_are_a_benchmark_rendered_with_the_template(tmp_path):
    path = tmp_path / "conversations.jsonl"
    rows = [_record(1, [("user", "长城有多长？"), ("assistant", "两万多公里。")]),
            _record(2, [("user", "你好"), ("assistant", "你好！"), ("user", "今天星期几？"), ("assistant", "星期三。")]),
            {"id": "x", "turns": [{"role": "user", "text": "没有回答"}]}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    bench = load_benchmark(str(path), get_template("chatml"))
    assert bench.format == "conversations"  # was refused as "unknown format"
    assert [i.reference for i in bench.items] == ["两万多公里。", "星期三。"]
    assert bench.items[1].prompt == ("<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！<|im_end|>\n"
                                     "<|im_start|>user\n今天星期几？<|im_end|>\n<|im_start|>assistant\n")
    assert [r["reason"] for r in bench.rejected] == ["not_a_record"]


def _fake_build(folder: Path, contexts: list[str], template="seed") -> Path:
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"command": "build", "parameters": {"template": {"name": template}}}))
    (folder / "heldout.jsonl").write_text("".join(
        json.dumps({"context": c, "target": "答", "id": f"h{i}", "source": "s"}, ensure_ascii=False) + "\n"
        for i, c in enumerate(contexts)), encoding="utf-8")
    return folder


def test_a_build_folder_is_asked_in_the_models_template_or_fails_naming_the_fix(tmp_path):
    from instruct_data.errors import IdataError
    from instruct_data.evaluation.heldout import agree
    from instruct_data.schema import Turn
    from instruct_data.templates import render_prompt

    chatml, seed = get_template("chatml"), get_template("seed")
    q1, a1, q2 = Turn(role="user", text="你好"), Turn(role="assistant", text="你好！"), Turn(role="user", text="几点了？")
    build = _fake_build(tmp_path / "build", [render_prompt(seed, [], q2), render_prompt(seed, [(q1, a1)], q2)])
    bench = agree(load_benchmark(str(build), chatml), chatml, "runs/x")
    assert bench.format == "context_target" and bench.name == "build"
    assert [i.prompt for i in bench.items] == [render_prompt(chatml, [], q2), render_prompt(chatml, [(q1, a1)], q2)]
    assert bench.describe()["rerendered"] == {"from": "seed", "to": "chatml", "items": 2}
    same = agree(load_benchmark(str(build / "heldout.jsonl"), seed), seed, None)  # the build's own template: as is
    assert same.items[0].prompt == render_prompt(seed, [], q2) and same.rerendered is None

    broken = _fake_build(tmp_path / "broken", ["这不是 seed 模板写的提示"])
    with pytest.raises(IdataError, match=f"idata train --data {broken} --template seed"):
        agree(load_benchmark(str(broken), chatml), chatml, "runs/x")
    empty = _fake_build(tmp_path / "empty", [])
    with pytest.raises(IdataError, match="no held-out rows"):
        load_benchmark(str(empty), chatml)


def test_a_build_that_wrote_its_held_out_dialogues_is_rendered_from_them_system_included(tmp_path):
    from instruct_data.evaluation.heldout import agree

    build = _fake_build(tmp_path / "build", ["Instruction: 几点了？\nAnswer: "])
    rows = [_record(7, [("user", "几点了？"), ("assistant", "三点。")], system="回答要简短。")]
    (build / "heldout_conversations.jsonl").write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    chatml = get_template("chatml")
    bench = agree(load_benchmark(str(build), chatml), chatml, None)
    assert bench.format == "conversations" and [i.id for i in bench.items] == ["mine:7"]
    assert bench.items[0].prompt == ("<|im_start|>system\n回答要简短。<|im_end|>\n"
                                     "<|im_start|>user\n几点了？<|im_end|>\n<|im_start|>assistant\n")


def test_the_template_comes_from_the_adapters_run_config_when_template_json_is_missing(tmp_path):
    from instruct_data.evaluation.run import resolve_template

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "run_config.json").write_text(json.dumps({"resolved": {"template": "chatml"}}))
    template, source = resolve_template(None, str(adapter))
    assert template.name == "chatml" and source.endswith("run_config.json")
    (adapter / "template.json").write_text(json.dumps(get_template("belle").to_dict()))
    assert resolve_template(None, str(adapter))[0].name == "belle"  # template.json, the full record, first


@pytest.mark.parametrize("name", ["seed", "chatglm", "belle", "chatml", "llama3", "glm4"])
def test_a_held_out_prompt_is_re_rendered_with_its_system_text(name):
    from instruct_data.schema import Turn
    from instruct_data.templates import parse_system, render_prompt
    from instruct_data.training.data import rerendered_context

    built = get_template(name)
    history = [(Turn(role="user", text="你好"), Turn(role="assistant", text="你好！"))]
    question = Turn(role="user", text="长城有多长？")
    for system in ("回答要简短。", "第一行\n第二行"):
        context = render_prompt(built, history, question, system)
        assert parse_system(built, context) == system
        for target in ("chatml", "seed"):
            expected = render_prompt(get_template(target), history, question, system)
            assert rerendered_context(context, get_template(target), built) == expected, (name, target)
    assert parse_system(built, render_prompt(built, history, question)) is None


def test_a_build_is_asked_from_its_held_out_dialogues_every_reply_of_one_that_calls_tools(tmp_path):
    """heldout_conversations.jsonl, rendered as training renders: the same items as the build's
    heldout.jsonl (a dialogue that calls tools gives every reply, its calls scored), and each
    item's question is the user's own words, not a rendered context."""
    from entrypoint import idata

    build = tmp_path / "build"
    glaive = Path(__file__).parent / "fixtures" / "tools" / "glaive.json"
    assert idata("build", glaive, "--heldout", "3", "--max-reject-rate", "1", "--out", build).returncode == 0
    seed = get_template("seed")
    bench = load_benchmark(str(build), seed)
    assert Path(bench.path).name == "heldout_conversations.jsonl" and bench.format == "conversations"
    records = [json.loads(line) for line in (build / "heldout.jsonl").read_text(encoding="utf-8").splitlines()]
    assert any("#t2" in r["id"] for r in records)  # a dialogue that calls tools, held out reply by reply
    assert [(i.id, i.prompt, i.reference) for i in bench.items] == [(r["id"], r["context"], r["target"]) for r in records]
    assert all(i.question and "Instruction:" not in i.question and "<tools>" not in i.question for i in bench.items)
