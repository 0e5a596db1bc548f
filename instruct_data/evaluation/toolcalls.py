"""Scoring tool use: on items whose reference answer is a tool call, did the model make it?

An item is a *call item* when calls can be read from its reference: the built-in templates
write a call as a `<tool_call>{"name", "arguments"}</tool_call>` block (instruct_data/tool_format.py),
Qwen's chat template does the same, Llama 3.1's writes the bare JSON object with `parameters`.
The same reader (`read_calls`) reads the prediction. Three scores per call item, 0 or 100:

- `valid_json`: the prediction holds a call, and every call in it is a JSON object with a name
  and a JSON object of arguments (a call written as prose or broken JSON scores 0);
- `name_accuracy`: the tools called are the reference's (as a multiset: parallel calls may
  come in any order);
- `arguments_exact`: the calls are the reference's, name and arguments JSON-equal
  (`{"a": 1}` equals `{ "a" : 1.0 }`; key order never matters).

Their means (with the bootstrap interval), and tuned − base with the same worse/better
verdict as the text metrics, go into results.json under `tool_calls` and into report.md.

Reasoning traces: a leading `<think>…</think>` is taken off the prediction and the reference
before the text metrics (ROUGE, BLEU, exact match) and before reading calls; the number of
predictions and references that had one is reported (`reasoning_stripped`).
"""

from __future__ import annotations

import json
import re
from collections import Counter

from instruct_data.evaluation.aggregate import (DEFAULT_RESAMPLES, DEFAULT_SEED, OVERALL, paired_value_delta,
                                                summarize_value)

TOOL_METRICS = ("valid_json", "name_accuracy", "arguments_exact")
TOOL_LABELS = {"valid_json": "valid JSON", "name_accuracy": "tool name accuracy",
               "arguments_exact": "arguments exact match"}
CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)
LEADING_THINK = re.compile(r"\A\s*<think>.*?(?:</think>\s*|\Z)", re.DOTALL)


def strip_reasoning(text: str | None) -> tuple[str | None, bool]:
    """(the text without a leading `<think>…</think>` trace, whether it had one). An unclosed
    trace (generation stopped inside it) is all trace: nothing of it is an answer."""
    if not text or "<think>" not in text:
        return text, False
    found = LEADING_THINK.match(text)
    if not found:
        return text, False
    return text[found.end():], True


def read_calls(text: str | None) -> list[dict | None] | None:
    """The calls a text makes, each {"name", "arguments"} or None where a call is not valid JSON;
    None when the text makes no call at all.

    `<tool_call>` blocks when there are any, else the whole text as one JSON call (or a list of
    them), as Llama 3.1's template writes it."""
    if not text:
        return None
    if "<tool_call>" in text:
        return [_call(block) for block in CALL_BLOCK.findall(text)]
    stripped = text.strip()
    if stripped[:1] not in ("{", "["):
        return None
    value = _json(stripped)
    items = value if isinstance(value, list) else [value]
    calls = [_as_call(item) for item in items]
    # A JSON answer that is not shaped like a call is an answer, not a broken call.
    return calls if calls and any(c is not None for c in calls) else None


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _call(text: str) -> dict | None:
    return _as_call(_json(text))


