"""What dedupe takes and gives: its settings, an item to compare, and a removal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Key = Literal["prompt", "reply", "both"]
Method = Literal["exact", "near", "contamination"]


class DedupeSettings(BaseModel):
    """How duplicates are found. Also the `dedupe:` block of a build recipe.

    The defaults were chosen by measurement (benchmarks/choose_threshold.py, quoted in the
    docs/dedupe.md): with 3-character shingles, rows with 5% of their characters edited have a
    Jaccard similarity of 0.75 (median; 1% under 0.67), two different rows on the same topic
    and template 0.04 (99% under 0.16; the worst of 100,000 rows 0.43).
    """

    model_config = ConfigDict(extra="forbid")

    key: Key = "both"
    exact: bool = True
    near: bool = True
    threshold: float = Field(0.6, gt=0.0, le=1.0, allow_inf_nan=False,
                             description="estimated Jaccard at or above which two rows are near duplicates")
    ngram: int = Field(3, ge=1, le=16, description="characters per shingle")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    bands: int = Field(32, ge=1, description="LSH bands; num_perm must be bands * rows")
    seed: int = 42
    policy: Literal["first", "longest-reply"] = "first"
    traditional_to_simplified: bool = False

    @model_validator(mode="after")
    def _bands_divide_perms(self) -> "DedupeSettings":
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self

    @property
    def rows_per_band(self) -> int:
        return self.num_perm // self.bands


@dataclass(frozen=True)
class Item:
    """What dedupe needs of a row: small, so a million of them fit in memory."""

    id: str
    prompt: str
    reply: str
    order: int = 0  # input position; only policy "first" uses it, as the caller gives it
    # A held-out or benchmark item: never removed; training items duplicating it are removed
    # with method "contamination".
    protected: bool = False
    # The dialogue (row) the item is a record of, when a row gives several (every-turn mode):
    # items of one dialogue are never duplicates of each other. "" = its own id.
    dialogue: str = ""


@dataclass(frozen=True, slots=True)  # no __dict__: a build holds one per removed record until it writes
class Removal:
    """One removed item: which kept item it duplicates, its cluster, how it was found."""

    id: str
    duplicate_of: str
    cluster: str
    method: Method
    similarity: float
