"""BELLE's seed tasks (`zh_seed_tasks.json`, the file BELLE's generation starts from): one JSON
line per task, each holding several instances.

    {"id": "seed_task_8", "name": "english_haiku_generation", "instruction": "请以下面词语为主题写一首诗",
     "instances": [{"input": "夏天", "output": "不但春妍夏亦佳……"}], "is_classification": false}

Each instance becomes one row (read as alpaca: the task's instruction, the instance's input and
output), with the task's `name` as its category and origin `file:line#instance`. The expansion
goes through rowpath.register_expander, so every command reads the file the same way; a task
whose `instances` is missing, empty or not a list of objects is one reject naming the line.
"""

from __future__ import annotations

import json
from typing import Any

from instruct_data.formats.base import MISSING_FIELD, WRONG_TYPE, RowReject
from instruct_data.io import Row

FORMAT = "belle_seed_tasks"
ROW_FORMAT = "alpaca"


def looks_like_seed_task(data: dict[str, Any]) -> bool:
    return "instances" in data and "instruction" in data


def split_task(row: Row) -> list[Row]:
    """One row per instance (origin.instance 1-based); a task that cannot be split stays one row
    that is rejected with what is wrong (`'instances' is empty` …), naming its line."""
    task = row.data or {}
    problem = instances_problem(task)
    if problem:
        return [Row(origin=row.origin, data=None, error=problem, raw=json.dumps(task, ensure_ascii=False))]
    instances = task["instances"]
    rows = []
    for number, instance in enumerate(instances, 1):
        data = {"instruction": task.get("instruction"), "input": instance.get("input"),
                "output": instance.get("output"), "category": task.get("name")}
        rows.append(Row(origin=row.origin.model_copy(update={"instance": number}), data=data))
    return rows


def keep_instances(task: dict[str, Any], kept: list[int]) -> dict[str, Any]:
    """The task with only the instances at `kept` (0-based), in order: what dedupe writes back."""
    return {**task, "instances": [task["instances"][i] for i in kept]}


def instances_problem(task: dict[str, Any]) -> str | None:
    instances = task.get("instances")
    if instances is None:
        return "seed task has no 'instances' field"
    if not isinstance(instances, list):
        return f"seed task's 'instances' should be a list, got {type(instances).__name__}"
    if not instances:
        return "seed task's 'instances' is empty"
    if not all(isinstance(i, dict) for i in instances):
        return "each of the seed task's instances should be an object with 'input' and 'output'"
    return None


def to_conversation(data, *, row_id, source, origin):
    """A task read whole (only when the expander is bypassed): rejected with what is wrong."""
    raise RowReject(MISSING_FIELD if "instances" not in data else WRONG_TYPE,
                    instances_problem(data) or "seed tasks are read one row per instance")
