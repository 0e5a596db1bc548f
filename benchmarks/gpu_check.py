"""GPU proof: `idata train` and `idata eval` measured on a real GPU, in one call (`make gpu-check`).

    make gpu-prepare                      # here: .gpu-carry/ = wheels the GPU machine lacks + a build folder
    make gpu-check                        # there: everything below, one table, JSON under $OUT
    make gpu-check-smoke                  # anywhere: the same script on the CPU with tiny shapes (CI runs it)

On the lent machine (device tool): `run(command="python3 benchmarks/gpu_check.py", carry=[".gpu-carry"],
timeout_s=480)` (= `make gpu-check`, without needing make there).
The script keeps to --budget-s (default 420 s; rows still waiting are reported as skipped), so that
one call fits the 8 minutes the issue allows.

1. Training. Models of the real Qwen2.5-0.5B and Qwen2.5-1.5B shapes (configs below; random
   weights, nothing downloaded), bf16, LoRA r=16 on every linear layer, max_len 1024, on a
   build folder made by `idata build` whose example lengths follow two real Chinese SFT files
   (gpu_carry.py). Each run is its own process (clean peak-memory numbers):
       idata          `idata train` (training.train: length-grouped batches, fused chunked loss)
       baseline       HF Trainer + PEFT: random batches padded to the longest, the model's own loss
       liger          the baseline with Liger Kernel's fused linear cross-entropy (CUDA only)
       idata-gc       `idata train --gradient-checkpointing` (0.5B, a short run)
       idata-packed   `idata train --packing` (0.5B, a short run)
   Trained tokens/s = non-padding input tokens / seconds, over the steps after the warm-up
   steps; peak GPU memory = torch.cuda.max_memory_allocated over the run; MFU = model FLOPs
   per token x tokens/s / the GPU's dense bf16 peak (989 TFLOP/s for an H200 SXM, NVIDIA's
   datasheet; see flops_per_token for what is counted).
2. Evaluation, the 0.5B shape, bf16: idata eval's generation (evaluation.generation.generate,
   sorted left-padded batches) at its default batch of 16 and at 64, against one prompt at a
   time; new tokens/s; and the share of prompts whose greedy text is identical batched and
   single, in bf16 and (as the control that tells numerics from a bug) in fp32.
3. The `gpu` tests (tests/test_gpu.py, `pytest -m gpu`), which only run where CUDA is present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from bench_eval import timed  # noqa: E402
from bench_train import COMMON, QWEN25  # noqa: E402  (the Qwen2.5 config.json shapes, written out there)
from gpu_carry import CARRY, WHEELS, needed_on_device, normalize  # noqa: E402

SHAPES = {
    "qwen2.5-0.5b": QWEN25["0.5b"],  # hidden 896, 24 layers, 14 heads, 2 KV heads, ffn 4864, vocab 151936, tied
    "qwen2.5-1.5b": QWEN25["1.5b"],  # hidden 1536, 28 layers, 12 heads, 2 KV heads, ffn 8960, vocab 151936, tied
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=None, tie_word_embeddings=True),
}
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0}  # dense bf16, SXM datasheets (H200.md)
LORA = dict(r=16, alpha=32, dropout=0.05)
TRAIN_TARGET, EVAL_TARGET = 1.3, 8.0  # the issue's targets: x baseline tokens/s at <= its memory; x single


def settings(smoke: bool) -> dict:
    if smoke:
        return dict(shapes=["tiny"], steps=4, warmup=1, short_steps=3, batch_size=4, max_len=256, tokenizer_vocab=1500,
                    eval_prompts=6, eval_single=4, eval_control=3, max_new_tokens=8, eval_batch=4, eval_big_batch=6)
    return dict(shapes=["qwen2.5-0.5b", "qwen2.5-1.5b"], steps=60, warmup=10, short_steps=30, batch_size=16,
                max_len=1024, tokenizer_vocab=8000, eval_prompts=64, eval_single=24, eval_control=8,
                max_new_tokens=64, eval_batch=16, eval_big_batch=64)


def plan(shapes: list[str], suite: bool = False) -> list[dict]:
    """The rows, most important first: when the time budget runs out, the last ones are skipped."""
    small, rows = shapes[0], [{"kind": "tests"}]
    for shape in shapes:
        rows += [{"kind": "train", "shape": shape, "run": "idata"}, {"kind": "train", "shape": shape, "run": "baseline"}]
    rows.append({"kind": "eval", "shape": small})
    rows += [{"kind": "train", "shape": shape, "run": "liger"} for shape in shapes]
    rows += [{"kind": "train", "shape": small, "run": "idata-gc", "short": True},
             {"kind": "train", "shape": small, "run": "idata-packed", "short": True}]
    return rows + ([{"kind": "suite"}] if suite else [])


# ---------------------------------------------------------------- what the device lacks


def ensure_wheels() -> list[str]:
    """Install the carried wheels whose distribution is missing here into a folder on the path."""
    from importlib.metadata import PackageNotFoundError, version

    folder = CARRY / "wheels"
    missing = []
    for name in WHEELS:
        try:
            version(name)
        except PackageNotFoundError:
            missing.append(name)
    wheels = [w for w in folder.glob("*.whl") if normalize(w.name.split("-")[0]) in {normalize(m) for m in missing}]
    if wheels:
        site = Path(tempfile.gettempdir()) / "idata-gpu-site"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)], check=True)
        sys.path.insert(0, str(site))
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    # The project runs from the working tree (the device has no install of it).
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return [w.name for w in wheels]


def imported_distributions() -> list[str]:
    """Distributions of every module loaded in this process (normalized names)."""
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    found = set()
    for module in list(sys.modules):
        for dist in owners.get(module.split(".")[0], []):
            found.add(normalize(dist))
    return sorted(found)


def travel_check(in_process: bool) -> dict | None:
    """Which wheels the GPU path needs (the workers ran in this process: their imports are here)."""
    if not in_process:
        return None
    needed = needed_on_device(set(imported_distributions()))
    carried = {normalize(name) for name in WHEELS}
    return {"needed": needed, "not_carried": [d for d in needed if d not in carried]}


# ---------------------------------------------------------------- setup


def read_build(folder: Path) -> tuple[list[dict], list[dict]]:
    def rows(name):
        path = folder / name
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
            if path.is_file() else []
    return rows("train.jsonl"), rows("heldout.jsonl")


def write_models(work: Path, shapes: list[str], texts: list[str], vocab: int) -> dict[str, Path]:
    """One model folder per shape: random weights (made on the GPU when there is one) and a tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from instruct_data.training.tiny import train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=vocab)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    folders = {}
    for shape in shapes:
        config = Qwen2Config(**{**SHAPES[shape], "vocab_size": SHAPES[shape]["vocab_size"] or len(tokenizer)},
                             **COMMON, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
        with torch.no_grad():
            # Ids past the small tokenizer's vocabulary are never input; zero rows make them never the
            # greedy pick either (their logit is 0, below the top of thousands of random ones), so every
            # generated token decodes to text and batched-vs-single compares real text, not empty strings.
            # The head still multiplies all 151,936 rows: the cost is the real model's.
            for table in {id(t): t for t in (model.get_input_embeddings(), model.get_output_embeddings())}.values():
                table.weight[len(tokenizer):] = 0
        model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                                   pad_token_id=tokenizer.pad_token_id)
        folders[shape] = work / shape
        model.save_pretrained(folders[shape])
        tokenizer.save_pretrained(folders[shape])
        del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return folders


