"""`train(config) -> output folder`: the whole run, from data files to a checked adapter.

The output folder holds the adapter (safetensors), the tokenizer, `template.json` (the
template used, for prompting at evaluation), `generation_config.json` (stops on the end
token trained), `run_config.json`, `metrics.json`, `loss_curve.png`, `logs/` (JSONL and
TensorBoard) and `checkpoints/` (adapter-only, last K, for `--resume`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.io import write_json
from instruct_data.model_path import check_model
from instruct_data.redact import redact_argv
from instruct_data.training.config import TrainConfig, check

ADAPTER_FILE = "adapter_model.safetensors"


def unfinished(out: Path) -> Path:
    """Where a run writes until it completes (checkpoints, logs, then the adapter): swapped in at
    --out at the end, so the run it replaces stays whole until then; kept when a run stops, for
    --resume. No pid in the name: every rank of a launch, and the next run, find it."""
    return out.parent / f".{out.name}.unfinished"


@contextmanager
def guarded_out(config: TrainConfig):
    """(out, work): --out checked and locked (outputs_guard; on the main process), and the folder
    this run writes into. On success the main process swaps it in; when the run fails, the work
    folder stays if it holds a checkpoint (for --resume), and goes otherwise."""
    from instruct_data.outputs_guard import OutputError, guard_output, real_out, swap_in, write_folder_manifest

    main = int(os.environ.get("RANK", "0")) == 0
    reads = [p for p in (config.data, config.eval_data, config.deepspeed) if p]
    guard = guard_output(config.out, reads, command="train", overwrite=bool(config.overwrite),
                         models=[config.model]) if main else contextlib.nullcontext(real_out(config.out))
    with guard as out:
        work = unfinished(out)
        if main:
            if out.exists() and not out.is_dir():
                raise OutputError(f"--out {out} is a file, not a folder")
            holds_run = out.is_dir() and any(out.iterdir())
            if (holds_run or work.exists()) and not (config.resume or config.overwrite):
                what = f"an unfinished run (its checkpoints are in {work})" if work.exists() else "a training run"
                raise OutputError(f"{config.out} already holds {what}: pass --resume to continue it or --overwrite "
                                  "to start over")
            if config.resume:
                check_resume(config, out, work)  # before anything is written: a refused resume changes nothing
            if config.overwrite:
                shutil.rmtree(work, ignore_errors=True)  # start over: the unfinished run goes, the finished stays
            work.mkdir(parents=True, exist_ok=True)
            say(f"writing to {work} (checkpoints, logs); it becomes {config.out} when the run completes")
        try:
            yield out, work
        except BaseException:
            if main:
                if list((work / "checkpoints").glob("checkpoint-*")):
                    say(f"note: this run's checkpoints are kept in {work}: run again with --resume to continue it, "
                        f"or --overwrite to start over; {config.out} is as it was")
                else:
                    shutil.rmtree(work, ignore_errors=True)
            raise
        if main:
            write_folder_manifest(work, "train")
            swap_in(work, out)


def find_checkpoint(out: Path, work: Path) -> str:
    """The newest checkpoint of the unfinished run, else of the finished run at --out."""
    from transformers.trainer_utils import get_last_checkpoint

    for folder in (work / "checkpoints", out / "checkpoints"):
        found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
        if found:
            return found
    raise IdataError(f"--resume: no checkpoint in {work / 'checkpoints'} or {out / 'checkpoints'} (checkpoints are "
                     "written every --save-steps steps)")


def checkpoint_step(checkpoint: str) -> int:
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def check_resume(config: TrainConfig, out: Path, work: Path) -> None:
    """--resume refused while nothing is written yet: with no checkpoint, or one already at or past
    --max-steps (the Trainer then ran one step more, `step 5/2`, and replaced the adapter and
    every checkpoint with it)."""
    step = checkpoint_step(find_checkpoint(out, work))
    if 0 < config.max_steps <= step:
        raise IdataError(f"--resume: {config.out} is already at step {step}, at or past --max-steps "
                         f"{config.max_steps}; raise --max-steps to train on")


def last_checkpoint(out: Path, work: Path) -> str:
    """The checkpoint to resume from, with the log of the run it belongs to."""
    found = find_checkpoint(out, work)
    if Path(found).parent == out / "checkpoints" and int(os.environ.get("RANK", "0")) == 0 and (out / "logs").is_dir():
        shutil.rmtree(work / "logs", ignore_errors=True)  # the log goes on from the finished run's
        shutil.copytree(out / "logs", work / "logs")
    return found


def training_arguments(config: TrainConfig, out: Path, precision, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        lr_scheduler_type=config.scheduler,
        bf16=precision.name == "bf16",
        fp16=precision.name == "fp16",
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length" if config.group_by_length and not config.packing else "random",
        length_column_name="length",
        remove_unused_columns=False,
        eval_strategy="steps" if has_eval and config.eval_steps else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        prediction_loss_only=True,
        report_to=[],
        disable_tqdm=not config.progress,
        seed=config.seed,
        data_seed=config.seed,
        dataloader_num_workers=config.dataloader_workers,
        deepspeed=config.deepspeed,
        ddp_find_unused_parameters=False,
    )


def model_context_length(config: TrainConfig) -> int | None:
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(config.model, trust_remote_code=config.trust_remote_code)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise IdataError(f"{config.model} ships its own model code; pass --trust-remote-code if you trust it") from None
        raise IdataError(f"cannot load the config of {config.model}: {exc}") from None
    except OSError as exc:
        raise IdataError(f"cannot load model {config.model}: {exc}") from None
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def generation_eos(model: str, trust_remote_code: bool):
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None


def load_data(config: TrainConfig, source, tokenizer, eos, args):
    """Tokenize (or load from the cache) the train and eval files; the main process goes first."""
    from instruct_data.training.data import BlockReader, data_kind, iter_pieces
    from instruct_data.training.tokenize import tokenize_file

    def one(path: Path, rendered_with=None):
        kind = data_kind(path)
        # The re-rendering source is part of what is tokenized: the cache key's data hash
        # alone would not tell a re-rendered held-out file from the file as it is.
        template, reasoning = source.template, config.reasoning
        variant = ";".join(filter(None, [rendered_with.name if rendered_with is not None else None,
                                         f"reasoning={reasoning}" if reasoning != "keep" else None])) or None
        return tokenize_file(path, kind, lambda: iter_pieces(path, template, kind, rendered_with, reasoning), tokenizer,
                             template, eos, config.max_len, config.too_long, config.cache_dir, config.num_proc,
                             variant=variant, block_reader=BlockReader(path, template, kind, rendered_with, reasoning))

    # Rank 0 tokenizes and writes the cache; the other ranks then load it (tokenized once).
    with args.main_process_first(local=False, desc="tokenizing"):
        train = one(source.train)
        held = one(source.eval, source.eval_rendered_with) if source.eval else None
    if held is not None and config.eval_max_rows and len(held.dataset) > config.eval_max_rows:
        held.select(config.eval_max_rows)
    return train, held


def data_report(tokenized) -> dict:
    lengths = tokenized.lengths  # one array, read once: no pass over the dataset's rows
    # rows: the file's rows; a dialogue the template is not prefix-stable over is one example per reply.
    rows = tokenized.rows - tokenized.per_reply_examples + tokenized.per_reply_rows
    return {"rows": rows, "examples": int(len(lengths)), "truncated": tokenized.truncated,
            "skipped": tokenized.skipped, "tokens": int(lengths.sum()), "max_tokens": int(lengths.max()),
            "per_reply_rows": tokenized.per_reply_rows, "per_reply_examples": tokenized.per_reply_examples,
            "rejected": tokenized.rejected, "rejects": tokenized.rejects,
            "cached": tokenized.cached, "cache": str(tokenized.path)}


def say(message: str) -> None:
    """A line on stderr from the main process only."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(message, file=sys.stderr, flush=True)


