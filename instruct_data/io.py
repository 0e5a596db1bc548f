"""Reading any supported file into (origin, row) pairs, and writing outputs atomically.

Reading never raises for a bad *row*: the row comes back with `error` set, and the caller
turns it into a reject. It raises `InputError` (file:line: what is wrong) only when the
*file* cannot be read at all.
"""

from __future__ import annotations

import codecs
import errno
import glob
import gzip
import hashlib
import io as _io
import itertools
import json
import math
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from instruct_data.errors import InputError
from instruct_data.schema import Origin

JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}
TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xls", ".parquet"}
SUPPORTED_SUFFIXES = JSON_SUFFIXES | TABLE_SUFFIXES
# How many leading rows are checked before any output is written: a file none of whose
# first rows parse is not the format we think it is.
PEEK_ROWS = 200
TABLE_CHUNK_ROWS = 20_000


@dataclass
class Row:
    """One row read from a file: the parsed object, or why it could not be parsed."""

    origin: Origin
    data: dict[str, Any] | None
    error: str | None = None
    raw: str | None = None  # the raw text of an unparseable row, kept for rejects.jsonl


def base_suffix(path: Path) -> str:
    """`.jsonl` for `x.jsonl.gz` and `x.jsonl` alike."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files, folders (every supported file inside, sorted) and globs, in a stable order."""
    files: list[Path] = []
    for item in inputs:
        text = str(item)
        if any(ch in text for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            if not matches:
                raise InputError(text, "no file matches this pattern")
            # `raw/*` means the data files in raw/, not its README: like a folder, skip the rest.
            supported = [p for p in matches if p.is_file() and base_suffix(p) in SUPPORTED_SUFFIXES]
            if not supported:
                raise InputError(text, "no supported file matches this pattern")
            files.extend(supported)
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and base_suffix(p) in SUPPORTED_SUFFIXES)
            if not found:
                raise InputError(text, "folder holds no supported file (.jsonl .json .csv .tsv .xlsx .parquet, or .gz)")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(text, _why_missing(path))
    for path in files:
        if base_suffix(path) not in SUPPORTED_SUFFIXES:
            raise InputError(str(path), f"unsupported file type {''.join(path.suffixes) or '(none)'}")
    return files


