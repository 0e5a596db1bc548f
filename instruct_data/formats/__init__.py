"""Input formats: one adapter per format *into* the canonical Conversation, plus detection.

    result = parse_row(row, fmt, source=..., mapping=...)
    # -> a Conversation, or a Reject (table.py: stage "read", reason, detail, origin, raw, id)

Commands do not call parse_row themselves: instruct_data.rowpath reads files into rows and
rows into Conversations (with the fast path for plain rows), the same way for all of them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from instruct_data.errors import InputError
from instruct_data.formats import (alpaca, belle, canonical, context_target, messages, prompt_response,
                                   qa_benchmark, seed_tasks, sharegpt)
from instruct_data.formats.base import UNPARSEABLE, RowReject, own_id, position_id
from instruct_data.formats.transcript import looks_like_transcript
from instruct_data.io import Row, rows_inside
from instruct_data.schema import NO_TRAINED_REPLY, Conversation, record_replies
from instruct_data.table import Reject

# Format name -> adapter module (each has to_conversation(data, row_id=, source=, origin=)).
FORMATS: dict[str, ModuleType] = {
    "alpaca": alpaca,
    "belle": belle,
    "belle_conversations": sharegpt,  # train_3.5M_CN: id + conversations with from human/assistant
    "sharegpt": sharegpt,
    "messages": messages,
    "prompt_response": prompt_response,
    "context_target": context_target,
    "qa_benchmark": qa_benchmark,
    "belle_seed_tasks": seed_tasks,  # one task, several instances: expanded in rowpath
    "idata": canonical,  # idata's own canonical records: a build's conversations.jsonl
}
DETECT_ROWS = 50

# The keys each format's adapter reads (after --map): any other non-empty column is unused, and
# says so (unused_columns), so no column is dropped in silence.
_COMMON = {"id", "category", "class", "type"}
FIELDS_READ: dict[str, set[str]] = {
    "alpaca": {"instruction", "input", "output", "history", "system"} | _COMMON,
    "belle": {"instruction", "input", "output", "target", "history", "system"} | _COMMON,
    "belle_conversations": {"conversations", "system", "tools", "functions"} | _COMMON,
    "sharegpt": {"conversations", "system", "tools", "functions"} | _COMMON,
    "messages": {"messages", "system", "tools", "functions"} | _COMMON,
    "prompt_response": {"prompt", "response", "history"} | _COMMON,
    "context_target": {"context", "target", "source", "rendered"} | _COMMON,
    "qa_benchmark": {"question", "std_answer"} | _COMMON,
    "belle_seed_tasks": {"instruction", "instances", "name", "is_classification"} | _COMMON,
    "idata": {"source", "turns", "system", "tools", "origin", "rendered", "own_id"} | _COMMON,
}

# The keys the message readers read inside each message of a dialogue's list (formats/sharegpt.py,
# formats/tools.py): any other that holds something is named too, as `messages[].loss`.
_MESSAGE_KEYS = {"weight", "tool_calls", "function_call", "tool_call_id", "name", "reasoning_content", "reasoning"}
MESSAGE_FIELDS_READ: dict[str, tuple[str, set[str]]] = {
    "messages": ("messages", {"role", "content"} | _MESSAGE_KEYS),
    "sharegpt": ("conversations", {"from", "value", "role", "content"} | _MESSAGE_KEYS),
    "belle_conversations": ("conversations", {"from", "value", "role", "content"} | _MESSAGE_KEYS),
}

# Column names that home-made Chinese spreadsheets and other public sets use for alpaca's fields,
# matched whatever their case: Dolly (instruction, context, response), ms-swift (query, response,
# history), Zhihu-KOL (INSTRUCTION, RESPONSE), OpenAI's legacy prompt/completion, question/answer
# sheets, benchmarks' reference answers (AlignBench: question, reference, category; 参考答案). Tried only when the keys match no known format and no --map was given; the mapping used
# is reported (on screen, manifest, validate). A column none of them names (备注, 来源, METADATA ...)
# is not guessed at: it is reported as unused. A file of `input` and `output` alone reads its input
# as the instruction (the last name tried for it).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction", "指令", "问题", "提问", "题目", "任务", "question", "query", "prompt", "input"),
    "input": ("input", "输入", "补充输入", "补充", "附加信息", "补充信息", "上下文", "材料", "背景", "context"),
    "output": ("output", "输出", "回答", "答案", "回复", "response", "answer", "completion", "reply", "参考答案",
               "标准答案", "reference"),
    "system": ("system", "系统提示", "系统"),
    "category": ("category", "类别", "分类", "类型"),
    "history": ("history", "历史", "对话历史"),
}


def format_name(name: str) -> str:
    """`prompt-response` and `prompt_response` alike; unknown names are an error."""
    key = name.strip().lower().replace("-", "_").replace("/", "_")
    if key not in FORMATS:
        raise ValueError(f"unknown format {name!r} (known: {', '.join(FORMATS)})")
    return key


def parse_mapping(text: str | None) -> dict[str, str]:
    """`instruction=问题,output=答案` -> {"instruction": "问题", "output": "答案"}."""
    if not text:
        return {}
    mapping = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError(f"--map item {part!r} should look like field=column")
        field, column = (s.strip() for s in part.split("=", 1))
        if not field or not column:
            raise ValueError(f"--map item {part!r} should look like field=column")
        mapping[field] = column
    return mapping


def apply_mapping(data: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The row with each field read from its column. A column may feed two fields
    (`input=a,output=a`), and two fields may swap columns: every value is taken before any
    mapped column is removed."""
    if not mapping:
        return data
    data = dict(data)
    values = {field: data[column] for field, column in mapping.items() if column in data}
    for column in mapping.values():
        data.pop(column, None)
    data.update(values)
    return data


