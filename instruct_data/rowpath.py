"""The one row path: a file's bytes to rows, and each row to a Conversation or a reject.

Every command (convert, validate, build, dedupe, to-multiturn) reads through here, in the
main process or in worker processes, so a row gives the same record, the same reject and
the same id whatever the command:

    spec = open_file(path, fmt=None, mapping=None, encoding="utf-8")   # format and mapping, from the head
    for chunk in file_chunks(spec, limit=None):      # small descriptors, cheap to send to a worker
        for row in chunk_rows(chunk):                # in the worker: the lines decoded, as io.read_rows does
            result = conversation_of(row, spec, source="mine")   # Conversation | PlainConversation | Reject

The steps, each in one place:
- bytes to rows: `io.read_rows` (whole files) and `chunk_rows` (a chunk), both through
  `io.json_line`, the one decoder of a JSON line;
- one raw record to several rows: `expand_record`, the hook for readers whose records hold
  several rows (register one with `register_expander`, see there);
- format and column mapping: `open_file`, from the first rows (formats.resolve_format);
- a row to a Conversation: `conversation_of`; the fast paths for plain instruction rows
  (formats.plainrow) and plain dialogues (formats.plaindialogue) sit inside it, after every
  check formats.parse_row makes;
- a row's id: `position_id` (formats.base), the file (its source name) and the position in
  it, never the row's own `id` field (kept as `own_id`), so ids never collide within a source
  (across a recipe's sources they can: the build rejects the later row as `duplicate_id`).
"""

from __future__ import annotations

import gzip
import io as _io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_data import ranges
from instruct_data.errors import InputError
from instruct_data.formats import DETECT_ROWS, FORMATS, parse_row, resolve_format, unused_columns
from instruct_data.formats import seed_tasks
from instruct_data.formats.base import position_id
from instruct_data.formats.plaindialogue import PlainDialogue, plain_dialogue
from instruct_data.formats.plainrow import PlainConversation, plain_conversation
from instruct_data.io import (GZIP_ERRORS, JSON_SUFFIXES, Row, base_suffix, chunked, is_json_array, json_line,
                              open_binary, read_rows)
from instruct_data.io import _checked as checked
from instruct_data.ranges import Piece
from instruct_data.schema import Conversation
from instruct_data.table import Reject

BLOCK_BYTES = 1 << 20  # one chunk of a JSON-lines file (about 1,600 Belle rows)
BATCH_ROWS = 1000  # one chunk of rows already read (an array, a table, the hub)

Result = Conversation | PlainConversation | PlainDialogue | Reject  # a Reject goes to the ledger as it is


# ------------------------------------------------------------------ one record, several rows
@dataclass(frozen=True)
class Expander:
    """A reader whose raw records each hold several rows (BELLE's seed tasks: one task, several
    instances). `split(row)` returns the rows of one record, each with `origin.instance` set
    (1-based), or [row] unchanged for a record it cannot split (that row is then rejected by
    `row_format`'s adapter with its reason); the rows are then parsed as `row_format`."""

    split: Callable[[Row], list[Row]]
    row_format: str
    # keep(record, [indices of its rows kept]) -> the record holding only those rows, for the
    # commands that write records back as they were read (dedupe); None: such files are not written back
    keep: Callable[[dict, list[int]], dict] | None = None


EXPANDERS: dict[str, Expander] = {}


def register_expander(fmt: str, split: Callable[[Row], list[Row]], row_format: str,
                      keep: Callable[[dict, list[int]], dict] | None = None) -> None:
    """Make format `fmt` a reader that expands each record into rows parsed as `row_format`.

    The format must also be in formats.FORMATS (for --format and detection); its adapter there
    sees the record itself only when `split` left it whole. Every command then reads it the
    same way: ids are `source:line#instance`, rejects name `file:line#instance`.
    """
    if row_format not in FORMATS:
        raise ValueError(f"unknown row format {row_format!r}")
    EXPANDERS[fmt] = Expander(split, row_format, keep)


# BELLE's seed tasks: one task line, one row per instance (formats/seed_tasks.py).
register_expander(seed_tasks.FORMAT, seed_tasks.split_task, seed_tasks.ROW_FORMAT, seed_tasks.keep_instances)


