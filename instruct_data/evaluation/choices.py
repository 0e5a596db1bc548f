"""Multiple-choice benchmarks (C-Eval, CMMLU and the like) read into items, with their dev split.

Layouts recognised, as those projects ship them:

- C-Eval (`ceval/ceval-exam`): `ceval-exam.zip` with `dev/`, `val/`, `test/` folders of
  `{subject}_{split}.csv`, columns `id,question,A,B,C,D,answer,explanation` (test has no
  answers); the hub's parquet conversion as `{subject}/{split}-*.parquet`, same columns.
- CMMLU (`haonan-li/cmmlu`): `cmmlu_v1_0_1.zip` with `dev/` and `test/` folders of
  `{subject}.csv`, an unnamed index column then `Question,A,B,C,D,Answer`.
- One JSON lines, JSON or CSV file with `question`, `A`–`D`, `answer` (any case), optional
  `subject` or `category`, optional `explanation` (the package's own `idata-zh-mc`).

`--from` (or the hub download) may be the zip, an unpacked folder, or one file. The subject
comes from a `subject`/`category` column, else from the file name (C-Eval's `_val` suffix
dropped). A row that cannot be an item (no question, an option missing, an answer that is
not one of the letters) is a reject with its file:row and reason, never dropped silently.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from instruct_data.errors import InputError

LETTERS = ("A", "B", "C", "D")
SPLITS = ("dev", "val", "validation", "test")
TABLE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


@dataclass
class ChoiceItem:
    id: str
    subject: str | None
    question: str
    options: dict[str, str]  # letter -> text, in letter order
    answer: str
    explanation: str | None = None
    origin: str = ""


@dataclass
class ChoiceSet:
    items: list[ChoiceItem]
    dev: dict[str | None, list[ChoiceItem]] = field(default_factory=dict)  # few-shot examples by subject
    rejected: list[dict] = field(default_factory=list)
    split: str | None = None  # the split scored, when the source had several
    files: int = 0
    style: str = "cmmlu"  # whose prompt header: "ceval" or "cmmlu" (also the shipped set's)


# ---------------------------------------------------------------- detection


def _columns(names) -> set[str]:
    return {str(n).strip().lower() for n in names}


def looks_multiple_choice(columns) -> bool:
    cols = _columns(columns)
    return {"question", "a", "b", "c", "d", "answer"} <= cols


def is_multiple_choice(path: str | Path) -> bool:
    """A zip or folder of choice tables, or one file whose header/first row has question, A–D, answer."""
    path = Path(path)
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path)):
        return any(True for _ in _members(path))
    if not path.is_file() or path.suffix.lower() not in TABLE_SUFFIXES:
        return False
    return looks_multiple_choice(_first_columns(path))


def _first_columns(path: Path) -> list[str]:
    """The header, or the first row's keys, without reading the file (a build's heldout.jsonl can be big)."""
    import itertools

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if suffix == ".csv":
            return list(_read_table(path.name, _opener(path), nrows=1).columns)
        from instruct_data.io import read_rows

        first = next(itertools.islice(read_rows(path), 1), None)
    except Exception:  # noqa: BLE001 (not a table this reader understands: not multiple choice)
        return []
    return list(first.data) if first is not None and isinstance(first.data, dict) else []


# ---------------------------------------------------------------- reading


def load_choices(path: str | Path, *, split: str | None = None, dev_path: str | Path | None = None,
                 name: str = "mc") -> ChoiceSet:
    """Items of the scored split (default: `val` if there is one, else `test`; a single file is
    its own split) and dev examples by subject, from a zip, a folder or one file."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "no such file or folder")
    tables = list(_members(path)) if path.is_dir() or zipfile.is_zipfile(path) else [(path.name, _opener(path))]
    if not tables:
        raise InputError(str(path), "no .csv, .jsonl, .json or .parquet table of questions inside")
    by_split: dict[str | None, list] = defaultdict(list)
    for member, opener in tables:
        by_split[_split_of(member)].append((member, opener))
    chosen = split or _default_split(by_split)
    if chosen not in by_split:
        raise InputError(str(path), f"no {chosen!r} split here (found: {', '.join(str(s) for s in by_split)})")
    result = ChoiceSet(items=[], split=chosen if len(by_split) > 1 or split else None)
    for member, opener in sorted(by_split[chosen], key=lambda t: t[0]):
        _read_into(result, f"{path}:{member}" if member != path.name else str(path), member, opener, name)
    dev_tables = by_split.get("dev", []) if chosen != "dev" else []
    if dev_path is not None:
        dev_tables = [(Path(dev_path).name, _opener(Path(dev_path)))]
    for member, opener in sorted(dev_tables, key=lambda t: t[0]):
        dev = ChoiceSet(items=[])
        _read_into(dev, member, member, opener, f"{name}-dev")
        for item in dev.items:
            result.dev.setdefault(item.subject, []).append(item)
    if not result.items:
        raise InputError(str(path), "no multiple-choice item could be read (need question, A–D and answer)")
    return result


