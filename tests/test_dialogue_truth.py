"""One truth per dialogue (issue 19 item 4): what a user reads in a build's outputs.

- records of one dialogue are never duplicates of each other, and a later record is not a
  near copy of another row because its prompt holds that row as history;
- a near pair must agree on its numbers (`6+3` is not a copy of `5+3`);
- conversations.jsonl trains exactly the replies train.jsonl does, and a dialogue that asks a
  held-out question is cut there in both files: no held-out answer reaches training.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from instruct_data.dedupe import DedupeSettings, Item, find_duplicates, normalize
from instruct_data.dedupe.near import estimated_jaccard, signatures
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe
from instruct_data.schema import Conversation
from instruct_data.templates import segments

FIXTURE = Path(__file__).parent / "fixtures" / "dialogue_truth" / "dialogues.json"
THRESHOLD = DedupeSettings().threshold


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build_dir(tmp_path: Path, files: list[Path], **recipe) -> tuple[Path, dict]:
    out = tmp_path / "out"
    manifest = build(parse_recipe({"sources": [{"files": [str(f) for f in files]}], **recipe}), out, workers=1)
    return out, manifest


def similarity(a: str, b: str) -> float:
    """The estimated Jaccard dedupe computes for two texts."""
    settings = DedupeSettings()
    sig, _ = signatures([normalize(a), normalize(b)], settings.ngram, settings.num_perm, settings.seed)
    return float(estimated_jaccard(sig[:1], sig[1:])[0])


def trained_replies(conversation: dict) -> list[str]:
    return [t["text"] for t in conversation["turns"] if t["role"] == "assistant" and t.get("weight") != 0]


def test_a_dialogues_later_turn_is_not_a_copy_of_its_first_or_of_a_row_it_holds_as_history(tmp_path):
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    joke, single, branch = rows[0], rows[1], rows[2]
    # Teeth: compared whole (history, question and reply), each later record is a near copy of
    # the round before it, as dedupe compared them before.
    for row in (joke, branch):
        (q1, a1), = row["history"]
        assert similarity(f"{q1}\n{a1}\n{row['instruction']}{row['output']}", f"{q1}{a1}") >= THRESHOLD
    out, manifest = build_dir(tmp_path, [FIXTURE], split={"heldout": 0})
    train = {r["id"]: r for r in lines(out / "train.jsonl")}
    removed = {d["id"]: d for d in lines(out / "duplicates.jsonl")}
    assert {"dialogues:1#t1", "dialogues:1#t2", "dialogues:3#t2"} <= set(train)
    # The branch's first round is row 2 whole: that record alone is the copy.
    assert (removed["dialogues:3#t1"]["duplicate_of"], removed["dialogues:3#t1"]["method"]) == ("dialogues:2", "exact")
    assert not any(d["id"].split("#")[0] == d["duplicate_of"].split("#")[0] for d in removed.values())
    # conversations.jsonl trains what train.jsonl does: the copied reply stays as history only.
    convs = {c["id"]: c for c in lines(out / "conversations.jsonl")}
    assert trained_replies(convs["dialogues:3"]) == [train["dialogues:3#t2"]["target"]]
    assert [t.get("weight") for t in convs["dialogues:3"]["turns"]] == [None, 0, None, None]
    assert trained_replies(convs["dialogues:1"]) == [train["dialogues:1#t1"]["target"], train["dialogues:1#t2"]["target"]]
    totals = manifest["counts"]["totals"]
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]


def test_maths_that_differ_only_in_their_numbers_are_not_copies(tmp_path):
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    five, six, five_again = rows[3], rows[4], rows[5]
    # Teeth: by their shingles the two problems are near copies.
    assert similarity(five["instruction"] + five["output"], six["instruction"] + six["output"]) >= THRESHOLD
    out, _ = build_dir(tmp_path, [FIXTURE], split={"heldout": 0})
    train = {r["id"] for r in lines(out / "train.jsonl")}
    removed = {d["id"]: d for d in lines(out / "duplicates.jsonl")}
    assert {"dialogues:4", "dialogues:5"} <= train
    # A copy with the same numbers and a few words changed is still removed.
    assert (removed["dialogues:6"]["duplicate_of"], removed["dialogues:6"]["method"]) == ("dialogues:4", "near")


def test_idata_dedupe_keeps_problems_with_other_numbers_and_removes_a_copy_with_the_same(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    def problem(price: int, count: int, ending: str = "") -> dict:
        return {"instruction": f"小红去商店买文具，她先挑了一支钢笔，又买了几本笔记本。每本笔记本的价格是{price}元，"
                               f"她一共买了{count}本笔记本，请问她买笔记本一共花了多少钱{ending}？",
                "output": f"每本笔记本的价格是{price}元，小红买了{count}本，所以买笔记本一共花了{price * count}元。"}

    rows = [problem(3, 4), problem(5, 4), problem(3, 6), problem(3, 4, "呢")]
    texts = [r["instruction"] + r["output"] for r in rows]
    assert min(similarity(texts[0], t) for t in texts[1:]) >= THRESHOLD  # teeth: all near by shingles
    source = tmp_path / "maths.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = CliRunner().invoke(cli, ["dedupe", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    removed = lines(tmp_path / "out" / "duplicates.jsonl")
    assert [(d["id"], d["duplicate_of"], d["method"]) for d in removed] == [("maths:4", "maths:1", "near")]
    assert len(lines(tmp_path / "out" / "maths.jsonl")) == 3


def test_records_of_one_dialogue_are_never_compared_even_when_identical():
    settings = DedupeSettings(key="reply")
    items = [Item("x#t1", "问一", "好的，没问题。", order=0, dialogue="x"),
             Item("x#t2", "问一\n好的\x1e问二", "好的，没问题。", order=1, dialogue="x"),
             Item("y", "问三", "好的，没问题！", order=2)]
    removed = {r.id: (r.duplicate_of, r.method) for r in find_duplicates(items, settings)}
    assert removed == {"y": ("x#t1", "exact")}


def dialogues_with_heldout_rounds(n: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """n single rows (category 问答), and per row a dialogue (category 对话) that asks it: as its
    first round for even n, after a round of its own for odd n; then a round of its own."""
    rng = random.Random(seed)
    words = "春天 夏天 秋天 冬天 河流 高山 城市 乡村 学校 医院 图书 电脑 音乐 绘画 历史 地理 数学 物理".split()

    def sentence(tag: str) -> str:
        return tag + "，".join("".join(rng.sample(words, 3)) for _ in range(4)) + "。"

    singles, dialogues = [], []
    for i in range(n):
        q, a = sentence(f"{i}问"), sentence(f"{i}答")
        singles.append({"instruction": q, "input": "", "output": a, "category": "问答"})
        history = [[q, a]] if i % 2 == 0 else [[sentence(f"{i}先问"), sentence(f"{i}先答")], [q, a]]
        dialogues.append({"instruction": sentence(f"{i}再问"), "input": "", "output": sentence(f"{i}再答"),
                          "history": history, "category": "对话"})
    return singles, dialogues


def test_no_heldout_answer_reaches_train_or_conversations_and_a_contaminated_dialogue_is_cut(tmp_path):
    singles, dialogues = dialogues_with_heldout_rounds(40)
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for pair in zip(singles, dialogues)
                            for r in pair), encoding="utf-8")
    for near in (True, False):
        out, manifest = build_dir(tmp_path / str(near), [path], split={"heldout": 0.25}, dedupe={"near": near})
        held, train = lines(out / "heldout.jsonl"), lines(out / "train.jsonl")
        convs, removed = lines(out / "conversations.jsonl"), {d["id"]: d for d in lines(out / "duplicates.jsonl")}
        held_singles = [h for h in held if h["category"] == "问答"]
        assert len(held_singles) >= 5
        train_text = "\n".join(r["context"] + r["target"] for r in train)
        conv_text = "\n".join(t["text"] for c in convs for t in c["turns"])
        for h in held:
            assert h["target"] not in train_text and h["target"] not in conv_text, h["id"]
        # Teeth: dialogues that ask a held-out question were cut there, in both files.
        cut_first = cut_later = 0
        by_id = {c["id"]: c for c in convs}
        for h in held_singles:
            i = int(h["id"].split(":")[1]) + 1  # the dialogue after it in the file
            dialogue = f"mixed:{i}"
            if dialogue in {x["id"] for x in held}:
                continue
            asked = removed[f"{dialogue}#t1"] if i % 4 == 2 else removed[f"{dialogue}#t2"]
            assert (asked["duplicate_of"], asked["method"]) == (h["id"], "contamination")
            later = removed[f"{dialogue}#t3" if i % 4 != 2 else f"{dialogue}#t2"]
            assert (later["duplicate_of"], later["method"]) == (h["id"], "contamination")
            if i % 4 == 2:  # asked first: nothing is left of the dialogue
                assert dialogue not in by_id
                cut_first += 1
            else:  # asked second: its own first round is left, in both files
                assert len(by_id[dialogue]["turns"]) == 2
                assert [r["id"] for r in train if r["id"].startswith(dialogue + "#")] == [f"{dialogue}#t1"]
                cut_later += 1
        assert cut_first and cut_later
        totals = manifest["counts"]["totals"]
        assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
        assert manifest["split"]["train_records"] == len(train)


def test_a_reply_of_weight_zero_is_history_only_when_training_reads_conversations():
    conversation = Conversation.model_validate({
        "id": "x:1", "source": "x", "turns": [
            {"role": "user", "text": "问一"}, {"role": "assistant", "text": "答一", "weight": 0},
            {"role": "user", "text": "问二"}, {"role": "assistant", "text": "答二"}]})
    pieces = segments(conversation, "chatglm")
    trained = "".join(text for text, supervised in pieces if supervised)
    assert "答二" in trained and "答一" not in trained
    assert "答一" in "".join(text for text, _ in pieces)  # still the history of the second reply


def test_in_last_turn_mode_conversations_train_only_the_last_reply_as_train_jsonl_does(tmp_path):
    out, _ = build_dir(tmp_path, [FIXTURE], split={"heldout": 0}, multiturn={"mode": "last-turn"})
    train = {r["id"]: r for r in lines(out / "train.jsonl")}
    convs = {c["id"]: c for c in lines(out / "conversations.jsonl")}
    assert len(convs["dialogues:1"]["turns"]) == 4
    for conversation in convs.values():
        assert trained_replies(conversation) == [train[conversation["id"]]["target"]]


def glaive_dialogue(city: str, temp: int) -> dict:
    return {"conversations": [
        {"from": "human", "value": f"{city}今天天气怎么样？"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}},
                                                      ensure_ascii=False)},
        {"from": "observation", "value": json.dumps({"weather": "晴", "temp": temp})},
        {"from": "gpt", "value": f"{city}今天晴，气温{temp}度，适合出门。"},
        {"from": "human", "value": f"谢谢，{city}的天气我知道了！"},
        {"from": "gpt", "value": f"不客气，祝你在{city}玩得开心！"}],
        "tools": json.dumps([{"name": "get_weather", "description": "查询城市天气", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}], ensure_ascii=False)}


def test_every_heldout_reply_of_a_tool_dialogue_is_kept_out_of_training(tmp_path):
    # A held-out dialogue that calls tools gives the held-out set every reply (its calls are
    # scored); a copy of it in training must lose every one of them, not only the last.
    cities = "北京 上海 广州 深圳 杭州 南京 成都 重庆 武汉 西安 苏州 天津 长沙 郑州 青岛 大连 厦门 昆明 合肥 福州".split()
    rows = [row for n, city in enumerate(cities) for row in (glaive_dialogue(city, 20 + n),) * 2]
    path = tmp_path / "weather.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    out, manifest = build_dir(tmp_path, [path], split={"heldout": 0.3})
    held, train = lines(out / "heldout.jsonl"), lines(out / "train.jsonl")
    copies = [h for h in held if h["id"].endswith("#t1")]
    assert len(copies) >= 3  # teeth: held-out dialogues giving several records, each with a copy in the file
    train_pairs = {(r["context"], r["target"]) for r in train}
    train_targets = "\n".join(r["target"] for r in train)
    for h in held:
        assert (h["context"], h["target"]) not in train_pairs and h["target"] not in train_targets, h["id"]
    totals = manifest["counts"]["totals"]
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
