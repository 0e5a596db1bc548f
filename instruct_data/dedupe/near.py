"""Near duplicates: MinHash signatures (rensa), LSH banding, and verification of candidates.

LSH only proposes candidates: two rows sharing one band of their signatures. Every
candidate pair is then checked against the threshold with the signatures' estimated
Jaccard (the share of equal MinHash values) before anything is removed.

rensa was chosen over datasketch by measurement: see benchmarks/bench_dedupe.py and the
docs/dedupe.md (it computes the signature matrix of a whole batch in Rust from pre-hashed shingles).
"""

from __future__ import annotations

import os

import numpy as np

# One rensa thread per process: dedupe runs its own worker processes, and a Rust thread pool
# started before they fork would not survive the fork.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
import rensa  # noqa: E402

from instruct_data.dedupe.shingles import shingle_hashes

_BAND_MULT = np.uint64(0x100000001B3)  # FNV's 64-bit prime: band values folded into one key
_MAX_ALL_PAIRS = 32  # a bucket larger than this is checked star-wise and neighbour-wise
# Candidate pairs verified per step: two gathered blocks of 8 MiB with the default 128
# permutations (a bigger step was the peak of a build's memory, for no measurable speed).
_VERIFY_SLICE = 16384


class Chunks:
    """Row blocks (one per batch) read as one matrix, without copying them into one: on a
    million rows that copy is most of a gigabyte, held twice while it is made."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
        self.shape = (int(self.starts[-1]), parts[0].shape[1] if parts else 0)

    def __len__(self) -> int:
        return self.shape[0]

    def column(self, j: int) -> np.ndarray:
        return np.concatenate([p[:, j] for p in self.parts])

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """The given rows (an integer array), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.shape[1]), dtype=self.parts[0].dtype)
        if not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        chunk = np.searchsorted(self.starts, sorted_rows, side="right") - 1
        bounds = np.flatnonzero(np.concatenate([[True], chunk[1:] != chunk[:-1], [True]]))
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = chunk[a]
            out[order[a:b]] = self.parts[c][sorted_rows[a:b] - self.starts[c]]
        return out


