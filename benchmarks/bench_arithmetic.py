"""How well the `arithmetic` rule finds wrong results in real worked maths: precision and recall.

    python benchmarks/bench_arithmetic.py                    # precision, real and planted recall
    python benchmarks/bench_arithmetic.py --show-firings     # every firing with its verdict, to read
    python benchmarks/bench_arithmetic.py --show-missed 20   # planted rows the rule missed
    python benchmarks/bench_arithmetic.py --json

The rule has two checks: `wrong_arithmetic` (a worked equation that does not hold) and
`wrong_final_answer` (a final statement, 答：… / 所以…, that contradicts the working's last
result just above it). Data, all real:

* BELLE's school-maths dev set (../shared/data/belle_school_math_dev1K.jsonl, 1,000 worked word
  problems), **less the rows in the quality set's frozen test split**
  (benchmarks/clean_quality/test.jsonl): nobody reads those, so this benchmark never runs on
  them. The other 833 rows were read while developing the rule: every figure here is a dev
  figure; the rule's held-out figure is its line in bench_clean_quality.py on the test split.
* the replies with a worked `=` in the quality set's other sources (alpaca_zh_demo, oaast,
  the seed tasks, BELLE's eval set, the DPO and alpaca-chinese files), less their test rows,
  where they are on this machine (see benchmarks/clean_quality/GUIDE.md);
* 2,612 GPT-written worked solutions with LaTeX and Markdown (`\\frac`, `\\boxed`, `- ` list
  items) from percent4/llm_math_solver @ a9dd6f79 (clone it under the mirrors folder, as for
  the quality set's fetched sources), mostly right: where the checks first met that style;
* GSM8K's 7,473 English training solutions (openai/grade-school-math @ 3101c7d5), for precision
  on a style none of the checks was written for;
* the 421 replies with an `=` in a thousand Chinese ShareGPT dialogues (shibing624/MedicalGPT @
  2f1008cf, data/sft/sharegpt_zh_1K_format.jsonl): arithmetic people ask a chat model for.

Figures:
- precision: the rule runs on every row. Each firing was read by hand and its verdict written
  in benchmarks/arithmetic_verdicts.jsonl (`wrong`: the text is really wrong; `fine`: the rule
  misread it). A firing with no verdict counts as a false drop, so the figure can only be too low.
- real recall: 120 school-maths rows drawn at random (seed 1919) from the rows not in the
  quality set, judged by hand before the rule's verdicts were looked at
  (benchmarks/arithmetic_judged.jsonl: `correct`, `wrong_final` (the final answer is wrong) or
  `wrong_step` (a false step, the final answer right)): the share of wrong ones the rule fires on.
- planted recall: in the judged-correct rows (and, for a larger sample, in every row the rule
  does not fire on), one error is planted at a time and the rule runs again:
  `final_result`: the number after the last `=` changed (`…=22` -> `…=23`);
  `final_statement`: the final answer's number in the statement changed (`答：22个` -> `答：25个`);
  `consistent_final`: both, the same wrong number (the last equation is then wrong);
  `intermediate`: the result of an earlier `=` changed (a slip the next steps do not carry).
  The change is 1, 2, 3, 9 or 10 units of the number's last decimal, up or down (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "clean_quality"))

from instruct_data.clean.filters import Arithmetic, without_code  # noqa: E402
from instruct_data.schema import Conversation, Turn  # noqa: E402

MATH = "belle_school_math_dev1K.jsonl"
DATA = ROOT.parent / "shared" / "data" / MATH
TEST = ROOT / "benchmarks" / "clean_quality" / "test.jsonl"
VERDICTS = ROOT / "benchmarks" / "arithmetic_verdicts.jsonl"
JUDGED = ROOT / "benchmarks" / "arithmetic_judged.jsonl"
# The last result after an `=` in a reply: the final result of the worked solution.
LAST_RESULT = re.compile(r"[=＝]\s*(-?\d+(?:\.\d+)?)(?!.*[=＝]\s*-?\d)", re.S)
EVERY_RESULT = re.compile(r"[=＝]\s*(\d+(?:\.\d+)?)")
# The statement of the answer: the last sentence with one of these and a number.
ANSWER = re.compile(r"答[:：]|答案(?:是|为|[:：])|所以|因此|最终|最后|综上|故|总之|一共|总共")
SENTENCE = re.compile(r"[^。！？!?\n]*[。！？!?\n]?")
NUMBER = re.compile(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])")
KINDS = ("final_result", "final_statement", "consistent_final", "intermediate")


def test_positions() -> set[tuple[str, int]]:
    if not TEST.is_file():
        return set()
    with TEST.open(encoding="utf-8") as handle:
        return {(item["source"], item["position"]) for item in map(json.loads, handle)}


def school_maths(held_out: set[tuple[str, int]]) -> list[tuple[str, int, str, str]]:
    """(source, position, question, reply) of the school-maths rows outside the test split."""
    if not DATA.is_file():
        raise SystemExit(f"{DATA}: not found (the shared real data sets sit beside the project)")
    rows = []
    with DATA.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if (MATH, line) in held_out:
                continue
            row = json.loads(text)
            rows.append((MATH, line, row["instruction"] + ("\n" + row["input"] if row.get("input") else ""),
                         row["output"]))
    return rows


def other_maths(held_out: set[tuple[str, int]]) -> tuple[list[tuple[str, int, str, str]], list[str]]:
    """Replies with a worked `=` from the quality set's other sources, outside its test split."""
    import sources

    rows, skipped = [], []
    for name in ("alpaca_zh_demo.json", "oaast_sft_zh.json", "belle_zh_seed_tasks.jsonl", "belle_eval_set",
                 "llamafactory_dpo_zh", "alpaca_chinese_part0"):
        source = sources.SOURCES[name]
        try:
            records = source.read()
        except sources.Absent as error:
            skipped.append(f"{name}: {error}")
            continue
        for position, record in enumerate(records, start=1):
            if (name, position) in held_out:
                continue
            for question, reply in _rounds(sources, source, record):
                if isinstance(reply, str) and re.search(r"\d\s*[=＝]|[=＝]\s*\d", reply):
                    rows.append((name, position, question, reply))
    return rows, skipped


