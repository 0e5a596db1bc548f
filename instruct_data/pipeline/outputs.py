"""Pass 2: the spooled lines of every kept row copied to train, heldout or the duplicates.

Lines are copied as UTF-8 bytes, in input order: the workers sent back the byte length of
every spooled line, so a run of rows that all go to train is one byte range of each file.
Counts, length histograms and categories are taken at the end (pipeline.stats).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from instruct_data.ledger import Ledger, Reject, Removed, Written
from instruct_data.pipeline.dialogue import follow_removals
from instruct_data.pipeline.keys import Kept
from instruct_data.pipeline.sources import Plan
from instruct_data.pipeline.stats import SplitStats
from instruct_data.schema import Origin

TRAIN, HELDOUT = 1, 2


class Outputs:
    """The three data files of a build, and where each kept row went (counted at the end)."""

    def __init__(self, work: Path, kept: Kept, plans: list[Plan], ledger: Ledger):
        self.kept, self.plans, self.ledger = kept, plans, ledger
        # Binary: the spooled lines are already UTF-8 and are copied without decoding.
        # Unbuffered: train and conversations receive whole byte ranges of the spool files.
        self.train = open(work / "train.jsonl", "wb", buffering=0)
        self.held = open(work / "heldout.jsonl", "wb")
        self.convs = open(work / "conversations.jsonl", "wb", buffering=0)
        self.dest = bytearray(len(kept))  # TRAIN or HELDOUT per kept row; 0: rejected or removed
        self.records_removed = 0  # train records removed from rows that still write others

    def close(self) -> None:
        for fh in (self.train, self.held, self.convs):
            fh.close()

    def finish(self) -> dict[str, Any]:
        """Tell the ledger how many rows each source wrote; return the split counts and the
        statistics of the training rows (pipeline.stats, over all the kept rows at once)."""
        import numpy as np

        kept = self.kept
        dest = np.frombuffer(bytes(self.dest), dtype=np.uint8)
        rows = {name: np.frombuffer(getattr(kept, name), dtype=np.uint32) for name in ("prompt_len", "reply_len", "records")}
        rows["category"] = np.frombuffer(kept.stratum, dtype=np.uint32)
        rows["source"] = np.frombuffer(kept.source, dtype=np.uint16)
        stats = SplitStats([plan.label for plan in self.plans])
        stats.add(rows, train=dest == TRAIN, heldout=dest == HELDOUT,
                  names={index: name for name, index in kept.strata.items()})
        stats.records_removed = self.records_removed
        for label, written in stats.written():
            self.ledger.outcome(label, Written(written))
        return stats.summary()


def write_outputs(work: Path, spool: str, kept: Kept, heldout: bytearray, removed: dict, plans: list[Plan],
                  ledger: Ledger) -> dict[str, Any]:
    """Pass 2: copy the spooled lines of every kept row to train, heldout or the duplicates, in order.

    `removed`: kept row index -> {record number: Removal} (decide.RowRemovals). Rows that
    go to train whole are copied as byte ranges, run by run; only the few other rows (held
    out, with a record removed, repeated id) are looked at.
    """
    import numpy as np

    out = Outputs(work, kept, plans, ledger)
    special = np.frombuffer(bytes(heldout), dtype=np.uint8) | np.frombuffer(bytes(kept.repeated_id), dtype=np.uint8)
    special[removed.rows] = 1
    try:
        start = 0
        for (number, used, _), lengths in zip(kept.chunks, kept.line_lengths):
            rows = range(start, start + used)
            specials = np.flatnonzero(special[rows.start:rows.stop]).tolist()
            _write_chunk(os.path.join(spool, str(number)), rows, lengths, specials, out, heldout, removed)
            start += used
    finally:
        out.close()
    return out.finish()


def _offsets(lengths) -> list[int]:
    """Start of each item and the end of the last: [0, l0, l0 + l1, ...]."""
    import numpy as np

    at = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=at[1:])
    return at.tolist()


def _read(path: str) -> memoryview:
    with open(path, "rb") as fh:
        return memoryview(fh.read())


def _copy_range(source, target, start: int, end: int) -> None:
    """Bytes start..end of the open file `source` appended to the unbuffered file `target`:
    copied by the kernel (copy_file_range) where it can, so they never pass through Python."""
    while start < end:
        try:
            done = os.copy_file_range(source.fileno(), target.fileno(), end - start, start)
        except (AttributeError, OSError):  # not Linux, or a file system that cannot
            done = target.write(os.pread(source.fileno(), end - start, start))
        if done <= 0:
            raise OSError(f"{source.name}: spool file shorter than recorded")
        start += done


def _write_chunk(base: str, rows: range, lengths: tuple, specials: list[int], out: Outputs, heldout: bytearray,
                 removed: dict) -> None:
    """The first len(rows) spooled rows of a chunk: the runs between `specials` (indices into
    rows) go to train whole; each special row goes where it belongs."""
    kept = out.kept
    conv_at, train_at = _offsets(lengths[0]), _offsets(lengths[1])
    record_at = _offsets(kept.records[rows.start:rows.stop])  # first train record of each row
    with open(base + ".conv", "rb") as conv, open(base + ".train", "rb") as train:
        begin = 0
        for n in [*specials, len(rows)]:
            if n > begin:  # rows begin..n-1 all go to train
                _copy_range(conv, out.convs, conv_at[begin], conv_at[n])
                _copy_range(train, out.train, train_at[record_at[begin]], train_at[record_at[n]])
                out.dest[rows.start + begin:rows.start + n] = bytes([TRAIN]) * (n - begin)
            if n < len(rows):
                i = rows.start + n
                if heldout[i] and not kept.repeated_id[i]:  # held-out records are never removed
                    out.held.write(_heldout_line(base, rows, n, lengths, train, train_at, record_at, kept))
                    out.dest[i] = HELDOUT
                elif kept.repeated_id[i]:
                    line = os.pread(conv.fileno(), conv_at[n + 1] - conv_at[n], conv_at[n])
                    _reject_repeated_id(i, line, out)
                else:
                    _write_some_records(i, n, conv, train, conv_at, train_at, record_at, out, removed[i])
            begin = n + 1


def _write_some_records(i: int, n: int, conv, train, conv_at: list[int], train_at: list[int],
                        record_at: list[int], out: Outputs, removals: dict) -> None:
    """Row i (n-th of its chunk), some of whose train records dedupe removed: the others go to
    train, and its conversation as they leave it (pipeline.dialogue); the row counts as removed
    only when none is left."""
    label = out.plans[out.kept.source[i]].label
    line = os.pread(conv.fileno(), conv_at[n + 1] - conv_at[n], conv_at[n])
    conversation = json.loads(line)
    # conversations.jsonl follows train.jsonl: removed replies not trained, a contaminated dialogue cut.
    trained, left, removals = follow_removals(line, record_at[n + 1] - record_at[n], removals)
    if left:
        out.convs.write(trained)
        for k in left:
            at = record_at[n] + k
            out.train.write(os.pread(train.fileno(), train_at[at + 1] - train_at[at], train_at[at]))
        out.dest[i] = TRAIN
        out.records_removed += len(removals)
    for number, (_, removal) in enumerate(sorted(removals.items())):
        out.ledger.outcome(label, Removed(removal, origin_text(conversation), conversation,
                                          whole_row=not left and number == 0))


def _heldout_line(base: str, rows: range, n: int, lengths: tuple, train, train_at: list[int],
                  record_at: list[int], kept: Kept) -> bytes:
    """The held-out record of row n: a dialogue's own (spooled apart), else its train record."""
    i = rows.start + n
    if not kept.multi[i]:
        last = record_at[n + 1] - 1
        return os.pread(train.fileno(), train_at[last + 1] - train_at[last], train_at[last])
    dialogue = sum(kept.multi[rows.start:i])  # dialogues before it in the chunk: its .held line
    held_at = _offsets(lengths[2])
    return _read(base + ".held")[held_at[dialogue]:held_at[dialogue + 1]]


def _reject_repeated_id(i: int, conv_line: bytes, out: Outputs) -> None:
    kept = out.kept
    label = out.plans[kept.source[i]].label
    conversation = json.loads(conv_line)
    out.ledger.outcome(label, Reject("read", "duplicate_id", f"id {kept.ids[i]!r} is already used by an earlier row",
                                     origin_text(conversation), conversation, kept.ids[i]))


def origin_text(conversation: dict) -> str | None:
    origin = conversation.get("origin")
    return str(Origin(**origin)) if origin else None
