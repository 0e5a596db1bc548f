"""The parts of a build's manifest.json that `idata stats` reads, as a pydantic model.

A manifest that is damaged or hand-edited (`[]`, no `counts`, a count that is text) fails
with `manifest.json: counts.totals.read: ...` instead of a traceback; fields it does not
name are left alone (extra="allow"), so newer manifests still load.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, model_validator


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RowCounts(_Open):
    read: NonNegativeInt
    written: NonNegativeInt = 0
    rejected: NonNegativeInt
    removed: NonNegativeInt


class Counts(_Open):
    totals: RowCounts
    per_source: dict[str, RowCounts]
    balanced: bool = True
    rejects_by_reason: dict[str, dict[str, NonNegativeInt]] = Field(default_factory=dict)
    duplicates_by_method: dict[str, NonNegativeInt] = Field(default_factory=dict)
    rows_changed_by_normalizer: dict[str, NonNegativeInt] = Field(default_factory=dict)
    turns_cut_by_rule: dict[str, NonNegativeInt] = Field(default_factory=dict)
    pii_masks_by_kind: dict[str, NonNegativeInt] = Field(default_factory=dict)


class Split(_Open):
    train: dict[str, NonNegativeInt] = Field(default_factory=dict)
    heldout: dict[str, NonNegativeInt] = Field(default_factory=dict)
    train_records: NonNegativeInt = 0


class Stats(_Open):
    length_bins: list[NonNegativeInt] = Field(default_factory=list)
    instruction_length: list[NonNegativeInt] = Field(default_factory=list)
    reply_length: list[NonNegativeInt] = Field(default_factory=list)
    categories: dict[str, NonNegativeInt] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_count_per_bin(self):
        for name in ("instruction_length", "reply_length"):
            if self.length_bins and len(getattr(self, name)) != len(self.length_bins):
                raise ValueError(f"{name} has {len(getattr(self, name))} counts for {len(self.length_bins)} length_bins")
        return self


class BuildManifest(_Open):
    command: Literal["build"]
    counts: Counts
    split: Split = Field(default_factory=Split)
    stats: Stats = Field(default_factory=Stats)
    template: str | None = None
    check: str | None = None


def manifest_problem(data: object) -> str | None:
    """What is wrong with a build manifest, in one line; None when it is sound."""
    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}: damaged, or not written by idata"
    if data.get("command") != "build":
        return f"written by `idata {data.get('command')}`, not `idata build`"
    try:
        BuildManifest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}; the manifest is damaged: run `idata build` again"
    return None
