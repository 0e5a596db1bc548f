"""NaN and Infinity in JSON rows: what pandas-made files carry.

pandas marks an empty cell NaN, and `json.dumps` (which a script exporting a DataFrame row by
row calls) writes it as the bare token `NaN`; Python's json reads it back. Read as text it was
"nan": `Input: nan` in a context, a reply "nan" trained on, every row without a dialogue id joined
into one dialogue, and rejects.jsonl holding tokens strict JSON readers refuse.
"""

import json

from instruct_data.convert import convert
from instruct_data.multiturn import MultiturnSettings
from instruct_data.multiturn.run import to_multiturn

LINES = [
    '{"instruction": "你好", "input": NaN, "output": "你好呀"}',
    '{"instruction": "说说天气", "input": "", "output": NaN}',
    '{"instruction": "算一下", "input": Infinity, "output": "好"}',
    '{"instruction": "算一下", "output": -Infinity}',
    '{"instruction": "接着聊", "output": "好的", "history": [["第一问", {"text": "答"}]]}',
    '{"instruction": "接着聊", "output": "好的", "history": [["第一问", NaN]]}',
    '{"instruction": "几点了", "output": 12.5}',
]


def strict_json(line: str):
    def refuse(token):
        raise AssertionError(f"not JSON: {token} in {line}")
    return json.loads(line, parse_constant=refuse)


def test_nan_is_an_empty_cell_and_infinity_a_reject(tmp_path):
    path = tmp_path / "pandas.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    convert([str(path)], out, max_reject_rate=1.0)
    records = {r["id"]: r for r in map(strict_json, out.read_text(encoding="utf-8").splitlines())}
    assert records["pandas:1"]["context"] == "Instruction: 你好\nAnswer: "  # no "Input: nan"
    assert records["pandas:7"]["target"] == "12.5"  # a number is still text
    assert not any("nan" in r["context"] + r["target"] or "inf" in r["context"] + r["target"]
                   for r in records.values())
    rejects = {r["origin"]: r for r in map(strict_json, (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines())}
    assert {where: (r["reason"], r["detail"]) for where, r in rejects.items()} == {
        f"{path}:2": ("empty_reply", "'output' is empty"),
        f"{path}:3": ("wrong_type", "'input' should be text, got Infinity"),
        f"{path}:4": ("wrong_type", "'output' should be text, got -Infinity"),
        f"{path}:5": ("wrong_type", "'history' item 1 should be text, got dict"),
        f"{path}:6": ("empty_reply", "'history' item 1 has an empty answer"),
    }
    # The raw row is kept, as valid JSON: the non-finite numbers as strings.
    assert rejects[f"{path}:3"]["raw"] == {"instruction": "算一下", "input": "Infinity", "output": "好"}


def test_rows_without_a_dialogue_id_are_not_joined_into_one_dialogue(tmp_path):
    path = tmp_path / "turns.jsonl"
    rows = ['{"conversation_id": "c1", "turn": 1, "instruction": "火星离太阳第几近？", "output": "第四近。"}',
            '{"conversation_id": NaN, "turn": NaN, "instruction": "水的沸点是多少？", "output": "100 摄氏度。"}',
            '{"conversation_id": "c1", "turn": 2, "instruction": "它为什么是红色的？", "output": "因为表面有氧化铁。"}',
            '{"conversation_id": NaN, "turn": NaN, "instruction": "一年有几个月？", "output": "12 个月。"}']
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    to_multiturn([path], out, template="seed", settings=MultiturnSettings(mode="last-turn"), max_reject_rate=1.0,
                 group_by="conversation_id", order_by="turn")
    records = {r["id"]: r for r in map(strict_json, (out / "train.jsonl").read_text(encoding="utf-8").splitlines())}
    assert records["turns:2"]["context"] == "Instruction: 水的沸点是多少？\nAnswer: "
    assert records["turns:4"]["context"] == "Instruction: 一年有几个月？\nAnswer: "
    assert records["turns:conversation_id=c1"]["context"] == (
        "Instruction: 火星离太阳第几近？\nAnswer: 第四近。\nInstruction: 它为什么是红色的？\nAnswer: ")
    assert len(records) == 3