def train(config: TrainConfig, callbacks: list | None = None) -> Path:
    """Run LoRA fine-tuning as `config` says; return the output folder.

    `callbacks` are extra transformers TrainerCallbacks (the tests use them to interrupt a run
    or inject a NaN).
    """
    check(config)
    check_model(config.model)  # a mistyped local folder is "no such folder", not a hub error
    with guarded_out(config) as (out, work):
        _train(config, callbacks, out, work)
    return out


def _train(config: TrainConfig, callbacks: list | None, final: Path, out: Path) -> None:
    """The run, written into `out` (the unfinished folder; `final` is --out)."""
    from instruct_data.training.data import resolve_source

    started = time.time()
    precision = check_machine(config)
    resume_from = last_checkpoint(final, out) if config.resume else None
    if not Path(config.data).exists():
        raise InputError(config.data, "no such file or folder")
    context = model_context_length(config)
    if context and config.max_len > context:
        raise IdataError(f"--max-len {config.max_len} is longer than the model's context ({context}); lower --max-len")
    tokenizer = load_tokenizer(config)
    source = resolve_source(config.data, config.eval_data, config.template, tokenizer)
    if config.eval_steps and source.eval is None:
        say("note: --eval-steps is set but there is no held-out file (--eval-data, or a build folder's "
            "heldout.jsonl): no eval loss")

    args = training_arguments(config, out, precision, has_eval=source.eval is not None)
    eos = end_token(config, tokenizer, source, precision)
    train_data, eval_data = load_data(config, source, tokenizer, eos, args)
    report = {"train": data_report(train_data), "eval": data_report(eval_data) if eval_data else None}
    say(f"train: {report['train']['examples']:,} examples, {report['train']['truncated']:,} truncated, "
        f"{report['train']['skipped']:,} skipped (--max-len {config.max_len})"
        + (" [tokenized data from the cache]" if train_data.cached else ""))
    for name, part in report.items():
        if part and part["rejected"]:
            say(f"{name}: {part['rejected']:,} rows rejected, not trained (first: {'; '.join(part['rejects'])}); "
                "`idata validate` lists them all")
    if report["train"]["per_reply_rows"]:
        say(f"train: {report['train']['per_reply_rows']:,} of {report['train']['rows']:,} dialogues are trained one "
            f"example per reply ({report['train']['per_reply_examples']:,} examples): the {source.template.name} "
            "template renders an earlier turn differently once later turns follow (docs/training.md)")

    trainer, targets = make_trainer(config, args, precision, tokenizer, train_data, eval_data, out, callbacks)
    if resume_from:
        resume_bookkeeping(trainer, out, resume_from)
    result = run_training(trainer, resume_from, config)
    # Every rank takes part in these three (they gather or synchronise); only the main one writes.
    final_eval = (last_step_eval(trainer) or trainer.evaluate()) if eval_data is not None else {}
    tokens = trainer.total_tokens()
    trainer.save_model(str(out))  # adapter (safetensors) + adapter_config.json + tokenizer
    if trainer.is_world_process_zero():
        finish(out, trainer, config, source, eos, precision, targets, report, result, final_eval, tokens, started,
               resume_from)
    if args.world_size > 1:
        trainer.accelerator.wait_for_everyone()


