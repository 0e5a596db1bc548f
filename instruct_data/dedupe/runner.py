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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from instruct_data.convert import check_reject_rate, source_names
from instruct_data.dedupe.find import against_questions, decide
from instruct_data.dedupe.fingerprint import Against, Batch, worker_fingerprint, worker_pool
from instruct_data.dedupe.types import DedupeSettings, Item, Removal
from instruct_data.errors import IdataError, InputError, StrictModeError
from instruct_data.formats import Rejected, parse_row, read_conversations, row_id
from instruct_data.io import (GZIP_ERRORS, Row, base_suffix, chunked, expand_inputs, json_line, line_blocks, read_rows,
                              temp_beside)
from instruct_data.ledger import Ledger
from instruct_data.formats.plainrow import plain_conversation
from instruct_data.schema import Conversation, Origin


SMALL_INPUT_BYTES = 4 << 20  # below this, starting worker processes costs more than it saves


def default_workers(files: list[Path] = ()) -> int:
    if files and sum(path.stat().st_size for path in files) < SMALL_INPUT_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def conversation_item(conv: Conversation, order: int, item_id: str | None = None) -> Item:
    """The Item of a conversation: the prompt is everything before the final reply (system,
    earlier rounds, the last question), so two dialogues match only when all of it does."""
    parts = [conv.system] if conv.system else []
    for question, answer in conv.history:
        parts += [question, answer]
    parts.append(conv.prompt.full_text)
    return Item(id=item_id or conv.id, prompt="\n".join(parts), reply=conv.reply, order=order)


def read_against(paths: Iterable[str], *, encoding: str = "utf-8") -> list[Item]:
    """Benchmark questions from files in any supported format: the prompt of each row."""
    questions = []
    files = expand_inputs(paths)
    for path, source in zip(files, source_names(files)):
        _, stream = read_conversations(str(path), source=f"against:{source}", encoding=encoding)
        for _, result in stream:
            if isinstance(result, Conversation):
                questions.append(conversation_item(result, 0))
    return questions


LINES_PER_TASK = 4096


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
) -> dict[str, Any]:
    """Deduplicate the inputs into `out_dir`; returns the manifest. `on_row` is called for
    each row read, `on_phase` with "deciding" and "writing" when those steps start."""
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
        index = Against.build(questions, settings) if questions else None
        batches: list[Batch] = []
        with worker_pool(workers or default_workers(files), settings, index) as pool:
            for plan in plans:
                batches += _read_file(plan, pool, ledger, fmt=fmt, mapping=mapping, encoding=encoding,
                                      strict=strict, on_row=on_row)
                check_reject_rate(ledger, plan.source, max_reject_rate)
        on_phase("deciding")
        _unique_ids(batches)
        removals = decide(batches, settings, questions)
        on_phase("writing")
        outputs = _write_kept(plans, out_dir, removals, ledger, encoding)
        ledger.extra["dedupe"] = {"against_questions": len(questions),
                                  "clusters": len({r.cluster for r in removals.values()})}
        return ledger.finish(outputs=outputs)
    except BaseException:
        ledger.abort()
        raise


def _read_file(plan: _Plan, pool, ledger: Ledger, *, fmt, mapping, encoding, strict, on_row) -> list[Batch]:
    """Pass 1 over one file: rows are parsed and fingerprinted in the workers; the ledger is
    kept here, in input order."""
    info: dict[str, Any] = {}
    # Reading the head detects the format and fails a file none of whose first rows parse.
    _, stream = read_conversations(str(plan.path), fmt=fmt, source=plan.source, mapping=mapping,
                                   encoding=encoding, info=info)
    plan.format, plan.mapping = info["format"], info["map"]
    ledger.add_input(plan.path, format=plan.format, source=plan.source)
    stream.close()  # the workers parse the rows, not this process
    if plan.json_lines:
        # Raw lines. A plain file is cut into byte ranges that each worker reads itself (no
        # bytes through the pipe); a .gz cannot seek, so its lines are sent.
        chunks = _line_chunks(plan.path) if plan.path.suffix.lower() == ".gz" else _byte_ranges(plan.path)
    else:
        chunks = chunked(read_rows(plan.path, encoding=encoding), LINES_PER_TASK)  # arrays and tables: read here
    tasks = ((plan.path, plan.format, plan.source, plan.mapping, encoding, plan.order_base, chunk) for chunk in chunks)
    batches = []
    position = 0
    for outcomes, batch in pool.map(_parse_chunk, tasks):
        for outcome in outcomes:
            ledger.read(plan.source)
            if on_row:
                on_row()
            if outcome is not None:
                reason, detail, origin, raw, rid = outcome
                if strict:
                    raise StrictModeError(f"{origin}: {reason}: {detail}")
                ledger.reject("read", reason, detail, origin, raw, source=plan.source, row_id=rid)
                plan.rejected.add(position)
            position += 1
        batches.append(batch)
    return batches