def signatures(texts: list[str], ngram: int, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 signature matrix len(texts) x num_perm, bool mask of rows that have shingles)."""
    hashes, offsets = shingle_hashes(texts, ngram)
    has = offsets[1:] > offsets[:-1]
    sig = np.zeros((len(texts), num_perm), dtype=np.uint32)
    if has.any():
        rows = np.flatnonzero(has)
        # Only rows with shingles go to rensa; offsets of the empty rows are dropped.
        keep_offsets = np.concatenate([[0], np.cumsum((offsets[1:] - offsets[:-1])[rows])]).astype(np.uint64)
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, keep_offsets, num_perm, seed)
        sig[rows] = np.asarray(matrix.to_rows(), dtype=np.uint32)
    return sig, has


def band_keys(sig: np.ndarray, bands: int, salt: np.ndarray | None = None) -> np.ndarray:
    """uint64 key per (row, band): rows sharing a key in some band are LSH candidates.

    `salt` (uint64 per row, keys.numbers_key): rows with different salts never share a key,
    so they are never candidates; a salt of 0 leaves a row's keys as they are without one."""
    rows = sig.shape[1] // bands
    start = np.full(sig.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    if salt is not None:
        start ^= np.asarray(salt, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if rows % 2 == 0:
            # Two uint32 values read as one uint64: half the steps, all bands at once.
            wide = np.ascontiguousarray(sig).view(np.uint64).reshape(sig.shape[0], bands, rows // 2)
            keys = np.repeat(start[:, None], bands, axis=1)
            keys += np.arange(bands, dtype=np.uint64)[None, :]
            for col in range(rows // 2):
                keys = (keys ^ wide[:, :, col]) * _BAND_MULT
                keys ^= keys >> np.uint64(29)
            return keys
        keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
        for b in range(bands):
            block = sig[:, b * rows:(b + 1) * rows].astype(np.uint64)
            key = start + np.uint64(b)
            for col in range(rows):
                key = (key ^ block[:, col]) * _BAND_MULT
            keys[:, b] = key
    return keys


def candidate_pairs(keys: np.ndarray, rank: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j) row pairs, i < j, among `rows` (default: all) that share a band key.
    `rank` orders bucket members (so the pairs chosen in a large bucket do not depend on
    input order)."""
    if rows is None:
        rows = np.arange(keys.shape[0])
    rank = rank[rows]
    codes = np.zeros(0, dtype=np.int64)  # the pairs found so far, one int64 each, unique and sorted
    n = len(rows)
    for b in range(keys.shape[1]):
        # Blocks (Chunks) or files (spill.BandColumns) give one band's column at a time.
        column = (keys.column(b) if hasattr(keys, "column") else keys[:, b])[rows]
        found = []
        order = np.argsort(column)
        sorted_keys = column[order]
        same = sorted_keys[1:] == sorted_keys[:-1]
        if not same.any():
            continue
        # Only rows in shared buckets matter: order those by (key, rank), so that bucket
        # members come best-ranked first whatever the input order was.
        shared = np.zeros(n, dtype=bool)
        shared[1:] |= same
        shared[:-1] |= same
        members = order[shared]
        order = members[np.lexsort((rank[members], column[members]))]
        sorted_keys = column[order]
        n_members = len(order)
        same = sorted_keys[1:] == sorted_keys[:-1]
        # Bucket starts: positions where a run of equal keys begins.
        is_start = np.concatenate([[True], ~same])
        start_of = np.maximum.accumulate(np.where(is_start, np.arange(n_members), 0))
        member = np.flatnonzero(~is_start)
        # Every member against the bucket's best-ranked member, and against its neighbour.
        found.append(np.stack([order[start_of[member]], order[member]], axis=1))
        found.append(np.stack([order[member - 1], order[member]], axis=1))
        run_start = np.flatnonzero(is_start)
        run_len = np.diff(np.concatenate([run_start, [n_members]]))
        # Small buckets of three or more: all pairs, so no similar pair goes unchecked;
        # bucket by bucket size, so one numpy step makes the pairs of every bucket that size.
        for k in np.unique(run_len[(run_len > 2) & (run_len <= _MAX_ALL_PAIRS)]).tolist():
            i, j = np.triu_indices(k, 1)
            starts = run_start[run_len == k][:, None]
            found.append(np.stack([order[starts + i].ravel(), order[starts + j].ravel()], axis=1))
        # Merged band by band: a near copy shares most of its bands, and keeping every band's
        # copies of its pair until the end held tens of times more pairs than there are.
        codes = np.union1d(codes, _pair_codes(found, n))
    if not len(codes):
        return np.zeros((0, 2), dtype=np.int64)
    return rows[np.stack([codes // n, codes % n], axis=1)]


def _pair_codes(found: list[np.ndarray], n: int) -> np.ndarray:
    """The distinct pairs (i < j) of `found` as sorted codes i * n + j: one int64 per pair,
    faster to make unique than rows of two."""
    if not found:
        return np.zeros(0, dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs.sort(axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs[:, 0] * n + pairs[:, 1])


def across_dialogues(pairs: np.ndarray, dialogue: np.ndarray) -> np.ndarray:
    """The candidate pairs whose two rows belong to different dialogues (keys.dialogue_key):
    records of one dialogue are never duplicates of each other."""
    if not len(pairs):
        return pairs
    return pairs[dialogue[pairs[:, 0]] != dialogue[pairs[:, 1]]]


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Share of equal MinHash values, row by row (an unbiased estimate of Jaccard)."""
    out = np.empty(len(sig_a), dtype=np.float32)
    for start in range(0, len(sig_a), chunk):
        stop = start + chunk
        out[start:stop] = (sig_a[start:stop] == sig_b[start:stop]).mean(axis=1)
    return out


def verified_pairs(sig: np.ndarray, pairs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs whose estimated Jaccard reaches the threshold, and that similarity."""
    if len(pairs) == 0:
        return pairs, np.zeros(0, dtype=np.float32)
    sim = np.empty(len(pairs), dtype=np.float32)
    step = _VERIFY_SLICE
    for start in range(0, len(pairs), step):  # in slices: two gathered signature blocks at a time
        part = pairs[start:start + step]
        sim[start:start + step] = estimated_jaccard(sig[part[:, 0]], sig[part[:, 1]])
    ok = sim >= threshold - 1e-6
    return pairs[ok], sim[ok]


class BandIndex:
    """A small fixed set of signatures (benchmark questions) that many rows are checked against."""

    def __init__(self, sig: np.ndarray, bands: int, salt: np.ndarray | None = None):
        self.sig = sig
        self.bands = bands
        keys = band_keys(sig, bands, salt) if len(sig) else np.zeros((0, bands), dtype=np.uint64)
        self.order = [np.argsort(keys[:, b], kind="stable") for b in range(bands)]
        self.sorted = [keys[o, b] for b, o in enumerate(self.order)]

    def best_match(self, sig: np.ndarray, threshold: float, salt: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """For each row of `sig`: index of its most similar indexed signature at or above the
        threshold (-1 if none), and that similarity. `salt`: as band_keys'."""
        best = np.full(len(sig), -1, dtype=np.int64)
        best_sim = np.zeros(len(sig), dtype=np.float32)
        if len(self.sig) == 0 or len(sig) == 0:
            return best, best_sim
        keys = band_keys(sig, self.bands, salt)
        pairs = []
        for b in range(self.bands):
            lo = np.searchsorted(self.sorted[b], keys[:, b], side="left")
            hi = np.searchsorted(self.sorted[b], keys[:, b], side="right")
            hit = np.flatnonzero(hi > lo)
            for row in hit:  # hits are rare: a loop over them is cheap
                for pos in range(lo[row], hi[row]):
                    pairs.append((row, self.order[b][pos]))
        if not pairs:
            return best, best_sim
        pairs = np.unique(np.asarray(pairs, dtype=np.int64), axis=0)
        sim = estimated_jaccard(sig[pairs[:, 0]], self.sig[pairs[:, 1]])
        # Best match per row; ties go to the lower index, so the answer is stable.
        order = np.lexsort((pairs[:, 1], -sim, pairs[:, 0]))
        pairs, sim = pairs[order], sim[order]
        first = np.concatenate([[True], pairs[1:, 0] != pairs[:-1, 0]])
        rows, idx, s = pairs[first, 0], pairs[first, 1], sim[first]
        ok = s >= threshold - 1e-6
        best[rows[ok]] = idx[ok]
        best_sim[rows[ok]] = s[ok]
        return best, best_sim
