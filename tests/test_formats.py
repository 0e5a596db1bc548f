"""Every input format, read from hand-written fixtures into Conversations or reasoned rejects."""

from pathlib import Path

import pytest

from instruct_data.errors import InputError
from instruct_data.formats import (alias_mapping, format_name, parse_mapping, read_conversations,
                                   resolve_format)
from instruct_data.io import read_rows
from instruct_data.schema import Conversation
from instruct_data.table import Reject

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def read(name, **kwargs):
    fmt, stream = read_conversations(str(FIXTURES / name), source=Path(name).stem, **kwargs)
    results = [(str(row.origin).rsplit("/", 1)[-1], result) for row, result in stream]
    return fmt, results


def turns(conv: Conversation):
    return [(t.role, t.text) for t in conv.turns]


def rejects(results):
    return {where: (r.reason, r.detail) for where, r in results if isinstance(r, Reject)}


def test_alpaca_input_system_history_category_and_rejects():
    fmt, results = read("alpaca.jsonl")
    assert fmt == "alpaca"
    first, second, third = (r for _, r in results[:3])
    assert first.prompt.text == "把下面这句话改写得更正式一些。" and first.prompt.input == "这事儿我们明天再聊吧。"
    assert first.reply == "此事我们明日再议。" and first.category == "rewrite"
    assert first.id == "alpaca:1" and str(first.origin).endswith("alpaca.jsonl:1")
    assert second.system == "你是一位营养师。" and second.prompt.input is None
    assert turns(third) == [("user", "列举三种常见的绿叶蔬菜。"), ("assistant", "菠菜、油麦菜和小白菜。"),
                            ("user", "那它们分别适合怎么做？"),
                            ("assistant", "菠菜适合凉拌，油麦菜适合清炒，小白菜适合煮汤。")]
    assert rejects(results) == {
        "alpaca.jsonl:4": ("empty_reply", "'output' is empty"),
        "alpaca.jsonl:5": ("empty_instruction", "instruction and input are both empty"),
        "alpaca.jsonl:6": ("wrong_type", "'output' should be text, got list"),
    }


def test_belle_plain_release_reads_as_alpaca_shape():
    fmt, results = read("belle_0.5M.json")  # JSON lines despite the .json name
    assert fmt == "alpaca"
    assert [r.reply for _, r in results] == [
        "可以先看《围棋入门》这类图文并茂的书，从吃子、做眼学起，每天做十道死活题。", "357 是奇数，因为它除以 2 余 1。"]
    assert results[1][1].prompt.text == "判断下面的数是奇数还是偶数：357"


def test_belle_input_target_variant():
    fmt, results = read("belle_input_target.json")
    assert fmt == "belle"
    assert turns(results[0][1]) == [("user", "用一句话概括《西游记》的主要内容。"),
                                   ("assistant", "唐僧师徒四人历经九九八十一难，前往西天取得真经。")]
    assert rejects(results) == {"belle_input_target.json:3": ("empty_reply", "'target' is empty")}


def test_belle_multiturn_transcript_reply_comes_from_output():
    fmt, results = read("belle_multiturn.json")
    assert fmt == "belle"
    assert turns(results[0][1]) == [
        ("user", "我想学做红烧肉，需要准备哪些材料？"), ("assistant", "需要五花肉、冰糖、生抽、老抽、料酒、葱姜和八角。"),
        ("user", "炖多长时间合适？"), ("assistant", "小火炖四十分钟到一个小时，筷子能轻松插进肉里就好了。")]
    assert turns(results[1][1]) == [("user", "给我讲一个关于月亮的冷知识。"), ("assistant", "月亮每年离地球远大约 3.8 厘米。")]
    bad = rejects(results)
    assert bad["belle_multiturn.json:3"][0] == "bad_transcript" and "Human" in bad["belle_multiturn.json:3"][1]
    assert bad["belle_multiturn.json:4"] == ("empty_reply", "'output' is empty")