def expand_record(row: Row, fmt: str) -> list[Row]:
    """The rows of one raw record: itself, unless `fmt` is a format with an Expander."""
    expander = EXPANDERS.get(fmt)
    if expander is None or row.data is None:
        return [row]
    return expander.split(row)


def row_format(fmt: str) -> str:
    """The format the rows of a file in `fmt` are parsed as."""
    expander = EXPANDERS.get(fmt)
    return expander.row_format if expander is not None else fmt


# ------------------------------------------------------------------ a file
@dataclass
class FileSpec:
    """One input file, resolved from its first rows: what the workers need to read it."""

    path: str
    format: str
    mapping: dict[str, str] = field(default_factory=dict)
    encoding: str = "utf-8"
    json_lines: bool = False  # JSON lines (cut into raw line chunks), else rows read whole
    unused: list[str] = field(default_factory=list)  # non-empty columns no field reads (formats.unused_columns)
    # A workbook whose sheets have other columns: (format, mapping) per sheet name, each from
    # that sheet's own head (format and mapping above are the first sheet's).
    sheets: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def column_info(self) -> dict[str, Any]:
        """For the manifest's input entry: the columns left unused, and each sheet's reading
        where the sheets differ, when there are any."""
        info: dict[str, Any] = {"unused_columns": list(self.unused)} if self.unused else {}
        if self.sheets:
            info["sheets"] = {name: {"format": fmt, "map": mapping} for name, (fmt, mapping) in self.sheets.items()}
        return info

    def reading_of(self, row: Row) -> tuple[str, dict[str, str]]:
        """(format, mapping) that read this row: its sheet's, in a workbook whose sheets differ."""
        if self.sheets and row.origin.sheet in self.sheets:
            return self.sheets[row.origin.sheet]
        return self.format, self.mapping

    @property
    def seekable(self) -> bool:
        return not self.path.lower().endswith(".gz")


def open_file(path: str | Path, *, fmt: str | None = None, mapping: dict[str, str] | None = None,
              encoding: str = "utf-8", also_read: tuple[str | None, ...] = ()) -> FileSpec:
    """Resolve a file's format and mapping from its head. Fails (InputError: file:line: what
    is wrong) when the file cannot be read, none of its first rows parse, or no format fits.
    `also_read`: columns the command reads itself (to-multiturn's --group-by, --order-by), never
    reported unused."""
    _refuse_wide_json(Path(path), encoding)
    if not (fmt or mapping) and base_suffix(Path(path)) in WORKBOOK_SUFFIXES:
        by_sheet = _sheet_heads(Path(path), encoding)
        if len(by_sheet) > 1:
            return _workbook_spec(str(path), by_sheet, encoding, also_read)
    head = _head_rows(Path(path), encoding)
    name, used = resolve_format(head, str(path), fmt, mapping)
    # the raw records, before an expander splits them
    unused = [column for column in unused_columns(head, name, used) if column not in also_read]
    return FileSpec(str(path), name, used, encoding, is_json_lines(Path(path), encoding), unused)


WORKBOOK_SUFFIXES = (".xlsx", ".xls")


def _refuse_wide_json(path: Path, encoding: str) -> None:
    """JSON is cut into lines and pieces as bytes, which a UTF-16 or UTF-32 text does not allow:
    `--encoding utf-16` on such a file said "nothing in this file parses: truncated data"."""
    import codecs

    name = codecs.lookup(encoding).name
    if base_suffix(path) in JSON_SUFFIXES and name.startswith(("utf-16", "utf-32")):
        raise InputError(str(path), f"--encoding {encoding}: JSON files are read as UTF-8 or another byte "
                                    f"encoding (gb18030, big5); save it as UTF-8, e.g. iconv -f {encoding.upper()} "
                                    "-t UTF-8", line=1)


def _sheet_heads(path: Path, encoding: str) -> dict[str | None, list[Row]]:
    """The first rows of each sheet of a workbook, by sheet name (None: a single sheet)."""
    heads: dict[str | None, list[Row]] = {}
    for row in read_rows(path, encoding=encoding):
        head = heads.setdefault(row.origin.sheet, [])
        if len(head) < DETECT_ROWS:
            head.append(row)
    return heads


