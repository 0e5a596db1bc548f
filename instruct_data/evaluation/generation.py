"""Batched generation: one model load, prompts sorted by length, left-padded, greedy by default.

Greedy decoding is set explicitly (`do_sample=False`): in transformers 5 every generation
config field defaults to None, and a model's own generation_config.json may ask for
sampling, which would make scores change from run to run. Sampling happens only when asked,
with a seed.

Generation stops at EOS and at the template's stop strings (transformers' `stop_strings`
criterion); the text is then cut at the first stop string, since the criterion fires only
once the string has been generated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from instruct_data.errors import IdataError
from instruct_data.model_path import adapter_config
from instruct_data.tokens import PromptPrefix


class OutOfMemory(IdataError):
    exit_code = 4


@dataclass
class Decoding:
    max_new_tokens: int = 128
    batch_size: int = 16
    do_sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    eos_token_ids: list[int] = field(default_factory=list)  # empty: the tokenizer's EOS

    def describe(self) -> dict:
        data = asdict(self)
        if not self.do_sample:
            data.pop("temperature")
            data.pop("top_p")
        data["mode"] = "sampling" if self.do_sample else "greedy"
        return data


@dataclass
class Generated:
    text: str
    new_tokens: int
    finish: str  # "eos", "stop_string" or "length"


def load_model(model_name: str, adapter: str | None = None, *, dtype: str = "auto", device: str | None = None,
               trust_remote_code: bool = False):
    """(model, tokenizer): the base model, with the adapter on top when given (one load)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer_source = adapter if adapter and _has_tokenizer(Path(adapter)) else model_name
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(model_name, dtype=_dtype(dtype, device),
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:  # no such folder or hub name, offline, unknown architecture
        raise IdataError(f"cannot load the model {model_name}: {str(exc).splitlines()[0]}") from None
    tokenizer.padding_side = "left"  # decoder-only: new tokens must follow the prompt directly
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if adapter:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter)
        except (OSError, ValueError, RuntimeError) as exc:  # not an adapter folder, or another base's shapes
            raise IdataError(f"cannot load the adapter {adapter} on {model_name}: {str(exc).splitlines()[0]}") from None
    model.to(device)
    model.eval()
    return model, tokenizer


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))


def _dtype(name: str, device: str):
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[name]