def test_belle_3_5m_conversations_keep_their_numeric_id_as_own_id():
    fmt, results = read("belle_3.5M.json")
    assert fmt == "belle_conversations"
    single, multi = results[0][1], results[1][1]
    assert (single.id, single.own_id) == ("belle_3.5M:1", "11590") and turns(single) == [
        ("user", "解释一下什么是复利。"), ("assistant", "复利就是利息也会产生利息，俗称“利滚利”。")]
    assert multi.n_rounds == 2 and multi.history == [("推荐一部科幻电影。", "可以看《星际穿越》。")]
    assert rejects(results) == {
        "belle_3.5M.json:3": ("bad_roles", "turns: the last turn (1) is a user turn with no reply"),
        "belle_3.5M.json:4": ("bad_roles", "turns: turn 2 is user after a user turn, expected assistant"),
    }


def test_sharegpt_array_with_system_and_a_call_to_an_undeclared_tool():
    fmt, results = read("sharegpt.json")
    assert fmt == "sharegpt"
    conv = results[0][1]
    assert conv.system == "你是一个耐心的数学老师。"
    assert turns(conv) == [("user", "1/2 加 1/3 等于多少？"), ("assistant", "先通分：3/6 加 2/6 等于 5/6。")]
    bad = rejects(results)
    # Items of a JSON array carry the line they start on.
    assert set(bad) == {"sharegpt.json:18", "sharegpt.json:38"}
    # A function_call is read (tests/test_tools.py); this one names a tool the row does not declare.
    assert bad["sharegpt.json:18"] == ("unknown_tool", "turn 2 (conversations[2]) calls 'weather', which the "
                                                       "dialogue does not declare (declared: none)")
    assert bad["sharegpt.json:38"] == ("bad_roles", "turns: turn 1 is assistant, expected user")


def test_messages_with_content_parts_tool_calls_and_empty_reply():
    fmt, results = read("messages.jsonl")
    assert fmt == "messages"
    assert results[0][1].system == "你是旅行顾问。"
    assert turns(results[1][1]) == [("user", "把“谢谢”翻译成日语。"), ("assistant", "ありがとう。")]
    bad = rejects(results)
    assert bad["messages.jsonl:3"] == ("unknown_tool", "turn 2 (messages[2]) calls 'now', which the dialogue "
                                                       "does not declare (declared: none)")
    assert bad["messages.jsonl:4"] == ("empty_reply", "turns: the reply is empty")


def test_tool_result_that_follows_no_call_is_a_reject():
    from instruct_data.formats import parse_row
    from instruct_data.io import Row
    from instruct_data.schema import Origin

    row = Row(Origin(file="x.jsonl", line=7), {"messages": [
        {"role": "user", "content": "几点了"}, {"role": "tool", "content": "10:00"},
        {"role": "assistant", "content": "十点"}]})
    result = parse_row(row, "messages", source="x")
    assert isinstance(result, Reject) and result.reason == "orphan_observation"
    assert result.detail == "turn 2 (messages[2]) is a tool result that follows no call"


def test_prompt_response_with_history():
    fmt, results = read("prompt_response.jsonl")
    assert fmt == "prompt_response"
    assert turns(results[1][1]) == [("user", "类型#上衣*颜色#白色*风格#简约"), ("assistant", "这款白色上衣剪裁简约，百搭又清爽。"),
                                   ("user", "再短一点"), ("assistant", "白色简约上衣，百搭清爽。")]
    assert rejects(results) == {"prompt_response.jsonl:3": ("empty_reply", "'response' is empty")}


def test_context_target_read_back_as_rendered():
    fmt, results = read("context_target.jsonl")
    assert fmt == "context_target"
    conv = results[0][1]
    assert conv.rendered and conv.turns[0].text == "Instruction: 用“春风”造句。\nAnswer: "
    assert conv.source == "mine" and conv.category == "generation" and (conv.id, conv.own_id) == ("context_target:1", "mine:1")
    assert rejects(results) == {"context_target.jsonl:3": ("empty_reply", "'target' is empty")}


def test_qa_benchmark_class_with_nbsp_becomes_plain_category():
    fmt, results = read("qa_benchmark.json")
    assert fmt == "qa_benchmark"
    assert [r.category for _, r in results[:2]] == ["open qa", "closed qa"]
    assert rejects(results) == {"qa_benchmark.json:3": ("empty_reply", "'std_answer' is empty")}


