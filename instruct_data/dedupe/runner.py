"""`idata dedupe`: files in, the kept rows (in each input's own format) and the ledger out.

Two passes over the inputs, so a million rows never sit in memory as text:
1. the worker processes turn chunks of rows (raw JSON lines, or rows read here from arrays
   and tables) into Conversations and fingerprints; this process keeps the ledger, in input
   order (rejects are written as they come), then decides the removals;
2. the rows are read again: each kept one is written unchanged, each removed one goes to
   duplicates.jsonl with its raw row; rejected ones were recorded in pass 1.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from instruct_data.dedupe.find import against_questions, decide_items
from instruct_data.dedupe.keys import record_texts
from instruct_data.dedupe.fingerprint import Against, Batch, worker_fingerprint, worker_pool
from instruct_data.dedupe.types import DedupeSettings, Item, Removal
from instruct_data.errors import IdataError
from instruct_data.io import (TABLE_CHUNK_ROWS, base_suffix, expand_inputs, open_binary, open_parquet, read_rows,
                              temp_beside)
from instruct_data.ledger import Ledger, Reject, Removed, Written, source_names
from instruct_data.rowpath import (EXPANDERS, chunk_results, expand_record, file_chunks, json_line_rows, open_file,
                                   read_conversations)
from instruct_data.schema import Conversation, Origin


SMALL_INPUT_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves


def default_workers(files: list[Path] = ()) -> int:
    if files and sum(path.stat().st_size for path in files) < SMALL_INPUT_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def conversation_item(conv: Conversation, order: int) -> Item:
    """The Item of a conversation: its final record's prompt and reply (keys.record_texts), so
    two dialogues match only when all of it does."""
    prompt, reply = record_texts(conv)[-1]
    return Item(id=conv.id, prompt=prompt, reply=reply, order=order)


def read_against(paths: Iterable[str], *, encoding: str = "utf-8") -> list[Item]:
    """Benchmark questions from files in any supported format: the prompt of each row."""
    questions = []
    files = expand_inputs(paths)
    for path, source in zip(files, source_names(files)):
        _, stream = read_conversations(str(path), source=f"against:{source}", encoding=encoding)
        for _, result in stream:
            # Any row the reader accepts: a Conversation, or a plain row or dialogue of the row
            # path's fast paths (formats/plainrow.py, plaindialogue.py), which are not one.
            if not isinstance(result, Reject):
                questions.append(conversation_item(result, 0))
    return questions


LINES_PER_TASK = 4096  # rows of an array or a table per task
RANGE_BYTES = 4 << 20  # bytes of a JSON-lines file per task


class _Plan:
    """What pass 1 learned about each file: its format, source name and rejected rows."""

    def __init__(self, path: Path, source: str, order_base: int):
        self.path, self.source = path, source
        self.order_base = order_base  # items are ordered by file, then line (or row)
        self.format = ""
        self.mapping: dict[str, str] = {}
        self.rejected: set[int] = set()  # row positions (0-based) already written as rejects

    @property
    def json_lines(self) -> bool:
        return _output_suffix(self.path) == ".jsonl"


def dedupe_files(
    inputs: Iterable[str],
    out_dir: str | Path,
    settings: DedupeSettings | None = None,
    *,
    against: Iterable[str] = (),
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    encoding: str = "utf-8",
    strict: bool = False,
    max_reject_rate: float = 0.5,
    workers: int | None = None,
    on_row: Callable[[], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    executor: Any = None,
) -> dict[str, Any]:
    """Deduplicate the inputs into `out_dir`; returns the manifest. `on_row` is called for
    each row read, `on_phase` with "deciding" and "writing" when those steps start.
    `executor` (instruct_data.executors; by default LocalExecutor(workers): give one or the
    other) runs the chunks and the decision; the runner enters it around its passes and asks
    it for its engine (dedupe_engine(): LocalDedupe here, ray_engine.dedupe.RayDedupe on Ray):
    its pool(settings, index, files) runs pass 1's chunks, its block_bytes(files) sizes a
    JSON-lines task, its decide(settings, questions, ledger, batches) makes the decision."""
    from instruct_data.executors import LocalExecutor

    if executor is not None and workers is not None:
        raise TypeError("dedupe_files: give `executor` or `workers`, not both (workers= is LocalExecutor(workers))")
    executor = executor if executor is not None else LocalExecutor(workers)
    on_phase = on_phase or (lambda phase: None)
    settings = settings or DedupeSettings()
    files = expand_inputs(inputs)  # a missing input fails here, before anything is written
    against = list(against)
    questions = against_questions(read_against(against, encoding=encoding)) if against else []
    out_dir = Path(out_dir)
    plans = [_Plan(path, source, n << 40) for n, (path, source) in enumerate(zip(files, source_names(files)))]
    ledger = Ledger(out_dir, command="dedupe", parameters={
        **settings.model_dump(), "against": against, "format": fmt, "map": mapping or {}, "encoding": encoding,
        "strict": strict, "max_reject_rate": max_reject_rate,
    })
    try:
        with executor:
            engine = executor.dedupe_engine()
            index = Against.build(questions, settings) if questions else None
            batches: list[Batch] = []
            range_bytes = engine.block_bytes(files)
            with engine.pool(settings, index, files) as pool:
                for plan in plans:
                    batches += _read_file(plan, pool, ledger, fmt=fmt, mapping=mapping, encoding=encoding,
                                          strict=strict, on_row=on_row, range_bytes=range_bytes)
                    ledger.check_reject_rate(plan.source, max_reject_rate)
            on_phase("deciding")
            # Either engine's removals are read item by item: get(item), and `clusters` counted.
            removals = engine.decide(settings, questions, ledger, batches)
            clusters = removals.clusters
            on_phase("writing")
            outputs = _write_kept(plans, out_dir, removals, ledger, encoding)
        ledger.extra["dedupe"] = {"against_questions": len(questions), "clusters": clusters}
        return ledger.finish(outputs=outputs)
    except BaseException:
        ledger.abort()
        raise


class LocalDedupe:
    """The local executor's engine for the runner (executors.LocalExecutor.dedupe_engine): a
    worker pool on this machine for pass 1, the decision in this process (dedupe.find)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers  # None: default_workers(files)

    def block_bytes(self, files: list[Path]) -> int:
        return RANGE_BYTES

    def pool(self, settings: DedupeSettings, index: Against | None, files: list[Path]):
        return worker_pool(self.workers or default_workers(files), settings, index)

    def decide(self, settings: DedupeSettings, questions: list[tuple[str, str]], ledger: Ledger,
               batches: list[Batch]) -> Removals:
        return decide_items(batches, settings, questions)