def detect_row(data: dict[str, Any]) -> str | None:
    """The format one row's keys point to, most specific first."""
    keys = set(data)
    if {"context", "target"} <= keys:
        return "context_target"
    if canonical.looks_like_record(data):
        return "idata"
    if {"question", "std_answer"} <= keys:
        return "qa_benchmark"
    if "messages" in keys:
        return "messages"
    if seed_tasks.looks_like_seed_task(data):
        return "belle_seed_tasks"
    if "conversations" in keys:
        convs = data["conversations"]
        first = convs[0] if isinstance(convs, list) and convs and isinstance(convs[0], dict) else {}
        roles = {str(m.get("from", "")).lower() for m in convs if isinstance(m, dict)} if first else set()
        return "belle_conversations" if "id" in keys and "gpt" not in roles and "human" in roles else "sharegpt"
    if {"instruction", "output"} <= keys:
        instruction = data.get("instruction")
        if isinstance(instruction, str) and looks_like_transcript(instruction):
            return "belle"
        return "alpaca"
    if {"input", "target"} <= keys:
        return "belle"
    if {"prompt", "response"} <= keys:
        return "prompt_response"
    return None


def detect_format(rows: list[Row], path: str, mapping: dict[str, str] | None = None) -> str:
    """The format most of the first parsed rows point to; an error naming the keys otherwise."""
    votes: Counter[str] = Counter()
    seen_keys: Counter[str] = Counter()
    for row in rows:
        if row.data is None:
            continue
        data = apply_mapping(row.data, mapping or {})
        seen_keys.update(data.keys())
        name = detect_row(data)
        if name:
            votes[name] += 1
    if not votes:
        keys = ", ".join(k for k, _ in seen_keys.most_common(8)) or "none"
        first = next((r for r in rows if r.data is not None), rows[0] if rows else None)
        line = (first.origin.line or first.origin.row) if first else None
        columns = dict.fromkeys(str(key) for row in rows if row.data is not None for key in row.data)
        missing = [f"{field}={column}" for field, column in (mapping or {}).items() if column not in columns]
        if missing and columns:  # a --map that names no column here: say so, not "unknown format"
            raise InputError(path, f"--map {', '.join(missing)}: no such column in this file (its columns: "
                                   f"{', '.join(columns)})", line=line)
        separator = next((sep for sep in (";", "\t", "|") if any(sep in str(key) for key in columns)), None)
        hint = (f" (the columns look separated by {separator!r}: idata reads a .csv split by commas and a .tsv by tabs;"
                " save the sheet again as CSV)") if separator and path.lower().endswith((".csv", ".csv.gz")) else ""
        wrapped = _wrapped_rows(rows, path)
        if wrapped:
            raise InputError(path, f"unknown format: {wrapped}", line=line)
        raise InputError(path, f"unknown format: no known fields (found: {keys}); use --format or --map{hint}",
                         line=line)
    # alpaca and belle share keys: if any row is a Belle transcript, the file is Belle's.
    if votes.get("belle") and votes.get("alpaca"):
        return "belle"
    return votes.most_common(1)[0][0]


def _wrapped_rows(rows: list[Row], path: str) -> str:
    """For a file that is one JSON object holding its rows under a key: io.rows_inside; else ""."""
    parsed = [row.data for row in rows if row.data is not None]
    inside = rows_inside(parsed[0], Path(path).name, detect_row) if len(parsed) == 1 else ""
    return f"the file is one object: {inside}" if inside else ""


