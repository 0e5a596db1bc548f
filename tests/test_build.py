"""`idata build` end to end: a three-source recipe, its ledger, reproducibility, atomic outputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.errors import RejectRateError, StrictModeError
from instruct_data.pipeline import build
from instruct_data.recipe import RecipeError, parse_recipe

BELLE = Path(__file__).parent / "fixtures" / "belle"
OUTPUTS = ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl", "rejects.jsonl",
           "duplicates.jsonl", "manifest.json", "report.md", "lengths.png", "rejects.png", "categories.png",
           "duplicates.png")

MINE = [
    {"instruction": "请把这句话翻译成英文：我爱北京。", "input": "", "output": "I love Beijing.", "category": "翻译"},
    {"instruction": "列举三种常见的绿叶蔬菜。", "input": "", "output": "菠菜、生菜和油麦菜。", "category": "问答"},
    {"instruction": "解释一下“守株待兔”的意思。", "input": "", "output": "比喻死守狭隘经验，不知变通，妄想不劳而获。", "category": "问答"},
    {"instruction": "写一句欢迎新同学的话。", "input": "", "output": "欢迎你加入我们的大家庭，愿你在这里收获友谊与成长！", "category": "写作"},
    {"instruction": "列举中国的四大发明。", "input": "", "output": "造纸术、印刷术、火药和指南针。", "category": "问答"},
    {"instruction": "   ", "input": "", "output": "没有问题的回答"},
    {"instruction": "你是谁？", "input": "", "output": "我是ChatGPT，由OpenAI开发。", "category": "问答"},
    {"instruction": "用一句话总结下面的内容。", "input": "今天公司召开了年度总结大会，表彰了优秀员工。", "output": "公司召开年度大会并表彰优秀员工。", "category": "摘要"},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def mixed_recipe(tmp_path):
    mine = write_jsonl(tmp_path / "mine.jsonl", MINE)
    return {
        "sources": [
            {"name": "mine", "files": [str(mine)]},
            {"belle": "0.5M", "from": str(BELLE), "cap": 4},
            {"belle": "multiturn", "from": str(BELLE)},
        ],
        "split": {"heldout": 3, "by": "source"},
        "clean": {"belle_blacklist": False, "ai_identity": True},  # (off by default since the test split)
        "seed": 7,
    }


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in OUTPUTS}


def test_a_three_source_mix_adds_up_per_source_and_in_total(tmp_path, mixed_recipe):
    out = tmp_path / "out"
    m = build(parse_recipe(mixed_recipe), out, workers=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    per = m["counts"]["per_source"]
    assert set(per) == {"mine", "belle-0.5M", "belle-multiturn"}
    for counts in [*per.values(), m["counts"]["totals"]]:
        assert counts["read"] == counts["written"] + counts["rejected"] + counts["removed"]
    assert sum(c["read"] for c in per.values()) == m["counts"]["totals"]["read"]
    # The ledger files agree with the counts.
    rejects, duplicates = read_lines(out / "rejects.jsonl"), read_lines(out / "duplicates.jsonl")
    for source, counts in per.items():
        assert counts["rejected"] == sum(r["source"] == source for r in rejects)
        assert counts["removed"] == sum(d["source"] == source for d in duplicates)
        written = m["split"]["train"].get(source, 0) + m["split"]["heldout"].get(source, 0)
        assert counts["written"] == written
    assert len(read_lines(out / "conversations.jsonl")) == sum(m["split"]["train"].values())
    assert len(read_lines(out / "train.jsonl")) == m["split"]["train_records"]
    assert len(read_lines(out / "heldout.jsonl")) == 3
    # The cap: Belle 0.5M stops reading once 4 rows survived cleaning.
    belle = next(s for s in m["sources"] if s["name"] == "belle-0.5M")
    assert belle["kept_after_cleaning"] == 4 and belle["stopped_at_cap"] and per["belle-0.5M"]["read"] < 8
    # The two copies of 列举中国的四大发明 across sources: one is removed.
    assert any(d["method"] in ("exact", "contamination") for d in duplicates)
    assert {r["reason"] for r in rejects} >= {"empty_instruction", "ai_identity"}
    assert m["parameters"]["recipe"]["seed"] == 7 and m["template"] == "seed"
    assert m["parameters"]["template"]["user"].startswith("Instruction: ")


def test_rebuilding_gives_byte_identical_outputs_for_any_worker_count(tmp_path, mixed_recipe):
    recipe = parse_recipe(mixed_recipe)
    build(recipe, tmp_path / "a", workers=1)
    build(recipe, tmp_path / "b", workers=2)
    build(recipe, tmp_path / "a", workers=1)  # over an earlier build
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    other = parse_recipe({**mixed_recipe, "seed": 8})
    build(other, tmp_path / "c", workers=1)
    assert (tmp_path / "c" / "heldout.jsonl").read_bytes() != (tmp_path / "a" / "heldout.jsonl").read_bytes()


def test_heldout_items_have_no_duplicate_left_in_train(tmp_path):
    rows = [{"instruction": f"第{i}个问题：请解释成语{name}。", "input": "", "output": f"{name}的意思是……这是第{i}个回答。"}
            for i, name in enumerate(["画蛇添足", "守株待兔", "亡羊补牢", "刻舟求剑", "掩耳盗铃", "井底之蛙"])]
    rows = rows + rows  # every row twice
    mine = write_jsonl(tmp_path / "twice.jsonl", rows)
    m = build(parse_recipe({"sources": [{"files": [str(mine)]}], "split": {"heldout": 2}}), tmp_path / "out", workers=1)
    held = {r["context"] for r in read_lines(tmp_path / "out" / "heldout.jsonl")}
    train = {r["context"] for r in read_lines(tmp_path / "out" / "train.jsonl")}
    assert len(held) == 2 and not held & train
    assert m["counts"]["duplicates_by_method"]["contamination"] == 2
    assert m["counts"]["duplicates_by_method"]["exact"] == 4


def test_a_failed_build_leaves_the_earlier_outputs_untouched(tmp_path, mixed_recipe):
    out = tmp_path / "out"
    build(parse_recipe(mixed_recipe), out, workers=1)
    before = digest(out)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"instruction": "问题", "output": ""}] * 5 + [MINE[0]])
    with pytest.raises(RejectRateError, match=r"5 of 6 rows of bad rejected .*most rejected: read/empty_reply 5"):
        build(parse_recipe({"sources": [{"files": [str(bad)]}]}), out, workers=1)
    assert digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp folder left


def test_strict_stops_at_the_first_bad_row(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [MINE[0], {"instruction": "问题", "output": ""}])
    with pytest.raises(StrictModeError, match="bad.jsonl:2"):
        build(parse_recipe({"sources": [{"files": [str(bad)]}], "strict": True}), tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_a_missing_file_or_unknown_subset_fails_naming_it(tmp_path):
    with pytest.raises(RecipeError, match="nope.jsonl"):
        build(parse_recipe({"sources": [{"files": [str(tmp_path / "nope.jsonl")]}]}), tmp_path / "out")
    with pytest.raises(RecipeError, match="'5M'"):
        parse_recipe({"sources": [{"belle": "5M"}]})
    assert not (tmp_path / "out").exists()


def test_limit_on_files_reads_exactly_that_many_rows(tmp_path):
    mine = write_jsonl(tmp_path / "mine.jsonl", MINE)
    m = build(parse_recipe({"sources": [{"files": [str(mine)], "limit": 3}], "dedupe": {"near": False}}),
              tmp_path / "out", workers=2)
    assert m["counts"]["totals"]["read"] == 3


def test_cli_builds_files_and_prints_the_summary(tmp_path):
    mine = write_jsonl(tmp_path / "mine.jsonl", MINE)
    result = CliRunner().invoke(cli, ["build", str(mine), "--out", str(tmp_path / "out"), "--heldout", "0.25",
                                      "--workers", "1", "--template", "chatglm"])
    assert result.exit_code == 0, result.output
    assert "mine" in result.output and "rejected" in result.output
    train = read_lines(tmp_path / "out" / "train.jsonl")
    assert train[0]["context"].startswith("[Round 1]\n问：")
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["template"] == "chatglm" and m["parameters"]["recipe"]["split"]["heldout"] == 0.25


def test_a_repeated_own_id_drops_no_row_and_is_reported(tmp_path):
    rows = [{"id": "q1", "instruction": "解释一下光合作用。", "output": "植物利用光能制造有机物的过程。"},
            {"id": "q1", "instruction": "列举三种水果。", "output": "苹果、香蕉和橙子。"},
            {"id": "q2", "instruction": "北京的简称是什么？", "output": "京。"}]
    mine = write_jsonl(tmp_path / "ids.jsonl", rows)
    m = build(parse_recipe({"sources": [{"files": [str(mine)]}]}), tmp_path / "out", workers=1)
    assert m["counts"]["totals"] == {"read": 3, "written": 3, "rejected": 0, "removed": 0}
    assert m["counts"]["own_ids"] == {"rows_with_own_id": 3, "rows_repeating_an_earlier_own_id": 1,
                                      "examples": [{"own_id": "q1", "row": "ids:2"}]}
    written = read_lines(tmp_path / "out" / "train.jsonl") + read_lines(tmp_path / "out" / "heldout.jsonl")
    assert sorted(r["id"] for r in written) == ["ids:1", "ids:2", "ids:3"]
    conversations = read_lines(tmp_path / "out" / "conversations.jsonl")
    assert sorted(c["own_id"] for c in conversations) == ["q1", "q1", "q2"][:len(conversations)]


def test_against_removes_training_rows_that_ask_a_benchmark_question(tmp_path):
    mine = write_jsonl(tmp_path / "mine.jsonl", MINE)
    bench = write_jsonl(tmp_path / "bench.jsonl", [
        {"question": "列举中国的四大发明", "std_answer": "造纸术、印刷术、火药、指南针", "class": "open qa"}])
    result = CliRunner().invoke(cli, ["build", str(mine), "--against", str(bench), "--out", str(tmp_path / "out"),
                                      "--workers", "1", "--no-near"])
    assert result.exit_code == 0, result.output
    duplicates = read_lines(tmp_path / "out" / "duplicates.jsonl")
    assert [(d["id"], d["method"]) for d in duplicates] == [("mine:5", "contamination")]
    m = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert m["inputs"][-1]["role"] == "against" and m["inputs"][-1]["questions"] == 1


def test_tables_gzip_and_several_files_in_one_source(tmp_path):
    import gzip

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.csv").write_text("问题,答案\n介绍一下长城。,长城是中国古代的军事防御工程。\n北京的简称是什么？,京。\n",
                                  encoding="utf-8")
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        for row in MINE[:3]:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    recipe = {"sources": [{"name": "mine", "files": [str(folder)]}], "dedupe": {"near": False}}
    for workers in (1, 2):
        m = build(parse_recipe(recipe), tmp_path / f"out{workers}", workers=workers)
        assert m["counts"]["per_source"]["mine"] == {"read": 5, "written": 5, "rejected": 0, "removed": 0}
        assert sorted(i["format"] for i in m["inputs"]) == ["alpaca", "alpaca"]
    ids = [r["id"] for r in read_lines(tmp_path / "out1" / "train.jsonl")]
    assert ids == ["mine/a:1", "mine/a:2", "mine/b:1", "mine/b:2", "mine/b:3"]
    assert (tmp_path / "out1" / "train.jsonl").read_bytes() == (tmp_path / "out2" / "train.jsonl").read_bytes()


def test_the_progress_estimate_is_close_for_json_lines_and_bounded_by_limits(tmp_path):
    from instruct_data.pipeline import estimate_rows

    mine = write_jsonl(tmp_path / "mine.jsonl", MINE * 50)
    assert abs(estimate_rows(parse_recipe({"sources": [{"files": [str(mine)]}]})) - 400) < 40
    assert estimate_rows(parse_recipe({"sources": [{"files": [str(mine)], "limit": 7}, {"belle": "1M", "cap": 5}]})) == 12
    (tmp_path / "array.json").write_text(json.dumps(MINE, ensure_ascii=False), encoding="utf-8")
    assert estimate_rows(parse_recipe({"sources": [{"files": [str(tmp_path / "array.json")]}]})) is None


def test_an_interrupted_build_leaves_no_half_written_output(tmp_path, mixed_recipe, monkeypatch):
    from instruct_data.pipeline import flow

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(flow, "write_outputs", interrupted)  # pass 2
    with pytest.raises(KeyboardInterrupt):
        build(parse_recipe(mixed_recipe), tmp_path / "out", workers=2)
    assert list(tmp_path.iterdir()) == [tmp_path / "mine.jsonl"]


def test_a_training_row_asking_a_heldout_question_is_removed_whatever_its_reply(tmp_path):
    rows = [{"instruction": f"请解释成语“{name}”的意思。", "input": "", "output": f"{name}：{meaning}"}
            for name, meaning in [("画蛇添足", "做了多余的事反而不好。"), ("守株待兔", "死守经验，不知变通。"),
                                  ("亡羊补牢", "出了问题及时补救。"), ("刻舟求剑", "不懂得事物在变化。")]]
    # The same four questions again, answered differently: not duplicates under the key "both".
    rows += [{**row, "output": "这个成语出自古代寓言故事，常用来比喻人的某种做法。" + row["output"][:2]} for row in rows]
    mine = write_jsonl(tmp_path / "twice.jsonl", rows)
    recipe = {"sources": [{"files": [str(mine)]}], "split": {"heldout": 2}, "dedupe": {"near": False}}
    m = build(parse_recipe(recipe), tmp_path / "out", workers=1)
    held = {r["context"] for r in read_lines(tmp_path / "out" / "heldout.jsonl")}
    train = [r["context"] for r in read_lines(tmp_path / "out" / "train.jsonl")]
    assert len(held) == 2 and not held & set(train)
    assert m["counts"]["duplicates_by_method"] == {"contamination": 2}
    duplicates = read_lines(tmp_path / "out" / "duplicates.jsonl")
    heldout_ids = {d["duplicate_of"] for d in duplicates}
    assert heldout_ids <= {f"twice:{i}" for i in range(1, 9)}


def test_an_output_folder_with_other_files_is_refused(tmp_path):
    from instruct_data.pipeline import BuildError

    mine = write_jsonl(tmp_path / "mine.jsonl", MINE)
    with pytest.raises(BuildError, match="no manifest.json"):
        build(parse_recipe({"sources": [{"files": [str(mine)]}]}), tmp_path, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.jsonl"]


def test_spooled_records_are_written_as_the_json_encoder_writes_them():
    from instruct_data.pipeline.worker import _dumps, _record_json

    tricky = "问题\t\"引号\"\\n\n\u2028\x1b😀\ud7ff"
    records = [{"context": tricky, "target": "回答", "id": "a:1", "source": "a", "category": "分类"},
               {"context": "x", "target": "y", "id": "b:2", "source": "b", "round": 2},
               {"context": "x", "target": None}, {"messages": [{"role": "user"}]}, {}]
    for record in records:
        assert _record_json(record) == _dumps(record)


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_workers_read_the_same_line_blocks_the_main_process_would_send(tmp_path, monkeypatch, block):
    from instruct_data import rowpath

    raw = "\ufeff{\"a\": 1}\r\n\r\n  \n行二\n{bad\n".encode("utf-8") + b"\xff\xfe\n" + "最后一行没有换行".encode("utf-8")
    path = tmp_path / "odd.jsonl"
    path.write_bytes(raw)
    spec = rowpath.FileSpec(str(path), "alpaca", json_lines=True)
    sent = list(rowpath._line_chunks(spec, None, block))
    read = [(c.first_line, rowpath.read_span(spec.path, *c.span)) for c in rowpath.file_chunks(spec, block_bytes=block)]
    assert read == [(first, lines) for first, lines, _ in sent]
    assert b"".join(line for _, lines in read for line in lines) == raw


def test_outputs_are_the_same_where_the_kernel_cannot_copy_file_ranges(tmp_path, monkeypatch, mixed_recipe):
    import os

    build(parse_recipe(mixed_recipe), tmp_path / "kernel", workers=1)

    def unsupported(*args, **kwargs):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    build(parse_recipe(mixed_recipe), tmp_path / "plain", workers=1)
    for name in ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl",
                 "duplicates.jsonl", "rejects.jsonl"):
        assert (tmp_path / "kernel" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    assert (tmp_path / "plain" / "train.jsonl").stat().st_size > 0


def test_a_build_that_leaves_nothing_to_train_on_says_so(tmp_path):
    """Every row rejected, removed or held out: the build succeeds (the ledger holds every row)
    but says train.jsonl is empty and why, where it printed 'train records: 0' among the figures."""
    src = tmp_path / "a.jsonl"
    src.write_text("".join(json.dumps({"instruction": "一加一等于几？", "output": "二。"}, ensure_ascii=False) + "\n"
                           for _ in range(3)), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(src), "--heldout", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "train.jsonl").read_bytes() == b""
    assert ("train.jsonl is empty: of 3 rows read, 0 were rejected, 2 removed as duplicates and 1 held out"
            in " ".join(result.output.split()))
    ok = CliRunner().invoke(cli, ["build", str(src), "--out", str(tmp_path / "kept")])
    assert ok.exit_code == 0 and "is empty" not in ok.output
