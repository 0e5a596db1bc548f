"""Per-row fingerprints, computed in batches (in worker processes when asked).

A fingerprint is everything dedupe keeps of a row once its text is gone: the exact key, the
hash of the stored text, the reply length, the MinHash signature, and (when benchmark
questions are given) the question its prompt matches. Each row's fingerprint depends only
on the row and the settings, so any split of the rows over processes gives the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import xxhash

from instruct_data.dedupe.keys import (_JOIN, content_hash, dialogue_key, hash_text, near_key_text, normalize,
                                       normalize_many, numbers_key, own_question)
from instruct_data.dedupe.near import BandIndex, band_keys, signatures
from instruct_data.dedupe.types import DedupeSettings, Item
from instruct_data.parallel import WorkerPool

BATCH = 4096


class _Remapped:
    """A BandIndex over a subset, answering with indices of the full list."""

    def __init__(self, index: BandIndex, positions: np.ndarray):
        self.index, self.positions = index, positions

    def best_match(self, sig, threshold, salt=None):
        best, sim = self.index.best_match(sig, threshold, salt)
        hit = best >= 0
        best[hit] = self.positions[best[hit]]
        return best, sim


@dataclass
class Against:
    """Benchmark questions, fingerprinted once: exact keys and a band index of signatures."""

    ids: list[str]
    exact: dict[bytes, int]  # exact key -> first question with it
    index: _Remapped  # near matches, for the questions long enough to shingle

    @classmethod
    def build(cls, questions: list[tuple[str, str]], settings: DedupeSettings) -> "Against":
        texts = [normalize(text, settings.traditional_to_simplified) for _, text in questions]
        exact: dict[bytes, int] = {}
        for i, text in enumerate(texts):
            exact.setdefault(hash_text(text), i)
        sig, has = signatures(texts, settings.ngram, settings.num_perm, settings.seed)
        # Questions too short to shingle match exactly only: give them no band keys.
        salt = _numbers(texts)
        index = BandIndex(sig[has], settings.bands, salt[has])
        index_ids = np.flatnonzero(has)
        return cls([qid for qid, _ in questions], exact, _Remapped(index, index_ids))


@dataclass
class Batch:
    """Fingerprints of one batch of items (row i of every array is item i)."""

    ids: list[str]
    order: np.ndarray  # int64
    protected: np.ndarray  # bool
    reply_len: np.ndarray  # int64
    content: np.ndarray  # (n, 2) uint64: hash of the stored text
    exact: np.ndarray  # (n, 2) uint64: hash of the normalized key
    sig: np.ndarray  # (n, num_perm) uint32
    bands: np.ndarray  # (n, bands) uint64 LSH band keys (salted with the key's numbers)
    dialogue: np.ndarray  # uint64: keys.dialogue_key, equal for the records of one dialogue
    has_sig: np.ndarray  # bool: False for a text too short to shingle
    against: np.ndarray  # int64: index of the benchmark question the prompt matches, -1 if none
    against_sim: np.ndarray  # float32


def _numbers(normalized: list[str]) -> np.ndarray:
    return np.fromiter(map(numbers_key, normalized), dtype=np.uint64, count=len(normalized))


def _halves(digests: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2).copy() if digests else np.zeros((0, 2), "<u8")


def fingerprint(items: list[Item], settings: DedupeSettings, against: Against | None = None) -> Batch:
    keys = _normalized_keys(items, settings)
    exact = _halves([hash_text(k) for k in keys])
    near_keys = [near_key_text(item, settings, key) for item, key in zip(items, keys)]
    if settings.near:
        sig, has = signatures(near_keys, settings.ngram, settings.num_perm, settings.seed)
        bands = band_keys(sig, settings.bands, _numbers(near_keys))
    else:
        sig, has = np.zeros((len(items), 0), dtype=np.uint32), np.zeros(len(items), dtype=bool)
        bands = np.zeros((len(items), 0), dtype=np.uint64)
    match = np.full(len(items), -1, dtype=np.int64)
    match_sim = np.zeros(len(items), dtype=np.float32)
    if against is not None and against.ids:
        own_rounds = any(near is not key for near, key in zip(near_keys, keys))
        match, match_sim = _match_against(items, settings, against, keys, None if own_rounds else (sig, has))
    return Batch(
        ids=[item.id for item in items],
        order=np.fromiter((item.order for item in items), dtype=np.int64, count=len(items)),
        protected=np.fromiter((item.protected for item in items), dtype=bool, count=len(items)),
        reply_len=np.fromiter((len(item.reply) for item in items), dtype=np.int64, count=len(items)),
        content=_halves([content_hash(item) for item in items]),
        exact=exact, sig=sig, bands=bands, has_sig=has, against=match, against_sim=match_sim,
        dialogue=np.fromiter(map(dialogue_key, items), dtype=np.uint64, count=len(items)),
    )


def _normalized_keys(items: list[Item], settings: DedupeSettings) -> list[str]:
    """[keys.normalized_key_text(item, settings) for item in items], normalized in one batch."""
    t2s = settings.traditional_to_simplified
    if settings.key == "prompt":
        return normalize_many([item.prompt for item in items], t2s)
    if settings.key == "reply":
        return normalize_many([item.reply for item in items], t2s)
    # "both": the parts normalized apart, so the joiner survives (as normalized_key_text does)
    prompts = normalize_many([item.prompt for item in items], t2s)
    replies = normalize_many([item.reply for item in items], t2s)
    return [f"{p}{_JOIN}{r}" for p, r in zip(prompts, replies)]


def _match_against(items, settings, against, keys, signed):
    """Which benchmark question each item's prompt (whole: history and question) duplicates,
    exactly or nearly. `signed`: the items' (signatures, has) when they are of `keys`."""
    if settings.key == "prompt" and signed is not None:
        prompts, (psig, phas) = keys, signed
    else:
        prompts = normalize_many([item.prompt for item in items], settings.traditional_to_simplified)
        psig, phas = signatures(prompts, settings.ngram, settings.num_perm, settings.seed) if settings.near \
            else (None, np.zeros(len(items), dtype=bool))
    match, sim = _match_texts(prompts, psig, phas, settings, against)
    # A record's own question, after rounds of its dialogue's own (keys.own_question).
    asked = [(i, own_question(item.prompt)) for i, item in enumerate(items) if match[i] < 0]
    asked = [(i, q) for i, q in asked if q is not None]
    if asked:
        texts = normalize_many([q for _, q in asked], settings.traditional_to_simplified)
        qsig, qhas = signatures(texts, settings.ngram, settings.num_perm, settings.seed) if settings.near \
            else (None, np.zeros(len(texts), dtype=bool))
        qmatch, qsim = _match_texts(texts, qsig, qhas, settings, against)
        rows = np.asarray([i for i, _ in asked], dtype=np.int64)
        match[rows], sim[rows] = qmatch, qsim
    return match, sim


