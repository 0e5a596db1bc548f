"""Pass 2 on this machine: the spooled lines of every kept row to train, heldout or the ledger.

What becomes of each row and what is written for it is steps.place's, as on Ray; this module
runs it chunk by chunk over the spool files. Lines are copied as UTF-8 bytes, in input order:
the workers sent back the byte length of every spooled line, so a run of rows that all go to
train whole is one byte range of each file, copied by the kernel (_ChunkLines.write_plain).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from instruct_data.ledger import Ledger
from instruct_data.pipeline.keys import Kept
from instruct_data.pipeline.sources import Plan
from instruct_data.pipeline.stats import SplitStats
from instruct_data.steps import place


def write_outputs(work: Path, spool: str, kept: Kept, heldout: bytearray, removed, plans: list[Plan],
                  ledger: Ledger) -> dict[str, Any]:
    """Pass 2: every kept row's spooled lines to train, heldout or the ledger, in order (steps.place
    per chunk, the chunks' stats merged); returns the manifest's split counts and statistics.

    `removed`: dedupe's removals (decide.RowRemovals), read through _removal_rows and _removals_of."""
    import numpy as np

    labels = [plan.label for plan in plans]
    rows = _stat_columns(kept)
    names = {index: name for name, index in kept.strata.items()}
    removed_rows = np.zeros(len(kept), dtype=bool)
    removed_rows[_removal_rows(removed)] = True
    fate = place.fates(np.frombuffer(heldout, dtype=np.bool_), _repeated(kept), removed_rows)  # 0/1 bytes as bools
    total = SplitStats(labels)
    # Unbuffered train and conversations: they receive whole byte ranges of the spool files.
    with open(work / "train.jsonl", "wb", buffering=0) as train, open(work / "heldout.jsonl", "wb") as held, \
            open(work / "conversations.jsonl", "wb", buffering=0) as convs:
        out = place.Outputs(train, held, convs)
        start = 0
        for (number, used, _), lengths in zip(kept.chunks, kept.line_lengths):
            block = slice(start, start + used)
            with _ChunkLines(os.path.join(spool, str(number)), lengths, rows["records"][block],
                             rows["multi"][block]) as lines:
                placed = place.place({name: column[block] for name, column in rows.items()}, fate[block], lines,
                                     lambda k, first=start: _removals_of(removed, first + k), out, labels,
                                     row_id=lambda k, first=start: kept.ids[first + k], names=names)
            for label, outcome in placed.outcomes:
                ledger.outcome(label, outcome)
            total.merge(placed.stats)
            start += used
    for label, outcome in place.written(total):
        ledger.outcome(label, outcome)
    return total.summary()


def _stat_columns(kept: Kept) -> dict:
    """Numpy views of the kept rows' columns that steps.place reads."""
    import numpy as np

    rows = {name: np.frombuffer(getattr(kept, name), dtype=np.uint32) for name in ("prompt_len", "reply_len", "records")}
    rows["category"] = np.frombuffer(kept.stratum, dtype=np.uint32)
    rows["source"] = np.frombuffer(kept.source, dtype=np.uint16)
    rows["multi"] = np.frombuffer(kept.multi, dtype=np.uint8)
    return rows


def _repeated(kept: Kept):
    """1 for each kept row whose id an earlier row already used (pipeline.keys.repeated_ids)."""
    import numpy as np

    return np.frombuffer(kept.repeated_id, dtype=np.bool_)


def _removal_rows(removed):
    """The kept rows that lose some records (decide.RowRemovals.rows)."""
    return removed.rows


def _removals_of(removed, row: int) -> dict:
    """{record number: Removal} of kept row `row` (decide.RowRemovals)."""
    return removed.of_row(row)


def _offsets(lengths) -> list[int]:
    """Start of each item and the end of the last: [0, l0, l0 + l1, ...]."""
    import numpy as np

    at = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=at[1:])
    return at.tolist()


class _ChunkLines:
    """One chunk's spool files (.conv, .train, .held) as steps.place.Lines: each row's lines
    found by the byte lengths the worker sent back (`lengths`: of the .conv, .train and .held
    lines; `records` and `multi`: per row used)."""

    def __init__(self, base: str, lengths: tuple, records, multi):
        self.base, self.lengths, self.multi = base, lengths, multi
        self.conv_at, self.train_at = _offsets(lengths[0]), _offsets(lengths[1])
        self.record_at = _offsets(records)  # first train record of each row
        self.conv = open(base + ".conv", "rb")
        self.train = open(base + ".train", "rb")
        self._held: tuple[bytes, list[int]] | None = None

    def __enter__(self) -> _ChunkLines:
        return self

    def __exit__(self, *exc) -> None:
        self.conv.close()
        self.train.close()

    def conversation(self, k: int) -> bytes:
        at = self.conv_at
        return os.pread(self.conv.fileno(), at[k + 1] - at[k], at[k])

    def records(self, k: int) -> list[bytes]:
        first, stop = self.record_at[k], self.record_at[k + 1]
        at = self.train_at
        data = os.pread(self.train.fileno(), at[stop] - at[first], at[first])
        return [data[at[r] - at[first]:at[r + 1] - at[first]] for r in range(first, stop)]

    def held(self, k: int) -> bytes:
        if self._held is None:
            with open(self.base + ".held", "rb") as fh:
                self._held = fh.read(), _offsets(self.lengths[2])
        data, at = self._held
        dialogue = int(self.multi[:k].sum())  # dialogues before it in the chunk: its .held line
        return data[at[dialogue]:at[dialogue + 1]]

    def write_plain(self, begin: int, end: int, out: place.Outputs) -> None:
        _copy_range(self.conv, out.conversations, self.conv_at[begin], self.conv_at[end])
        at, record_at = self.train_at, self.record_at
        _copy_range(self.train, out.train, at[record_at[begin]], at[record_at[end]])


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
