"""The build's two kinds of row, each declared once: a reject, and a kept row's key columns.

    Reject("read", "empty_reply", "'output' is empty", "mine.jsonl:7", raw, "mine:7")
    KEY_COLUMNS                 # (name, dtype) of every per-row key column of a kept row
    add_key_columns(holder)     # one empty array per key column, as attributes
    arrow_key_fields()          # the same columns as pyarrow fields (Ray's blocks)
    key_row(holder, k)          # row k of those columns as plain values (a row of a Ray block)

A reject is made where the row is turned down (formats.parse_row, the cleaner's verdict in
pipeline/worker.py, multiturn's budget, a dialogue's group, a repeated id) and reaches
rejects.jsonl as it is: through the worker's pipe, the ledger and Ray's blocks (pickled).

A kept row's key columns are the fixed-width numbers the cross-row steps read (the split, the
stats, pass 2). The worker's ChunkResult, the main process's Kept and Ray's block schema are
all made from KEY_COLUMNS, so a new column is added here and computed in pipeline/worker.py.
Its id and category are not in the list: each engine stores those its own way (a file of ids
and numbered strata locally, strings on Ray).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Reject:
    """A row rejected at `stage` (read, group, clean, multiturn) for `reason` (a stable code);
    `detail` says why. `origin` is where the row came from (an Origin or its text, as
    `file:line`), `raw` the row as read, `row_id` its id. Fields left None are filled in by
    the step that knows them (a multiturn reject gets its row's origin in the worker)."""

    stage: str
    reason: str
    detail: str
    origin: Any = None
    raw: Any = None
    row_id: str | None = None

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}: {self.detail}"

    def __reduce__(self):
        # Pickled as a call with its six fields: half the cost of a slotted class's default
        # (state dict, then setattr per field), and rejects cross a pipe or a Ray block each.
        return Reject, (self.stage, self.reason, self.detail, self.origin, self.raw, self.row_id)


# A kept row's key columns, (name, dtype). The dtypes are numpy's names; "bool" is one byte.
KEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "uint64"),  # a seeded hash of the row's id: the split's order
    ("prompt_key", "uint64"),  # a hash of its last prompt: the split holds out one row per prompt
    ("records", "uint32"),  # the train records it gives (one per reply of a dialogue)
    ("multi", "bool"),  # a dialogue: its held-out record is a line of its own
    ("prompt_len", "uint32"),  # characters of its last prompt and reply: the length stats
    ("reply_len", "uint32"),
)
KEY_NAMES: tuple[str, ...] = tuple(name for name, _ in KEY_COLUMNS)
_ARRAY_CODES = {"uint64": "Q", "uint32": "I", "bool": "B"}


def add_key_columns(holder: Any) -> None:
    """Give `holder` an empty array per key column, named as the column."""
    for name, dtype in KEY_COLUMNS:
        setattr(holder, name, array(_ARRAY_CODES[dtype]))


def arrow_key_fields() -> list[tuple[str, Any]]:
    """(name, pyarrow type) per key column, for a Ray block's schema."""
    import pyarrow as pa

    return [(name, pa.bool_() if dtype == "bool" else getattr(pa, dtype)()) for name, dtype in KEY_COLUMNS]


def key_row(holder: Any, k: int) -> dict[str, Any]:
    """Row `k` of `holder`'s key columns as plain values (a bool for a bool column): one row
    of a Ray block, which pyarrow builds from Python values."""
    return {name: bool(getattr(holder, name)[k]) if dtype == "bool" else getattr(holder, name)[k]
            for name, dtype in KEY_COLUMNS}
