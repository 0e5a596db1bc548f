"""Benchmark: `idata dedupe` against a plain datasketch MinHash + MinHashLSH pipeline.

    python benchmarks/bench_dedupe.py                  # 1,000,000 rows, baseline on 50,000
    python benchmarks/bench_dedupe.py --rows 100000 --baseline-rows 20000

1. builds a Belle-like corpus (benchmarks/corpus.py) with 5% exact and 5% near copies
   (about 5% of characters edited) and its truth file;
2. runs `idata dedupe CORPUS --out DIR --workers W` as a child process (the CLI itself, so
   reading, the ledger and writing are timed too), sampling the resident memory of it and
   its worker processes together;
3. runs a plain datasketch pipeline with the same shingles (character 3-grams of the same
   normalized key) and the same LSH parameters (bands x rows), in this process: read the
   rows (timed, as idata's reading is), then for each row MinHash it, query the LSH index,
   remove it if there is any candidate, else insert it. It is far slower, so by default it runs on the first --baseline-rows rows, and the
   table says so; rows/s are compared;
4. times the MinHash step alone on the same rows, rensa against datasketch (why rensa);
5. prints wall time, rows/s, peak memory, recall of planted exact and near copies, and
   false removals (a row removed as a copy of a row it was not planted from).

Timings on a shared or busy machine are pessimistic; say which machine gave them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402

from instruct_data.dedupe import DedupeSettings, Item  # noqa: E402
from instruct_data.dedupe.keys import normalized_key_text  # noqa: E402
from instruct_data.dedupe.near import signatures  # noqa: E402
from instruct_data.dedupe.shingles import shingle_strings  # noqa: E402


class PeakRSS:
    """Samples the resident memory of a process and all its children, every 50 ms."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def load_truth(path: Path, source: str, limit: int | None = None) -> dict[str, str]:
    """Row id -> id of the planted group's original (for both the original and its copy)."""
    group = {}
    kinds = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)
            if limit is not None and t["line"] > limit:
                continue
            copy, original = f"{source}:{t['line']}", f"{source}:{t['of_line']}"
            group[copy] = group[original] = original
            kinds[copy] = t["kind"]
    return group, kinds


def score(removals: list[tuple[str, str, str]], group: dict[str, str], kinds: dict[str, str]) -> dict:
    """Recall per planted kind and false removals, from (id, duplicate_of, cluster) triples."""
    cluster = {rid: cl for rid, _, cl in removals}
    found = {"exact": 0, "near": 0}
    total = {"exact": 0, "near": 0}
    for copy, kind in kinds.items():
        total[kind] += 1
        original = group[copy]
        if copy in cluster or original in cluster:
            if cluster.get(copy, copy) == cluster.get(original, original):
                found[kind] += 1
    false = sum(1 for rid, of, _ in removals if group.get(rid, rid) != group.get(of, of))
    return {"exact_recall": found["exact"] / max(total["exact"], 1), "near_recall": found["near"] / max(total["near"], 1),
            "false": false, "removed": len(removals), "planted": total}


