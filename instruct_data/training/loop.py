"""The transformers Trainer, with what a LoRA run needs on top: tokens/s, a loss guard, a JSONL log.

We build on `transformers.Trainer` rather than a home-made loop because it already gets the
hard parts right and keeps them right across versions: checkpoints with optimizer, scheduler
and RNG state (`--resume`), gradient accumulation with the loss normalised over the real
number of label tokens, mixed precision with loss scaling, gradient checkpointing, and
running unchanged under torchrun, accelerate launch (DDP/FSDP) and DeepSpeed. What it lacks
is added here in a few small pieces.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import Trainer, TrainerCallback

from instruct_data.errors import IdataError
from instruct_data.io import atomic_path


class TrainingDiverged(IdataError):
    """The loss became NaN/inf or stuck at zero: the run is stopped with advice."""

    exit_code = 4


class LossGuard:
    """Stops at the first NaN/inf loss, or after `zero_patience` steps in a row with loss 0."""

    def __init__(self, lr: float, precision: str, zero_patience: int = 3):
        self.lr = lr
        self.precision = precision
        self.zero_patience = zero_patience
        self.zeros = 0

    def check(self, loss: float, step: int) -> None:
        if not math.isfinite(loss):
            advice = [f"a lower --lr (now {self.lr:g})", "--max-grad-norm 1.0"]
            if self.precision == "fp16":
                advice.insert(0, "--precision bf16 if the GPU supports it (fp16 overflows), else fp32")
            raise TrainingDiverged(
                f"training stopped: the loss became {loss} at step {step}. Try " + ", ".join(advice)
                + "; and check the data for broken rows.")
        self.zeros = self.zeros + 1 if loss == 0.0 else 0
        if self.zeros >= self.zero_patience:
            raise TrainingDiverged(
                f"training stopped: the loss is 0 for {self.zeros} steps in a row (step {step}). The labels are "
                "probably all masked (a --max-len that cuts the replies away, empty targets) or fp16 "
                "underflowed: check the data, raise --max-len, try --precision bf16 or a lower --lr.")


class IdataTrainer(Trainer):
    """Counts trained (non-padding) tokens, checks every step's loss, logs tokens/s."""

    def __init__(self, *args, guard: LossGuard, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.tokens_seen = 0  # on this process, non-padding input tokens
        self._last_log = (time.perf_counter(), 0)

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        self.tokens_seen += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.guard.check(float(loss), self.state.global_step + 1)
        return loss

    def total_tokens(self) -> int:
        """Tokens trained on by every process together."""
        import torch

        count = torch.tensor(self.tokens_seen, device=self.args.device)
        return int(self.accelerator.reduce(count, reduction="sum")) if self.args.world_size > 1 else self.tokens_seen

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: every process is here (the loss was just gathered)
            now, tokens = time.perf_counter(), self.total_tokens()
            then, before = self._last_log
            logs["tokens"] = tokens
            logs["tokens_per_s"] = round((tokens - before) / max(now - then, 1e-9), 1)
            self._last_log = (now, tokens)
        super().log(logs, start_time)


class JsonlLog(TrainerCallback):
    """Every log line (loss, grad norm, learning rate, tokens/s, eval loss) appended as JSON."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss(log: list[dict], out_png: Path) -> Path | None:
    """Training (and held-out) loss by step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in log if "loss" in r]
    held = [(r["step"], r["eval_loss"]) for r in log if "eval_loss" in r]
    if not train and not held:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train), label="train loss")
    if held:
        ax.plot(*zip(*held), marker="o", label="held-out loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out_png