# A source the quality set does not hold, added when the checks first met LaTeX and Markdown:
# GPT-written Chinese worked solutions (ape210k, GSM8K and TAL-SCQ5K problems) of
# percent4/llm_math_solver (Apache-2.0), read from a clone like the quality set's fetched sources.
SOLVER = ("percent4/llm_math_solver", "a9dd6f79b06fe0a9e4f2eaa621ad31f1d85cc3e6",
          ("data_systhesis/data/ape210k_sample_data.json", "data_systhesis/data/gsm8k_train_data.json",
           "data_systhesis/data/tal_scq5k_train_data.json"))


# General Chinese chat, ShareGPT-style, a thousand dialogues (shibing624/MedicalGPT, Apache-2.0):
# the replies with an `=` are whatever arithmetic people ask a chat model for, sycophancy included.
SHAREGPT = ("shibing624/MedicalGPT", "2f1008cfa49cbba69ff6f138c3b5e2fb0646bdc7", ("data/sft/sharegpt_zh_1K_format.jsonl",))


def solver_maths(source: tuple = SOLVER) -> tuple[list[tuple[str, int, str, str]], list[str]]:
    """(file, position, question, reply) of every round with an `=` of a conversations file."""
    import sources

    repo, commit, paths = source
    rows, skipped = [], []
    for path in paths:
        try:
            raw = sources._git_show(repo, commit, path, sources.MIRRORS).decode("utf-8")
        except sources.Absent as error:
            skipped.append(f"{repo}: {error}")
            continue
        records = [json.loads(line) for line in raw.splitlines() if line.strip()] if path.endswith(".jsonl") \
            else json.loads(raw)
        name = path.rsplit("/", 1)[-1]
        for position, record in enumerate(records, start=1):
            turns = record["conversations"]
            for i in range(0, len(turns) - 1, 2):
                if "=" in turns[i + 1]["value"]:
                    rows.append((name, position, turns[i]["value"], turns[i + 1]["value"]))
    return rows, skipped


# GSM8K's training set (openai/grade-school-math, MIT): English worked solutions with calculator notes,
# nearly all right: a style none of the checks was written for.
GSM8K = ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "grade_school_math/data/train.jsonl")


def gsm8k_maths() -> tuple[list[tuple[str, int, str, str]], list[str]]:
    import sources

    repo, commit, path = GSM8K
    try:
        text = sources._git_show(repo, commit, path, sources.MIRRORS).decode("utf-8")
    except sources.Absent as error:
        return [], [f"{repo}: {error}"]
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [("gsm8k_train.jsonl", i, row["question"], row["answer"]) for i, row in enumerate(rows, start=1)], []


def _rounds(sources, source, record) -> list[tuple[str, str]]:
    if source.name == "belle_zh_seed_tasks.jsonl":
        return [(record["instruction"] + "\n" + (i.get("input") or ""), i["output"]) for i in record["instances"]]
    flat = sources.flattened(source, record)
    if "question" in flat:
        return [(flat["question"], flat.get("std_answer", ""))]
    if "conversations" in flat:
        turns = flat["conversations"]
        return [(turns[i]["value"], turns[i + 1]["value"]) for i in range(0, len(turns) - 1, 2)]
    rounds = [tuple(pair) for pair in flat.get("history") or []]
    return rounds + [((flat.get("instruction") or "") + "\n" + (flat.get("input") or ""), flat.get("output", ""))]


