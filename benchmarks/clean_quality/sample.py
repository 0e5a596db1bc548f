"""Draw rows to label: a random sample of each source, and rows each cleaning rule fires on.

    python benchmarks/clean_quality/sample.py --out /tmp/queue --batch 2   # writes queue.jsonl, strata.json

This is how the rows added after the first 705 were chosen (GUIDE.md, "How the rows were
chosen"); it is kept to make that reproducible, not to be rerun over labeled rows. The queue
is shuffled and holds no rule verdicts, so a row is labeled without knowing why it was drawn;
`strata.json` (id -> how it was drawn) is joined to the labels afterwards as `sampled`.

Strata, drawn in this order, a row counted in the first that takes it:
  random:SOURCE     uniform rows of SOURCE (seeded), as many as the batch says
  rule:NAME         rows that filter NAME alone (switched on, after the default normalizers)
                    drops or cuts (pii: masks), the batch's number at most, in turn from each source
  pattern:NAME      rows matching a plain pattern for a defect no rule covered when drawn
Rows already labeled, rows issue 19 quotes and rows the reader rejects (cleaning never sees
them: glaive's dialogues with function calls) are never drawn.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from assemble import QUOTED_IN_ISSUE, _label_source, label_files  # noqa: E402
from sources import DATA, MIRRORS, SOURCES, flattened, record_hash, to_conversation  # noqa: E402

# Each batch as it was drawn: its seed, random rows per source, firings per rule, rows per pattern,
# and the label files whose rows it left out. Batch 1: rules of commit 8349d8f; batch 2: rules
# of commit cb3db22 (glaive's rows with function calls readable since 885200d).
BATCHES = {
    1: {"seed": 19, "per_rule": 30, "per_pattern": 20, "exclude": ("labels.jsonl",),
        "random": {"alpaca_zh_demo.json": 40, "oaast_sft_zh.json": 40, "belle_school_math_dev1K.jsonl": 160,
                   "glaive_toolcall_zh_demo.json": 60, "belle_eval_set": 140, "llamafactory_dpo_zh": 80,
                   "alpaca_chinese_part0": 100, "medical_im_table": 100}},
    2: {"seed": 20, "per_rule": 30, "per_pattern": 0, "exclude": ("labels.jsonl", "test.jsonl", "dev.jsonl"),
        "random": {"glaive_toolcall_zh_demo.json": 40, "belle_school_math_dev1K.jsonl": 20}},
    # Batch 3: new sources only (no rule was written or tuned on them), rules of commit 2c4c341;
    # firings of the rules on by default alone, where the test split had too few to measure them.
    3: {"seed": 21, "per_rule": 30, "per_pattern": 0, "exclude": (),
        "sources": ("alignbench", "hk_code", "hk_terms", "hk_academic", "hk_party", "hk_sums", "hk_advice",
                    "hk_feelings", "hk_poetry", "hk_translated"),
        "rules": "default",
        "random": {"alignbench": 40, "hk_code": 40, "hk_translated": 40, "hk_terms": 10, "hk_academic": 10,
                   "hk_party": 10, "hk_sums": 10}},
}
SOURCES_DRAWN = ("alpaca_zh_demo.json", "oaast_sft_zh.json", "belle_school_math_dev1K.jsonl",
                 "glaive_toolcall_zh_demo.json", "belle_eval_set", "llamafactory_dpo_zh", "alpaca_chinese_part0",
                 "medical_im_table")  # batches 1 and 2
PATTERNS = {
    # a reply or request about a picture, file or attachment
    "refers_to_attachment": re.compile(r"看图|如图|图中|图片|上图|下图|附件|附图|这张图|文件中|表格中|视频中"),
    # a very short reply to a request that is not a classification or a yes/no question
    "short_reply": None,
}


def pool(data_dir: Path, mirrors: Path, exclude: tuple[str, ...], names: tuple[str, ...] = SOURCES_DRAWN):
    """Every row of the sources not yet labeled in the `exclude` files: (source, position, raw)."""
    taken = set()
    for path in label_files("all"):
        if path.exists() and path.name in exclude:
            taken |= {_label_source(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    for name in names:
        source = SOURCES[name]
        for position, raw in enumerate(source.read(data_dir, mirrors), 1):
            if (name, position) not in taken and (name, position) not in QUOTED_IN_ISSUE:
                yield name, position, raw


def draw(data_dir: Path, mirrors: Path, batch: dict) -> dict[tuple[str, int], str]:
    from instruct_data.clean import CleanSettings, Cleaner
    from instruct_data.clean.filters import FILTERS
    from instruct_data.table import Reject

    rng = random.Random(batch["seed"])
    names = batch.get("sources", SOURCES_DRAWN)
    rows = [(name, position, raw) for name, position, raw in pool(data_dir, mirrors, batch["exclude"], names)
            if not isinstance(to_conversation("", name, position, flattened(SOURCES[name], raw), SOURCES[name].fmt),
                              Reject)]
    by_source = defaultdict(list)
    for name, position, raw in rows:
        by_source[name].append((name, position, raw))
    chosen: dict[tuple[str, int], str] = {}
    for name, count in batch["random"].items():
        for _, position, _ in rng.sample(by_source[name], min(count, len(by_source[name]))):
            chosen[(name, position)] = f"random:{name}"
    normalizers = Cleaner().normalizers
    convs = {}
    for name, position, raw in rows:
        conversation = to_conversation(f"{name}:{position}", name, position, flattened(SOURCES[name], raw),
                                       SOURCES[name].fmt)
        if isinstance(conversation, Reject):
            continue  # cleaning never sees it
        for normalizer in normalizers:
            normalizer.apply(conversation)
        convs[(name, position)] = conversation
    defaults = CleanSettings()
    for rule_class in FILTERS:
        if batch.get("rules") == "default" and not getattr(defaults, rule_class.name).enabled:
            continue  # batch 3 measures the rules on by default
        settings = rule_class.Settings.model_validate({**getattr(defaults, rule_class.name).model_dump(), "enabled": True})
        rule = rule_class(settings)
        fired = defaultdict(list)
        for key, conversation in convs.items():
            work = copy.deepcopy(conversation)
            if rule.filter(work) is not None or getattr(rule, "row_masked", None):
                if key not in chosen:
                    fired[key[0]].append(key)
        _take_in_turn(fired, batch["per_rule"], f"rule:{rule_class.name}", chosen, rng)
    for name, pattern in PATTERNS.items():
        hits = defaultdict(list)
        for key, conversation in convs.items():
            if key in chosen:
                continue
            texts = [t.full_text for t in conversation.turns]
            replies = [t.full_text for t in conversation.turns if t.role == "assistant"]
            hit = pattern.search(" ".join(texts)) if pattern else (replies and len(replies[-1].strip()) <= 12)
            if hit:
                hits[key[0]].append(key)
        _take_in_turn(hits, batch["per_pattern"], f"pattern:{name}", chosen, rng)
    return chosen


def _take_in_turn(candidates: dict[str, list], limit: int, stratum: str, chosen: dict, rng: random.Random) -> None:
    """Up to `limit` rows, one source after another, so no source fills a stratum alone."""
    queues = {name: rng.sample(keys, len(keys)) for name, keys in sorted(candidates.items())}
    taken = 0
    while taken < limit and any(queues.values()):
        for name in list(queues):
            if queues[name] and taken < limit:
                chosen[queues[name].pop()] = stratum
                taken += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for queue.jsonl and strata.json")
    parser.add_argument("--batch", type=int, choices=sorted(BATCHES), default=max(BATCHES),
                        help="which batch to draw again (default: the latest)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mirrors", type=Path, default=MIRRORS)
    args = parser.parse_args(argv)
    batch = BATCHES[args.batch]
    chosen = draw(args.data, args.mirrors, batch)
    args.out.mkdir(parents=True, exist_ok=True)
    keys = sorted(chosen)
    random.Random(batch["seed"] + 1).shuffle(keys)
    records = {name: SOURCES[name].read(args.data, args.mirrors) for name in {k[0] for k in keys}}
    with open(args.out / "queue.jsonl", "w", encoding="utf-8") as out:
        for number, (name, position) in enumerate(keys, 1):
            raw = records[name][position - 1]
            out.write(json.dumps({"id": number, "source": name, "position": position, "sha256": record_hash(raw),
                                  "record": flattened(SOURCES[name], raw)}, ensure_ascii=False) + "\n")
    strata = {f"{name}:{position}": chosen[(name, position)] for name, position in keys}
    (args.out / "strata.json").write_text(json.dumps(strata, ensure_ascii=False, indent=0), encoding="utf-8")
    print(f"{len(keys)} rows drawn -> {args.out}/queue.jsonl (strata in strata.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
