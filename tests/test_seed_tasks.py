"""BELLE's seed-task file: one row per instance, the task's name as category, every instance accounted for."""

from __future__ import annotations

import json

import pytest

from instruct_data.convert import convert
from instruct_data.table import Reject
from instruct_data.rowpath import read_conversations

TASKS = [
    {"id": "seed_task_8", "name": "poem", "instruction": "请以下面词语为主题写一首诗",
     "instances": [{"input": "夏天", "output": "不但春妍夏亦佳，随缘花草是生涯。"}], "is_classification": False},
    {"id": "seed_task_9", "name": "synonym_generation", "instruction": "给出下面词语的同义词",
     "instances": [{"input": "惊人地", "output": "令人惊奇地"}, {"input": "快乐", "output": "高兴，愉快"}],
     "is_classification": False},
    {"id": "seed_task_10", "name": "broken", "instruction": "空的任务", "instances": []},
]


def write(tmp_path, tasks):
    path = tmp_path / "zh_seed_tasks.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks), encoding="utf-8")
    return path


def test_each_instance_is_a_row_with_the_task_name_as_category(tmp_path):
    path = write(tmp_path, TASKS)
    fmt, stream = read_conversations(str(path), source="seed")
    results = list(stream)
    assert fmt == "belle_seed_tasks"
    rows = [(str(row.origin).rsplit("/", 1)[-1], parsed) for row, parsed in results]
    good = [(where, c) for where, c in rows if not isinstance(c, Reject)]
    assert [where for where, _ in good] == ["zh_seed_tasks.jsonl:1#1", "zh_seed_tasks.jsonl:2#1", "zh_seed_tasks.jsonl:2#2"]
    assert [c.category for _, c in good] == ["poem", "synonym_generation", "synonym_generation"]
    assert good[2][1].prompt.text == "给出下面词语的同义词" and good[2][1].prompt.input == "快乐"
    assert good[2][1].id == "seed:2#2"
    (where, bad), = [(w, c) for w, c in rows if isinstance(c, Reject)]
    assert where == "zh_seed_tasks.jsonl:3" and "'instances' is empty" in bad.detail


def test_convert_accounts_for_every_instance(tmp_path):
    path = write(tmp_path, TASKS)
    out = tmp_path / "out.jsonl"
    manifest = convert([str(path)], out)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    rejects = [json.loads(line) for line in (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rejects) == 1 and rejects[0]["origin"].endswith("zh_seed_tasks.jsonl:3")
    # read = 3 instances + 1 task that could not be split: every instance accounted for
    assert manifest["counts"]["totals"] == {"read": 4, "written": 3, "rejected": 1, "removed": 0}


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_dedupe_writes_each_task_back_with_its_kept_instances(tmp_path, layout):
    """A task whose instance repeats another task's keeps its other instances; a rejected task
    is not written back; every instance read is written, rejected or recorded as a duplicate."""
    from instruct_data.dedupe.runner import dedupe_files

    tasks = [*TASKS, {"id": "seed_task_11", "name": "synonym_again", "instruction": "给出下面词语的同义词",
                      "instances": [{"input": "快乐", "output": "高兴，愉快"},
                                    {"input": "美丽", "output": "漂亮，好看"}]}]
    path = write(tmp_path, tasks)
    if layout == "array":
        path = path.with_suffix(".json")
        path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    manifest = dedupe_files([path], tmp_path / "out", workers=1)
    written = tmp_path / "out" / path.name
    text = written.read_text(encoding="utf-8")
    back = json.loads(text) if layout == "array" else [json.loads(line) for line in text.splitlines()]
    assert [t["id"] for t in back] == ["seed_task_8", "seed_task_9", "seed_task_11"]
    assert back[2]["instances"] == [{"input": "美丽", "output": "漂亮，好看"}]  # its first was a repeat
    assert back[1] == tasks[1] and back[2]["name"] == "synonym_again"
    duplicates = [json.loads(line) for line in (tmp_path / "out" / "duplicates.jsonl").read_text().splitlines()]
    assert len(duplicates) == 1 and duplicates[0]["id"] == "zh_seed_tasks:4#1"
    assert manifest["counts"]["totals"] == {"read": 6, "written": 4, "rejected": 1, "removed": 1}