def _as_call(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    inner = value.get("function") if isinstance(value.get("function"), dict) else value
    name = inner.get("name")
    arguments = inner.get("arguments", inner.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI's layout: the arguments as a JSON string
        arguments = _json(arguments) if arguments.strip() else {}
    if not isinstance(name, str) or not name.strip() or not isinstance(arguments, dict):
        return None
    return {"name": name, "arguments": arguments}


def _canonical(call: dict) -> str:
    """One text per JSON value: keys sorted, and 1.0 written as 1 (JSON has one kind of number)."""
    return json.dumps(_numbers(call), ensure_ascii=False, sort_keys=True)


def _numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value


def score_calls(prediction: str | None, reference: str | None) -> dict | None:
    """{valid_json, name_accuracy, arguments_exact} (0 or 100) of a prediction, or None when
    the reference is not a call (the item is scored by the text metrics only)."""
    expected = read_calls(strip_reasoning(reference)[0])
    if not expected or any(call is None for call in expected):
        return None
    made = read_calls(strip_reasoning(prediction)[0]) or []
    valid = bool(made) and all(call is not None for call in made)
    made = [call for call in made if call is not None]
    names = Counter(call["name"] for call in made) == Counter(call["name"] for call in expected)
    exact = Counter(map(_canonical, made)) == Counter(map(_canonical, expected))
    return {"valid_json": 100.0 * valid, "name_accuracy": 100.0 * names, "arguments_exact": 100.0 * exact}


# ------------------------------------------------------------------ hooks for evaluation/run.py
def text_for_metrics(prediction: str, reference: str | None) -> tuple[str, str | None, dict]:
    """(prediction, reference) with their reasoning traces taken off, and which had one."""
    prediction, p = strip_reasoning(prediction)
    reference, r = strip_reasoning(reference)
    return prediction or "", reference, {"prediction": p, "reference": r}


def summarize_tool_calls(rows: list[dict], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict | None:
    """results.json's `tool_calls`: per metric and category, the model's mean (and the base's,
    and the paired delta with its verdict); None when no item's answer is a call."""
    called = [row for row in rows if row.get("tool_scores")]
    if not called:
        return None
    compared = all(row.get("base_tool_scores") for row in called)
    block: dict = {"items": len(called), "metrics": list(TOOL_METRICS), "model": {}, "base": {}, "delta": {}}
    for name in TOOL_METRICS:
        block["model"][name] = summarize_value(called, lambda r: r["tool_scores"][name], name=f"tool/{name}",
                                               resamples=resamples, seed=seed)
        if compared:
            block["base"][name] = summarize_value(called, lambda r: r["base_tool_scores"][name],
                                                  name=f"base-tool/{name}", resamples=resamples, seed=seed)
            block["delta"][name] = paired_value_delta(called, lambda r: r["tool_scores"][name],
                                                      lambda r: r["base_tool_scores"][name], name=f"tool/{name}",
                                                      resamples=resamples, seed=seed)
    if not compared:
        del block["base"], block["delta"]
    else:
        block["worse"] = [name for name in TOOL_METRICS if block["delta"][name][OVERALL]["worse"]]
    return block


def reasoning_counts(rows: list[dict]) -> dict:
    """How many predictions (tuned, base) and references had a reasoning trace taken off."""
    found = {"predictions": 0, "references": 0}
    for row in rows:
        stripped = row.get("reasoning_stripped") or {}
        found["predictions"] += bool(stripped.get("prediction"))
        found["references"] += bool(stripped.get("reference"))
        if "base_prediction" in row:
            found.setdefault("base_predictions", 0)
            found["base_predictions"] += bool(stripped.get("base_prediction"))
    return found


def report_lines(results: dict) -> list[str]:
    """report.md's section on tool calls and reasoning traces (none when neither came up)."""
    lines = []
    block = results.get("tool_calls")
    if block:
        lines += ["", "## Tool calls", "",
                  f"{block['items']} items answer with a tool call. Each is scored 0 or 100: valid JSON (the "
                  "prediction makes a call and every call is a JSON object with a name and arguments), tool name "
                  "accuracy (the same tools), arguments exact match (the same calls, arguments JSON-equal).", ""]
        from instruct_data.evaluation.report import _cell, _delta_cell, _table

        if "delta" in block:
            lines += _table(["metric", "base", "tuned", "tuned − base"],
                            [[TOOL_LABELS[n], _cell(block["base"][n][OVERALL]), _cell(block["model"][n][OVERALL]),
                              _delta_cell(block["delta"][n][OVERALL])] for n in TOOL_METRICS])
        else:
            lines += _table(["metric", "score", "n"], [[TOOL_LABELS[n], _cell(block["model"][n][OVERALL]),
                                                       str(block["model"][n][OVERALL]["n"])] for n in TOOL_METRICS])
    stripped = results.get("reasoning_stripped")
    if stripped and any(stripped.values()):
        parts = [f"{stripped['predictions']} predictions", f"{stripped['references']} references"]
        if "base_predictions" in stripped:
            parts.insert(1, f"{stripped['base_predictions']} base predictions")
        lines += ["", "**Reasoning traces:** a leading `<think>…</think>` was taken off " + ", ".join(parts)
                  + " before the text metrics and the tool-call scores."]
    return lines


def scored(row: dict, prediction: str, reference: str | None, side: str = "") -> dict:
    """Add one side's scores to a predictions row: `{side}scores` (the text metrics, on the texts
    without their reasoning traces), `{side}tool_scores` on a call item, and which texts had a
    trace under `reasoning_stripped`. `side` is "" for the tuned model, "base_" for its base."""
    from instruct_data.evaluation.metrics import score_item

    text, ref, traces = text_for_metrics(prediction, reference)
    row[f"{side}scores"] = score_item(text, ref)
    tools = score_calls(prediction, reference)
    if tools is not None:
        row[f"{side}tool_scores"] = tools
    flags = {("base_prediction" if side else "prediction"): traces["prediction"], "reference": traces["reference"]}
    if any(flags.values()):
        row.setdefault("reasoning_stripped", {}).update({k: v for k, v in flags.items() if v})
    return row


def dialogue_items(conversation, template) -> list[tuple[str, str, str, str]]:
    """(id, prompt, reference, question) of every reply of a benchmark dialogue that calls tools,
    as a build holds such a dialogue out (multiturn.expand, every turn): its calls are scored
    too. The question is the user turn of the reply's round."""
    from instruct_data.multiturn import MultiturnSettings, expand
    from instruct_data.multiturn.tools import replies

    records = expand(conversation, template, MultiturnSettings(mode="every-turn"))
    questions = [conversation.turns[opened].full_text for _, opened in replies(conversation)]
    return [(r["id"], r["context"], r["target"], q) for r, q in zip(records, questions)]
