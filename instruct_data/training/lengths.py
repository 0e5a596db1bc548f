"""Token lengths of a build as `idata train` would see them (`idata stats BUILD --tokenizer M`).

Every example is rendered and tokenized by the trainer's own code (data.resolve_source picks the
template as `idata train --template` would, tokenize.Encoder makes the ids and labels), once with
no length limit: prompt = tokens not trained, reply = tokens trained (the replies and their end
token), whole = both. With `max_len`, the same examples are encoded again under each `--too-long`
choice, so the counts are the trainer's: how many would be truncated, how many skipped, and how
many tokens truncation would cut.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from instruct_data.errors import IdataError

PERCENTILES = (50, 90, 95, 99, 100)
UNLIMITED = 10**9
BATCH = 256


def token_lengths(build: str | Path, tokenizer_name: str, template: str | None = None, max_len: int | None = None,
                  trust_remote_code: bool = False, progress=None) -> dict[str, Any]:
    """Percentiles per part (prompt, reply, whole) overall, per source and per category, the
    histogram of whole lengths, and what `max_len` would do under each --too-long choice."""
    import numpy as np

    from instruct_data.training.data import resolve_source

    tokenizer = _tokenizer(tokenizer_name, trust_remote_code)
    source = resolve_source(str(build), None, template, tokenizer)
    eos = _end_token(tokenizer, tokenizer_name, source.template, trust_remote_code)
    rows = _examples(source)
    full = _encode(rows, tokenizer, eos, source.template, UNLIMITED, "truncate", progress)
    lengths = {part: np.array([r[part] for r in full], dtype=np.int64) for part in ("prompt", "reply", "whole")}
    groups = {"source": defaultdict(list), "category": defaultdict(list)}
    for index, (src, category, _) in enumerate(rows):
        groups["source"][src].append(index)
        groups["category"][category or "(none)"].append(index)
    result = {
        "tokenizer": tokenizer_name, "template": source.template.name, "template_why": source.template_from,
        "data": str(source.train), "examples": len(full),
        "overall": _percentiles(lengths, np.arange(len(full))),
        "by_source": {k: _percentiles(lengths, np.array(v)) for k, v in sorted(groups["source"].items())},
        "by_category": {k: _percentiles(lengths, np.array(v)) for k, v in sorted(groups["category"].items())},
        "histogram": _histogram(lengths["whole"]),
    }
    if max_len:
        result["max_len"] = _over(rows, full, lengths["whole"], tokenizer, eos, source.template, max_len)
    return result


def _tokenizer(name: str, trust_remote_code: bool):
    from transformers import AutoTokenizer

    if not Path(name).exists() and (name.startswith((".", "/")) or name.count("/") > 1):
        raise IdataError(f"--tokenizer {name}: no such folder")
    try:
        return AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise IdataError(f"cannot load the tokenizer of {name}: {str(exc).splitlines()[0]}") from None


def _end_token(tokenizer, name: str, template, trust_remote_code: bool):
    from instruct_data.training.runner import generation_eos
    from instruct_data.training.tokenize import resolve_eos

    config = generation_eos(name, trust_remote_code)
    return resolve_eos(tokenizer, config.eos_token_id if config else None, template)


def _examples(source) -> list[tuple[str | None, str | None, list]]:
    """(source, category, pieces) of every example of the training file, as the trainer reads it."""
    from instruct_data.io import read_rows
    from instruct_data.training.data import data_kind, pieces_of, rejected

    path = source.train
    kind = data_kind(path)
    found = []
    for row in read_rows(path):
        data = row.data or {}
        for pieces in pieces_of(row, path, source.template, kind, None):
            if not rejected(pieces):  # a row training would reject is not measured either
                found.append((data.get("source"), data.get("category"), pieces))
    if not found:
        raise IdataError(f"{path}: no examples to measure")
    return found


def _encode(rows, tokenizer, eos, template, max_len: int, too_long: str, progress) -> list[dict[str, Any]]:
    from instruct_data.io import chunked
    from instruct_data.templates import NativeTemplate, prompt_layout
    from instruct_data.training.tokenize import IGNORE, Encoder

    encoder = Encoder(tokenizer, eos, max_len, too_long, layout=prompt_layout(template),
                      native=isinstance(template, NativeTemplate))
    out = []
    for batch in chunked([pieces for _, _, pieces in rows], BATCH):
        encoded = encoder({"texts": [[t for t, _ in p] for p in batch], "supervised": [[s for _, s in p] for p in batch]})
        for ids, labels, truncated, skipped in zip(encoded["input_ids"], encoded["labels"], encoded["truncated"],
                                                   encoded["skipped"]):
            reply = sum(1 for label in labels if label != IGNORE)
            out.append({"whole": len(ids), "reply": reply, "prompt": len(ids) - reply,
                        "truncated": truncated, "skipped": skipped})
        if progress is not None:
            progress(len(batch))
    return out


def _percentiles(lengths: dict, index) -> dict[str, Any]:
    import numpy as np

    if not len(index):
        return {"examples": 0}
    return {"examples": int(len(index)), **{
        part: {f"p{p}": int(np.percentile(values[index], p, method="higher")) for p in PERCENTILES}
        | {"mean": round(float(values[index].mean()), 1)}
        for part, values in lengths.items()}}


def _histogram(whole) -> dict[str, list[int]]:
    import numpy as np

    edges = [0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]
    edges = [e for e in edges if e <= max(int(whole.max()), 64)] + [int(whole.max()) + 1]
    counts, _ = np.histogram(whole, bins=edges)
    return {"edges": edges, "counts": [int(c) for c in counts]}


def _over(rows, full: list[dict[str, Any]], whole, tokenizer, eos, template, max_len: int) -> dict[str, Any]:
    """What --max-len would do: the examples over it, and the trainer's own counts under each
    --too-long choice (truncate: cut as training cuts, whole rounds and the question's middle
    first, then the reply's end; skip: every example over it left out)."""
    over = whole > max_len
    cut = _encode(rows, tokenizer, eos, template, max_len, "truncate", None)
    kept = [(f, c) for f, c in zip(full, cut) if not c["skipped"]]
    return {
        "max_len": max_len,
        "over": int(over.sum()),
        "share_over": round(float(over.mean()), 4),
        "truncate": {"truncated": sum(c["truncated"] for c in cut), "skipped": sum(c["skipped"] for c in cut),
                     "tokens": sum(c["whole"] for _, c in kept),
                     "prompt_tokens_cut": sum(f["prompt"] - c["prompt"] for f, c in kept),
                     "reply_tokens_cut": sum(f["reply"] - c["reply"] for f, c in kept)},
        "skip": {"skipped": int(over.sum()), "reply_tokens_lost": int(sum(f["reply"] for f, o in zip(full, over) if o))},
    }