def _line_chunks(path: Path) -> Iterator[list[tuple[int, bytes]]]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    chunk: list[tuple[int, bytes]] = []
    line_no = 0
    with opener(path, "rb") as fh:
        try:
            for line_no, raw in enumerate(fh, start=1):
                chunk.append((line_no, raw))
                if len(chunk) == LINES_PER_TASK:
                    yield chunk
                    chunk = []
        except GZIP_ERRORS as exc:
            raise InputError(str(path), f"cannot read past this line: {exc}", line=line_no + 1) from None
    if chunk:
        yield chunk


class _Range:
    """Lines [first_line, ...) of a file: bytes [start, stop), each line ending in \\n."""

    def __init__(self, start: int, stop: int, first_line: int):
        self.start, self.stop, self.first_line = start, stop, first_line

    def lines(self, path: Path) -> Iterator[tuple[int, bytes]]:
        with open(path, "rb") as fh:
            fh.seek(self.start)
            data = fh.read(self.stop - self.start)
        pieces = data.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()  # the range ends with a newline: no line after it
        return enumerate(pieces, start=self.first_line)


def _byte_ranges(path: Path, size: int = 4 << 20) -> Iterator[_Range]:
    """Ranges of about `size` bytes that end at a line end, with the number of their first line."""
    for first_line, offset, length in line_blocks(path, size):
        yield _Range(offset, offset + length, first_line)

def _task_rows(path: Path, encoding: str, chunk) -> Iterator[Row | None]:
    """The rows of a task: a byte range or the lines of a JSON-lines file (read as
    io.read_rows reads them; None for a blank line), or Rows the main process read."""
    if isinstance(chunk, _Range):
        chunk = chunk.lines(path)
    elif not (chunk and isinstance(chunk[0], tuple)):
        return iter(chunk)
    return (json_line(path, line_no, raw, encoding) for line_no, raw in chunk)


def _parse_chunk(task) -> tuple[list, Batch]:
    """In a worker: rows to Conversations to Items to fingerprints. Returns, per row, None
    (an item) or what the ledger needs to reject it."""
    path, fmt, source, mapping, encoding, order_base, chunk = task
    outcomes: list = []
    items: list[Item] = []
    for row in _task_rows(path, encoding, chunk):
        if row is None:  # a blank line: not a row
            continue
        order = order_base + (row.origin.line or row.origin.row or 0)
        item = _plain_item(row, fmt, source, mapping, order)
        if item is not None:
            outcomes.append(None)
            items.append(item)
            continue
        result = parse_row(row, fmt, source=source, mapping=mapping)
        if isinstance(result, Rejected):
            raw = row.data if row.data is not None else row.raw
            outcomes.append((result.reason, result.detail, row.origin, raw, row_id(row, source)))
        else:
            outcomes.append(None)
            items.append(conversation_item(result, order))
    return outcomes, worker_fingerprint(items)


def _plain_item(row: Row, fmt: str, source: str, mapping, order: int) -> Item | None:
    """The Item of a plain single-turn instruction row, without building a validated
    Conversation (about 3 µs a row instead of 12): instruct_data.formats.plainrow accepts only rows
    whose Conversation it would equal (tests/test_plainrow.py); None for any other row."""
    if mapping or row.data is None:
        return None
    position = row.origin.line if row.origin.line is not None else row.origin.row
    plain = plain_conversation(row.data, fmt, source, {}, position)
    if plain is None:
        return None
    return Item(id=plain.id, prompt=plain.prompt.full_text, reply=plain.reply, order=order)


def _unique_ids(batches: list[Batch]) -> None:
    """A file's own ids can repeat (and two files can share one): make each removal name one
    row, by adding the line to every repeat of an id."""
    seen: set[str] = set()
    for batch in batches:
        for i, item_id in enumerate(batch.ids):
            if item_id in seen:
                batch.ids[i] = item_id = f"{item_id}@{int(batch.order[i]) & ((1 << 40) - 1)}"
            seen.add(item_id)


