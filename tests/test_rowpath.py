"""The one row path: the same row gives the same record, reject and id in every command."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruct_data import rowpath
from instruct_data.cli import cli
from instruct_data.convert import convert
from instruct_data.formats import parse_row
from instruct_data.table import Reject
from instruct_data.formats.base import position_id
from instruct_data.formats.plainrow import PlainConversation
from instruct_data.io import Row
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe
from instruct_data.schema import Origin
from instruct_data.templates import get_template, render

TRANSCRIPT = "Human:你好，今天天气怎么样？\nAssistant:今天是晴天，气温二十度。\nHuman:适合去公园吗？\nAssistant:"
ROWS = [
    {"instruction": "解释一下光合作用。", "input": "", "output": "植物利用光能制造有机物。"},
    {"instruction": "列举三种水果。", "input": "", "output": "苹果、香蕉和橙子。"},
    {"instruction": "北京的简称是什么？", "input": "", "output": "京。"},
    {"instruction": "写一句问候语。", "input": "", "output": "早上好，祝你今天顺利！"},
    {"instruction": "把下面的词翻译成英文。", "input": "苹果", "output": "apple"},
]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build_files(tmp_path, path, **recipe):
    out = tmp_path / "out"
    build(parse_recipe({"sources": [{"files": [str(path)], **recipe}], "split": {"heldout": 0},
                        "dedupe": {"exact": False, "near": False}}), out, workers=1)
    return out


# ------------------------------------------------------------------ ids that never collide
def test_a_one_line_json_array_keeps_every_row_with_its_own_id(tmp_path):
    path = tmp_path / "rows.json"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(ROWS, fh, ensure_ascii=False)  # one line: every item starts on line 1
    out = build_files(tmp_path, path)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["totals"] == {"read": 5, "written": 5, "rejected": 0, "removed": 0}
    assert [r["id"] for r in lines(out / "train.jsonl")] == [f"rows:{n}" for n in range(1, 6)]

    convert([str(path)], tmp_path / "c" / "train.jsonl")
    assert [r["id"] for r in lines(tmp_path / "c" / "train.jsonl")] == [f"rows:{n}" for n in range(1, 6)]


def test_rows_own_ids_are_kept_and_their_repeats_reported_not_dropped(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [dict(row, id="same") for row in ROWS[:3]]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    manifest = convert([str(path)], tmp_path / "train.jsonl")
    assert manifest["counts"]["totals"]["written"] == 3
    assert manifest["counts"]["own_ids"]["rows_repeating_an_earlier_own_id"] == 2
    assert [r["id"] for r in lines(tmp_path / "train.jsonl")] == ["mine:1", "mine:2", "mine:3"]


# ------------------------------------------------------------------ the fast path agrees
def test_a_transcript_in_an_alpaca_file_is_a_dialogue_in_build_as_in_convert(tmp_path):
    # Past the rows format detection reads (or with --format alpaca), a Belle transcript used to
    # be trained raw by build and dedupe while convert read it as the dialogue it is.
    path = tmp_path / "mine.jsonl"
    rows = [*ROWS, {"instruction": TRANSCRIPT, "input": "", "output": "我可以回答问题。"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = build_files(tmp_path, path, format="alpaca")
    dialogue = lines(out / "conversations.jsonl")[-1]
    assert [t["role"] for t in dialogue["turns"]] == ["user", "assistant", "user", "assistant"]
    train = lines(out / "train.jsonl")
    assert not any("Human:" in r["context"] for r in train)
    convert([str(path)], tmp_path / "c.jsonl", fmt="alpaca")
    converted = lines(tmp_path / "c.jsonl")[-1]
    assert (train[-1]["id"], converted["id"]) == ("mine:6#t2", "mine:6")  # the final reply's record
    assert (train[-1]["context"], train[-1]["target"]) == (converted["context"], converted["target"])


TEXT = st.one_of(
    st.sampled_from(["", " ", "\u3000", "\u200b", "解释一下", "问题\t\"引号\"\n\u2028", "回答\x1b", "😀\ud7ff",
                     "Human:你好\nAssistant:你好！", "Human:问\nAssistant:答\nHuman:再问\nAssistant:",
                     "Human: 只有问题", "Assistant:", "human:小写\nassistant:回答"]),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
VALUE = st.one_of(TEXT, st.none(), st.integers(-3, 3), st.booleans(), st.lists(TEXT, max_size=2),
                  st.lists(st.lists(TEXT, min_size=2, max_size=2), max_size=2))
KEYS = ["instruction", "input", "output", "id", "category", "class", "type", "history", "system",
        "conversations", "messages", "prompt", "response", "context", "target", "question", "std_answer"]
TURNS = st.lists(st.fixed_dictionaries({"from": st.sampled_from(["human", "gpt", "assistant", "system", "tool"]),
                                        "value": TEXT, "role": st.sampled_from(["user", "assistant", "system"]),
                                        "content": TEXT}), max_size=4)


@st.composite
def rows(draw):
    """Mostly rows the fast path takes (the three texts), some with any of the other keys and values."""
    row = {"instruction": draw(TEXT), "output": draw(TEXT)}
    if draw(st.booleans()):
        row["input"] = draw(st.one_of(TEXT, st.none()))
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        if key in ("conversations", "messages"):
            row[key] = draw(st.one_of(TURNS, VALUE))
        else:
            row[key] = draw(VALUE if key in ("history", "system") or draw(st.booleans()) else TEXT)
    return row


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=rows(), fmt=st.sampled_from(["alpaca", "alpaca", "belle", "belle", *rowpath.FORMATS]), at=st.sampled_from([Origin(file="x.jsonl", line=7),
       Origin(file="x.json", line=1, row=3), Origin(file="x.csv", row=9)]))
def test_the_fast_path_gives_the_validated_record_or_reject(row, fmt, at):
    got = rowpath.conversation_of(Row(at, row), fmt, "src")
    # A reader that expands records (seed tasks) parses the rows it makes in its row format.
    want = parse_row(Row(at, row), rowpath.row_format(fmt), source="src", row_id=position_id("src", at))
    if isinstance(want, Reject):
        assert got == want
        return
    assert got.model_dump_json(exclude_none=True) == want.model_dump_json(exclude_none=True)
    assert render(got, get_template("seed")) == render(want, get_template("seed"))
    if isinstance(got, PlainConversation):
        assert want.n_rounds == 1 and got.own_id == want.own_id


def test_expanded_records_get_one_row_each_with_its_own_id_in_every_command(tmp_path, monkeypatch):
    """The hook for readers whose records hold several rows (BELLE's seed tasks)."""
    def split(row):
        data = row.data
        return [Row(Origin(file=row.origin.file, line=row.origin.line, instance=n),
                    {"instruction": data["instruction"], "input": item.get("input", ""), "output": item["output"]})
                for n, item in enumerate(data["instances"], start=1)]

    monkeypatch.setattr(rowpath, "EXPANDERS", {})
    rowpath.register_expander("alpaca_tasks", split, "alpaca")
    monkeypatch.setitem(rowpath.FORMATS, "alpaca_tasks", rowpath.FORMATS["alpaca"])
    path = tmp_path / "tasks.jsonl"
    tasks = [{"instruction": "翻译成英文", "instances": [{"input": "苹果", "output": "apple"},
                                                      {"input": "香蕉", "output": "banana"}]},
             {"instruction": "写一句问候语", "instances": [{"output": "你好！"}]}]
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks), encoding="utf-8")
    convert([str(path)], tmp_path / "c.jsonl", fmt="alpaca_tasks")
    assert [r["id"] for r in lines(tmp_path / "c.jsonl")] == ["tasks:1#1", "tasks:1#2", "tasks:2#1"]
    out = build_files(tmp_path, path, format="alpaca_tasks")
    assert [r["id"] for r in lines(out / "train.jsonl")] == ["tasks:1#1", "tasks:1#2", "tasks:2#1"]
    assert [c["origin"]["instance"] for c in lines(out / "conversations.jsonl")] == [1, 2, 1]


