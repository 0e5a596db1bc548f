"""Batches: dynamic padding to the longest example in the batch, or padding-free packing.

Padding-free packing concatenates the batch into one row and restarts `position_ids` at
each example; transformers then builds a block-diagonal causal mask (sdpa/eager) or passes
sequence boundaries to FlashAttention, so examples never attend to each other and no
compute is spent on padding.
"""

from __future__ import annotations

from instruct_data.training.tokenize import IGNORE


class PadCollator:
    """Right-pad to the longest in the batch (rounded up to a multiple, for tensor cores)."""

    def __init__(self, pad_id: int, multiple: int | None = None):
        self.pad_id = pad_id
        self.multiple = multiple

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            longest = -(-longest // self.multiple) * self.multiple
        ids = torch.full((len(features), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            ids[row, :n] = torch.as_tensor(feature["input_ids"])
            labels[row, :n] = torch.as_tensor(feature["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


class PackCollator:
    """One row of concatenated examples with per-example position_ids; no padding at all."""

    def __init__(self, flash_attention: bool = False):
        from transformers import DataCollatorWithFlattening

        self.inner = DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE,
                                                return_flash_attn_kwargs=flash_attention)

    def __call__(self, features: list[dict]) -> dict:
        return self.inner([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in features])
