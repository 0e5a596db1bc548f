"""What the view shows of a build folder, read from its manifest and ledger files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instruct_data.view.texts import conversation_text, differences, row_text

RECORD = re.compile(r"^(?P<base>.+)#t(?P<round>\d+)$")  # one record of a dialogue: its reply in round N


def build_data(folder: Path, manifest: dict[str, Any], max_items: int) -> dict[str, Any]:
    """The page's data: the ledger, the rejects, the duplicate pairs and the length histograms.
    At most `max_items` rejects and duplicate pairs are embedded (the page says how many more)."""
    rejects, more_rejects = _take(_lines(folder / "rejects.jsonl"), max_items)
    duplicates, more_duplicates = _take(_lines(folder / "duplicates.jsonl"), max_items)
    kept = _kept_texts(folder, {d.get("duplicate_of") for d in duplicates})
    counts = manifest.get("counts", {})
    return {
        "kind": "build",
        "title": folder.name,
        "totals": counts.get("totals", {}),
        "balanced": counts.get("balanced"),
        "per_source": counts.get("per_source", {}),
        "rejects_by_reason": {reason: sum(v.values()) for reason, v in (counts.get("rejects_by_reason") or {}).items()},
        "duplicates_by_method": counts.get("duplicates_by_method", {}),
        "split": manifest.get("split", {}),
        "template": manifest.get("template"),
        "lengths": _lengths(manifest.get("stats") or {}),
        "rejects": [_reject(r) for r in rejects],
        "more_rejects": more_rejects,
        "pairs": [_pair(d, kept) for d in duplicates],
        "more_pairs": more_duplicates,
    }


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _take(rows: Iterator[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    taken, more = [], 0
    for row in rows:
        if len(taken) < limit:
            taken.append(row)
        else:
            more += 1
    return taken, more


def _reject(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row.get("id"), "reason": f"{row.get('stage')}/{row.get('reason')}", "detail": row.get("detail"),
            "origin": row.get("origin"), "source": row.get("source"), "text": row_text(row.get("raw"))}


def _kept_texts(folder: Path, wanted: set[str | None]) -> dict[str, tuple[str, str]]:
    """id -> (where, text) of each kept record a removed one was matched with: a training
    conversation (up to the matched round) or a held-out item."""
    wanted.discard(None)
    bases = {(m.group("base") if (m := RECORD.match(i)) else i): i for i in wanted}
    found: dict[str, tuple[str, str]] = {}
    for row in _lines(folder / "heldout.jsonl"):
        for key in (row.get("id"), (m.group("base") if (m := RECORD.match(row.get("id") or "")) else None)):
            if key in wanted or key in bases:
                found[bases.get(key, key)] = ("held-out", f"{row.get('context', '')}{row.get('target', '')}")
    for row in _lines(folder / "conversations.jsonl"):
        for target in [i for i in wanted if i not in found and (i == row.get("id") or bases.get(row.get("id")) == i)]:
            match = RECORD.match(target)
            found[target] = ("train", conversation_text(row, int(match.group("round")) if match else None))
    return found


def _pair(row: dict[str, Any], kept: dict[str, tuple[str, str]]) -> dict[str, Any]:
    removed_text = _removed_text(row)
    where, kept_text = kept.get(row.get("duplicate_of"), ("elsewhere", ""))
    left, right = differences(removed_text, kept_text) if kept_text else ([[0, removed_text]], [])
    return {"id": row.get("id"), "of": row.get("duplicate_of"), "method": row.get("method"),
            "similarity": row.get("similarity"), "source": row.get("source"), "kept_in": where,
            "left": left, "right": right}


def _removed_text(row: dict[str, Any]) -> str:
    raw = row.get("raw")
    match = RECORD.match(row.get("id") or "")
    if isinstance(raw, dict) and isinstance(raw.get("turns"), list) and match:
        return conversation_text(raw, int(match.group("round")))
    return row_text(raw)


def _lengths(stats: dict[str, Any]) -> dict[str, Any]:
    bins = stats.get("length_bins") or []
    return {"bins": bins, "instruction": stats.get("instruction_length") or [],
            "reply": stats.get("reply_length") or []}
