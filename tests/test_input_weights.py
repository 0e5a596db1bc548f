"""A reply the input marks `weight: 0` (OpenAI's fine-tuning format, or a build's own
conversations.jsonl) is history only: no train record, kept at weight 0 in conversations.jsonl,
and a row with no reply to train is a reject. Before, the readers ignored `weight` and every
reply was trained, so a build made from its own conversations.jsonl trained again the replies it
had kept out."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def build_dir(out: Path, files: list[Path], fmt: str | None = None, **recipe) -> Path:
    source = {"files": [str(f) for f in files], **({"format": fmt} if fmt else {})}
    build(parse_recipe({"sources": [source], **recipe}), out, workers=1)
    return out


def chat(*pairs: tuple[str, str, int | None]) -> dict:
    messages = []
    for question, answer, weight in pairs:
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer, **({"weight": weight} if weight is not None else {})})
    return {"messages": messages}


ROWS = [
    chat(("北京在哪个国家？请简单说明", "北京是中国的首都，位于华北平原。", 0),
         ("上海呢？它有什么特点", "上海是中国最大的经济中心之一。", None),
         ("广州呢？它有什么特点", "广州是华南地区的商贸中心城市。", None)),
    chat(("给我讲一个关于山的故事吧", "从前有座山，山里有座庙，庙里住着老和尚。", 1),
         ("再讲一个别的故事", "我忘了后面的故事怎么讲了，抱歉。", 0)),
    chat(("这道题只有一个回答可以训练吗", "这个回答标了权重零，不训练。", 0)),
]


def test_replies_at_weight_zero_give_no_record_and_stay_history(tmp_path):
    out = build_dir(tmp_path / "out", [write(tmp_path / "chat.jsonl", ROWS)])
    train = lines(out / "train.jsonl")
    assert [(r["id"], r["target"]) for r in train] == [
        ("chat:1#t1", "上海是中国最大的经济中心之一。"),
        ("chat:1#t2", "广州是华南地区的商贸中心城市。"),
        ("chat:2", "从前有座山，山里有座庙，庙里住着老和尚。"),  # its one record: the row's own id
    ]
    assert "北京是中国的首都" in train[0]["context"]  # the reply at weight 0 is in the history
    assert not any("我忘了" in r["context"] + r["target"] for r in train)

    conversations = {c["id"]: c for c in lines(out / "conversations.jsonl")}
    first = [(t["text"][:4], t.get("weight")) for t in conversations["chat:1"]["turns"] if t["role"] == "assistant"]
    assert first == [("北京是中", 0), ("上海是中", None), ("广州是华", None)]
    # The last reply, at weight 0, is not trained: the dialogue ends on its last trained reply.
    assert [t["text"] for t in conversations["chat:2"]["turns"]][-1].startswith("从前有座山")

    rejects = lines(out / "rejects.jsonl")
    assert [(r["reason"], r["id"]) for r in rejects] == [("no_trained_reply", "chat:3")]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["totals"] == {"read": 3, "written": 2, "rejected": 1, "removed": 0}


def test_last_turn_mode_trains_the_last_reply_not_at_weight_zero(tmp_path):
    out = build_dir(tmp_path / "out", [write(tmp_path / "chat.jsonl", ROWS[:2])], multiturn={"mode": "last-turn"})
    assert [(r["id"], r["target"]) for r in lines(out / "train.jsonl")] == [
        ("chat:1", "广州是华南地区的商贸中心城市。"),
        ("chat:2", "从前有座山，山里有座庙，庙里住着老和尚。"),
    ]


def test_a_weight_that_is_not_0_or_1_or_not_on_a_reply_is_a_reject_naming_the_message(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "问题一"}, {"role": "assistant", "content": "回答", "weight": 0.5}]},
            {"messages": [{"role": "user", "content": "问题二", "weight": 0}, {"role": "assistant", "content": "回答"}]},
            {"messages": [{"role": "user", "content": "问题三"}, {"role": "assistant", "content": "回答", "weight": True}]}]
    good = [chat((f"第{n}个好问题是什么", f"第{n}个好回答在这里。", 1)) for n in range(4)]
    out = build_dir(tmp_path / "out", [write(tmp_path / "bad.jsonl", rows + good)])
    details = [(r["reason"], r["detail"]) for r in lines(out / "rejects.jsonl")]
    assert details == [("wrong_type", "messages[2].weight should be 0 or 1, not 0.5"),
                       ("wrong_type", "messages[1].weight: only an assistant message has a weight (its role is 'user')"),
                       ("wrong_type", "messages[2].weight should be 0 or 1, not true")]


def test_a_build_from_its_own_conversations_trains_what_it_trained(tmp_path):
    """Last-turn mode writes the earlier replies at weight 0; built again from that file in
    every-turn mode, the dialogues give the same records, not one per reply."""
    first = build_dir(tmp_path / "first", [write(tmp_path / "chat.jsonl", ROWS[:2])], multiturn={"mode": "last-turn"})
    again = build_dir(tmp_path / "again", [first / "conversations.jsonl"], fmt="idata")
    assert [(r["context"], r["target"]) for r in lines(again / "train.jsonl")] == \
        [(r["context"], r["target"]) for r in lines(first / "train.jsonl")]


def test_a_removed_record_of_a_dialogue_with_a_reply_at_weight_zero_is_named_and_kept_out(tmp_path):
    """Records are numbered over the replies that give one: dedupe's name for a removed record
    is its train record's id, and conversations.jsonl keeps out what train.jsonl keeps out."""
    question = "为什么要修建长城呢？请说明原因"
    dialogue = chat(("请介绍一下长城的历史", "长城始建于春秋战国时期，秦朝时连接成万里长城。", None),
                    ("它有多长？", "大约两万多公里。", 0),
                    (question, "为了抵御北方游牧民族的侵扰，保护农耕地区。", None),
                    ("还有别的吗", "还有很多关于长城的故事可以讲。", None))
    benchmark = write(tmp_path / "bench.jsonl", [{"instruction": question, "output": "…"}])
    out = build_dir(tmp_path / "out", [write(tmp_path / "a.jsonl", [dialogue])], against=[str(benchmark)])
    # The records are the 1st, 3rd and 4th replies; the 2nd record asks the benchmark's question,
    # so it and the 3rd (whose history holds it) are removed as contamination.
    assert [(d["id"], d["method"]) for d in lines(out / "duplicates.jsonl")] == \
        [("a:1#t2", "contamination"), ("a:1#t3", "contamination")]
    assert [r["id"] for r in lines(out / "train.jsonl")] == ["a:1#t1"]
    (conversation,) = lines(out / "conversations.jsonl")
    assert [t["text"] for t in conversation["turns"]] == ["请介绍一下长城的历史", "长城始建于春秋战国时期，秦朝时连接成万里长城。"]


