"""Dialogues with tool calls and reasoning traces: reading them into the record, and the checks.

The message readers (formats/sharegpt.py, formats/messages.py) turn each message into a
small dict (`message_turn`); a dialogue with no tool roles, calls, traces or tools then goes
the plain way (base.build), and any other goes through `build_tool_dialogue` here, which
checks it and names what is wrong:

- `orphan_observation`: a tool result that follows no call (or names a call id no turn made);
- `call_without_result`: a call with no result before the next user turn (every format read
  here promises one; a dialogue may still end on a call: its answer is that call);
- `unknown_tool`: a call to a tool the dialogue does not declare;
- `bad_arguments`: arguments that are not a JSON object, or lack a declared required parameter.

What each layout looks like (docs/tools.md):

- ShareGPT (LLaMA-Factory, glaive): `function_call` and `observation` messages whose value
  is JSON (a call's after an optional leading `<think>` block: the turn's text), `tools` a JSON
  string; a `gpt` message right before a `function_call` is the text of the same turn (kept,
  not lost);
- OpenAI: `tool_calls` ([{id, function: {name, arguments: "<JSON>"}}]), the legacy
  `function_call`, `tool`/`function` messages with `tool_call_id`/`name`, `tools`/`functions`;
- Hermes and Qwen: `<tool_call>{"name", "arguments"}</tool_call>` blocks inside the text,
  results in `<tool_response>` blocks (in a `tool` message, or a user message holding only
  them), tools in the system text's `<tools>` block (read for the checks; the text is kept);
- reasoning: a leading `<think>…</think>` in an assistant's text, or `reasoning_content`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from instruct_data.formats.base import (BAD_ROLES, EMPTY_INSTRUCTION, EMPTY_REPLY, INVALID, WRONG_TYPE, RowReject)
from instruct_data.schema import Conversation, Origin, describe_validation_error, tool_function, tool_name

UNKNOWN_TOOL = "unknown_tool"
BAD_ARGUMENTS = "bad_arguments"
ORPHAN_OBSERVATION = "orphan_observation"
CALL_WITHOUT_RESULT = "call_without_result"
EMPTY_TOOL_RESULT = "empty_tool_result"
TOOL_REJECTS = (ORPHAN_OBSERVATION, CALL_WITHOUT_RESULT, UNKNOWN_TOOL, BAD_ARGUMENTS, EMPTY_TOOL_RESULT)

# Source role names (lower case) -> what the message is.
CALL_ROLES = {"function_call", "tool_call"}
RESULT_ROLES = {"observation", "tool", "function", "ipython", "tool_response"}

TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
TOOL_RESPONSE_BLOCK = re.compile(r"<tool_response>\s*(.*?)\s*</tool_response>", re.DOTALL)
LEADING_THINK = re.compile(r"\A\s*<think>(.*?)</think>\s*", re.DOTALL)
TOOLS_BLOCK = re.compile(r"<tools>\s*(.*?)\s*</tools>", re.DOTALL)


# ------------------------------------------------------------------ the declared tools
def parse_tools(value: Any, where: str = "tools") -> list[dict] | None:
    """A row's `tools`: a list of schemas, or the same as a JSON string (glaive). None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowReject(WRONG_TYPE, f"'{where}' holds invalid JSON: {exc.msg}") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise RowReject(WRONG_TYPE, f"'{where}' should be a list of tool schemas")
    for index, tool in enumerate(value, start=1):
        if not isinstance(tool, dict) or tool_name(tool) is None:
            raise RowReject(WRONG_TYPE, f"'{where}' item {index} is not a tool schema with a name")
    return value or None


def tools_in_system(system: str | None) -> list[dict] | None:
    """The tools a Hermes/Qwen system text lists in `<tools>…</tools>` (a JSON list, or one
    JSON object per line), or None when it has none that parse."""
    if not system or "<tools>" not in system:
        return None
    found = TOOLS_BLOCK.search(system)
    if not found:
        return None
    body = found.group(1)
    try:
        return parse_tools(body, "<tools>")
    except RowReject:
        pass
    try:
        return parse_tools([json.loads(line) for line in body.splitlines() if line.strip()], "<tools>")
    except (json.JSONDecodeError, RowReject):
        return None