def test_forced_format_overrides_detection_and_names_the_missing_field():
    fmt, results = read("belle_input_target.json", fmt="alpaca")
    assert fmt == "alpaca"
    assert {r.reason for _, r in results} == {"missing_field"}
    assert results[0][1].detail == "no 'instruction' field"


def test_mapping_renames_columns_before_detection(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"q": "一加一等于几？", "a": "二。", "kind": "math"}\n', encoding="utf-8")
    mapping = parse_mapping("instruction=q, output=a,category=kind")
    fmt, stream = read_conversations(str(path), source="mine", mapping=mapping)
    (row, conv), = list(stream)
    assert fmt == "alpaca" and conv.prompt.text == "一加一等于几？" and conv.reply == "二。" and conv.category == "math"


def test_a_mapped_column_can_feed_two_fields_and_two_fields_can_swap(tmp_path):
    """`--map instruction=q,output=a,input=a` printed input=a, but the input never reached the
    record: the first field took the column away."""
    path = tmp_path / "mine.jsonl"
    path.write_text('{"q": "把这句话翻译成英文", "a": "今天是星期五。"}\n', encoding="utf-8")
    fmt, stream = read_conversations(str(path), source="mine", mapping=parse_mapping("instruction=q,output=a,input=a"))
    (row, conv), = list(stream)
    assert conv.prompt.text == "把这句话翻译成英文" and conv.prompt.input == "今天是星期五。" and conv.reply == "今天是星期五。"
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text('{"instruction": "答", "output": "问"}\n', encoding="utf-8")
    fmt, stream = read_conversations(str(swapped), source="s", mapping=parse_mapping("instruction=output,output=instruction"))
    (row, conv), = list(stream)
    assert conv.prompt.text == "问" and conv.reply == "答"


def test_chinese_column_names_are_recognised_without_map(tmp_path):
    path = tmp_path / "问答.csv"
    path.write_text("问题,答案,类别\n光年是什么单位？,长度单位。,open qa\n", encoding="utf-8")
    info = {}
    fmt, stream = read_conversations(str(path), source="问答", info=info)
    (row, conv), = list(stream)
    assert fmt == "alpaca" and info["map"] == {"instruction": "问题", "output": "答案", "category": "类别"}
    assert conv.reply == "长度单位。" and conv.category == "open qa"
    fmt, stream = read_conversations(str(path), source="问答", fmt="alpaca")  # forced: aliases still apply
    assert [conv.reply for _, conv in stream] == ["长度单位。"]
    assert alias_mapping({"指令", "输入", "输出"}) == {"instruction": "指令", "input": "输入", "output": "输出"}


