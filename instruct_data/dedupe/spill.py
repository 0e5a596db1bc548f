"""Near-duplicate fingerprints held on disk instead of in memory.

The MinHash signatures (num_perm uint32 per item) and the LSH band keys (one uint64 per band
per item) are most of what dedupe keeps per row: 768 bytes with the defaults, 1.5 GB at two
million rows. A build writes them here batch by batch as they come back from the workers,
and the decision reads them back a little at a time:

- the band keys one band at a time (`BandColumns.column`), from one file per band, so that
  finding the candidate pairs (near.candidate_pairs) holds one column of 8 bytes per item;
- the signatures of the few rows a slice of candidate pairs needs (`SignatureFile[rows]`),
  read row by row.

- the exact keys likewise (`KeyFile`), a slice at a time;
- every other per-item column (order, protection, reply length, text hash, dialogue, the
  benchmark match...) in a file of its own (`ColumnFile`), read whole by the one step of the
  decision that needs it: the main process holds no batch of fingerprints while the workers
  compute them (their small columns, about 55 bytes per item in thousands of small arrays,
  were most of what a build's main process grew by per row).

The decision itself does not change: these objects answer the same questions as the
in-memory matrices (`near.Chunks`) they replace. `HashPartitions` is the local executor's
shuffle: records scattered by a hash of their key into files, read back one partition at a
time, so that a step of the decision (steps.dedupe) holds one partition, never all the rows.
"""

from __future__ import annotations

import os
import shutil

import numpy as np


# A batch's per-item columns besides the signatures, band keys and exact keys (fingerprint.Batch).
COLUMNS = ("order", "protected", "reply_len", "content", "dialogue", "has_sig", "against", "against_sim")


class SpilledFingerprints:
    """Writes each batch's fingerprints to files under `folder`: `add` keeps nothing of the
    batch but its ids, when asked (`keep_ids`); `finish` gives the readers of every column."""

    def __init__(self, folder: str, num_perm: int, bands: int, keep_ids: bool = True):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.num_perm, self.bands = folder, num_perm, bands
        self.rows = 0
        self.ids: list[str] | None = [] if keep_ids else None
        self._sig = open(self.signature_path, "wb")
        self._bands = [open(self.band_path(b), "wb") for b in range(bands)]
        self._exact = open(self.exact_path, "wb")
        self._columns = {name: open(self.column_path(name), "wb") for name in COLUMNS}
        self._shapes: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}  # each column's dtype and row shape

    @property
    def signature_path(self) -> str:
        return os.path.join(self.folder, "signatures.u32")

    @property
    def exact_path(self) -> str:
        return os.path.join(self.folder, "exact.u64")

    def band_path(self, band: int) -> str:
        return os.path.join(self.folder, f"band{band}.u64")

    def column_path(self, name: str) -> str:
        return os.path.join(self.folder, f"{name}.col")

    def add(self, batch) -> None:
        """Write every column of `batch` (a fingerprint.Batch) out; keep its ids if asked."""
        np.ascontiguousarray(batch.sig, dtype=np.uint32).tofile(self._sig)
        for b, fh in enumerate(self._bands):
            np.ascontiguousarray(batch.bands[:, b], dtype=np.uint64).tofile(fh)
        np.ascontiguousarray(batch.exact, dtype=np.uint64).tofile(self._exact)
        for name, fh in self._columns.items():
            column = np.ascontiguousarray(getattr(batch, name))
            self._shapes.setdefault(name, (column.dtype, column.shape[1:]))
            column.tofile(fh)
        if self.ids is not None:
            self.ids.extend(batch.ids)
        self.rows += len(batch.order)

    def finish(self) -> tuple["SignatureFile", "BandColumns", "KeyFile", dict[str, "ColumnFile"]]:
        """Close the files; the readers of what was written (the other columns by name)."""
        self._close()
        columns = {name: ColumnFile(self.column_path(name), *self._shapes[name]) for name in self._shapes}
        return (SignatureFile(self.signature_path, self.rows, self.num_perm),
                BandColumns([self.band_path(b) for b in range(self.bands)], self.rows),
                KeyFile(self.exact_path, self.rows), columns)

    def _close(self) -> None:
        self._sig.close()
        self._exact.close()
        for fh in (*self._bands, *self._columns.values()):
            fh.close()

    def remove(self) -> None:
        self._close()
        shutil.rmtree(self.folder, ignore_errors=True)


