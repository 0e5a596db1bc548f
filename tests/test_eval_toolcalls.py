"""Scoring tool use in `idata eval`/`idata score` (evaluation/toolcalls.py)."""

import json
from pathlib import Path

import pytest

from instruct_data.evaluation.toolcalls import read_calls, score_calls, strip_reasoning

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京", "days": 1}}\n</tool_call>'


def test_calls_are_read_from_tool_call_blocks_and_from_bare_json():
    assert read_calls(CALL) == [{"name": "get_weather", "arguments": {"city": "北京", "days": 1}}]
    # Llama 3.1's template writes the call as a bare object with `parameters`.
    assert read_calls('{"name": "get_weather", "parameters": {"city": "北京"}}') == [
        {"name": "get_weather", "arguments": {"city": "北京"}}]
    assert read_calls("<tool_call>\n{get_weather(city=北京)}\n</tool_call>") == [None]  # a call, not JSON
    assert read_calls("北京今天晴。") is None and read_calls('{"answer": 42}') is None  # not calls


def test_scores_compare_names_and_json_equal_arguments():
    same = '<tool_call>\n{"arguments": {"days": 1.0, "city": "北京"}, "name": "get_weather"}\n</tool_call>'
    assert score_calls(same, CALL) == {"valid_json": 100.0, "name_accuracy": 100.0, "arguments_exact": 100.0}
    other_city = CALL.replace("北京", "上海")
    assert score_calls(other_city, CALL) == {"valid_json": 100.0, "name_accuracy": 100.0, "arguments_exact": 0.0}
    assert score_calls(CALL.replace("get_weather", "get_time"), CALL)["name_accuracy"] == 0.0
    broken = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>"
    assert score_calls(broken, CALL) == {"valid_json": 0.0, "name_accuracy": 0.0, "arguments_exact": 0.0}
    assert score_calls("北京今天晴。", CALL)["valid_json"] == 0.0  # prose where a call was expected
    assert score_calls(CALL, "北京今天晴。") is None  # not a call item: text metrics only
    # Parallel calls in another order are the same calls.
    two = CALL + "\n" + CALL.replace("北京", "上海")
    swapped = CALL.replace("北京", "上海") + "\n" + CALL
    assert score_calls(swapped, two)["arguments_exact"] == 100.0


def test_reasoning_traces_come_off_before_scoring():
    assert strip_reasoning("<think>\n想一想\n</think>\n\n答案") == ("答案", True)
    assert strip_reasoning("<think>\n想到一半被截断") == ("", True)  # stopped inside the trace
    assert strip_reasoning("答案 <think>不在开头</think>") == ("答案 <think>不在开头</think>", False)
    assert score_calls("<think>查天气</think>\n" + CALL, CALL)["arguments_exact"] == 100.0


def _predictions(path: Path) -> Path:
    """Twelve call items (the tuned model makes seven calls, all right, and answers five in prose;
    its base calls every time, rightly once) and two text items whose prediction has a trace."""
    rows = []
    for n in range(12):
        city = f"城市{n}"
        reference = CALL.replace("北京", city)
        tuned = reference if n < 7 else "我不知道。"
        base = reference if n < 1 else CALL.replace("北京", "错误")
        rows.append({"id": f"c{n}", "category": "tool", "reference": reference, "prediction": tuned,
                     "base_prediction": base})
    for n in range(2):
        rows.append({"id": f"t{n}", "category": "chat", "reference": "北京今天晴。",
                     "prediction": "<think>\n先想想天气。\n</think>\n\n北京今天晴。", "base_prediction": "北京今天晴。"})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_reports_tool_call_accuracy_with_base_verdicts_and_the_traces_taken_off(tmp_path):
    from instruct_data.evaluation import score

    results = score(_predictions(tmp_path / "predictions.jsonl"), tmp_path / "out", resamples=200)
    block = results["tool_calls"]
    assert block["items"] == 12
    overall = {name: block["model"][name]["overall"]["mean"] for name in block["metrics"]}
    assert overall == {"valid_json": 58.3333, "name_accuracy": 58.3333, "arguments_exact": 58.3333}
    assert block["base"]["arguments_exact"]["overall"]["mean"] == 8.3333
    assert block["base"]["valid_json"]["overall"]["mean"] == 100.0
    assert block["delta"]["arguments_exact"]["overall"]["better"]
    assert block["worse"] == ["valid_json", "name_accuracy"]  # the base always calls the right tool
    # The trace is off before the text metrics: the traced reply scores as the plain one.
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "predictions.jsonl").read_text("utf-8").splitlines())}
    assert rows["t0"]["scores"]["exact_match"] == 100.0 and rows["t0"]["reasoning_stripped"] == {"prediction": True}
    assert results["reasoning_stripped"] == {"predictions": 2, "references": 0, "base_predictions": 0}
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "## Tool calls" in report and "| arguments exact match | 8.3" in report
    assert "a leading `<think>…</think>` was taken off 2 predictions" in report


