"""Pieces -> input_ids and labels, with the model's real end token, cached on disk.

    ids    = [special prefix] + context + target + EOS
    labels = -100 ...           -100 ...  target + EOS

Over `max_len` the context is cut from the left (the current question is kept), the reply
from the right, and EOS is always kept. Tokenization is batched with the fast tokenizer,
spread over the cores by `datasets.map`, and saved under a key made of the data's hash, the
tokenizer, the template, the end token and the length, so a second run loads it at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from instruct_data.errors import IdataError
from instruct_data.io import file_sha256
from instruct_data.templates import Template

IGNORE = -100
# Bump when the encoding below changes: old caches then stop matching.
ENCODING_VERSION = 1
ROWS_PER_PROCESS = 2000  # below this many rows per core, extra processes cost more than they save


@dataclass(frozen=True)
class EndToken:
    token: str
    id: int
    why: str


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def resolve_eos(tokenizer, generation_eos, template: Template, override: str | None = None) -> EndToken:
    """The token every reply ends with, checked against the tokenizer and the generation config.

    A chat template whose replies close with a special token (ChatML `<|im_end|>`, Llama 3
    `<|eot_id|>`) ends them with that token; otherwise the tokenizer's EOS, which must be one
    the generation config stops on (else the tuned model would never stop).
    """
    vocab = tokenizer.get_vocab()
    gen_ids = _as_list(generation_eos)
    if override:
        if override not in vocab:
            raise IdataError(f"--eos-token {override!r} is not a single token of this tokenizer")
        return EndToken(override, vocab[override], "--eos-token")
    special = set(tokenizer.all_special_tokens) | {str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values()}
    for stop in template.stop:
        if stop in vocab and stop in special:
            return EndToken(stop, vocab[stop], f"the {template.name} template closes replies with it")
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        if not gen_ids:
            raise IdataError("the model has no end-of-sequence token in its tokenizer or generation config; "
                             "pass --eos-token")
        eos_id = gen_ids[0]
        return EndToken(tokenizer.convert_ids_to_tokens(eos_id), eos_id, "the generation config's eos_token_id")
    if gen_ids and eos_id not in gen_ids:
        # The tokenizer and the generation config disagree: train on the one generation stops at.
        eos_id = gen_ids[0]
        return EndToken(tokenizer.convert_ids_to_tokens(eos_id), eos_id,
                        "the generation config's eos_token_id (the tokenizer's EOS is not one it stops on)")
    return EndToken(tokenizer.eos_token, eos_id, "the tokenizer's EOS, which the generation config stops on"
                    if gen_ids else "the tokenizer's EOS")


def special_prefix(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (Llama's BOS; nothing for Qwen)."""
    probe = "你好"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return list(full[:start])
    return []


def fit(context: list[int], reply: list[int], budget: int) -> tuple[int, int]:
    """How many context tokens (kept from the right) and reply tokens (kept from the left) fit."""
    if len(context) + len(reply) <= budget:
        return len(context), len(reply)
    half = budget // 2
    if len(reply) <= half:
        return budget - len(reply), len(reply)
    if len(context) <= half:
        return len(context), budget - len(context)
    return budget - half, half


class Encoder:
    """The `datasets.map` function: a batch of pieces -> ids, labels, length, truncated, skipped."""

    def __init__(self, tokenizer, eos: EndToken, max_len: int, too_long: str):
        self.tokenizer = tokenizer
        self.eos = eos
        self.max_len = max_len
        self.too_long = too_long
        self.prefix = special_prefix(tokenizer)
        self.prefix_text = tokenizer.decode(self.prefix) if self.prefix else ""

    def __call__(self, batch: dict) -> dict:
        texts, flags = batch["texts"], batch["supervised"]
        cleaned = [self._clean(t, f) for t, f in zip(texts, flags)]
        flat = [piece for pieces in cleaned for piece in pieces]
        tokens = self.tokenizer(flat, add_special_tokens=False)["input_ids"] if flat else []
        out = {"input_ids": [], "labels": [], "length": [], "truncated": [], "skipped": []}
        at = 0
        for pieces, supervised in zip(cleaned, flags):
            ids, labels, truncated, skipped = self._encode(tokens[at:at + len(pieces)], supervised,
                                                           pieces[0] if pieces else "")
            at += len(pieces)
            out["input_ids"].append(ids)
            out["labels"].append(labels)
            out["length"].append(len(ids))
            out["truncated"].append(truncated)
            out["skipped"].append(skipped)
        return out

    def _clean(self, texts: list[str], supervised: list[bool]) -> list[str]:
        """Drop a closing marker that is the end token itself: EOS is added as a token instead.

        (ChatML: the reply is followed by `<|im_end|>` text; after appending the `<|im_end|>`
        token the text copy would double it.)
        """
        cleaned = list(texts)
        for index in range(1, len(cleaned)):
            if supervised[index - 1] and not supervised[index] and cleaned[index].startswith(self.eos.token):
                cleaned[index] = cleaned[index][len(self.eos.token):]
        return cleaned

    def _encode(self, tokens: list[list[int]], supervised: list[bool], first_text: str):
        # A template that writes the model's own prefix (GLM-4's [gMASK]<sop>) must not get it twice.
        prefix = [] if self.prefix_text and first_text.startswith(self.prefix_text) else self.prefix
        last = max(i for i, s in enumerate(supervised) if s)
        context_ids: list[int] = []
        context_labels: list[int] = []
        for piece, is_reply in zip(tokens[:last], supervised[:last]):
            context_ids += piece
            context_labels += (piece + [self.eos.id]) if is_reply else [IGNORE] * len(piece)
            if is_reply:
                context_ids.append(self.eos.id)
        reply = list(tokens[last]) + [self.eos.id]
        budget = self.max_len - len(prefix)
        total = len(context_ids) + len(reply)
        truncated = total > budget
        if truncated and (self.too_long == "skip" or budget < 2):
            return [], [], True, True
        keep_context, keep_reply = fit(context_ids, reply, budget)
        if keep_reply < len(reply):
            reply = reply[:keep_reply - 1] + [self.eos.id]  # cut from the right, EOS kept
        cut = len(context_ids) - keep_context
        ids = prefix + context_ids[cut:] + reply
        labels = [IGNORE] * len(prefix) + context_labels[cut:] + reply
        return ids, labels, truncated, False


