"""A Belle-like corpus of Chinese instruction rows, fast, with planted duplicates on request.

    python benchmarks/corpus.py --rows 1000000 --out corpus.jsonl \
        --near-dups 0.05 --exact-dups 0.05 --truth truth.jsonl --seed 0

Rows look like Belle's 0.5M/1M/2M releases: `instruction`, `input` (often empty), `output`.
The text is made of real Chinese words (jieba's dictionary, sampled by frequency, so
character n-grams are as common or rare as in real text) inside instruction templates and
reply openings, with a topic word repeated through the reply. Many rows share a topic and a
template but have different bodies: "same topic, different row", which dedupe must keep.
Reply lengths follow a log-normal spread (median about 120 characters, a long tail).

Planted duplicates (fractions of the total rows):
- exact: a copy of an earlier row, as is or with cosmetic changes dedupe's key ignores
  (half-width punctuation, extra spaces, full-width letters);
- near: a copy with about 5% of the characters of each field edited (substituted, deleted
  or inserted), at least one edit per field.
Each planted copy appears after its original, at a random later position. The truth file
has one line per planted copy: {"line", "of_line", "kind", "edits"} (1-based line numbers,
which are also the row ids `idata` gives rows without an id: `SOURCE:LINE`).

`--realistic` makes it look more like data collected by hand (`realistic()`): a few percent of
rows each trip one cleaning rule (empty or one-character reply, AI boilerplate, a reply cut off
on a comma, repeated sentences, mostly English, a reply that only echoes the question), about 10%
are multi-turn (alpaca `history`, or a Belle `Human:/Assistant:` transcript), and 5% have long
replies (2,000 to 6,000 characters).

Importable: `generate(rows, out, near_dups=..., exact_dups=..., truth=..., seed=..., realistic=...)`,
or `rows(...)` for an iterator of (row dict, truth or None).
"""

from __future__ import annotations

import argparse
import heapq
import json
import operator
import random
import sys
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

CATEGORIES = ["生成", "开放式问答", "头脑风暴", "分类", "改写", "摘要", "信息抽取", "封闭式问答", "翻译", "数学"]
INSTRUCTIONS = [
    "请介绍一下{t}的{a}。", "{t}有哪些{a}？请详细说明。", "如何理解{t}与{u}之间的关系？", "写一篇关于{t}的短文。",
    "给出三个关于{t}的建议。", "请用简单的语言解释{t}。", "为什么{t}对{u}很重要？", "总结下面这段关于{t}的文字。",
    "把下面关于{t}的句子改写得更正式一些。", "{t}和{u}有什么区别？", "列举{t}的主要{a}。", "根据{t}写一个{u}的故事。",
    "请分析{t}的{a}及其影响。", "帮我制定一个关于{t}的计划。", "判断下面的说法是否与{t}有关。", "从下面的文字中找出与{t}相关的{a}。",
]
OPENINGS = [
    "好的，以下是关于{t}的介绍：", "{t}是一个值得讨论的话题。", "关于{t}，可以从以下几个方面来看。", "",
    "首先，我们需要了解{t}的{a}。", "简单来说，", "这是一个关于{t}的问题。", "", "以下是我的回答：",
]
EXTRAS = ["", "", "", "要求不少于{n}字。", "请分点回答。", "用{n}句话回答。", "语言要通俗易懂。"]
ASPECTS = ["特点", "优点", "缺点", "作用", "历史", "原因", "方法", "意义", "发展", "风险", "应用", "步骤"]
PUNCT = ["", "，", "。"]  # after each word: mostly nothing, sometimes a comma or a full stop
PUNCT_P = [0.82, 0.11, 0.07]


