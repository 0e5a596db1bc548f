"""Near-duplicate fingerprints held on disk instead of in memory.

The MinHash signatures (num_perm uint32 per item) and the LSH band keys (one uint64 per band
per item) are most of what dedupe keeps per row: 768 bytes with the defaults, 1.5 GB at two
million rows. A build writes them here batch by batch as they come back from the workers,
and the decision reads them back a little at a time:

- the band keys one band at a time (`BandColumns.column`), from one file per band, so that
  finding the candidate pairs (near.candidate_pairs) holds one column of 8 bytes per item;
- the signatures of the few rows a slice of candidate pairs needs (`SignatureFile[rows]`),
  read row by row.

- the exact keys likewise (`KeyFile`), a slice at a time.

The decision itself does not change: these objects answer the same questions as the
in-memory matrices (`near.Chunks`) they replace. `HashPartitions` is the local executor's
shuffle: records scattered by a hash of their key into files, read back one partition at a
time, so that a step of the decision (steps.dedupe) holds one partition, never all the rows.
"""

from __future__ import annotations

import os
import shutil

import numpy as np


class SpilledFingerprints:
    """Writes each batch's signatures and band keys to files under `folder`; `add` returns the
    batch without them (zero-width matrices), so the caller keeps only its small columns."""

    def __init__(self, folder: str, num_perm: int, bands: int):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.num_perm, self.bands = folder, num_perm, bands
        self.rows = 0
        self._sig = open(self.signature_path, "wb")
        self._bands = [open(self.band_path(b), "wb") for b in range(bands)]
        self._exact = open(self.exact_path, "wb")

    @property
    def signature_path(self) -> str:
        return os.path.join(self.folder, "signatures.u32")

    @property
    def exact_path(self) -> str:
        return os.path.join(self.folder, "exact.u64")

    def band_path(self, band: int) -> str:
        return os.path.join(self.folder, f"band{band}.u64")

    def add(self, batch):
        """Write `batch.sig`, `batch.bands` and `batch.exact` out; return the batch with empty
        ones in their place."""
        n = len(batch.order)
        np.ascontiguousarray(batch.sig, dtype=np.uint32).tofile(self._sig)
        for b, fh in enumerate(self._bands):
            np.ascontiguousarray(batch.bands[:, b], dtype=np.uint64).tofile(fh)
        np.ascontiguousarray(batch.exact, dtype=np.uint64).tofile(self._exact)
        self.rows += n
        batch.sig = np.zeros((n, 0), dtype=np.uint32)
        batch.bands = np.zeros((n, 0), dtype=np.uint64)
        batch.exact = np.zeros((n, 0), dtype=np.uint64)
        return batch

    def finish(self) -> tuple["SignatureFile", "BandColumns", "KeyFile"]:
        """Close the files; the readers of what was written."""
        self._close()
        return (SignatureFile(self.signature_path, self.rows, self.num_perm),
                BandColumns([self.band_path(b) for b in range(self.bands)], self.rows),
                KeyFile(self.exact_path, self.rows))

    def _close(self) -> None:
        self._sig.close()
        self._exact.close()
        for fh in self._bands:
            fh.close()

    def remove(self) -> None:
        self._close()
        shutil.rmtree(self.folder, ignore_errors=True)


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
