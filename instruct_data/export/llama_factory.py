"""LLaMA-Factory's own layout: `dataset_info.json` naming alpaca and sharegpt files.

Single-turn records without tools go to the alpaca files (`instruction`, `input`, `output`,
`system`); dialogues and tool dialogues to the sharegpt files (`conversations` of
`human`/`gpt`/`function_call`/`observation` turns, `system`, `tools` as a JSON string), the
column and tag names LLaMA-Factory's `data/parser.py` reads from `dataset_info.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instruct_data.export.build import BuildData
from instruct_data.export.messages import alpaca_row, is_single_turn, sharegpt_row
from instruct_data.io import write_json, write_jsonl

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
SHAREGPT_COLUMNS = {"messages": "conversations", "system": "system", "tools": "tools"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def write_llama_factory(data: BuildData, work: Path, name: str) -> dict[str, Any]:
    """Write the data files and dataset_info.json into `work`; return the counts per file."""
    info: dict[str, Any] = {}
    counts: dict[str, Any] = {"text_beside_call": 0, "untrained_replies": 0}
    for split, conversations in data.splits.items():
        alpaca = [alpaca_row(c) for c in conversations if is_single_turn(c)]
        sharegpt = []
        for conversation in conversations:
            if not is_single_turn(conversation):
                row, with_text = sharegpt_row(conversation)
                sharegpt.append(row)
                counts["text_beside_call"] += with_text
                # LLaMA-Factory's sharegpt has no per-turn weight: a reply idata keeps as history
                # only (a copy removed elsewhere) is trained there like the others. Counted.
                counts["untrained_replies"] += sum(1 for turn in conversation.turns if turn.weight == 0)
        suffix = "" if split == "train" else f"_{split}"
        for kind, rows, entry in (("alpaca", alpaca, _alpaca_entry), ("sharegpt", sharegpt, _sharegpt_entry)):
            if not rows:
                continue
            file_name = f"{name}{suffix}_{kind}.jsonl"
            write_jsonl(work / file_name, rows)
            info[f"{name}{suffix}_{kind}"] = entry(file_name)
            counts[file_name] = len(rows)
    write_json(work / "dataset_info.json", info)
    return counts


def _alpaca_entry(file_name: str) -> dict[str, Any]:
    return {"file_name": file_name, "formatting": "alpaca", "columns": dict(ALPACA_COLUMNS)}


def _sharegpt_entry(file_name: str) -> dict[str, Any]:
    return {"file_name": file_name, "formatting": "sharegpt", "columns": dict(SHAREGPT_COLUMNS),
            "tags": dict(SHAREGPT_TAGS)}
