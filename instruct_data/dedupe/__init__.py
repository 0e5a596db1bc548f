"""Deduplication: exact and near duplicates, decontamination, and which copy survives.

    from instruct_data.dedupe import DedupeSettings, Item, find_duplicates

    items = [Item(id=..., prompt=..., reply=..., order=n) for n, ... in enumerate(rows)]
    removals = find_duplicates(items, DedupeSettings(key="both"), against=benchmark_questions,
                               workers=2)
    # -> [Removal(id, duplicate_of, cluster, method, similarity), ...]; everything else is kept

Modules: keys (normalized keys, exact hashes), shingles (character n-grams, hashed in
bulk), near (MinHash signatures with rensa, LSH banding, verification), select (which copy
survives), fingerprint (per-row work, over processes), find (the decision), runner (the
`idata dedupe` command: files in, kept rows and the ledger out).
"""

from __future__ import annotations

from instruct_data.dedupe.find import find_duplicate_positions, find_duplicates
from instruct_data.dedupe.keys import exact_key, normalize
from instruct_data.dedupe.types import DedupeSettings, Item, Removal

__all__ = ["DedupeSettings", "Item", "Removal", "exact_key", "find_duplicate_positions", "find_duplicates", "normalize"]
