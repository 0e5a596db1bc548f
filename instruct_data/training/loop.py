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
import sys
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


class ReplyLoss:
    """Cross-entropy over the supervised tokens only, with the output head fused into the loss.

    The usual loss makes logits for every position, padding and prompt included, and keeps
    them (in fp32) for the backward pass: with a 150k-token vocabulary that is the largest
    tensor of a LoRA step, about as big as all the layers' activations together. Here the
    model's own head is skipped (a pre-hook hands it one position), the final hidden states
    are taken from its input, and logits are made only where the next token is supervised, a
    chunk at a time; each chunk's gradient with respect to the hidden states is computed at
    once and the logits dropped (the approach of Liger-Kernel's fused linear cross-entropy).
    Same loss (sum over label tokens / their number), same gradients, far less memory, and
    no head FLOPs spent on prompt or padding positions. Used for the architectures below,
    with a frozen plain linear head; others keep the model's own loss.
    """

    ARCHITECTURES = {"llama", "qwen2", "qwen3", "mistral", "gpt2", "glm", "glm4"}

    def __init__(self, head, chunk_tokens: int = 1024):
        self.head = head
        self.chunk = chunk_tokens
        self.hidden = None

    @classmethod
    def applies(cls, model, sharded: bool) -> bool:
        """Only where the head is a plain frozen linear layer we may call outside the forward."""
        import torch

        head = model.get_output_embeddings()
        config = model.config
        return (not sharded and type(head) is torch.nn.Linear and config.model_type in cls.ARCHITECTURES
                and not any(p.requires_grad for p in head.parameters())
                and not getattr(config, "final_logit_softcapping", None))

    def capture(self, module, args):
        self.hidden = args[0]
        return (args[0][:, :1, :],)  # the head runs on one position; its output is not used

    def __call__(self, outputs, labels, num_items_in_batch=None):
        import torch

        hidden, self.hidden = self.hidden, None
        targets = labels[:, 1:]
        keep = targets != -100
        hidden = hidden[:, :-1, :][keep]
        targets = targets[keep]
        total = _FusedHeadLoss.apply(hidden, targets, self.head.weight, self.head.bias, self.chunk)
        count = num_items_in_batch if num_items_in_batch is not None else targets.numel()
        if torch.is_tensor(count):
            count = count.to(total.device)
        return total / count


def _fused_head_loss_forward(hidden, targets, weight, bias, chunk: int, need_grad: bool):
    """Summed cross-entropy of `hidden @ weight.T + bias` and, if asked, its gradient wrt `hidden`."""
    import torch
    import torch.nn.functional as F

    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    grad = torch.empty_like(hidden) if need_grad else None
    weight = weight.to(hidden.dtype)  # once, not per chunk (QLoRA keeps the head in fp32)
    bias = None if bias is None else bias.to(hidden.dtype)
    for start in range(0, targets.numel(), chunk):
        h, y = hidden[start:start + chunk], targets[start:start + chunk]
        logits = F.linear(h, weight, bias).float()
        lse = logits.logsumexp(-1)
        total += (lse - logits.gather(1, y[:, None]).squeeze(1)).sum()
        if need_grad:
            probs = logits.sub_(lse[:, None]).exp_()  # in place: one chunk of logits in memory at a time
            probs[torch.arange(y.numel(), device=y.device), y] -= 1.0  # d(sum CE)/d(logits)
            grad[start:start + chunk] = probs.to(h.dtype) @ weight
    return total, grad


class _FusedHeadLoss:
    """autograd Function wrapper, made lazily so that importing this module needs no torch."""

    _function = None

    @classmethod
    def apply(cls, hidden, targets, weight, bias, chunk):
        if cls._function is None:
            import torch

            class Function(torch.autograd.Function):
                @staticmethod
                def forward(ctx, hidden, targets, weight, bias, chunk):
                    total, grad = _fused_head_loss_forward(hidden.detach(), targets, weight.detach(),
                                                           None if bias is None else bias.detach(), chunk,
                                                           need_grad=hidden.requires_grad)
                    ctx.save_for_backward(grad if grad is not None else torch.empty(0))
                    return total

                @staticmethod
                def backward(ctx, grad_output):
                    (grad,) = ctx.saved_tensors
                    return (grad * grad_output.to(grad.dtype)) if grad.numel() else None, None, None, None, None

            cls._function = Function
        return cls._function.apply(hidden, targets, weight, bias, chunk)


