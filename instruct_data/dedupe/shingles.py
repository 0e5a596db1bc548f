"""Character n-gram shingles, hashed in bulk with numpy.

Chinese has no spaces, so shingles are runs of `n` characters of the normalized text.
Making one Python string per shingle costs more than the MinHash itself, so a whole batch
of texts is turned into one array of code points and every n-gram is hashed at once; the
MinHash library then reads the flat hash buffer with row offsets.
"""

from __future__ import annotations

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constants (splitmix64's) for mixing
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the bits so nearby code points hash far apart."""
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


def shingle_hashes(texts: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint64 hashes of every n-gram of every text, row offsets of length len(texts)+1).

    A text shorter than `n` has no shingles (an empty row): it can only be compared exactly.
    The same n-gram always gets the same hash, in any batch and any process.
    """
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    counts = np.maximum(lengths - n + 1, 0)
    offsets = np.zeros(len(texts) + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = len(codes) - n + 1
    with np.errstate(over="ignore"):
        h = codes[:width].copy()
        if n * 21 <= 64:  # code points fit in 21 bits: pack the n-gram exactly, then mix once
            for k in range(1, n):
                h = (h << np.uint64(21)) | codes[k:k + width]
        else:
            for k in range(1, n):
                h = mix64(h * _MULT + codes[k:k + width])
        h = mix64(h + np.uint64(n))
    # Keep only n-grams that start and end inside one text: the last n-1 start positions of
    # each text (all of a text shorter than n) run into the next one.
    ends = np.cumsum(lengths)
    crossing = ends[:, None] - np.arange(1, n, dtype=np.int64)[None, :]
    crossing = crossing[(crossing >= (ends - lengths)[:, None]) & (crossing < width)]
    valid = np.ones(width, dtype=bool)
    valid[crossing] = False
    return h[valid], offsets


def shingle_strings(text: str, n: int) -> set[str]:
    """The same shingles as strings: for readers, tests and the datasketch baseline."""
    return {text[i:i + n] for i in range(len(text) - n + 1)}
