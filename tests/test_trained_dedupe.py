"""Dedupe runs on what is trained: every train record, never only a dialogue as a whole."""

from __future__ import annotations

import json
import random

from instruct_data.dedupe import DedupeSettings, Item, find_duplicates
from instruct_data.dedupe.keys import normalize, record_texts
from instruct_data.formats import parse_row
from instruct_data.io import Row
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe
from instruct_data.schema import Origin

WORDS = ("春天 夏天 秋天 冬天 河流 高山 城市 乡村 学校 医院 图书 电脑 音乐 绘画 历史 地理 数学 物理 化学 生物 "
         "经济 文化 旅行 美食 运动 健康 天气 交通 工作 家庭").split()


def sentence(rng: random.Random, n: int) -> str:
    return "，".join("".join(rng.sample(WORDS, 3)) for _ in range(n)) + "。"


def corpus(n: int, seed: int = 0):
    """n two-round dialogues, and n single-turn rows that are each dialogue's first round whole."""
    rng = random.Random(seed)
    dialogues, singles = [], []
    for i in range(n):
        q1, a1, q2, a2 = (f"{i}号：" + sentence(rng, 4) for _ in range(4))
        dialogues.append({"instruction": q2, "input": "", "output": a2, "history": [[q1, a1]],
                          "category": "对话"})
        singles.append({"instruction": q1, "input": "", "output": a1, "category": "问答"})
    return dialogues, singles


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def shingles(text: str) -> set[str]:
    key = normalize(text)
    return {key[i:i + 3] for i in range(max(1, len(key) - 2))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def test_no_heldout_record_has_a_duplicate_in_train_when_dialogues_and_single_rows_mix(tmp_path):
    # The reported bug: a held-out single-turn row was byte-identical to `…#t1`, the first
    # reply of a training dialogue, because dedupe compared the dialogue as a whole.
    dialogues, singles = corpus(60)
    path = tmp_path / "mixed.jsonl"
    rows = [row for pair in zip(dialogues, singles) for row in pair]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for near in (True, False):
        out = tmp_path / f"out-{near}"
        manifest = build(parse_recipe({"sources": [{"files": [str(path)]}], "split": {"heldout": 40},
                                       "dedupe": {"near": near}}), out, workers=1)
        train, held = lines(out / "train.jsonl"), lines(out / "heldout.jsonl")
        assert len(held) == 40 and any(r["id"].endswith("#t1") for r in train)
        pairs = {(r["context"], r["target"]) for r in train}
        assert not any((h["context"], h["target"]) in pairs for h in held)
        train_contexts = {normalize(r["context"]) for r in train}
        assert not any(normalize(h["context"]) in train_contexts for h in held)
        if near:  # near: both the context and the target alike (a held-out round as history is not)
            for h in held:
                for r in train:
                    assert min(jaccard(shingles(h["context"]), shingles(r["context"])),
                               jaccard(shingles(h["target"]), shingles(r["target"]))) < 0.6
        totals = manifest["counts"]["totals"]
        assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
        # A dialogue whose first reply duplicates a held-out row is cut there: its second reply's
        # context holds the held-out question and answer, so it goes too, as contamination.
        ids = {r["id"] for r in train}
        removed = {d["id"]: d for d in lines(out / "duplicates.jsonl")}
        cut = [i for i in removed if i.endswith("#t2") and removed[i]["method"] == "contamination"
               and removed.get(i[:-1] + "1", {}).get("duplicate_of") == removed[i]["duplicate_of"]]
        assert cut and not any(i in ids or i[:-1] + "1" in ids for i in cut)
        assert not any(h["target"] in r["context"] for h in held for r in train)


def test_every_reply_is_a_record_to_compare_and_the_prompt_is_what_comes_before_it():
    dialogue = parse_row(Row(Origin(file="x", line=1), {"instruction": "问二", "input": "", "output": "答二",
                                                         "history": [["问一", "答一"]], "system": "你是助手"}),
                         "alpaca", source="x")
    # In every-turn mode the history ends with HISTORY_END: near detection compares the own round.
    assert record_texts(dialogue, every_turn=True) == [("问一", "答一"), ("问一\n答一\x1e问二", "答二")]
    assert record_texts(dialogue) == [("问一\n答一\n问二", "答二")]


def test_dedupe_and_build_agree_on_a_dialogues_first_reply(tmp_path):
    dialogues, singles = corpus(3, seed=1)
    items = []
    for n, row in enumerate([dialogues[0], singles[0]]):
        conversation = parse_row(Row(Origin(file="x", line=n + 1), row), "alpaca", source="x")
        for k, (prompt, reply) in enumerate(record_texts(conversation, every_turn=True)):
            items.append(Item(f"{n}#{k}", prompt, reply, order=len(items)))
    removed = find_duplicates(items, DedupeSettings())
    assert [(r.id, r.duplicate_of, r.method) for r in removed] == [("1#0", "0#0", "exact")]