def test_convert_renders_each_rows_last_reply_not_at_weight_zero(tmp_path):
    source = write(tmp_path / "chat.jsonl", ROWS[1:2])
    result = CliRunner().invoke(cli, ["convert", str(source), "-o", str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    (record,) = lines(tmp_path / "out.jsonl")
    assert record["target"] == "从前有座山，山里有座庙，庙里住着老和尚。"
    assert "我忘了" not in record["context"]


def test_a_tables_null_weights_are_no_weights_and_idatas_own_exports_build_back_the_same_records(tmp_path):
    """A parquet (or Hugging Face) column of message structs gives every message a `weight`,
    null where unset; idata's own export writes one. Null is no weight (a first version rejected
    every such row), and a build of a build's export trains what the build trained."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"messages": [[{"role": "user", "content": "一加一等于几", "weight": None},
                                    {"role": "assistant", "content": "二", "weight": 0},
                                    {"role": "user", "content": "再加一呢", "weight": None},
                                    {"role": "assistant", "content": "三", "weight": None}]]})
    pq.write_table(table, tmp_path / "t.parquet")
    out = build_dir(tmp_path / "table", [tmp_path / "t.parquet"])
    assert [(r["id"], r["target"]) for r in lines(out / "train.jsonl")] == [("t:1", "三")]

    first = build_dir(tmp_path / "first", [write(tmp_path / "chat.jsonl", ROWS)])
    assert CliRunner().invoke(cli, ["export", str(first), "--to", "hf", "--out", str(tmp_path / "hf")]).exit_code == 0
    assert CliRunner().invoke(cli, ["export", str(first), "--to", "openai",
                                    "--out", str(tmp_path / "m.jsonl")]).exit_code == 0
    trained = [(r["context"], r["target"]) for r in lines(first / "train.jsonl")]
    for name, source in (("from_hf", next((tmp_path / "hf" / "data").glob("train-*.parquet"))),
                         ("from_openai", tmp_path / "m.jsonl")):
        again = build_dir(tmp_path / name, [source])
        assert [(r["context"], r["target"]) for r in lines(again / "train.jsonl")] == trained, name


def test_conversations_train_exactly_what_train_jsonl_trains_on_random_weights(tmp_path):
    """300 dialogues of 1-4 rounds, each reply at weight 0 with chance 0.3, some repeated
    (dedupe) and a tenth held out: every dialogue's replies not at weight 0 in
    conversations.jsonl are its targets in train.jsonl, in order, and none ends at weight 0."""
    import random

    rng = random.Random(1)
    rows = []
    for n in range(240):
        messages = []
        for k in range(rng.randint(1, 4)):
            reply = {"role": "assistant", "content": f"第{n}段对话第{k}轮的回答，内容是关于主题{rng.randint(0, 40)}的说明。"}
            if rng.random() < 0.3:
                reply["weight"] = 0
            messages += [{"role": "user", "content": f"第{n}段第{k}个问题：请讲讲主题{rng.randint(0, 40)}"}, reply]
        rows.append({"messages": messages})
    rows += rows[:60]  # copies: dedupe removes their records
    out = build_dir(tmp_path / "out", [write(tmp_path / "mix.jsonl", rows)], split={"heldout": 0.1},
                    max_reject_rate=1)
    targets: dict[str, list[str]] = {}
    for record in lines(out / "train.jsonl"):
        targets.setdefault(record["id"].split("#")[0], []).append(record["target"])
    conversations = lines(out / "conversations.jsonl")
    assert len(conversations) > 150 and lines(out / "rejects.jsonl")  # some rows have no reply to train
    assert lines(out / "duplicates.jsonl")
    for conversation in conversations:
        trained = [t["text"] for t in conversation["turns"] if t["role"] == "assistant" and t.get("weight") != 0]
        assert trained == targets.pop(conversation["id"]), conversation["id"]
        assert conversation["turns"][-1].get("weight") != 0
    assert not targets
