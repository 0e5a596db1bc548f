"""Build sources, resolved before anything is written, and read in chunks for the workers.

A JSON-lines file is cut into blocks of raw lines (the workers parse them); a table, or a
Belle release streamed by `datasets`, into batches of rows. Chunks are numbered in input
order; a source stops being read once its cap is reached.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_data.convert import source_name
from instruct_data.errors import IdataError
from instruct_data.formats import read_conversations
from instruct_data.io import JSON_SUFFIXES, Row, base_suffix, chunked, expand_inputs, line_blocks, read_rows
from instruct_data.recipe import Recipe, RecipeError, Source

BLOCK_BYTES = 1 << 20  # one chunk of a JSON-lines file handed to a worker (about 1,600 Belle rows)
BATCH_ROWS = 1000  # one chunk of rows from a table or the hub


@dataclass
class FileInput:
    path: Path
    fmt: str
    mapping: dict[str, str] | None  # the recipe's `map`, or Chinese column aliases found by the readers
    lines: bool  # JSON lines: read in raw blocks, parsed by the workers


@dataclass
class Plan:
    """One source, resolved: what to read, and what it has done so far."""

    index: int
    label: str
    source: Source
    cap: int | None
    limit: int | None
    max_reject_rate: float
    files: list[FileInput] = field(default_factory=list)
    subset: Any = None  # hub.Subset for a Belle source
    read: int = 0
    kept: int = 0
    stopped: bool = False  # the cap was reached: nothing more is read


def plan_sources(recipe: Recipe) -> list[Plan]:
    """Resolve every source before anything is written: a missing file or unknown subset fails here."""
    from instruct_data import hub

    caps = recipe.caps()
    plans = []
    for index, source in enumerate(recipe.sources):
        label = source.label
        plan = Plan(index, label, source, caps[label], source.limit,
                    source.max_reject_rate if source.max_reject_rate is not None else recipe.max_reject_rate)
        if source.belle is not None:
            plan.subset = hub.get_subset(source.belle)
            if source.from_ is not None:
                hub.local_file(plan.subset, source.from_)  # fails now, naming the path, if it is not there
        else:
            try:
                paths = expand_inputs(source.files)
            except IdataError as exc:
                raise RecipeError(f"source {label!r}: {exc}") from None
            for path in paths:
                info: dict[str, Any] = {}
                fmt, stream = read_conversations(str(path), fmt=source.format, source=label, mapping=source.map,
                                                 encoding=source.encoding, info=info)
                stream.close()
                plan.files.append(FileInput(path, fmt, info.get("map") or None, _is_json_lines(path, source.encoding)))
        plans.append(plan)
    return plans


def _is_json_lines(path: Path, encoding: str) -> bool:
    if base_suffix(path) not in JSON_SUFFIXES:
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(4096).decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return not head.startswith("[")


def tasks(plans: list[Plan]) -> Iterator[tuple]:
    """Chunks of every source in order; a source stops being read once its cap is reached."""
    number = 0
    for plan in plans:
        for kind, payload in _source_chunks(plan):
            if plan.stopped:
                break
            yield (number, plan.index, kind, payload)
            number += 1


def _source_chunks(plan: Plan) -> Iterator[tuple[str, tuple]]:
    if plan.subset is not None:
        from instruct_data import hub

        rows = hub.stream_rows(plan.subset, from_path=plan.source.from_, revision=plan.source.revision,
                               limit=plan.limit)
        for batch in chunked((Row(origin, data) for origin, data in rows), BATCH_ROWS):
            yield "rows", (plan.subset.format, None, plan.label, batch)
        return
    remaining = plan.limit
    several = len(plan.files) > 1
    for file in plan.files:
        # Row ids are `source:line`; with several files in a source the file name keeps them apart.
        id_prefix = f"{plan.label}/{source_name(file.path)}" if several else plan.label
        encoding = plan.source.encoding
        if file.lines and remaining is None and file.path.suffix.lower() != ".gz":
            for first_line, offset, size in line_blocks(file.path, BLOCK_BYTES):
                yield "block", (str(file.path), file.fmt, file.mapping, id_prefix, first_line, (offset, size), encoding)
        elif file.lines:
            for first_line, lines, rows in _line_chunks(file.path, remaining):
                yield "lines", (str(file.path), file.fmt, file.mapping, id_prefix, first_line, lines, encoding)
                if remaining is not None:
                    remaining -= rows
        else:
            for batch in chunked(read_rows(file.path, encoding=encoding, limit=remaining), BATCH_ROWS):
                yield "rows", (file.fmt, file.mapping, id_prefix, batch)
                if remaining is not None:
                    remaining -= len(batch)
        if remaining is not None and remaining <= 0:
            return


def read_block(path: str, offset: int, size: int) -> list[bytes]:
    """The raw lines of a block from io.line_blocks, as readlines() gives them (newline kept)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return io.BytesIO(fh.read(size)).readlines()


def _line_chunks(path: Path, remaining: int | None) -> Iterator[tuple[int, list[bytes], int]]:
    """(first line number, raw lines, rows in them) blocks; stops exactly at `remaining` rows."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    line_no = 1
    with opener(path, "rb") as fh:
        while remaining is None or remaining > 0:
            lines = fh.readlines(BLOCK_BYTES)
            if not lines:
                return
            rows = len(lines)
            if remaining is not None:
                nonblank = [i for i, line in enumerate(lines) if line.strip()]
                if len(nonblank) > remaining:
                    lines = lines[:nonblank[remaining - 1] + 1]
                rows = min(len(nonblank), remaining)
                remaining -= rows
            yield line_no, lines, rows
            line_no += len(lines)


def estimate_rows(recipe: Recipe) -> int | None:
    """About how many rows a build will read, for a progress bar: limits and caps, the card's
    row counts for Belle, and for JSON-lines files their size over the mean size of their first lines."""
    from instruct_data import hub

    total = 0
    for source in recipe.sources:
        if source.belle is not None:
            guess = hub.SUBSETS[source.belle].rows
        else:
            guess = 0
            try:
                paths = expand_inputs(source.files)
            except IdataError:
                return None
            for path in paths:
                if path.suffix.lower() == ".gz" or not _is_json_lines(path, source.encoding):
                    return None
                with open(path, "rb") as fh:
                    head = fh.readlines(1 << 18)
                if head:
                    guess += round(path.stat().st_size / (sum(map(len, head)) / len(head)))
        for bound in (source.limit, source.cap):
            if bound is not None:
                guess = min(guess, bound) if guess else bound
        total += guess
    return total or None