def test_every_command_reads_a_row_the_same_way(tmp_path):
    """convert, build, dedupe and to-multiturn: the same ids, the same rejects, the same records."""
    path = tmp_path / "mine.jsonl"
    rows = [*ROWS, {"instruction": "", "output": "没有问题"}, {"instruction": TRANSCRIPT, "output": "我能回答问题。"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "{broken\n", encoding="utf-8")
    runner = CliRunner()
    for args in (["convert", str(path), "--out", str(tmp_path / "c.jsonl")],
                 ["dedupe", str(path), "--out", str(tmp_path / "d"), "--workers", "1"],
                 ["to-multiturn", str(path), "--out", str(tmp_path / "m"), "--workers", "1"],
                 ["build", str(path), "--out", str(tmp_path / "b"), "--workers", "1", "--heldout", "0"]):
        assert runner.invoke(cli, args).exit_code == 0, args
    rejects = {}
    for name, file in (("convert", tmp_path / "c.rejects.jsonl"), ("dedupe", tmp_path / "d" / "rejects.jsonl"),
                       ("to-multiturn", tmp_path / "m" / "rejects.jsonl"), ("build", tmp_path / "b" / "rejects.jsonl")):
        rejects[name] = [(r["id"], r["reason"]) for r in lines(file) if r["stage"] == "read"]
    assert rejects["convert"] == [("mine:6", "empty_instruction"), ("mine:8", "unparseable")]
    assert rejects["dedupe"] == rejects["to-multiturn"] == rejects["build"] == rejects["convert"]
    built = lines(tmp_path / "b" / "conversations.jsonl")
    multi = lines(tmp_path / "m" / "conversations.jsonl")
    assert built == multi


def test_nothing_below_the_cli_imports_the_cli():
    import ast

    package = Path(__file__).resolve().parents[1] / "instruct_data"
    offenders = []
    for path in package.rglob("*.py"):
        # The entry points sit above the command line: __main__ (python -m) and entry.py (the
        # console script, which installs the signal handlers before the CLI loads).
        if path.parent.name == "cli" or path.name in ("__main__.py", "entry.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offenders += [f"{path.relative_to(package)}: {n}" for n in names if n.startswith("instruct_data.cli")]
    assert offenders == []


def test_every_command_reports_repeated_own_ids(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [dict(row, id="same" if n < 2 else f"own-{n}") for n, row in enumerate(ROWS)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    runner = CliRunner()
    for command, manifest in (("dedupe", tmp_path / "d" / "manifest.json"),
                              ("to-multiturn", tmp_path / "m" / "manifest.json"),
                              ("build", tmp_path / "b" / "manifest.json")):
        folder = manifest.parent
        assert runner.invoke(cli, [command, str(path), "--out", str(folder), "--workers", "1"]).exit_code == 0
        own = json.loads(manifest.read_text(encoding="utf-8"))["counts"]["own_ids"]
        assert (own["rows_with_own_id"], own["rows_repeating_an_earlier_own_id"]) == (5, 1), command
        assert own["examples"] == [{"own_id": "same", "row": "mine:2"}], command


def test_strict_means_the_same_in_every_command(tmp_path):
    from instruct_data.dedupe.runner import dedupe_files
    from instruct_data.errors import StrictModeError
    from instruct_data.multiturn.run import to_multiturn

    def commands(path, out):
        yield lambda: convert([str(path)], out / "c.jsonl", strict=True)
        yield lambda: dedupe_files([str(path)], out / "d", strict=True, workers=1)
        yield lambda: to_multiturn([str(path)], out / "m", strict=True, workers=1)
        yield lambda: build(parse_recipe({"sources": [{"files": [str(path)]}], "strict": True}), out / "b", workers=1)

    # A row cleaning drops (AI boilerplate) is a decision about a good row: no command stops.
    clean = tmp_path / "clean.jsonl"
    rows = [*ROWS, {"instruction": "你是谁？", "input": "", "output": "作为一个AI语言模型，我没有名字。"}]
    clean.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for run in commands(clean, tmp_path / "clean"):
        run()
    # A row that cannot be read as a record stops every command, with the same words.
    bad = tmp_path / "bad.jsonl"
    rows = [*ROWS[:2], {"instruction": "问题", "input": "", "output": "  "}, *ROWS[2:]]
    bad.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for run in commands(bad, tmp_path / "bad"):
        try:
            run()
        except StrictModeError as exc:
            assert str(exc) == f"{bad}:3: empty_reply: 'output' is empty (--strict)"
        else:
            raise AssertionError("--strict did not stop at a bad row")