class _FileOpener:
    """Opens a file on disk; keeps its path so JSON lines go through the project's own reader."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self):
        return open(self.path, "rb")


def _opener(path: Path) -> _FileOpener:
    return _FileOpener(path)


def _members(root: Path):
    """(relative name, opener) for every question table in a folder or zip."""
    if root.is_dir():
        for file in sorted(root.rglob("*")):
            if file.is_file() and file.suffix.lower() in TABLE_SUFFIXES and not file.name.startswith("."):
                yield str(file.relative_to(root)), _opener(file)
        return
    archive = zipfile.ZipFile(root)
    for info in archive.infolist():
        name = info.filename
        if info.is_dir() or "__MACOSX" in name or Path(name).name.startswith("."):
            continue
        if Path(name).suffix.lower() in TABLE_SUFFIXES:
            yield name, (lambda n=name: archive.open(n))


def _split_of(member: str) -> str | None:
    """dev/val/test from a folder name (C-Eval, CMMLU zips), a `_val` suffix or a `val-0000…` file."""
    parts = Path(member).parts
    for part in reversed(parts[:-1]):
        if part.lower() in SPLITS:
            return _canonical_split(part.lower())
    stem = Path(member).stem.lower()
    match = re.search(r"(?:^|_)(dev|val|validation|test)(?:-\d+-of-\d+)?$", stem) or re.match(r"^(dev|val|validation|test)-", stem)
    return _canonical_split(match.group(1)) if match else None


def _canonical_split(name: str) -> str:
    return "val" if name == "validation" else name


def _default_split(by_split: dict) -> str | None:
    for candidate in ("val", "test"):
        if candidate in by_split:
            return candidate
    return next(iter(by_split))


def subject_of(member: str) -> str:
    """The subject from a table's name: `accountant_val.csv`, `agronomy.csv`, `accountant/val-0000-of-0001.parquet`."""
    path = Path(member)
    stem = re.sub(r"_(dev|val|validation|test)$", "", path.stem)
    if re.match(r"^(dev|val|validation|test)(-\d+-of-\d+)?$", path.stem) and len(path.parts) > 1:
        return path.parts[-2]  # the parquet layout names the subject by its folder
    return stem


def _read_table(member: str, opener, nrows: int | None = None):
    import pandas as pd

    suffix = Path(member).suffix.lower()
    with opener() as fh:
        if suffix == ".csv":
            # Everything as text, "" for empty cells: an option "None" or "NA" is an option, not a missing value.
            return pd.read_csv(fh, dtype=str, keep_default_na=False, nrows=nrows, encoding="utf-8-sig")
        if suffix == ".parquet":
            frame = pd.read_parquet(fh)
            return frame.head(nrows) if nrows else frame
        text = fh.read().decode("utf-8-sig")
    array = text.lstrip().startswith("[")
    frame = pd.read_json(io.StringIO(text), lines=not array, dtype=False)
    return frame.head(nrows) if nrows else frame


def _read_into(result: ChoiceSet, where: str, member: str, opener, name: str) -> None:
    records = _records(where, member, opener)
    result.files += 1
    file_subject = subject_of(member)
    for position, (origin, record, error) in enumerate(records):
        if record is None:
            result.rejected.append({"origin": origin, "reason": "unparseable", "detail": error})
            continue
        row = {str(key).strip().lower(): value for key, value in record.items()}
        item = _item(row, file_subject, name, position, origin)
        if isinstance(item, dict):
            result.rejected.append(item)
        else:
            result.items.append(item)


def _records(where: str, member: str, opener) -> list[tuple[str, dict | None, str | None]]:
    """(origin, row or None, why not) per row. JSON files on disk go through `io.read_rows`, so a
    broken line is one reject with its line number; tables through pandas."""
    path = getattr(opener, "path", None)
    if path is not None and Path(member).suffix.lower() in (".json", ".jsonl"):
        from instruct_data.io import read_rows

        rows = [(f"{where}:{row.origin.line or row.origin.row}", row.data, row.error) for row in read_rows(path)]
        columns = next((list(data) for _, data, _ in rows if isinstance(data, dict)), [])
        rows = [(o, d if isinstance(d, dict) else None, e or ("not an object" if d is not None else e)) for o, d, e in rows]
    else:
        try:
            frame = _read_table(member, opener)
        except Exception as exc:  # noqa: BLE001 (a table pandas cannot parse: the whole file is unreadable)
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            hint = " (save it as UTF-8)" if isinstance(exc, UnicodeDecodeError) else ""
            raise InputError(where, f"cannot read this table: {detail}{hint}") from None
        columns = list(frame.columns)
        rows = [(f"{where}:row {i + 1}", record, None) for i, record in enumerate(frame.to_dict("records"))]
    if not looks_multiple_choice(columns):
        raise InputError(where, "not a multiple-choice table: need columns question, A, B, C, D and answer "
                                f"(found {', '.join(map(str, columns)) or 'no columns'})")
    return rows