def token_stats(tokenizer_dir: Path, rows: list[dict], max_len: int) -> dict:
    """Tokens per example (context + target + EOS, cut at max_len): spread, and the mean attended context."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    texts = [r["context"] + r["target"] for r in rows]
    lengths = sorted(min(len(ids) + 1, max_len) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])
    chars = sum(len(t) for t in texts)

    def at(q):
        return lengths[min(len(lengths) - 1, int(q * len(lengths)))]

    return {"examples": len(lengths), "p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99),
            "max": lengths[-1], "mean": round(sum(lengths) / len(lengths), 1),
            "chars_per_token": round(chars / sum(lengths), 2),
            # causal attention: the token at position i attends to i + 1 positions
            "mean_attended": round(sum(n * (n + 1) / 2 for n in lengths) / sum(lengths), 1)}


def flops_per_token(shape: dict, vocab: int, mean_attended: float) -> float:
    """Model FLOPs per trained token of a LoRA step.

    The frozen weights cost 2 FLOPs per weight forward and 2 backward (the gradient with respect
    to the activations; no weight gradients): 4 x (the layers' matrices + the output head, on
    every position). Attention: 4 x heads x head_dim x the attended positions forward, 3 times
    that with the backward. The LoRA matrices (about 1% more) and any recomputation (gradient
    checkpointing) are not counted, as MFU usually leaves them out.
    """
    d, layers, ff = shape["hidden_size"], shape["num_hidden_layers"], shape["intermediate_size"]
    head_dim = d // shape["num_attention_heads"]
    q_width, kv_width = shape["num_attention_heads"] * head_dim, shape["num_key_value_heads"] * head_dim
    per_layer = d * q_width + 2 * d * kv_width + q_width * d + 3 * d * ff
    matrices = layers * per_layer + vocab * d
    attention = 12 * layers * q_width * mean_attended
    return 4 * matrices + attention


# ---------------------------------------------------------------- one training run (a worker)


PROFILED_STEPS = 3  # --profile: these steps, just before the measured window, under torch.profiler


def meter(warmup: int, profile: bool = False):
    """A Trainer callback: non-padding input tokens and seconds from the end of step `warmup` to the end.

    With `profile`, the last PROFILED_STEPS warm-up steps run under torch.profiler (outside the
    measured window) and the result carries the top operators by GPU time.
    """
    import torch
    from transformers import TrainerCallback

    class Meter(TrainerCallback):
        def __init__(self):
            self.tokens = 0
            self.marks = {}
            self.handle = None
            self.profiler = None
            self.profile_table = None

        def count(self, module, args, kwargs):
            if not module.training:
                return
            mask = kwargs.get("attention_mask")
            ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
            # Summed on the device: read only at the two marks, no sync per step.
            self.tokens = self.tokens + (mask.sum() if mask is not None else ids.numel())

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self.handle = model.register_forward_pre_hook(self.count, with_kwargs=True)
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

        def on_step_end(self, args, state, control, **kwargs):
            if profile and state.global_step == warmup - PROFILED_STEPS - 1:
                self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]
                                                       + ([torch.profiler.ProfilerActivity.CUDA]
                                                          if torch.cuda.is_available() else []))
                self.profiler.__enter__()
            elif self.profiler is not None and state.global_step == warmup - 1:
                self.profiler.__exit__(None, None, None)
                key = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
                self.profile_table = self.profiler.key_averages().table(sort_by=key, row_limit=20)
                self.profiler = None
            if state.global_step in (warmup, state.max_steps):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.marks[state.global_step] = (time.perf_counter(), int(self.tokens))

        def on_train_end(self, args, state, control, **kwargs):
            self.handle.remove()

        def result(self, steps: int) -> dict:
            (t0, n0), (t1, n1) = self.marks[warmup], self.marks[steps]
            peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
            return {"tokens": n1 - n0, "seconds": round(t1 - t0, 3), "tokens_per_s": round((n1 - n0) / (t1 - t0), 1),
                    "peak_gib": round(peak, 2) if peak is not None else None, "profile": self.profile_table}

    return Meter()


def train_idata(spec: dict) -> dict:
    """`idata train`'s library call (what the CLI runs), with the meter as an extra callback."""
    from instruct_data.training import make_config, train

    timer = meter(spec["warmup"], spec.get("profile", False))
    config = make_config(
        data=spec["data"], model=spec["model"], out=spec["out"], overwrite=True, max_steps=spec["steps"],
        batch_size=spec["batch_size"], max_len=spec["max_len"], lora_r=LORA["r"], lora_alpha=LORA["alpha"],
        lora_dropout=LORA["dropout"], lora_target="all", lr=1e-4, warmup_ratio=0.0, logging_steps=10,
        save_steps=10**9, cache_dir=spec["cache_dir"], progress=False, eval_max_rows=32,
        packing=spec["run"] == "idata-packed", gradient_checkpointing=spec["run"] == "idata-gc")
    out = train(config, callbacks=[timer])
    metrics = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8"))
    run_config = json.loads((Path(out) / "run_config.json").read_text(encoding="utf-8"))["resolved"]
    return {**timer.result(spec["steps"]), "loss": metrics["last_loss"], "precision": run_config["precision"],
            "loss_path": run_config["loss"], "attention": run_config["attention"]}


