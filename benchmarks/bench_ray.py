"""`idata build --engine ray` next to the local engine, on the same generated rows, with near dedupe.

    python benchmarks/bench_ray.py --rows 1000000 5000000
    python benchmarks/bench_ray.py --rows 200000 --engines ray      # a quick look

For each row count: generates a Belle-like corpus (benchmarks/corpus.py: 5% planted exact
and 5% near copies), then runs `idata build CORPUS --heldout 1000 --engine E` as a child
process for each engine, and samples every process of its tree every 0.2 s. Prints per run:
wall time, CPU time of the tree (user + sys, per row), the peak memory of the driver (the
idata process itself) and of the largest worker, each its own (private pages, not counting
the pages of Ray's shared object store it maps) and RSS, Ray's own processes (raylet, GCS,
the spill workers that move object-store pages to disk), and whether train.jsonl, heldout.jsonl and duplicates.jsonl are
byte-identical between the engines. With Ray, the rows and bytes of each stage's output
(and of what went into the band shuffle) are printed too: the per-row costs docs/ray.md's
100M-row cluster estimate is made from. The driver's peak should not grow with the rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # installed with accelerate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
COMPARED = ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "duplicates.jsonl", "rejects.jsonl")


def role(process: psutil.Process, driver: int) -> str:
    if process.pid == driver:
        return "driver"
    try:
        command = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "other"
    if "SpillWorker" in command or "RestoreWorker" in command or "SPILL_WORKER" in command \
            or "RESTORE_WORKER" in command:
        return "ray system"  # they copy object-store pages to and from disk
    if "default_worker.py" in command or command.startswith("ray::"):
        return "worker"
    if "/ray/" in command or "raylet" in command or "gcs_server" in command:
        return "ray system"  # raylet (with the object store), GCS, log and dashboard agents
    return "worker"  # the local engine's worker processes


def own_memory(process: psutil.Process) -> tuple[int, int]:
    """(the process's own memory, its RSS). Own: its private pages, less those of Ray's shared
    object store (/dev/shm/plasma*): a Ray process that writes or reads a block maps its pages,
    and while no other process maps them they count as private (USS) although they are the
    object store's, bounded by its size."""
    own = 0
    rss = 0
    for mapping in process.memory_maps(grouped=True):
        rss += mapping.rss
        if "plasma" not in mapping.path:
            own += mapping.private_clean + mapping.private_dirty
    return own, rss


def run(command: list[str], env: dict[str, str]) -> dict:
    """Wall time, CPU seconds and peak RSS per role of the process tree of one build."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
    root = psutil.Process(child.pid)
    peak: dict[str, int] = {}
    cpu: dict[int, float] = {}  # last seen user + sys of each process
    while child.poll() is None:
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        for process in processes:
            try:
                own, rss = own_memory(process)
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            kind = role(process, child.pid)
            peak[kind] = max(peak.get(kind, 0), own)
            peak[kind + " rss"] = max(peak.get(kind + " rss", 0), rss)
            cpu[process.pid] = times.user + times.system + times.children_user + times.children_system
        time.sleep(0.2)
    wall = time.perf_counter() - start
    _, errors = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"build failed ({child.returncode}): {' '.join(command)}\n{errors[-3000:]}")
    return {"wall": wall, "cpu": sum(cpu.values()), "peak": peak}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--engines", nargs="+", choices=("local", "ray"), default=["local", "ray"])
    parser.add_argument("--scratch", default=None, help="folder for the corpora and outputs (default: a temp dir)")
    parser.add_argument("--stages", action="store_true",
                        help="also measure each Ray stage's rows and bytes (runs the band shuffle twice: slower)")
    args = parser.parse_args()

    from corpus import generate  # benchmarks/corpus.py

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench_ray-"))
    scratch.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        corpus = scratch / f"corpus-{rows}.jsonl"
        if not corpus.exists():
            started = time.perf_counter()
            generate(rows, corpus, near_dups=0.05, exact_dups=0.05, seed=0)
            print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s: {corpus}", file=sys.stderr)
        results = {}
        for engine in args.engines:
            out = scratch / f"build-{engine}-{rows}"
            stages = scratch / f"stages-{engine}-{rows}.jsonl"
            stages.unlink(missing_ok=True)
            measure_stages = engine == "ray" and args.stages
            env = {**os.environ, "IDATA_RAY_STAGES": str(stages)} if measure_stages else dict(os.environ)
            command = [sys.executable, "-m", "instruct_data", "build", str(corpus), "--out", str(out),
                       "--heldout", "1000", "--engine", engine, "--json"]
            print(f"running: {' '.join(command[1:])}  (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            results[engine] = run(command, env)
            results[engine]["load"] = os.getloadavg()[0]
            results[engine]["manifest"] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            results[engine]["digests"] = {name: digest(out / name) for name in COMPARED}
            results[engine]["stages"] = [json.loads(line) for line in stages.read_text().splitlines()] \
                if stages.exists() else []
            shutil.rmtree(out)
        report(rows, results)
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def report(rows: int, results: dict) -> None:
    print(f"\nidata build, {rows:,} generated rows (5% exact + 5% near copies planted), near dedupe on, "
          f"{os.cpu_count()} CPUs")
    print("peak memory per process: its own (private pages, less the object store's), and RSS (with the "
          "shared object-store pages it mapped)")
    header = f"{'engine':<7} {'wall s':>8} {'CPU us/row':>10} {'driver MiB':>16} {'worker MiB':>16} " \
             f"{'ray sys MiB':>11} {'load':>5}  removed"
    print(header)
    print("-" * len(header))
    for engine, r in results.items():
        peak = r["peak"]
        counts = r["manifest"]["counts"]
        mib = lambda kind: f"{peak.get(kind, 0) / 2**20:,.0f} ({peak.get(kind + ' rss', 0) / 2**20:,.0f})"  # noqa: E731
        print(f"{engine:<7} {r['wall']:>8.1f} {r['cpu'] / rows * 1e6:>10.0f} {mib('driver'):>16} {mib('worker'):>16} "
              f"{peak.get('ray system', 0) / 2**20:>11,.0f} {r['load']:>5.1f}  {counts['duplicates_by_method']}")
    if len(results) == 2:
        same = results["local"]["digests"] == results["ray"]["digests"]
        print(f"outputs byte-identical between engines: {'yes' if same else 'NO'} ({', '.join(COMPARED)})")
    for stage in results.get("ray", {}).get("stages", []):
        line = f"  {stage['stage']:<38} {stage['rows']:>12,} rows {stage['bytes'] / rows:>8,.0f} B/input row"
        if "shuffled_rows" in stage:
            line += f"   shuffled: {stage['shuffled_rows']:,} rows, {stage['shuffled_bytes'] / rows:,.0f} B/input row"
        print(line)


if __name__ == "__main__":
    main()
