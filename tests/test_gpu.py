"""What only a CUDA GPU can check: half-precision training steps, the fused loss in bf16, batched generation.

Every test here carries the `gpu` marker. Without CUDA, tests/conftest.py deselects them (pytest
counts them as "deselected", not skipped or passed); `make gpu-check` runs them on the lent GPU
machine with `pytest -m gpu`. They use only what that machine has, plus the wheels in .gpu-carry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from instruct_data.training.tiny import make_tiny_model

pytestmark = pytest.mark.gpu

BENCHMARK = Path(__file__).resolve().parents[1] / "instruct_data" / "data" / "eval" / "idata-zh-mini.jsonl"
# Question/answer pairs of the shipped benchmark: real Chinese, with short and longer answers.
PAIRS = [(item["question"], item["std_answer"]) for item in map(json.loads, BENCHMARK.read_text("utf-8").splitlines()[:60:10])]


def prompt(question: str) -> str:
    return f"Instruction: {question}\nAnswer: "


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny Qwen2 (untied head, so --modules-to-save can name lm_head) with peaked logits."""
    texts = [prompt(q) + a for q, a in PAIRS]
    return make_tiny_model(tmp_path_factory.mktemp("gpu") / "tiny-qwen2", "qwen2", texts=texts, init_std=0.2)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu-build")
    rows = [{"context": prompt(q), "target": a, "id": f"r{n}-{i}"} for n in range(4) for i, (q, a) in enumerate(PAIRS)]
    (folder / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    (folder / "manifest.json").write_text(json.dumps({"parameters": {"template": "seed"}}), encoding="utf-8")
    return folder


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_steps_with_modules_to_save(tiny, build, tmp_path, precision):
    """fp16 loss scaling refuses fp16 trainable weights ("Attempting to unscale FP16 gradients")."""
    from safetensors.torch import load_file

    from instruct_data.training import make_config, train

    out = train(make_config(data=str(build), model=str(tiny), out=str(tmp_path / precision), precision=precision,
                            modules_to_save="embed_tokens,lm_head", max_steps=4, batch_size=4, lr=1e-3,
                            logging_steps=1, save_steps=100, warmup_ratio=0.0, max_len=64, progress=False,
                            cache_dir=str(tmp_path / "cache")))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    resolved = json.loads((out / "run_config.json").read_text(encoding="utf-8"))["resolved"]
    assert resolved["precision"] == precision
    assert metrics["steps"] == 4
    assert math.isfinite(metrics["first_loss"]) and math.isfinite(metrics["last_loss"])
    assert metrics["peak_gpu_memory_gb"] > 0
    saved = load_file(str(out / "adapter_model.safetensors"))
    assert any("lm_head" in name for name in saved) and any("embed_tokens" in name for name in saved)
    assert any("lora_B" in name and tensor.abs().sum() > 0 for name, tensor in saved.items())


def test_chunked_loss_matches_the_models_own_in_bf16(tiny):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instruct_data.training.collate import PadCollator
    from instruct_data.training.loop import ReplyLoss

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    features = []
    for question, answer in PAIRS:
        context = tokenizer(prompt(question), add_special_tokens=False)["input_ids"]
        reply = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        features.append({"input_ids": context + reply, "labels": [-100] * len(context) + reply})
    inputs = {k: v.cuda() for k, v in PadCollator(tokenizer.pad_token_id, multiple=8)(features).items()}
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    model = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    assert ReplyLoss.applies(model, sharded=False)

    def loss_and_grads(loss_of) -> tuple[float, dict]:
        loss = loss_of()
        loss.backward()
        grads = {n: p.grad.float().clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad()
        return loss.item(), grads

    def fused():
        loss_fn = ReplyLoss(model.get_output_embeddings(), chunk_tokens=16)  # several chunks
        handle = loss_fn.head.register_forward_pre_hook(loss_fn.capture)
        try:
            outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        finally:
            handle.remove()
        assert outputs.logits.shape[1] == 1  # the full logits were never made
        return loss_fn(outputs, inputs["labels"])

    own, own_grads = loss_and_grads(lambda: model(**inputs).loss)
    mine, mine_grads = loss_and_grads(fused)
    assert abs(mine - own) / own < 1e-2
    for name, grad in mine_grads.items():
        assert (grad - own_grads[name]).norm() / own_grads[name].norm() < 3e-2, name


def test_batched_generation_equals_one_at_a_time_in_fp32(tiny):
    """On the GPU, with SDPA and left padding: any difference in fp32 would be a padding bug, not rounding."""
    from instruct_data.evaluation.generation import Decoding, generate, load_model

    model, tokenizer = load_model(str(tiny), dtype="float32", device="cuda")
    prompts = [prompt(q) for q, _ in PAIRS] * 2
    batched = generate(model, tokenizer, prompts, Decoding(max_new_tokens=24, batch_size=len(prompts)))
    single = generate(model, tokenizer, prompts, Decoding(max_new_tokens=24, batch_size=1))
    assert [g.text for g in batched] == [g.text for g in single]
    assert sum(g.new_tokens for g in batched) > 0


def test_bf16_generation_runs_batched_on_the_gpu(tiny):
    from instruct_data.evaluation.generation import Decoding, generate, load_model

    model, tokenizer = load_model(str(tiny), dtype="auto", device="cuda")
    assert model.dtype == torch.bfloat16
    outputs = generate(model, tokenizer, [prompt(q) for q, _ in PAIRS], Decoding(max_new_tokens=16, batch_size=4))
    assert len(outputs) == len(PAIRS) and all(g.new_tokens > 0 or g.finish == "eos" for g in outputs)
