"""Every dialogue format, through `to_multiturn`, checked against the exact rendered contexts.

Fixtures are hand-written in tests/fixtures/dialogues/, one file per format.
"""

import json
from pathlib import Path

import pytest

from instruct_data.multiturn import MultiturnSettings
from instruct_data.multiturn.run import to_multiturn

FIXTURES = Path(__file__).parent / "fixtures" / "dialogues"


def run(tmp_path, name, template="seed", mode="every-turn", **options):
    out = tmp_path / f"{name}-{template}-{mode}"
    manifest = to_multiturn([FIXTURES / name], out, template=template, settings=MultiturnSettings(mode=mode),
                            max_reject_rate=1.0, **options)
    records = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    return records, rejects, manifest


def by_id(records):
    return {r["id"]: r for r in records}


# Belle multiturn row 1, rendered by each template: (context of round 1, context of round 2).
Q1, A1, Q2 = "请根据题材「春节」写两句话。", "爆竹声声辞旧岁，春联红红迎新年。", "再写一句关于团圆的。"
A2 = "一家人围坐桌前，热气腾腾的饺子端上桌。"
LLAMA_USER = "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
EXPECTED = {
    "seed": (f"Instruction: {Q1}\nAnswer: ",
             f"Instruction: {Q1}\nAnswer: {A1}\nInstruction: {Q2}\nAnswer: "),
    "chatglm": (f"[Round 1]\n问：{Q1}\n答：",
                f"[Round 1]\n问：{Q1}\n答：{A1}\n[Round 2]\n问：{Q2}\n答："),
    "belle": (f"Human: \n{Q1}\n\nAssistant: \n",
              f"Human: \n{Q1}\n\nAssistant: \n{A1}\n\nHuman: \n{Q2}\n\nAssistant: \n"),
    "chatml": (f"<|im_start|>user\n{Q1}<|im_end|>\n<|im_start|>assistant\n",
               f"<|im_start|>user\n{Q1}<|im_end|>\n<|im_start|>assistant\n{A1}<|im_end|>\n"
               f"<|im_start|>user\n{Q2}<|im_end|>\n<|im_start|>assistant\n"),
    "llama3": (LLAMA_USER.format(Q1),
               LLAMA_USER.format(Q1) + f"{A1}<|eot_id|>" + LLAMA_USER.format(Q2)),
    "glm4": (f"[gMASK]<sop><|user|>\n{Q1}<|assistant|>\n",
             f"[gMASK]<sop><|user|>\n{Q1}<|assistant|>\n{A1}<|user|>\n{Q2}<|assistant|>\n"),
}


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_belle_transcript_every_turn_renders_each_round_with_its_history(tmp_path, template):
    records, _, _ = run(tmp_path, "belle_multiturn.jsonl", template)
    first, second = by_id(records)["belle_multiturn:1#t1"], by_id(records)["belle_multiturn:1#t2"]
    assert (first["context"], first["target"]) == (EXPECTED[template][0], A1)
    assert (second["context"], second["target"]) == (EXPECTED[template][1], A2)


@pytest.mark.parametrize("template", sorted(EXPECTED))
def test_belle_transcript_last_turn_renders_the_whole_history_once(tmp_path, template):
    records, _, _ = run(tmp_path, "belle_multiturn.jsonl", template, mode="last-turn")
    assert [r["id"] for r in records] == [f"belle_multiturn:{n}" for n in (1, 2, 3, 4, 5)]
    assert (records[0]["context"], records[0]["target"]) == (EXPECTED[template][1], A2)