def _text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # NaN from a JSON null
        return ""
    return str(value).strip()


def _item(row: dict, file_subject: str, name: str, position: int, origin: str) -> ChoiceItem | dict:
    question = _text(row.get("question"))
    if not question:
        return {"origin": origin, "reason": "empty_question", "detail": "no question text"}
    options = {letter: _text(row.get(letter.lower())) for letter in LETTERS}
    missing = [letter for letter, text in options.items() if not text]
    if missing:
        return {"origin": origin, "reason": "missing_option", "detail": f"option {', '.join(missing)} empty"}
    answer = _text(row.get("answer")).upper().rstrip(".．。")
    if answer not in LETTERS:
        return {"origin": origin, "reason": "bad_answer",
                "detail": f"answer {row.get('answer')!r} is not one of {', '.join(LETTERS)}"}
    own_subject = _text(row.get("subject")) or _text(row.get("category"))
    subject = own_subject or file_subject
    own_id = _text(row.get("id"))
    # C-Eval numbers its rows 0, 1, ... in every subject's file: the subject makes them unique.
    item_id = own_id if own_id and own_subject else f"{subject}:{own_id or position}"
    return ChoiceItem(id=item_id, subject=subject or None, question=question,
                      options=options, answer=answer, explanation=_text(row.get("explanation")) or None, origin=origin)


# ---------------------------------------------------------------- named benchmarks


def is_choice_benchmark(benchmark: str, from_path: str | None = None) -> bool:
    """A registry entry of format multiple_choice, or a file or folder in a multiple-choice layout."""
    from instruct_data.evaluation.benchmarks import registry

    from instruct_data.evaluation.heldout import build_folder

    entry = registry().get(benchmark)
    if entry is not None:
        return entry.get("format") == "multiple_choice"
    path = from_path or benchmark
    return not (Path(path).is_dir() and build_folder(path)) and is_multiple_choice(path)


def load_choice_benchmark(benchmark: str, from_path: str | None = None, *, split: str | None = None,
                          shots_from: str | None = None, limit: int | None = None,
                          per_category: int | None = None) -> tuple[dict, ChoiceSet]:
    """(description for results.json, items) of a registered name (shipped, hub, or --from) or a path."""
    from instruct_data.evaluation.benchmarks import data_dir, resolve
    from instruct_data.io import file_sha256

    name, path, entry = resolve(benchmark, from_path)
    entry = entry or {}
    dev = shots_from or (data_dir() / entry["dev_file"] if entry.get("dev_file") and not from_path else None)
    data = load_choices(path, split=split or entry.get("split"), dev_path=dev, name=name)
    data.style = entry.get("prompt_style") or _style_of(data)
    data.items = _quick_look(data.items, limit, per_category)
    info = {"name": name, "path": str(path), "format": "multiple_choice", "split": data.split,
            "sha256": file_sha256(path) if path.is_file() else None, "files": data.files,
            "items": len(data.items), "subjects": len({i.subject for i in data.items}),
            "dev_items": sum(len(v) for v in data.dev.values()), "prompt_style": data.style,
            "rejected": len(data.rejected), "rejects": data.rejected[:20]}
    if dev:
        info["dev_path"] = str(dev)
    if entry.get("hub"):
        info["hub"] = entry["hub"]
    if entry:
        info["registry_sha256"] = entry.get("sha256")
        if entry.get("sha256") and info["sha256"]:
            info["sha256_matches_registry"] = entry["sha256"] == info["sha256"]
    return info, data


def _style_of(data: ChoiceSet) -> str:
    """C-Eval's header for a source in C-Eval's layout (a val split, or only C-Eval's subjects), else CMMLU's."""
    from instruct_data.evaluation.multiple_choice import subject_names

    names = subject_names()
    subjects = {item.subject for item in data.items}
    ceval_only = subjects <= set(names["ceval"]) and not subjects <= set(names["cmmlu"])
    return "ceval" if data.split == "val" or ceval_only else "cmmlu"


def _quick_look(items: list[ChoiceItem], limit: int | None, per_subject: int | None) -> list[ChoiceItem]:
    if per_subject is not None:
        seen: dict[str | None, int] = defaultdict(int)
        kept = []
        for item in items:
            seen[item.subject] += 1
            if seen[item.subject] <= per_subject:
                kept.append(item)
        items = kept
    return items[:limit] if limit is not None else items
