"""What the view shows of an evaluation folder: each item with both answers and their scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instruct_data.view.texts import clip

HEADLINE = "rougeL_char"  # evaluation.metrics.HEADLINE, without importing the evaluation stack


def eval_data(folder: Path, results: dict[str, Any], max_items: int) -> dict[str, Any]:
    items, more = [], 0
    with open(folder / "predictions.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            if len(items) >= max_items:
                more += 1
                continue
            items.append(_item(json.loads(line)))
    return {"kind": "eval", "title": folder.name, "headline": HEADLINE, "items": items, "more_items": more,
            "model": _named(results.get("model"), "name_or_path"), "adapter": _named(results.get("adapter"), "path"),
            "worse_categories": results.get("worse_categories") or [],
            "categories": sorted({item["category"] for item in items})}


def _named(entry: Any, key: str) -> str | None:
    """What results.json records of the model or adapter (a dict of its path and hashes; a plain
    string in older results) as the name the page shows: it showed `[object Object]`."""
    return entry.get(key) if isinstance(entry, dict) else entry


def _item(row: dict[str, Any]) -> dict[str, Any]:
    tuned = (row.get("scores") or {}).get(HEADLINE)
    base = (row.get("base_scores") or {}).get(HEADLINE) if "base_prediction" in row else None
    if tuned is None or base is None:
        verdict = "n/a"
    else:
        verdict = "better" if tuned > base else "worse" if tuned < base else "same"
    return {"id": row.get("id"), "category": row.get("category") or "(none)",
            "prompt": clip(row.get("prompt") or ""), "reference": clip(row.get("reference") or ""),
            "tuned": clip(row.get("prediction") or ""), "base": clip(row.get("base_prediction") or "")
            if "base_prediction" in row else None,
            "tuned_score": tuned, "base_score": base, "verdict": verdict}