def test_belle_transcript_edge_cases_parse_to_clean_turns(tmp_path):
    records = by_id(run(tmp_path, "belle_multiturn.jsonl", "chatglm", mode="last-turn")[0])
    # full-width colons and a space after some of them
    assert records["belle_multiturn:2"]["context"] == (
        "[Round 1]\n问：你会做饭吗？\n答：我不会真的做饭，但可以告诉你菜谱。\n[Round 2]\n问：那教我做番茄炒蛋。\n答：")
    # whitespace around the transcript and its turns
    assert records["belle_multiturn:3"]["context"] == (
        "[Round 1]\n问：今天星期几？\n答：今天是星期五。\n[Round 2]\n问：明天呢？\n答：")
    assert records["belle_multiturn:3"]["target"] == "明天是星期六。"
    # 'Human:' in running prose is text, not a turn
    assert records["belle_multiturn:4"]["context"] == (
        "[Round 1]\n问：剧本里台词前面写着 Human: 和 Assistant: 是什么意思？\n"
        "答：它们标出说话的人：Human: 是用户，Assistant: 是助手。\n[Round 2]\n问：明白了，谢谢。\n答：")
    assert records["belle_multiturn:5"]["context"] == "[Round 1]\n问：一加一等于几？\n答："


def test_unparseable_belle_transcripts_are_rejects_with_their_reason(tmp_path):
    records, rejects, manifest = run(tmp_path, "belle_multiturn.jsonl")
    assert [(r["origin"].rsplit(":", 1)[1], r["stage"], r["reason"], r["detail"]) for r in rejects] == [
        ("6", "read", "bad_transcript", "turns 1 and 2 are both 'Human:' (turns must alternate)"),
        ("7", "read", "bad_transcript", "text before the first 'Human:' marker"),
        ("8", "read", "bad_transcript", "turn 2 is empty"),
        ("9", "read", "bad_transcript", "turns 3 and 4 are both 'Human:' (turns must alternate)"),
    ]
    assert rejects[0]["raw"]["output"] == "在的。"  # the raw row is kept
    assert not any(r["id"].startswith(("belle_multiturn:6", "belle_multiturn:7", "belle_multiturn:8",
                                       "belle_multiturn:9")) for r in records)
    assert manifest["counts"]["totals"] == {"read": 9, "written": 5, "rejected": 4, "removed": 0}
    assert manifest["multiturn"]["records_per_dialogue"] == {"1": 1, "2": 4}
    assert manifest["multiturn"]["records_written"] == 9 == len(records)


def test_belle_conversations_3_5m_every_turn(tmp_path):
    records, rejects, _ = run(tmp_path, "belle_conversations.jsonl", "chatglm")
    assert [r["id"] for r in records] == ["belle_conversations:1#t1", "belle_conversations:2#t1",
                                          "belle_conversations:2#t2", "belle_conversations:2#t3"]
    assert records[0]["context"] == "[Round 1]\n问：北京是哪个国家的首都？\n答："
    assert records[3]["context"] == (
        "[Round 1]\n问：帮我起一个猫的名字。\n答：叫它“团子”怎么样？\n"
        "[Round 2]\n问：再来一个。\n答：“年糕”也很可爱。\n"
        "[Round 3]\n问：哪个更好？\n答：")
    assert records[3]["target"] == "团子更顺口。"
    assert [(r["id"], r["reason"]) for r in rejects] == [("belle_conversations:3", "bad_roles")]


def test_sharegpt_system_message_goes_into_the_system_slot(tmp_path):
    records, _, _ = run(tmp_path, "sharegpt.jsonl", "chatml", mode="last-turn")
    assert records[0]["context"] == (
        "<|im_start|>system\n你是一位耐心的数学老师。<|im_end|>\n"
        "<|im_start|>user\n什么是质数？<|im_end|>\n<|im_start|>assistant\n只能被1和它本身整除的大于1的整数。<|im_end|>\n"
        "<|im_start|>user\n举个例子。<|im_end|>\n<|im_start|>assistant\n")
    assert records[1]["context"] == "<|im_start|>user\n现在几点？<|im_end|>\n<|im_start|>assistant\n"


def test_system_option_overrides_and_a_template_without_a_slot_leads_with_it(tmp_path):
    records, _, _ = run(tmp_path, "sharegpt.jsonl", "chatglm", mode="last-turn", system="请用中文回答。")
    assert records[0]["context"] == (
        "请用中文回答。\n[Round 1]\n问：什么是质数？\n答：只能被1和它本身整除的大于1的整数。\n[Round 2]\n问：举个例子。\n答：")
    assert records[1]["context"] == "请用中文回答。\n[Round 1]\n问：现在几点？\n答："


