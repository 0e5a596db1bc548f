"""Generation throughput of `idata eval` against a one-prompt-at-a-time loop, same model, same run.

    python benchmarks/bench_eval.py                 # CUDA if present: a Qwen2.5-0.5B-shape model
    python benchmarks/bench_eval.py --device cpu    # the tiny local model, runs anywhere
    python benchmarks/bench_eval.py --json bench.json

Both paths generate greedily with the same settings (max new tokens, EOS and the seed
template's stop string) on the prompts of the shipped `idata-zh-mini` benchmark:
- `idata eval`: instruct_data.evaluation.generation.generate, the path `idata eval` runs
  (prompts sorted by length, left-padded batches);
- `loop`: tokenizer -> model.generate -> decode, one prompt at a time.

On a GPU the model has Qwen2.5-0.5B's shape (its config is written below; random weights in
bf16, nothing downloaded) and the target is at least 8x the loop's new tokens per second.
On a CPU it uses the tiny test model, so the script runs everywhere; CPU numbers say little
about a GPU (and on a shared 2-core machine they are pessimistic).

The prompts use the tiny trained tokenizer in both cases (its ids are valid for the larger
vocabulary); random weights rarely pick EOS, so most sequences run to --max-new-tokens, and
the count of new tokens is what each path actually generated.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

# Qwen/Qwen2.5-0.5B's config.json (the fields that set the shape and the cost).
QWEN25_05B = dict(
    vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
    rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
)
TARGET_SPEEDUP = 8.0


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def build_model(kind: str, device: str, workdir: Path):
    """(model, tokenizer, description)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

    from instruct_data.training.tiny import make_tiny_model

    tiny_dir = make_tiny_model(workdir / "tiny", "llama")
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    tokenizer.padding_side = "left"
    if kind == "tiny":
        model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
        return model.to(device).eval(), tokenizer, "tiny llama (64 hidden, 2 layers), fp32"
    config = Qwen2Config(**QWEN25_05B, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    return model.to(device).eval(), tokenizer, f"Qwen2.5-0.5B shape ({params:.2f}B params, random), {str(dtype)[6:]}"


def timed(fn, device: str):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def loop_generate(model, tokenizer, prompts, decoding):
    """The baseline: one prompt at a time, same generation settings."""
    import torch

    from instruct_data.evaluation.generation import generation_kwargs

    kwargs = generation_kwargs(tokenizer, decoding)
    tokens = 0
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            output = model.generate(**encoded, **kwargs)
        new = output[0, encoded["input_ids"].shape[1]:].tolist()
        tokens += next((i for i, t in enumerate(new) if t in (tokenizer.eos_token_id, tokenizer.pad_token_id)), len(new))
        tokenizer.decode(new, skip_special_tokens=True)
    return tokens


def main(argv=None) -> int:
    import torch

    from instruct_data.evaluation.benchmarks import load_benchmark
    from instruct_data.evaluation.generation import Decoding, generate
    from instruct_data.templates import get_template

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", choices=["auto", "tiny", "qwen2.5-0.5b"], default="auto",
                        help="auto: the 0.5B shape on a GPU, the tiny model on a CPU")
    parser.add_argument("--prompts", type=int, default=None, help="prompts for idata eval's path [GPU 100, CPU 48]")
    parser.add_argument("--loop-prompts", type=int, default=None, help="prompts for the loop [GPU 24, CPU 16]")
    parser.add_argument("--batch-size", type=int, default=None, help="[GPU 50, CPU 16]")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="[GPU 64, CPU 32]")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    gpu = args.device.startswith("cuda")
    kind = args.model if args.model != "auto" else ("qwen2.5-0.5b" if gpu else "tiny")
    n_prompts = args.prompts or (100 if gpu else 48)
    n_loop = args.loop_prompts or (24 if gpu else 16)
    decoding = Decoding(max_new_tokens=args.max_new_tokens or (64 if gpu else 32),
                        batch_size=args.batch_size or (50 if gpu else 16), stop=list(get_template("seed").stop))

    items = load_benchmark("idata-zh-mini", get_template("seed")).items
    prompts = [items[i % len(items)].prompt for i in range(n_prompts)]
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, description = build_model(kind, args.device, Path(tmp))
        # Warm up both paths (CUDA kernels, the stop-string tables) before timing.
        generate(model, tokenizer, prompts[:2], Decoding(max_new_tokens=4, batch_size=2, stop=decoding.stop))
        loop_generate(model, tokenizer, prompts[:1], Decoding(max_new_tokens=4, stop=decoding.stop))
        batched, batched_s = timed(lambda: generate(model, tokenizer, prompts, decoding), args.device)
        loop_tokens, loop_s = timed(lambda: loop_generate(model, tokenizer, prompts[:n_loop], decoding), args.device)
    batched_tokens = sum(g.new_tokens for g in batched)
    rows = [
        {"path": f"idata eval (batch {decoding.batch_size}, sorted, left-padded)", "prompts": n_prompts,
         "new_tokens": batched_tokens, "seconds": batched_s, "tokens_per_s": batched_tokens / batched_s},
        {"path": "one prompt at a time", "prompts": n_loop, "new_tokens": loop_tokens, "seconds": loop_s,
         "tokens_per_s": loop_tokens / loop_s},
    ]
    speedup = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    print(f"device: {device_name(args.device)}")
    print(f"model:  {description}; greedy, max {decoding.max_new_tokens} new tokens, stop {decoding.stop!r}")
    print()
    print(f"| {'path':<44} | prompts | new tokens | seconds | new tokens/s |")
    print(f"|{'-' * 46}|--------:|-----------:|--------:|-------------:|")
    for row in rows:
        print(f"| {row['path']:<44} | {row['prompts']:>7} | {row['new_tokens']:>10} | {row['seconds']:>7.2f} | "
              f"{row['tokens_per_s']:>12.1f} |")
    print()
    verdict = ""
    if kind == "qwen2.5-0.5b" and gpu:
        verdict = " (target >= 8x: " + ("met" if speedup >= TARGET_SPEEDUP else "NOT met") + ")"
    print(f"speed-up: {speedup:.1f}x{verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name(args.device), "model": description,
                                               "decoding": decoding.describe(), "rows": rows, "speedup": speedup},
                                              indent=2) + "\n", encoding="utf-8")
    return 0 if (kind != "qwen2.5-0.5b" or not gpu or speedup >= TARGET_SPEEDUP) else 1


if __name__ == "__main__":
    sys.exit(main())
