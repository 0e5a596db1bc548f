"""Pieces of files that are not JSON lines, found without parsing them, for parallel readers.

A worker reads its piece itself, so the process that plans the work never parses rows:

- a JSON array: byte ranges that start at a top-level item (`array_pieces`: a scan that tracks
  strings, escapes and depth with numpy, without parsing), read by `array_piece_rows`;
- CSV/TSV: byte ranges that start at a record (`table_pieces`: a quote-aware scan), each read
  with the file's header in front of it (`table_piece_rows`). A file whose quoting the scan
  cannot prove (a quote inside an unquoted cell, a lone CR as line end, a line that starts
  with a space) is not cut: `table_pieces` returns None and the caller reads it whole;
- parquet: row ranges cut at row groups (`parquet_pieces`, `parquet_piece_rows`).

A piece reader gives the rows, origins and errors that `io.read_rows` gives for the same rows
(tests/test_ranges.py compares them on generated files). Where a piece holds something a
whole-file read fails on, the piece reader reads the file as io.read_rows does and raises
that same error (`file:line: what is wrong`): a broken file fails alike in every engine.
"""

from __future__ import annotations

import codecs
import io as _io
import json
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from instruct_data.errors import InputError
from instruct_data.io import (TABLE_CHUNK_ROWS, Row, _as_json_reads, _has_utf16_bom, _read_table, parquet_columns,
                             read_rows)
from instruct_data.schema import Origin

SCAN_BYTES = 16 << 20  # bytes scanned at once: the scan's memory is a few times this
JSON_SPACE = b" \t\r\n"  # JSON's whitespace, as io._skip_space skips it between items
QUOTE, BACKSLASH, NEWLINE, CR, COMMA, SPACE, TAB = 34, 92, 10, 13, 44, 32, 9

# What opens (+1) or closes (-1) a level of JSON; the comma (0) is the other structural byte.
_DEPTH = np.zeros(256, np.int64)
_DEPTH[[ord("{"), ord("[")]] = 1
_DEPTH[[ord("}"), ord("]")]] = -1

# Encodings in which the bytes a table scan looks for (quote, separators, CR, LF: all below
# 0x30) never occur inside a multi-byte character. (Not UTF-16; and for JSON only UTF-8: in
# GBK a backslash or a brace can be the second byte of a character.)
_TABLE_ENCODINGS = {"utf-8", "utf-8-sig", "ascii", "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "latin-1",
                    "iso8859-1", "cp1252", "shift_jis", "euc_jp", "euc_kr", "cp936", "cp950"}


@dataclass(frozen=True)
class Piece:
    """A part of one file for one worker: bytes [offset, offset + size) of a JSON array or a
    table (rows [offset, offset + size) of a parquet file), whose first row is row `first_row`
    (1-based, as the whole file's reader numbers it)."""

    offset: int
    size: int
    first_row: int
    first_line: int = 1  # a JSON array: the line the piece's first byte is on
    last: bool = False  # a JSON array: the piece that holds the closing `]`
    header: bytes = b""  # a table: its bytes up to the end of its header record
    line_shift: int = 0  # a table: the file's parser line less the piece's (for messages)
    rows: int = 0  # a table: the rows in the piece (checked when it is read)


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return ""