def _workbook_spec(path: str, by_sheet: dict, encoding: str, also_read: tuple) -> FileSpec:
    """A workbook of several sheets, each read by its own columns: a team's sheets rarely share
    headers (`问题, 答案` in one, `instruction, output` in the next). Where every sheet reads alike
    the spec is the plain one; an error names the sheet none of whose first rows fits."""
    readings = {sheet: resolve_format(head, f"{path}[{sheet}]") for sheet, head in by_sheet.items()}
    first_sheet = next(iter(readings))
    name, used = readings[first_sheet]
    unused = list(dict.fromkeys(column for sheet, head in by_sheet.items()
                                for column in unused_columns(head, *readings[sheet]) if column not in also_read))
    alike = all(reading == (name, used) for reading in readings.values())
    return FileSpec(path, name, used, encoding, False, unused, sheets={} if alike else readings)


def _head_rows(path: Path, encoding: str) -> list[Row]:
    """The first rows, to detect the format on. A JSON array's are read from its start alone
    (ranges.array_head): io.read_rows decodes the whole file first, which for a large array
    cost the main process more than cutting it into pieces does."""
    if path.is_file() and base_suffix(path) in JSON_SUFFIXES and is_json_array(path, encoding):
        head = ranges.array_head(path, encoding, DETECT_ROWS)
        if head is not None:
            return list(checked(path, iter(head)))
    return list(read_rows(path, encoding=encoding, limit=DETECT_ROWS))


def is_json_lines(path: Path, encoding: str) -> bool:
    """A JSON-lines file (a .json holding one array is not)."""
    return base_suffix(path) in JSON_SUFFIXES and not is_json_array(path, encoding)


def file_rows(spec: FileSpec, limit: int | None = None) -> Iterator[Row]:
    """Every row of a file, in order, records expanded."""
    for row in read_rows(spec.path, encoding=spec.encoding, limit=limit):
        yield from expand_record(row, spec.format)


def file_results(spec: FileSpec, source: str, *, label: str | None = None,
                 limit: int | None = None) -> Iterator[tuple[Row, Result]]:
    """(row, Conversation or Reject) for every row of a file, in this process: the chunks a
    worker would get, read here one after the other."""
    for chunk in file_chunks(spec, limit=limit):
        yield from chunk_results(chunk, source, label)


def read_conversations(path: str, *, fmt: str | None = None, source: str, mapping: dict[str, str] | None = None,
                       encoding: str = "utf-8", limit: int | None = None,
                       info: dict[str, Any] | None = None) -> tuple[str, Iterator[tuple[Row, Result]]]:
    """(format used, stream of (row, Conversation or Reject)) for one file. Pass a dict as
    `info` to learn the format and the column mapping used (`info["map"]`)."""
    spec = open_file(path, fmt=fmt, mapping=mapping, encoding=encoding)
    if info is not None:
        info.update(format=spec.format, map=spec.mapping, unused_columns=spec.unused,
                    **{key: value for key, value in spec.column_info().items() if key == "sheets"})
    return spec.format, file_results(spec, source, limit=limit)


# ------------------------------------------------------------------ a row
def conversation_of(row: Row, spec: FileSpec | str, source: str, *, mapping: dict[str, str] | None = None,
                    label: str | None = None) -> Result:
    """The Conversation of one row, or why it cannot be one. `source` names the row in its id
    (`source:position`); `label` (default: `source`) is the Conversation's source.

    A plain instruction row (formats.plainrow) and a plain dialogue (formats.plaindialogue: alpaca
    with history, a Belle transcript) skip pydantic: they pass every check parse_row makes on
    them, so the result is the same (tests/test_rowpath.py generates rows to check,
    tests/test_dialogue_fastpath.py tries hostile dialogues).
    """
    if isinstance(spec, FileSpec):
        fmt, mapping = spec.reading_of(row)
        fmt = row_format(fmt)
    else:
        fmt = row_format(spec)
    label = label if label is not None else source
    the_id = position_id(source, row.origin)
    data = row.data
    if data is not None and not mapping:
        plain = plain_conversation(data, fmt, label, row.origin, the_id)
        if plain is None:
            plain = plain_dialogue(data, fmt, label, row.origin, the_id)
        if plain is not None:
            return plain
    return parse_row(row, fmt, source=label, mapping=mapping, row_id=the_id)


