"""Check a build folder for one truth per dialogue (DESIGN.md), as a user would read it.

    python benchmarks/dialogue_truth.py build/oaast            # a summary
    python benchmarks/dialogue_truth.py build/mix --show 20    # and 20 near removals to read

Reports:
- removals whose kept copy is a record of the same dialogue (`x:5#t2` as a copy of `x:5#t1`);
- held-out answers found in what training reads: in train.jsonl (contexts and targets) and in
  conversations.jsonl (every turn, trained or not). An answer of 50 characters or more counts
  when it appears anywhere; a shorter one (`不能`, `2011`, `不客气！如果你还有其他问题，随时可以问。`)
  only right after the held-out question itself, since short replies recur in unrelated rows;
- dialogues whose trained replies differ between the two files: conversations.jsonl's assistant
  turns without `weight: 0` against the targets of the dialogue's records in train.jsonl;
- the removals by method, and with --show, near removals side by side.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from instruct_data.templates import get_template, parse_prompt

LONG_ANSWER = 50  # characters: at or above it, an answer found anywhere is the held-out answer
_RECORD = re.compile(r"#t\d+$")


def dialogue(record_id: str) -> str:
    """The row a train record belongs to: `x:5#t2` -> `x:5`."""
    return _RECORD.sub("", record_id)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def question_of(context: str, template) -> str | None:
    parsed = parse_prompt(template, context)
    return parsed[1].full_text.strip() if parsed else None


def held_out_leaks(held: list[dict], train: list[dict], convs: list[dict], template) -> tuple[list[str], list[str]]:
    """Ids of the held-out rows whose answer reaches train.jsonl, and conversations.jsonl."""
    train_texts = [f"{r['context']}{r['target']}" for r in train]
    conv_texts = ["\n".join(t["text"] for t in c["turns"]) for c in convs]
    in_train, in_convs = [], []
    for h in held:
        answer = h["target"].strip()
        if len(answer) >= LONG_ANSWER:
            found = re.compile(re.escape(answer))
        else:  # the held-out question, a template's few characters, then its answer
            question = question_of(h["context"], template)
            if not question or not answer:
                continue
            found = re.compile(re.escape(question) + r".{0,40}?" + re.escape(answer), re.DOTALL)
        if any(found.search(text) for text in train_texts):
            in_train.append(h["id"])
        if any(found.search(text) for text in conv_texts):
            in_convs.append(h["id"])
    return in_train, in_convs


def trained_mismatches(train: list[dict], convs: list[dict]) -> list[str]:
    """Dialogues whose trained replies in conversations.jsonl differ from their train.jsonl
    targets (every-turn mode: one record per assistant turn). A turn that calls tools or
    carries a trace is rendered by the template: only counted, not compared as text."""
    targets: dict[str, list[str]] = defaultdict(list)
    for r in train:
        targets[dialogue(r["id"])].append(r["target"])
    wrong = []
    for c in convs:
        trained = [t for t in c["turns"] if t["role"] == "assistant" and t.get("weight") != 0]
        mine = targets.get(c["id"], [])
        if len(trained) != len(mine) or any(t["text"] != target for t, target in zip(trained, mine)
                                            if not t.get("tool_calls") and not t.get("reasoning")):
            wrong.append(c["id"])
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("build", type=Path, help="a build folder (idata build --out)")
    parser.add_argument("--show", type=int, default=0, help="print this many near removals to read")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    out = args.build
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    template = get_template(manifest.get("template") or "seed")
    recipe = manifest.get("parameters", {}).get("recipe", {})
    every_turn = (recipe.get("multiturn") or {}).get("mode", "every-turn") == "every-turn"
    held, train = read_jsonl(out / "heldout.jsonl"), read_jsonl(out / "train.jsonl")
    convs, dups = read_jsonl(out / "conversations.jsonl"), read_jsonl(out / "duplicates.jsonl")
    same = [d for d in dups if dialogue(d["id"]) == dialogue(d["duplicate_of"])]
    in_train, in_convs = held_out_leaks(held, train, convs, template)
    figures = {
        "removals": dict(Counter(d["method"] for d in dups)),
        "removals_within_one_dialogue": len(same),
        "heldout": len(held),
        "heldout_answers_in_train": in_train,
        "heldout_answers_in_conversations": in_convs,
        # In last-turn mode a dialogue gives one record, its final reply: not comparable.
        "dialogues_trained_differently": trained_mismatches(train, convs) if every_turn else "not checked (last-turn)",
        "train_records": len(train),
        "conversations": len(convs),
    }
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=1))
    else:
        for name, value in figures.items():
            print(f"{name}: {len(value) if isinstance(value, list) else value}"
                  + (f"  {value[:8]}" if isinstance(value, list) and value else ""))
    if args.show:
        rows = {}
        for r in train:
            rows[r["id"]] = r
        raw = {d["id"]: d for d in dups}
        for d in [d for d in dups if d["method"] == "near"][:args.show]:
            print(f"\n{d['id']} near {d['duplicate_of']} ({d['similarity']})")
            print("  removed:", _text_of(raw[d["id"]]["raw"], d["id"])[:160].replace("\n", " "))
            kept = rows.get(d["duplicate_of"])
            print("  kept:   ", (kept["context"][-120:] + " → " + kept["target"][:80]).replace("\n", " ")
                  if kept else "(held out or removed)")
    return 0


def _text_of(conversation: dict, record_id: str) -> str:
    """The question and reply of a removed record, from its row's conversation."""
    match = re.search(r"#t(\d+)$", record_id)
    turns = conversation.get("turns", [])
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    k = int(match.group(1)) - 1 if match else len(users) - 1
    start = users[k]
    end = users[k + 1] if k + 1 < len(users) else len(turns)
    return " | ".join(t["text"] for t in turns[start:end])


if __name__ == "__main__":
    sys.exit(main())
