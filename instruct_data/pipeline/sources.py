"""Build sources, resolved before anything is written, and read in chunks for the workers.

Files are cut into chunks by rowpath.file_chunks (JSON lines: byte ranges or raw lines the
workers decode; arrays and tables: batches of rows read here, or with `in_pieces` (the Ray
engine) pieces the workers read themselves), a Belle release streamed by `datasets` into
batches of rows (with `in_pieces`, a local copy in shards: a chunk per shard); the workers
turn each row into a Conversation through the same rowpath as every other command. Chunks
are numbered in input order; a source stops being read once its cap is reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_data.errors import IdataError
from instruct_data.io import Row, expand_inputs
from instruct_data.ledger import source_name, source_names
from instruct_data.recipe import Recipe, RecipeError, Source
from instruct_data.rowpath import (BATCH_ROWS, BLOCK_BYTES, Chunk, FileSpec, file_chunks, is_json_lines, open_file,
                                   rows_chunks)


@dataclass
class Plan:
    """One source, resolved: what to read, and what it has done so far."""

    index: int
    label: str
    source: Source
    cap: int | None
    limit: int | None
    max_reject_rate: float
    files: list[FileSpec] = field(default_factory=list)  # format and map (the recipe's, or column aliases)
    subset: Any = None  # hub.Subset for a Belle source
    categories: Any = None  # categories.CategoryLookup joined onto its rows by id, if any
    read: int = 0
    kept: int = 0
    stopped: bool = False  # the cap was reached: nothing more is read


def plan_sources(recipe: Recipe, *, download: bool = True) -> list[Plan]:
    """Resolve every source before anything is written: a missing file or unknown subset fails
    here. `download`: a whole Belle release may be downloaded into this machine's cache and read
    as a file (its readers run on this machine)."""
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
                plan.files = _local_copy(plan.subset, source)
            elif download and source.limit is None and plan.cap is None:
                # The whole release is read: downloaded once into the cache, then read as a file. A
                # limit or a cap (the recipe's `cap`, or a weight's share) streams: it stops early.
                plan.files = _as_file(hub.download(plan.subset, source.revision), plan.subset, source)
        else:
            try:
                paths = expand_inputs(source.files)
            except IdataError as exc:
                raise RecipeError(f"source {label!r}: {exc}") from None
            plan.files = [open_file(path, fmt=source.format, mapping=source.map, encoding=source.encoding)
                          for path in paths]
        plan.categories = _categories(source, plan.subset, label)
        plans.append(plan)
    return plans


def _local_copy(subset, source: Source) -> list[FileSpec]:
    """A Belle release's local copy in one JSON-lines file (as BELLE ships each release), read
    like any file of the subset's format (as is the hub's file, downloaded whole: plan_sources): in byte ranges the workers (or Ray's tasks) read and parse
    themselves, a damaged line a reject. Through `datasets` (the hub's code path) the main process
    parsed every row and sent it on: half the rows per second and five times the memory of the
    same file given as a file. Row n is still `belle-SUBSET:n`. A copy in shards (or not JSON
    lines) goes the hub's way: []. Fails now, naming the path, if the copy is not there."""
    from instruct_data import hub

    paths = hub.local_files(subset, source.from_)
    return _as_file(paths[0], subset, source) if len(paths) == 1 else []


def _as_file(path: Path, subset, source: Source) -> list[FileSpec]:
    """A release's one file as a FileSpec of its format, when it is JSON lines (else [])."""
    return [open_file(path, fmt=subset.format, encoding=source.encoding)] if is_json_lines(path, source.encoding) else []


def _categories(source: Source, subset, label: str):
    """The source's CategoryLookup: its `categories` file, or for a Belle release whose
    categories BELLE published apart, that file where the local copy holds it; else None."""
    from instruct_data import hub
    from instruct_data.categories import CategoryLookup

    path = source.categories
    if path is None and subset is not None and source.from_ is not None:
        path = hub.local_categories(subset, source.from_)
    if path is None:
        return None
    try:
        return CategoryLookup.read(path)
    except IdataError as exc:
        raise RecipeError(f"source {label!r}: categories: {exc}") from None


def tasks(plans: list[Plan], *, block_bytes: int = BLOCK_BYTES, batch_rows: int = BATCH_ROWS,
          in_pieces: bool = False) -> Iterator[tuple]:
    """(chunk number, source index, id prefix, rowpath.Chunk) for every source in order; a
    source stops being read once its cap is reached. A chunk holds `block_bytes` of a JSON-lines
    file, or `batch_rows` rows read here (an array, a table, a Belle release); with `in_pieces`,
    an array or a table is cut into pieces its workers read (rowpath.file_chunks), so that this
    process reads no row of it."""
    number = 0
    for plan in plans:
        for id_prefix, chunk in _source_chunks(plan, block_bytes, batch_rows, in_pieces):
            if plan.stopped:
                break
            yield (number, plan.index, id_prefix, chunk)
            number += 1


def input_bytes(plans: list[Plan]) -> int:
    """The size of the sources' files (a Belle release streamed from the hub counts 0)."""
    return sum(Path(spec.path).stat().st_size for plan in plans for spec in plan.files)


def _source_chunks(plan: Plan, block_bytes: int, batch_rows: int, in_pieces: bool) -> Iterator[tuple[str, object]]:
    if plan.subset is not None and not plan.files:  # the hub, or a local copy in shards
        from instruct_data import hub

        spec = FileSpec(plan.subset.name, plan.subset.format)
        if in_pieces and plan.limit is None and plan.source.from_ is not None \
                and len(hub.local_files(plan.subset, plan.source.from_)) > 1:
            # A local copy in shards: a task per shard reads it (rows numbered across shards).
            for shard in hub.shards(plan.subset, plan.source.from_, plan.source.revision):
                yield plan.label, Chunk(spec, shard=shard, part_rows=batch_rows)
            return
        rows = hub.stream_rows(plan.subset, from_path=plan.source.from_, revision=plan.source.revision,
                               limit=plan.limit)
        for chunk in rows_chunks(spec, (Row(origin, data) for origin, data in rows), batch_rows):
            yield plan.label, chunk
        return
    remaining = plan.limit
    several = len(plan.files) > 1
    # Row ids are `source:line`; with several files in a source the file name keeps them apart, and
    # files of one name in different folders (raw/a/part.jsonl, raw/b/part.jsonl) their folder too.
    names = source_names([Path(spec.path) for spec in plan.files]) if several else []
    for index, spec in enumerate(plan.files):
        id_prefix = f"{plan.label}/{names[index]}" if several else plan.label
        for chunk in file_chunks(spec, limit=remaining, block_bytes=block_bytes, batch_rows=batch_rows,
                                 in_pieces=in_pieces):
            yield id_prefix, chunk
            if remaining is not None:
                remaining -= chunk.count
        if remaining is not None and remaining <= 0:
            return


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
                if path.suffix.lower() == ".gz" or not is_json_lines(path, source.encoding):
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
