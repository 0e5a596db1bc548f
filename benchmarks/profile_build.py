"""Where each microsecond of a row goes in `idata build`: CPU time per stage and per cleaning rule.

    python benchmarks/profile_build.py --rows 20000 --kind realistic
    python benchmarks/profile_build.py --corpus rows.jsonl --json

Runs the build in this process with one worker (`--workers 1` runs the chunks here, not in a
pool), twice: once plain, for the total CPU per row, and once with a CPU-time clock
(`time.process_time`, so that other jobs on a busy machine do not count) around each stage of
the row path and each cleaning rule. The clock's own cost per timed call is measured and taken
off. Prints µs per row read for each stage; the rest of the build (planning, the split, dedupe's
decision, pass 2's copy, the ledger and the report) is what the main process spends outside the
chunks. Wall times on a shared machine say little; these are CPU times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)  # timed calls made, its own and those nested in it (their clock cost)
_NESTED = [0]  # timed calls made so far inside the innermost open one
_clock = time.process_time


def timed(name: str, function):
    def wrapper(*args, **kwargs):
        outer = _NESTED[0]
        _NESTED[0] = 0
        start = _clock()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[name] += _clock() - start
            CALLS[name] += 1 + _NESTED[0]
            _NESTED[0] = outer + 1 + _NESTED[0]
    return wrapper


def clock_cost() -> float:
    """CPU seconds one timed() call adds around a function that does nothing."""
    probe = timed("_probe", lambda: None)
    start = _clock()
    for _ in range(200_000):
        probe()
    cost = (_clock() - start) / 200_000
    SPENT.pop("_probe"), CALLS.pop("_probe")
    return cost


def instrument() -> None:
    """Put the clock around each stage of the row path (module globals the callers look up)."""
    from instruct_data import rowpath
    from instruct_data.clean import Cleaner
    from instruct_data.pipeline import keys, worker

    rowpath.json_line = timed("read: bytes to a dict (json_line)", rowpath.json_line)
    rowpath.conversation_of = timed("parse: dict to a Conversation (conversation_of)", rowpath.conversation_of)
    worker._records = timed("render: train records (templates)", worker._records)
    worker._conversation_line = timed("spool: conversations.jsonl line", worker._conversation_line)
    worker.record_line = timed("spool: train record to JSON", worker.record_line)
    worker.record_texts = timed("dedupe: texts of each record", worker.record_texts)
    worker._text_keys = timed("keys: ids and prompt hashes (per chunk)", worker._text_keys)
    worker.Spool.finish_dedupe = timed("dedupe: exact keys (per chunk)", worker.Spool.finish_dedupe)
    worker.Spool.close = timed("spool: write files (per chunk)", worker.Spool.close)
    keys.process_chunk = timed("chunks in all", worker.process_chunk)
    original_init = Cleaner.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        for rule in self.normalizers:
            rule.apply = timed(f"clean: normalizer {rule.name}", rule.apply)
        for rule in self.filters:
            rule.filter = timed(f"clean: filter {rule.name}", rule.filter)
    Cleaner.__init__ = init
    Cleaner.clean = timed("clean: in all", Cleaner.clean)


def run_build(corpus: Path, out: Path) -> tuple[float, int]:
    """(CPU seconds of this process, rows read) for one in-process build."""
    from instruct_data.cli import main

    start = _clock()
    try:
        main(["build", str(corpus), "--out", str(out), "--no-near", "--heldout", "1000", "--workers", "1", "--json"])
    except SystemExit as exc:
        if exc.code:
            raise
    cpu = _clock() - start
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return cpu, manifest["counts"]["totals"]["read"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--kind", choices=("belle-like", "realistic"), default="realistic")
    parser.add_argument("--corpus", default=None, help="profile this file instead of a generated corpus")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="profile_build-"))
    try:
        corpus = Path(args.corpus) if args.corpus else scratch / f"{args.kind}.jsonl"
        if not args.corpus:
            from corpus import generate  # benchmarks/corpus.py

            generate(args.rows, corpus, exact_dups=0.02, seed=0, realistic=args.kind == "realistic")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            plain_cpu, rows = run_build(corpus, scratch / "plain")
            cost = clock_cost()
            instrument()
            timed_cpu, _ = run_build(corpus, scratch / "timed")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    per_row = {name: max(0.0, (SPENT[name] - CALLS[name] * cost)) / rows * 1e6 for name in SPENT}
    figures = {"rows": rows, "kind": args.kind if not args.corpus else args.corpus,
               "cpu_us_per_row": plain_cpu / rows * 1e6, "timed_cpu_us_per_row": timed_cpu / rows * 1e6,
               "clock_cost_us": cost * 1e6, "stages_us_per_row": dict(sorted(per_row.items(), key=lambda kv: -kv[1]))}
    if args.json:
        print(json.dumps(figures, indent=1, ensure_ascii=False))
        return
    print(f"{rows:,} rows ({figures['kind']}): {figures['cpu_us_per_row']:.1f} µs of CPU per row, one process "
          f"(timed run {figures['timed_cpu_us_per_row']:.1f} µs; clock {cost * 1e6:.2f} µs per timed call, taken off)")
    for name, us in figures["stages_us_per_row"].items():
        print(f"  {us:8.1f} µs  {name}")
    print(f"  {figures['cpu_us_per_row'] - per_row.get('chunks in all', 0):8.1f} µs  outside the chunks "
          "(plan, split, dedupe decision, pass 2, ledger, report, imports)")


if __name__ == "__main__":
    main()