def last_step_eval(trainer) -> dict | None:
    """The held-out figures logged at the last step, if `--eval-steps` evaluated there: the same
    weights, so evaluating again would repeat a whole pass over the held-out set (and its line).
    Every rank holds the same log history, so every rank takes the same branch."""
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if entry.get("step") == step and "eval_loss" in entry:
            return {key: value for key, value in entry.items() if key.startswith("eval_")}
    return None


def resume_bookkeeping(trainer, out: Path, checkpoint: str) -> None:
    """Totals over the whole run: the log loses the steps after the checkpoint (they run again),
    and the token count starts from the checkpoint's."""
    from instruct_data.training.loop import JsonlLog

    trainer.resume_tokens(checkpoint)
    if trainer.is_world_process_zero():
        JsonlLog(out / "logs" / "train_log.jsonl").rewind(checkpoint_step(checkpoint))


def check_machine(config: TrainConfig):
    """The precision to train in; a clear error now for what this machine cannot run."""
    import importlib.util

    from instruct_data.training.model import choose_precision, quantization_config

    precision = choose_precision(config.precision)
    if config.qlora:
        quantization_config(precision)  # fails where 4-bit cannot run
    if config.deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise IdataError("--deepspeed needs DeepSpeed: pip install 'instruct-data[deepspeed]' (on a CUDA machine)")
    return precision


