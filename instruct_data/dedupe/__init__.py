"""Deduplication: exact and near duplicates, decontamination, and which copy survives.

    from instruct_data.dedupe import DedupeSettings, Item, find_duplicates

    items = [Item(id=..., prompt=..., reply=..., order=n) for n, ... in enumerate(rows)]
    removals = find_duplicates(items, DedupeSettings(key="both"), against=benchmark_questions,
                               workers=2)
    # -> [Removal(id, duplicate_of, cluster, method, similarity), ...]; everything else is kept

Callers that already hold the texts in worker processes (a build's pass 1) can compute the
exact fingerprints there and decide in one place, without near detection:

    keys = exact_keys(prompts, replies, settings)            # in each worker, per chunk
    batch = exact_batch(ExactKeys.join(parts).take(rows), ids, order, protected,
                        question_keys, settings)              # in the main process
    removals = decide([batch], settings, questions)           # {row: Removal}

Modules: keys (normalized keys, exact hashes), shingles (character n-grams, hashed in
bulk), near (MinHash signatures with rensa, LSH banding, verification), select (which copy
survives), fingerprint (per-row work, over processes), find (the decision), runner (the
`idata dedupe` command: files in, kept rows and the ledger out).
"""

from __future__ import annotations

from instruct_data.dedupe.find import decide, find_duplicate_positions, find_duplicates
from instruct_data.dedupe.fingerprint import ExactKeys, exact_batch, exact_keys
from instruct_data.dedupe.keys import exact_key, normalize
from instruct_data.dedupe.types import DedupeSettings, Item, Removal

__all__ = ["DedupeSettings", "ExactKeys", "Item", "Removal", "decide", "exact_batch", "exact_key", "exact_keys",
           "find_duplicate_positions", "find_duplicates", "normalize"]