def baseline_dataset(data: Path, tokenizer, max_len: int) -> list[dict]:
    """The plain recipe's tokenization: context + target + EOS, labels on the target, cut at max_len."""
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines() if line]
    contexts = tokenizer([r["context"] for r in rows], add_special_tokens=False)["input_ids"]
    targets = tokenizer([r["target"] for r in rows], add_special_tokens=False)["input_ids"]
    examples = []
    for context, target in zip(contexts, targets):
        ids = (context + target + [tokenizer.eos_token_id])[:max_len]
        labels = ([-100] * len(context) + target + [tokenizer.eos_token_id])[:max_len]
        examples.append({"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)})
    return examples


def train_baseline(spec: dict) -> dict:
    """HF Trainer + PEFT: random order, each batch padded to its longest example, the model's own loss."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    if spec["run"] == "liger":
        from liger_kernel.transformers import apply_liger_kernel_to_qwen2

        apply_liger_kernel_to_qwen2(rope=False, rms_norm=False, swiglu=False, cross_entropy=False,
                                    fused_linear_cross_entropy=True)
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 attn_implementation="sdpa")
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    timer = meter(spec["warmup"], spec.get("profile", False))
    trainer = Trainer(
        model=model, train_dataset=baseline_dataset(Path(spec["data"]), tokenizer, spec["max_len"]),
        processing_class=tokenizer, callbacks=[timer],
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100),
        args=TrainingArguments(output_dir=spec["out"], per_device_train_batch_size=spec["batch_size"],
                               max_steps=spec["steps"], learning_rate=1e-4, lr_scheduler_type="cosine", bf16=bf16,
                               use_cpu=not torch.cuda.is_available(), logging_steps=10, save_strategy="no",
                               report_to=[], disable_tqdm=True, remove_unused_columns=False, seed=42))
    result = trainer.train()
    return {**timer.result(spec["steps"]), "loss": result.metrics.get("train_loss"),
            "precision": "bf16" if bf16 else "fp32", "loss_path": "the model's own", "attention": "sdpa"}


def train_worker(spec: dict) -> dict:
    return train_idata(spec) if spec["run"].startswith("idata") else train_baseline(spec)


# ---------------------------------------------------------------- evaluation (a worker)


def eval_worker(spec: dict) -> dict:
    """idata eval's generation, batched and one prompt at a time; bf16 agreement and an fp32 control."""
    from instruct_data.evaluation.generation import Decoding, generate, load_model
    from instruct_data.templates import get_template

    _, heldout = read_build(Path(spec["data"]))
    prompts = [heldout[i % len(heldout)]["context"] for i in range(spec["eval_prompts"])]
    single_prompts = prompts[:spec["eval_single"]]
    stop = list(get_template("seed").stop)
    dtype = "bfloat16" if spec["gpu"] else "float32"
    model, tokenizer = load_model(spec["model"], dtype=dtype)

    def run(batch: int, items: list[str], new: int = spec["max_new_tokens"]):
        outputs, seconds = timed(lambda: generate(model, tokenizer, items, Decoding(new, batch, stop=stop)),
                                 str(model.device))
        tokens = sum(g.new_tokens for g in outputs)
        return outputs, {"batch": batch, "prompts": len(items), "new_tokens": tokens, "seconds": round(seconds, 3),
                         "tokens_per_s": round(tokens / seconds, 1)}

    run(spec["eval_batch"], prompts[:spec["eval_batch"]], 4)  # warm-up: kernels, the stop-string tables
    run(1, prompts[:1], 4)
    batched, batched_row = run(spec["eval_batch"], prompts)
    _, big_row = run(spec["eval_big_batch"], prompts)
    single, single_row = run(1, single_prompts)
    same = [b.text == s.text for b, s in zip(batched, single)]
    model.float()  # the control: the same comparison in fp32
    control_prompts = prompts[:spec["eval_control"]]
    control_batched, _ = run(spec["eval_batch"], control_prompts, 16)
    control_single, _ = run(1, control_prompts, 16)
    control_same = [b.text == s.text for b, s in zip(control_batched, control_single)]
    first_diff = [_first_difference(b.text, s.text) for b, s in zip(batched, single) if b.text != s.text]
    return {"rows": [batched_row, big_row, single_row],
            "agreement": {"dtype": dtype, "same": sum(same), "of": len(same),
                               "first_difference_at_char_median": sorted(first_diff)[len(first_diff) // 2]
                               if first_diff else None},
            "control": {"dtype": "float32", "same": sum(control_same), "of": len(control_same), "new_tokens": 16},
            "finish": _count(g.finish for g in batched)}


def _first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def _count(values) -> dict:
    counts: dict = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


# ---------------------------------------------------------------- the gpu tests


SUITE_FILES = ("tests/test_train.py", "tests/test_gpu.py")  # --suite: the CUDA-sensitive files the device can run


def tests_row(budget_s: float, out: Path | None, suite: bool = False) -> dict:
    """`pytest -m gpu tests/test_gpu.py`: run where CUDA is, deselected (and said so) where it is not.

    With `suite`, the training tests as a whole (CPU-minded tests included), to show that the
    suite passes on a CUDA machine too (test_eval's scoring needs jieba, which does not travel).
    """
    files = [str(ROOT / f) for f in SUITE_FILES] if suite else ["-m", "gpu", str(ROOT / "tests" / "test_gpu.py")]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", *files]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=budget_s)
    output = result.stdout + result.stderr
    if out:
        (out / ("suite_tests.txt" if suite else "gpu_tests.txt")).write_text(output, encoding="utf-8")
    summary = next((line.strip("= ") for line in reversed(output.splitlines()) if " in " in line and "=" in line),
                   output.strip().splitlines()[-1] if output.strip() else "no output")
    # 0: all passed; 5: nothing ran (every gpu test deselected: no CUDA here)
    return {"exit_code": result.returncode, "summary": summary, "ok": result.returncode in (0, 5),
            "tail": output[-3000:] if result.returncode not in (0, 5) else ""}


# ---------------------------------------------------------------- running rows


def run_worker(kind: str, spec: dict, isolate: bool, timeout: float) -> dict:
    """A worker in its own process (GPU: clean memory numbers, Liger's patches stay there) or in this one."""
    if not isolate:
        return train_worker(spec) if kind == "train" else eval_worker(spec)
    command = [sys.executable, __file__, "--worker", kind, "--spec", json.dumps(spec)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.strip().splitlines()[-25:])
        raise RuntimeError(f"exit {result.returncode}: {tail}")
    return json.loads(lines[-1][len("RESULT "):])


def matmul_ceiling() -> float | None:
    """The bf16 matrix rate this GPU reaches here (TFLOP/s, median of 20 8192^3 products on random data)."""
    import torch

    if not torch.cuda.is_available():
        return None
    n = 8192
    a, b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return round(2 * n**3 / sorted(times)[len(times) // 2] / 1e12, 1)


def package_versions() -> dict:
    """What the run used, the carried wheels included (the device's own versions differ from CI's)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "peft", "accelerate", "tokenizers", "datasets", "pyarrow", "fsspec",
                 "huggingface-hub", "pydantic", "numpy", "triton", "liger-kernel"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def describe_device() -> dict:
    import peft
    import torch
    import transformers

    gpu = torch.cuda.is_available()
    name = torch.cuda.get_device_name() if gpu else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None) if gpu else None
    return {"device": name, "gpu": gpu, "bf16_peak_tflops": peak, "bf16_matmul_tflops_measured": matmul_ceiling(),
            "python": platform.python_version(), "packages": package_versions(),
            "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def run_rows(rows: list[dict], context: dict, args) -> None:
    started, budget = context["started"], args.budget_s
    for row in rows:
        left = budget - (time.perf_counter() - started)
        if left < 5:
            row.update(status="skipped", note=f"time budget ({budget:.0f} s) spent")
            continue
        label = " ".join(str(row[k]) for k in ("kind", "shape", "run") if k in row)
        print(f"[{time.perf_counter() - started:5.0f} s] {label} ...", file=sys.stderr, flush=True)
        row_started = time.perf_counter()
        try:
            if row["kind"] in ("tests", "suite"):
                row["result"] = tests_row(left, context["out"], suite=row["kind"] == "suite")
                row["status"] = "ok" if row["result"]["ok"] else "failed"
            elif row["kind"] == "train" and row["run"] == "liger" and not context["device"]["gpu"]:
                row.update(status="skipped", note="Liger Kernel needs CUDA (Triton)")
            else:
                spec = dict(context["spec"], model=str(context["models"][row["shape"]]), run=row.get("run"),
                            out=str(context["work"] / f"out-{row['shape']}-{row.get('run', 'eval')}"))
                if row.get("short"):
                    spec["steps"] = context["spec"]["short_steps"]
                row["result"] = run_worker(row["kind"], spec, isolate=context["isolate"], timeout=left)
                row["status"] = "ok"
        except Exception as exc:  # one broken row must not cost the others: record it and go on
            row.update(status="failed", note=f"{type(exc).__name__}: {str(exc)[-1500:]}")
        row["wall_s"] = round(time.perf_counter() - row_started, 1)


# ---------------------------------------------------------------- the table


def train_cells(row: dict, rows: list[dict], context: dict) -> list[str]:
    result = row["result"]
    base = next((r for r in rows if r.get("run") == "baseline" and r.get("shape") == row["shape"]
                 and r.get("status") == "ok"), None)
    speed = mem = "-"
    if base and row["run"] != "baseline":
        speed = f"{result['tokens_per_s'] / base['result']['tokens_per_s']:.2f}x"
        if result["peak_gib"] and base["result"]["peak_gib"]:
            mem = f"{result['peak_gib'] / base['result']['peak_gib']:.2f}x"
    peak = context["device"]["bf16_peak_tflops"]
    flops = context["flops"][row["shape"]]
    mfu = f"{100 * flops * result['tokens_per_s'] / (peak * 1e12):.1f}%" if peak else "-"
    gib = f"{result['peak_gib']:.2f}" if result["peak_gib"] is not None else "-"
    note = f"loss {result['loss']:.3f}" if isinstance(result.get("loss"), (int, float)) else ""
    return [f"{result['tokens_per_s']:,.0f} tok/s", speed, gib, mem, mfu, note]


def eval_lines(row: dict) -> list[list[str]]:
    result = row["result"]
    single = result["rows"][2]
    names = [f"idata eval, batch {result['rows'][0]['batch']}", f"idata eval, batch {result['rows'][1]['batch']}",
             "one prompt at a time"]
    main, control = result["agreement"], result["control"]
    lines = []
    for name, r in zip(names, result["rows"]):
        vs = f"{r['tokens_per_s'] / single['tokens_per_s']:.1f}x" if r is not single else "-"
        note = f"{r['prompts']} prompts, {r['new_tokens']} new tokens"
        lines.append([row["kind"], row["shape"], name, f"{r['tokens_per_s']:,.0f} new/s", vs, "-", "-", "-", note])
    lines.append([row["kind"], row["shape"], "batched = single (greedy text)", "-", "-", "-", "-", "-",
                  f"{main['dtype']} {main['same']}/{main['of']}, control in float32 {control['same']}/{control['of']}"])
    return lines


def table(rows: list[dict], context: dict) -> str:
    head = ["section", "shape", "run", "rate", "vs base", "peak GiB", "mem vs base", "MFU", "note"]
    lines = []
    for row in rows:
        shape, run = row.get("shape", "-"), row.get("run", "gpu tests")
        if row.get("status") != "ok":
            lines.append([row["kind"], shape, run, row.get("status", "?"), "", "", "", "", (row.get("note") or "")[:160]
                          .replace("\n", " ")])
        elif row["kind"] == "train":
            lines.append([row["kind"], shape, run, *train_cells(row, rows, context)])
        elif row["kind"] == "eval":
            lines += eval_lines(row)
        else:
            command = "pytest " + " ".join(Path(f).stem for f in SUITE_FILES) if row["kind"] == "suite" else "pytest -m gpu"
            lines.append([row["kind"], "-", command, row["result"]["summary"], "", "", "", "", ""])
    widths = [max(len(str(line[i])) for line in [head] + lines) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    out = [fmt.format(*head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [fmt.format(*map(str, line)) for line in lines])


def verdicts(rows: list[dict], judge: bool) -> list[str]:
    """The ratios, one line each, and (on a GPU) whether the issue's targets are met."""
    found = {(r.get("shape"), r.get("run")): r["result"] for r in rows if r["kind"] == "train" and r.get("status") == "ok"}
    lines = []
    for (shape, run), result in found.items():
        base = found.get((shape, "baseline"))
        if run == "baseline" or not base:
            continue
        speed = result["tokens_per_s"] / base["tokens_per_s"]
        mem = result["peak_gib"] / base["peak_gib"] if result["peak_gib"] and base["peak_gib"] else None
        line = f"{shape} {run}: {speed:.2f}x the baseline's tokens/s" + (f" at {mem:.2f}x its peak memory" if mem else "")
        if run == "idata" and judge:
            met = speed >= TRAIN_TARGET and (mem is None or mem <= 1.0)
            line += f" -> target (>= {TRAIN_TARGET}x at <= 1.0x memory) {'met' if met else 'MISSED'}"
        lines.append(line)
    for row in rows:
        if row["kind"] == "eval" and row.get("status") == "ok":
            batched, _, single = row["result"]["rows"]
            speed = batched["tokens_per_s"] / single["tokens_per_s"]
            lines.append(f"{row['shape']} eval: batch {batched['batch']} gives {speed:.1f}x the new tokens/s of one "
                         f"prompt at a time" + (f" -> target (>= {EVAL_TARGET}x) {'met' if speed >= EVAL_TARGET else 'MISSED'}"
                                                if judge else ""))
    if not judge:
        lines.append("(a smoke run on tiny shapes: it proves the script works; its numbers say nothing about a GPU)")
    return lines


def headline(context: dict) -> str:
    d, s, stats = context["device"], context["spec"], context["tokens"]
    return (f"{d['device']}; python {d['python']}, torch {d['torch']}, transformers {d['transformers']}, peft {d['peft']}; "
            f"dense bf16 peak {d['bf16_peak_tflops'] or '-'} TFLOP/s (datasheet; an 8192^3 matmul reached "
            f"{d['bf16_matmul_tflops_measured'] or '-'} here)\n"
            f"training: LoRA r={LORA['r']} on all linear layers, batch {s['batch_size']}, max_len {s['max_len']}, "
            f"{s['steps']} steps ({s['short_steps']} for gc/packed), tokens/s measured after {s['warmup']} warm-up "
            f"steps; tokens per example p10 {stats['p10']}, p50 {stats['p50']}, p90 {stats['p90']}, "
            f"max {stats['max']} ({stats['chars_per_token']} chars/token)\n"
            f"targets: training >= {TRAIN_TARGET}x baseline tokens/s at <= its peak memory; "
            f"evaluation >= {EVAL_TARGET}x one prompt at a time")


# ---------------------------------------------------------------- main


def prepare_data(args, work: Path, smoke: bool) -> Path:
    if args.data:
        return Path(args.data)
    if not smoke and (CARRY / "build" / "train.jsonl").is_file():
        return CARRY / "build"
    # The build runs here in its own process: its libraries (jieba, rensa ...) stay out of this one.
    built = subprocess.run([sys.executable, str(HERE / "gpu_carry.py"), "--data-only", "--out", str(work / "build"),
                            "--rows", "120" if smoke else "2400", "--heldout", "12" if smoke else "64"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if built.returncode != 0:
        raise SystemExit(f"could not make a build folder here ({built.stderr.strip().splitlines()[-1:]}); on the GPU "
                         "machine carry the one `make gpu-prepare` writes: carry=[\".gpu-carry\"]")
    return work / "build"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  make gpu-check                                  # on the GPU machine, .gpu-carry carried\n"
               "  python benchmarks/gpu_check.py --smoke --out /tmp/gc   # the CPU, tiny shapes\n"
               "  python3 benchmarks/gpu_check.py --only train,eval --budget-s 300")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (CI): the whole script, seconds")
    parser.add_argument("--budget-s", type=float, default=420.0, help="stop starting rows after this (default 420)")
    parser.add_argument("--data", help="a build folder (default .gpu-carry/build, else one made now)")
    parser.add_argument("--out", help="folder for gpu_check.json (default: $OUT when set)")
    parser.add_argument("--only", help="comma-separated kinds to run: tests,train,eval,suite (default all)")
    parser.add_argument("--suite", action="store_true",
                        help=f"also run {' and '.join(SUITE_FILES)} whole (after the rest; a second call or --only suite)")
    parser.add_argument("--profile", action="store_true",
                        help=f"torch.profiler over {PROFILED_STEPS} warm-up steps of every training run: the top "
                             "operators by GPU time go to profiles.txt beside gpu_check.json")
    parser.add_argument("--isolate", action="store_true",
                        help="each row in its own process, as on a GPU (--smoke runs them in this one, to be quick)")
    parser.add_argument("--worker", choices=["train", "eval"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.smoke:  # the CPU on any machine (before torch loads): the same run, GPU or not, and in CI
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    wheels = ensure_wheels()
    if args.worker:
        spec = json.loads(args.spec)
        print("RESULT " + json.dumps(train_worker(spec) if args.worker == "train" else eval_worker(spec)), flush=True)
        return 0

    started = time.perf_counter()
    out = Path(args.out or os.environ.get("OUT") or "") if (args.out or os.environ.get("OUT")) else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    device = describe_device()
    smoke = args.smoke or not device["gpu"]
    spec = settings(smoke)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        work = Path(tmp)
        data = prepare_data(args, work, smoke)
        train_rows, _ = read_build(data)
        models = write_models(work, spec["shapes"], [r["context"] + r["target"] for r in train_rows[:3000]],
                              spec["tokenizer_vocab"])
        stats = token_stats(models[spec["shapes"][0]], train_rows, spec["max_len"])
        flops = {shape: flops_per_token(SHAPES[shape], SHAPES[shape]["vocab_size"] or 0, stats["mean_attended"])
                 for shape in spec["shapes"]}
        context = {"started": started, "out": out, "device": device, "work": work, "models": models, "flops": flops,
                   "isolate": args.isolate or not smoke,
                   "tokens": stats, "spec": {**spec, "data": str(data), "cache_dir": str(work / "cache"),
                                             "gpu": device["gpu"], "profile": args.profile}}
        rows = plan(spec["shapes"], suite=args.suite or "suite" in (args.only or "").split(","))
        if args.only:
            rows = [r for r in rows if r["kind"] in args.only.split(",")]
        run_rows(rows, context, args)
        report = headline(context) + "\n\n" + table(rows, context) + "\n\n" + "\n".join(verdicts(rows, judge=not smoke))
    context_out = {k: v for k, v in context.items() if k in ("device", "tokens", "flops")}
    results = {**context_out, "settings": spec, "smoke": smoke, "wheels_installed": wheels, "rows": rows,
               "travel": travel_check(not context["isolate"]), "total_s": round(time.perf_counter() - started, 1)}
    if out:
        (out / "gpu_check.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        profiles = [f"== {r['shape']} {r['run']}\n{r['result']['profile']}" for r in rows
                    if r["kind"] == "train" and r.get("status") == "ok" and r["result"].get("profile")]
        if profiles:
            (out / "profiles.txt").write_text("\n\n".join(profiles), encoding="utf-8")
    print(report)
    travel = results["travel"]
    if travel:
        print(f"\nthe GPU path imports, beyond the device's packages: {', '.join(travel['needed']) or 'nothing'}"
              + (f"; NOT in gpu_carry.WHEELS: {', '.join(travel['not_carried'])}" if travel["not_carried"] else
                 " (all in gpu_carry.WHEELS)"))
    print(f"\n(total {results['total_s']:.0f} s" + (f"; raw results in {out / 'gpu_check.json'})" if out else ")"))
    rows_ok = all(r.get("status") in ("ok", "skipped") for r in rows)
    return 0 if rows_ok and not (travel and travel["not_carried"]) else 1


if __name__ == "__main__":
    sys.exit(main())
