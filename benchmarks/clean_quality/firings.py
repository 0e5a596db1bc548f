"""A cleaning rule's firings on real rows outside the test split, to read and judge by hand.

    python benchmarks/clean_quality/firings.py ai_identity                 # every firing, one a line
    python benchmarks/clean_quality/firings.py ai_identity --sample 120 --out /tmp/ai.jsonl
    python benchmarks/clean_quality/firings.py refusal --extra-alpaca 5    # + alpaca-chinese parts 1-5

Precision on the labeled dev rows says little about rows nobody has read. This runs one filter
alone (switched on, after the default normalizers, through the Cleaner as a build runs it) over
every row of the quality set's sources that is not a test row, and lists where it fires, with
the dev label where the row has one. `--sample N` draws N of the firings on *unlabeled* rows
at random (seeded) for reading: the share judged right is the rule's precision on rows it was
not tuned on, within the sampling error.

Test rows are never shown: a position listed in test.jsonl is skipped, and so is any row whose
record is the same text as a test row (the sources repeat themselves: GUIDE.md). Only the
pointer fields of test.jsonl (source, position, sha256) are read, never its labels or notes.
`--extra-alpaca K` also reads alpaca_chinese_part_1 … part_K of the same repository and commit
as `alpaca_chinese_part0`, and `--extra-medicalgpt` two ChatGPT-written files of
shibing624/MedicalGPT (1,000 ShareGPT dialogues in Chinese, 500 DPO pairs read with their chosen
reply), and `--extra-moss` the 720 sample dialogues without plugins of OpenLMLab/MOSS's
moss-003-sft-data (harmless, helpful incl. role-play, honest; read with their system text):
rows nobody has labeled at all. A DPO pair whose dialogue is also in the test split of
`llamafactory_dpo_zh` (the two files share an origin) is skipped.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "benchmarks"))

from assemble import label_files, load  # noqa: E402
from sources import DATA, MIRRORS, SOURCES, Absent, Source, flattened, record_hash, to_conversation  # noqa: E402


def test_pointers() -> tuple[set[tuple[str, int]], set[str]]:
    """(source, position) and record hashes of the test split: the rows never to show."""
    positions, hashes = set(), set()
    for path in label_files("test"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                label = json.loads(line)
                positions.add((label["source"], label["position"]))
                hashes.add(label["sha256"])
    return positions, hashes


MEDICALGPT = "2f1008cfa49cbba69ff6f138c3b5e2fb0646bdc7"  # shibing624/MedicalGPT, Apache-2.0
MEDICALGPT_SOURCES = (
    Source("medicalgpt_sharegpt_zh_1k", "sharegpt", "jsonl", repo="shibing624/MedicalGPT", commit=MEDICALGPT,
           path="data/sft/sharegpt_zh_1K_format.jsonl"),
    Source("medicalgpt_dpo_zh_500", "sharegpt", "jsonl", repo="shibing624/MedicalGPT", commit=MEDICALGPT,
           path="data/reward/dpo_zh_500.jsonl", flatten=lambda r: _chosen(r)),
)


def _chosen(record: dict) -> dict:
    """MedicalGPT's DPO pair (its `chosen` is the reply's text) as the dialogue it trains."""
    chosen = record["chosen"]
    reply = chosen if isinstance(chosen, dict) else {"from": "gpt", "value": chosen}
    return {"conversations": [*record["conversations"], reply]}


MOSS = "c810e0b428bb209522dcde12f58daa318cf83027"  # OpenLMLab/MOSS, Apache-2.0 (data CC BY-NC 4.0)
MOSS_REPO, MOSS_FOLDER = "OpenLMLab/MOSS", "SFT_data/conversations/conversation_without_plugins"
MOSS_TURN = re.compile(r"<\|(Human|MOSS)\|>:\s*(.*?)\s*<eo[hm]>", re.S)


class MossSamples(Source):
    """MOSS's sample dialogues, one JSON file each, as ShareGPT records (in path order)."""

    def read(self, data_dir: Path = DATA, mirrors: Path = MIRRORS) -> list[dict]:
        from sources import _clone_of

        clone = _clone_of(self.repo, mirrors)
        if clone is None:
            raise Absent(f"no clone of {self.repo} under {mirrors}")
        git = ["git", "-C", str(clone)]
        names = subprocess.run([*git, "ls-tree", "-r", "--name-only", self.commit, self.path], capture_output=True,
                               text=True, check=True).stdout.split()
        records = []
        for name in sorted(n for n in names if n.endswith(".json")):
            raw = json.loads(subprocess.run([*git, "show", f"{self.commit}:{name}"], capture_output=True,
                                            check=True).stdout)
            turns = []
            for key in sorted(raw["chat"], key=lambda k: int(k.split("_")[1])):
                for role, text in MOSS_TURN.findall(raw["chat"][key]["Human"] + raw["chat"][key]["MOSS"]):
                    turns.append({"from": "human" if role == "Human" else "gpt", "value": text})
            records.append({"system": raw.get("meta_instruction", ""), "conversations": turns, "file": name})
        return records


def sources(extra_alpaca: int, extra_medicalgpt: bool, extra_moss: bool = False):
    base = SOURCES["alpaca_chinese_part0"]
    extra = [replace(base, name=f"alpaca_chinese_part{k}", path=f"data/alpaca_chinese_part_{k}.json")
             for k in range(1, extra_alpaca + 1)]
    moss = [MossSamples("moss_sft_samples", "sharegpt", "json", repo=MOSS_REPO, commit=MOSS, path=MOSS_FOLDER,
                        flatten=lambda r: {k: v for k, v in r.items() if k != "file"})]
    return [*SOURCES.values(), *extra, *(MEDICALGPT_SOURCES if extra_medicalgpt else ()), *(moss if extra_moss else ())]