@lru_cache(maxsize=1)
def vocabulary() -> tuple[list[str], np.ndarray, list[str]]:
    """(words, sampling weights, nouns) from jieba's dictionary: CJK words only."""
    import jieba

    path = Path(jieba.__file__).with_name("dict.txt")
    words, freqs, nouns = [], [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 3 or not all("\u4e00" <= ch <= "\u9fff" for ch in parts[0]):
                continue
            freq = int(parts[1])
            if freq < 20:
                continue
            words.append(parts[0])
            freqs.append(freq)
            if parts[2] == "n" and 2 <= len(parts[0]) <= 4 and freq >= 200:
                nouns.append(parts[0])
    weights = np.asarray(freqs, dtype=np.float64) ** 0.9  # a little flatter than raw counts
    return words, weights / weights.sum(), nouns


class _Sampler:
    """Draws word indices in large blocks: one numpy call feeds thousands of rows."""

    def __init__(self, rng: np.random.Generator, weights: np.ndarray, block: int = 4_000_000):
        self.rng, self.weights, self.block = rng, weights, block
        self.buf = np.zeros(0, dtype=np.int64)
        self.pos = 0

    def take(self, n: int) -> np.ndarray:
        if self.pos + n > len(self.buf):
            words = self.rng.choice(len(self.weights), size=max(self.block, n), p=self.weights)
            punct = self.rng.choice(3, size=len(words), p=PUNCT_P)
            self.buf = words * 3 + punct  # index into the punctuated vocabulary
            self.pos = 0
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


class Generator:
    def __init__(self, seed: int = 0):
        words, weights, nouns = vocabulary()
        self.rng = np.random.default_rng(seed)
        self.py = random.Random(seed)
        self.sampler = _Sampler(self.rng, weights)
        self.tokens = [w + p for w in words for p in PUNCT]
        self.chars = sorted({ch for w in words[:20000] for ch in w})
        # A few thousand topics, so many rows share one (same topic, different text).
        self.topics = nouns[:6000]

    def _text(self, n_chars: int, topic: str) -> str:
        n_words = max(2, int(n_chars / 2.3))
        idx = self.sampler.take(n_words)
        parts = list(operator.itemgetter(*idx)(self.tokens)) if n_words > 1 else [self.tokens[idx[0]]]
        for _ in range(max(1, n_words // 25)):  # the topic recurs through the text
            parts[self.py.randrange(n_words)] = topic
        text = "".join(parts)
        return text.rstrip("，") + ("" if text.endswith("。") else "。")

    def row(self, index: int, topic: str | None = None, template: int | None = None) -> dict:
        """One row; `topic` and `template` (an index into INSTRUCTIONS) pin what rows may share."""
        py = self.py
        if topic is None:
            # Skewed towards the first topics (some topics are popular), never to one of them.
            topic = self.topics[int(len(self.topics) * py.random() ** 2)]
        other = py.choice(self.topics)
        aspect = py.choice(ASPECTS)
        pattern = INSTRUCTIONS[template] if template is not None else py.choice(INSTRUCTIONS)
        instruction = pattern.format(t=topic, u=other, a=aspect)
        extra = py.choice(EXTRAS)
        if extra:
            instruction += extra.format(n=py.choice(["三", "五", "一百", "两百"]))
        has_input = py.random() < 0.3
        input_text = self._text(py.randint(15, 120), topic) if has_input else ""
        reply_len = int(min(3000, py.lognormvariate(4.8, 0.85)))  # median e^4.8 = 120
        opening = py.choice(OPENINGS).format(t=topic, a=aspect)
        # At least 30 characters of the row's own text: two rows that differ by a handful of
        # characters are near duplicates in truth, and would count as false removals.
        output = opening + self._text(max(30, reply_len - len(opening)), topic)
        return {"instruction": instruction, "input": input_text, "output": output,
                "category": CATEGORIES[index % len(CATEGORIES)]}

    # ------------------------------------------------------------------ planted copies
    def exact_copy(self, row: dict) -> dict:
        """The same row, or one whose only changes are ones the exact key ignores."""
        kind = self.py.randrange(4)
        copy = dict(row)
        if kind == 1:
            copy["instruction"] = row["instruction"].replace("？", "?").replace("。", ".") + " "
        elif kind == 2:
            copy["output"] = row["output"].replace("，", ", ")
        elif kind == 3:
            copy["instruction"] = "  " + row["instruction"].replace("，", ",")
        return copy

    def near_copy(self, row: dict, rate: float = 0.05) -> tuple[dict, int]:
        """Each field with about `rate` of its characters edited (at least one edit)."""
        copy, edits = dict(row), 0
        for field in ("instruction", "input", "output"):
            if row[field]:
                copy[field], n = self._edit(row[field], rate)
                edits += n
        return copy, edits

    def _edit(self, text: str, rate: float) -> tuple[str, int]:
        chars = list(text)
        n = max(1, round(len(chars) * rate))
        for pos in sorted(self.py.sample(range(len(chars)), min(n, len(chars))), reverse=True):
            op = self.py.random()
            if op < 0.6:
                chars[pos] = self.py.choice(self.chars)
            elif op < 0.8 and len(chars) > 1:
                del chars[pos]
            else:
                chars.insert(pos, self.py.choice(self.chars))
        return "".join(chars), n


# What makes a row trip a cleaning rule: (share of rows, how the row is changed).
DIRTY = [
    (0.02, lambda row, gen: {**row, "output": ""}),
    (0.02, lambda row, gen: {**row, "output": "好"}),
    (0.02, lambda row, gen: {**row, "output": "作为一个AI语言模型，我无法回答这个问题。" + row["output"]}),
    (0.02, lambda row, gen: {**row, "output": row["output"].rstrip("。") + "，"}),
    (0.02, lambda row, gen: {**row, "output": (row["output"].split("。")[0] + "。") * 8}),
    (0.02, lambda row, gen: {**row, "output": "This answer is written in English only, with no Chinese in it at all."}),
    (0.02, lambda row, gen: {**row, "output": row["instruction"]}),
]


def realistic(row: dict, gen: "Generator") -> dict:
    """One row of a hand-collected set: most rows as they are; some dirty, some dialogues, some long."""
    draw = gen.py.random()
    for share, change in DIRTY:
        if draw < share:
            return change(row, gen)
        draw -= share
    if draw < 0.05:  # alpaca with history: one to three earlier rounds
        history = [[gen.row(0)["instruction"], gen.row(0)["output"]] for _ in range(gen.py.randint(1, 3))]
        return {**row, "history": history}
    if draw < 0.10:  # a Belle transcript: the rounds in the instruction, the last reply in output
        rounds = [gen.row(0) for _ in range(gen.py.randint(1, 3))]
        text = "".join(f"Human:{r['instruction']}\nAssistant:{r['output']}\n" for r in rounds)
        return {"instruction": f"{text}Human:{row['instruction']}\nAssistant:", "input": "", "output": row["output"],
                "category": row["category"]}
    if draw < 0.15:
        return {**row, "output": row["output"] + gen._text(gen.py.randint(2000, 6000), row["instruction"][:2])}
    return row


def rows(n_rows: int, *, near_dups: float = 0.0, exact_dups: float = 0.0, seed: int = 0,
         spread: int = 50_000, realistic_rows: bool = False) -> Iterator[tuple[dict, dict | None]]:
    """(row, truth) pairs: truth is None for an original row, else the planted copy's record.

    Copies come `1..spread` rows after their original; each original is copied at most once
    and is never itself a copy.
    """
    gen = Generator(seed)
    n_near, n_exact = int(n_rows * near_dups), int(n_rows * exact_dups)
    n_base = n_rows - n_near - n_exact
    # Which base rows get a copy, and which kind: chosen up front, seeded.
    chosen = gen.rng.choice(n_base, size=n_near + n_exact, replace=False) if n_near + n_exact else []
    kinds = {int(i): ("near" if k < n_near else "exact") for k, i in enumerate(chosen)}
    pending: list[tuple[int, int, dict, dict]] = []  # heap of (due base index, tiebreak, copy, truth)
    line = 0
    for base in range(n_base):
        row = gen.row(base)
        if realistic_rows:
            row = realistic(row, gen)
        line += 1
        yield row, None
        kind = kinds.get(base)
        if kind:
            if kind == "near":
                copy, edits = gen.near_copy(row) if "history" not in row else (dict(row), 0)
            else:
                copy, edits = gen.exact_copy(row) if set(row) <= {"instruction", "input", "output", "category"} \
                    else dict(row), 0
            due = base + gen.py.randint(1, spread)
            heapq.heappush(pending, (due, line, copy, {"of_line": line, "kind": kind, "edits": edits}))
        while pending and (pending[0][0] <= base or base == n_base - 1):
            _, _, copy, truth = heapq.heappop(pending)
            line += 1
            yield copy, {"line": line, **truth}


def generate(n_rows: int, out: str | Path, *, near_dups: float = 0.0, exact_dups: float = 0.0,
             truth: str | Path | None = None, seed: int = 0, realistic: bool = False) -> dict:
    """Write the corpus (and the truth file); returns counts."""
    counts = {"rows": 0, "near": 0, "exact": 0}
    truth_fh = open(truth, "w", encoding="utf-8") if truth else None
    try:
        with open(out, "w", encoding="utf-8") as fh:
            for row, record in rows(n_rows, near_dups=near_dups, exact_dups=exact_dups, seed=seed,
                                    realistic_rows=realistic):
                fh.write(json.dumps(row, ensure_ascii=False))
                fh.write("\n")
                counts["rows"] += 1
                if record:
                    counts[record["kind"]] += 1
                    if truth_fh:
                        truth_fh.write(json.dumps(record) + "\n")
    finally:
        if truth_fh:
            truth_fh.close()
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--near-dups", type=float, default=0.0, help="fraction of rows that are near copies")
    parser.add_argument("--exact-dups", type=float, default=0.0, help="fraction of rows that are exact copies")
    parser.add_argument("--truth", default=None, help="where to write the planted pairs (JSON lines)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--realistic", action="store_true", help="dirty rows, dialogues and long replies (see above)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    counts = generate(args.rows, args.out, near_dups=args.near_dups, exact_dups=args.exact_dups,
                      truth=args.truth, seed=args.seed, realistic=args.realistic)
    elapsed = time.perf_counter() - start
    print(f"wrote {counts['rows']:,} rows ({counts['exact']:,} exact and {counts['near']:,} near copies) "
          f"to {args.out} in {elapsed:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
