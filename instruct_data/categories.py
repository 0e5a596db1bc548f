"""Categories joined onto rows by their id, from a file of their own.

    lookup = CategoryLookup.read("train_3.5M_CN_id2category.json")
    lookup.of("66182880")   # "generation", or None for an id the file does not name

Belle's train_3.5M_CN has no category field: BELLE published the 13 categories apart, in
BELLE-2/train_3.5M_CN_With_Category (`train_3.5M_CN_id2category.json`, rows of `id` and
`category`, ../shared/BELLE.md). Without them a build's held-out set is stratified by source
only, and `idata eval` cannot say which kinds of question tuning helped or hurt. A recipe
source's `categories:` (or `idata build --categories`) names such a file, in any format the
readers know with `id` and `category` columns; a row whose own `id` it names, and that has no
category of its own, takes that category in the row path (pipeline.worker.process_chunk, the
same for every executor).

The lookup holds a 64-bit hash of each id and a category number: 10 bytes an id (36 MB for
Belle's 3.6M), sent once to each worker.
"""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from instruct_data.errors import InputError
from instruct_data.io import read_rows


class CategoryLookup:
    """Sorted id hashes, each with the number of its category in `names`."""

    def __init__(self, path: str, hashes: np.ndarray, codes: np.ndarray, names: list[str]):
        self.path, self.hashes, self.codes, self.names = path, hashes, codes, names

    @classmethod
    def read(cls, path: str | Path) -> CategoryLookup:
        """The file's ids and categories. Fails with `file:line: what is wrong` for a row without
        an id or a category, or an id given two different categories."""
        file = Path(path)
        hashes, codes = array("Q"), array("H")  # 10 bytes an id while reading (a list took 60)
        numbers: dict[str, int] = {}
        for row in read_rows(file):
            if row.error is not None:
                raise InputError(str(row.origin), row.error)
            ident, category = row.data.get("id"), row.data.get("category")
            if not _text(ident) or not _text(category):
                raise InputError(str(row.origin), f"a categories file has an `id` and a `category` in every row "
                                                  f"(found: {', '.join(map(str, row.data)) or 'nothing'})")
            code = numbers.setdefault(str(category).strip(), len(numbers))
            if code > 0xFFFF:
                raise InputError(str(row.origin), "more than 65,536 categories: is `category` the right column?")
            hashes.append(id_hash(str(ident).strip()))
            codes.append(code)
        hashes, codes = np.frombuffer(hashes, dtype=np.uint64), np.frombuffer(codes, dtype=np.uint16)
        order = np.argsort(hashes, kind="stable")
        sorted_hashes, sorted_codes = hashes[order], codes[order]
        _refuse_conflicts(file, sorted_hashes, sorted_codes, order, list(numbers))
        keep = np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]  # an id given twice, alike: once
        return cls(str(file), sorted_hashes[keep], sorted_codes[keep], list(numbers))

    def of(self, ident: str) -> str | None:
        """The category of the row whose own id is `ident`, or None."""
        key = np.uint64(id_hash(ident.strip()))
        at = int(np.searchsorted(self.hashes, key))
        if at < len(self.hashes) and self.hashes[at] == key:
            return self.names[int(self.codes[at])]
        return None

    def summary(self) -> dict[str, Any]:
        """For the manifest's input entry: how many ids, and which categories."""
        return {"ids": len(self.hashes), "categories": list(self.names)}


def id_hash(ident: str) -> int:
    return xxhash.xxh64_intdigest(ident.encode("utf-8"))


def _text(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool) and bool(str(value).strip())


def _refuse_conflicts(file: Path, hashes: np.ndarray, codes: np.ndarray, order: np.ndarray, names: list[str]) -> None:
    """An id given two different categories fails naming the later row (found again by reading
    the file up to it: row origins are not held for millions of ids)."""
    same = np.flatnonzero((hashes[1:] == hashes[:-1]) & (codes[1:] != codes[:-1]))
    if not len(same):
        return
    pair = sorted(((int(order[at]), names[int(codes[at])]) for at in (same[0], same[0] + 1)))
    (first, first_category), (later, _) = pair
    others = f" ({len(same) - 1:,} more ids like it)" if len(same) > 1 else ""
    for position, row in enumerate(read_rows(file)):
        if position == later:
            raise InputError(str(row.origin), f"id {str(row.data.get('id')).strip()!r} is given a second category, "
                             f"{str(row.data.get('category')).strip()!r}, after {first_category!r} in row "
                             f"{first + 1}{others}: keep one category per id")