def _match_texts(texts, sig, has, settings, against):
    """The benchmark question each normalized text duplicates (-1: none), and the similarity."""
    match = np.full(len(texts), -1, dtype=np.int64)
    sim = np.zeros(len(texts), dtype=np.float32)
    for i, text in enumerate(texts):
        hit = against.exact.get(hash_text(text))
        if hit is not None:
            match[i], sim[i] = hit, 1.0
    if settings.near:
        rows = np.flatnonzero((match < 0) & has)
        salt = _numbers([texts[i] for i in rows.tolist()])
        best, best_sim = against.index.best_match(sig[rows], settings.threshold, salt)
        found = best >= 0
        match[rows[found]], sim[rows[found]] = best[found], best_sim[found]
    return match, sim


# ------------------------------------------------------------------ exact keys computed elsewhere


@dataclass
class ExactKeys:
    """The exact-match fingerprints of rows, computed where their texts already are (a
    build's pass-1 workers), so the texts never travel to dedupe: row i of every array is
    row i of the texts given. Enough to decide exact duplicates and exact contamination."""

    exact: np.ndarray  # (n, 2) uint64: hash of the normalized key
    content: np.ndarray  # (n, 2) uint64: hash of the stored text
    reply_len: np.ndarray  # int64
    prompt: np.ndarray  # (n, 2) uint64: hash of the normalized prompt, matched against benchmark questions
    question: np.ndarray  # (n, 2) uint64: of the record's own question (keys.own_question), else the prompt's

    def __len__(self) -> int:
        return len(self.reply_len)

    def take(self, rows) -> "ExactKeys":
        """The given rows (a slice, an index array or a bool mask), in that order."""
        return ExactKeys(self.exact[rows], self.content[rows], self.reply_len[rows], self.prompt[rows],
                         self.question[rows])

    @classmethod
    def join(cls, parts: list["ExactKeys"]) -> "ExactKeys":
        if not parts:
            empty = np.zeros((0, 2), dtype="<u8")
            return cls(empty, empty, np.zeros(0, dtype=np.int64), empty, empty)
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("exact", "content", "reply_len",
                                                                                      "prompt", "question")))