def alias_mapping(keys) -> dict[str, str]:
    """A --map built from COLUMN_ALIASES for these keys, matched whatever their case:
    {"instruction": "问题", "output": "Answer", ...}. A column is given to one field at most."""
    keys = {str(key) for key in keys}
    by_folded: dict[str, str] = {}
    for key in sorted(keys):
        by_folded.setdefault(key.casefold(), key)
    mapping: dict[str, str] = {}
    for field, names in COLUMN_ALIASES.items():
        if field in keys:
            continue
        found = next((by_folded[name.casefold()] for name in names if name.casefold() in by_folded
                      and by_folded[name.casefold()] not in mapping.values()), None)
        if found:
            mapping[field] = found
    return mapping


def unused_columns(head: list[Row], fmt: str, mapping: dict[str, str] | None = None) -> list[str]:
    """The columns of these rows that hold something and that the format does not read, in the
    order first seen: `备注` in a `问题, 补充, 答案, 备注` sheet, and a message's own field no reader
    reads, `messages[].loss` (a per-message training flag idata would otherwise ignore in
    silence). (Judged on the file's first rows.)"""
    known = FIELDS_READ.get(fmt)
    if known is None:
        return []
    container, message_keys = MESSAGE_FIELDS_READ.get(fmt, (None, set()))
    found: dict[str, None] = {}
    for row in head:
        if row.data is None:
            continue
        data = apply_mapping(row.data, mapping or {})
        for key, value in data.items():
            if key not in known and key not in found and _holds_something(value):
                found[key] = None
        messages = data.get(container) if container else None
        for message in messages if isinstance(messages, list) else ():
            for key, value in message.items() if isinstance(message, dict) else ():
                name = f"{container}[].{key}"
                if key not in message_keys and name not in found and _holds_something(value):
                    found[name] = None
    return list(found)


def _holds_something(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (list, dict)):
        return bool(value)
    return True


def resolve_format(head: list[Row], path: str, fmt: str | None = None,
                   mapping: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """(format, mapping) for a file from its first rows: forced, detected, or detected through
    the Chinese column aliases; an `InputError` naming the keys when nothing fits.

    The aliases are used only when no --map is given and the keys as they are match no format.
    """
    aliases = {} if mapping else _aliases_if_needed(head)
    if fmt:
        return format_name(fmt), dict(mapping or aliases)
    if aliases:
        try:
            return detect_format(head, path, aliases), aliases
        except InputError:
            pass  # the aliases do not help either: report the keys as they are
    return detect_format(head, path, mapping), dict(mapping or {})


def _aliases_if_needed(head: list[Row]) -> dict[str, str]:
    rows = [row.data for row in head if row.data is not None]
    if any(detect_row(data) for data in rows):
        return {}
    return alias_mapping({key for data in rows for key in data})


def read_conversations(path: str, **options: Any):
    """rowpath.read_conversations: (format used, stream of (row, Conversation or Reject))."""
    from instruct_data.rowpath import read_conversations as read

    return read(path, **options)


def parse_row(row: Row, fmt: str, *, source: str, mapping: dict[str, str] | None = None,
              row_id: str | None = None) -> Conversation | Reject:
    """The validated path from a row to a Conversation (rowpath.conversation_of is the way in:
    it tries the fast path for plain rows first), or the row's Reject (stage "read"), which
    goes to rejects.jsonl as it is. `row_id` defaults to `source:position`."""
    row_id = row_id or position_id(source, row.origin)
    if row.data is None:
        return Reject("read", UNPARSEABLE, row.error or "unreadable row", str(row.origin), row.raw, row_id)
    data = apply_mapping(row.data, mapping or {})
    adapter = FORMATS[fmt]
    if fmt == "alpaca" and isinstance(data.get("instruction"), str) and looks_like_transcript(data["instruction"]):
        # A Belle transcript past the rows detection looked at: read it as the dialogue it is.
        adapter = belle
    try:
        conversation = adapter.to_conversation(data, row_id=row_id, source=source, origin=row.origin)
    except RowReject as exc:  # the adapters' signal, raised deep inside them: made a Reject here, once
        return Reject("read", exc.reason, exc.detail, str(row.origin), row.data, row_id)
    if not record_replies(conversation.turns) and any(turn.role == "assistant" for turn in conversation.turns):
        return Reject("read", NO_TRAINED_REPLY, "every reply has weight 0: nothing to train", str(row.origin),
                      row.data, row_id)
    conversation.own_id = own_id(data)
    return conversation
