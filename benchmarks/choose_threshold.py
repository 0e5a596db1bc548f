"""How the near-duplicate defaults (shingle size, threshold) were chosen: by measurement.

    python benchmarks/choose_threshold.py [--pairs 3000] [--seed 0]

For each shingle size it prints the true Jaccard similarity (of the shingle sets of the
normalized key `both`: prompt and reply) of
- planted near copies: a row with about 5% of the characters of each field edited
  (benchmarks/corpus.py's near_copy): these must count as duplicates;
- same topic, different rows: two rows with the same topic word and the same instruction
  template but their own reply: these must not;
- same topic, different template: same topic word only.
and the MinHash estimate's spread at the default num_perm. A good threshold sits below
nearly all planted copies (recall) and well above the different rows (no false removal),
with room for the estimate's noise.

Then, on a generated corpus with 5% near copies planted (--corpus-rows), every LSH
candidate pair is scored, and recall of the planted copies and the number of other pairs
that would be removed are printed per shingle size and threshold: the worst different
pair among many rows, not just typical ones. docs/dedupe.md quotes both tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import INSTRUCTIONS, Generator  # noqa: E402

from instruct_data.dedupe import DedupeSettings, Item  # noqa: E402
from instruct_data.dedupe.keys import normalized_key_text  # noqa: E402
from instruct_data.dedupe.fingerprint import fingerprint  # noqa: E402
from instruct_data.dedupe.near import candidate_pairs, estimated_jaccard, signatures, verified_pairs  # noqa: E402
from instruct_data.dedupe.shingles import shingle_strings  # noqa: E402


def item(row: dict, i: int) -> Item:
    prompt = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
    return Item(id=str(i), prompt=prompt, reply=row["output"])


def jaccard(a: str, b: str, n: int) -> float:
    sa, sb = shingle_strings(a, n), shingle_strings(b, n)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def pair_sets(n_pairs: int, seed: int) -> dict[str, list[tuple[Item, Item]]]:
    gen = Generator(seed)
    sets: dict[str, list[tuple[Item, Item]]] = {"near copy (5% edited)": [], "same topic+template": [],
                                                "same topic": []}
    for i in range(n_pairs):
        row = gen.row(i)
        sets["near copy (5% edited)"].append((item(row, i), item(gen.near_copy(row)[0], i)))
        topic, template = gen.py.choice(gen.topics), gen.py.randrange(len(INSTRUCTIONS))
        sets["same topic+template"].append((item(gen.row(i, topic, template), i), item(gen.row(i, topic, template), i)))
        sets["same topic"].append((item(gen.row(i, topic), i), item(gen.row(i, topic), i)))
    return sets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure similarity of near copies and of different rows.")
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus-rows", type=int, default=50_000)
    args = parser.parse_args(argv)
    sets = pair_sets(args.pairs, args.seed)
    settings = DedupeSettings()
    print(f"{args.pairs} pairs each; key=both; Jaccard of character-shingle sets\n")
    print("| n | pairs | min | 1% | 2% | 50% | 98% | 99% | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in (2, 3, 4, 5):
        for name, pairs in sets.items():
            sims = np.array([jaccard(normalized_key_text(a, settings), normalized_key_text(b, settings), n)
                             for a, b in pairs])
            q = np.percentile(sims, [0, 1, 2, 50, 98, 99, 100])
            print(f"| {n} | {name} | " + " | ".join(f"{v:.2f}" for v in q) + " |")
    # The estimate's noise at the defaults: estimated minus true Jaccard on the near copies.
    near = sets["near copy (5% edited)"]
    texts_a = [normalized_key_text(a, settings) for a, _ in near]
    texts_b = [normalized_key_text(b, settings) for _, b in near]
    sig_a, _ = signatures(texts_a, settings.ngram, settings.num_perm, settings.seed)
    sig_b, _ = signatures(texts_b, settings.ngram, settings.num_perm, settings.seed)
    est = estimated_jaccard(sig_a, sig_b)
    true = np.array([jaccard(a, b, settings.ngram) for a, b in zip(texts_a, texts_b)])
    err = est - true
    print(f"\nMinHash estimate at n={settings.ngram}, num_perm={settings.num_perm}: error std {err.std():.3f}, "
          f"1%..99% [{np.percentile(err, 1):+.3f}, {np.percentile(err, 99):+.3f}]; "
          f"near copies estimated >= {settings.threshold}: {np.mean(est >= settings.threshold):.4f}")
    if args.corpus_rows:
        corpus_sweep(args.corpus_rows, args.seed)


def corpus_sweep(n_rows: int, seed: int) -> None:
    """Recall of planted near copies and other pairs over the threshold, on a whole corpus."""
    import corpus

    items, planted = [], set()
    for line, (row, truth) in enumerate(corpus.rows(n_rows, near_dups=0.05, seed=seed + 1), start=1):
        items.append(item(row, line))
        if truth:
            planted.add((truth["of_line"] - 1, truth["line"] - 1))
    print(f"\n{n_rows:,} rows with {len(planted):,} planted near copies; every LSH candidate pair scored "
          f"(estimated Jaccard), 32 bands x 4 rows\n")
    thresholds = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7)
    print("| n | " + " | ".join(f"t={t}: recall / other pairs" for t in thresholds) + " | worst other pair |")
    print("|---|" + "---|" * (len(thresholds) + 1))
    for n in (2, 3, 4, 5):
        settings = DedupeSettings(ngram=n, threshold=0.3)
        fp = fingerprint(items, settings)
        rank = np.arange(len(items))
        pairs, sims = verified_pairs(fp.sig, candidate_pairs(fp.bands, rank), 0.3)
        is_planted = np.array([tuple(p) in planted for p in pairs.tolist()], dtype=bool)
        cells = [f"{np.sum(is_planted & (sims >= t)) / len(planted):.4f} / {np.sum(~is_planted & (sims >= t))}"
                 for t in thresholds]
        worst = sims[~is_planted].max() if (~is_planted).any() else 0.0
        print(f"| {n} | " + " | ".join(cells) + f" | {worst:.2f} |")


if __name__ == "__main__":
    main()
