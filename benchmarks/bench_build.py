"""Time `idata build` end to end on two corpora, without near-duplicate detection.

    python benchmarks/bench_build.py --rows 1000000 --workers 2
    python benchmarks/bench_build.py --rows 100000 --profile build.prof   # cProfile of the main process
    python benchmarks/bench_build.py --rows 200000 --kind realistic        # one corpus only

Generates each corpus with benchmarks/corpus.py (2% planted exact duplicates): `belle-like`,
clean single-turn rows as in Belle's releases, and `realistic`, rows that look like data
collected by hand (a few percent each trip a cleaning rule, about 10% are dialogues, 5% have
replies of thousands of characters: corpus.realistic). Runs
`idata build CORPUS --no-near --heldout 1000` as a child process and samples the resident
memory of that process and all its children (the workers) every 0.1 s. Prints a table per
corpus: rows, wall time, rows/s end to end, peak RSS of the process tree, and the ledger's counts.
Targets on a 2-core machine: issue 22's >= 35,000 rows/s realistic and >= 60,000 belle-like
(issue 3's were 25,000 for both), and < 1.5 GB for 1M rows.
On a shared machine the wall time says little; the CPU time of the process tree (the build
and its workers) does: CPU-µs per row / cores is what a dedicated machine would take.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # installed with accelerate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


TARGET_ROWS_PER_S = {"realistic": 35_000, "belle-like": 60_000}  # issue 22, on 2 cores


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def run(command: list[str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS bytes of the process tree, CPU seconds of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, tree_rss(watched))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"build failed with exit code {child.returncode}: {' '.join(command)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build and the workers it reaped
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, peak, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--corpus", default=None, help="reuse this corpus file (generated if missing; one --kind only)")
    parser.add_argument("--kind", choices=("belle-like", "realistic", "both"), default="both")
    parser.add_argument("--keep", default=None, help="keep the build folder here")
    parser.add_argument("--profile", default=None, help="write a cProfile of the build's main process here")
    args = parser.parse_args()

    from corpus import generate  # benchmarks/corpus.py

    kinds = ["belle-like", "realistic"] if args.kind == "both" else [args.kind]
    if args.corpus and len(kinds) > 1:
        parser.error("--corpus needs one --kind")
    scratch = Path(tempfile.mkdtemp(prefix="bench_build-"))
    for kind in kinds:
        corpus = Path(args.corpus) if args.corpus else scratch / f"{kind}.jsonl"
        if not corpus.exists():
            started = time.perf_counter()
            generate(args.rows, corpus, exact_dups=0.02, seed=0, realistic=kind == "realistic")
            print(f"generated {args.rows:,} {kind} rows in {time.perf_counter() - started:.1f}s: {corpus}",
                  file=sys.stderr)
        out = Path(args.keep) / kind if args.keep else scratch / f"build-{kind}"
        bench(corpus, out, kind, args)
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def bench(corpus: Path, out: Path, kind: str, args) -> None:
    idata = [sys.executable, "-m", "instruct_data"] if not args.profile else \
        [sys.executable, "-m", "cProfile", "-o", args.profile, "-m", "instruct_data"]
    command = [*idata, "build", str(corpus), "--out", str(out), "--no-near", "--heldout", "1000",
               "--workers", str(args.workers), "--json"]
    wall, peak, cpu = run(command)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    totals = manifest["counts"]["totals"]
    rows = totals["read"]
    table = [
        ("rows read", f"{rows:,}"),
        ("workers", f"{args.workers} (CPUs: {os.cpu_count()})"),
        ("wall time", f"{wall:.1f} s"),
        ("rows/s end to end", f"{rows / wall:,.0f}  (target >= {TARGET_ROWS_PER_S[kind]:,})"),
        ("peak RSS, process tree", f"{peak / 2**20:,.0f} MiB  (target < 1,536)"),
        ("CPU time, process tree", f"{cpu:.1f} s = {cpu / rows * 1e6:.0f} us/row"),
        ("machine load (1 min) after", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"),
        ("written / rejected / duplicates", f"{totals['written']:,} / {totals['rejected']:,} / {totals['removed']:,}"),
        ("train records", f"{manifest['split']['train_records']:,}"),
    ]
    width = max(len(k) for k, _ in table)
    print(f"idata build, {rows:,} {kind} rows, no near-dup detection")
    print("-" * (width + 40))
    for key, value in table:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