def _read_file(plan: _Plan, pool, ledger: Ledger, *, fmt, mapping, encoding, strict, on_row,
               range_bytes: int = RANGE_BYTES) -> list[Batch]:
    """Pass 1 over one file: rows are parsed and fingerprinted in the workers; the ledger is
    kept here, in input order."""
    # Reading the head detects the format and fails a file none of whose first rows parse.
    spec = open_file(plan.path, fmt=fmt, mapping=mapping, encoding=encoding)
    plan.format, plan.mapping = spec.format, spec.mapping
    ledger.add_input(plan.path, format=plan.format, source=plan.source)
    # JSON lines go as byte ranges each worker reads itself (raw lines for a .gz); arrays and
    # tables as rows read here.
    chunks = file_chunks(spec, block_bytes=range_bytes, batch_rows=LINES_PER_TASK)
    tasks = ((plan.source, plan.order_base, chunk) for chunk in chunks)
    batches = []
    position = 0
    for outcomes, batch in pool.map(_parse_chunk, tasks):
        for outcome in outcomes:
            ledger.read(plan.source)
            if on_row:
                on_row()
            if isinstance(outcome, Reject):
                ledger.outcome(plan.source, outcome, strict=strict)
                plan.rejected.add(position)
            elif outcome is not None:  # (own id, row id) of an item whose row has an `id` field
                ledger.note_own_id(*outcome)
            position += 1
        batches.append(batch)
    return batches


def _parse_chunk(task) -> tuple[list, Batch]:
    """In a worker: rows to Conversations (rowpath) to Items to fingerprints. Returns, per row,
    the ledger's Reject, or for an item None or (its own id, its id) when the row has an `id`."""
    source, order_base, chunk = task
    outcomes: list = []
    items: list[Item] = []
    for row, result in chunk_results(chunk, source):
        if isinstance(result, Reject):
            outcomes.append(result)
            continue
        outcomes.append((result.own_id, result.id) if result.own_id is not None else None)
        where = row.origin.row if row.origin.row is not None else row.origin.line
        items.append(conversation_item(result, order_base + (where or 0)))
    return outcomes, worker_fingerprint(items)


class Removals(Protocol):
    """What pass 2 asks of the decision: the Removal of an item (by its number), or None
    (steps.dedupe.ItemRemovals here, ray_engine.dedupe's stream on Ray)."""

    clusters: int

    def get(self, item: int) -> Removal | None: ...


