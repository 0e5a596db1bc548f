"""Every setting of a training run, in one dataclass that a YAML recipe and the CLI both fill.

Precedence: the defaults here < the recipe (`--recipe x.yaml`) < options given on the command
line. Recipe keys are the field names below (dashes or underscores both work).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from instruct_data.errors import IdataError


class ConfigError(IdataError):
    """A recipe or option that cannot work (unknown key, wrong value)."""


@dataclass
class TrainConfig:
    # data
    data: str = ""  # context/target JSONL, conversations JSONL, or a build folder
    model: str = ""  # a hub name or a local folder
    out: str = ""
    eval_data: str | None = None  # default: DIR/heldout.jsonl when `data` is a build folder
    template: str | None = None  # None or "auto": native for a chat model and conversations, else the build's, else seed
    reasoning: str = "keep"  # keep | drop-history | drop: what happens to assistant turns' reasoning traces
    max_len: int = 1024
    too_long: str = "truncate"  # truncate | skip
    eos_token: str | None = None  # override the end token (rarely needed)
    cache_dir: str | None = None  # tokenized-data cache; default ~/.cache/idata/tokenized
    num_proc: int | None = None  # tokenization processes; default: the cores, for large data
    eval_max_rows: int | None = 500  # held-out rows used for the eval loss (None: all)
    # LoRA
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target: str = "all"  # all | preset | comma-separated module names
    rslora: bool = False
    dora: bool = False
    modules_to_save: list[str] | None = None
    qlora: bool = False  # 4-bit base weights through bitsandbytes (CUDA only)
    # optimisation
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    gradient_checkpointing: bool = False
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    scheduler: str = "cosine"
    group_by_length: bool = True
    packing: bool = False  # padding-free: a batch is one row of concatenated examples
    attn_implementation: str | None = "sdpa"
    chunked_loss: bool = True  # loss over reply tokens only, output head in chunks (less memory)
    # bookkeeping
    eval_steps: int | None = None  # None: evaluate once at the end
    save_steps: int = 200
    save_total_limit: int = 2
    logging_steps: int = 10
    resume: bool = False
    overwrite: bool = False
    seed: int = 42
    trust_remote_code: bool = False
    deepspeed: str | None = None  # a DeepSpeed JSON config (train/ds_zero2.json, train/ds_zero3.json)
    dataloader_workers: int = 0
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELD_NAMES = {f.name for f in fields(TrainConfig)}
CHOICES = {
    "too_long": ("truncate", "skip"),
    "reasoning": ("keep", "drop-history", "drop"),
    "precision": ("auto", "bf16", "fp16", "fp32"),
    "scheduler": ("cosine", "linear", "constant_with_warmup"),
}


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe's settings as field names -> values (yaml.safe_load; unknown keys are an error)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of option: value")
    settings = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in FIELD_NAMES:
            raise ConfigError(f"{path}: unknown option {key!r} (known: {', '.join(sorted(FIELD_NAMES))})")
        settings[name] = value
    return settings


def make_config(recipe: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the recipe, then `overrides` (the options given on the command line)."""
    settings = load_recipe(recipe) if recipe else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(settings.get("modules_to_save"), str):
        settings["modules_to_save"] = [m.strip() for m in settings["modules_to_save"].split(",") if m.strip()]
    config = TrainConfig(**settings)
    check(config)
    return config


def check(config: TrainConfig) -> None:
    missing = [name for name in ("data", "model", "out") if not getattr(config, name)]
    if missing:
        raise ConfigError(f"missing {', '.join('--' + m.replace('_', '-') for m in missing)} (on the command line or in the recipe)")
    if config.resume and config.overwrite:
        # Both were accepted and --resume won: a run meant to start over went on from a checkpoint.
        raise ConfigError("--resume and --overwrite conflict: --resume continues the run at --out, --overwrite "
                          "starts it over; pass one")
    for name, allowed in CHOICES.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(f"--{name.replace('_', '-')} must be one of {', '.join(allowed)}, not {getattr(config, name)!r}")
    from instruct_data.templates import AUTO, NATIVE, TEMPLATES

    if config.template not in (None, AUTO, NATIVE, *TEMPLATES):
        raise ConfigError(f"--template must be one of {', '.join((AUTO, NATIVE, *TEMPLATES))}, not {config.template!r}")
    if config.max_len < 8:
        raise ConfigError("--max-len must be at least 8 tokens")
    for name in ("batch_size", "grad_accum", "lora_r", "save_steps", "logging_steps"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if config.eval_steps is not None and config.eval_steps < 1:
        raise ConfigError("--eval-steps must be at least 1")
    if not 0 <= config.lora_dropout < 1:
        raise ConfigError("--lora-dropout must be in [0, 1)")
    # Checked before the model loads: `--lr nan` failed after it (`Invalid learning rate: nan`),
    # `--warmup-ratio nan` as `cannot convert float NaN to integer`.
    for name, low, high, what in (("lr", 0, None, "> 0"), ("epochs", 0, None, "> 0"),
                                  ("warmup_ratio", 0, 1, "in [0, 1]"), ("weight_decay", 0, None, ">= 0"),
                                  ("max_grad_norm", 0, None, ">= 0 (0: no clipping)")):
        value = float(getattr(config, name))
        strict = name in ("lr", "epochs")
        if not math.isfinite(value) or value < low or (strict and value == low) or (high is not None and value > high):
            raise ConfigError(f"--{name.replace('_', '-')} must be a finite number {what}, not {getattr(config, name)!r}")