def exact_keys(prompts: list[str], replies: list[str], settings: DedupeSettings) -> ExactKeys:
    """ExactKeys of rows given as parallel lists of prompts and replies (the Items' texts):
    the same hashes as fingerprint() computes for Items with these texts."""
    t2s = settings.traditional_to_simplified
    norm_prompts = normalize_many(prompts, t2s)
    prompt_hashes = _halves([hash_text(p) for p in norm_prompts])
    if settings.key == "prompt":
        exact = prompt_hashes
    else:
        norm_replies = normalize_many(replies, t2s)
        # The same key text as normalized_key_text(), from the prompts normalized once.
        keys = norm_replies if settings.key == "reply" else \
            [f"{p}{_JOIN}{r}" for p, r in zip(norm_prompts, norm_replies)]
        exact = _halves([hash_text(k) for k in keys])
    content = _halves([xxhash.xxh3_128_digest(f"{p}{_JOIN}{r}".encode("utf-8")) for p, r in zip(prompts, replies)])
    reply_len = np.fromiter(map(len, replies), dtype=np.int64, count=len(replies))
    questions = [own_question(p) for p in prompts]
    question_hashes = prompt_hashes.copy()
    asked = [i for i, question in enumerate(questions) if question is not None]
    if asked:  # normalized together, as the prompts are (a dialogue's records after its first)
        question_hashes[asked] = _halves([hash_text(q) for q in normalize_many([questions[i] for i in asked], t2s)])
    return ExactKeys(exact, content, reply_len, prompt_hashes, question_hashes)


def exact_batch(keys: ExactKeys, ids: list[str], order: np.ndarray, protected: np.ndarray,
                question_keys: list[bytes], settings: DedupeSettings, dialogue: np.ndarray | None = None) -> Batch:
    """A Batch for find.decide() from ExactKeys, without near signatures (settings.near must
    be off). `question_keys`: hash_text() of each benchmark question's normalized text, as
    Against.build makes them; a prompt equal to one is marked with the first such question.
    `dialogue`: any integer per row, equal for the records of one dialogue (default: none
    share one)."""
    if settings.near:
        raise ValueError("exact_batch decides exact duplicates only: near detection needs signatures")
    n = len(keys)
    match = _exact_matches(keys.prompt, question_keys)
    asked = match < 0
    match[asked] = _exact_matches(keys.question[asked], question_keys)
    return Batch(ids=ids, order=np.asarray(order, dtype=np.int64), protected=np.asarray(protected, dtype=bool),
                 reply_len=keys.reply_len, content=keys.content, exact=keys.exact,
                 sig=np.zeros((n, 0), dtype=np.uint32), bands=np.zeros((n, 0), dtype=np.uint64),
                 has_sig=np.zeros(n, dtype=bool), against=match, against_sim=(match >= 0).astype(np.float32),
                 dialogue=np.arange(n, dtype=np.uint64) if dialogue is None else np.asarray(dialogue, dtype=np.uint64))


def _exact_matches(prompt: np.ndarray, question_keys: list[bytes]) -> np.ndarray:
    """Index of the first question whose key equals each row's prompt key, -1 for none."""
    match = np.full(len(prompt), -1, dtype=np.int64)
    first: dict[bytes, int] = {}
    for i, key in enumerate(question_keys):
        first.setdefault(key, i)
    if not first:
        return match
    # A vectorized test on the first half of the 128-bit keys finds the few candidates; the
    # full key decides.
    halves = _halves(list(first))
    for i in np.flatnonzero(np.isin(prompt[:, 0], halves[:, 0])).tolist():
        hit = first.get(prompt[i].tobytes())
        if hit is not None:
            match[i] = hit
    return match


# ------------------------------------------------------------------ running over processes

_WORKER_STATE: tuple[DedupeSettings, Against | None] | None = None


def init_worker(settings: DedupeSettings, against: Against | None) -> None:
    """Set the settings and benchmark index worker_fingerprint uses in this process (a worker
    process of worker_pool, or a Ray task: ray_engine.dedupe)."""
    global _WORKER_STATE
    _WORKER_STATE = (settings, against)


def worker_fingerprint(items: list[Item]) -> Batch:
    """fingerprint() with the settings the worker (or this process) was started with."""
    settings, against = _WORKER_STATE
    return fingerprint(items, settings, against)


def _work(rows: list[tuple]) -> Batch:
    return worker_fingerprint([Item(*row) for row in rows])


def worker_pool(workers: int, settings: DedupeSettings, against: Against | None = None) -> WorkerPool:
    """A pool whose processes know the settings and benchmark index (set once, not per task);
    with one worker, this process."""
    return WorkerPool(workers, init_worker, (settings, against))


def _batches(items: Iterable[Item], size: int) -> Iterator[list[tuple]]:
    """Lists of `size` items, as tuples: they pickle in half the time of dataclasses."""
    batch: list = []
    for item in items:
        batch.append((item.id, item.prompt, item.reply, item.order, item.protected, item.dialogue))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def fingerprint_all(items: Iterable[Item], settings: DedupeSettings, against: Against | None = None,
                    workers: int = 1, batch_size: int | None = None) -> Iterator[Batch]:
    """Fingerprints of every item, batch by batch, in input order, on `workers` processes."""
    with worker_pool(workers, settings, against) as pool:
        yield from pool.map(_work, _batches(items, batch_size or BATCH))
