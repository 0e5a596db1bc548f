"""Pass 1 on Ray: every chunk of the inputs becomes one block of columns.

A chunk (pipeline.sources.tasks: a byte range of a JSON-lines file, or a batch of rows of an
array, a table or a Belle release) goes through the local engine's own row path,
pipeline.worker.process_chunk, in a Ray task. Its spool files are read back at once into
columns, so the kept rows (their conversation, train and held-out lines, the dedupe texts of
each train record, the split keys: table.KEY_COLUMNS), the rejects (table.Reject, pickled as it
is) and a one-row summary (steps.caps.Summary, pickled: what the caps need of the chunk) flow
on as one Arrow block: nothing is written to a disk the driver must share, and nothing comes
back to the driver but the summaries (one small row per chunk).
"""

from __future__ import annotations

import glob
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from instruct_data.errors import IdataError
from instruct_data.ray_engine.runtime import error_payload, in_driver_dir
from instruct_data.steps.caps import Summary
from instruct_data.table import KEY_COLUMNS, arrow_key_fields, key_row

KEPT, REJECT, SUMMARY, ERROR = 0, 1, 2, 3

# A block's own columns; a kept row's key columns (table.KEY_COLUMNS) follow them.
BLOCK_FIELDS = (
    ("kind", "int8"), ("seq", "int64"), ("source", "int32"), ("index", "int64"), ("position", "int64"),
    ("id", "string"), ("conv", "binary"), ("train", "binary"), ("held", "binary"), ("texts", "binary"),
    ("category", "string"), ("own_id", "string"), ("payload", "binary"),
)


def schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in BLOCK_FIELDS] + arrow_key_fields())


SUB_CHUNKS = 1 << 24  # a chunk's `seq` is its number times this, plus its part (a shard's batches)


def chunk_block(batch: dict[str, Any], state, cwd: str | None = None) -> Iterator[Any]:
    """map_batches function: the pickled chunk tasks of `batch` -> Arrow tables of columns, one
    per chunk, or one per `part_rows` rows of a hub shard this task reads itself
    (relative input paths are the driver's, `cwd`)."""
    import pyarrow as pa

    from instruct_data.pipeline.worker import init_worker

    spool = tempfile.mkdtemp(prefix="idata-ray-spool-")
    try:
        with in_driver_dir(cwd):
            init_worker(_with_spool(state, spool))
            block_schema = schema()
            for blob in batch["task"]:
                for task in _parts(pickle.loads(blob)):
                    columns: dict[str, list] = {name: [] for name in block_schema.names}
                    _one_task(task, spool, columns)
                    yield pa.table(columns, schema=block_schema)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def _parts(task: tuple) -> Iterator[tuple]:
    """The task, numbered `seq` (its number x SUB_CHUNKS); for a hub shard, one task per batch of
    its rows, read here through `datasets` (seq + 0, 1, ...), then its read error if any."""
    number, source_index, id_prefix, chunk = task
    if chunk.shard is None:
        yield (number * SUB_CHUNKS, source_index, id_prefix, chunk)
        return
    from instruct_data.rowpath import chunk_rows, rows_chunks

    rows = _Rows(chunk_rows(chunk))
    part = 0
    for part, rows_chunk in enumerate(rows_chunks(chunk.spec, rows, chunk.part_rows), start=1):
        yield (number * SUB_CHUNKS + part - 1, source_index, id_prefix, rows_chunk)
    if rows.error is not None:
        yield (number * SUB_CHUNKS + part, source_index, id_prefix, rows.error)


class _Rows:
    """A shard's rows; a read that fails ends them, its error kept (raised by the driver in order)."""

    def __init__(self, rows: Iterator):
        self._rows, self.error = rows, None

    def __iter__(self):
        try:
            yield from self._rows
        except IdataError as exc:
            self.error = exc


def _one_task(task: tuple, spool: str, columns: dict[str, list]) -> None:
    try:
        if isinstance(task[3], IdataError):
            raise task[3]
        _one_chunk(task, spool, columns)
    except IdataError as exc:
        # A file that cannot be read (file:line: what is wrong) travels back as data: Ray
        # would wrap the exception and lose it. The driver raises it in chunk order.
        _append(columns, kind=ERROR, seq=task[0], source=task[1], payload=error_payload(exc))


def _with_spool(state, spool: str):
    """The worker state with a spool folder on this node. Dedupe's texts are always spooled
    (near detection on in the row path's copy of the settings): the Ray engine fingerprints
    them in a later stage, once the held-out rows are known."""
    import copy

    local = copy.copy(state)
    local.spool = spool
    local.dedupe = state.dedupe.model_copy(update={"near": True})
    return local


def _one_chunk(task: tuple, spool: str, columns: dict[str, list]) -> None:
    from instruct_data.pipeline.worker import process_chunk

    number, source_index = task[0], task[1]
    number, result = process_chunk(task)
    base = os.path.join(spool, str(number))
    conv = _lines(base + ".conv", result.conv_len)
    train = _lines(base + ".train", result.train_len)
    held = _lines(base + ".held", result.held_len)
    with open(base + ".items", "rb") as fh:
        texts = pickle.load(fh)
    for path in glob.glob(glob.escape(base) + ".*"):
        os.unlink(path)
    own_ids = dict(result.own_ids)  # a row's own `id` field, where it has one
    strata = result.strata
    record = 0
    dialogue = 0
    for k, row_id in enumerate(result.ids):
        keys = key_row(result, k)
        records, multi = keys["records"], keys["multi"]
        _append(columns, kind=KEPT, seq=number, source=source_index, index=k, position=result.position[k],
                id=row_id, conv=conv[k], train=b"".join(train[record:record + records]),
                held=held[dialogue] if multi else b"",
                texts=pickle.dumps(texts[record:record + records], protocol=pickle.HIGHEST_PROTOCOL),
                category=strata[result.stratum[k]], own_id=own_ids.get(k), **keys)
        record += records
        dialogue += multi
    for index, reject in zip(result.reject_at, result.rejects):
        _append(columns, kind=REJECT, seq=number, source=source_index, index=index,
                payload=pickle.dumps(reject, protocol=pickle.HIGHEST_PROTOCOL))
    _append(columns, kind=SUMMARY, seq=number, source=source_index, index=result.rows, position=len(result.ids),
            payload=pickle.dumps(Summary.of(number, source_index, result), protocol=pickle.HIGHEST_PROTOCOL))


# What a reject, summary or error row holds in the number columns it has no value for: a null
# there would make numpy read the whole column as float64 (Arrow's nulls become NaN), and a
# 64-bit hash (rank, prompt_key) as a float loses its low bits: the split then ranked rows
# differently from the local executor.
_NO_VALUE = {name: False if dtype == "bool" else 0 for name, dtype in KEY_COLUMNS} | {"position": 0}


def _append(columns: dict[str, list], **values) -> None:
    for name, column in columns.items():
        column.append(values.get(name, _NO_VALUE.get(name)))


def _lines(path: str, lengths) -> list[bytes]:
    """The spooled lines of one file, cut by the byte lengths the worker reported."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines, at = [], 0
    for n in lengths:
        lines.append(data[at:at + n])
        at += n
    return lines
