"""`idata build --engine ray` next to the local engine, on the same generated rows, with near dedupe.

    python benchmarks/bench_ray.py --rows 1000000 5000000
    python benchmarks/bench_ray.py --rows 200000 --engines ray      # a quick look
    python benchmarks/bench_ray.py --rows 1000000 --format json csv --driver-read   # the driver's reading alone
    python benchmarks/bench_ray.py --rows 200000 --format csv --engines ray --code /tmp/old  # an older checkout

For each row count: generates a Belle-like corpus (benchmarks/corpus.py: 5% planted exact
and 5% near copies), then runs `idata build CORPUS --heldout 1000 --engine E` as a child
process for each engine, and samples every process of its tree every 0.2 s. Prints per run:
wall time, CPU time of the tree (each process's own user + sys, per row, also by kind of
process), the peak memory of the driver (the idata process itself) and of the largest worker, each its own (private pages, not counting
the pages of Ray's shared object store it maps) and RSS, Ray's own processes (raylet, GCS,
the spill workers that move object-store pages to disk), the whole tree's (every process of
one sample added up: issue 22 asks at most 1.5 GB at 2M and 10M rows), and whether train.jsonl, heldout.jsonl and duplicates.jsonl are
byte-identical between the engines, and the driver's own CPU time. `--format json` or `csv` writes
the corpus as a JSON array or a CSV first (arrays and tables: read in pieces by the tasks on Ray,
instruct_data/ranges.py); `--driver-read` times only what the driver does to read them: planning
the sources and making every task (rowpath chunks, pickled), in a child process, no Ray.
`--code DIR` runs the builds with DIR first on PYTHONPATH (a checkout to compare with: `git
archive COMMIT instruct_data | tar -x -C DIR`). With Ray, the rows and bytes of each stage's output
(and of what went into the band shuffle) are printed too: the per-row costs docs/ray.md's
100M-row cluster estimate is made from. With --stages, the CPU spent inside Ray's tasks per
operator of those stages is printed as well (Ray Data's Dataset.stats()): what the workers'
CPU is not spent on inside tasks is Ray's own work. The driver's peak should not grow with the rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # installed with accelerate

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
COMPARED = ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl", "duplicates.jsonl",
            "rejects.jsonl")


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


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> dict:
    """Wall time, CPU seconds and peak RSS per role of the process tree of one build (run from
    `cwd`: `python -m` puts its working directory first on sys.path, before --code's).

    CPU is each process's own user + system time as last sampled, added up. A process's
    children_user/children_system are not added: they hold the children it reaped, which
    were sampled themselves (the local engine's workers, reaped after pass 1, were counted
    twice that way before 2026-12-07). A process loses the slice after its last sample
    (at most 0.2 s each). `reaped_cpu` is getrusage's figure for the tree: exact where every
    process was reaped by its parent (the local engine), short where some were not (Ray's
    workers and daemons)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, cwd=cwd)
    root = psutil.Process(child.pid)
    peak: dict[str, int] = {}
    cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, last seen user + sys)
    while child.poll() is None:
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        tree = tree_rss = 0  # every process of the tree at this sample, added up
        for process in processes:
            try:
                own, rss = own_memory(process)
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            kind = role(process, child.pid)
            peak[kind] = max(peak.get(kind, 0), own)
            peak[kind + " rss"] = max(peak.get(kind + " rss", 0), rss)
            tree, tree_rss = tree + own, tree_rss + rss
            cpu[process.pid] = (kind, times.user + times.system)
        peak["tree"] = max(peak.get("tree", 0), tree)
        peak["tree rss"] = max(peak.get("tree rss", 0), tree_rss)
        time.sleep(0.2)
    wall = time.perf_counter() - start
    _, errors = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"build failed ({child.returncode}): {' '.join(command)}\n{errors[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    by_role: dict[str, float] = {}
    for kind, seconds in cpu.values():
        by_role[kind] = by_role.get(kind, 0.0) + seconds
    return {"wall": wall, "cpu": sum(by_role.values()), "driver_cpu": cpu.get(child.pid, ("", 0.0))[1],
            "cpu_by_role": by_role, "peak": peak,
            "reaped_cpu": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--engines", nargs="+", choices=("local", "ray"), default=["local", "ray"])
    parser.add_argument("--scratch", default=None, help="folder for the corpora and outputs (default: a temp dir)")
    parser.add_argument("--format", nargs="+", choices=("jsonl", "json", "csv"), default=["jsonl"],
                        help="the corpus as JSON lines, a JSON array or a CSV (default: jsonl)")
    parser.add_argument("--driver-read", action="store_true",
                        help="time only the driver's reading (planning and making the tasks), no build")
    parser.add_argument("--code", default=None, help="run the builds with this folder first on PYTHONPATH")
    parser.add_argument("--stages", action="store_true",
                        help="also measure each Ray stage's rows and bytes (runs the band shuffle twice: slower)")
    args = parser.parse_args()

    from corpus import generate  # benchmarks/corpus.py

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench_ray-")).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    base_env = dict(os.environ)
    if args.code:
        base_env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.code, os.environ.get("PYTHONPATH")]))
    for rows, fmt in ((rows, fmt) for rows in args.rows for fmt in args.format):
        corpus = scratch / f"corpus-{rows}.jsonl"
        if not corpus.exists():
            started = time.perf_counter()
            generate(rows, corpus, near_dups=0.05, exact_dups=0.05, seed=0)
            print(f"generated {rows:,} rows in {time.perf_counter() - started:.0f} s: {corpus}", file=sys.stderr)
        corpus = as_format(corpus, fmt)
        if args.driver_read:
            print(f"{corpus.name}: the driver's reading, {driver_read(corpus, base_env)}  "
                  f"(load {os.getloadavg()[0]:.1f})")
            continue
        results = {}
        for engine in args.engines:
            out = scratch / f"build-{engine}-{rows}"
            stages = scratch / f"stages-{engine}-{rows}.jsonl"
            stages.unlink(missing_ok=True)
            measure_stages = engine == "ray" and args.stages
            env = {**base_env, "IDATA_RAY_STAGES": str(stages)} if measure_stages else dict(base_env)
            command = [sys.executable, "-m", "instruct_data", "build", str(corpus), "--out", str(out),
                       "--heldout", "1000", "--engine", engine, "--json"]
            print(f"running: {' '.join(command[1:])}  (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
            results[engine] = run(command, env, cwd=scratch)
            results[engine]["load"] = os.getloadavg()[0]
            results[engine]["manifest"] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            results[engine]["digests"] = {name: digest(out / name) for name in COMPARED}
            results[engine]["stages"] = [json.loads(line) for line in stages.read_text().splitlines()] \
                if stages.exists() else []
            shutil.rmtree(out)
        report(rows, results, fmt)
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def as_format(corpus: Path, fmt: str) -> Path:
    """The corpus as a JSON array or a CSV (written once, beside it)."""
    if fmt == "jsonl":
        return corpus
    out = corpus.with_suffix(".json" if fmt == "json" else ".csv")
    if not out.exists():
        import pandas as pd

        with open(corpus, encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        if fmt == "json":
            with open(out, "w", encoding="utf-8") as fh:
                fh.write("[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n")
        else:
            pd.DataFrame(rows).to_csv(out, index=False)
    return out


DRIVER_READ = """
import inspect, pickle, resource, sys, time
from instruct_data.pipeline.sources import estimate_rows, input_bytes, plan_sources, tasks
from instruct_data.ray_engine.runtime import block_bytes, block_rows
from instruct_data.recipe import parse_recipe
started = time.perf_counter()
recipe = parse_recipe({"sources": [{"files": [sys.argv[1]]}]}, "bench")
plans = plan_sources(recipe)
options = {"in_pieces": True} if "in_pieces" in inspect.signature(tasks).parameters else {}
count = size = 0
for task in tasks(plans, block_bytes=block_bytes(input_bytes(plans), 2), batch_rows=block_rows(estimate_rows(recipe), 2),
                  **options):
    count += 1
    size += len(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"CPU {usage.ru_utime + usage.ru_stime:.2f} s, wall {time.perf_counter() - started:.2f} s, "
      f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB, {count} tasks, {size / 2**20:.1f} MiB pickled")
"""


def driver_read(corpus: Path, env: dict[str, str]) -> str:
    """What the driver of a Ray build spends to read `corpus`: planning the source and making
    (and pickling) every task, as the Ray executor's build (ray_engine.build.RayBuild) does on
    2 CPUs, in a child process."""
    # (run from the corpus' folder: `python -c` puts its working directory first on sys.path)
    done = subprocess.run([sys.executable, "-c", DRIVER_READ, str(corpus)], env=env, capture_output=True, text=True,
                          check=False, cwd=corpus.parent)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return done.stdout.strip()


def report(rows: int, results: dict, fmt: str = "jsonl") -> None:
    print(f"\nidata build, {rows:,} generated rows as {fmt} (5% exact + 5% near copies planted), near dedupe on, "
          f"{os.cpu_count()} CPUs")
    print("peak memory per process: its own (private pages, less the object store's), and RSS (with the "
          "shared object-store pages it mapped)")
    header = f"{'engine':<7} {'wall s':>8} {'CPU us/row':>10} {'driver CPU s':>12} {'driver MiB':>16} " \
             f"{'worker MiB':>16} {'ray sys MiB':>11} {'tree MiB':>16} {'load':>5}  removed"
    print(header)
    print("-" * len(header))
    for engine, r in results.items():
        peak = r["peak"]
        counts = r["manifest"]["counts"]
        mib = lambda kind: f"{peak.get(kind, 0) / 2**20:,.0f} ({peak.get(kind + ' rss', 0) / 2**20:,.0f})"  # noqa: E731
        print(f"{engine:<7} {r['wall']:>8.1f} {r['cpu'] / rows * 1e6:>10.0f} {r['driver_cpu']:>12.1f} "
              f"{mib('driver'):>16} {mib('worker'):>16} "
              f"{peak.get('ray system', 0) / 2**20:>11,.0f} {mib('tree'):>16} {r['load']:>5.1f}  "
              f"{counts['duplicates_by_method']}")
    for engine, r in results.items():
        roles = ", ".join(f"{kind} {seconds / rows * 1e6:,.0f}" for kind, seconds in sorted(r["cpu_by_role"].items()))
        print(f"  {engine}: CPU us/row by process: {roles}; getrusage of the reaped tree "
              f"{r['reaped_cpu'] / rows * 1e6:,.0f}")
    if len(results) == 2:
        same = results["local"]["digests"] == results["ray"]["digests"]
        print(f"outputs byte-identical between engines: {'yes' if same else 'NO'} ({', '.join(COMPARED)})")
    stages = results.get("ray", {}).get("stages", [])
    for stage in stages:
        line = f"  {stage['stage']:<38} {stage['rows']:>12,} rows {stage['bytes'] / rows:>8,.0f} B/input row"
        if "shuffled_rows" in stage:
            line += f"   shuffled: {stage['shuffled_rows']:,} rows, {stage['shuffled_bytes'] / rows:,.0f} B/input row"
        print(line)
    operators = task_cpu(stages)
    if operators:
        print("  CPU inside Ray's tasks, per operator of the stages above (Dataset.stats()), us per input row:")
        for name, (tasks, seconds) in operators.items():
            print(f"    {seconds / rows * 1e6:>8,.1f}  {name} ({tasks:,} tasks)")
        print(f"    {sum(s for _, s in operators.values()) / rows * 1e6:>8,.1f}  in all; the rest of the workers' CPU "
              "is outside tasks (starting workers, moving blocks, idle loops)")


OPERATOR = re.compile(r"^Operator \d+ (.+): (\d+) tasks executed")
TASK_CPU = re.compile(r"^\* Remote cpu time: .*?([\d.]+)(us|ms|s) total")
UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def task_cpu(stages: list[dict]) -> dict[str, tuple[int, float]]:
    """{operator: (tasks, CPU seconds inside its tasks)} from the stages' Dataset.stats() texts;
    a stage's text repeats the operators upstream of it, so each is counted once."""
    found: dict[str, tuple[int, float]] = {}
    for stage in stages:
        operator = None
        for line in stage.get("stats", "").splitlines():
            if (named := OPERATOR.match(line)) is not None:
                operator = named.groups()
            elif operator is not None and (cpu := TASK_CPU.match(line)) is not None:
                found.setdefault(operator[0], (int(operator[1]), float(cpu[1]) * UNIT[cpu[2]]))
                operator = None
    return found


if __name__ == "__main__":
    main()
