"""`idata dedupe`: files in, the kept rows (in each input's own format) and the ledger out.

Two passes over the inputs, so a million rows never sit in memory as text:
1. read every row as a Conversation (rejecting the unreadable), fingerprint it (in worker
   processes), and decide the removals;
2. read the raw rows again and write each kept one unchanged; each removed one goes to
   duplicates.jsonl with its raw row, each rejected one is already in rejects.jsonl.
"""

from __future__ import annotations

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
from instruct_data.io import GZIP_ERRORS, JsonlWriter, Row, _json_line, atomic_path, base_suffix, expand_inputs, read_rows
from instruct_data.ledger import Ledger
from instruct_data.schema import Conversation, Origin


def default_workers() -> int:
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
) -> dict[str, Any]:
    """Deduplicate the inputs into `out_dir`; returns the manifest."""
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
        with worker_pool(workers or default_workers(), settings, index) as pool:
            for plan in plans:
                batches += _read_file(plan, pool, ledger, fmt=fmt, mapping=mapping, encoding=encoding,
                                      strict=strict, on_row=on_row)
                check_reject_rate(ledger, plan.source, max_reject_rate)
        _unique_ids(batches)
        removals = decide(batches, settings, questions)
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
    if plan.json_lines:
        stream.close()
        chunks = _line_chunks(plan.path)  # raw lines: the workers parse them too
    else:
        chunks = _row_chunks(row for row, _ in stream)  # arrays and tables: read here, parsed there
    tasks = ((plan.path, plan.format, plan.source, plan.mapping, encoding, plan.order_base, chunk) for chunk in chunks)
    batches = []
    position = 0
    for outcomes, batch in pool.imap(_parse_chunk, tasks, chunksize=1):
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


def _row_chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == LINES_PER_TASK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_chunk(task) -> tuple[list, Batch]:
    """In a worker: rows to Conversations to Items to fingerprints. Returns, per row, None
    (an item) or what the ledger needs to reject it."""
    path, fmt, source, mapping, encoding, order_base, chunk = task
    if chunk and isinstance(chunk[0], tuple):
        rows = (_json_line(path, line_no, raw, encoding) for line_no, raw in chunk)
    else:
        rows = iter(chunk)
    outcomes: list = []
    items: list[Item] = []
    for row in rows:
        if row is None:  # a blank line: not a row
            continue
        result = parse_row(row, fmt, source=source, mapping=mapping)
        if isinstance(result, Rejected):
            raw = row.data if row.data is not None else row.raw
            outcomes.append((result.reason, result.detail, row.origin, raw, row_id(row, source)))
        else:
            outcomes.append(None)
            items.append(conversation_item(result, order_base + (row.origin.line or row.origin.row or 0)))
    return outcomes, worker_fingerprint(items)


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
    outputs = []
    names: set[str] = set()
    item = 0  # the item number pass 1 gave the row: removals are keyed by it
    for plan in plans:
        suffix = _output_suffix(plan.path)
        name = plan.source.replace("/", "_") + suffix
        if name in names:  # never two inputs into one output file
            name = f"{plan.source.replace('/', '_')}-{len(names)}{suffix}"
        names.add(name)
        writer = _writer_for(out_dir / name, suffix)
        raw_lines = suffix == ".jsonl" and base_suffix(plan.path) in {".jsonl", ".ndjson", ".json"}
        rows = _raw_json_lines(plan.path, encoding) if raw_lines else _parsed_rows(plan.path, encoding)
        try:
            for position, (origin, text, data) in enumerate(rows):
                if position in plan.rejected:
                    continue
                removal = removed.get(item)
                item += 1
                if removal is None:
                    writer.write_line(text) if raw_lines else writer.write(data)
                    ledger.written(plan.source)
                else:
                    raw = json.loads(text) if data is None else data
                    ledger.duplicate(row_id=removal.id, duplicate_of=removal.duplicate_of, method=removal.method,
                                     similarity=removal.similarity, source=plan.source, origin=origin,
                                     cluster=removal.cluster, raw=raw)
            outputs.append(writer.commit())
        except BaseException:
            writer.abort()
            raise
    return outputs


def _parsed_rows(path: Path, encoding: str) -> Iterator[tuple[Origin, None, dict | None]]:
    for row in read_rows(path, encoding=encoding):
        yield row.origin, None, row.data


def _raw_json_lines(path: Path, encoding: str) -> Iterator[tuple[Origin, str | None, None]]:
    """The rows of a JSON-lines file as text, counted as io.read_rows counts them (blank lines
    are not rows), so a kept row is copied without a parse and a re-dump."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                yield Origin(file=str(path), line=line_no), None, None  # a reject from pass 1
                continue
            if line_no == 1:
                text = text.lstrip("\ufeff")
            if not text.strip():
                continue
            yield Origin(file=str(path), line=line_no), text.rstrip("\r\n"), None


def _output_suffix(path: Path) -> str:
    """The input's own format: `.json` lines stay lines, `.gz` is not kept, `.xls` becomes `.xlsx`."""
    suffix = base_suffix(path)
    if suffix == ".json":
        with (gzip.open(path, "rt", encoding="utf-8", errors="ignore") if path.suffix.lower() == ".gz"
              else open(path, encoding="utf-8", errors="ignore")) as fh:
            head = fh.read(4096).lstrip("\ufeff \t\r\n")
        return ".json" if head.startswith("[") else ".jsonl"
    return ".xlsx" if suffix == ".xls" else suffix


class _LineWriter(JsonlWriter):
    """JSON lines, where a kept row's own text can be copied as it is."""

    def write_line(self, text: str) -> None:
        self._fh.write(text)
        self._fh.write("\n")
        self.count += 1


def _writer_for(path: Path, suffix: str):
    if suffix in {".jsonl", ".ndjson"}:
        return _LineWriter(path)
    return _CollectingWriter(path, suffix)


class _CollectingWriter:
    """JSON arrays and tables are written whole at the end (they are small enough to read whole)."""

    def __init__(self, path: Path, suffix: str):
        self.path, self.suffix = path, suffix
        self.rows: list[dict] = []

    def write(self, row: dict) -> None:
        self.rows.append(row)

    def commit(self) -> Path:
        with atomic_path(self.path) as tmp:
            if self.suffix == ".json":
                tmp.write_text(json.dumps(self.rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
            else:
                self._table(tmp)
        return self.path

    def _table(self, tmp: Path) -> None:
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        if self.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        elif self.suffix == ".tsv":
            frame.to_csv(tmp, sep="\t", index=False)
        elif self.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif self.suffix in {".xlsx", ".xls"}:
            frame.to_excel(tmp, index=False, engine="openpyxl")
        else:
            raise IdataError(f"{self.path}: cannot write {self.suffix} files")

    def abort(self) -> None:
        self.rows = []
