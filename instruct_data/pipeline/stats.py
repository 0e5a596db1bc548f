"""The manifest's `split` counts and training-row statistics, for every engine.

    stats = SplitStats(labels)                  # one per build (or per partition, then merged)
    stats.add(rows, train=..., heldout=...)     # a partition or batch of kept rows, any order
    stats.records_removed += n                  # train records removed from rows that keep others
    stats.merge(other)                          # two partitions' counts together
    stats.summary()                             # the manifest's `split` and `stats` entries

Pass 2 (steps.place) adds each block of kept rows it writes, and both executors merge the
blocks' stats (the local executor per chunk of the spool, Ray per batch). Counts only add up,
so the order of the blocks and of the rows in them does not change the summary.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

LENGTH_BINS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
LENGTHS = (("instruction_length", "prompt_len"), ("reply_length", "reply_len"))  # manifest name, column


class SplitStats:
    """Rows written to train and heldout per source, train records, and the length histograms
    and categories of the training rows."""

    def __init__(self, labels: list[str]):
        import numpy as np

        self.labels = labels
        self.train = np.zeros(len(labels), dtype=np.int64)  # rows per source number
        self.heldout = np.zeros(len(labels), dtype=np.int64)
        self.lengths = {name: np.zeros(len(LENGTH_BINS), dtype=np.int64) for name, _ in LENGTHS}
        self.categories: Counter = Counter()
        self.records = 0  # train records of the train rows, before removals
        self.records_removed = 0  # train records removed from rows that still write others

    def add(self, rows: dict[str, Any], *, train, heldout, names: dict | None = None) -> None:
        """Count kept rows: `rows` holds equal-length numpy columns source (source number),
        prompt_len, reply_len, records (train records per row) and category; `train` and
        `heldout` are boolean masks of where each row went. A category value is the category's
        name, or with `names` a number that names maps to one; "" and names starting with
        "source:" (a source standing in for a row without one) count as "(none)"."""
        import numpy as np

        source = np.asarray(rows["source"]).astype(np.int64)
        self.train += np.bincount(source[train], minlength=len(self.labels))
        self.heldout += np.bincount(source[heldout], minlength=len(self.labels))
        edges = np.array(LENGTH_BINS[1:])
        for name, column in LENGTHS:
            bins = np.searchsorted(edges, np.asarray(rows[column])[train], side="right")
            self.lengths[name] += np.bincount(bins, minlength=len(LENGTH_BINS))
        values, counts = np.unique(np.asarray(rows["category"])[train], return_counts=True)
        for value, n in zip(values.tolist(), counts.tolist()):
            name = value if names is None else names[value]
            self.categories["(none)" if not name or name.startswith("source:") else name] += n
        self.records += int(np.asarray(rows["records"])[train].sum())

    def merge(self, other: SplitStats) -> SplitStats:
        """Add another partition's counts to these (same labels); returns self."""
        self.train += other.train
        self.heldout += other.heldout
        for name, counts in other.lengths.items():
            self.lengths[name] += counts
        self.categories.update(other.categories)
        self.records += other.records
        self.records_removed += other.records_removed
        return self

    def written(self) -> list[tuple[str, int]]:
        """(source label, rows written to train and heldout), in source order, for the ledger;
        sources that wrote none left out."""
        return [(label, n) for label, n in zip(self.labels, (self.train + self.heldout).tolist()) if n]

    def summary(self) -> dict[str, Any]:
        """The manifest's `split` and `stats` entries."""
        per_source = {where: {self.labels[i]: int(n) for i, n in enumerate(counts.tolist()) if n}
                      for where, counts in (("train", self.train), ("heldout", self.heldout))}
        return {
            "split": {
                "train": dict(sorted(per_source["train"].items())),
                "heldout": dict(sorted(per_source["heldout"].items())),
                "train_records": self.records - self.records_removed,
            },
            "stats": {
                "length_bins": list(LENGTH_BINS),
                **{name: [int(n) for n in counts] for name, counts in self.lengths.items()},
                "categories": dict(sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
        }