def _dialogue_key(record: dict) -> str:
    return json.dumps(record.get("conversations"), ensure_ascii=False, sort_keys=True)


def test_dialogues(data: Path, mirrors: Path, positions: set[tuple[str, int]]) -> set[str]:
    """The DPO dialogues of the test split, as keys only (never shown), to skip their copies."""
    source = SOURCES["llamafactory_dpo_zh"]
    try:
        records = source.read(data, mirrors)
    except Absent:
        return set()
    return {_dialogue_key(r) for i, r in enumerate(records, 1) if (source.name, i) in positions}


def rows(data: Path, mirrors: Path, extra_alpaca: int, extra_medicalgpt: bool, extra_moss: bool):
    """(where, source, position, flattened record, fmt) of every row outside the test split; seed
    tasks as each of their instances."""
    positions, hashes = test_pointers()
    dialogues = test_dialogues(data, mirrors, positions) if extra_medicalgpt else set()
    for source in sources(extra_alpaca, extra_medicalgpt, extra_moss):
        try:
            records = source.read(data, mirrors)
        except Absent as why:
            print(f"skipped {source.name}: {why}", file=sys.stderr)
            continue
        for position, raw in enumerate(records, 1):
            if (source.name, position) in positions or record_hash(raw) in hashes:
                continue
            if source.name == "medicalgpt_dpo_zh_500" and _dialogue_key(raw) in dialogues:
                continue
            if source.name == "belle_zh_seed_tasks.jsonl":
                for instance in range(1, len(raw.get("instances", [])) + 1):
                    yield (f"{source.name}:{position}#{instance}", source.name, position,
                           flattened(source, raw, instance), source.fmt)
            else:
                yield f"{source.name}:{position}", source.name, position, flattened(source, raw), source.fmt


def firings(rule: str, data: Path, mirrors: Path, extra_alpaca: int = 0,
            extra_medicalgpt: bool = False, extra_moss: bool = False) -> tuple[list[dict], int]:
    from bench_clean_quality import alone, replies

    from instruct_data.clean import Cleaner
    from instruct_data.table import Reject

    dev = {row.where: row for row in load(data, "dev", mirrors).rows}
    cleaner = Cleaner(alone(rule))
    out, seen = [], 0
    for where, source, position, record, fmt in rows(data, mirrors, extra_alpaca, extra_medicalgpt, extra_moss):
        conversation = to_conversation(where, source, position, record, fmt)
        if isinstance(conversation, Reject):
            continue
        seen += 1
        before = copy.deepcopy(conversation)
        verdict, changed = cleaner.clean(conversation)
        cut = [c for c in changed if c.startswith("turns_cut.")]
        if verdict is None and not cut:
            continue
        label = dev.get(where)
        out.append({"where": where, "labeled": (f"{label.label} {label.reason or ''}".strip() if label else None),
                    "detail": verdict.detail if verdict else f"dialogue cut ({len(cut)} rounds)",
                    **_round_judged(cleaner, before)})
    return out, seen


def _round_judged(cleaner, conversation) -> dict:
    """The round the rule judged bad (its question and reply), for reading; a dialogue's turn
    is found by running the filter on the normalized dialogue."""
    work = copy.deepcopy(conversation)
    for normalizer in cleaner.normalizers:
        normalizer.apply(work)
    verdict = cleaner.filters[0].filter(work)
    turns = conversation.turns
    turn = verdict.turn if verdict is not None and verdict.turn else 1
    user = [t for t in turns if t.role == "user"]
    reply = [t for t in turns if t.role == "assistant"]
    n = min(turn, len(user), len(reply))
    return {"turn": turn, "rounds": len(reply), "user": user[n - 1].full_text if user else "",
            "reply": reply[n - 1].text if reply else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rule", help="a filter's name (ai_identity, refusal, deflection, ...)")
    parser.add_argument("--sample", type=int, default=0, help="draw this many firings on unlabeled rows to read")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--extra-alpaca", type=int, default=0, help="also read alpaca_chinese_part_1..K")
    parser.add_argument("--extra-medicalgpt", action="store_true",
                        help="also read shibing624/MedicalGPT's ShareGPT and DPO files (a clone under --mirrors)")
    parser.add_argument("--extra-moss", action="store_true",
                        help="also read OpenLMLab/MOSS's sample dialogues (a clone under --mirrors)")
    parser.add_argument("--out", type=Path, help="write the firings (or the sample) as JSON lines here")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--mirrors", type=Path, default=MIRRORS)
    args = parser.parse_args(argv)
    found, seen = firings(args.rule, args.data, args.mirrors, args.extra_alpaca, args.extra_medicalgpt,
                          args.extra_moss)
    unlabeled = [f for f in found if f["labeled"] is None]
    print(f"{args.rule}: {len(found)} firings on {seen} rows outside the test split "
          f"({len(found) - len(unlabeled)} on dev rows, {len(unlabeled)} on unlabeled rows)", file=sys.stderr)
    shown = found
    if args.sample:
        shown = random.Random(args.seed).sample(unlabeled, min(args.sample, len(unlabeled)))
    lines = [json.dumps(f, ensure_ascii=False) for f in shown]
    if args.out:
        args.out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    else:
        for f in shown:
            print(f"{f['where']}\t{f['labeled'] or '-'}\t{f['detail']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
