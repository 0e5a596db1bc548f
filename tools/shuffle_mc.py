"""Re-order the options of the shipped multiple-choice set, seeded, keeping every item's content.

    python tools/shuffle_mc.py            # rewrite instruct_data/data/eval/idata-zh-mc*.jsonl
    python tools/shuffle_mc.py --check    # exit 1 if the shipped files are not what this writes

Why (issue 24): the hand-balanced answers cycled within a subject (`ACBDACBDBC`), which a
model can learn from the dev shots, and a test-taker's "pick the longest option" trick should
win about a quarter of the time, like chance, not more.

What it does, per file:

- each item's options are first put in a canonical order (by text), so the result depends only
  on the content and the seed, and running the script twice changes nothing;
- each subject gets a balanced, shuffled list of answer letters (10 items: two letters three
  times, two letters twice; at most two neighbours alike, no repeated block of four), and the
  right option is put at its letter, the distractors in a seeded random order around it;
- among seeds `--seed`, `--seed + 1`, ..., the first whose "longest option, first on a tie"
  guess is right for 20–30% of the items is kept (it is printed).

Question, option texts, the right option's text, explanation, id and subject never change: the
script checks this against the input before writing, and writes atomically.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from instruct_data.io import write_jsonl  # noqa: E402  (the project's atomic JSON-lines writer)

LETTERS = "ABCD"
DATA = ROOT / "instruct_data" / "data" / "eval"
FILES = ("idata-zh-mc.jsonl", "idata-zh-mc-dev.jsonl")
SEED = 24
LONGEST_SHARE = (0.20, 0.30)


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def longest_guess(item: dict) -> str:
    """The letter a "pick the longest option" test-taker picks (the first of equally long ones)."""
    return max(LETTERS, key=lambda letter: (len(item[letter]), -LETTERS.index(letter)))


def letters_for(n: int, rng: random.Random) -> list[str]:
    """n answer letters, as even as n allows, shuffled until they show no pattern a reader (or a
    model reading the shots) could follow: at most two letters repeated at once, no block of four
    repeated (the old `ACBDACBD`)."""
    extra = rng.sample(LETTERS, n % 4)
    pool = [letter for letter in LETTERS for _ in range(n // 4)] + extra
    while True:
        rng.shuffle(pool)
        repeats = sum(pool[i] == pool[i + 1] for i in range(len(pool) - 1))
        cycles = any(pool[i:i + 4] == pool[i + 4:i + 8] for i in range(len(pool) - 7))
        if repeats <= 2 and not cycles:
            return list(pool)


def reorder(item: dict, letter: str, rng: random.Random) -> dict:
    """The item with its right option at `letter` and its distractors shuffled around it."""
    right = item[item["answer"]]
    distractors = sorted(item[x] for x in LETTERS if x != item["answer"])
    rng.shuffle(distractors)
    texts = iter(distractors)
    options = {x: right if x == letter else next(texts) for x in LETTERS}
    out = {}
    for key, value in item.items():  # the row's own key order, options replaced in place
        out[key] = options[key] if key in options else (letter if key == "answer" else value)
    return out


def shuffle(items: list[dict], seed: int) -> list[dict]:
    rng = random.Random(seed)
    by_subject: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_subject[item["subject"]].append(index)
    out = list(items)
    for subject in sorted(by_subject):
        indices = by_subject[subject]
        for index, letter in zip(indices, letters_for(len(indices), rng)):
            out[index] = reorder(items[index], letter, rng)
    return out


def same_content(before: dict, after: dict) -> bool:
    keep = [k for k in before if k not in (*LETTERS, "answer")]
    return (all(before[k] == after[k] for k in keep)
            and sorted(before[x] for x in LETTERS) == sorted(after[x] for x in LETTERS)
            and before[before["answer"]] == after[after["answer"]])


def balanced(items: list[dict], seed: int, limit: int = 1000) -> tuple[list[dict], int]:
    """The first shuffle from `seed` on whose longest-option guess is right 20–30% of the time."""
    low, high = LONGEST_SHARE
    for attempt in range(seed, seed + limit):
        out = shuffle(items, attempt)
        share = sum(longest_guess(item) == item["answer"] for item in out) / len(out)
        if low <= share <= high or len(out) < 20:  # (a dev file of 2 items a subject: no share to aim at)
            return out, attempt
    raise SystemExit(f"no seed in {seed}..{seed + limit - 1} gives a longest-option share in {LONGEST_SHARE}")


def describe(name: str, items: list[dict], seed: int) -> str:
    answers = Counter(item["answer"] for item in items)
    longest = sum(longest_guess(item) == item["answer"] for item in items)
    cycles = {s: "".join(i["answer"] for i in items if i["subject"] == s) for s in dict.fromkeys(i["subject"] for i in items)}
    return (f"{name}: seed {seed}; answers {' '.join(f'{x} {answers[x]}' for x in LETTERS)}; longest option right "
            f"{longest}/{len(items)}; per subject {', '.join(f'{s} {c}' for s, c in cycles.items())}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="only check that the shipped files are what this writes")
    args = parser.parse_args(argv)
    stale = []
    for offset, name in enumerate(FILES):
        path = DATA / name
        items = read(path)
        canonical = [reorder_canonical(item) for item in items]
        out, used = balanced(canonical, args.seed + 1000 * offset)
        for before, after in zip(items, out):
            if not same_content(before, after):
                raise SystemExit(f"{path}: item {before.get('id')} would change content; nothing written")
        print(describe(name, out, used))
        if out != items:
            stale.append(name)
            if not args.check:
                write_jsonl(path, out)
    if args.check and stale:
        print(f"not what tools/shuffle_mc.py writes: {', '.join(stale)}")
        return 1
    return 0


def reorder_canonical(item: dict) -> dict:
    """The options sorted by text (answer following its text): the shuffle's input, whatever the file's order."""
    right = item[item["answer"]]
    texts = sorted(item[x] for x in LETTERS)
    letter = LETTERS[texts.index(right)]
    out = {}
    for key, value in item.items():
        out[key] = texts[LETTERS.index(key)] if key in LETTERS else (letter if key == "answer" else value)
    return out


if __name__ == "__main__":
    sys.exit(main())