def load_tokenizer(config: TrainConfig):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(config.model, trust_remote_code=config.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise IdataError(f"cannot load the tokenizer of {config.model}: {str(exc).splitlines()[0]}") from None


def end_token(config: TrainConfig, tokenizer, source, precision):
    """The end token every reply is trained to end with (and a pad token where there is none)."""
    from instruct_data.training.tokenize import resolve_eos

    gen_config = generation_eos(config.model, config.trust_remote_code)
    eos = resolve_eos(tokenizer, gen_config.eos_token_id if gen_config else None, source.template, config.eos_token)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = eos.token  # padding is masked out of the loss by -100, not by its id
    say(f"template {source.template.name}: {source.template_from}")
    say(f"end token {eos.token!r} (id {eos.id}): {eos.why}; precision {precision.name}: {precision.why}")
    return eos


def make_trainer(config: TrainConfig, args, precision, tokenizer, train_data, eval_data, out: Path, callbacks):
    """The LoRA model, its batches and loss, in an IdataTrainer. Returns (trainer, LoRA layer names)."""
    import torch
    from transformers import set_seed

    from instruct_data.training.collate import PackCollator, PadCollator
    from instruct_data.training.loop import IdataTrainer, JsonlLog, LossGuard, ProgressMarker, ReplyLoss
    from instruct_data.training.model import load_base, wrap_lora

    set_seed(config.seed)
    attention = attention_for(config)
    model = load_base(config.model, precision, qlora=config.qlora, trust_remote_code=config.trust_remote_code,
                      attn_implementation=attention,
                      device_map={"": int(os.environ.get("LOCAL_RANK", "0"))} if config.qlora else None)
    model, targets = wrap_lora(model, config, gradient_checkpointing=config.gradient_checkpointing, precision=precision)
    trainable, total = model.get_nb_trainable_parameters()
    say(f"LoRA r={config.lora_r} on {', '.join(targets)}: {trainable:,} trainable of {total:,} parameters")

    if config.packing:
        collator = PackCollator(flash_attention=(attention or "").startswith("flash"))
    else:
        collator = PadCollator(tokenizer.pad_token_id, multiple=8 if torch.cuda.is_available() else None)
    reply_loss = None
    if config.chunked_loss and ReplyLoss.applies(model, sharded=sharded_weights(config, args)):
        reply_loss = ReplyLoss(model.get_output_embeddings())
    batches = ("packed (padding-free)" if config.packing else
               "length-grouped, padded to the longest" if config.group_by_length else "random, padded to the longest")
    say(f"loss: {'reply tokens only, output head fused in chunks' if reply_loss else 'the model’s own'}; "
        f"attention: {getattr(model.config, '_attn_implementation', attention)}; batches: {batches}")
    trainer = IdataTrainer(
        model=model, args=args, train_dataset=train_data.dataset, train_lengths=train_data.lengths, eval_dataset=eval_data.dataset if eval_data else None,
        data_collator=collator, processing_class=tokenizer, guard=LossGuard(config.lr, precision.name),
        reply_loss=reply_loss,
        callbacks=[JsonlLog(out / "logs" / "train_log.jsonl"), *tensorboard(out, args), ProgressMarker(),
                   *(callbacks or [])],
    )
    # The Trainer prints its raw log dicts (through its bar, or without one); idata prints one
    # formatted line per logging step instead, and a line every 30 s when stderr is not a terminal.
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from instruct_data.training.loop import progress_callbacks

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    for callback in progress_callbacks(show_bar=config.progress and sys.stderr.isatty()):
        trainer.add_callback(callback)
    return trainer, targets


def attention_for(config: TrainConfig) -> str | None:
    """Packed batches run best on FlashAttention's variable-length kernel, where it is installed."""
    import importlib.util

    import torch

    attention = config.attn_implementation
    if not config.packing or attention not in (None, "sdpa"):
        return attention
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    say("note: --packing with sdpa attention keeps examples apart with a block-diagonal mask, whose cost grows "
        "with the square of the packed length; `pip install flash-attn` on a GPU for the variable-length kernel")
    return attention


def tensorboard(out: Path, args) -> list:
    """A TensorBoard writer on the main process (logs/tensorboard), when tensorboard is installed."""
    if args.process_index != 0:
        return []
    try:
        from transformers.integrations import TensorBoardCallback

        callback = TensorBoardCallback()
    except (ImportError, RuntimeError):
        return []
    # The callback reopens its writer for the final evaluation: it must reopen it here too.
    callback.logging_dir = str(out / "logs" / "tensorboard")
    return [callback]


def run_training(trainer, resume_from: str | None, config: TrainConfig):
    import torch

    try:
        return trainer.train(resume_from_checkpoint=resume_from)
    except torch.OutOfMemoryError:
        raise IdataError(
            f"out of memory: lower --batch-size (now {config.batch_size}; raise --grad-accum to keep the "
            f"effective batch) or --max-len (now {config.max_len}), or add --gradient-checkpointing / --qlora"
        ) from None


def finish(out: Path, trainer, config: TrainConfig, source, eos, precision, targets, report, result, final_eval,
           tokens: int, started: float, resume_from) -> None:
    import torch

    from instruct_data import __version__
    from instruct_data.training.loop import plot_loss, read_log

    verify_adapter(out, trainer.model, sharded=trainer.is_fsdp_enabled or sharded_weights(config, trainer.args))
    template = source.template
    write_json(out / "template.json", {**template.to_dict(), "name": template.name})
    save_generation_config(out, config, eos, trainer.processing_class)
    log = read_log(out / "logs" / "train_log.jsonl")
    plot = plot_loss(log, out / "loss_curve.png")
    losses = [r["loss"] for r in log if "loss" in r]
    runtime = result.metrics.get("train_runtime") or 0.0
    # A resumed run: the Trainer's train_loss averages only the steps run since the checkpoint.
    train_loss = (sum(losses) / len(losses) if losses else None) if resume_from else result.metrics.get("train_loss")
    metrics = {
        "steps": trainer.state.global_step, "resumed_from": resume_from,
        "train_loss": train_loss, "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None, "eval_loss": final_eval.get("eval_loss"),
        "train_runtime_s": runtime, "trained_tokens": tokens,
        "tokens_per_s": round((tokens - trainer.tokens_before) / runtime, 1) if runtime else None,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 3) if torch.cuda.is_available() else None,
        "world_size": trainer.args.world_size, "data": report, "wall_s": round(time.time() - started, 1),
    }
    write_json(out / "metrics.json", metrics)
    write_json(out / "run_config.json", {
        "config": config.to_dict(),
        "resolved": {"template": template.name, "template_why": source.template_from, "train_file": str(source.train),
                     "eval_file": str(source.eval) if source.eval else None,
                     "eos": {"token": eos.token, "id": eos.id, "why": eos.why},
                     "reasoning": config.reasoning, "supervision": supervision(report["train"]),
                     "precision": precision.name, "precision_why": precision.why, "lora_targets": targets,
                     "loss": "reply tokens, fused output head" if trainer.reply_loss else "the model's own",
                     "attention": getattr(trainer.model.config, "_attn_implementation", None),
                     "world_size": trainer.args.world_size},
        "versions": versions(__version__), "command": redact_argv(sys.argv),
        "outputs": {"adapter": ADAPTER_FILE, "loss_curve": plot.name if plot else None},
    })
    say(f"wrote {config.out}: adapter, tokenizer, template.json, metrics.json (loss {_number(metrics['first_loss'])} -> "
        f"{_number(metrics['last_loss'])}, {_number(metrics['tokens_per_s'], ',.0f')} tokens/s)")


