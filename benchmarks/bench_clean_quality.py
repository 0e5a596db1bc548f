"""How well the cleaning rules judge real rows: precision and recall of drops on the labeled set.

    python benchmarks/bench_clean_quality.py              # the tables, false drops with excerpts
    python benchmarks/bench_clean_quality.py --json       # the same numbers for a script
    python benchmarks/bench_clean_quality.py --limit 40   # the first 40 labeled rows only

The labeled set (benchmarks/clean_quality/, 705 rows of ../shared/data/ labeled keep/drop by
hand, see GUIDE.md) is assembled from its pointers. Each filter is run alone, switched on,
after the default normalizers: its precision is the share of the rows it fires on (drops, or
cuts a dialogue at) that are labeled drop; its recall is the share of the rows labeled drop
*for its reason* that it fires on. Then the default cleaner and each shipped recipe's cleaner
are run whole: precision and recall of all rows labeled drop. Normalizers are counted by the
rows they change.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "clean_quality"))

import yaml  # noqa: E402
from assemble import DATA, LabeledRow, load  # noqa: E402
from sources import to_conversation  # noqa: E402

from instruct_data.clean import NORMALIZERS, CleanSettings, Cleaner  # noqa: E402
from instruct_data.clean.filters import FILTERS  # noqa: E402
from instruct_data.formats import Rejected, parse_row  # noqa: E402
from instruct_data.io import Row  # noqa: E402
from instruct_data.schema import Conversation, Origin  # noqa: E402

BAR = 0.95
# The labeled reason each rule is meant to catch (recall is measured against it).
RULE_REASONS = {"ai_identity": "ai_identity", "refusal": "refusal", "truncated": "truncated",
                "unk_tokens": "unk_tokens", "chinese_share": "wrong_language", "missing_attachment": "missing_input",
                "copied_page": "copied_text"}


def conversation_of(row: LabeledRow) -> Conversation:
    parsed = to_conversation(row.where, row.source, row.position, row.record, row.fmt)
    if isinstance(parsed, Rejected):
        raise SystemExit(f"{row.where}: the reader rejects the row ({parsed.reason}: {parsed.detail})")
    return parsed


def normalized(conversation: Conversation) -> Conversation:
    out = copy.deepcopy(conversation)
    for normalizer in Cleaner().normalizers:
        normalizer.apply(out)
    return out


def excerpt(conversation: Conversation, turn: int | None, width: int = 90) -> str:
    replies = [t.text for t in conversation.turns if t.role == "assistant"]
    text = replies[(turn or len(replies)) - 1]
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= width else text[:width - 25] + " … " + text[-22:]


def score(fired: list[bool], drop: list[bool], relevant: list[bool] | None = None) -> dict[str, Any]:
    relevant = drop if relevant is None else relevant
    hits = sum(f and d for f, d in zip(fired, drop))
    caught = sum(f and r for f, r in zip(fired, relevant))
    n_fired, n_relevant = sum(fired), sum(relevant)
    return {"fired": n_fired, "correct": hits,
            "precision": round(hits / n_fired, 3) if n_fired else None,
            "recall": round(caught / n_relevant, 3) if n_relevant else None, "of": n_relevant}


def per_rule(rows: list[LabeledRow], convs: list[Conversation]) -> tuple[list[dict], list[dict]]:
    """Each filter alone, switched on, after the default normalizers."""
    defaults = CleanSettings()
    drop = [r.drop for r in rows]
    results, false_drops = [], []
    for rule_class in FILTERS:
        settings = rule_class.Settings.model_validate({**getattr(defaults, rule_class.name).model_dump(),
                                                       "enabled": True})
        rule = rule_class(settings)
        fired = []
        for row, conversation in zip(rows, convs):
            verdict = rule.filter(copy.deepcopy(conversation))
            fired.append(verdict is not None)
            if verdict is not None and not row.drop:
                false_drops.append({"rule": rule.name, "where": row.where, "detail": verdict.detail,
                                    "excerpt": excerpt(conversation, verdict.turn)})
        reason = RULE_REASONS.get(rule.name)
        relevant = [r.drop and r.reason == reason for r in rows] if reason else [False] * len(rows)
        result = {"rule": rule.name, "default_on": getattr(defaults, rule.name).enabled, "reason": reason,
                  **score(fired, drop, relevant)}
        results.append(result)
    return results, false_drops


def whole(rows: list[LabeledRow], convs: list[Conversation], settings: Any) -> dict[str, Any]:
    """One cleaner, all its rules: a row counts as judged bad when dropped or cut."""
    cleaner = Cleaner(settings)
    fired, misses, false, kept = [], Counter(), [], []
    for row, conversation in zip(rows, convs):
        work = copy.deepcopy(conversation)
        verdict, changed = cleaner.clean(work)
        hit = verdict is not None or any(c.startswith("turns_cut.") for c in changed)
        fired.append(hit)
        if row.drop and not hit:
            misses[row.reason] += 1
            kept.append({"where": row.where, "reason": row.reason, "note": row.note,
                         "excerpt": excerpt(conversation, row.turn)})
        if hit and not row.drop:
            rule = verdict.reason if verdict else next(c for c in changed if c.startswith("turns_cut."))
            false.append({"where": row.where, "rule": rule, "detail": verdict.detail if verdict else "dialogue cut",
                          "excerpt": excerpt(conversation, verdict.turn if verdict else None)})
    drop = [r.drop for r in rows]
    judgeable = [r.drop and r.reason != "wrong_answer" for r in rows]
    result = score(fired, drop)
    result["recall_without_wrong_answer"] = score(fired, drop, judgeable)["recall"]
    result["missed_by_reason"] = dict(misses.most_common())
    result["false_drops"] = false
    result["false_keeps"] = kept
    return result


def normalizer_changes(rows: list[LabeledRow], convs: list[Conversation]) -> list[dict[str, Any]]:
    out = []
    for normalizer_class in NORMALIZERS:
        normalizer = normalizer_class(normalizer_class.Settings(enabled=True))
        changed = [row.where for row, c in zip(rows, convs) if normalizer.apply(copy.deepcopy(c))]
        out.append({"normalizer": normalizer.name, "default_on": normalizer_class.Settings().enabled,
                    "rows_changed": len(changed), "examples": changed[:3]})
    return out


def pii_masks(rows: list[LabeledRow], convs: list[Conversation]) -> list[dict[str, str]]:
    """Every piece of text PII masking would replace, with its context: to read that no number
    in arithmetic and nothing in code is touched."""
    from instruct_data.clean.pii import Pii

    rule, found = Pii(), []
    for row, conversation in zip(rows, convs):
        texts = [conversation.system or ""] + [t.full_text for t in conversation.turns]
        for text in texts:
            for start, end, kind in rule.spans(text):
                found.append({"where": row.where, "kind": kind,
                              "context": text[max(0, start - 20):end + 12].replace("\n", " ⏎ ")})
    return found


def recipes() -> dict[str, Any]:
    found = {}
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "sources" in data:
            found[path.name] = CleanSettings.model_validate(data.get("clean") or {})
    return found


def run(data: Path = DATA, limit: int | None = None) -> dict[str, Any]:
    rows = load(data, "dev").rows[:limit]
    convs = [conversation_of(r) for r in rows]
    normal = [normalized(c) for c in convs]
    rules, rule_false = per_rule(rows, normal)
    return {
        "rows": len(rows), "labeled_drop": sum(r.drop for r in rows),
        "drops_by_reason": dict(Counter(r.reason for r in rows if r.drop).most_common()),
        "bar": BAR,
        "rules": rules,
        "rule_false_drops": rule_false,
        "normalizers": normalizer_changes(rows, convs),
        "pii_masks": pii_masks(rows, convs),
        "default": whole(rows, convs, CleanSettings()),
        "recipes": {name: {k: v for k, v in whole(rows, convs, settings).items() if k not in ("false_drops", "false_keeps")}
                    for name, settings in recipes().items()},
    }


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def print_report(result: dict[str, Any]) -> None:
    print(f"{result['rows']} labeled rows, {result['labeled_drop']} labeled drop "
          f"({', '.join(f'{k} {v}' for k, v in result['drops_by_reason'].items())})\n")
    print("Each filter alone (precision: labeled drop among the rows it fires on; recall: of the rows labeled drop for its reason)")
    print(f"{'rule':<20}{'default':>8}{'fired':>7}{'correct':>8}{'precision':>10}{'recall':>8}  reason")
    for r in result["rules"]:
        flag = "" if r["precision"] is None or r["precision"] >= BAR else "  < bar"
        print(f"{r['rule']:<20}{'on' if r['default_on'] else 'off':>8}{r['fired']:>7}{r['correct']:>8}"
              f"{_fmt(r['precision']):>10}{_fmt(r['recall']):>8}  {r['reason'] or ''} ({r['of']}){flag}")
    print("\nNormalizers: rows changed")
    for n in result["normalizers"]:
        print(f"  {n['normalizer']:<24}{'on' if n['default_on'] else 'off':>4}{n['rows_changed']:>6}  e.g. {', '.join(n['examples'])}")
    print(f"\nPII masking would replace {len(result['pii_masks'])} pieces of text:")
    for m in result["pii_masks"]:
        print(f"  {m['where']}  [{m['kind']}] …{m['context']}…")
    d = result["default"]
    print(f"\nDefault cleaner (rules on by default): precision {_fmt(d['precision'])}, recall {_fmt(d['recall'])} "
          f"({d['correct']} of {d['of']}; {d['fired']} fired); recall without wrong_answer rows "
          f"{_fmt(d['recall_without_wrong_answer'])}")
    print(f"  missed by reason: {', '.join(f'{k} {v}' for k, v in d['missed_by_reason'].items())}")
    for name, r in result["recipes"].items():
        print(f"Recipe {name}: precision {_fmt(r['precision'])}, recall {_fmt(r['recall'])} ({r['fired']} fired)")
    print(f"\nFalse drops of the default cleaner ({len(d['false_drops'])}):")
    for f in d["false_drops"]:
        print(f"  {f['where']}  [{f['rule']}] {f['detail']}\n      {f['excerpt']}")
    print(f"\nRows labeled drop that the default cleaner keeps ({len(d['false_keeps'])}):")
    for f in d["false_keeps"]:
        print(f"  {f['where']}  [{f['reason']}] {f['note']}\n      {f['excerpt']}")
    off_rules = {r["rule"] for r in result["rules"] if not r["default_on"]}
    others = [f for f in result["rule_false_drops"] if f["rule"] not in off_rules]
    print(f"\nFalse drops of each default-on rule alone ({len(others)}):")
    for f in others:
        print(f"  {f['where']}  [{f['rule']}] {f['detail']}\n      {f['excerpt']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--limit", type=int, help="use the first N labeled rows only")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the public files (default: %(default)s)")
    args = parser.parse_args(argv)
    result = run(args.data, args.limit)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
