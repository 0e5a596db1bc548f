"""The built-in templates' text for tools, tool calls, tool results and reasoning traces.

A model's own chat template (`--template native`) writes these its own way. The built-in
templates (seed, chatml, llama3, glm4, ...) have no slot for them, so idata writes them in one
documented format (docs/tools.md), the Hermes/Qwen2.5 tags that most open models and servers
read back:

    tools         the system text, then a blank line, then
                  <tools>
                  {"type": "function", "function": {...}}      one JSON schema a line
                  </tools>
    a call        <tool_call>
                  {"name": "get_weather", "arguments": {"city": "北京"}}
                  </tool_call>                  after the reply's text (a newline between)
    results       <tool_response>
                  {"temp": 3}
                  </tool_response>              one block a result, in the user slot
    a trace       <think>
                  …
                  </think>
                                                (a blank line) then the reply

JSON is written as chat templates' `tojson` writes it: non-ASCII kept, `", "` and `": "`.
"""

from __future__ import annotations

import json

from instruct_data.schema import ToolCall, Turn

REASONING_MODES = ("keep", "drop-history", "drop")
DEFAULT_REASONING = "keep"


def tool_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def openai_tool(tool: dict) -> dict:
    """A declared tool in OpenAI's layout, `{"type": "function", "function": {...}}`, which chat
    templates expect (glaive and LLaMA-Factory give the bare function schema)."""
    if isinstance(tool.get("function"), dict):
        return tool
    return {"type": "function", "function": tool}


def tools_text(tools: list[dict]) -> str:
    return "<tools>\n" + "\n".join(tool_json(openai_tool(tool)) for tool in tools) + "\n</tools>"


def call_text(call: ToolCall) -> str:
    return "<tool_call>\n" + tool_json({"name": call.name, "arguments": call.arguments}) + "\n</tool_call>"


def think_text(reasoning: str) -> str:
    return f"<think>\n{reasoning}\n</think>\n\n"


def reply_text(turn: Turn, trace: bool = True) -> str:
    """An assistant turn as the built-in templates write it: its trace (when kept), its text, its calls."""
    parts = [turn.text] if turn.text.strip() else []
    parts += [call_text(call) for call in turn.tool_calls or ()]
    body = "\n".join(parts)
    return think_text(turn.reasoning) + body if trace and turn.reasoning else body


def results_text(turns: list[Turn]) -> str:
    """Tool results, one block each, as the text of the user slot that follows the calls."""
    return "\n".join(f"<tool_response>\n{turn.text}\n</tool_response>" for turn in turns)


def system_text(system: str | None, tools: list[dict] | None) -> str | None:
    """The system text with the declared tools after it (the tools alone when there is none)."""
    if not tools:
        return system
    block = tools_text(tools)
    return f"{system}\n\n{block}" if system else block
