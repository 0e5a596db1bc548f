"""Tool calls and reasoning traces: the record, the readers, the checks (docs/tools.md)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from instruct_data.schema import Conversation, ToolCall, Turn

WEATHER = {"name": "get_weather", "description": "查询天气",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def tool_dialogue(**extra) -> Conversation:
    return Conversation(id="t:1", source="t", tools=[WEATHER], turns=[
        Turn(role="user", text="北京天气怎么样？"),
        Turn(role="assistant", text="", tool_calls=[ToolCall(name="get_weather", arguments={"city": "北京"})]),
        Turn(role="tool", text='{"temp": 20}', name="get_weather"),
        Turn(role="assistant", text="北京今天20度。", reasoning="工具说20度。"),
        Turn(role="user", text="谢谢"),
        Turn(role="assistant", text="不客气"),
    ], **extra)


def test_a_tool_dialogue_is_one_record_with_its_rounds():
    conv = tool_dialogue()
    assert conv.has_tools and conv.n_rounds == 2
    assert conv.prompt.text == "谢谢" and conv.reply == "不客气"
    assert conv.history == [("北京天气怎么样？", "北京今天20度。")]
    assert [len(r) for r in conv.rounds] == [4, 2]
    again = Conversation.model_validate_json(conv.model_dump_json(exclude_none=True))
    assert again == conv


def test_a_plain_dialogue_serializes_as_before():
    conv = Conversation(id="p:1", source="p", turns=[Turn(role="user", text="问"), Turn(role="assistant", text="答")])
    assert conv.model_dump_json(exclude_none=True) == (
        '{"id":"p:1","source":"p","turns":[{"role":"user","text":"问"},{"role":"assistant","text":"答"}],'
        '"origin":{},"rendered":false}')
    assert not conv.has_tools


@pytest.mark.parametrize("turns, problem", [
    ([("user", "问"), ("tool", "结果"), ("assistant", "答")], "turn 2 is tool, expected assistant"),
    ([("user", "问"), ("assistant", "答"), ("tool", "结果"), ("assistant", "答")], "turn 3 is tool, expected user"),
    ([("user", "问"), ("assistant", "答"), ("assistant", "答")], "turn 3 is assistant, expected user"),
])
def test_role_order_is_checked(turns, problem):
    with pytest.raises(ValidationError, match=problem):
        Conversation(id="x", source="s", turns=[Turn(role=r, text=t) for r, t in turns])


def test_fields_fit_their_role():
    with pytest.raises(ValidationError, match="only an assistant turn can have tool calls"):
        Turn(role="user", text="问", tool_calls=[ToolCall(name="f", arguments={})])
    with pytest.raises(ValidationError, match="only a tool turn"):
        Turn(role="assistant", text="答", tool_call_id="c1")
    with pytest.raises(ValidationError, match="text is empty"):
        Turn(role="tool", text=" ")
    with pytest.raises(ValidationError, match="tool 1 has no name"):
        Conversation(id="x", source="s", tools=[{"description": "x"}],
                     turns=[Turn(role="user", text="问"), Turn(role="assistant", text="答")])
    assert Turn(role="assistant", text="", tool_calls=[ToolCall(name="f", arguments={"a": 1})]).text == ""


# ------------------------------------------------------------------ readers
from pathlib import Path  # noqa: E402

from instruct_data.table import Reject  # noqa: E402
from instruct_data.rowpath import read_conversations  # noqa: E402

TOOLS = Path(__file__).parent / "fixtures" / "tools"


def read(name: str):
    fmt, stream = read_conversations(str(TOOLS / name), source=name.split(".")[0])
    results = [result for _, result in stream]
    return fmt, [r for r in results if not isinstance(r, Reject)], {
        n: (r.reason, r.detail) for n, r in enumerate(results, start=1) if isinstance(r, Reject)}


def shape(conv) -> list[tuple]:
    """(role, text, calls as (name, arguments), reasoning) per turn."""
    return [(t.role, t.text, [(c.name, c.arguments) for c in t.tool_calls or []], t.reasoning) for t in conv.turns]


def test_sharegpt_glaive_dialogues_keep_their_tools_calls_and_results():
    fmt, good, bad = read("glaive.json")
    assert fmt == "sharegpt"
    first, both, refers, plain = good
    assert [t["name"] for t in first.tools] == ["get_weather", "convert_currency"]
    assert shape(first) == [
        ("user", "北京今天天气怎么样？", [], None),
        ("assistant", "", [("get_weather", {"city": "北京"})], None),
        ("tool", '{"weather": "晴", "temp": 25}', [], None),
        ("assistant", "北京今天晴，25度。", [], None),
        ("user", "谢谢！", [], None), ("assistant", "不客气！", [], None)]
    assert first.turns[2].name == "get_weather"  # the result names its call's tool
    assert first.n_rounds == 2 and first.prompt.text == "谢谢！"
    # A `gpt` text right before its `function_call` is one turn holding both, not a lost turn.
    assert shape(both)[1] == ("assistant", "我来帮你换算一下。",
                              [("convert_currency", {"amount": 100, "from": "USD", "to": "CNY"})], None)
    assert refers.tools is not None and refers.reply.startswith("很抱歉")
    assert plain.tools is None and not plain.has_tools  # tools "[]": a plain dialogue
    assert bad == {
        4: ("orphan_observation", "turn 3 (conversations[3]) is a tool result that follows no call"),
        5: ("call_without_result", "turn 3 (conversations[3]) is a user turn, but the call before it has no result"),
        6: ("unknown_tool", "turn 2 (conversations[2]) calls 'tell_joke', which the dialogue does not declare "
                            "(declared: convert_currency, get_weather)"),
        7: ("bad_arguments", "conversations[2]: the arguments of 'get_weather' are not valid JSON "
                             "(Expecting property name enclosed in double quotes)"),
        8: ("bad_arguments", "turn 2 (conversations[2]) calls 'convert_currency' without its required parameter(s) to"),
    }


def test_openai_messages_with_tool_calls_ids_and_reasoning_content():
    fmt, good, bad = read("openai.jsonl")
    assert fmt == "messages"
    parallel, ends_on_call = good
    assert parallel.system == "你是助手。" and parallel.tools[0]["type"] == "function"
    call_turn = parallel.turns[1]
    assert (call_turn.text, call_turn.reasoning) == ("我分别查一下。", "需要查两个城市。")
    assert [(c.name, c.arguments, c.id) for c in call_turn.tool_calls] == [
        ("get_weather", {"city": "北京"}, "c1"), ("get_weather", {"city": "上海"}, "c2")]
    assert [(t.role, t.text, t.tool_call_id, t.name) for t in parallel.turns[2:4]] == [
        ("tool", "晴", "c1", "get_weather"), ("tool", "雨", "c2", "get_weather")]
    # A dialogue may end on a call: its answer is the call (the shape of a held-out tool item).
    assert ends_on_call.reply == "" and ends_on_call.turns[-1].tool_calls[0].arguments == {"city": "杭州"}
    assert bad == {
        2: ("call_without_result", "turn 4 (messages[4]) replies, but the call before it has no result"),
        3: ("orphan_observation", "turn 3 (messages[3]) answers call id 'c9', which no call before it made"),
    }


def test_hermes_tool_call_blocks_and_think_in_the_text():
    fmt, (hermes,), bad = read("hermes_sharegpt.jsonl")
    assert fmt == "sharegpt" and not bad
    assert shape(hermes)[1:] == [
        ("assistant", "好的，我查一下。", [("get_weather", {"city": "成都"})], "用户问成都天气，调用get_weather。"),
        ("tool", '{"weather": "多云"}', [], None),
        ("assistant", "成都今天多云。", [], None)]
    assert "<tools>" in hermes.system  # the tool list stays where the data put it (read for the checks)


def test_qwen_tool_responses_in_a_user_message_and_a_reasoning_only_reply():
    fmt, (qwen, thinking), bad = read("qwen_messages.jsonl")
    assert fmt == "messages"
    assert shape(qwen)[1:] == [
        ("assistant", "", [("get_weather", {"city": "北京"}), ("get_weather", {"city": "上海"})], None),
        ("tool", "晴", [], None), ("tool", "雨", [], None), ("assistant", "北京晴，上海下雨。", [], None)]
    assert shape(thinking) == [("user", "1+1等于几？", [], None), ("assistant", "等于2。", [], "1加1得2。")]
    assert thinking.has_tools and thinking.tools is None
    assert bad == {3: ("bad_arguments", "messages[3]: the call is not valid JSON (Expecting value)")}


def test_a_call_to_a_tool_when_none_is_declared_is_unknown():
    from instruct_data.formats import parse_row
    from instruct_data.io import Row
    from instruct_data.schema import Origin

    row = Row(Origin(file="x.jsonl", line=1), {"conversations": [
        {"from": "human", "value": "查天气"}, {"from": "function_call", "value": '{"name": "w", "arguments": {}}'},
        {"from": "observation", "value": "晴"}, {"from": "gpt", "value": "晴"}]})
    result = parse_row(row, "sharegpt", source="x")
    assert isinstance(result, Reject) and result.reason == "unknown_tool" and "declared: none" in result.detail


def test_a_function_call_value_after_a_think_block_is_the_turns_text_and_its_calls():
    """idata's LLaMA-Factory export writes a reply's text beside its call as a leading
    `<think>` block of the `function_call` value (docs/export.md, LLaMA-Factory's FunctionFormatter
    keeps it in front of the call); it reads back as that turn: the text, then one call or a list.
    It was a bad_arguments reject (the call is not valid JSON)."""
    from instruct_data.formats import parse_row
    from instruct_data.io import Row
    from instruct_data.schema import Origin

    weather = json.dumps([{"name": "w", "description": "天气", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}}], ensure_ascii=False)

    def read_call(value: str):
        return parse_row(Row(Origin(file="x.jsonl", line=1), {"conversations": [
            {"from": "human", "value": "查一下北京和上海的天气"}, {"from": "function_call", "value": value},
            {"from": "observation", "value": "晴"}, {"from": "gpt", "value": "都是晴天。"}], "tools": weather}),
            "sharegpt", source="x")

    one = read_call('<think>\n好的，我来帮您查询。\n</think>\n\n{"name": "w", "arguments": {"city": "北京"}}')
    assert shape(one)[1] == ("assistant", "好的，我来帮您查询。", [("w", {"city": "北京"})], None)
    both = read_call('<think>\n分别查一下。\n</think>\n\n[{"name": "w", "arguments": {"city": "北京"}}, '
                     '{"name": "w", "arguments": {"city": "上海"}}]')
    assert shape(both)[1] == ("assistant", "分别查一下。", [("w", {"city": "北京"}), ("w", {"city": "上海"})], None)
    empty = read_call('<think>\n\n</think>\n\n{"name": "w", "arguments": {"city": "北京"}}')
    assert shape(empty)[1] == ("assistant", "", [("w", {"city": "北京"})], None)
    for broken in ('<think>\n好的\n</think>\n\n', '<think>\n好的\n\n{"name": "w", "arguments": {"city": "北京"}}'):
        result = read_call(broken)
        assert isinstance(result, Reject) and result.reason == "bad_arguments", broken


# ------------------------------------------------------------------ cleaning and dedupe keys
from instruct_data.clean import Cleaner  # noqa: E402
from instruct_data.dedupe.keys import record_prompt, record_texts  # noqa: E402

MESSY = "结果：\u200b  多云   \n\n\n\n\n  结束"


def call_dialogue(reply: str, *more: Turn, tools=(WEATHER,)) -> Conversation:
    return Conversation(id="c:1", source="c", tools=list(tools) or None, turns=[
        Turn(role="user", text="北京天气怎么样？"),
        Turn(role="assistant", text="", tool_calls=[ToolCall(name="get_weather", arguments={"city": MESSY})]),
        Turn(role="tool", text=MESSY, name="get_weather"),
        Turn(role="assistant", text=reply), *more])


def test_cleaning_reads_prose_only_and_never_changes_calls_or_results():
    conv = call_dialogue(MESSY)
    verdict, changed = Cleaner().clean(conv)
    assert verdict is None and "tidy_whitespace" in changed
    assert conv.turns[3].text == "结果： 多云\n\n  结束"  # the reply is prose: tidied
    assert conv.turns[2].text == MESSY and conv.turns[1].tool_calls[0].arguments == {"city": MESSY}
    # A turn that only calls a tool has no text, and is not an empty reply.
    assert Cleaner().clean(call_dialogue("北京今天多云。"))[0] is None


def test_a_reply_that_refers_to_its_tools_is_not_ai_boilerplate():
    refusal = "很抱歉，作为一个AI，我无法预订机票。我的功能仅限于查询天气。"
    with_tools = Conversation(id="r:1", source="r", tools=[WEATHER], turns=[
        Turn(role="user", text="帮我订机票"), Turn(role="assistant", text=refusal)])
    assert Cleaner({"ai_identity": True}).clean(with_tools)[0] is None and with_tools.tools == [WEATHER]
    without = Conversation(id="r:2", source="r", turns=[Turn(role="user", text="帮我订机票"),
                                                        Turn(role="assistant", text=refusal)])
    assert Cleaner({"ai_identity": True}).clean(without)[0].reason == "ai_identity"  # (off by default)


def test_a_bad_round_is_cut_whole_with_its_calls():
    conv = call_dialogue("北京今天多云。", Turn(role="user", text="再见"), Turn(role="assistant", text="再见"))
    verdict, changed = Cleaner().clean(conv)
    assert verdict is None and changed.count("turns_cut.echo") == 1
    assert [t.role for t in conv.turns] == ["user", "assistant", "tool", "assistant"] and conv.tools == [WEATHER]


def test_dedupe_keys_include_the_calls_and_questions_are_the_users_words():
    conv = call_dialogue("北京今天多云。")
    (prompt, reply), = record_texts(conv)
    assert prompt == "北京天气怎么样？" and reply == "北京今天多云。"
    first, last = record_texts(conv, every_turn=True)
    assert first == ("北京天气怎么样？", '[{"arguments": {"city": "%s"}, "name": "get_weather"}]'
                     % MESSY.replace("\n", "\\n"))
    other = call_dialogue("北京今天多云。")
    other.turns[1].tool_calls[0].arguments = {"city": "上海"}
    assert record_texts(other, every_turn=True)[0][1] != first[1]  # another call: another key
    assert record_prompt(conv) == "北京天气怎么样？"  # contamination reads the user's words, not tool JSON


# ------------------------------------------------------------------ to-multiturn
from instruct_data.multiturn import MultiturnSettings, expand  # noqa: E402


def test_every_assistant_turn_is_a_record_and_history_is_cut_by_whole_rounds():
    conv = call_dialogue("北京今天多云。", Turn(role="user", text="明天呢？"), Turn(role="assistant", text="明天晴。"))
    call, answer, later = expand(conv, "chatml", MultiturnSettings())
    assert [r["id"] for r in (call, answer, later)] == ["c:1#t1", "c:1#t2", "c:1#t3"]
    assert '"name": "get_weather"' in call["target"] and "get_weather" in call["context"]  # the call, the tool list
    assert MESSY in answer["context"] and answer["target"] == "北京今天多云。"  # its call's result before it
    assert "北京天气怎么样？" in later["context"] and MESSY in later["context"]
    # No earlier round kept: round 1 goes whole, its call and its result with it.
    cut = expand(conv, "chatml", MultiturnSettings(max_history_turns=0))[2]
    assert "北京天气怎么样？" not in cut["context"] and MESSY not in cut["context"] and "明天呢？" in cut["context"]
    # The current round is never cut: too long alone, the dialogue is rejected.
    whole = len(answer["context"]) + len(answer["target"])
    assert expand(conv, "chatml", MultiturnSettings(max_context_chars=whole - 1)).reason == "over_budget"
    (last,) = expand(conv, "chatml", MultiturnSettings(mode="last-turn"))
    assert last["id"] == "c:1" and last["target"] == "明天晴。"


def test_reasoning_traces_kept_dropped_from_history_or_dropped():
    conv = Conversation(id="r:1", source="r", turns=[
        Turn(role="user", text="1+1？"), Turn(role="assistant", text="2", reasoning="一加一"),
        Turn(role="user", text="再加1？"), Turn(role="assistant", text="3", reasoning="二加一")])
    def second(reasoning):
        return expand(conv, "chatml", MultiturnSettings(reasoning=reasoning))[1]
    keep, history, drop = second("keep"), second("drop-history"), second("drop")
    assert "一加一" in keep["context"] and "二加一" in keep["target"]
    assert "一加一" not in history["context"] and "二加一" in history["target"]  # as Qwen3 renders at inference
    assert "一加一" not in drop["context"] and "二加一" not in drop["target"] and drop["target"].endswith("3")


# ------------------------------------------------------------------ a build
def test_a_build_of_glaive_dialogues_writes_their_tools_calls_and_a_record_per_reply(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(TOOLS / "glaive.json"), "--out", str(out), "--heldout", "0",
                                      "--max-reject-rate", "0.9", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["counts"]["totals"] == {"read": 9, "written": 4, "rejected": 5, "removed": 0}
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text("utf-8").splitlines()]
    assert sorted(r["reason"] for r in rejects) == ["bad_arguments", "bad_arguments", "call_without_result",
                                                   "orphan_observation", "unknown_tool"]
    convs = [Conversation.model_validate_json(line) for line in (out / "conversations.jsonl").read_text("utf-8").splitlines()]
    first, both, refers, plain = sorted(convs, key=lambda c: c.origin.row)
    assert first.tools and first.turns[1].tool_calls[0].arguments == {"city": "北京"} and first.turns[2].role == "tool"
    assert both.turns[1].text == "我来帮你换算一下。" and both.turns[1].tool_calls[0].name == "convert_currency"
    assert refers.tools and plain.tools is None
    train = [json.loads(line) for line in (out / "train.jsonl").read_text("utf-8").splitlines()]
    # One record per assistant turn: 3 + 2 + 1 + 1; a call's record trains the call.
    assert len(train) == 7
    call = next(r for r in train if r["id"] == first.id + "#t1")
    assert '"arguments": {"city": "北京"}' in call["target"] and "get_weather" in call["context"]
    assert call["context"].endswith("Instruction: 北京今天天气怎么样？\nAnswer: ")  # the seed template


def test_personal_data_is_masked_in_calls_and_results_too():
    phone = "13812345678"
    conv = Conversation(id="p:1", source="p", tools=[{"name": "send_sms", "parameters": {"required": ["phone"]}}], turns=[
        Turn(role="user", text=f"给{phone}发短信说我到了"),
        Turn(role="assistant", text="", tool_calls=[ToolCall(name="send_sms", arguments={"phone": phone, "text": "我到了"})]),
        Turn(role="tool", text=f'{{"sent_to": "{phone}"}}', name="send_sms"),
        Turn(role="assistant", text="短信已发送。")])
    cleaner = Cleaner()
    verdict, changed = cleaner.clean(conv)
    assert verdict is None and changed.count("pii.phone") == 3
    assert conv.turns[1].tool_calls[0].arguments == {"phone": "[PHONE]", "text": "我到了"}
    assert json.loads(conv.turns[2].text) == {"sent_to": "[PHONE]"}  # still JSON
    assert cleaner.counts()["changed"]["pii"] == 1  # one row changed
    strict = Cleaner({"pii": {"mode": "reject"}})
    conv.turns[1].tool_calls[0].arguments["phone"] = phone
    assert strict.clean(conv)[0].detail == "a call's arguments hold a phone"


def test_a_held_out_dialogue_that_calls_tools_gives_every_reply_to_the_benchmark(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(TOOLS / "glaive.json"), "--out", str(out), "--heldout", "3",
                                      "--max-reject-rate", "0.9", "--template", "chatml"])
    assert result.exit_code == 0, result.output
    held = [json.loads(line) for line in (out / "heldout.jsonl").read_text("utf-8").splitlines()]
    train = [json.loads(line) for line in (out / "train.jsonl").read_text("utf-8").splitlines()]
    dialogues = {r["id"].split("#")[0] for r in held}
    assert len(dialogues) == 3 and not dialogues & {r["id"].split("#")[0] for r in train}
    # A dialogue with calls gives each of its replies (the calls, the answers); any other its last.
    replies = {"glaive:1": 3, "glaive:2": 2, "glaive:3": 1, "glaive:9": 1}
    for dialogue in dialogues:
        assert sum(r["id"].split("#")[0] == dialogue for r in held) == replies[dialogue], dialogue
    call_items = [r for r in held if r["target"].startswith("<tool_call>")]
    assert call_items and all(json.loads(r["target"].split("\n")[1])["name"] for r in call_items)


# ------------------------------------------------------------------ any sequence of messages
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from instruct_data.formats import parse_row  # noqa: E402
from instruct_data.io import Row  # noqa: E402
from instruct_data.schema import Origin, role_order_problem  # noqa: E402

_VALUES = st.sampled_from(["", "  ", "你好", '{"name": "get_weather", "arguments": {"city": "北京"}}',
                           '{"name": "get_weather", "arguments": {}}', '{"name": "nope", "arguments": {}}',
                           '[{"name": "get_weather", "arguments": {"city": "上海"}}]', "{broken", "<think>想</think>答",
                           '<tool_call>\n{"name": "get_weather", "arguments": {"city": "北京"}}\n</tool_call>',
                           "<tool_response>\n晴\n</tool_response>"])
_MESSAGES = st.lists(st.fixed_dictionaries({
    "from": st.sampled_from(["human", "gpt", "function_call", "observation", "tool", "system", "ipython"]),
    "value": _VALUES}), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(_MESSAGES, st.sampled_from([None, "[]", json.dumps([WEATHER], ensure_ascii=False), "{broken"]))
def test_any_message_sequence_is_a_checked_dialogue_or_a_named_reject(messages, tools):
    row = {"conversations": messages} if tools is None else {"conversations": messages, "tools": tools}
    result = parse_row(Row(Origin(file="f.json", row=1), row), "sharegpt", source="f")
    if isinstance(result, Reject):
        assert result.reason and result.detail
        return
    assert role_order_problem(result.turns) is None
    declared = {tool["name"] for tool in result.tools or []}
    assert all(call.name in declared for turn in result.turns for call in turn.tool_calls or [])
    assert Conversation.model_validate_json(result.model_dump_json(exclude_none=True)) == result


def test_a_build_failing_on_tool_checks_does_not_blame_the_format(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    result = CliRunner().invoke(cli, ["build", str(TOOLS / "glaive.json"), "--out", str(tmp_path / "out")])
    message = result.output + str(result.exception or "")
    assert result.exit_code != 0 and not (tmp_path / "out").exists()
    assert "5 of 9 rows of glaive rejected" in message
    assert "their tool calls fail the checks (docs/tools.md)" in message and "--format" not in message
