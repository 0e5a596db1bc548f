"""The build's split counts and training-row statistics, taken batch by batch as the outputs
stream past the driver (the local engine takes them at the end from arrays it holds)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from instruct_data.pipeline.outputs import LENGTH_BINS


class SplitStats:
    def __init__(self, labels: list[str]):
        self.labels = labels
        self.train = np.zeros(len(labels), dtype=np.int64)
        self.heldout = np.zeros(len(labels), dtype=np.int64)
        self.lengths = {name: np.zeros(len(LENGTH_BINS), dtype=np.int64)
                        for name in ("instruction_length", "reply_length")}
        self.categories: Counter = Counter()
        self.records = 0
        self.records_removed = 0  # train records removed from rows that still write others
        self._edges = np.array(LENGTH_BINS[1:])

    def add(self, batch: dict[str, np.ndarray], train: np.ndarray, heldout: np.ndarray) -> None:
        """Count one batch of kept rows; `train` / `heldout`: where each went."""
        source = batch["source"].astype(np.int64)
        self.train += np.bincount(source[train], minlength=len(self.labels))
        self.heldout += np.bincount(source[heldout], minlength=len(self.labels))
        for name, column in (("instruction_length", "prompt_len"), ("reply_length", "reply_len")):
            bins = np.searchsorted(self._edges, batch[column][train], side="right")
            self.lengths[name] += np.bincount(bins, minlength=len(LENGTH_BINS))
        self.categories.update("(none)" if not c or c.startswith("source:") else c for c in batch["category"][train].tolist())
        self.records += int(batch["records"][train].sum())

    def summary(self) -> dict[str, Any]:
        """The `split` and `stats` entries of the manifest, as pipeline.outputs writes them."""
        per_source = {where: {self.labels[i]: int(n) for i, n in enumerate(counts) if n}
                      for where, counts in (("train", self.train), ("heldout", self.heldout))}
        return {
            "split": {"train": dict(sorted(per_source["train"].items())),
                      "heldout": dict(sorted(per_source["heldout"].items())),
                      "train_records": self.records - self.records_removed},
            "stats": {"length_bins": list(LENGTH_BINS),
                      **{name: [int(n) for n in counts] for name, counts in self.lengths.items()},
                      "categories": dict(sorted(self.categories.items(), key=lambda kv: (-kv[1], kv[0])))},
        }