def _write_kept(plans, out_dir: Path, removed: Removals, ledger: Ledger, encoding: str) -> list[Path]:
    """Pass 2: every row again, in the same order as pass 1; kept rows are written unchanged,
    removed ones go to duplicates.jsonl (rejected ones are there already)."""
    outputs: list[tuple[Path, Path]] = []  # (temporary, final): renamed only when all are written
    names: set[str] = set()
    item = 0  # the item number pass 1 gave the row: removals are keyed by it
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for plan in plans:
            suffix = _output_suffix(plan.path)
            stem = _visible(plan.source)
            name = stem + suffix
            if name in names:  # never two inputs into one output file
                name = f"{stem}-{len(names)}{suffix}"
            names.add(name)
            fd, tmp = temp_beside(out_dir / name)
            os.close(fd)
            outputs.append((tmp, out_dir / name))
            copy = (_copy_expanded if plan.format in EXPANDERS else
                    _copy_json_lines if plan.json_lines else _rewrite_rows)
            item = copy(plan, Path(tmp), item, removed, ledger, encoding)
    except BaseException:
        for tmp, _ in outputs:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in outputs:
        os.replace(tmp, final)
    return [final for _, final in outputs]


def _record(ledger: Ledger, plan: _Plan, removal: Removal, origin: Origin, raw: Any) -> None:
    ledger.outcome(plan.source, Removed(removal, origin, raw))


def _copy_json_lines(plan: _Plan, out: Path, item: int, removed: Removals, ledger: Ledger,
                     encoding: str) -> int:
    """A JSON-lines file: each kept line is copied as it is (as UTF-8), with no parse."""
    utf8 = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig", "ascii"}
    kept = 0
    with open(out, "wb") as sink:
        for position, (line_no, raw) in enumerate(json_line_rows(plan.path, encoding)):
            if position in plan.rejected:
                continue
            removal = removed.get(item)
            item += 1
            if removal is not None:
                data = json.loads(raw.decode(encoding).lstrip("\ufeff"))
                _record(ledger, plan, removal, Origin(file=str(plan.path), line=line_no), data)
                continue
            if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            sink.write(raw.rstrip(b"\r\n") if utf8 else raw.decode(encoding).rstrip("\r\n").encode("utf-8"))
            sink.write(b"\n")
            kept += 1
    ledger.outcome(plan.source, Written(kept))
    return item


def _copy_expanded(plan: _Plan, out: Path, item: int, removed: Removals, ledger: Ledger,
                   encoding: str) -> int:
    """A file whose records each hold several rows (BELLE's seed tasks: a task, its instances):
    each record is written back holding only its kept rows, in the file's own layout (JSON lines
    or one array); a record with none left (all removed, or the record rejected) is not written.
    Rows are counted as pass 1 did."""
    expander = EXPANDERS[plan.format]
    if expander.keep is None:
        raise IdataError(f"{plan.path}: dedupe cannot write {plan.format} records back; "
                         "`idata convert` it to JSON lines first")
    array = _output_suffix(plan.path) == ".json"
    records = []
    position = written = 0
    with open(out, "w", encoding="utf-8") as sink:
        for record in read_rows(plan.path, encoding=encoding):
            kept = []
            for index, row in enumerate(expand_record(record, plan.format)):
                position += 1
                if position - 1 in plan.rejected:
                    continue
                removal = removed.get(item)
                item += 1
                if removal is None:
                    kept.append(index)
                else:
                    _record(ledger, plan, removal, row.origin, row.data)
            if kept:
                written += len(kept)
                if array:
                    records.append(expander.keep(record.data, kept))
                else:
                    sink.write(json.dumps(expander.keep(record.data, kept), ensure_ascii=False) + "\n")
        if array:
            json.dump(records, sink, ensure_ascii=False, indent=1)
    ledger.outcome(plan.source, Written(written))
    return item


def _rewrite_rows(plan: _Plan, out: Path, item: int, removed: Removals, ledger: Ledger,
                  encoding: str) -> int:
    """A JSON array or a table: kept rows are written again in the same format."""
    if base_suffix(plan.path) == ".xlsx":
        return _rewrite_workbook(plan, out, item, removed, ledger)
    suffix = _output_suffix(plan.path)
    kept, columns = [], {}
    for position, row in enumerate(read_rows(plan.path, encoding=encoding)):
        if position in plan.rejected:
            continue
        columns.update(dict.fromkeys(row.data))  # a table with every row removed keeps its header
        removal = removed.get(item)
        item += 1
        if removal is None:
            kept.append(position if suffix == ".parquet" else row.data)  # parquet's are taken from the file
            ledger.outcome(plan.source, Written())
        else:
            _record(ledger, plan, removal, row.origin, row.data)
    if suffix == ".parquet":
        _write_parquet_rows(plan.path, kept, out)
    else:
        _write_table(kept, list(columns), out, suffix, plan.path)
    return item


