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
