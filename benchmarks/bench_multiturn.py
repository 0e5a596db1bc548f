"""Speed and memory of `idata to-multiturn` on generated dialogues of 2-8 turns.

    python benchmarks/bench_multiturn.py                      # 200,000 dialogues (the target size)
    python benchmarks/bench_multiturn.py --dialogues 50000    # a shared or slow machine
    python benchmarks/bench_multiturn.py --profile            # where the time goes (cProfile, 20k)

Dialogues are Belle multiturn_chat rows (`Human:…\\nAssistant:…` transcript in `instruction`,
last reply in `output`; `--shape conversations` writes train_3.5M_CN rows instead) built from
benchmarks/corpus.py's Belle-like text, 1-4 rounds each. Each size runs in a fresh
`idata to-multiturn` process (every-turn mode, seed template, a 2,048-character budget), so
its peak RSS (with its workers) is that run's alone: run at a quarter of the size and at the
full size, flat memory means the two peaks are close. Target: >= 20,000 dialogues/s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus  # noqa: E402  (benchmarks/corpus.py, beside this file)

from instruct_data.multiturn import run as run_module  # noqa: E402

TARGET = 20_000  # dialogues/s
IDATA = [sys.executable, "-m", "instruct_data"]


def dialogue_rows(n: int, shape: str, seed: int = 0):
    """n dialogues of 1-4 rounds (2-8 turns) as Belle rows of the given shape."""
    rng = random.Random(seed)
    pairs = corpus.rows(n * 3, seed=seed)  # about 2.5 rounds per dialogue on average: enough text
    for index in range(n):
        rounds = [next(pairs)[0] for _ in range(rng.randint(1, 4))]
        qa = [((r["instruction"] + ("\n" + r["input"] if r["input"] else "")), r["output"].strip() or "好的。")
              for r in rounds]
        if shape == "conversations":
            turns = [{"from": role, "value": text} for q, a in qa for role, text in (("human", q), ("assistant", a))]
            yield {"id": str(index), "conversations": turns}
        else:
            transcript = "".join(f"Human:{q}\nAssistant:{a}\n" for q, a in qa[:-1]) + f"Human:{qa[-1][0]}\nAssistant:"
            yield {"instruction": transcript, "input": "", "output": qa[-1][1]}


def write_dialogues(path: Path, n: int, shape: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in dialogue_rows(n, shape):
            fh.write(json.dumps(row, ensure_ascii=False))
            fh.write("\n")


def run_once(path: Path, out: Path, extra: list[str]) -> dict:
    """One `idata to-multiturn` process: wall time, and the peak RSS of it and its workers
    together (sampled every 20 ms with psutil; the rusage of a child started from this large
    process would count this process's pages too)."""
    import psutil

    command = [*IDATA, "to-multiturn", str(path), "--out", str(out), "--json", "--max-context-chars", "2048", *extra]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        tree = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)]))
            except psutil.Error:  # a worker ended between listing and reading
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        stdout.seek(0)
        stderr.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"to-multiturn failed: {stderr.read().decode(errors='replace')}")
        manifest = json.loads(stdout.read())
    # CPU seconds of the run and its workers (all waited for by now): a fairer figure than the
    # wall time on a machine shared with other work.
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {"seconds": seconds, "cpu": cpu, "rss_mb": peak / 2**20, "manifest": manifest}


def profile(path: Path, out: Path) -> None:
    import cProfile
    import pstats

    from instruct_data.multiturn import MultiturnSettings
    from instruct_data.multiturn.run import to_multiturn

    profiler = cProfile.Profile()
    profiler.enable()
    to_multiturn([path], out, settings=MultiturnSettings(max_context_chars=2048), workers=1)  # this process only
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=200_000, help="dialogues at the full size")
    parser.add_argument("--shape", choices=["transcript", "conversations"], default="transcript")
    parser.add_argument("--workers", type=int, default=None, help="passed to to-multiturn --workers when given")
    parser.add_argument("--profile", action="store_true", help="profile 20,000 dialogues in-process instead")
    args = parser.parse_args(argv)
    extra = ["--workers", str(args.workers)] if args.workers is not None else []

    with tempfile.TemporaryDirectory(prefix="bench-multiturn-") as tmp:
        tmp = Path(tmp)
        if args.profile:
            write_dialogues(tmp / "dialogues.jsonl", 20_000, args.shape)
            profile(tmp / "dialogues.jsonl", tmp / "out")
            return
        sizes = [max(1, args.dialogues // 4), args.dialogues]
        results = []
        for n in sizes:
            path = tmp / f"dialogues-{n}.jsonl"
            start = time.perf_counter()
            write_dialogues(path, n, args.shape)
            print(f"generated {n:,} dialogues ({path.stat().st_size / 1e6:,.0f} MB) in "
                  f"{time.perf_counter() - start:.1f}s", file=sys.stderr)
            result = run_once(path, tmp / f"out-{n}", extra)
            result["n"] = n
            # Workers start only for files of SERIAL_BELOW_BYTES or more: say which runs had them.
            big = path.stat().st_size >= run_module.SERIAL_BELOW_BYTES
            result["workers"] = (args.workers or run_module.DEFAULT_WORKERS) if big else 1
            results.append(result)
            path.unlink()

    print(f"\nidata to-multiturn, every-turn, seed template, 2,048-char budget, {args.shape} rows "
          f"({os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f})")
    print(f"{'dialogues':>10} {'records':>10} {'seconds':>8} {'dialogues/s':>12} {'records/s':>10} "
          f"{'CPU s':>7} {'dialogues/CPU-s':>16} {'peak RSS MB':>12} {'processes':>10}")
    for r in results:
        extra_counts = r["manifest"]["multiturn"]
        processes = "1" if r["workers"] == 1 else f"1 + {r['workers']}"
        print(f"{r['n']:>10,} {extra_counts['records_written']:>10,} {r['seconds']:>8.1f} "
              f"{r['n'] / r['seconds']:>12,.0f} {extra_counts['records_written'] / r['seconds']:>10,.0f} "
              f"{r['cpu']:>7.1f} {r['n'] / r['cpu']:>16,.0f} {r['rss_mb']:>12,.0f} "
              f"{processes:>10}")
    full = results[-1]
    rate = full["n"] / full["seconds"]
    print(f"\ntarget >= {TARGET:,} dialogues/s: {'met' if rate >= TARGET else 'NOT met'} ({rate:,.0f}/s; "
          "includes process start-up)")
    print(f"memory: peak RSS {results[0]['rss_mb']:,.0f} MB at {results[0]['n']:,} dialogues, "
          f"{full['rss_mb']:,.0f} MB at {full['n']:,}")


if __name__ == "__main__":
    main()