def test_unknown_keys_fail_with_file_line_and_the_keys_found(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('\n{"foo": 1, "bar": 2}\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_conversations(str(path), source="odd")
    assert str(err.value).startswith(f"{path}:2: unknown format") and "foo" in str(err.value)
    assert "--format or --map" in str(err.value)


def test_format_names_and_bad_mapping():
    assert format_name("Prompt-Response") == "prompt_response"
    with pytest.raises(ValueError, match="unknown format 'vicuna'"):
        format_name("vicuna")
    with pytest.raises(ValueError, match="field=column"):
        parse_mapping("instruction")


def test_a_transcript_after_the_detected_rows_is_still_a_dialogue(tmp_path):
    path = tmp_path / "late.jsonl"
    plain = '{"instruction": "普通问题", "input": "", "output": "普通回答"}\n'
    path.write_text(plain * 60 + '{"instruction": "Human:早\\nAssistant:早上好\\nHuman:吃了吗\\nAssistant:", '
                                  '"input": "", "output": "吃了"}\n', encoding="utf-8")
    fmt, stream = read_conversations(str(path), source="late")
    last = list(stream)[-1][1]
    assert fmt == "alpaca" and last.n_rounds == 2 and last.reply == "吃了"


def test_belle_file_with_some_transcripts_is_belle(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text('{"instruction": "普通问题", "input": "", "output": "普通回答"}\n'
                    '{"instruction": "Human:你好\\nAssistant:", "input": "", "output": "你好！"}\n', encoding="utf-8")
    head = list(read_rows(path))
    assert resolve_format(head, str(path)) == ("belle", {})


def test_record_validation_errors_name_the_field():
    from pydantic import ValidationError

    from instruct_data.schema import Conversation, TrainingRecord, Turn, describe_validation_error

    def problem(build):
        try:
            build()
        except ValidationError as exc:
            return describe_validation_error(exc)
        raise AssertionError("no validation error")

    user, reply = Turn(role="user", text="问"), Turn(role="assistant", text="答")
    assert problem(lambda: Conversation(id="x", source="s", turns=[user, user, reply])) == (
        "turns: turn 2 is user, expected assistant (turns must alternate user/assistant)")
    assert problem(lambda: Conversation(id="x", source="s", turns=[user, reply, user])) == (
        "turns: the last turn must be an assistant reply")
    assert problem(lambda: Conversation(id="x", source="s", turns=[user])).startswith("turns: List should have at least 2")
    assert problem(lambda: Turn(role="assistant", text=" ")) == (
        "record: text is empty (an assistant turn needs text or tool calls)")
    assert problem(lambda: Turn(role="user", text=" ")) == "text: text is empty"
    assert problem(lambda: Turn(role="assistant", text="答", input="补充")) == "record: only a user turn can have an input"
    assert problem(lambda: TrainingRecord(context="", target="答")) == "context: context is empty"
    assert problem(lambda: TrainingRecord(context="问", target="答", extra=1)) == "extra: Extra inputs are not permitted"
    assert Conversation(id="x", source="s", system="  ", turns=[user, reply]).system is None


def test_dialogues_and_history_stored_as_json_text_in_a_spreadsheet(tmp_path):
    import pandas as pd

    messages = '[{"role": "user", "content": "早"}, {"role": "assistant", "content": "早上好"}]'
    pd.DataFrame([{"messages": messages}, {"messages": "[{broken"}]).to_csv(tmp_path / "m.csv", index=False)
    fmt, stream = read_conversations(str(tmp_path / "m.csv"), source="m")
    (_, good), (_, bad) = list(stream)
    assert fmt == "messages" and good.reply == "早上好"
    assert bad.reason == "wrong_type" and bad.detail.startswith("'messages' holds invalid JSON")
    pd.DataFrame([{"prompt": "再来一个", "response": "好的", "history": '[["讲个笑话", "从前有座山"]]'}]).to_csv(
        tmp_path / "p.csv", index=False)
    fmt, stream = read_conversations(str(tmp_path / "p.csv"), source="p")
    (_, conv), = list(stream)
    assert conv.history == [("讲个笑话", "从前有座山")]


def test_a_messages_rows_own_system_text_is_read():
    """`{"system": ..., "messages": [...]}` (the sharegpt layout's system beside OpenAI messages)
    lost its system text: it was named an unused column. Two different system texts are a reject."""
    from instruct_data.formats import parse_row, unused_columns
    from instruct_data.io import Row
    from instruct_data.schema import Origin
    from instruct_data.table import Reject

    def row(data: dict) -> Row:
        return Row(Origin(file="m.jsonl", line=1), data)

    messages = [{"role": "user", "content": "解释成语画蛇添足"}, {"role": "assistant", "content": "比喻做了多余的事。"}]
    read = parse_row(row({"system": "你是一位中文老师", "messages": messages}), "messages", source="m")
    assert read.system == "你是一位中文老师"
    assert unused_columns([row({"system": "你是一位中文老师", "messages": messages})], "messages") == []
    same = parse_row(row({"system": "老师", "messages": [{"role": "system", "content": "老师"}, *messages]}),
                     "messages", source="m")
    assert same.system == "老师"
    both = parse_row(row({"system": "甲", "messages": [{"role": "system", "content": "乙"}, *messages]}),
                     "messages", source="m")
    assert isinstance(both, Reject) and both.reason == "bad_roles" and "two system texts" in both.detail
    # sharegpt rows carried a row-level system already; two different texts were one silently dropped
    turns = [{"from": "system", "value": "乙"}, {"from": "human", "value": "解释成语画蛇添足"},
             {"from": "gpt", "value": "比喻做了多余的事。"}]
    shared = parse_row(row({"system": "甲", "conversations": turns}), "sharegpt", source="m")
    assert isinstance(shared, Reject) and "two system texts" in shared.detail
