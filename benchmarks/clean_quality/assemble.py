"""Assemble the labeled cleaning quality set from `../shared/data/` (see GUIDE.md).

    python benchmarks/clean_quality/assemble.py            # checks every pointer, prints counts
    python benchmarks/clean_quality/assemble.py --data DIR

Each label in labels.jsonl points at one raw record (file + row, line, or line + instance)
and carries the SHA-256 of that record; a record that moved or changed stops the run with
the label's line, so the benchmark never measures rows other than the ones labeled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LABELS = Path(__file__).with_name("labels.jsonl")
DATA = ROOT.parent / "shared" / "data"

# How each public file is read: the project's format name for its records.
FILE_FORMATS = {
    "alpaca_zh_demo.json": "alpaca",
    "oaast_sft_zh.json": "alpaca",
    "prompt_response_sample.jsonl": "prompt_response",
    "belle_zh_seed_tasks.jsonl": "belle_seed_tasks",
}


@dataclass
class LabeledRow:
    """One labeled row: where it is, the raw record, and the label."""

    where: str  # file:row, file:line or file:line#instance
    record: dict[str, Any]  # the row as the reader sees it (a seed task's instance flattened)
    fmt: str
    label: str  # keep | drop
    reason: str | None
    turn: int | None  # the bad assistant turn of a dialogue (1-based), None for the last
    note: str

    @property
    def drop(self) -> bool:
        return self.label == "drop"


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _records(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def load(data_dir: Path = DATA, labels: Path = LABELS) -> list[LabeledRow]:
    """Every labeled row, checked against its hash; SystemExit naming the label on a mismatch."""
    files: dict[str, list[dict[str, Any]]] = {}
    rows = []
    for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        label = json.loads(line)
        name = label["file"]
        if name not in files:
            path = data_dir / name
            if not path.exists():
                raise SystemExit(f"{labels}:{number}: {path} is missing (is ../shared/data beside the repo?)")
            files[name] = _records(path)
        position = label.get("row", label.get("line"))
        record = files[name][position - 1]
        if record_hash(record) != label["sha256"]:
            raise SystemExit(f"{labels}:{number}: {name}:{position} no longer matches its sha256")
        where = f"{name}:{position}"
        fmt = FILE_FORMATS[name]
        if "instance" in label:
            where += f"#{label['instance']}"
            instance = record["instances"][label["instance"] - 1]
            record = {"instruction": record["instruction"], "input": instance.get("input", ""),
                      "output": instance.get("output", ""), "category": record.get("name")}
            fmt = "alpaca"
        rows.append(LabeledRow(where, record, fmt, label["label"], label.get("reason"), label.get("turn"),
                               label.get("note", "")))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the public files (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = load(args.data)
    print(f"{len(rows)} labeled rows, all hashes match")
    print("  by file:  " + ", ".join(f"{k} {v}" for k, v in Counter(r.where.split(":")[0] for r in rows).items()))
    print("  labels:   " + ", ".join(f"{k} {v}" for k, v in Counter(r.label for r in rows).items()))
    print("  drops by reason: " + ", ".join(f"{k} {v}" for k, v in Counter(r.reason for r in rows if r.drop).most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