def test_messages_with_system_in_llama3_every_turn(tmp_path):
    records, _, _ = run(tmp_path, "messages.jsonl", "llama3")
    system = "<|start_header_id|>system<|end_header_id|>\n\n回答要简短。<|eot_id|>"
    assert [r["context"] for r in records] == [
        system + LLAMA_USER.format("长城有多长？"),
        system + LLAMA_USER.format("长城有多长？") + "两万多公里。<|eot_id|>" + LLAMA_USER.format("是谁修的？"),
    ]
    assert [r["id"] for r in records] == ["messages:1#t1", "messages:1#t2"]


def test_alpaca_history_keeps_the_input_block_of_the_current_question(tmp_path):
    records, _, _ = run(tmp_path, "alpaca_history.jsonl", "seed", mode="last-turn")
    assert records[0]["context"] == ("Instruction: 帮我规划去杭州的两天行程。\nAnswer: 第一天游西湖，傍晚看雷峰塔。\n"
                                     "Instruction: 那第二天呢？\nAnswer: ")
    assert records[1] == {
        "context": "Instruction: 你会翻译吗？\nAnswer: 会的，请给我句子。\nInstruction: 翻译成英文\nInput: 我爱北京。\nAnswer: ",
        "target": "I love Beijing.", "id": "alpaca_history:2", "source": "alpaca_history", "category": "translation"}
    records, _, _ = run(tmp_path, "alpaca_history.jsonl", "chatglm", mode="every-turn")
    assert records[3]["context"] == "[Round 1]\n问：你会翻译吗？\n答：会的，请给我句子。\n[Round 2]\n问：翻译成英文\n我爱北京。\n答："
    assert {r["category"] for r in records[2:]} == {"translation"}


def test_prompt_response_history_in_glm4_every_turn(tmp_path):
    records, _, manifest = run(tmp_path, "prompt_response.jsonl", "glm4")
    assert [r["context"] for r in records] == [
        "[gMASK]<sop><|user|>\n怎样睡得更好？<|assistant|>\n",
        "[gMASK]<sop><|user|>\n怎样睡得更好？<|assistant|>\n第一，固定作息。<|user|>\n还有呢？<|assistant|>\n",
        "[gMASK]<sop><|user|>\n怎样睡得更好？<|assistant|>\n第一，固定作息。<|user|>\n还有呢？<|assistant|>\n"
        "第二，睡前少看手机。<|user|>\n第三条呢？<|assistant|>\n",
    ]
    assert manifest["multiturn"]["records_per_dialogue"] == {"3": 1}


def test_group_by_assembles_ordered_dialogues_and_passes_single_rows_through(tmp_path):
    records, rejects, manifest = run(tmp_path, "grouped.jsonl", "seed", mode="last-turn",
                                     group_by="conversation_id", order_by="turn")
    records = by_id(records)
    assert records["grouped:2"]["context"] == "Instruction: 单独的问题：水的沸点是多少？\nAnswer: "
    assert records["grouped:conversation_id=c1"]["context"] == (
        "Instruction: 火星离太阳第几近？\nAnswer: 第四近。\nInstruction: 它为什么是红色的？\nAnswer: ")
    # "10" sorts after "2": numeric text is ordered by value
    assert records["grouped:conversation_id=c2"]["context"] == (
        "Instruction: 第一问\nAnswer: 第一答\nInstruction: 第二问\nAnswer: 第二答\nInstruction: 第三问\nAnswer: ")
    assert [(r["id"], r["stage"], r["reason"]) for r in rejects] == [
        ("grouped:conversation_id=c3", "group", "bad_group"),
        ("grouped:conversation_id=c4", "read", "empty_reply"),
    ]
    assert "grouped.jsonl:7" in rejects[0]["detail"] and "grouped.jsonl:8" in rejects[0]["detail"]
    assert len(rejects[1]["raw"]) == 2  # the whole group's rows are kept
    counts = manifest["counts"]["totals"]
    assert counts == {"read": 5, "written": 3, "rejected": 2, "removed": 0}  # dialogues, not rows
    assert manifest["multiturn"]["rows_read"] == 10
    # the columns --group-by and --order-by read are not reported unused
    assert not any(entry.get("unused_columns") for entry in manifest["inputs"])