def _why_missing(path: Path) -> str:
    """Why a path is neither a file nor a folder: a symlink loop is not "no such file"."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop (the link points back to itself)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"cannot read: {exc.strerror}"
        if os.path.islink(path):
            return f"a broken symlink (to {os.readlink(path)})"
        return "no such file or folder"
    return "not a file or folder"


def open_binary(path: Path):
    """An input opened for reading; one the user may not read fails as the input it is (exit 2)."""
    try:
        if path.suffix.lower() == ".gz":
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as exc:
        why = "a symlink loop" if exc.errno == errno.ELOOP else exc.strerror
        raise InputError(str(path), f"cannot read: {why}") from None


# A row nested deeper than Python's JSON parser recurses (about 1,000 levels).
TOO_DEEP = "invalid JSON: nested too deeply to read (more than about 1,000 levels of arrays or objects)"

# What a damaged .gz raises part-way through (gzip.BadGzipFile is an OSError).
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def check_encoding(name: str) -> str:
    """`name`, if Python decodes text with it; else a ValueError naming it. The one check of
    `--encoding` and a recipe source's `encoding:`, made before a file is opened: an unknown
    name failed deep in the readers, as a LookupError traceback."""
    try:
        codecs.lookup(name)
        # codecs.lookup also finds codecs of bytes, not of text (base64, zlib): only decoding
        # refuses them, and not on empty bytes, which it returns at once.
        b"\n".decode(name, errors="ignore")
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}") from None
    return name


def _encoding_hint(encoding: str) -> str:
    return "; try --encoding gb18030" if encoding.lower().replace("-", "") in {"utf8", "utf8sig"} else ""


def _decode_hint(exc: UnicodeDecodeError, data: bytes, encoding: str) -> str:
    """What to try: bytes that stop inside a UTF-8 character at the very end were cut short (the
    file is UTF-8, only truncated); anything else may be another encoding."""
    if exc.reason == "unexpected end of data" and exc.end >= len(data):
        return "; the text ends inside a character: was the file cut short?"
    return _encoding_hint(encoding)


def _first_char(path: Path, encoding: str) -> str:
    """First non-whitespace character of a text file, BOM skipped: `[` means a JSON array."""
    with open_binary(path) as fh:
        try:
            head = fh.read(4096)
        except GZIP_ERRORS as exc:  # a corrupt .gz
            raise InputError(str(path), f"cannot read: {exc}", line=1) from None
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return text[:1]


def _has_utf16_bom(path: Path) -> bool:
    with open_binary(path) as fh:
        try:
            return fh.read(2) in (b"\xff\xfe", b"\xfe\xff")
        except GZIP_ERRORS as exc:
            raise InputError(str(path), f"cannot read: {exc}", line=1) from None


def is_json_array(path: Path, encoding: str) -> bool:
    """A `.json` holding one array, rather than JSON lines. A file that opens with `[` can still
    be JSON lines whose first line is an array (a bad row): that first line parses on its own
    and other lines follow it."""
    if _first_char(path, encoding) != "[":
        return False
    with open_binary(path) as fh:
        try:
            lines = (line for line in fh if line.lstrip(b"\xef\xbb\xbf").strip())
            first = next(lines, b"")
            if next(lines, None) is None:
                return True  # one line: an array whether it parses or not (an array on one line is not parsed here)
            try:
                json.loads(first.decode(encoding).lstrip("\ufeff"))
            except (ValueError, RecursionError):  # also UnicodeDecodeError: a pretty-printed or broken array
                return True
            return False
        except GZIP_ERRORS as exc:
            raise InputError(str(path), f"cannot read: {exc}", line=1) from None


def read_rows(path: str | os.PathLike, *, encoding: str = "utf-8", limit: int | None = None) -> Iterator[Row]:
    """Stream the rows of one file. Checks the first rows before yielding anything."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "no such file")
    suffix = base_suffix(path)
    if _has_utf16_bom(path) and encoding.lower().replace("-", "").replace("_", "") in {"utf8", "utf8sig"}:
        # Excel's "Unicode text" export is UTF-16 with tabs: read tables as what they are.
        if suffix not in {".csv", ".tsv"}:
            raise InputError(str(path), "the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                                        "save it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8", line=1)
        encoding = "utf-16"
    if suffix in JSON_SUFFIXES:
        if is_json_array(path, encoding):
            rows = _read_json_array(path, encoding)
        else:
            rows = _read_json_lines(path, encoding)
    elif suffix in TABLE_SUFFIXES:
        rows = _read_table(path, suffix, encoding)
    else:
        raise InputError(str(path), f"unsupported file type {''.join(path.suffixes) or '(none)'}")
    rows = _checked(path, rows)
    for count, row in enumerate(rows, start=1):
        yield row
        if limit is not None and count >= limit:
            return


def _checked(path: Path, rows: Iterator[Row]) -> Iterator[Row]:
    """Fail the file (before any row is used) when none of its first rows parse."""
    head: list[Row] = []
    for row in rows:
        head.append(row)
        if len(head) >= PEEK_ROWS:
            break
    if not head:
        raise InputError(str(path), "file holds no rows", line=1)
    if all(row.error for row in head):
        first = head[0]
        whole = _one_json_object(path)
        if whole is not None:
            inside = rows_inside(whole, path.name)
            raise InputError(str(path), f"holds one JSON object, not rows: {inside}" if inside else
                             "holds one JSON object, not rows: write a JSON array of objects ([{...}, {...}]) or "
                             "JSON lines (one object per line)", line=1)
        raise InputError(str(path), f"nothing in this file parses: {first.error}", line=first.origin.line or first.origin.row)
    yield from head
    yield from rows


def _one_json_object(path: Path) -> dict | None:
    """The object a (small) file holds when it is one JSON object spread over lines (not a
    table of rows), else None."""
    if path.stat().st_size > 64 * 2**20 or base_suffix(path) not in JSON_SUFFIXES:
        return None
    try:
        with open_binary(path) as fh:
            whole = json.loads(fh.read().decode("utf-8-sig"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, *GZIP_ERRORS):
        return None
    return whole if isinstance(whole, dict) else None


def rows_inside(whole: dict, name: str, kind: Callable[[dict], str | None] = lambda row: None) -> str:
    """For a file that is one JSON object holding its rows under a key ({"data": [...]}, as many
    published sets ship): where they are and how to take them out; "" when no key holds a list
    of objects. `kind` names the rows' format (formats.detect_row)."""
    for key, value in whole.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            found = kind(value[0])
            plural = "" if len(value) == 1 else "s"
            what = f"{len(value):,} row{plural} ({found} format)" if found else f"{len(value):,} object{plural}"
            return (f"its '{key}' holds a list of {what}; idata reads a file of rows, a JSON array or JSON lines: "
                    f"take them out, e.g. jq -c '.[\"{key}\"][]' {name} > rows.jsonl")
    return ""


def _read_json_lines(path: Path, encoding: str) -> Iterator[Row]:
    line_no = 0
    with open_binary(path) as fh:
        try:
            for line_no, raw_bytes in enumerate(fh, start=1):
                row = json_line(path, line_no, raw_bytes, encoding)
                if row is not None:  # blank lines are normal, not rows
                    yield row
        except GZIP_ERRORS as exc:  # a truncated or damaged .gz: what came before stays read
            raise InputError(str(path), f"cannot read past this line: {exc}", line=line_no + 1) from None


# orjson parses a line of UTF-8 about twice as fast as json.loads (which needs the bytes
# decoded first): the largest single cost of reading. Where it accepts a line it gives the same
# objects, but for two things: an integer of more than 64 bits becomes a float (json keeps it
# exact), and it reads 1,024 levels of nesting where json stops at Python's recursion limit
# (about 1,000: TOO_DEEP). A row holding a float that large or nesting that deep is read again
# by json; so is every line orjson refuses (NaN, a lone surrogate, a BOM, invalid JSON or
# UTF-8), so that json's own result or message is kept. Most rows are a flat object of strings,
# for which the check is one pass over the values.
_UTF8 = {"utf-8", "utf8", "UTF-8", "utf_8"}
_BIG = float(2**63)
_ONLY_STR = frozenset({str})


def _as_json_reads(data: dict) -> bool:
    """False where json.loads would not give this same object (see above)."""
    values = data.values()
    if _ONLY_STR.issuperset(map(type, values)):  # all(type(v) is str ...), the loop in C
        return True
    pending = [(values, 1)]  # a stack, not recursion: the nesting may be deep
    while pending:
        items, depth = pending.pop()
        if depth > 900:
            return False
        for value in items:
            kind = type(value)
            if kind is float and not -_BIG < value < _BIG:
                return False
            if kind is dict:
                pending.append((value.values(), depth + 1))
            elif kind is list:
                pending.append((value, depth + 1))
    return True


def json_line(path: Path, line_no: int, raw_bytes: bytes, encoding: str) -> Row | None:
    if encoding in _UTF8 and line_no != 1:
        try:
            data = orjson.loads(raw_bytes)
        except orjson.JSONDecodeError:
            data = None  # json below says why (or accepts what orjson does not)
        if type(data) is dict and _as_json_reads(data):
            return Row(Origin(file=str(path), line=line_no), data)
    origin = Origin(file=str(path), line=line_no)
    try:
        text = raw_bytes.decode(encoding)
    except UnicodeDecodeError as exc:
        hint = _decode_hint(exc, raw_bytes.rstrip(b"\r\n"), encoding)
        return Row(origin, None, f"undecodable bytes ({encoding}): {exc.reason} at byte {exc.start}{hint}",
                   raw=raw_bytes.decode(encoding, errors="replace").rstrip("\r\n"))
    if line_no == 1:
        text = text.lstrip("\ufeff")
    if not text.strip():
        return None
    try:
        data = json.loads(text.rstrip("\r\n"))  # (with its newline, a line cut short errs at the next line's column 1)
    except json.JSONDecodeError as exc:
        return Row(origin, None, f"invalid JSON: {exc.msg} (column {exc.colno})", raw=text.rstrip("\r\n"))
    except RecursionError:
        return Row(origin, None, TOO_DEEP, raw=text.rstrip("\r\n"))
    if not isinstance(data, dict):
        return Row(origin, None, f"expected a JSON object, got {type(data).__name__}", raw=text.rstrip("\r\n"))
    lone = lone_surrogate(text, data)
    if lone:
        return Row(origin, None, lone, raw=text.rstrip("\r\n"))
    return Row(origin, data)


def lone_surrogate(text: str, data: Any) -> str | None:
    """Why a JSON row cannot be kept, where it escapes half of a UTF-16 pair (`"\\ud800"` with no
    partner): json reads it as a code point that is no character, which no UTF-8 output can hold.
    orjson refuses such a line, so only json's reading (the rare path) needs the check."""
    if "\\ud" not in text and "\\uD" not in text:
        return None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        return (f"a lone surrogate (\\u{code:04x}) in a string: half of a UTF-16 pair, not a character, "
                "so the row cannot be written as UTF-8")
    return None


def _read_json_array(path: Path, encoding: str) -> Iterator[Row]:
    """Items of a JSON array, each with the line it starts on (so rejects say `file:line`)."""
    with open_binary(path) as fh:
        try:
            payload = fh.read()
        except GZIP_ERRORS as exc:
            raise InputError(str(path), f"cannot read: {exc}") from None
    try:
        text = payload.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = payload[: exc.start].count(b"\n") + 1
        raise InputError(str(path), f"undecodable bytes ({encoding}): {exc.reason}"
                                    f"{_decode_hint(exc, payload.rstrip(), encoding)}", line=line) from None
    decoder = json.JSONDecoder()
    pos = _skip_space(text, text.index("[") + 1)
    line, counted = 1, 0
    index = 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            item, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            # One broken item hides where the next begins: the file cannot be read on.
            raise InputError(str(path), f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
        except RecursionError:
            raise InputError(str(path), TOO_DEEP, line=line + text.count("\n", counted, pos)) from None
        index += 1
        origin = Origin(file=str(path), line=line, row=index)
        lone = lone_surrogate(text[counted:pos], item) if isinstance(item, dict) else None
        if isinstance(item, dict) and not lone:
            yield Row(origin, item)
        elif lone:
            yield Row(origin, None, lone, raw=text[counted:pos])
        else:
            yield Row(origin, None, f"expected a JSON object, got {type(item).__name__}",
                      raw=json.dumps(item, ensure_ascii=False))
        pos = _skip_space(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
        elif pos < len(text) and text[pos] != "]":
            line += text.count("\n", counted, pos)
            raise InputError(str(path), "invalid JSON: expected ',' or ']' after an array item", line=line)
    if pos >= len(text):
        raise InputError(str(path), "invalid JSON: the array is not closed with ']'",
                         line=text.count("\n") + 1)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_table(path: Path, suffix: str, encoding: str, *, source: Any = None, first_row: int = 1,
                line_shift: int = 0) -> Iterator[Row]:
    """The rows of a table. A piece of one (ranges.py) passes `source`: its CSV bytes behind the
    header, or its parquet record batches; its rows are numbered from `first_row`, and a parser's line
    numbers are the piece's, so `line_shift` makes them the file's."""
    import pandas as pd  # heavy: only when a table is read

    try:
        if suffix in {".csv", ".tsv"}:
            # pandas decompresses `.csv.gz` itself (compression inferred from the name).
            frames = pd.read_csv(path if source is None else source, sep="\t" if suffix == ".tsv" else ",", dtype=str,
                                 keep_default_na=False, index_col=False,
                                 encoding=encoding, chunksize=TABLE_CHUNK_ROWS, encoding_errors="strict")
            chunks = map(_frame_records, _strict(frames))
        elif suffix == ".parquet":
            chunks = map(parquet_records, _parquet_batches(path) if source is None else source)
        else:
            yield from _read_sheets(path)
            return
        row_no = first_row - 1
        for records in chunks:
            for record in records:
                row_no += 1
                yield Row(Origin(file=str(path), row=row_no), {k: _cell(v) for k, v in record.items()})
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"undecodable bytes ({encoding}): {exc.reason}{_encoding_hint(encoding)}",
                         line=_first_undecodable_line(path, encoding)) from None
    except InputError:
        raise
    except Exception as exc:  # pandas raises many types for a malformed table
        message = " ".join(str(exc).split())
        if "Length of header or names does not match length of data" in message:
            # index_col=False: a row longer than the header would lose its last cells (pandas
            # would otherwise take the first column as an index and shift every cell).
            line, expected, saw = _first_long_row(path, "\t" if suffix == ".tsv" else ",", encoding)
            raise InputError(str(path), f"expected {expected} cells, found {saw} (a separator inside a cell "
                                        "needs quotes)", line=line) from None
        if "EOF inside string" in message:  # a quote opened and never closed: the rest would be one cell
            line = _unclosed_quote_line(path, "\t" if suffix == ".tsv" else ",", encoding)
            raise InputError(str(path), "a quoted cell is never closed: from this line on the file would read as "
                                        "one cell (a \" inside a cell is written \"\")", line=line) from None
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if ragged:
            # Cells shifted by an unquoted separator: every later column would be wrong, so the
            # file fails rather than rows being guessed at.
            expected, line, saw = ragged.groups()
            raise InputError(str(path), f"expected {expected} cells, found {saw} (a separator inside a cell "
                                        "needs quotes)", line=int(line) + line_shift) from None
        raise InputError(str(path), f"cannot read as {suffix[1:]}: {message}") from None


def _strict(chunks) -> Iterator:
    """The frames of a CSV reader, with pandas' warning that a row's extra cells are dropped
    raised as an error instead (the file then fails, naming the row, as a ragged row does)."""
    import warnings

    import pandas as pd

    iterator = iter(chunks)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            try:
                frame = next(iterator)
            except StopIteration:
                return
        yield frame


def _table_name(name: Any) -> str:
    return str(name).lstrip("\ufeff").strip()


def _frame_records(frame) -> list[dict]:
    frame.columns = [_table_name(c) for c in frame.columns]
    return frame.to_dict(orient="records")


@contextmanager
def _csv_reader(path: Path, sep: str, encoding: str):
    """Python's csv reader over a table pandas failed on, to find the line at fault."""
    import csv

    with open_binary(path) as raw, _io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as fh:
        yield csv.reader(fh, delimiter=sep)


def _unclosed_quote_line(path: Path, sep: str, encoding: str) -> int | None:
    """The line where the row runs to the end of the file inside a quoted cell starts."""
    import csv

    last = None  # where the last row read starts: the one that ran to the end, when pandas says so
    with _csv_reader(path, sep, encoding) as reader:
        try:
            while True:
                start = reader.line_num + 1
                next(reader)
                last = start
        except StopIteration:
            return last
        except csv.Error:
            return start


def _first_long_row(path: Path, sep: str, encoding: str) -> tuple[int | None, int, int]:
    """(line, header cells, cells) of the first row with more cells than the header."""
    with _csv_reader(path, sep, encoding) as reader:
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return reader.line_num, len(header), len(row)
    return None, len(header), len(header) + 1


def _read_sheets(path: Path) -> Iterator[Row]:
    """Every sheet of a workbook with rows, in order. With more than one, each row's origin
    names its sheet (`answers.xlsx[Sheet2]:row 3`, rows counted per sheet), so none is
    silently left out and no two rows share an id. A row with a formula whose value was never
    computed (a file written by a program that does not calculate) is a row that cannot be
    read, with the reason, not an empty row silently dropped."""
    if base_suffix(path) == ".xls":  # the old binary format: openpyxl cannot read it, pandas (xlrd) can
        yield from _read_xls(path)
        return
    sheets = list(sheet_records(path))
    filled = [sheet for sheet in sheets if sheet.rows]
    for sheet in filled:
        name = sheet.name if len(filled) > 1 else None
        for row_no, values, missing in sheet.rows:
            origin = Origin(file=str(path), row=row_no, sheet=name)
            if missing:
                yield Row(origin, None, error=f"formula with no computed value in column {', '.join(missing)} (the "
                                              "workbook was saved by a program that does not calculate formulas: "
                                              "open and save it in Excel or LibreOffice)",
                          raw=json.dumps(dict(zip(sheet.columns, map(cell_text, values))), ensure_ascii=False))
            else:
                yield Row(origin, {k: cell_text(v) for k, v in zip(sheet.columns, values)})


def _read_xls(path: Path) -> Iterator[Row]:
    import pandas as pd

    sheets = pd.read_excel(_binary_source(path), sheet_name=None, dtype=str, keep_default_na=False)
    filled = {name: frame for name, frame in sheets.items() if len(frame)}
    for name, frame in filled.items():
        frame.columns = [str(c).lstrip("\ufeff").strip() for c in frame.columns]
        sheet = str(name) if len(filled) > 1 else None
        for row_no, record in enumerate(frame.to_dict(orient="records"), start=1):
            yield Row(Origin(file=str(path), row=row_no, sheet=sheet), {k: _cell(v) for k, v in record.items()})


@dataclass
class Sheet:
    """One worksheet as read: its name, column names, and its data rows as
    (row number among the data rows, typed cell values, columns whose formula has no value)."""

    name: str
    columns: list[str]
    rows: list[tuple[int, tuple, list[str]]]


def sheet_records(path: Path) -> Iterator[Sheet]:
    """The sheets of a workbook with typed values (numbers stay numbers), read with openpyxl.

    As pandas reads a sheet: the first non-blank row is the header (an empty name becomes
    `Unnamed: N`, a repeated one `name.1`), blank rows are skipped and not counted. A cell whose
    formula was never calculated has no cached value: openpyxl reads it as empty, so the formulas
    are read too, to tell such a cell from an empty one."""
    import openpyxl

    source = _binary_source(path)
    values = openpyxl.load_workbook(source, read_only=True, data_only=True)
    if hasattr(source, "seek"):
        source.seek(0)
    formulas = openpyxl.load_workbook(source, read_only=True, data_only=False)
    try:
        for sheet in values.worksheets:
            rows = zip(sheet.iter_rows(values_only=True), formulas[sheet.title].iter_rows(values_only=True))
            yield _sheet(sheet.title, rows)
    finally:
        values.close()
        formulas.close()


def _sheet(name: str, rows) -> Sheet:
    header: list[str] | None = None
    data: list[tuple[int, tuple, list[str]]] = []
    for cells, raw in rows:
        formula = [isinstance(r, str) and r.startswith("=") for r in raw]
        if all(c is None or c == "" for c in cells) and not any(formula):
            continue  # a blank row, as pandas skips it
        if header is None:
            header = _column_names(cells)
            continue
        cells = tuple(cells) + (None,) * (len(header) - len(cells))
        missing = [header[i] for i, (c, f) in enumerate(zip(cells, formula)) if f and c is None and i < len(header)]
        data.append((len(data) + 1, cells[:len(header)], missing))
    header = header or []
    # Columns with no name and no value anywhere (formatting past the table) are not columns.
    keep = [i for i, col in enumerate(header)
            if not col.startswith("Unnamed: ") or any(i < len(v) and v[i] not in (None, "") for _, v, _ in data)]
    if len(keep) < len(header):
        header = [header[i] for i in keep]
        data = [(n, tuple(v[i] for i in keep), m) for n, v, m in data]
    return Sheet(name, header, data)


def _column_names(cells) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = "" if cell is None else str(cell).lstrip("\ufeff").strip()
        name = name or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def cell_text(value: Any) -> str:
    """A cell as the readers give it (text, as pandas' dtype=str would): 3 -> "3", 2.5 -> "2.5",
    a whole float -> its integer, a date -> "2024-01-02 00:00:00", empty -> ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _binary_source(path: Path):
    """Binary formats (xlsx, parquet) inside a .gz are unpacked in memory: readers need to seek."""
    if path.suffix.lower() != ".gz":
        return path
    with gzip.open(path, "rb") as fh:
        return _io.BytesIO(fh.read())


def _first_undecodable_line(path: Path, encoding: str) -> int | None:
    with open_binary(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return line_no
    return None


def open_parquet(path: Path):
    """A parquet file (or one inside a .gz) for pyarrow to read."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(_binary_source(path))


def parquet_columns(parquet) -> list[str] | None:
    """The columns that hold a parquet file's rows: all but the unnamed index DataFrame.to_parquet
    stores as `__index_level_0__` (an index other than 0..n-1, as a filtered frame has), which
    is not data and which to_pandas() made the index again; None (every column) when there is none."""
    index = (parquet.schema_arrow.pandas_metadata or {}).get("index_columns", [])
    stored = {name for name in index if isinstance(name, str) and re.fullmatch(r"__index_level_\d+__", name)}
    return [name for name in parquet.schema_arrow.names if name not in stored] if stored else None


def _parquet_batches(path: Path):
    parquet = open_parquet(path)
    yield from parquet.iter_batches(batch_size=TABLE_CHUNK_ROWS, columns=parquet_columns(parquet))


def parquet_records(batch) -> list[dict]:
    """The rows of a parquet record batch as Python values, read by pyarrow itself: pandas'
    to_pandas() makes an int64 column with a null float64 (10000000200000001 became
    1.00000002e+16, 42 became 42.0)."""
    names = [_table_name(name) for name in batch.schema.names]
    if names != batch.schema.names:
        batch = batch.rename_columns(names)
    return batch.to_pylist()


def _cell(value: Any) -> Any:
    """Table cells: None and NaN become empty; numpy scalars and arrays (pandas' cells) and tuples
    (a parquet map's pairs) become plain Python, so a parquet `history` of pairs or
    `conversations` of structs reads like its JSON twin."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:
        return ""
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "tolist"):  # numpy array or scalar; an object array's tolist() keeps inner arrays
        plain = value.tolist()
        return [_plain(item) for item in plain] if isinstance(plain, list) else plain
    return value


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of `size` items (the last may be shorter): rows handed to worker processes."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# ---------------------------------------------------------------- writing


def dumps(obj: Any) -> str:
    """One JSON line, Chinese kept readable, stable for byte-identical rebuilds. Always valid JSON:
    a NaN or Infinity (a reject's raw row, read from a file that holds them) is written as the
    string "NaN", "Infinity" or "-Infinity", not as the bare token strict readers refuse."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_as_json)
    except ValueError:
        return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, default=_as_json)


def _as_json(value: Any) -> Any:
    """A cell JSON has no type for (a parquet or workbook row's timestamp, date, duration,
    decimal or bytes, written raw to rejects.jsonl or duplicates.jsonl): its text. Without this
    such a row, rather than being recorded, stopped the run with a traceback."""
    if hasattr(value, "isoformat"):  # datetime, date, time, pandas.Timestamp
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)  # Decimal, timedelta, numpy scalars, ...


def _finite(obj: Any) -> Any:
    if type(obj) is float and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_beside(path: Path) -> tuple[int, Path]:
    """A new temporary file in `path`'s folder (so the final rename is atomic), with the
    permissions a plainly created file would get (mkstemp's own are 0600)."""
    # The pid in the name lets a later run remove the file if this process dies (outputs_guard).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_current_umask())
    return fd, Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_beside(path)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlWriter:
    """Write JSON lines to a temporary file; `commit()` renames it into place."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp_path = temp_beside(self.path)
        self._fh = _io.open(fd, "w", encoding="utf-8", newline="\n")
        self.count = 0

    def write(self, obj: Any) -> None:
        self._fh.write(dumps(obj))
        self._fh.write("\n")
        self.count += 1

    def write_many(self, objs: Iterable[Any]) -> None:
        for obj in objs:
            self.write(obj)

    def commit(self) -> Path:
        self._fh.close()
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        try:
            if not self._fh.closed:
                self._fh.close()  # flushes: on a full disk this raises again, and the file must still go
        except OSError:
            pass
        finally:
            self.tmp_path.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write a JSON document atomically, pretty-printed."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def write_jsonl(path: str | os.PathLike, objs: Iterable[Any]) -> int:
    writer = JsonlWriter(path)
    try:
        writer.write_many(objs)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return writer.count


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
