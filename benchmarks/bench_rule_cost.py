"""CPU time one cleaning rule adds per row, on real files: a micro-benchmark for rules that are
off by default (benchmarks/profile_build.py times the rules a default build runs).

    python benchmarks/bench_rule_cost.py garbled missing_attachment
    python benchmarks/bench_rule_cost.py garbled --files ../shared/data/*.json* --repeat 7 --json

Reads each file the way `idata build` does (its format detected), runs the default normalizers
once, then times each named rule's `filter` over every row, switched on with its default
parameters, `--repeat` times; prints the fastest pass as CPU µs per row (`time.process_time`,
so that other jobs on a shared machine count less) and how many rows it fired on.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from instruct_data.clean import RULES_BY_NAME, Cleaner  # noqa: E402
from instruct_data.formats import read_conversations  # noqa: E402

DATA = HERE.parent.parent / "shared" / "data"


def conversations(paths: list[Path]) -> list:
    normalize = Cleaner({name: False for name, rule in RULES_BY_NAME.items() if not hasattr(rule, "normalize")})
    rows = []
    for path in paths:
        _, stream = read_conversations(str(path), source=path.stem)
        for _, conversation in stream:
            if hasattr(conversation, "turns"):
                for normalizer in normalize.normalizers:
                    normalizer.apply(conversation)
                rows.append(conversation)
    return rows


def cost(rule_name: str, rows: list, repeat: int) -> dict:
    rule_class = RULES_BY_NAME[rule_name]
    rule = rule_class(rule_class.Settings.model_validate({"enabled": True}))
    fastest, fired = float("inf"), 0
    for _ in range(repeat):
        batch = copy.deepcopy(rows)  # a rule may edit text (PII masks): each pass reads the same rows
        start = time.process_time()
        verdicts = [rule.filter(row) for row in batch]
        fastest = min(fastest, time.process_time() - start)
        fired = sum(v is not None for v in verdicts)
    return {"rule": rule_name, "rows": len(rows), "us_per_row": round(fastest / max(1, len(rows)) * 1e6, 2),
            "fired": fired}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rules", nargs="+", help=f"rule names ({', '.join(sorted(RULES_BY_NAME))})")
    parser.add_argument("--files", nargs="*", type=Path, help="files to read (default: ../shared/data/*.json*)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    unknown = [name for name in args.rules if name not in RULES_BY_NAME]
    if unknown:
        parser.error(f"unknown rule(s): {', '.join(unknown)}")
    paths = args.files or sorted(DATA.glob("*.json*"))
    if not paths:
        parser.error(f"no files: {DATA} is not here; name some with --files")
    rows = conversations(paths)
    results = [cost(name, rows, args.repeat) for name in args.rules]
    if args.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for r in results:
            print(f"{r['rule']:<22} {r['us_per_row']:>8.2f} µs/row  (fired on {r['fired']} of {r['rows']} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