def supervision(train: dict) -> dict:
    """How the replies were found and trained, for run_config.json."""
    per_reply = train["per_reply_rows"]
    return {"segments": "the template's own text: render(turns[:k+1]) minus render(turns[:k], "
                        "add_generation_prompt=True), the whole example tokenized once",
            "one_example_per_reply": {"rows": per_reply, "examples": train["per_reply_examples"],
                                      "why": "the template is not prefix-stable over these dialogues (it renders an "
                                             "earlier turn differently once later turns follow)" if per_reply else None},
            "one_example_per_row": train["rows"] - per_reply}


def _number(value, spec: str = ".4f") -> str:
    """A metric for a message; a missing one (no step logged) reads as '-'."""
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def sharded_weights(config: TrainConfig, args) -> bool:
    """FSDP or ZeRO-3, from the options or from `accelerate launch`'s environment."""
    return (bool(args.fsdp) or os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true"
            or os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3" or _zero3(config))


def _zero3(config: TrainConfig) -> bool:
    if not config.deepspeed:
        return False
    try:
        return json.loads(Path(config.deepspeed).read_text()).get("zero_optimization", {}).get("stage") == 3
    except (OSError, json.JSONDecodeError):
        return False


def verify_adapter(out: Path, model, sharded: bool = False) -> None:
    """The saved adapter exists, is not empty, reloads, and equals the weights in memory."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    path = out / ADAPTER_FILE
    if not path.is_file() or path.stat().st_size == 0:
        raise IdataError(f"{path} was not written: the adapter is missing or empty")
    saved = load_file(str(path))
    if not saved:
        raise IdataError(f"{path} holds no tensors: the adapter is empty")
    if sharded:  # FSDP / ZeRO-3 partition the weights across ranks: only the file can be checked
        return
    unwrapped = model.module if hasattr(model, "module") else model
    expected = get_peft_model_state_dict(unwrapped)
    if set(saved) != set(expected):
        raise IdataError(f"{path}: saved tensors differ from the adapter in memory "
                         f"({len(saved)} saved, {len(expected)} expected)")
    for name, tensor in expected.items():
        if not torch.equal(saved[name].cpu(), tensor.detach().cpu().to(saved[name].dtype)):
            raise IdataError(f"{path}: {name} reloads different from the trained weight")
    if all(not t.any() for n, t in saved.items() if "lora_B" in n):
        say(f"warning: every lora_B in {path} is zero: the adapter changes nothing (too few steps or a zero --lr?)")


def save_generation_config(out: Path, config: TrainConfig, eos, tokenizer) -> None:
    """The base model's generation config, also stopping at the end token trained on."""
    from transformers import GenerationConfig

    gen = generation_eos(config.model, config.trust_remote_code) or GenerationConfig()
    ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else ([gen.eos_token_id] if gen.eos_token_id is not None else [])
    if eos.id not in ids:
        ids = [eos.id, *ids]
    gen.eos_token_id = ids[0] if len(ids) == 1 else ids
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    gen.save_pretrained(str(out))


def versions(own: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"instruct-data": own}
    for name in ("torch", "transformers", "peft", "accelerate", "datasets", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
