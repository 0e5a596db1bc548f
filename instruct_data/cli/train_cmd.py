"""`idata train`: options in, `training.train(config)`, a summary out.

Every option has the default None here, so that only the options actually given override
the recipe (the real defaults live in training/config.py).
"""

from __future__ import annotations

import click

from instruct_data.cli.common import console, interrupt_watchdog, print_json
from instruct_data.templates import TEMPLATES


def _flag(name: str, help: str):
    """--x/--no-x with no default, so an unset flag leaves the recipe's value alone."""
    return click.option(f"--{name}/--no-{name}", default=None, help=help)


@click.command("train")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), help="YAML recipe (recipes/train/*.yaml); options given here override it.")
@click.option("--data", help="Training data: context/target JSONL, conversations JSONL (with --template), or a build folder.")
@click.option("--eval-data", help="Held-out JSONL for the eval loss (default: DIR/heldout.jsonl of a build folder).")
@click.option("--model", help="Base model: hub name or local folder.")
@click.option("--out", "-o", help="Output folder: adapter, tokenizer, template.json, metrics, logs, checkpoints.")
@click.option("--template", "-t", type=click.Choice(["auto", "native", *sorted(TEMPLATES)]),
              help="Prompt template. auto (default): the model's own chat template (native) for a chat model and "
                   "conversation data (a build folder or conversations JSONL), else the build's template, else seed.")
@click.option("--reasoning", type=click.Choice(["keep", "drop-history", "drop"]),
              help="Reasoning traces of assistant turns: keep (default) trains them as the template renders them; "
                   "drop-history removes earlier turns' traces as Qwen3's template does at inference (one example "
                   "per reply where that changes the history); drop removes them all.")
@click.option("--max-len", type=int, help="Longest sequence in tokens (default 1024): longer examples lose earlier rounds, then the middle of the question, then the reply's end.")
@click.option("--too-long", type=click.Choice(["truncate", "skip"]), help="What to do with a longer example (default truncate).")
@click.option("--eos-token", help="Override the end token (default: the model's, checked against its generation config).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Tokenized-data cache (default ~/.cache/idata/tokenized).")
@click.option("--num-proc", type=int, help="Tokenization processes (default: the cores, for large data).")
@click.option("--lora-r", type=int, help="LoRA rank (default 8).")
@click.option("--lora-alpha", type=int, help="LoRA alpha (default 16).")
@click.option("--lora-dropout", type=float, help="LoRA dropout (default 0.05).")
@click.option("--lora-target", help="all (every linear layer but the output head), preset (the architecture's attention projections), or names: q_proj,v_proj.")
@_flag("rslora", "Rank-stabilised LoRA scaling (alpha/sqrt(r)).")
@_flag("dora", "Weight-decomposed LoRA (DoRA).")
@click.option("--modules-to-save", help="Modules trained in full and saved with the adapter, e.g. embed_tokens,lm_head.")
@_flag("qlora", "4-bit base weights through bitsandbytes (CUDA GPU only).")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp16", "fp32"]), help="auto: bf16 on GPUs that have it, else fp16; fp32 on CPU.")
@_flag("gradient-checkpointing", "Recompute activations in the backward pass: much less memory, ~30% slower.")
@click.option("--batch-size", type=int, help="Examples per device per step (default 4).")
@click.option("--grad-accum", type=int, help="Gradient accumulation steps (default 1).")
@click.option("--lr", type=float, help="Peak learning rate (default 2e-4).")
@click.option("--epochs", type=float, help="Epochs (default 1).")
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--warmup-ratio", type=float, help="Share of the steps spent warming up (default 0.03).")
@click.option("--scheduler", type=click.Choice(["cosine", "linear", "constant_with_warmup"]), help="Learning-rate schedule (default cosine).")
@_flag("group-by-length", "Batch examples of similar length together (default on).")
@_flag("packing", "Padding-free batches: examples concatenated into one row (default off).")
@_flag("chunked-loss", "Loss over the reply tokens only, the output head applied in chunks (default on: less memory).")
@click.option("--eval-steps", type=int, help="Held-out loss every N steps (default: once at the end).")
@click.option("--save-steps", type=int, help="Adapter checkpoint every N steps (default 200).")
@click.option("--save-total-limit", type=int, help="Checkpoints kept (default 2).")
@click.option("--logging-steps", type=int, help="Log every N steps (default 10).")
@click.option("--resume", is_flag=True, default=None, help="Continue from the last checkpoint in OUT/checkpoints.")
@click.option("--overwrite", is_flag=True, default=None,
              help="Start over in an OUT that already holds a run (the old run stays whole until the new one completes).")
@click.option("--seed", type=int, help="Random seed (default 42).")
@click.option("--trust-remote-code", is_flag=True, default=None, help="Allow the model's own code (only for models you trust).")
@click.option("--deepspeed", type=click.Path(exists=True, dir_okay=False), help="DeepSpeed JSON config (train/ds_zero2.json, train/ds_zero3.json).")
@_flag("progress", "Show a progress bar (default on).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json instead of a summary.")
def train_command(recipe, as_json, **options):
    """Fine-tune a causal LM with LoRA on context/target or conversation JSONL.

    Labels cover the reply and its end token only; the end token is the model's real one.
    Tokenized data is cached, so a second run starts at once. The same command runs under
    torchrun and accelerate launch (see docs/training.md).

    \b
    Examples:
      idata train --data out/belle --model Qwen/Qwen2.5-1.5B-Instruct --template auto --out runs/qwen-1.5b
      idata train --data out/belle --model Qwen/Qwen2.5-0.5B --template seed --out runs/qwen-0.5b
      idata train --recipe recipes/train/qwen2.5-1.5b.yaml --data out/belle --out runs/q1.5 --lr 1e-4
      idata train --data out/belle/conversations.jsonl --template chatml --model Qwen/Qwen2.5-1.5B-Instruct --out runs/qd
      idata train --data out/tools/conversations.jsonl --template native --reasoning drop-history --model Qwen/Qwen3-0.6B --out runs/q3
      idata train --recipe recipes/train/qwen2.5-1.5b.yaml --data out/belle --out runs/q1.5 --resume
      torchrun --nproc_per_node 2 -m instruct_data train --recipe recipes/train/qwen2.5-7b.yaml --data out/belle --out runs/q7
    """
    import contextlib
    import json
    import os
    import sys
    from pathlib import Path

    from instruct_data.training import make_config, train

    interrupt_watchdog()  # a signal ends train within seconds, even inside a long forward pass
    if options.get("modules_to_save"):
        options["modules_to_save"] = [m.strip() for m in options["modules_to_save"].split(",") if m.strip()]
    config = make_config(recipe, **options)
    # The Trainer prints its log lines on stdout: keep stdout for the JSON a script reads.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        out = train(config)
    metrics = json.loads((Path(out) / "metrics.json").read_text(encoding="utf-8")) if (Path(out) / "metrics.json").is_file() else {}
    if os.environ.get("RANK", "0") != "0":
        return  # one summary, from the main process
    if as_json:
        print_json(metrics)
        return
    if metrics:
        console.print(f"[green]trained[/green] {out}: {metrics['steps']} steps, loss {_num(metrics['first_loss'])} -> "
                      f"{_num(metrics['last_loss'])}, held-out loss {_num(metrics['eval_loss'])}, "
                      f"{_num(metrics['tokens_per_s'])} tokens/s")


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"