def _blocks(view, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    """(offset, bytes) blocks of view[start:stop], none ending in a backslash or a CR (so an
    escape, or a CR LF pair, is never cut in two). Pages already scanned are let go: the scan's
    memory stays a block's, not the file's."""
    at = start
    while at < stop:
        end = min(stop, at + SCAN_BYTES)
        while end < stop and view[end - 1] in (BACKSLASH, CR):
            end += 1
        yield at, np.frombuffer(view[at:end], np.uint8)
        if isinstance(view, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
            first = at - at % mmap.PAGESIZE
            view.madvise(mmap.MADV_DONTNEED, first, end - first)
        at = end


def _unescaped_quotes(data: np.ndarray) -> np.ndarray:
    """Positions of the quotes of `data` that no backslash escapes (an odd run of backslashes
    right before a quote escapes it)."""
    quotes = np.flatnonzero(data == QUOTE)
    backslashes = np.flatnonzero(data == BACKSLASH)
    if backslashes.size and quotes.size:
        breaks = np.flatnonzero(np.diff(backslashes) != 1)
        starts = backslashes[np.r_[0, breaks + 1]]
        ends = backslashes[np.r_[breaks, backslashes.size - 1]]
        escaped = ends[(ends - starts) % 2 == 0] + 1
        quotes = quotes[~np.isin(quotes, escaped, assume_unique=True)]
    return quotes


class _JsonScan:
    """A scan of JSON text, block after block: whether a string is open, and the depth."""

    def __init__(self, depth: int = 0):
        self.in_string = False
        self.depth = depth

    def block(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, depth after each) of the structural bytes of `data` outside strings."""
        quotes = _unescaped_quotes(data)
        folded = data | 0x20  # `[` and `{` fold to 0x7B, `]` and `}` to 0x7D (cheaper than a table lookup)
        marks = np.flatnonzero((folded == 0x7B) | (folded == 0x7D) | (data == COMMA))
        outside = (np.searchsorted(quotes, marks) + self.in_string) % 2 == 0
        marks = marks[outside]
        depth = self.depth + np.cumsum(_DEPTH[data[marks]])
        self.in_string = bool((quotes.size + self.in_string) % 2)
        if depth.size:
            self.depth = int(depth[-1])
        return marks, depth


def _mapped(path: Path):
    fh = open(path, "rb")
    try:
        return fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except BaseException:
        fh.close()
        raise


# ---------------------------------------------------------------------------------------- JSON arrays
def array_pieces(path: str | Path, encoding: str, target: int) -> list[Piece] | None:
    """Pieces of about `target` bytes of a JSON array file, each starting at a top-level item;
    None for a file that is not cut (not UTF-8, gzipped, empty). A malformed array is cut too:
    the piece holding the fault fails as the whole file fails (array_piece_rows)."""
    path = Path(path)
    if path.suffix.lower() == ".gz" or _codec(encoding) not in {"utf-8", "utf-8-sig"} or not path.stat().st_size:
        return None
    fh, mm = _mapped(path)
    try:
        return _array_pieces(mm, target)
    finally:
        mm.close()
        fh.close()


def _array_pieces(view, target: int) -> list[Piece] | None:
    start = view.find(b"[")
    if start < 0:
        return None
    scan = _JsonScan()
    pieces: list[Piece] = []
    begin, first_row, first_line = start + 1, 1, view[:start + 1].count(b"\n") + 1
    end, commas_before = len(view), 0
    for offset, data in _blocks(view, start, len(view)):
        marks, depth = scan.block(data)
        closing = np.flatnonzero(depth == 0)
        if closing.size:  # the array's `]`: what follows it is never read (as io.read_rows)
            end = offset + int(marks[closing[0]]) + 1
            marks, depth = marks[:closing[0]], depth[:closing[0]]
        commas = offset + marks[(depth == 1) & (data[marks] == COMMA)]
        while True:  # cut after the first top-level comma at or past each target
            at = int(np.searchsorted(commas, begin + target - 1, side="left"))
            if at >= commas.size:
                break
            cut = int(commas[at]) + 1
            pieces.append(Piece(begin, cut - begin, first_row, first_line))
            first_line += view[begin:cut].count(b"\n")
            first_row = commas_before + at + 2  # the item after the (at+1)-th comma of the block
            begin = cut
        commas_before += commas.size
        if closing.size:
            break
    pieces.append(Piece(begin, end - begin, first_row, first_line, last=True))
    return pieces


def array_piece_rows(path: str, encoding: str, piece: Piece) -> Iterator[Row]:
    """The rows of one piece of a JSON array, as io.read_rows gives them (origin: line and index)."""
    with open(path, "rb") as fh:
        fh.seek(piece.offset)
        data = fh.read(piece.size)
    spans = _item_spans(data, piece.last)
    if spans is None:
        _fail_as_whole(path, encoding)
    name = str(Path(path))
    line, counted = piece.first_line, 0
    for index, (start, stop) in enumerate(spans, start=piece.first_row):
        line += data.count(b"\n", counted, start)
        counted = start
        item = _item(data[start:stop])
        if item is _BROKEN:
            _fail_as_whole(path, encoding)
        origin = Origin(file=name, line=line, row=index)
        if isinstance(item, dict):
            yield Row(origin, item)
        else:
            yield Row(origin, None, f"expected a JSON object, got {type(item).__name__}",
                      raw=json.dumps(item, ensure_ascii=False))


def _item_spans(data: bytes, last: bool) -> list[tuple[int, int]] | None:
    """(start, stop) of each item of a piece, whitespace trimmed; None where the piece is not a
    run of items separated by commas (what io.read_rows would fail on)."""
    buffer = np.frombuffer(data, np.uint8)
    scan = _JsonScan(depth=1)
    marks, depth = scan.block(buffer)
    closing = np.flatnonzero(depth == 0)
    if last != bool(closing.size):
        return None  # an array never closed, or closed early (the driver's scan said otherwise)
    stop = int(marks[closing[0]]) if closing.size else len(data)
    if closing.size:
        marks, depth = marks[:closing[0]], depth[:closing[0]]
    bounds = [-1, *marks[(depth == 1) & (buffer[marks] == COMMA)].tolist(), stop]
    spans = []
    final = len(bounds) - 2
    for k in range(final + 1):
        start, end = bounds[k] + 1, bounds[k + 1]
        while start < end and data[start] in JSON_SPACE:
            start += 1
        while end > start and data[end - 1] in JSON_SPACE:
            end -= 1
        if start < end:
            if k == final and not last:
                return None  # a piece before the last ends right after a comma
            spans.append((start, end))
        elif k != final:
            return None  # a value missing between two commas (after the last one, before `]`, is allowed)
    return spans


_BROKEN = object()


def _item(raw: bytes):
    """One array item as json.loads reads it (orjson first where it reads the same: see
    io.json_line), or _BROKEN where json cannot read it."""
    try:
        item = orjson.loads(raw)
        if type(item) is dict and _as_json_reads(item):
            return item
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return _BROKEN


def _fail_as_whole(path: str, encoding: str):
    """Raise what reading the whole file raises (the piece holds a fault io.read_rows fails on)."""
    for _ in read_rows(path, encoding=encoding):
        pass
    raise InputError(str(path), "the file reads whole but not in pieces: please report this "
                                "(a JSON array the scan for items misread)")


# ---------------------------------------------------------------------------------------- CSV and TSV
def table_pieces(path: str | Path, suffix: str, encoding: str, target: int) -> list[Piece] | None:
    """Pieces of about `target` bytes of a CSV or TSV file, each starting at a record; None
    for a file that is read whole (gzipped, UTF-16, an encoding whose multi-byte characters may
    hold these bytes, or quoting the scan cannot prove)."""
    path = Path(path)
    if path.suffix.lower() == ".gz" or _codec(encoding) not in _TABLE_ENCODINGS or not path.stat().st_size \
            or _has_utf16_bom(path):
        return None
    fh, mm = _mapped(path)
    try:
        separator = TAB if suffix == ".tsv" else COMMA
        found = _record_ends(mm, separator)
        return None if found is None else _table_pieces(fh, len(mm), found, separator, target)
    finally:
        mm.close()
        fh.close()


def _record_ends(view, separator: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(positions of the newlines that end a record (not inside a quoted cell), whether a CR
    stands before each, the byte after each), or None when the file's quoting is not the plain
    kind the scan can follow: every quote that opens a cell starts it, every quote that closes
    one ends it (or is doubled)."""
    edge = np.zeros(256, bool)  # what may stand before an opening quote or after a closing one
    edge[[separator, NEWLINE, CR, QUOTE]] = True
    ends, crs_before, after = [], [], []
    open_quote = False
    size = len(view)
    previous = NEWLINE  # the byte before the block
    for offset, data in _blocks(view, 0, size):
        crs = np.flatnonzero(data == CR)
        if crs.size and (crs[-1] + 1 >= data.size or not np.all(data[crs + 1] == NEWLINE)):
            return None  # a lone CR ends a line for pandas: not followed here
        quotes = np.flatnonzero(data == QUOTE)
        if quotes.size and not _plain_quotes(offset, data, previous, quotes, open_quote, edge, view):
            return None
        if after and after[-1] is None:
            after[-1] = np.asarray([data[0]], np.uint8)  # the byte after the last block's last newline
        newlines = np.flatnonzero(data == NEWLINE)
        newlines = newlines[(np.searchsorted(quotes, newlines) + open_quote) % 2 == 0]
        ends.append(offset + newlines)
        crs_before.append((newlines > 0) & (data[np.maximum(newlines - 1, 0)] == CR))
        inside = newlines + 1 < data.size
        after.append(data[newlines[inside] + 1])
        if newlines.size and not inside[-1]:
            after.append(None if offset + data.size < size else np.asarray([NEWLINE], np.uint8))
        open_quote = bool((quotes.size + open_quote) % 2)
        previous = int(data[-1])
    if open_quote or not ends:
        return None  # a quoted cell never closed: the whole-file reader says where
    return np.concatenate(ends), np.concatenate(crs_before), np.concatenate(after)


def _plain_quotes(offset: int, data: np.ndarray, previous: int, quotes: np.ndarray, open_quote: bool,
                  edge: np.ndarray, view) -> bool:
    """Each opening quote starts a cell (at the file's start or after a BOM, or after a
    separator, a line end or the quote before it: a doubled quote); each closing quote ends
    one (before a separator, a line end, the next quote, or the file's end)."""
    opening = quotes[int(open_quote)::2]
    closing = quotes[1 - int(open_quote)::2]
    before = np.where(opening > 0, data[np.maximum(opening - 1, 0)], previous)
    if not np.all(edge[before]):
        first = offset + int(opening[0])
        if not (first == 3 and view[:3] == codecs.BOM_UTF8 and np.all(edge[before[1:]])):
            return False
    after = data[np.minimum(closing + 1, data.size - 1)]
    ok = edge[after] | (closing + 1 >= data.size)
    if closing.size and closing[-1] + 1 >= data.size and offset + data.size < len(view):
        ok[-1] = bool(edge[view[offset + data.size]])  # the next block's first byte
    return bool(np.all(ok))


def _table_pieces(fh, size: int, found, separator: int, target: int) -> list[Piece] | None:
    """Pieces of records from the scan's findings. The few bytes still needed are read with
    pread, not through the map: a page touched there maps its neighbours too."""
    ends, cr_before, after = found
    fd = fh.fileno()
    starts = np.r_[0, ends + 1]  # each record's first byte (the last record may be empty: the file's end)
    stops = np.r_[ends, size]
    lengths = stops - starts - np.r_[cr_before, False]
    blank = lengths == 0
    first_bytes = np.r_[np.frombuffer(os.pread(fd, 1, 0), np.uint8), after]
    for record in np.flatnonzero(~blank & ((first_bytes == SPACE) | (first_bytes == TAB))).tolist():
        text = os.pread(fd, int(lengths[record]), int(starts[record]))
        if not text.strip(b" \t") and not (separator == TAB and b"\t" in text):
            blank[record] = True  # spaces (and, in a CSV, tabs) only: pandas skips the line
    filled = np.flatnonzero(~blank)
    if filled.size < 2:
        return None  # a header alone (or nothing): read whole
    header = int(filled[0])  # the first record that is not blank holds the column names
    data_rows = np.cumsum(~blank)  # records up to and including each, header counted
    prefix = os.pread(fd, int(starts[header + 1]), 0)
    pieces = []
    begin = header + 1  # the record each piece starts at
    records = starts.size
    while begin < records:
        end = int(np.searchsorted(starts, int(starts[begin]) + target, side="left"))
        end = max(begin + 1, min(end, records))
        offset = int(starts[begin])
        stop = int(starts[end]) if end < records else size
        rows = int(data_rows[end - 1] - data_rows[begin - 1])
        if rows:
            pieces.append(Piece(offset, stop - offset, int(data_rows[begin - 1]), header=prefix,
                                line_shift=begin - (header + 1), rows=rows))
        begin = end
    return pieces


def table_piece_rows(path: str, suffix: str, encoding: str, piece: Piece) -> Iterator[Row]:
    """The rows of one piece of a CSV/TSV file, as io.read_rows gives them: the piece is parsed
    with the file's header in front of it, its rows numbered from `first_row`."""
    with open(path, "rb") as fh:
        fh.seek(piece.offset)
        data = piece.header + fh.read(piece.size)
    count = 0
    for row in _read_table(Path(path), suffix, encoding, source=_io.BytesIO(data), first_row=piece.first_row,
                           line_shift=piece.line_shift):
        count += 1
        yield row
    if count != piece.rows:
        raise InputError(str(Path(path)), f"the file reads whole but not in pieces: please report this (a piece "
                                          f"of {piece.rows} rows gave {count})")


# ---------------------------------------------------------------------------------------- parquet
def parquet_pieces(path: str | Path, target_rows: int) -> list[Piece] | None:
    """Row ranges of about `target_rows` rows of a parquet file, cut at row groups where they
    can be (a row group much larger than the target is cut inside: each piece reads it)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() == ".gz":
        return None
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # not parquet, or damaged: the whole-file reader says why
        return None
    pieces: list[Piece] = []
    begin = row = 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if rows >= 2 * target_rows:  # cut a large group on its own, in equal parts
            if row > begin:
                pieces.append(Piece(begin, row - begin, begin + 1))
            parts = -(-rows // target_rows)
            cuts = [row + rows * k // parts for k in range(parts + 1)]
            pieces.extend(Piece(a, b - a, a + 1) for a, b in zip(cuts, cuts[1:]))
            begin = row = row + rows
            continue
        row += rows
        if row - begin >= target_rows:
            pieces.append(Piece(begin, row - begin, begin + 1))
            begin = row
    if row > begin:
        pieces.append(Piece(begin, row - begin, begin + 1))
    return pieces or None


def parquet_piece_rows(path: str, piece: Piece) -> Iterator[Row]:
    """The rows of one row range of a parquet file, as io.read_rows gives them."""
    return _read_table(Path(path), ".parquet", "utf-8", source=_parquet_batches(path, piece), first_row=piece.first_row)


def _parquet_batches(path: str, piece: Piece) -> Iterator:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    columns = parquet_columns(parquet)
    start, stop = piece.offset, piece.offset + piece.size
    row = 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if row < stop and row + rows > start:
            table = parquet.read_row_group(group, columns=columns)
            table = table.slice(max(start - row, 0), min(stop, row + rows) - max(start, row))
            yield from table.to_batches(max_chunksize=TABLE_CHUNK_ROWS)
        row += rows


def parquet_rows_in(path: str | Path, size: int) -> int:
    """About how many rows of a parquet file take `size` bytes of it (a piece's rows, when pieces
    are sized in bytes like the others)."""
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return 0
    return rows * size // max(Path(path).stat().st_size, 1)


def array_head(path: str | Path, encoding: str, limit: int) -> list[Row] | None:
    """The first `limit` rows of a UTF-8 JSON array read from its start alone (a format is
    detected on them: the whole file need not be decoded for that), as io.read_rows gives them;
    None where the start holds anything unusual (then read it as io.read_rows does)."""
    path = Path(path)
    if path.suffix.lower() == ".gz" or _codec(encoding) not in {"utf-8", "utf-8-sig"}:
        return None
    size, total = 1 << 20, path.stat().st_size
    with open(path, "rb") as fh:
        while True:
            fh.seek(0)
            data = fh.read(size)
            rows = _head_of(data, str(path), limit, whole=len(data) == total)
            if rows is not _MORE:
                return rows or None
            size *= 4


_MORE = object()  # the start read holds fewer than the rows asked for


def _head_of(data: bytes, name: str, limit: int, whole: bool):
    start = data.find(b"[")
    if start < 0:
        return None
    scan = _JsonScan()
    marks, depth = scan.block(np.frombuffer(data, np.uint8)[start:])
    marks = marks + start
    closing = np.flatnonzero(depth == 0)
    if closing.size:
        stop, last = int(marks[closing[0]]) + 1, True
        depth, marks = depth[:closing[0]], marks[:closing[0]]
    else:
        commas = marks[(depth == 1) & (np.frombuffer(data, np.uint8)[marks] == COMMA)]
        if commas.size < limit or not commas.size:
            return None if whole else _MORE
        stop, last = int(commas[limit - 1]) + 1, False
    body = data[start + 1:stop]
    spans = _item_spans(body, last)
    if spans is None:
        return None
    line, counted, rows = data[:start + 1].count(b"\n") + 1, 0, []
    for index, (begin, end) in enumerate(spans[:limit], start=1):
        line += body.count(b"\n", counted, begin)
        counted = begin
        item = _item(body[begin:end])
        if item is _BROKEN:
            return None
        origin = Origin(file=name, line=line, row=index)
        if isinstance(item, dict):
            rows.append(Row(origin, item))
        else:
            rows.append(Row(origin, None, f"expected a JSON object, got {type(item).__name__}",
                            raw=json.dumps(item, ensure_ascii=False)))
    return rows
