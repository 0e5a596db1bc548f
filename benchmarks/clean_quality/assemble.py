"""Assemble the labeled cleaning quality set from its pointers (see GUIDE.md).

    python benchmarks/clean_quality/assemble.py                 # checks every pointer, prints counts
    python benchmarks/clean_quality/assemble.py --split test    # the frozen test split only
    python benchmarks/clean_quality/assemble.py --data DIR --mirrors DIR

Label files (JSON lines, one label a line):
  labels.jsonl  the first 705 rows (../shared/data): the rules were tuned on them, all dev
  test.jsonl    the frozen test split (never tune a rule on it)
  dev.jsonl     rows added later that the split sends to dev

Each label points at one raw record (source + 1-based position, `instance` for a seed task)
and carries the record's SHA-256; a record that moved or changed stops the run with the
label's line, so the benchmark never measures rows other than the ones labeled. A source that
is not on this machine is skipped, with the reason (`Assembled.skipped`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sources import DATA, MIRRORS, SOURCES, Absent, Source, flattened, record_hash  # noqa: E402

LEGACY = HERE / "labels.jsonl"
LABEL_FILES = {"dev": (LEGACY, HERE / "dev.jsonl"), "test": (HERE / "test.jsonl",)}
TEST_SHARE = 0.8  # of new rows, the share the hash sends to test
# Rows issue 19 quotes as examples of wrong decisions: people tuning rules have read them.
QUOTED_IN_ISSUE = {("oaast_sft_zh.json", 171), ("glaive_toolcall_zh_demo.json", 47),
                   ("glaive_toolcall_zh_demo.json", 211)}
REASONS = ("ai_identity", "refusal", "truncated", "unk_tokens", "wrong_language", "missing_input", "wrong_answer",
           "unhelpful", "copied_text", "repetition", "garbled", "tools_missing")


def legacy_rows(labels: Path = LEGACY) -> set[tuple[str, int]]:
    rows = set()
    for line in labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        rows.add((label["file"], label.get("row", label.get("line"))))
    return rows


def split_of(source: str, position: int, legacy: set[tuple[str, int]]) -> str:
    """dev or test for one source row (all instances of a seed task go together).

    A row the rules were tuned on (labels.jsonl) or that the issue quotes is dev; any other row
    goes to test when the first 8 hex digits of sha256("<source>:<position>"), read as a
    fraction of 16**8, fall below TEST_SHARE, else to dev."""
    if (source, position) in legacy or (source, position) in QUOTED_IN_ISSUE:
        return "dev"
    digest = hashlib.sha256(f"{source}:{position}".encode()).hexdigest()
    return "test" if int(digest[:8], 16) / 16 ** 8 < TEST_SHARE else "dev"


@dataclass
class LabeledRow:
    """One labeled row: where it is, the record the reader gets, and the label."""

    where: str  # source:position or source:position#instance
    source: str
    position: int
    record: dict[str, Any]
    fmt: str  # the project's format name, "" for a table read through the column aliases
    label: str  # keep | drop
    reason: str | None
    turn: int | None  # the bad assistant turn of a dialogue (1-based), None for the last
    note: str
    split: str
    sampled: str  # how the row was chosen (GUIDE.md: "How the rows were chosen")

    @property
    def drop(self) -> bool:
        return self.label == "drop"


@dataclass
class Assembled:
    rows: list[LabeledRow]
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it was not read
    skipped_rows: Counter = field(default_factory=Counter)  # source -> labels not measured


def _label_source(label: dict[str, Any]) -> tuple[str, int]:
    if "file" in label:  # the first 705 labels
        return label["file"], label.get("row", label.get("line"))
    return label["source"], label["position"]


def label_files(split: str) -> list[Path]:
    if split == "all":
        return [*LABEL_FILES["dev"], *LABEL_FILES["test"]]
    return list(LABEL_FILES[split])


def load(data_dir: Path = DATA, split: str = "all", mirrors: Path = MIRRORS,
         files: list[Path] | None = None) -> Assembled:
    """Every labeled row of the split, checked against its hash and its split; SystemExit naming
    the label on a mismatch. Sources not on this machine are skipped (see `Assembled`)."""
    legacy = legacy_rows()
    records: dict[str, list[dict[str, Any]]] = {}
    out = Assembled(rows=[])
    for path in files or label_files(split):
        if not path.exists():
            continue
        # the set's own files must agree with the split rule; another label file (a test's) need not
        expected = next((split for split, paths in LABEL_FILES.items() if path.resolve() in paths), None)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            label = json.loads(line)
            name, position = _label_source(label)
            source = SOURCES.get(name) or _local_source(label)
            if source is None:
                raise SystemExit(f"{path}:{number}: unknown source {name!r} (known: {', '.join(SOURCES)}; "
                                 "a label of another file in --data names its `format`)")
            row_split = split_of(name, position, legacy)
            if expected and row_split != expected:
                raise SystemExit(f"{path}:{number}: {name}:{position} belongs to {row_split} by the split rule, "
                                 f"not to {expected}")
            if name not in records and name not in out.skipped:
                try:
                    records[name] = source.read(data_dir, mirrors)
                except Absent as why:
                    out.skipped[name] = str(why)
            if name in out.skipped:
                out.skipped_rows[name] += 1
                continue
            out.rows.append(_labeled(path, number, label, source, records[name], position, row_split))
    return out


def _local_source(label: dict[str, Any]) -> Source | None:
    """A file in --data that sources.py does not list, read as the label's `format` says (the
    small labeled fixture the tests ship is one)."""
    if "file" not in label or "format" not in label:
        return None
    return Source(label["file"], label["format"], "json" if label["file"].endswith(".json") else "jsonl")


def _labeled(path: Path, number: int, label: dict[str, Any], source, records: list, position: int,
             row_split: str) -> LabeledRow:
    if not 1 <= position <= len(records):
        raise SystemExit(f"{path}:{number}: {source.name} has {len(records)} records, no {position}")
    raw = records[position - 1]
    if record_hash(raw) != label["sha256"]:
        raise SystemExit(f"{path}:{number}: {source.name}:{position} no longer matches its sha256")
    if label["label"] not in ("keep", "drop") or (label["label"] == "drop" and label.get("reason") not in REASONS):
        raise SystemExit(f"{path}:{number}: label must be keep, or drop with a reason of {', '.join(REASONS)}")
    instance = label.get("instance")
    where = f"{source.name}:{position}" + (f"#{instance}" if instance else "")
    return LabeledRow(where=where, source=source.name, position=position, record=flattened(source, raw, instance),
                      fmt=source.fmt, label=label["label"], reason=label.get("reason"), turn=label.get("turn"),
                      note=label.get("note", ""), split=row_split,
                      sampled=label.get("sampled", "legacy" if path == LEGACY else "unknown"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the public files (default: %(default)s)")
    parser.add_argument("--mirrors", type=Path, default=MIRRORS,
                        help="folder holding clones of the other public repositories (default: %(default)s)")
    parser.add_argument("--split", choices=("dev", "test", "all"), default="all")
    args = parser.parse_args(argv)
    got = load(args.data, args.split, args.mirrors)
    rows = got.rows
    print(f"{len(rows)} labeled rows ({args.split}), all hashes and splits match")
    for name, why in got.skipped.items():
        print(f"  skipped {name} ({got.skipped_rows[name]} labels): {why}")
    print("  by split:  " + ", ".join(f"{k} {v}" for k, v in Counter(r.split for r in rows).items()))
    print("  by source: " + ", ".join(f"{k} {v}" for k, v in Counter(r.source for r in rows).items()))
    print("  labels:    " + ", ".join(f"{k} {v}" for k, v in Counter(r.label for r in rows).items()))
    print("  drops by reason: " + ", ".join(f"{k} {v}" for k, v in Counter(r.reason for r in rows if r.drop).most_common()))
    print("  sampled:   " + ", ".join(f"{k} {v}" for k, v in Counter(r.sampled.split(":")[0] for r in rows).most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
