"""CPU per row of each stage of a build worker's row path, each stage run alone over the same rows.

    python benchmarks/profile_stages.py --corpus rows.jsonl
    python benchmarks/profile_stages.py --corpus rows.jsonl --repeats 5 --json
    PYTHONPATH=/tmp/old-checkout python benchmarks/profile_stages.py --corpus rows.jsonl   # another checkout

Where profile_build.py puts a clock around each stage inside one build (its per-call cost is
taken off, but it still shifts small stages), this runs each stage by itself in a loop over
every row of the corpus, best of --repeats runs of CPU time (`time.process_time`), and prints
µs per row read: reading (io.json_line), parsing (rowpath.conversation_of), the normalizers,
each enabled cleaning filter (over every parsed row: a row a filter before it would have
dropped is judged too), Cleaner.clean in all, rendering the train records, the two spool lines,
and dedupe's exact keys (one call for all kept rows; a worker makes one per chunk). The
settings are those of `idata build FILE --no-near` (taken from a tiny build run first).
On a busy machine every figure is inflated; compare figures of one run, or runs made back
to back.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path


def settings_of_a_build(corpus: Path):
    """The WorkerState `idata build` gives its workers (from a build of the corpus's first 20 rows)."""
    from instruct_data.cli import main
    from instruct_data.pipeline import worker

    scratch = Path(tempfile.mkdtemp(prefix="profile_stages-"))
    try:
        head = scratch / "head.jsonl"
        with open(corpus, "rb") as fh:
            head.write_bytes(b"".join(fh.readline() for _ in range(20)))
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["build", str(head), "--out", str(scratch / "b"), "--no-near", "--heldout", "0", "--workers", "1"])
            except SystemExit as exc:
                if exc.code:
                    raise
        return worker._STATE
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def stages(corpus: Path, repeats: int) -> dict[str, float]:
    from instruct_data import rowpath
    from instruct_data.dedupe.fingerprint import exact_keys
    from instruct_data.dedupe.keys import record_texts
    from instruct_data.io import json_line
    from instruct_data.pipeline import worker
    from instruct_data.table import Reject

    state = settings_of_a_build(corpus)
    spec = rowpath.open_file(corpus)
    lines = open(corpus, "rb").readlines()
    per_row = 1e6 / len(lines)

    def best(run) -> float:
        times = []
        for _ in range(repeats):
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
        return min(times) * per_row

    def parsed():
        return [rowpath.conversation_of(row, spec, "s") for row in rows]

    # Line numbers from 2: line 1 goes json's way (a BOM may lead it), every other line orjson's.
    figures = {"read: bytes to a dict (io.json_line)":
               best(lambda: [json_line(corpus, n, line, "utf-8") for n, line in enumerate(lines, start=2)])}
    rows = [row for row in (json_line(corpus, n, line, "utf-8") for n, line in enumerate(lines, start=2)) if row]
    figures["parse: dict to a Conversation (rowpath.conversation_of)"] = parse = best(parsed)
    cleaner = state.cleaner
    # The normalizers edit in place: they run on fresh rows, whose parsing is taken off.
    figures["clean: the normalizers"] = best(
        lambda: [cleaner._normalize(c) for c in parsed() if not isinstance(c, Reject)]) - parse
    conversations = [c for c in parsed() if not isinstance(c, Reject)]
    for c in conversations:
        cleaner._normalize(c)
    for rule in cleaner.filters:
        figures[f"clean: filter {rule.name}"] = best(lambda: [rule.filter(c) for c in conversations])
    figures["clean: Cleaner.clean in all"] = best(
        lambda: [cleaner.clean(c) for c in parsed() if not isinstance(c, Reject)]) - parse
    kept = [c for c in conversations if cleaner.clean(c)[0] is None]
    figures["render: train records (worker._records)"] = best(lambda: [worker._records(c, state) for c in kept])
    records = [worker._records(c, state) for c in kept]
    figures["spool: conversations.jsonl line"] = best(
        lambda: [worker._conversation_line(c, len(r)) for c, r in zip(kept, records)])
    figures["spool: train records (worker.record_line)"] = best(
        lambda: [worker.record_line(record) for rs in records for record in rs])
    every_turn = state.multiturn.mode == "every-turn"
    figures["dedupe: texts of each record"] = best(lambda: [record_texts(c, every_turn) for c in kept])
    texts = [pair for c in kept for pair in record_texts(c, every_turn)]
    prompts, replies = [p for p, _ in texts], [r for _, r in texts]
    figures["dedupe: exact keys (fingerprint.exact_keys)"] = best(lambda: exact_keys(prompts, replies, state.dedupe))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="a JSON-lines file of rows (e.g. from benchmarks/corpus.py)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage; the fastest counts")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    import instruct_data

    figures = stages(Path(args.corpus), args.repeats)
    if args.json:
        print(json.dumps({"corpus": args.corpus, "code": str(Path(instruct_data.__file__).parent),
                          "us_per_row": {k: round(v, 2) for k, v in figures.items()}}, ensure_ascii=False, indent=1))
        return
    print(f"{args.corpus} (code: {Path(instruct_data.__file__).parent}), µs of CPU per row read, each stage alone:")
    for name, us in figures.items():
        print(f"  {us:8.2f}  {name}")


if __name__ == "__main__":
    main()