def test_group_by_without_order_keeps_file_order(tmp_path):
    records, _, _ = run(tmp_path, "grouped.jsonl", "seed", mode="last-turn", group_by="conversation_id")
    assert by_id(records)["grouped:conversation_id=c1"]["context"] == (
        "Instruction: 它为什么是红色的？\nAnswer: 因为表面有氧化铁。\nInstruction: 火星离太阳第几近？\nAnswer: ")


ALPACA_LAST = {  # alpaca row 2: one round of history, then a question with a separate input
    "seed": "Instruction: 你会翻译吗？\nAnswer: 会的，请给我句子。\nInstruction: 翻译成英文\nInput: 我爱北京。\nAnswer: ",
    "chatglm": "[Round 1]\n问：你会翻译吗？\n答：会的，请给我句子。\n[Round 2]\n问：翻译成英文\n我爱北京。\n答：",
    "belle": "Human: \n你会翻译吗？\n\nAssistant: \n会的，请给我句子。\n\nHuman: \n翻译成英文\n我爱北京。\n\nAssistant: \n",
    "chatml": "<|im_start|>user\n你会翻译吗？<|im_end|>\n<|im_start|>assistant\n会的，请给我句子。<|im_end|>\n"
              "<|im_start|>user\n翻译成英文\n我爱北京。<|im_end|>\n<|im_start|>assistant\n",
    "llama3": LLAMA_USER.format("你会翻译吗？") + "会的，请给我句子。<|eot_id|>" + LLAMA_USER.format("翻译成英文\n我爱北京。"),
    "glm4": "[gMASK]<sop><|user|>\n你会翻译吗？<|assistant|>\n会的，请给我句子。<|user|>\n翻译成英文\n我爱北京。<|assistant|>\n",
}


@pytest.mark.parametrize("template", sorted(ALPACA_LAST))
@pytest.mark.parametrize("mode", ["every-turn", "last-turn"])
def test_alpaca_input_under_every_template_and_mode(tmp_path, template, mode):
    records = by_id(run(tmp_path, "alpaca_history.jsonl", template, mode=mode)[0])
    last = records["alpaca_history:2#t2" if mode == "every-turn" else "alpaca_history:2"]
    assert (last["context"], last["target"]) == (ALPACA_LAST[template], "I love Beijing.")
    if mode == "every-turn":  # the first reply has no history: just the first question
        first = records["alpaca_history:2#t1"]["context"]
        assert first == ALPACA_LAST[template][:len(first)] and "你会翻译吗？" in first and "会的" not in first


def test_interleaved_groups_come_out_whole_in_order_of_first_row(tmp_path, monkeypatch):
    from instruct_data.multiturn.grouping import GroupStore

    monkeypatch.setattr(GroupStore, "BATCH", 2)  # spill to SQLite every two rows
    rows = [{"cid": f"g{i % 4}", "n": i // 4, "instruction": f"问{i}", "output": f"答{i}"} for i in range(20)]
    rows.insert(7, {"instruction": "独立的问题", "output": "独立的回答"})
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reversed(rows)), encoding="utf-8")
    manifest = to_multiturn([path], tmp_path / "out", template="chatglm", settings=MultiturnSettings(mode="last-turn"),
                            group_by="cid", order_by="n")
    records = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text("utf-8").splitlines()]
    assert [r["id"] for r in records] == ["chats:14", "chats:cid=g3", "chats:cid=g2", "chats:cid=g1", "chats:cid=g0"]
    g1 = records[3]
    assert g1["context"].count("[Round") == 5 and g1["target"] == "答17"
    assert [g1["context"].index(f"问{i}\n") for i in (1, 5, 9, 13)] == sorted(
        g1["context"].index(f"问{i}\n") for i in (1, 5, 9, 13))
    assert manifest["multiturn"]["rows_read"] == 21