# ------------------------------------------------------------------ one call
def parse_call(raw: Any, where: str) -> dict:
    """{"name", "arguments", "id"} from a call in any layout: {"name", "arguments"} (arguments an
    object or a JSON string; `parameters` as Hermes sometimes writes), or OpenAI's
    {"id", "type": "function", "function": {...}}."""
    if not isinstance(raw, dict):
        raise RowReject(BAD_ARGUMENTS, f"{where}: a call should be a JSON object with a name")
    call_id = raw.get("id")
    inner = raw.get("function") if isinstance(raw.get("function"), dict) else raw
    name = inner.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowReject(BAD_ARGUMENTS, f"{where}: a call has no tool name")
    arguments = inner.get("arguments", inner.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise RowReject(BAD_ARGUMENTS, f"{where}: the arguments of '{name}' are not valid JSON ({exc.msg})") from None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise RowReject(BAD_ARGUMENTS, f"{where}: the arguments of '{name}' should be a JSON object")
    return {"name": name, "arguments": arguments, "id": str(call_id) if call_id not in (None, "") else None}


def calls_in_text(text: str, where: str) -> list[dict]:
    """The calls a ShareGPT `function_call` value holds: one JSON call, or a list of them."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowReject(BAD_ARGUMENTS, f"{where}: the call is not valid JSON ({exc.msg})") from None
    items = value if isinstance(value, list) else [value]
    if not items:
        raise RowReject(BAD_ARGUMENTS, f"{where}: an empty list of calls")
    return [parse_call(item, where) for item in items]


def split_call_value(text: str, where: str) -> tuple[str, list[dict]]:
    """(the text, the calls) of a ShareGPT `function_call` value: the calls' JSON (one call or a
    list), after an optional leading `<think>…</think>` block, which is the turn's text. That is
    where idata's LLaMA-Factory export writes a reply's text beside its call (LLaMA-Factory has no
    other slot for it; its FunctionFormatter keeps the block in front of the call), so the export
    reads back as the turn it was made from. A trace exported beside text shares the block and
    comes back as part of the text: the export does not keep them apart."""
    text, found = split_think(text)
    return text or "", calls_in_text(found, where)


def split_hermes_calls(text: str, where: str) -> tuple[str, list[dict]]:
    """(the text around them, the calls) of `<tool_call>{…}</tool_call>` blocks in a text."""
    if "<tool_call>" not in text:
        return text, []
    calls = []
    for block in TOOL_CALL_BLOCK.findall(text):
        calls += calls_in_text(block, where)
    rest = TOOL_CALL_BLOCK.sub("", text).strip()
    if "<tool_call>" in rest:
        raise RowReject(BAD_ARGUMENTS, f"{where}: a <tool_call> block is not closed")
    return rest, calls


def split_think(text: str) -> tuple[str | None, str]:
    """(the reasoning, the reply) of a text that starts with `<think>…</think>`."""
    found = LEADING_THINK.match(text) if "<think>" in text else None
    if not found:
        return None, text
    reasoning = found.group(1).strip()
    return (reasoning or None), text[found.end():]


def tool_responses(text: str) -> list[str] | None:
    """The results of a text made only of `<tool_response>` blocks, else None."""
    if "<tool_response>" not in text or TOOL_RESPONSE_BLOCK.sub("", text).strip():
        return None
    return TOOL_RESPONSE_BLOCK.findall(text)


# ------------------------------------------------------------------ one message
def assistant_parts(message: dict, text: str, where: str) -> dict:
    """The assistant turn of one message: its reply, reasoning and calls, all kept."""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    think, text = split_think(text)
    reasoning = reasoning if isinstance(reasoning, str) and reasoning.strip() else think
    text, calls = split_hermes_calls(text, where)
    raw_calls = message.get("tool_calls")
    if isinstance(raw_calls, str) and raw_calls.strip():
        raw_calls = calls_in_text(raw_calls, where)
    if raw_calls:
        if not isinstance(raw_calls, list):
            raise RowReject(WRONG_TYPE, f"{where}.tool_calls should be a list")
        calls += [parse_call(call, where) for call in raw_calls]
    if isinstance(message.get("function_call"), dict):  # OpenAI's legacy single call
        calls.append(parse_call(message["function_call"], where))
    turn = {"role": "assistant", "text": text, "where": where}
    if calls:
        turn["tool_calls"] = calls
    if reasoning:
        turn["reasoning"] = reasoning
    return turn


def result_turns(message: dict, text: str, where: str) -> list[dict]:
    """The tool turns of one result message (one per `<tool_response>` block, or one)."""
    texts = tool_responses(text) or [text]
    call_id, name = message.get("tool_call_id"), message.get("name")
    turns = []
    for body in texts:
        turn = {"role": "tool", "text": body, "where": where}
        if call_id not in (None, ""):
            turn["tool_call_id"] = str(call_id)
        if isinstance(name, str) and name.strip():
            turn["name"] = name
        turns.append(turn)
    return turns


def is_tool_message(raw_role: str, message: dict) -> bool:
    """Whether a message needs the tool reader: a call, a result, or a reasoning trace."""
    return (raw_role in CALL_ROLES or raw_role in RESULT_ROLES or bool(message.get("tool_calls"))
            or isinstance(message.get("function_call"), dict) or bool(message.get("reasoning_content")))


# ------------------------------------------------------------------ the dialogue
def merge_turns(turns: list[dict]) -> list[dict]:
    """Messages to turns: a reply followed by its own call message (ShareGPT's `gpt` then
    `function_call`), or several call messages in a row, are one assistant turn; a user
    message holding only `<tool_response>` blocks right after a call is that call's results."""
    merged: list[dict] = []
    for turn in turns:
        last = merged[-1] if merged else None
        if (last and turn["role"] == "assistant" and last["role"] == "assistant" and turn.get("tool_calls")
                and not turn["text"].strip() and "reasoning" not in turn):
            last["tool_calls"] = last.get("tool_calls", []) + turn["tool_calls"]
            if turn.get("weight") == 0:  # one reply: not trained if any of its messages is not
                last["weight"] = 0
            continue
        if (last and turn["role"] == "user" and (last["role"] == "tool" or last.get("tool_calls"))
                and (bodies := tool_responses(turn["text"])) is not None):
            merged += [{"role": "tool", "text": body, "where": turn["where"]} for body in bodies]
            continue
        merged.append(turn)
    return merged


