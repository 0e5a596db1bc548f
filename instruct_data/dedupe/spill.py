"""Near-duplicate fingerprints held on disk instead of in memory.

The MinHash signatures (num_perm uint32 per item) and the LSH band keys (one uint64 per band
per item) are most of what dedupe keeps per row: 768 bytes with the defaults, 1.5 GB at two
million rows. A build writes them here batch by batch as they come back from the workers,
and the decision reads them back a little at a time:

- the band keys one band at a time (`BandColumns.column`), from one file per band, so that
  finding the candidate pairs (near.candidate_pairs) holds one column of 8 bytes per item;
- the signatures of the few rows a slice of candidate pairs needs (`SignatureFile[rows]`),
  read row by row.

The decision itself does not change: these objects answer the same questions as the
in-memory matrices (`near.Chunks`) they replace.
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

    @property
    def signature_path(self) -> str:
        return os.path.join(self.folder, "signatures.u32")

    def band_path(self, band: int) -> str:
        return os.path.join(self.folder, f"band{band}.u64")

    def add(self, batch):
        """Write `batch.sig` and `batch.bands` out; return the batch with empty ones in their place."""
        n = len(batch.order)
        np.ascontiguousarray(batch.sig, dtype=np.uint32).tofile(self._sig)
        for b, fh in enumerate(self._bands):
            np.ascontiguousarray(batch.bands[:, b], dtype=np.uint64).tofile(fh)
        self.rows += n
        batch.sig = np.zeros((n, 0), dtype=np.uint32)
        batch.bands = np.zeros((n, 0), dtype=np.uint64)
        return batch

    def finish(self) -> tuple["SignatureFile", "BandColumns"]:
        """Close the files; the readers of what was written."""
        self._sig.close()
        for fh in self._bands:
            fh.close()
        return (SignatureFile(self.signature_path, self.rows, self.num_perm),
                BandColumns([self.band_path(b) for b in range(self.bands)], self.rows))

    def remove(self) -> None:
        self._sig.close()
        for fh in self._bands:
            fh.close()
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