class ColumnFile:
    """One column on disk, a row per item (any dtype; a row may be a vector, as the text hash's
    two halves). Written by `append` (an unbuffered file: what was appended is read back at
    once) or by another writer (SpilledFingerprints); read whole (`load`), by range (`read`)
    or by rows (`take`) into temporary arrays: never mapped, so no page of it stays resident."""

    BLOCK = 1 << 20  # rows `take` reads at a time

    def __init__(self, path: str, dtype, row_shape: tuple[int, ...] = ()):
        self.path, self.dtype, self.row_shape = path, np.dtype(dtype), tuple(row_shape)
        self._per_row = int(np.prod(self.row_shape, dtype=np.int64))
        self._out = self._in = None
        self._rows: int | None = None  # counted while appending; else from the file's size

    def append(self, values) -> None:
        """Add rows at the end (a numpy array, an array.array or a sequence of numbers)."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if self._out is None:
            self._out = open(self.path, "ab", buffering=0)
            self._rows = len(self)
        if values.size:
            self._out.write(values.tobytes())
        self._rows += values.size // self._per_row

    def __len__(self) -> int:
        if self._rows is not None:
            return self._rows
        if not os.path.exists(self.path):
            return 0
        return os.path.getsize(self.path) // (self.dtype.itemsize * self._per_row)

    def load(self) -> np.ndarray:
        return self.read(0, len(self))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1, in one read."""
        n = max(0, stop - start)
        if not n:
            return np.zeros((0, *self.row_shape), dtype=self.dtype)
        width = self.dtype.itemsize * self._per_row
        if self._in is None:  # kept open: a range of a few rows is read often (an id's offsets)
            self._in = open(self.path, "rb")
        out = np.empty((n, *self.row_shape), dtype=self.dtype)
        view, at = memoryview(out.reshape(-1).view(np.uint8)), 0
        while at < len(view):  # into the array itself: no bytes object, no copy
            done = os.preadv(self._in.fileno(), [view[at:]], start * width + at)
            if done <= 0:
                raise OSError(f"{self.path}: rows {start}..{stop - 1} asked, the file is shorter")
            at += done
        return out

    def take(self, rows) -> np.ndarray:
        """The values of `rows` (any order), the file read a block at a time: never all of it."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        for start in range(int(ranked[0]) // self.BLOCK * self.BLOCK, int(ranked[-1]) + 1, self.BLOCK):
            lo, hi = np.searchsorted(ranked, [start, start + self.BLOCK]).tolist()
            if hi > lo:
                block = self.read(int(ranked[lo]), int(ranked[hi - 1]) + 1)
                out[order[lo:hi]] = block[ranked[lo:hi] - ranked[lo]]
        return out

    def close(self) -> None:
        """Close its files (a later read opens it again)."""
        for fh in (self._out, self._in):
            if fh is not None:
                fh.close()
        self._out = self._in = None

    def remove(self) -> None:
        self.close()
        self._rows = 0
        if os.path.exists(self.path):
            os.remove(self.path)


class BandColumns:
    """The band keys as near.candidate_pairs reads them: `shape`, and one band's column."""

    def __init__(self, paths: list[str], rows: int):
        self.paths = paths
        self.shape = (rows, len(paths))

    def __len__(self) -> int:
        return self.shape[0]

    def column(self, band: int) -> np.ndarray:
        return np.fromfile(self.paths[band], dtype=np.uint64)

    def read(self, band: int, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of one band's column."""
        return np.fromfile(self.paths[band], dtype=np.uint64, count=stop - start, offset=start * 8)


class KeyFile:
    """The exact keys ((rows, 2) uint64) on disk; `read(start, stop)` gives those rows."""

    def __init__(self, path: str, rows: int):
        self.path = path
        self.shape = (rows, 2)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.fromfile(self.path, dtype=np.uint64, count=2 * (stop - start), offset=start * 16).reshape(-1, 2)


class SignatureFile:
    """The signature matrix (rows x num_perm uint32) on disk; `sig[rows]` reads those rows."""

    def __init__(self, path: str, rows: int, num_perm: int):
        self.path = path
        self.shape = (rows, num_perm)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        width = self.shape[1] * 4
        wanted, where = np.unique(rows, return_inverse=True)
        # One read per row, not a mapping of the file: the kernel maps the pages around each
        # page touched (fault-around), so a slice of scattered rows mapped most of the file.
        with open(self.path, "rb") as fh:
            fd = fh.fileno()
            data = b"".join([os.pread(fd, width, row * width) for row in wanted.tolist()])
        return np.frombuffer(data, dtype=np.uint32).reshape(len(wanted), self.shape[1])[where.reshape(-1)]


class HashPartitions:
    """Records (a numpy structured array) scattered into `parts` files under `folder` by
    steps.dedupe.partition_of of a key column, and read back one partition at a time, each
    file removed once read: the local executor's shuffle. Records with equal keys meet in
    one partition; within a partition they keep the order they were added in."""

    def __init__(self, folder: str, name: str, parts: int, dtype):
        os.makedirs(folder, exist_ok=True)
        self.dtype = np.dtype(dtype)
        self.paths = [os.path.join(folder, f"{name}.{p}.bin") for p in range(parts)]
        self._files = [open(path, "wb") for path in self.paths]
        self.records = 0

    def add(self, records: np.ndarray, key: np.ndarray) -> None:
        from instruct_data.steps.dedupe import partition_of

        self.records += len(records)
        if len(self.paths) == 1:
            records.tofile(self._files[0])
            return
        part = partition_of(key, len(self.paths))
        if len(self.paths) <= 1 << 16:
            part = part.astype(np.uint16)  # numpy sorts 16-bit integers stably by radix: linear
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(len(self.paths) + 1))
        for p, (a, b) in enumerate(zip(bounds[:-1].tolist(), bounds[1:].tolist())):
            if b > a:
                records[order[a:b]].tofile(self._files[p])

    def __iter__(self):
        """Each partition's records, in partition order."""
        for fh in self._files:
            fh.close()
        for path in self.paths:
            part = np.fromfile(path, dtype=self.dtype)
            os.remove(path)
            yield part

    def remove(self) -> None:
        for fh, path in zip(self._files, self.paths):
            fh.close()
            if os.path.exists(path):
                os.remove(path)