# ------------------------------------------------------------------ chunks for workers
@dataclass
class Chunk:
    """A piece of one file for a worker: a byte range of a plain JSON-lines file (the worker
    reads it itself), raw lines (a .gz, or a range cut short by a limit), rows read here
    (arrays, tables, the hub), or, with `in_pieces`, a piece of an array or a table that the
    worker reads itself (ranges.Piece), or a whole workbook."""

    spec: FileSpec
    first_line: int = 1
    span: tuple[int, int] | None = None  # (offset, size) in bytes
    lines: list[bytes] | None = None
    rows: list[Row] | None = None
    count: int = 0  # rows in the chunk, where known before it is parsed (lines with a limit, rows)
    piece: Piece | None = None  # a piece of a JSON array, a CSV/TSV or a parquet file
    whole: bool = False  # the whole file (a workbook, which cannot be cut)
    shard: Any = None  # a hub.Shard: one shard file of a Belle copy, read through `datasets`
    part_rows: int = BATCH_ROWS  # a shard's rows processed at once (one block each, on Ray)


def file_chunks(spec: FileSpec, *, limit: int | None = None, block_bytes: int = BLOCK_BYTES,
                batch_rows: int = BATCH_ROWS, in_pieces: bool = False) -> Iterator[Chunk]:
    """The chunks of one file, in order; with `limit`, exactly its first `limit` rows.

    Arrays and tables are read here and sent as rows, unless `in_pieces` (and no limit): then
    each chunk says which piece of the file its worker reads (ranges.py: a JSON array or a
    CSV/TSV in byte ranges of about `block_bytes`, a parquet file in row ranges of about as
    many bytes, a workbook whole), and this process reads no row. A table whose quoting the
    scan cannot prove, and any .gz, are still read here."""
    if not spec.json_lines:
        pieces = _pieces(spec, block_bytes, batch_rows) if in_pieces and limit is None else None
        if pieces is not None:
            yield from pieces
            return
        for batch in chunked(file_rows(spec, limit), batch_rows):
            yield Chunk(spec, rows=batch, count=len(batch))
    elif spec.seekable and limit is None:
        for first_line, offset, size in line_blocks(spec.path, block_bytes):
            yield Chunk(spec, first_line, span=(offset, size))
    else:
        for first_line, lines, count in _line_chunks(spec, limit, block_bytes):
            yield Chunk(spec, first_line, lines=lines, count=count)


def _pieces(spec: FileSpec, block_bytes: int, batch_rows: int) -> list[Chunk] | None:
    """The chunks of an array or a table its workers read themselves; None: read it here."""
    path = Path(spec.path)
    suffix = base_suffix(path)
    if suffix in {".xlsx", ".xls"}:
        return [Chunk(spec, whole=True)]
    if suffix in JSON_SUFFIXES:
        pieces = ranges.array_pieces(path, spec.encoding, block_bytes)
    elif suffix in {".csv", ".tsv"}:
        pieces = ranges.table_pieces(path, suffix, spec.encoding, block_bytes)
    elif suffix == ".parquet":
        pieces = ranges.parquet_pieces(path, max(batch_rows, ranges.parquet_rows_in(path, block_bytes)))
    else:
        pieces = None
    return None if pieces is None else [Chunk(spec, piece=piece) for piece in pieces]


def _piece_rows(chunk: Chunk) -> Iterator[Row]:
    """The rows of a piece (or of a whole workbook), read here, records expanded."""
    spec, piece = chunk.spec, chunk.piece
    if chunk.whole:
        return file_rows(spec)
    suffix = base_suffix(Path(spec.path))
    if suffix in JSON_SUFFIXES:
        rows = ranges.array_piece_rows(spec.path, spec.encoding, piece)
    elif suffix == ".parquet":
        rows = ranges.parquet_piece_rows(spec.path, piece)
    else:
        rows = ranges.table_piece_rows(spec.path, suffix, spec.encoding, piece)
    return (expanded for row in rows for expanded in expand_record(row, spec.format))


def rows_chunks(spec: FileSpec, rows: Iterable[Row], batch_rows: int = BATCH_ROWS) -> Iterator[Chunk]:
    """Chunks of rows read elsewhere (a hub dataset streamed by `datasets`)."""
    for batch in chunked(rows, batch_rows):
        yield Chunk(spec, rows=batch, count=len(batch))