def check_order(turns: list[dict]) -> None:
    """Legal role order, with the tool rejects named: orphan results, unanswered calls."""
    if not turns:
        raise RowReject(BAD_ROLES, "no user or assistant turns")
    open_ids: set[str] = set()  # ids of calls still waiting for a result
    pending = False  # the last assistant turn called tools and no result has come yet
    previous = None
    for index, turn in enumerate(turns, start=1):
        role = turn["role"]
        if role == "tool":
            if previous is None or not (previous["role"] == "tool" or previous.get("tool_calls")):
                raise RowReject(ORPHAN_OBSERVATION, f"turn {index} ({turn['where']}) is a tool result that follows no call")
            call_id = turn.get("tool_call_id")
            if call_id is not None and open_ids and call_id not in open_ids:
                raise RowReject(ORPHAN_OBSERVATION, f"turn {index} ({turn['where']}) answers call id '{call_id}', "
                                                    "which no call before it made")
            open_ids.discard(call_id)
            pending = False
        elif role == "user":
            if previous is not None and previous["role"] == "user":
                raise RowReject(BAD_ROLES, f"turns: turn {index} is user after a user turn, expected assistant")
            if pending or open_ids:
                raise RowReject(CALL_WITHOUT_RESULT, f"turn {index} ({turn['where']}) is a user turn, but the call "
                                                     "before it has no result")
        else:  # assistant
            if previous is None:
                raise RowReject(BAD_ROLES, "turns: turn 1 is assistant, expected user")
            if pending or open_ids:
                raise RowReject(CALL_WITHOUT_RESULT, f"turn {index} ({turn['where']}) replies, but the call before "
                                                     "it has no result")
            if previous["role"] == "assistant":
                raise RowReject(BAD_ROLES, f"turns: turn {index} is assistant after an assistant turn, expected user")
            calls = turn.get("tool_calls") or []
            pending = bool(calls)
            open_ids = {call["id"] for call in calls if call.get("id")}
        previous = turn
    if turns[-1]["role"] != "assistant":
        raise RowReject(BAD_ROLES, f"turns: the last turn ({len(turns)}) is a {turns[-1]['role']} turn with no reply")


