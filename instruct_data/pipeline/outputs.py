"""Pass 2: the spooled lines of every kept row copied to train, heldout or the duplicates.

Lines are copied as UTF-8 bytes, in input order; a chunk whose rows all go to train is
copied whole. Counts, length histograms and categories are taken at the end with numpy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from instruct_data.ledger import Ledger
from instruct_data.pipeline.keys import Kept
from instruct_data.pipeline.sources import Plan
from instruct_data.schema import Origin

LENGTH_BINS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
TRAIN, HELDOUT = 1, 2


class Outputs:
    """The three data files of a build, and where each kept row went (counted at the end)."""

    def __init__(self, work: Path, kept: Kept, plans: list[Plan], ledger: Ledger):
        self.kept, self.plans, self.ledger = kept, plans, ledger
        # Binary: the spooled lines are already UTF-8 and are copied without decoding.
        self.train = open(work / "train.jsonl", "wb")
        self.held = open(work / "heldout.jsonl", "wb")
        self.convs = open(work / "conversations.jsonl", "wb")
        self.dest = bytearray(len(kept))  # TRAIN or HELDOUT per kept row; 0: rejected or removed

    def close(self) -> None:
        for fh in (self.train, self.held, self.convs):
            fh.close()

    def finish(self) -> dict[str, Any]:
        """Tell the ledger how many rows each source wrote; return the split counts and the
        statistics of the training rows (length histograms, categories), taken with numpy."""
        import numpy as np

        kept = self.kept
        dest = np.frombuffer(bytes(self.dest), dtype=np.uint8)
        train = dest == TRAIN
        source = np.frombuffer(kept.source, dtype=np.uint16)
        per_source = {}
        for where, mask in (("train", train), ("heldout", dest == HELDOUT)):
            counts = np.bincount(source[mask], minlength=len(self.plans))
            per_source[where] = {self.plans[i].label: int(n) for i, n in enumerate(counts) if n}
        for plan in self.plans:
            written = per_source["train"].get(plan.label, 0) + per_source["heldout"].get(plan.label, 0)
            if written:
                self.ledger.written(plan.label, written)
        edges = np.array(LENGTH_BINS[1:])
        lengths = {}
        for name, values in (("instruction_length", kept.prompt_len), ("reply_length", kept.reply_len)):
            bins = np.searchsorted(edges, np.frombuffer(values, dtype=np.uint32)[train], side="right")
            lengths[name] = [int(n) for n in np.bincount(bins, minlength=len(LENGTH_BINS))]
        strata = {index: name for name, index in kept.strata.items()}
        categories: Counter = Counter()
        by_stratum = np.bincount(np.frombuffer(kept.stratum, dtype=np.uint32)[train], minlength=len(strata))
        for index, n in enumerate(by_stratum):
            if n:
                categories["(none)" if strata[index].startswith("source:") else strata[index]] += int(n)
        records = int(np.frombuffer(kept.records, dtype=np.uint32)[train].sum())
        return {
            "split": {
                "train": dict(sorted(per_source["train"].items())),
                "heldout": dict(sorted(per_source["heldout"].items())),
                "train_records": records,
            },
            "stats": {
                "length_bins": list(LENGTH_BINS),
                **lengths,
                "categories": dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
        }


def write_outputs(work: Path, spool: str, kept: Kept, heldout: bytearray, removed: dict, plans: list[Plan],
                  ledger: Ledger) -> dict[str, Any]:
    """Pass 2: copy the spooled lines of every kept row to train, heldout or the duplicates, in order."""
    out = Outputs(work, kept, plans, ledger)
    try:
        start = 0
        for number, used, spooled in kept.chunks:
            base = os.path.join(spool, str(number))
            rows = range(start, start + used)
            plain = used == spooled and not any(
                heldout[i] or kept.repeated_id[i] or kept.ids[i] in removed for i in rows)
            if plain:
                _copy_chunk(base, rows, out)  # the usual case: every row of the chunk goes to train
            else:
                _write_chunk(base, rows, out, heldout, removed)
            start += used
    finally:
        out.close()
    return out.finish()


def _copy_chunk(base: str, rows: range, out: Outputs) -> None:
    for suffix, target in ((".conv", out.convs), (".train", out.train)):
        with open(base + suffix, "rb") as fh:
            shutil.copyfileobj(fh, target, 1 << 20)
    out.dest[rows.start:rows.stop] = bytes([TRAIN]) * len(rows)


def _spooled_lines(path: str) -> list[bytes]:
    """A spool file's lines (UTF-8 bytes, newline kept). JSON lines hold no raw newline byte."""
    with open(path, "rb") as fh:
        return fh.readlines()


def _write_chunk(base: str, rows: range, out: Outputs, heldout: bytearray, removed: dict) -> None:
    kept, ledger = out.kept, out.ledger
    conv_lines, train_lines = _spooled_lines(base + ".conv"), _spooled_lines(base + ".train")
    held_lines = _spooled_lines(base + ".held") if any(kept.multi[i] for i in rows) else []
    conv_out, train_out = [], []
    record = held = 0
    for n, i in enumerate(rows):
        label = out.plans[kept.source[i]].label
        conv_line = conv_lines[n]
        records = train_lines[record:record + kept.records[i]]
        record += kept.records[i]
        if kept.multi[i]:
            last = held_lines[held]
            held += 1
        else:
            last = records[-1]
        removal = removed.get(kept.ids[i])
        if kept.repeated_id[i]:
            conversation = json.loads(conv_line)
            ledger.reject("read", "duplicate_id", f"id {kept.ids[i]!r} is already used by an earlier row",
                          origin_text(conversation), conversation, source=label, row_id=kept.ids[i])
        elif removal is not None:
            conversation = json.loads(conv_line)
            ledger.duplicate(row_id=removal.id, duplicate_of=removal.duplicate_of, method=removal.method,
                             similarity=removal.similarity, source=label, cluster=removal.cluster,
                             origin=origin_text(conversation), raw=conversation)
        elif heldout[i]:
            out.held.write(last)
            out.dest[i] = HELDOUT
        else:
            conv_out.append(conv_line)
            train_out.extend(records)
            out.dest[i] = TRAIN
    out.convs.writelines(conv_out)
    out.train.writelines(train_out)


def origin_text(conversation: dict) -> str | None:
    origin = conversation.get("origin")
    return str(Origin(**origin)) if origin else None