def length_grouped_indices(lengths, batch_size: int, generator=None) -> list[int]:
    """transformers' `get_length_grouped_indices`, on a numpy array of lengths, in whole-array steps.

    Same order for the same random permutation: megabatches of up to 50 batches, each sorted
    longest first (stable), the longest example of all moved to the very first batch (an
    out-of-memory shows at once). The original reads `lengths[i]` one by one, which from a
    `datasets` column of a million rows never finishes in time.
    """
    import numpy as np
    import torch

    lengths = np.asarray(lengths)
    n = len(lengths)
    mult = min(n // (batch_size * 4), 50) or 1
    size = mult * batch_size
    indices = torch.randperm(n, generator=generator).numpy()
    pieces = []
    for start in range(0, n, size * 4096):  # blocks of whole megabatches: bounded temporary memory
        block = indices[start:start + size * 4096]
        full = len(block) // size * size
        grid = block[:full].reshape(-1, size)
        order = np.argsort(-lengths[grid], axis=1, kind="stable")
        pieces.append(np.take_along_axis(grid, order, axis=1).reshape(-1))
        if full < len(block):
            rest = block[full:]
            pieces.append(rest[np.argsort(-lengths[rest], kind="stable")])
    grouped = np.concatenate(pieces) if pieces else indices
    firsts = np.arange(0, n, size)
    longest = firsts[int(np.argmax(lengths[grouped[firsts]]))]
    grouped[0], grouped[longest] = grouped[longest], grouped[0]
    return grouped.tolist()


class GroupedByLength:
    """A sampler of length-grouped batches from lengths held as one array."""

    def __init__(self, lengths, batch_size: int, generator=None):
        self.lengths = lengths
        self.batch_size = batch_size
        self.generator = generator

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        return iter(length_grouped_indices(self.lengths, self.batch_size, self.generator))


TOKENS_FILE = "idata_tokens.json"  # in each checkpoint: tokens trained up to it, for --resume


class IdataTrainer(Trainer):
    """Counts trained (non-padding) tokens, checks every step's loss, logs tokens/s."""

    def __init__(self, *args, guard: LossGuard, reply_loss: ReplyLoss | None = None, train_lengths=None, **kwargs):
        if reply_loss is not None:
            kwargs["compute_loss_func"] = reply_loss
        super().__init__(*args, **kwargs)
        self.reply_loss = reply_loss
        self.guard = guard
        self.train_lengths = train_lengths
        self.tokens_seen = 0  # on this process, non-padding input tokens
        self.tokens_before = 0  # trained before a resumed checkpoint, all processes together
        self._started = time.perf_counter()
        self._last_log = (self._started, 0)

    def _get_train_sampler(self, train_dataset=None):
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if grouped and self.train_lengths is not None and train_dataset in (None, self.train_dataset):
            return GroupedByLength(self.train_lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps)
        return super()._get_train_sampler(train_dataset)

    def resume_tokens(self, checkpoint: str) -> None:
        """Count the tokens trained before `checkpoint` in every total from here on."""
        path = Path(checkpoint) / TOKENS_FILE
        if path.is_file():
            self.tokens_before = int(json.loads(path.read_text(encoding="utf-8"))["tokens"])
            self._last_log = (self._last_log[0], self.tokens_before)

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        tokens = self.total_tokens()  # every process takes part in the sum
        if self.is_world_process_zero():
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = Path(self.args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            if folder.is_dir():
                (folder / TOKENS_FILE).write_text(json.dumps({"tokens": tokens}), encoding="utf-8")

    def training_step(self, model, inputs, num_items_in_batch=None):
        mask = inputs.get("attention_mask")
        # Summed on the device and read only when logging: no extra host-device sync per step.
        self.tokens_seen = self.tokens_seen + (mask.sum() if mask is not None else inputs["input_ids"].numel())
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.guard.check(float(loss), self.state.global_step + 1)
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.reply_loss is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        handle = self.reply_loss.head.register_forward_pre_hook(self.reply_loss.capture)
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            handle.remove()

    def total_tokens(self) -> int:
        """Tokens trained on by every process together."""
        import torch

        count = torch.as_tensor(self.tokens_seen, device=self.args.device)
        here = int(self.accelerator.reduce(count, reduction="sum")) if self.args.world_size > 1 else int(count)
        return self.tokens_before + here

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: every process is here (the loss was just gathered)
            now, tokens = time.perf_counter(), self.total_tokens()
            then, before = self._last_log
            logs["tokens"] = tokens
            logs["tokens_per_s"] = round((tokens - before) / max(now - then, 1e-9), 1)
            logs["time_s"] = round(now - self._started, 3)  # since the trainer was made
            self._last_log = (now, tokens)
        super().log(logs, start_time)


class JsonlLog(TrainerCallback):
    """Every log line (loss, grad norm, learning rate, tokens/s, eval loss) appended as JSON."""

    def __init__(self, path: Path):
        self.path = path

    def rewind(self, step: int) -> None:
        """Before a resumed run: forget the lines logged after the checkpoint (they are logged again)."""
        if not self.path.is_file():
            return
        kept = [r for r in read_log(self.path) if r.get("step", 0) <= step]
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept), encoding="utf-8")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), **logs}
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def log_line(logs: dict, step: int, max_steps: int, elapsed: float) -> str | None:
    """One readable line for a Trainer log dict (None for the end-of-run summary, said elsewhere)."""
    where = f"step {step:,}/{max_steps:,}" if max_steps else f"step {step:,}"
    if "eval_loss" in logs:
        return f"{where}  held-out loss {logs['eval_loss']:.4f}"
    if "loss" not in logs:
        return None
    parts = [where, f"loss {logs['loss']:.4f}"]
    if logs.get("grad_norm") is not None:
        parts.append(f"grad-norm {logs['grad_norm']:.3g}")
    if logs.get("learning_rate") is not None:
        parts.append(f"lr {logs['learning_rate']:.2e}")
    if logs.get("tokens_per_s"):
        parts.append(f"{logs['tokens_per_s']:,.0f} tokens/s")
    parts.append(_timing(step, max_steps, elapsed))
    return "  ".join(parts)