def check_calls(turns: list[dict], tools: list[dict] | None) -> None:
    """Each call names a declared tool, with the declared required parameters."""
    declared = {tool_name(tool): tool_function(tool) for tool in tools or []}
    for index, turn in enumerate(turns, start=1):
        for call in turn.get("tool_calls") or []:
            name = call["name"]
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise RowReject(UNKNOWN_TOOL, f"turn {index} ({turn['where']}) calls '{name}', which the dialogue "
                                              f"does not declare (declared: {known})")
            parameters = declared[name].get("parameters")
            required = parameters.get("required") if isinstance(parameters, dict) else None
            missing = [key for key in required or [] if isinstance(key, str) and key not in call["arguments"]]
            if missing:
                raise RowReject(BAD_ARGUMENTS, f"turn {index} ({turn['where']}) calls '{name}' without its required "
                                               f"parameter(s) {', '.join(missing)}")


def check_texts(turns: list[dict]) -> None:
    """Every turn says something: a user its question, an assistant a reply or a call, a tool a result."""
    last = len(turns)
    for index, turn in enumerate(turns, start=1):
        if turn["text"].strip():
            continue
        role = turn["role"]
        if role == "user":
            raise RowReject(EMPTY_INSTRUCTION, f"turns: turn {index} (user) is empty")
        if role == "tool":
            raise RowReject(EMPTY_TOOL_RESULT, f"turns: turn {index} ({turn['where']}) is an empty tool result")
        if not turn.get("tool_calls"):
            where = "the reply" if index == last else f"turn {index} (assistant)"
            raise RowReject(EMPTY_REPLY, f"turns: {where} is empty")


def name_results(turns: list[dict]) -> None:
    """A result with no tool name gets its call's (by call id, or the only call of its turn):
    templates that print the tool's name need it."""
    calls: list[dict] = []
    for turn in turns:
        if turn.get("tool_calls"):
            calls = turn["tool_calls"]
        elif turn["role"] == "tool" and "name" not in turn:
            by_id = [c for c in calls if turn.get("tool_call_id") and c.get("id") == turn["tool_call_id"]]
            found = by_id or (calls if len(calls) == 1 else [])
            if found:
                turn["name"] = found[0]["name"]


def build_tool_dialogue(*, row_id: str, source: str, origin: Origin, turns: list[dict], system: str | None,
                        tools: list[dict] | None, category: str | None) -> Conversation:
    """A checked Conversation from message turns (dicts from the message readers)."""
    turns = merge_turns(turns)
    check_order(turns)
    check_texts(turns)
    check_calls(turns, tools if tools is not None else tools_in_system(system))
    name_results(turns)
    try:
        return Conversation.model_validate({
            "id": row_id, "source": source, "system": system, "tools": tools, "category": category,
            "origin": origin, "turns": [{k: v for k, v in t.items() if k != "where"} for t in turns],
        })
    except ValidationError as exc:
        raise RowReject(INVALID, describe_validation_error(exc)) from None