def _write_kept(plans, out_dir: Path, removed: dict[int, Removal], ledger: Ledger, encoding: str) -> list[Path]:
    """Pass 2: every row again, in the same order as pass 1; kept rows are written unchanged,
    removed ones go to duplicates.jsonl (rejected ones are there already)."""
    outputs: list[tuple[Path, Path]] = []  # (temporary, final): renamed only when all are written
    names: set[str] = set()
    item = 0  # the item number pass 1 gave the row: removals are keyed by it
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for plan in plans:
            suffix = _output_suffix(plan.path)
            name = plan.source.replace("/", "_") + suffix
            if name in names:  # never two inputs into one output file
                name = f"{plan.source.replace('/', '_')}-{len(names)}{suffix}"
            names.add(name)
            fd, tmp = temp_beside(out_dir / name)
            os.close(fd)
            outputs.append((tmp, out_dir / name))
            copy = _copy_json_lines if plan.json_lines else _rewrite_rows
            item = copy(plan, Path(tmp), item, removed, ledger, encoding)
    except BaseException:
        for tmp, _ in outputs:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in outputs:
        os.replace(tmp, final)
    return [final for _, final in outputs]


def _record(ledger: Ledger, plan: _Plan, removal: Removal, origin: Origin, raw: Any) -> None:
    ledger.duplicate(row_id=removal.id, duplicate_of=removal.duplicate_of, method=removal.method,
                     similarity=removal.similarity, source=plan.source, origin=origin, cluster=removal.cluster,
                     raw=raw)


def _copy_json_lines(plan: _Plan, out: Path, item: int, removed: dict[int, Removal], ledger: Ledger,
                     encoding: str) -> int:
    """A JSON-lines file: each kept line is copied as it is (as UTF-8), with no parse."""
    utf8 = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig", "ascii"}
    kept = 0
    with open(out, "wb") as sink:
        for position, (line_no, raw) in enumerate(_json_line_rows(plan.path, encoding)):
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
    ledger.written(plan.source, kept)
    return item


def _json_line_rows(path: Path, encoding: str) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each row of a JSON-lines file, counted as io.read_rows counts
    them: a blank line (after decoding, BOM aside) is not a row."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            head = raw.lstrip()
            if head[:1] == b"{":  # the usual case: an object, surely not blank
                yield line_no, raw
                continue
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                yield line_no, raw  # a reject from pass 1: skipped by position
                continue
            if line_no == 1:
                text = text.lstrip("\ufeff")
            if text.strip():
                yield line_no, raw


def _rewrite_rows(plan: _Plan, out: Path, item: int, removed: dict[int, Removal], ledger: Ledger,
                  encoding: str) -> int:
    """A JSON array or a table: kept rows are written again in the same format."""
    rows, columns = [], {}
    for position, row in enumerate(read_rows(plan.path, encoding=encoding)):
        if position in plan.rejected:
            continue
        columns.update(dict.fromkeys(row.data))  # a table with every row removed keeps its header
        removal = removed.get(item)
        item += 1
        if removal is None:
            rows.append(row.data)
            ledger.written(plan.source)
        else:
            _record(ledger, plan, removal, row.origin, row.data)
    _write_table(rows, list(columns), out, _output_suffix(plan.path))
    return item


def _output_suffix(path: Path) -> str:
    """The input's own format: `.json` lines stay lines, `.gz` is not kept, `.xls` becomes `.xlsx`."""
    suffix = base_suffix(path)
    if suffix == ".json":
        with (gzip.open(path, "rt", encoding="utf-8", errors="ignore") if path.suffix.lower() == ".gz"
              else open(path, encoding="utf-8", errors="ignore")) as fh:
            head = fh.read(4096).lstrip("\ufeff \t\r\n")
        return ".json" if head.startswith("[") else ".jsonl"
    return ".xlsx" if suffix == ".xls" else suffix


def _write_table(rows: list[dict], columns: list[str], path: Path, suffix: str) -> None:
    """JSON arrays and tables are written whole (they were small enough to be read whole)."""
    if suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    if suffix in {".csv", ".tsv"}:
        frame.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        raise IdataError(f"{path}: cannot write {suffix} files")