@pytest.mark.slow
def test_eval_on_a_tiny_model_reports_tool_call_accuracy(tmp_path):
    """A benchmark of dialogues whose answer is a call, generated by a tiny model and its base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instruct_data.evaluation import EvalConfig, evaluate
    from instruct_data.training.tiny import make_tiny_model

    model_dir = make_tiny_model(tmp_path / "model", "llama")
    torch.manual_seed(1)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                          LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(tmp_path / "adapter")
    bench = Path(__file__).parent / "fixtures" / "tools" / "eval_calls.jsonl"
    results = evaluate(EvalConfig(model=str(model_dir), adapter=str(tmp_path / "adapter"), out=str(tmp_path / "eval"),
                                  benchmark=str(bench), template="chatml", compare_base=True, max_new_tokens=8,
                                  batch_size=4, resamples=100))
    rows = [json.loads(line) for line in (tmp_path / "eval" / "predictions.jsonl").read_text("utf-8").splitlines()]
    called = [r for r in rows if "tool_scores" in r]
    # The six items whose answer is a call are scored on it, for the model and its base; the chat item is not.
    assert len(rows) == 7 and len(called) == 6 and all("base_tool_scores" in r for r in called)
    assert called[0]["reference"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>'
    assert "<tools>" in called[0]["prompt"]  # the tool list is in the prompt, as in training
    block = results["tool_calls"]
    assert block["items"] == 6 and set(block["delta"]) == {"valid_json", "name_accuracy", "arguments_exact"}
    for name in block["metrics"]:
        mean = block["model"][name]["overall"]["mean"]
        assert mean == pytest.approx(sum(r["tool_scores"][name] for r in called) / 6, abs=1e-3)
    assert "## Tool calls" in (tmp_path / "eval" / "report.md").read_text(encoding="utf-8")


def test_a_benchmark_of_tool_dialogues_has_an_item_per_reply_calls_included():
    from instruct_data.evaluation.benchmarks import load_benchmark
    from instruct_data.templates import get_template

    bench = load_benchmark(str(Path(__file__).parent / "fixtures" / "tools" / "glaive.json"), get_template("chatml"))
    items = {item.id: item for item in bench.items}
    assert list(items) == ["glaive:1#t1", "glaive:1#t2", "glaive:1#t3", "glaive:2#t1", "glaive:2#t2", "glaive:3", "glaive:9"]
    first = items["glaive:1#t1"]
    assert read_calls(first.reference) == [{"name": "get_weather", "arguments": {"city": "北京"}}]
    assert first.question == "北京今天天气怎么样？" and items["glaive:1#t3"].question == "谢谢！"
    assert score_calls(first.reference, first.reference)["arguments_exact"] == 100.0
    assert len(bench.rejected) == 5  # the rows the checks reject are counted, not items