def chunk_rows(chunk: Chunk) -> Iterator[Row]:
    """The rows of a chunk, as io.read_rows reads them: blank lines are not rows, a bad line is
    a Row with `error` set, never an exception."""
    if chunk.rows is not None:
        return iter(chunk.rows)
    if chunk.piece is not None or chunk.whole:
        return _piece_rows(chunk)
    if chunk.shard is not None:
        from instruct_data import hub

        return (Row(origin, data) for origin, data in hub.shard_rows(chunk.shard))
    spec = chunk.spec
    lines = chunk.lines if chunk.lines is not None else read_span(spec.path, *chunk.span)
    return _decoded(spec, chunk.first_line, lines)


def _decoded(spec: FileSpec, first_line: int, lines: list[bytes]) -> Iterator[Row]:
    path, encoding = Path(spec.path), spec.encoding
    for line_no, raw in enumerate(lines, start=first_line):
        row = json_line(path, line_no, raw, encoding)
        if row is not None:
            yield from expand_record(row, spec.format)


def chunk_results(chunk: Chunk, source: str, label: str | None = None) -> Iterator[tuple[Row, Result]]:
    for row in chunk_rows(chunk):
        yield row, conversation_of(row, chunk.spec, source, label=label)


def line_blocks(path: str | Path, size: int) -> Iterator[tuple[int, int, int]]:
    """(first line number, byte offset, byte size) of blocks of about `size` bytes of a plain
    (not gzipped) text file, each ending at a line end: a worker reads its block itself
    instead of receiving the lines over a pipe."""
    line_no, offset = 1, 0
    with open(path, "rb") as fh:
        while block := fh.read(size):
            if not block.endswith(b"\n"):
                block += fh.readline()  # the line the block ends in, whole (or the end of the file)
            yield line_no, offset, len(block)
            line_no += block.count(b"\n")
            offset += len(block)


def read_span(path: str, offset: int, size: int) -> list[bytes]:
    """The raw lines of a block from line_blocks, newline kept."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return _io.BytesIO(fh.read(size)).readlines()


def _line_chunks(spec: FileSpec, limit: int | None, block_bytes: int) -> Iterator[tuple[int, list[bytes], int]]:
    """(first line number, raw lines, rows in them); stops exactly at `limit` rows (non-blank lines)."""
    line_no, remaining = 1, limit
    with open_binary(Path(spec.path)) as fh:
        while remaining is None or remaining > 0:
            lines, damage = _next_lines(fh, block_bytes)
            if not lines and damage is None:
                return
            nonblank = [i for i, line in enumerate(lines) if line.strip()]
            if remaining is not None:
                if len(nonblank) > remaining:
                    lines, damage = lines[:nonblank[remaining - 1] + 1], None
                    nonblank = nonblank[:remaining]
                remaining -= len(nonblank)
            if lines:
                yield line_no, lines, len(nonblank)
                line_no += len(lines)
            if damage is not None:  # a truncated or damaged .gz: every whole line before it was read
                raise InputError(spec.path, f"cannot read past this line: {damage}", line=line_no) from None


def _next_lines(fh, block_bytes: int) -> tuple[list[bytes], Exception | None]:
    """The next lines of about block_bytes, and the error a damaged .gz raised after them (None
    where none did). A .gz is read line by line, so that the lines before the damage are not lost
    with the block (readlines gives nothing when it fails part-way)."""
    lines: list[bytes] = []
    size = 0
    try:
        if not isinstance(fh, gzip.GzipFile):
            return fh.readlines(block_bytes), None
        for line in fh:
            lines.append(line)
            size += len(line)
            if size >= block_bytes:
                break
    except GZIP_ERRORS as exc:
        return lines, exc
    return lines, None


def json_line_rows(path: str | Path, encoding: str) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) of each row of a JSON-lines file, counted as the rows above are
    (a blank line, BOM aside, is not a row): for a second pass that copies rows unchanged."""
    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if raw.lstrip()[:1] == b"{":  # the usual case: an object, surely not blank
                yield line_no, raw
            elif json_line(Path(path), line_no, raw, encoding) is not None:
                yield line_no, raw