def conversation(question: str, reply: str) -> Conversation:
    return Conversation(id="math", source="math", turns=[Turn(role="user", text=question),
                                                         Turn(role="assistant", text=reply)])


def changed(shown: str, rng: random.Random) -> str:
    """Another number, 1, 2, 3, 9 or 10 units of the last shown decimal away, never negative."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    value = float(shown)
    step = rng.choice([1, 2, 3, 9, 10])
    new = value + rng.choice([-1, 1]) * step * 10 ** -decimals
    if new == value or new < 0:
        new = value + step * 10 ** -decimals
    return f"{new:.{decimals}f}"


def plant(kind: str, question: str, reply: str, rng: random.Random) -> str | None:
    """The reply with one planted error of this kind, or None when it has no place for one."""
    if kind == "final_result":
        match = LAST_RESULT.search(reply)
        if match is None:
            return None
        return reply[:match.start(1)] + changed(match.group(1), rng) + reply[match.end(1):]
    if kind == "final_statement":
        span = _answer_number(question, reply)
        if span is None:
            return None
        start, end = span
        return reply[:start] + changed(reply[start:end], rng) + reply[end:]
    if kind == "consistent_final":
        match = LAST_RESULT.search(reply)
        if match is None:
            return None
        old, new = match.group(1), changed(match.group(1), rng)
        after = re.sub(rf"(?<![\d.]){re.escape(old)}(?![\d.])", new, reply[match.end(1):])
        return reply[:match.start(1)] + new + after
    if kind == "intermediate":
        results = list(EVERY_RESULT.finditer(reply))[:-1]
        if not results:
            return None
        match = rng.choice(results)
        return reply[:match.start(1)] + changed(match.group(1), rng) + reply[match.end(1):]
    raise ValueError(kind)


def _answer_number(question: str, reply: str) -> tuple[int, int] | None:
    """Where the final answer's number is: the last number, not a given of the question, in the
    last sentence that states an answer."""
    given = set(NUMBER.findall(question))
    found = None
    for match in SENTENCE.finditer(reply):
        if ANSWER.search(match.group(0)):
            numbers = [m for m in NUMBER.finditer(match.group(0)) if m.group(0) not in given]
            if numbers:
                found = (match.start() + numbers[-1].start(), match.start() + numbers[-1].end())
    return found


def wilson(hits: int, n: int) -> tuple[float, float] | None:
    """The 95% Wilson interval of a share: with few firings, precision is known only loosely."""
    if not n:
        return None
    z = 1.96
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((share * (1 - share) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return round(centre - half, 3), round(centre + half, 3)


def share(hits: int, n: int) -> dict:
    return {"hits": hits, "n": n, "share": round(hits / n, 3) if n else None, "ci95": wilson(hits, n)}


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [item for item in map(json.loads, handle) if item]


def verdicts() -> dict[tuple[str, int], dict]:
    # lines without `source` are school-maths lines (the file's first format)
    return {(item.get("source", MATH), item.get("position", item.get("line"))): item for item in _read(VERDICTS)}


def run(seed: int, quick: bool = False) -> dict:
    rule = Arithmetic(Arithmetic.Settings(enabled=True))
    held_out = test_positions()
    maths = school_maths(held_out)
    others, skipped = other_maths(held_out) if not quick else ([], ["other sources (--quick)"])
    solver, solver_skipped = solver_maths() if not quick else ([], [f"{SOLVER[0]} (--quick)"])
    gsm8k, gsm8k_skipped = gsm8k_maths() if not quick else ([], [f"{GSM8K[0]} (--quick)"])
    chat, chat_skipped = solver_maths(SHAREGPT) if not quick else ([], [f"{SHAREGPT[0]} (--quick)"])
    skipped += solver_skipped + gsm8k_skipped + chat_skipped
    read = verdicts()
    started = time.perf_counter()
    firings = []
    for source, position, question, reply in maths + others + solver + gsm8k + chat:
        verdict = rule.judge(question, reply)
        if verdict is not None:
            item = read.get((source, position), {})
            firings.append({"source": source, "position": position, "reason": verdict.reason,
                            "detail": verdict.detail, "verdict": item.get("verdict")})
    seconds = time.perf_counter() - started
    by_position = {position: (question, reply) for _, position, question, reply in maths}
    judged = {item["line"]: item["verdict"] for item in _read(JUDGED) if item["line"] in by_position}
    fired_maths = {f["position"] for f in firings if f["source"] == MATH}
    real = {label: share(sum(line in fired_maths for line, v in judged.items() if v == label),
                         sum(v == label for v in judged.values()))
            for label in ("wrong_final", "wrong_step", "correct")}
    correct_rows = [(line, *by_position[line]) for line, v in judged.items() if v == "correct"]
    unflagged = [(line, question, reply) for _, line, question, reply in maths if line not in fired_maths]
    fired_solver = {(f["source"], f["position"]) for f in firings}
    solver_unflagged = [(f"{name}:{position}", question, reply) for name, position, question, reply in solver
                        if (name, position) not in fired_solver]
    planted = {"judged_correct": _planted(rule, correct_rows, seed), "all_unflagged": _planted(rule, unflagged, seed),
               "solver_unflagged": _planted(rule, solver_unflagged, seed)}
    correct = sum(f["verdict"] == "wrong" for f in firings)
    return {
        "rows": {"school_maths": len(maths), "other_sources": len(others), "solver": len(solver), "gsm8k": len(gsm8k), "sharegpt_zh": len(chat),
                 "test_rows_left_out": sum(source == MATH for source, _ in held_out)},
        "skipped": skipped, "seconds": round(seconds, 3),
        "precision": share(correct, len(firings)),
        "precision_by_reason": {reason: share(sum(f["verdict"] == "wrong" for f in firings if f["reason"] == reason),
                                              sum(f["reason"] == reason for f in firings))
                                for reason in Arithmetic.reasons},
        "unread": sum(f["verdict"] is None for f in firings),
        "real_recall": real, "planted": planted, "firings": firings,
    }


def _planted(rule, rows, seed: int) -> dict:
    """Per kind: how many rows had a place for the error, how many the rule caught, by which check."""
    out = {}
    for kind in KINDS:
        rng = random.Random(f"{seed}:{kind}")
        caught = n = 0
        reasons: dict[str, int] = {}
        missed = []
        for line, question, reply in rows:
            reply = without_code(reply)  # errors are planted in the prose the rule reads, not in code
            wrong = plant(kind, question, reply, rng)
            if wrong is None or wrong == reply:
                continue
            n += 1
            verdict = rule.judge(question, wrong)
            if verdict is not None:
                caught += 1
                reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
            else:
                missed.append(line)
        out[kind] = {**share(caught, n), "by_reason": reasons, "missed": missed}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Example: python benchmarks/bench_arithmetic.py --show-firings")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--show-firings", action="store_true", help="print every firing with its verdict")
    parser.add_argument("--show-missed", type=int, default=0, metavar="N",
                        help="print N judged-correct rows per kind where the planted error was missed")
    parser.add_argument("--quick", action="store_true", help="school maths only (a smoke run: about a tenth of the time)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.seed, args.quick)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0
    rows = result["rows"]
    print(f"{rows['school_maths']} school-maths rows ({rows['test_rows_left_out']} test rows of the quality set left out) "
          f"and {rows['other_sources']} replies with a worked '=' from other sources, {rows['solver']} from "
          f"{SOLVER[0]}, {rows['gsm8k']} from GSM8K, {rows['sharegpt_zh']} from {SHAREGPT[0]}'s Chinese chat; "
          f"rule ran in {result['seconds']} s")
    for line in result["skipped"]:
        print(f"  skipped {line}")
    p = result["precision"]
    print(f"precision {p['share']} (95% {p['ci95']}): {p['hits']} of {p['n']} firings truly wrong; "
          f"{result['unread']} not read, counted as false")
    for reason, q in result["precision_by_reason"].items():
        print(f"  {reason}: {q['hits']} of {q['n']}")
    print("real recall on the hand-judged rows (share the rule fires on):")
    for label, q in result["real_recall"].items():
        print(f"  {label:<12} {q['hits']} of {q['n']} ({q['share']}, 95% {q['ci95']})")
    for sample, kinds in result["planted"].items():
        print(f"planted recall, {sample.replace('_', ' ')} rows:")
        for kind, q in kinds.items():
            print(f"  {kind:<17} {q['hits']} of {q['n']} ({q['share']}, 95% {q['ci95']}) {q['by_reason']}")
    if args.show_firings:
        for f in result["firings"]:
            print(f"  {f['source']}:{f['position']:<5} {f['verdict'] or 'UNREAD':<6} {f['reason']}: {f['detail']}")
    if args.show_missed:
        judged = {item["line"] for item in _read(JUDGED) if item["verdict"] == "correct"}
        maths = {line: reply for _, line, _, reply in school_maths(test_positions())}
        for kind, q in result["planted"]["judged_correct"].items():
            for line in [m for m in q["missed"] if m in judged][:args.show_missed]:
                print(f"  {kind} missed line {line}: …{maths[line][-160:]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
