"""The offline demo's training step: a tiny local model, a few steps on the CPU, seconds.

    from instruct_data.training.demo import demo_train
    adapter_dir = demo_train("demo-out", "demo-out/adapter")   # a build folder or a train.jsonl

The tiny model's tokenizer is trained on the data itself, so the run goes through exactly
the code path of a real model (tokenization, EOS, LoRA, checkpoints, template.json).
"""

from __future__ import annotations

import json
from pathlib import Path

from instruct_data.training.config import TrainConfig, make_config

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "train" / "tiny-cpu.yaml"
# The recipe's settings, for an installed package that has no recipes/ folder beside it.
TINY_SETTINGS = dict(precision="fp32", max_len=256, lora_r=16, lora_alpha=32, lora_dropout=0.0, lora_target="all",
                     batch_size=4, lr=2e-2, max_steps=20, warmup_ratio=0.0, eval_steps=10, save_steps=10, logging_steps=1)


def sample_texts(data: Path, limit: int = 400) -> list[str]:
    """Text from the training file, for the tiny tokenizer."""
    path = data / "train.jsonl" if data.is_dir() else data
    texts = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if len(texts) >= limit:
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                texts.append(str(row.get("context", "")) + str(row.get("target", "")))
                texts.extend(str(t.get("text", "")) for t in row.get("turns", []) if isinstance(t, dict))
    return texts


def demo_config(data: str | Path, out: str | Path, model: str | Path, **overrides) -> TrainConfig:
    settings = {**({} if RECIPE.is_file() else TINY_SETTINGS), "data": str(data), "model": str(model), "out": str(out),
                "progress": False, "overwrite": True, **overrides}
    return make_config(RECIPE if RECIPE.is_file() else None, **settings)


# The tiny model's initial weight spread: with transformers' 0.02 its logits are so flat that
# 20 LoRA steps barely move the loss; this spread lets the demo's loss curve visibly fall.
DEMO_INIT_STD = 0.2


def demo_train(data: str | Path, out: str | Path, *, arch: str = "llama", init_std: float = DEMO_INIT_STD,
               **overrides) -> Path:
    """Make a tiny model under OUT/tiny-model and train it on DATA for a few steps; return OUT."""
    from instruct_data.training.runner import train
    from instruct_data.training.tiny import DEFAULT_TEXT, make_tiny_model

    data, out = Path(data), Path(out)
    model = make_tiny_model(out.parent / f"{out.name}-tiny-{arch}", arch, texts=DEFAULT_TEXT + sample_texts(data),
                            init_std=init_std)
    return train(demo_config(data, out, model, **overrides))