def run_idata(corpus_path: Path, out: Path, workers: int) -> dict:
    cmd = [sys.executable, "-m", "instruct_data", "dedupe", str(corpus_path), "--out", str(out),
           "--workers", str(workers), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = PeakRSS(proc.pid)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    peak = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its (reaped) workers
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        raise SystemExit(f"idata dedupe failed ({proc.returncode}):\n{stderr}")
    manifest = json.loads(stdout)
    removals = []
    with open(out / "duplicates.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            removals.append((d["id"], d["duplicate_of"], d["cluster"]))
    return {"wall": wall, "cpu": cpu, "peak": peak, "removals": removals, "manifest": manifest}


def read_items(corpus_path: Path, source: str, limit: int) -> list[Item]:
    items = []
    with open(corpus_path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if line_no > limit:
                break
            row = json.loads(line)
            prompt = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
            items.append(Item(f"{source}:{line_no}", prompt, row["output"], order=line_no))
    return items


def run_datasketch(corpus_path: Path, source: str, limit: int, settings: DedupeSettings) -> dict:
    """The plain pipeline: read the rows, same shingles and LSH parameters, every candidate
    removed (no check). Reading is timed too, as it is for idata."""
    from datasketch import MinHash, MinHashLSH

    start, cpu0 = time.perf_counter(), time.process_time()
    rss0 = psutil.Process().memory_info().rss
    items = read_items(corpus_path, source, limit)
    lsh = MinHashLSH(num_perm=settings.num_perm, params=(settings.bands, settings.rows_per_band))
    removals = []
    for item in items:
        shingles = shingle_strings(normalized_key_text(item, settings), settings.ngram)
        m = MinHash(num_perm=settings.num_perm, seed=settings.seed)
        m.update_batch([s.encode("utf-8") for s in shingles])
        hits = lsh.query(m)
        if hits:
            of = min(hits, key=lambda k: int(k.rsplit(":", 1)[1]))
            removals.append((item.id, of, of))
        else:
            lsh.insert(item.id, m)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return {"wall": wall, "cpu": cpu, "removals": removals, "extra_rss": psutil.Process().memory_info().rss - rss0,
            "items": items}


def minhash_speed(items: list[Item], settings: DedupeSettings, repeats: int = 3) -> dict[str, float]:
    """Rows per CPU-second of the MinHash step alone (shingling included), each library its
    fastest way; the best of a few runs, in CPU time, so a busy machine skews it less."""
    from datasketch import MinHash

    texts = [normalized_key_text(item, settings) for item in items]

    def rensa_step():
        signatures(texts, settings.ngram, settings.num_perm, settings.seed)

    def datasketch_step():
        batches = [[s.encode("utf-8") for s in shingle_strings(t, settings.ngram)] for t in texts]
        MinHash.bulk(batches, num_perm=settings.num_perm, seed=settings.seed)

    rates = {}
    for name, step in (("rensa (bulk matrix, numpy shingles)", rensa_step),
                       ("datasketch (MinHash.bulk, string shingles)", datasketch_step)):
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            step()
            best = min(best, time.process_time() - start)
        rates[name] = len(texts) / best
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Benchmark idata dedupe against plain datasketch.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000,
                        help="rows for the datasketch pipeline (0: all rows; it is slow)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="keep the corpus and outputs here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="reuse the corpus already in --workdir")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_dedupe_"))
    workdir.mkdir(parents=True, exist_ok=True)
    corpus_path, truth_path = workdir / "corpus.jsonl", workdir / "truth.jsonl"
    source = "corpus"
    settings = DedupeSettings()
    start = time.perf_counter()
    if not (args.reuse and corpus_path.exists() and truth_path.exists()):
        corpus.generate(args.rows, corpus_path, near_dups=0.05, exact_dups=0.05, truth=truth_path, seed=args.seed)
        print(f"corpus: {args.rows:,} rows in {time.perf_counter() - start:.1f}s -> {corpus_path}", file=sys.stderr)

    ours = run_idata(corpus_path, workdir / "out", args.workers)
    group, kinds = load_truth(truth_path, source)
    ours_score = score(ours["removals"], group, kinds)

    n_base = args.rows if args.baseline_rows <= 0 else min(args.baseline_rows, args.rows)
    base = run_datasketch(corpus_path, source, n_base, settings)
    items = base.pop("items")
    group_b, kinds_b = load_truth(truth_path, source, limit=n_base)
    base_score = score(base["removals"], group_b, kinds_b)
    speeds = minhash_speed(items[:20_000], settings)

    ours_rate = args.rows / ours["wall"]
    base_rate = n_base / base["wall"]
    cpu = os.cpu_count()
    print(f"\nmachine: {cpu} CPUs visible, load average {os.getloadavg()[0]:.1f} at the end; "
          f"settings: key={settings.key} ngram={settings.ngram} num_perm={settings.num_perm} "
          f"bands={settings.bands}x{settings.rows_per_band} threshold={settings.threshold}\n")
    print("| pipeline | rows | wall (s) | rows/s | CPU (s) | rows per CPU-s | peak RSS | exact recall | near recall "
          "| false removals |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| idata dedupe (CLI, {args.workers} workers) | {args.rows:,} | {ours['wall']:.1f} | {ours_rate:,.0f} | "
          f"{ours['cpu']:.1f} | {args.rows / ours['cpu']:,.0f} | "
          f"{ours['peak'] / 2**30:.2f} GB | {ours_score['exact_recall']:.4f} | {ours_score['near_recall']:.4f} | "
          f"{ours_score['false']} |")
    print(f"| datasketch MinHash + MinHashLSH (1 process{', first ' + format(n_base, ',') + ' rows' if n_base < args.rows else ''}) "
          f"| {n_base:,} | {base['wall']:.1f} | {base_rate:,.0f} | {base['cpu']:.1f} | {n_base / base['cpu']:,.0f} | "
          f"+{base['extra_rss'] / 2**30:.2f} GB | "
          f"{base_score['exact_recall']:.4f} | {base_score['near_recall']:.4f} | {base_score['false']} |")
    print(f"\nspeed-up in rows/s (wall): {ours_rate / base_rate:.1f}x; in rows per CPU-second: "
          f"{(args.rows / ours['cpu']) / (n_base / base['cpu']):.1f}x (on a busy machine the wall figure "
          f"understates what {args.workers} free cores give)")
    print("\nMinHash step alone (shingling + signatures, 20,000 rows, one process, rows per CPU-second):")
    for name, rate in speeds.items():
        print(f"  {name}: {rate:,.0f} rows/s")
    print(f"\nplanted: {ours_score['planted']}; idata removed {ours_score['removed']:,} "
          f"({ours['manifest']['counts']['duplicates_by_method']}); outputs in {workdir}")


if __name__ == "__main__":
    main()
