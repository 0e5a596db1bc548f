"""Pass 2's reading on this machine: the kept rows, chunk by chunk, with their spooled lines.

What becomes of each row and what is written for it is steps.place's, run by pipeline.flow
over the blocks this module gives (the local executor's iterate_in_order), as on Ray. Lines
are copied as UTF-8 bytes, in input order: the workers sent back the byte length of every
spooled line, so a run of rows that all go to train whole is one byte range of each file,
copied by the kernel (_ChunkLines.write_plain).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from instruct_data.pipeline.keys import Kept
from instruct_data.steps import place

if TYPE_CHECKING:
    from instruct_data.executors import Batch


def chunk_batches(kept: Kept, spool: str) -> Iterator[Batch]:
    """The kept rows chunk by chunk, in input order, as pass 2 reads them (executors.Batch):
    the chunk's key columns (read from their files), its spool files as steps.place.Lines."""
    import numpy as np

    from instruct_data.executors import Batch

    names = {index: name for name, index in kept.strata.items()}
    start = 0
    for chunk, (number, used, _) in enumerate(kept.chunks):
        rows = _stat_columns(kept, start, start + used)
        with _ChunkLines(os.path.join(spool, str(number)), kept.line_lengths(chunk), rows["records"],
                         rows["multi"]) as lines:
            yield Batch(np.arange(start, start + used, dtype=np.int64), rows, lines,
                        lambda k, first=start: kept.ids[first + k], names)
        start += used


def _stat_columns(kept: Kept, start: int, stop: int) -> dict:
    """The columns of kept rows start..stop-1 that steps.place reads."""
    rows = {name: kept.column(name).read(start, stop) for name in ("prompt_len", "reply_len", "records", "source", "multi")}
    rows["category"] = kept.stratum.read(start, stop)
    return rows


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
