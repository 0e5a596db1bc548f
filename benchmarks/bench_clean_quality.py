"""How well the cleaning rules judge real rows, measured on the hand-labeled quality set.

    python benchmarks/bench_clean_quality.py                    # the frozen test split (default)
    python benchmarks/bench_clean_quality.py --split dev        # the rows rules may be tuned on
    python benchmarks/bench_clean_quality.py --json > out.json  # the same numbers for a script
    python benchmarks/bench_clean_quality.py --split dev --show-rows   # list false drops and misses

The labeled set (benchmarks/clean_quality/, see GUIDE.md) is assembled from its pointers into
../shared/data and clones of public repositories (--data, --mirrors); a source that is not on
this machine is reported as skipped and the rest is measured (exit 0).

What it reports, each share with its 95% Wilson interval:
  * each filter alone, switched on, after the default normalizers: how often it fires (drops
    or cuts a dialogue), its precision (share of its firings on rows labeled drop) and its
    recall (share of the rows labeled drop *for its reason* it fires on); a default-on rule is
    flagged when precision < 0.95 or it fired fewer than 20 times (issue 19's bar);
  * the default cleaner and each shipped recipe's cleaner, whole: precision and recall of all
    rows labeled drop (a dialogue counts as caught when the labeled bad turn is gone);
  * the same per source;
  * kept garbage: of the randomly drawn rows the default cleaner keeps whole, the share
    labeled drop;
  * facts the normalizers (and PII masking) change on rows the default cleaner keeps: numbers,
    code and layout changed, with examples.
Listing single rows of the test split invites tuning on it: --show-rows does it on request.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "clean_quality"))

import yaml  # noqa: E402
from assemble import LabeledRow, load  # noqa: E402
from sources import DATA, MIRRORS, to_conversation  # noqa: E402

from instruct_data.clean import NORMALIZERS, CleanSettings, Cleaner  # noqa: E402
from instruct_data.clean.filters import FILTERS  # noqa: E402
from instruct_data.table import Reject  # noqa: E402
from instruct_data.schema import Conversation  # noqa: E402

BAR = 0.95  # issue 19: every default-on rule reaches this precision ...
MIN_FIRINGS = 20  # ... over at least this many firings on test
Z95 = 1.959964
# The labeled reason each filter is meant to catch (its recall is measured against it). A filter
# not listed has no recall figure; its precision counts every labeled drop it fires on.
RULE_REASONS = {"ai_identity": "ai_identity", "refusal": "refusal", "truncated": "truncated",
                "unk_tokens": "unk_tokens", "chinese_share": "wrong_language", "wrong_script": "wrong_language",
                "missing_attachment": "missing_input", "copied_page": "copied_text", "repetition": "repetition",
                "arithmetic": "wrong_answer", "non_answer": "unhelpful", "echo": "unhelpful",
                "empty": "unhelpful", "belle_blacklist": "ai_identity", "lost_tools": "tools_missing",
                "missing_tools": "tools_missing", "deflection": "unhelpful", "unseen_attachment": "missing_input",
                "garbled": "garbled", "terse_reply": "unhelpful",
                "stray_first_turn": "garbled"}
MASKERS = {"pii"}  # filters that mask text instead of dropping: reported with the facts changed


# ------------------------------------------------------------------ arithmetic of shares
def wilson(hits: int, n: int) -> tuple[float, float] | None:
    """95% Wilson score interval of hits/n (None when n is 0): unlike hits/n ± 1.96·se it stays
    inside [0, 1] and is honest for small n and shares near 0 or 1."""
    if n == 0:
        return None
    p = hits / n
    centre = (p + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
    half = Z95 / (1 + Z95 ** 2 / n) * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n))
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


def share(hits: int, n: int) -> dict[str, Any]:
    return {"hits": hits, "n": n, "value": round(hits / n, 3) if n else None, "ci95": wilson(hits, n)}


def score(fired: list[bool], drop: list[bool], relevant: list[bool], caught: list[bool] | None = None) -> dict:
    """Precision over the rows fired on; recall over the relevant rows (caught: fired, unless a
    finer test says the bad part is gone)."""
    caught = fired if caught is None else caught
    n_fired = sum(fired)
    correct = sum(f and d for f, d in zip(fired, drop))
    found = sum(c and r for c, r in zip(caught, relevant))
    return {"fired": n_fired, "correct": correct, "precision": share(correct, n_fired),
            "recall": share(found, sum(relevant)), "relevant": sum(relevant)}


# ------------------------------------------------------------------ rows to conversations
def conversation_of(row: LabeledRow) -> Conversation | None:
    parsed = to_conversation(row.where, row.source, row.position, row.record, row.fmt)
    return None if isinstance(parsed, Reject) else parsed


def normalized(conversation: Conversation) -> Conversation:
    out = copy.deepcopy(conversation)
    for normalizer in Cleaner().normalizers:
        normalizer.apply(out)
    return out


def replies(conversation: Conversation) -> list[str]:
    return [t.text for t in conversation.turns if t.role == "assistant"]


def excerpt(text: str, width: int = 90) -> str:
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= width else text[:width - 25] + " … " + text[-22:]


# ------------------------------------------------------------------ measures
def alone(name: str) -> Any:
    """The default settings with every filter off but `name` (switched on with its default
    parameters): the rule judged as a build runs it, through the Cleaner (which shows filters
    the prose of tool dialogues only, cuts dialogues, and so on)."""
    defaults = CleanSettings()
    blocks = {rule.name: {**getattr(defaults, rule.name).model_dump(), "enabled": rule.name == name}
              for rule in FILTERS}
    return CleanSettings.model_validate({**defaults.model_dump(), **blocks})


def per_rule(rows: list[LabeledRow], convs: list[Conversation]) -> tuple[list[dict], list[dict]]:
    """Each filter alone, switched on, after the default normalizers, run through the Cleaner."""
    defaults = CleanSettings()
    drop = [r.drop for r in rows]
    results, false_drops = [], []
    for rule_class in FILTERS:
        if rule_class.name in MASKERS:
            continue
        verdicts = judged(rows, convs, alone(rule_class.name))
        fired = [v["fired"] for v in verdicts]
        for row, conversation, v in zip(rows, convs, verdicts):
            if v["fired"] and not row.drop:
                texts = replies(conversation)
                false_drops.append({"rule": rule_class.name, "where": row.where, "detail": v["detail"],
                                    "excerpt": excerpt(texts[(v["turn"] or len(texts)) - 1] if texts else "")})
        reason = RULE_REASONS.get(rule_class.name)
        relevant = [r.drop and r.reason == reason for r in rows]
        result = score(fired, drop, relevant, [v["caught"] for v in verdicts])
        on = getattr(defaults, rule_class.name).enabled
        result.update(rule=rule_class.name, default_on=on, reason=reason,
                      below_bar=bool(on and (result["fired"] < MIN_FIRINGS
                                             or result["precision"]["value"] is not None
                                             and result["precision"]["value"] < BAR)))
        if reason is None:
            result["recall"] = share(0, 0)
        results.append(result)
    return results, false_drops


def judged(rows: list[LabeledRow], convs: list[Conversation], settings: Any) -> list[dict[str, Any]]:
    """One cleaner, all its rules, on each row: dropped, cut, kept; whether the bad turn is gone."""
    cleaner = Cleaner(settings)
    out = []
    for row, conversation in zip(rows, convs):
        work = copy.deepcopy(conversation)
        before = replies(normalized(conversation))
        verdict, changed = cleaner.clean(work)
        cut = any(c.startswith("turns_cut.") for c in changed)
        bad = before[(row.turn or len(before)) - 1] if before else ""
        gone = verdict is not None or (cut and bad not in replies(work))
        rule = verdict.reason if verdict else next((c[len("turns_cut."):] for c in changed
                                                    if c.startswith("turns_cut.")), None)
        out.append({"fired": verdict is not None or cut, "caught": gone, "kept_whole": verdict is None and not cut,
                    "rule": rule, "detail": verdict.detail if verdict else ("dialogue cut" if cut else ""),
                    "turn": verdict.turn if verdict else None})
    return out


def whole(rows: list[LabeledRow], verdicts: list[dict]) -> dict[str, Any]:
    drop = [r.drop for r in rows]
    fired = [v["fired"] for v in verdicts]
    caught = [v["caught"] for v in verdicts]
    result = score(fired, drop, drop, caught)
    judgeable = [r.drop and r.reason != "wrong_answer" for r in rows]
    result["recall_without_wrong_answer"] = score(fired, drop, judgeable, caught)["recall"]
    result["missed_by_reason"] = dict(Counter(r.reason for r, c in zip(rows, caught) if r.drop and not c).most_common())
    result["fired_by_rule"] = dict(Counter(v["rule"] for v in verdicts if v["fired"]).most_common())
    return result


def _random(rows: list[LabeledRow], verdicts: list[dict]) -> tuple[list[LabeledRow], list[dict]]:
    pairs = [(r, v) for r, v in zip(rows, verdicts) if r.sampled.startswith("random:")]
    return [r for r, _ in pairs], [v for _, v in pairs]


def per_source(rows: list[LabeledRow], verdicts: list[dict]) -> list[dict[str, Any]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[row.source].append(i)
    out = []
    for source, idx in groups.items():
        sub_rows = [rows[i] for i in idx]
        sub = score([verdicts[i]["fired"] for i in idx], [r.drop for r in sub_rows], [r.drop for r in sub_rows],
                    [verdicts[i]["caught"] for i in idx])
        out.append({"source": source, "rows": len(idx), "labeled_drop": sum(r.drop for r in sub_rows), **sub})
    return out


def kept_garbage(rows: list[LabeledRow], verdicts: list[dict]) -> dict[str, Any]:
    """Of the randomly drawn rows the default cleaner keeps whole, the share labeled drop."""
    kept = [(r, v) for r, v in zip(rows, verdicts) if r.sampled.startswith("random:") and v["kept_whole"]]
    bad = [r for r, _ in kept if r.drop]
    return {**share(len(bad), len(kept)), "random_rows": sum(r.sampled.startswith("random:") for r in rows),
            "by_reason": dict(Counter(r.reason for r in bad).most_common()),
            "by_source": {s: share(sum(r.drop for r, _ in kept if r.source == s), sum(1 for r, _ in kept if r.source == s))
                          for s in sorted({r.source for r, _ in kept})}}


# ------------------------------------------------------------------ facts changed
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
FENCE = re.compile(r"```.*?(?:```|\Z)", re.S)
# Layout: inner runs of spaces, tabs and indentation of the lines that hold text. Blank lines
# and spaces at the ends of lines or of the text are not layout (a tidy text drops them).
LAYOUT = re.compile(r"(?<=\S) {2,}(?=\S)|\t|^ +(?=\S)", re.M)


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").split("\n") if line.strip()]


def facts(before: str, after: str) -> list[str]:
    """Which facts of a text a change touched: numbers, code (fenced blocks), layout (inner runs
    of spaces, tabs, indentation, where lines break); 'whitespace' for blank lines and spaces at
    line ends only; 'other' for the rest (invisible characters, letters...)."""
    found = []
    if Counter(NUMBER.findall(before)) != Counter(NUMBER.findall(after)):
        found.append("numbers")
    if FENCE.findall(before) != FENCE.findall(after):
        found.append("code")
    lines_before, lines_after = _lines(before), _lines(after)
    if [LAYOUT.findall(x) for x in lines_before] != [LAYOUT.findall(x) for x in lines_after] \
            or len(lines_before) != len(lines_after):
        found.append("layout")
    if not found:
        found.append("whitespace" if "".join(before.split()) == "".join(after.split()) else "other")
    return found


def first_difference(before: str, after: str, width: int = 30) -> str:
    """The texts around their first difference, line breaks as ⏎ and spaces as · so a layout
    change shows."""
    i = next((k for k, (a, b) in enumerate(zip(before, after)) if a != b), min(len(before), len(after)))
    show = lambda t: t[max(0, i - width):i + width].replace("\n", "⏎").replace(" ", "·")  # noqa: E731
    return f"…{show(before)}… → …{show(after)}…"


def texts_of(conversation: Conversation) -> list[str]:
    out = [conversation.system] if conversation.system else []
    for turn in conversation.turns:
        out += [turn.text] + ([turn.input] if turn.input else [])
    return out


def normalizer_facts(rows: list[LabeledRow], convs: list[Conversation], verdicts: list[dict]) -> list[dict]:
    """Each normalizer alone (and PII masking), on the rows the default cleaner keeps whole."""
    from instruct_data.clean.pii import Pii

    kept = [(r, c) for r, c, v in zip(rows, convs, verdicts) if v["kept_whole"]]
    defaults = CleanSettings()
    rules = [(n.name, getattr(defaults, n.name).enabled, n(n.Settings(enabled=True))) for n in NORMALIZERS]
    rules.append(("pii", defaults.pii.enabled, Pii()))
    out = []
    for name, on, rule in rules:
        counts, examples, changed_rows = Counter(), defaultdict(list), 0
        for row, conversation in kept:
            work = copy.deepcopy(conversation)
            if name == "pii":
                rule.filter(work)
            else:
                rule.apply(work)
            row_facts = set()
            for before, after in zip(texts_of(conversation), texts_of(work)):
                if before != after:
                    for fact in facts(before, after):
                        row_facts.add(fact)
                        if len(examples[fact]) < 3:
                            examples[fact].append({"where": row.where, "change": first_difference(before, after)})
            changed_rows += bool(row_facts)
            counts.update(row_facts)
        out.append({"rule": name, "default_on": on, "rows_kept": len(kept), "rows_changed": changed_rows,
                    "facts": dict(counts), "examples": dict(examples)})
    return out


# ------------------------------------------------------------------ the run
def recipes() -> dict[str, Any]:
    found = {}
    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "sources" in data:
            found[path.name] = CleanSettings.model_validate(data.get("clean") or {})
    return found


def run(data: Path = DATA, split: str = "test", mirrors: Path = MIRRORS, limit: int | None = None,
        label_files: list[Path] | None = None) -> dict[str, Any]:
    got = load(data, split, mirrors, files=label_files)
    pairs = [(r, conversation_of(r)) for r in got.rows[:limit]]
    unread = [r.where for r, c in pairs if c is None]
    rows = [r for r, c in pairs if c is not None]
    convs = [c for _, c in pairs if c is not None]
    result: dict[str, Any] = {
        "split": split, "rows": len(rows), "labeled_drop": sum(r.drop for r in rows),
        "skipped_sources": [{"source": s, "labels": got.skipped_rows[s], "why": why} for s, why in got.skipped.items()],
        "rejected_by_reader": unread, "bar": {"precision": BAR, "min_firings": MIN_FIRINGS},
    }
    if not rows:
        return result
    verdicts = judged(rows, convs, CleanSettings())
    rules, rule_false = per_rule(rows, convs)
    result.update({
        "drops_by_reason": dict(Counter(r.reason for r in rows if r.drop).most_common()),
        "sampled": dict(Counter(r.sampled.split(":")[0] for r in rows).most_common()),
        "rules": rules,
        "default": whole(rows, verdicts),
        # Rows drawn because a rule fired on them raise the pooled recall; the random rows alone
        # estimate what a user's file would see (per source, since each source was drawn apart).
        "default_random_rows": {k: v for k, v in whole(*_random(rows, verdicts)).items()
                                if k not in ("missed_by_reason", "fired_by_rule")},
        "by_source": per_source(rows, verdicts),
        "kept_garbage": kept_garbage(rows, verdicts),
        "facts_changed": normalizer_facts(rows, convs, verdicts),
        "recipes": {name: {k: v for k, v in whole(rows, judged(rows, convs, settings)).items()
                           if k not in ("missed_by_reason", "fired_by_rule")}
                    for name, settings in recipes().items()},
        "rule_false_drops": rule_false,
        "false_drops": [{"where": r.where, "rule": v["rule"], "detail": v["detail"]}
                        for r, v in zip(rows, verdicts) if v["fired"] and not r.drop],
        "missed": [{"where": r.where, "reason": r.reason, "note": r.note}
                   for r, v in zip(rows, verdicts) if r.drop and not v["caught"]],
    })
    return result


# ------------------------------------------------------------------ the report
def pct(s: dict[str, Any]) -> str:
    if s["value"] is None:
        return "–"
    low, high = s["ci95"]
    return f"{s['value']:.3f} [{low:.2f}, {high:.2f}]"


def print_report(result: dict[str, Any], show_rows: bool) -> None:
    print(f"Cleaning quality on the {result['split']} split: {result['rows']} labeled rows, "
          f"{result['labeled_drop']} labeled drop")
    for s in result["skipped_sources"]:
        print(f"  skipped {s['source']} ({s['labels']} labels): {s['why']}")
    if result["rejected_by_reader"]:
        print(f"  {len(result['rejected_by_reader'])} labeled rows the reader rejects (not measured): "
              f"{', '.join(result['rejected_by_reader'][:5])}")
    if not result["rows"]:
        print("\nNo labeled row could be read: the public files are not on this machine. Put ../shared/data "
              "beside the repository (or name it with --data) and clone the sources GUIDE.md lists under "
              "--mirrors; nothing was measured.")
        return
    print(f"  drops by reason: {', '.join(f'{k} {v}' for k, v in result['drops_by_reason'].items())}")
    print(f"  rows drawn: {', '.join(f'{k} {v}' for k, v in result['sampled'].items())}")
    bar = result["bar"]
    print(f"\nEach filter alone, switched on (precision and recall with 95% Wilson intervals; "
          f"'!' marks a default-on rule below {bar['precision']} precision or under {bar['min_firings']} firings)")
    print(f"  {'rule':<19}{'on':>4}{'fired':>7}{'right':>7}  {'precision':<22}{'recall (of its reason)':<34}")
    for r in result["rules"]:
        recall = f"{pct(r['recall'])} of {r['relevant']} {r['reason']}" if r["reason"] else "–"
        print(f"{'!' if r['below_bar'] else ' '} {r['rule']:<19}{'on' if r['default_on'] else 'off':>4}"
              f"{r['fired']:>7}{r['correct']:>7}  {pct(r['precision']):<22}{recall}")
    d = result["default"]
    print(f"\nDefault cleaner: precision {pct(d['precision'])} ({d['correct']} of {d['fired']} fired), "
          f"recall {pct(d['recall'])} (of {d['relevant']} labeled drop); without wrong_answer rows "
          f"{pct(d['recall_without_wrong_answer'])}")
    r = result["default_random_rows"]
    print(f"  randomly drawn rows only: precision {pct(r['precision'])}, recall {pct(r['recall'])} "
          f"(of {r['relevant']} labeled drop; rule-drawn rows left out, they raise recall)")
    print(f"  fired by reason code: {', '.join(f'{k} {v}' for k, v in d['fired_by_rule'].items()) or '–'}")
    print(f"  missed by reason: {', '.join(f'{k} {v}' for k, v in d['missed_by_reason'].items()) or '–'}")
    for name, r in result["recipes"].items():
        print(f"Recipe {name}: precision {pct(r['precision'])}, recall {pct(r['recall'])} ({r['fired']} fired)")
    print(f"\nPer source (default cleaner)")
    print(f"  {'source':<31}{'rows':>5}{'drop':>6}{'fired':>6}  {'precision':<22}{'recall':<22}")
    for s in result["by_source"]:
        print(f"  {s['source']:<31}{s['rows']:>5}{s['labeled_drop']:>6}{s['fired']:>6}  "
              f"{pct(s['precision']):<22}{pct(s['recall']):<22}")
    k = result["kept_garbage"]
    print(f"\nKept garbage: {pct(k)} of the {k['n']} randomly drawn rows the default cleaner keeps whole "
          f"({k['hits']} labeled drop: {', '.join(f'{a} {b}' for a, b in k['by_reason'].items()) or 'none'})")
    for source, s in k["by_source"].items():
        print(f"  {source:<31}{pct(s)} of {s['n']}")
    print("\nFacts changed on rows the default cleaner keeps whole (each rule alone)")
    for n in result["facts_changed"]:
        facts_text = ", ".join(f"{f} {c}" for f, c in n["facts"].items()) or "nothing"
        print(f"  {n['rule']:<24}{'on' if n['default_on'] else 'off':>4}  {n['rows_changed']:>4} of {n['rows_kept']} rows: "
              f"{facts_text}")
        for fact in ("numbers", "code", "layout"):
            for e in n["examples"].get(fact, [])[:2]:
                print(f"      {fact}: {e['where']}  {e['change']}")
    if not show_rows:
        print(f"\n{len(result['false_drops'])} false drops and {len(result['missed'])} missed drops not listed "
              f"(--show-rows lists them{'; do not tune rules on the test split' if result['split'] != 'dev' else ''}).")
        return
    print(f"\nFalse drops of the default cleaner ({len(result['false_drops'])}):")
    for f in result["false_drops"]:
        print(f"  {f['where']}  [{f['rule']}] {f['detail']}")
    print(f"\nRows labeled drop the default cleaner keeps ({len(result['missed'])}):")
    for f in result["missed"]:
        print(f"  {f['where']}  [{f['reason']}] {f['note']}")
    off = {r["rule"] for r in result["rules"] if not r["default_on"]}
    alone = [f for f in result["rule_false_drops"] if f["rule"] not in off]
    print(f"\nFalse drops of each default-on rule alone ({len(alone)}):")
    for f in alone:
        print(f"  {f['where']}  [{f['rule']}] {f['detail']}\n      {f['excerpt']}")


MEASURED_FILE = Path(__file__).resolve().parents[1] / "instruct_data" / "data" / "clean_measured.json"


def write_measured(result: dict, path: Path) -> None:
    """Each rule's precision on the test split, with its interval and firings, for the dataset
    card (instruct_data/export/card.py); the commit and the rows measured say what it is of."""
    import subprocess

    commit = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    rules = {r["rule"]: {"precision": r["precision"]["value"], "interval": r["precision"]["ci95"], "fired": r["fired"]}
             for r in result["rules"] if r["fired"]}
    record = {"split": result["split"], "rows": result["rows"], "labeled_drop": result["labeled_drop"],
              "commit": commit, "skipped_sources": [s["source"] for s in result["skipped_sources"]], "rules": rules}
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}: the precision of {len(rules)} rules on {result['rows']} test rows", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test",
                        help="which labels to measure on (default: %(default)s, the frozen split)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--show-rows", action="store_true", help="list false drops and missed drops row by row")
    parser.add_argument("--limit", type=int, help="use the first N labeled rows only")
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding the public files (default: %(default)s)")
    parser.add_argument("--mirrors", type=Path, default=MIRRORS,
                        help="folder holding clones of the other sources (default: $IDATA_QUALITY_MIRRORS or %(default)s)")
    parser.add_argument("--labels", type=Path, action="append",
                        help="measure these label files instead of the split's (repeatable; for tests)")
    parser.add_argument("--write-measured", type=Path, nargs="?", const=MEASURED_FILE, default=None, metavar="FILE",
                        help="write each rule's precision on the test split where `idata export --to hf` quotes it "
                             "in the dataset card (default: %(const)s)")
    args = parser.parse_args(argv)
    if args.write_measured and (args.split != "test" or args.labels or args.limit):
        parser.error("--write-measured records the whole frozen test split: no --split dev, --labels or --limit")
    result = run(args.data, args.split, args.mirrors, args.limit, args.labels)
    if args.write_measured:
        write_measured(result, args.write_measured)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print_report(result, args.show_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