def trim(text: str, stops: list[str]) -> tuple[str, bool]:
    """Text up to the first stop string; whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def generate(model, tokenizer, prompts: list[str], decoding: Decoding,
             on_batch: Callable[[int], None] | None = None, prefix: PromptPrefix | None = None) -> list[Generated]:
    """One Generated per prompt, in the prompts' order.

    Prompts become ids by the rule training uses (`instruct_data.tokens`): `prefix` says which
    special tokens go before them (default: the tokenizer's, unless a prompt already has them).
    """
    import torch

    if decoding.do_sample:
        from transformers import set_seed

        set_seed(decoding.seed)
    prefix = prefix or PromptPrefix(tokenizer)
    moved = [moved_spaces(tokenizer, prompt) for prompt in prompts]
    encoded = prefix.encode(tokenizer, [prompt[:len(prompt) - len(m)] for prompt, m in zip(prompts, moved)])
    lengths = [len(ids) for ids in encoded]
    # Longest first: similar lengths share a batch (little padding), and a batch too big for
    # memory fails at once rather than after most of the run.
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    results: list[Generated | None] = [None] * len(prompts)
    for start in range(0, len(order), decoding.batch_size):
        batch = order[start:start + decoding.batch_size]
        try:
            outputs = _generate_batch(model, tokenizer, [encoded[i] for i in batch], decoding)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise OutOfMemory(f"out of GPU memory generating a batch of {len(batch)} prompts "
                              f"(up to {lengths[batch[0]]} prompt tokens + {decoding.max_new_tokens} new): "
                              f"try --batch-size {max(1, decoding.batch_size // 2)} "
                              f"or a smaller --max-new-tokens") from None
        for index, output in zip(batch, outputs):
            results[index] = _without_moved(output, moved[index])
        if on_batch:
            on_batch(len(batch))
    return results  # type: ignore[return-value]


REPLY_PROBE = "答"  # a typical first character of a Chinese reply


def moved_spaces(tokenizer, prompt: str) -> str:
    """The spaces at the end of `prompt` that training gives to the reply's first token.

    Training tokenizes prompt and reply as one string. In a byte-level BPE (Qwen, Llama 3) the
    space of seed's `Answer: ` joins the reply's first word (`Answer:` then `Ġ答`), so the model
    never saw a lone space token there: it is fed the prompt without those spaces and writes them
    itself, as it learned to (lm-eval moves them the same way for multiple choice). A tokenizer
    that keeps the space its own token keeps it in the prompt. Decided by tokenizing the prompt
    with a probe reply after it."""
    stripped = prompt.rstrip(" \t")
    if stripped == prompt:
        return ""
    from instruct_data.tokens import encode_texts

    encoded = encode_texts(tokenizer, [prompt + REPLY_PROBE])[0]
    first = encoded.first_token_after(len(prompt))  # the token that holds the reply's first character
    return prompt[len(stripped):] if encoded.offsets[first][0] < len(prompt) else ""


def _without_moved(output: Generated, moved: str) -> Generated:
    """The generated text less the prompt's trailing spaces, which the model wrote back first."""
    if moved and output.text.startswith(moved):
        output.text = output.text[len(moved):]
    elif moved:
        output.text = output.text.lstrip(" \t")
    return output


def generation_kwargs(tokenizer, decoding: Decoding) -> dict:
    eos = list(decoding.eos_token_ids) or [tokenizer.eos_token_id]
    kwargs = dict(max_new_tokens=decoding.max_new_tokens, do_sample=decoding.do_sample,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=eos[0] if len(eos) == 1 else eos)
    if decoding.do_sample:
        kwargs.update(temperature=decoding.temperature, top_p=decoding.top_p)
    else:
        # A model's own generation_config may carry sampling values; greedy ignores them, say so.
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if decoding.stop:
        kwargs.update(stop_strings=list(decoding.stop), tokenizer=tokenizer)
    return kwargs


def _generate_batch(model, tokenizer, prompt_ids: list[list[int]], decoding: Decoding) -> list[Generated]:
    import torch

    encoded = tokenizer.pad({"input_ids": prompt_ids}, padding=True, return_tensors="pt")  # left: padding_side
    encoded = {k: v.to(model.device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
    with torch.inference_mode():
        output = model.generate(**encoded, **generation_kwargs(tokenizer, decoding))
    new = output[:, encoded["input_ids"].shape[1]:]
    results = []
    ends = set(decoding.eos_token_ids or [tokenizer.eos_token_id]) - {None}
    for row in new.tolist():
        tokens = _until_eos(row, ends | {tokenizer.pad_token_id})
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = trim(text, decoding.stop)
        if stopped:
            finish = "stop_string"
        elif len(tokens) < len(row) and row[len(tokens)] in ends:
            finish = "eos"
        else:
            finish = "length"
        results.append(Generated(text=text, new_tokens=len(tokens), finish=finish))
    return results


def _until_eos(row: list[int], ends: set) -> list[int]:
    """New tokens before the first end token (or the padding that follows a finished sequence)."""
    for index, token in enumerate(row):
        if token in ends:
            return row[:index]
    return row


def end_token_ids(model, tokenizer, *folders: str | None) -> list[int]:
    """Every token that ends a reply: the tokenizer's EOS, the model's generation config, and
    the end token `idata train` recorded in the adapter folder's generation_config.json (a
    chat template's <|im_end|> may be what the tuned model emits, not the tokenizer's EOS)."""
    ids: list[int] = []

    def add(value) -> None:
        for token in value if isinstance(value, list) else [value]:
            if isinstance(token, int) and token not in ids:
                ids.append(token)

    for folder in folders:
        path = Path(folder) / "generation_config.json" if folder else None
        if path and path.is_file():
            with open(path, encoding="utf-8") as fh:
                add(json.load(fh).get("eos_token_id"))
    add(tokenizer.eos_token_id)
    config = getattr(model, "generation_config", None)
    if config is not None:
        add(config.eos_token_id)
    return ids


def read_recorded_template(*folders: str | None) -> tuple[dict, str] | None:
    """The template recorded beside an adapter (or a merged model) as `template.json`, if any."""
    for folder in folders:
        path = Path(folder) / "template.json" if folder else None
        if path and path.is_file():
            with open(path, encoding="utf-8") as fh:
                return json.load(fh), str(path)
    return None


def adapter_base_model(adapter: str) -> str | None:
    """The base model an adapter was trained on (peft's adapter_config.json)."""
    return adapter_config(adapter).get("base_model_name_or_path") or None