def tokenizer_fingerprint(tokenizer) -> str:
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update(backend.to_str().encode() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_key(data_path: Path, kind: str, tokenizer, template: Template, eos: EndToken, max_len: int,
              too_long: str) -> str:
    parts = {
        "version": ENCODING_VERSION, "data": file_sha256(data_path), "kind": kind,
        "tokenizer": tokenizer_fingerprint(tokenizer), "template": template.to_dict(),
        "eos": eos.id, "max_len": max_len, "too_long": too_long,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    return Path(os.environ.get("IDATA_CACHE", Path.home() / ".cache" / "idata")) / "tokenized"


@dataclass
class Tokenized:
    dataset: object  # datasets.Dataset with input_ids, labels, length
    rows: int
    truncated: int
    skipped: int
    cached: bool
    path: Path


def tokenize_file(data_path: Path, kind: str, examples_loader, tokenizer, template: Template, eos: EndToken,
                  max_len: int, too_long: str, cache_dir: str | Path | None, num_proc: int | None) -> Tokenized:
    """Load the tokenized data from the cache, or tokenize `examples_loader()` and cache it."""
    import datasets

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / cache_key(data_path, kind, tokenizer, template, eos, max_len, too_long)
    stats_file = path / "idata_stats.json"
    if stats_file.is_file():
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
        return Tokenized(datasets.load_from_disk(str(path / "data")), stats["rows"], stats["truncated"],
                         stats["skipped"], True, path)
    key = path.name
    work = root / f".build-{key}-{os.getpid()}"  # Arrow files while building: rows stream to disk
    try:
        raw = _raw_dataset(examples_loader, work, key)
        return _encode_and_save(raw, data_path, path, tokenizer, eos, max_len, too_long, num_proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _raw_dataset(examples_loader, work: Path, key: str):
    """The pieces as an on-disk Arrow dataset, streamed: memory stays flat however large the file."""
    import datasets
    from datasets.exceptions import DatasetGenerationError

    def rows():
        for example in examples_loader():
            yield {"texts": [t for t, _ in example], "supervised": [s for _, s in example]}

    features = datasets.Features({"texts": datasets.List(datasets.Value("string")),
                                  "supervised": datasets.List(datasets.Value("bool"))})
    try:
        return datasets.Dataset.from_generator(rows, features=features, cache_dir=str(work), fingerprint=key)
    except DatasetGenerationError as exc:  # a bad row: report it as itself (file:line), not as datasets' wrapper
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, IdataError):
            raise cause from None
        raise


def _encode_and_save(raw, data_path: Path, path: Path, tokenizer, eos: EndToken, max_len: int, too_long: str,
                     num_proc: int | None) -> Tokenized:
    import datasets

    if num_proc is None:
        num_proc = max(1, min(os.cpu_count() or 1, len(raw) // ROWS_PER_PROCESS))
    encoded = raw.map(Encoder(tokenizer, eos, max_len, too_long), batched=True, batch_size=1000,
                      num_proc=num_proc if num_proc > 1 else None, remove_columns=["texts", "supervised"],
                      desc="tokenizing", load_from_cache_file=False)
    truncated = sum(encoded["truncated"])
    skipped = sum(encoded["skipped"])
    kept = encoded.filter(lambda s: not s, input_columns="skipped") if skipped else encoded
    kept = kept.remove_columns(["truncated", "skipped"])
    if len(kept) == 0:
        raise IdataError(f"{data_path}: every row is longer than --max-len {max_len}; raise --max-len "
                         "or use --too-long truncate")
    # Write beside, then rename: a cache entry is complete or absent (another rank may be reading).
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    kept.save_to_disk(str(tmp / "data"))
    stats = {"rows": len(raw), "truncated": truncated, "skipped": skipped, "data": str(data_path)}
    (tmp / "idata_stats.json").write_text(json.dumps(stats), encoding="utf-8")
    try:
        os.replace(tmp, path)
    except OSError:  # someone else wrote the same entry first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return Tokenized(datasets.load_from_disk(str(path / "data")), len(raw), truncated, skipped, False, path)