def _rewrite_workbook(plan: _Plan, out: Path, item: int, removed: Removals, ledger: Ledger) -> int:
    """A workbook: every sheet, in order and by name, with its header and its kept rows, cell
    values typed as they were (numbers stay numbers, dates dates; a formula keeps the value it
    had, since rows it referred to may be gone). Rows are counted in the order read_rows gave."""
    import openpyxl

    from instruct_data.io import cell_text, sheet_records

    sheets = list(sheet_records(plan.path))
    several = sum(1 for sheet in sheets if sheet.rows) > 1
    book = openpyxl.Workbook(write_only=True)
    position = kept = 0
    for sheet in sheets:
        target = book.create_sheet(sheet.name)
        if sheet.columns:
            target.append(sheet.columns)
        for row_no, values, _ in sheet.rows:
            position += 1
            if position - 1 in plan.rejected:  # formula rows with no value are among these, with their reason
                continue
            removal = removed.get(item)
            item += 1
            if removal is None:
                target.append(list(values))
                kept += 1
            else:
                origin = Origin(file=str(plan.path), row=row_no, sheet=sheet.name if several else None)
                _record(ledger, plan, removal, origin, dict(zip(sheet.columns, map(cell_text, values))))
    book.save(out)
    ledger.outcome(plan.source, Written(kept))
    return item


def _visible(source: str) -> str:
    """A source name as a file name that `ls` shows: `./qa` (two inputs named qa in this folder)
    became `._qa.jsonl`, hidden, and the pattern macOS's AppleDouble files use."""
    return source.replace("/", "_").lstrip("._") or "input"


def _output_suffix(path: Path) -> str:
    """The input's own format: `.json` lines stay lines, `.gz` is not kept, `.xls` becomes `.xlsx`."""
    suffix = base_suffix(path)
    if suffix == ".json":
        with (gzip.open(path, "rt", encoding="utf-8", errors="ignore") if path.suffix.lower() == ".gz"
              else open(path, encoding="utf-8", errors="ignore")) as fh:
            head = fh.read(4096).lstrip("\ufeff \t\r\n")
        return ".json" if head.startswith("[") else ".jsonl"
    return ".xlsx" if suffix == ".xls" else suffix


def _write_table(rows: list[dict], columns: list[str], path: Path, suffix: str, source: Path) -> None:
    """JSON arrays and tables are written whole (they were small enough to be read whole)."""
    if suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    if suffix in {".csv", ".tsv"}:
        bom, newline = _text_layout(source)
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False,
                     encoding="utf-8-sig" if bom else "utf-8", lineterminator=newline)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        raise IdataError(f"{path}: cannot write {suffix} files")


def _text_layout(path: Path) -> tuple[bool, str]:
    """Whether a CSV/TSV opens with a byte-order mark, and the line ending of its first line, to
    write it back with them: Excel saves CSV with a BOM and CRLF, and reads a CSV without the
    BOM in the local code page (Chinese comes out garbled). The text is written as UTF-8, so a
    UTF-16 file's BOM becomes UTF-8's."""
    with open_binary(path) as fh:
        head = fh.read(1 << 16)
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    text = head.decode("utf-16" if utf16 else "latin-1", errors="ignore")
    first, newline, _ = text.partition("\n")
    return utf16 or head.startswith(codecs.BOM_UTF8), "\r\n" if newline and first.endswith("\r") else "\n"


def _write_parquet_rows(source: Path, kept: list[int], path: Path) -> None:
    """The kept rows (positions in the file) of a parquet file, taken from the file itself: its
    schema and every column stay as they were (an int64 column with a null stays int64; a
    pandas round trip made it float64, and failed on a null in a float column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = open_parquet(source)
    wanted = iter(kept)
    position = next(wanted, None)
    first = 0  # the position of the batch's first row
    with pq.ParquetWriter(path, parquet.schema_arrow) as writer:
        for batch in parquet.iter_batches(batch_size=TABLE_CHUNK_ROWS):
            taken = []
            while position is not None and position < first + batch.num_rows:
                taken.append(position - first)
                position = next(wanted, None)
            writer.write_batch(batch.take(pa.array(taken, type=pa.int64())))
            first += batch.num_rows
    if position is not None:  # never a kept row silently left out
        raise IdataError(f"{source}: row {position + 1} was read but is not in the file on a second read")