def _timing(step: int, max_steps: int, elapsed: float) -> str:
    def clock(seconds: float) -> str:
        seconds = int(seconds)
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"

    left = f", about {clock(elapsed * (max_steps - step) / step)} left" if step and max_steps > step else ""
    return f"({clock(elapsed)}{left})"


class LogLines(TrainerCallback):
    """A formatted line per logging step on stderr (not the Trainer's raw dicts), and a line at
    least every `every` seconds between them, so that a log file shows a slow run is alive."""

    def __init__(self, every: float = 30.0, write=None):
        self.every = every
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._started = self._last = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = self._last = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        line = log_line(logs, state.global_step, state.max_steps, time.monotonic() - self._started)
        if line:
            self.write(line)
            self._last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and time.monotonic() - self._last >= self.every:
            self.write(f"step {state.global_step:,}/{state.max_steps:,}  "
                       f"{_timing(state.global_step, state.max_steps, time.monotonic() - self._started)}")
            self._last = time.monotonic()


def progress_callbacks(show_bar: bool) -> list:
    """A bar whose log lines are formatted (on a terminal, unless --no-progress), else LogLines."""
    if not show_bar:
        return [LogLines()]
    from transformers.trainer_callback import ProgressCallback

    class BarWithLines(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None and logs:
                line = log_line(logs, state.global_step, state.max_steps, self.training_bar.format_dict["elapsed"])
                if line:
                    self.training_bar.write(line)

    return [BarWithLines()]


class ProgressMarker(TrainerCallback):
    """Steps done, as a share of the run, for the fault tests (instruct_data.faults; off unless
    $IDATA_PROGRESS_FILE is set)."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and state.max_steps:
            from instruct_data.faults import reached

            reached("train", state.global_step / state.max_steps)


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
