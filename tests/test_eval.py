"""idata eval end to end on a tiny local model with a (perturbed) LoRA adapter, on CPU."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruct_data.errors import IdataError
from instruct_data.evaluation import EvalConfig, evaluate, score
from instruct_data.evaluation.benchmarks import load_benchmark
from instruct_data.evaluation.generation import Decoding, OutOfMemory, generate, generation_kwargs, load_model, trim
from instruct_data.templates import get_template

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model folder, adapter folder): a tiny Llama and a LoRA adapter whose weights are not zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instruct_data.training.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-eval")
    model_dir = make_tiny_model(root / "model", "llama")
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    # init_lora_weights=False: random B as well as A, so the adapter changes the outputs.
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False))
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(adapter)
    template = get_template("belle")  # not the default: the eval must read it from the adapter
    (adapter / "template.json").write_text(json.dumps({"name": template.name, **template.to_dict()}), encoding="utf-8")
    return model_dir, adapter


def _prompts(n=12):
    return [item.prompt for item in load_benchmark("idata-zh-mini", get_template("seed")).items[::8][:n]]


def test_batched_greedy_output_equals_one_by_one(tiny):
    model_dir, adapter = tiny
    # fp32 on any device: this checks the padding, not bf16 rounding (which a GPU's "auto" would bring)
    model, tokenizer = load_model(str(model_dir), str(adapter), dtype="float32")
    prompts = _prompts()
    assert len({len(p) for p in prompts}) > 3  # different lengths: left padding matters
    decoding = Decoding(max_new_tokens=10, batch_size=5, stop=["\nInstruction:"])
    batched = generate(model, tokenizer, prompts, decoding)
    single = generate(model, tokenizer, prompts, Decoding(max_new_tokens=10, batch_size=1, stop=["\nInstruction:"]))
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.new_tokens for g in batched] == [g.new_tokens for g in single]
    assert any(g.text for g in batched)


def test_generation_stops_at_a_stop_string_and_trims_it(tiny):
    model_dir, _ = tiny
    model, tokenizer = load_model(str(model_dir))
    prompts = _prompts(4)
    free = generate(model, tokenizer, prompts, Decoding(max_new_tokens=16, batch_size=4))
    text = next(g.text for g in free if len(g.text) > 6)
    stop = text[3:5]
    index = prompts[[g.text for g in free].index(text)]
    stopped = generate(model, tokenizer, [index], Decoding(max_new_tokens=16, batch_size=1, stop=[stop]))[0]
    assert stopped.text == text[:text.find(stop)]
    assert stopped.finish == "stop_string"


def test_generation_stops_at_the_end_token_recorded_beside_the_adapter(tiny, tmp_path):
    import shutil

    import torch

    from instruct_data.evaluation.generation import end_token_ids

    model_dir, adapter = tiny
    model, tokenizer = load_model(str(model_dir))
    prompt = _prompts(1)[0]
    encoded = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        free = model.generate(**encoded, **generation_kwargs(tokenizer, Decoding(max_new_tokens=8)))
    new = free[0, encoded["input_ids"].shape[1]:].tolist()
    end = new[3]
    cut = new.index(end)  # the first time the model emits it
    # `idata train` writes the trained end token into the run folder's generation_config.json.
    run = tmp_path / "run"
    shutil.copytree(adapter, run)
    (run / "generation_config.json").write_text(json.dumps({"eos_token_id": [end, tokenizer.eos_token_id]}))
    ids = end_token_ids(model, tokenizer, str(run), str(model_dir))
    assert ids[0] == end and tokenizer.eos_token_id in ids
    stopped = generate(model, tokenizer, [prompt], Decoding(max_new_tokens=8, eos_token_ids=ids))[0]
    assert stopped.new_tokens == cut and stopped.finish == "eos"
    assert stopped.text == tokenizer.decode(new[:cut], skip_special_tokens=True)


def test_greedy_is_explicit_and_sampling_repeats_with_its_seed(tiny):
    model_dir, _ = tiny
    model, tokenizer = load_model(str(model_dir))
    kwargs = generation_kwargs(tokenizer, Decoding())
    assert kwargs["do_sample"] is False and kwargs["temperature"] is None
    prompts = _prompts(3)
    sampled = Decoding(max_new_tokens=8, batch_size=3, do_sample=True, seed=7, temperature=1.0, top_p=1.0)
    first = [g.text for g in generate(model, tokenizer, prompts, sampled)]
    again = [g.text for g in generate(model, tokenizer, prompts, sampled)]
    assert first == again


def test_out_of_memory_says_to_lower_the_batch_size(tiny, monkeypatch):
    import torch

    from instruct_data.evaluation import generation

    model_dir, _ = tiny
    model, tokenizer = load_model(str(model_dir))

    def boom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(generation, "_generate_batch", boom)
    with pytest.raises(OutOfMemory, match="--batch-size 8"):
        generate(model, tokenizer, _prompts(3), Decoding(batch_size=16))


def test_trim_cuts_at_the_first_stop_string():
    assert trim("答案是42\nHuman: 还有", ["Human:", "\n\n"]) == ("答案是42\n", True)
    assert trim("没有停止词", ["Human:"]) == ("没有停止词", False)


@pytest.fixture(scope="module")
def compared(tiny, tmp_path_factory):
    model_dir, adapter = tiny
    out = tmp_path_factory.mktemp("eval-out")
    results = evaluate(EvalConfig(model=str(model_dir), adapter=str(adapter), out=str(out), compare_base=True,
                                  limit=30, max_new_tokens=12, batch_size=8, resamples=200))
    return out, results


def test_compare_base_reports_both_columns_and_deltas(compared):
    out, results = compared
    for name in ("predictions.jsonl", "results.json", "report.md", "scores_by_category.png"):
        assert (out / name).is_file(), name
    assert (out / "scores_by_category.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = results["metrics"]
    assert set(metrics) == {"model", "base", "delta"}
    assert set(metrics["model"]) == set(metrics["base"]) == set(metrics["delta"])
    assert "rewrite" in metrics["delta"] and "overall" in metrics["delta"]
    overall = metrics["delta"]["overall"]["rougeL_char"]
    tuned, base = metrics["model"]["overall"]["metrics"]["rougeL_char"], metrics["base"]["overall"]["metrics"]["rougeL_char"]
    assert overall["mean"] == pytest.approx(tuned["mean"] - base["mean"], abs=1e-3)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 30
    assert {"id", "category", "prompt", "reference", "prediction", "scores", "base_prediction", "base_scores"} <= set(rows[0])
    # The adapter was on for one pass and off for the other.
    assert any(r["prediction"] != r["base_prediction"] for r in rows)
    # The template recorded beside the adapter rendered the prompts.
    assert results["template"]["name"] == "belle" and results["template"]["source"].endswith("template.json")
    assert rows[0]["prompt"].startswith("Human: \n")
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| category | items | with reference | base | tuned | tuned − base |" in report
    assert results["decoding"]["mode"] == "greedy" and results["decoding"]["max_new_tokens"] == 12
    assert results["benchmark"]["sha256"] and results["adapter"]["adapter_model.safetensors_sha256"]
    assert {"torch", "transformers", "peft", "rouge-score"} <= set(results["versions"])
    assert results["worse_categories"] == [c for c, d in metrics["delta"].items()
                                           if c != "overall" and d["rougeL_char"]["worse"]]


def test_score_reproduces_an_eval_run_from_its_predictions(compared, tmp_path):
    out, results = compared
    rescored = score(out / "predictions.jsonl", tmp_path / "rescored", resamples=200)
    assert rescored["metrics"] == results["metrics"]
    assert rescored["counts"] == results["counts"]
    # what was scored is still said: the run's model, adapter, template and decoding
    for key in ("benchmark", "model", "adapter", "template", "decoding"):
        assert rescored[key] == results[key], key
    assert (tmp_path / "rescored" / "report.md").is_file()


def test_belle_eval_items_without_reference_are_generated_counted_and_not_scored(tiny, tmp_path):
    model_dir, _ = tiny
    fixture = Path(__file__).parent / "fixtures" / "eval" / "belle_eval_sample.json"
    results = evaluate(EvalConfig(model=str(model_dir), benchmark="belle-eval", from_path=str(fixture),
                                  out=str(tmp_path), max_new_tokens=4, resamples=100))
    assert results["counts"]["items"] == 9
    assert results["counts"]["with_reference"] == 6 and results["counts"]["without_reference"] == 3
    model = results["metrics"]["model"]
    assert set(model) == {"overall", "open qa", "brainstorming", "generation", "closed qa", "rewrite", "math",
                          "classification"}
    assert model["generation"]["metrics"]["rougeL_char"]["n"] == 0
    assert model["rewrite"]["metrics"]["rougeL_char"]["n"] == 1 and model["rewrite"]["counts"]["items"] == 2
    assert model["closed qa"]["counts"]["items"] == 2
    assert "metrics" in results and "base" not in results["metrics"]
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sum(1 for r in rows if r["reference"] is None) == 3
    assert all(r["prediction"] is not None for r in rows)
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "3 without" in report and "could not be items: 1 (empty_instruction" in report


def test_a_model_that_cannot_be_loaded_is_one_clear_error(tmp_path):
    with pytest.raises(IdataError, match="cannot load the model"):
        evaluate(EvalConfig(model=str(tmp_path / "no-model"), out=str(tmp_path / "out"), limit=2))


def test_compare_base_needs_an_adapter(tiny, tmp_path):
    model_dir, _ = tiny
    with pytest.raises(IdataError, match="--adapter"):
        evaluate(EvalConfig(model=str(model_dir), out=str(tmp_path), compare_base=True))


def test_cli_eval_then_score(tiny, tmp_path):
    from instruct_data.cli import cli

    model_dir, adapter = tiny
    out = tmp_path / "cli-out"
    runner = CliRunner()
    heldout = str(Path(__file__).parent / "fixtures" / "eval" / "heldout.jsonl")
    # The held-out file was rendered with seed/chatglm prompts, the adapter learned belle's: an
    # error before any generation, naming the fix (the dialogues, or the file's own template).
    result = runner.invoke(cli, ["eval", "-a", str(adapter), "-b", heldout, "-o", str(out)])
    message = str(result.exception)  # (the console script turns it into one line and exit 2)
    assert isinstance(result.exception, IdataError) and "lack the 'belle' template's" in message
    assert f"idata eval --adapter {adapter} -b BUILD_FOLDER" in message
    assert not out.exists()
    # No --model: the base model is the one named in the adapter's adapter_config.json.
    result = runner.invoke(cli, ["eval", "-a", str(adapter), "-b", heldout, "--template", "seed",
                                 "-o", str(out), "--max-new-tokens", "6", "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout[result.stdout.index("{"):])
    assert results["counts"]["items"] == 3
    assert results["benchmark"]["format"] == "context_target"
    assert results["model"]["name_or_path"] == str(model_dir)
    # Asked with another template than the adapter's, on request: said.
    assert results["warnings"] and "trained with 'belle'" in results["warnings"][0]
    result = runner.invoke(cli, ["score", str(out / "predictions.jsonl"), "-o", str(tmp_path / "again"), "--json"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout[result.stdout.index("{"):])
    assert again["metrics"] == results["metrics"]
    help_text = runner.invoke(cli, ["eval", "--help"]).output
    assert "Example" in help_text and "--compare-base" in help_text
