"""`idata to-multiturn` end to end: outputs, the ledger, errors, and the token budget."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.multiturn import MultiturnSettings, expand
from instruct_data.schema import Conversation


FIXTURES = Path(__file__).parent / "fixtures" / "dialogues"


def invoke(*args):
    return CliRunner().invoke(cli, ["to-multiturn", *map(str, args)])


def lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_writes_all_four_outputs_with_a_balanced_dialogue_ledger(tmp_path):
    out = tmp_path / "mt"
    result = invoke(FIXTURES / "belle_multiturn.jsonl", FIXTURES / "belle_conversations.jsonl", "--out", out,
                    "--template", "chatglm", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["conversations.jsonl", "duplicates.jsonl", "manifest.json",
                                                      "rejects.jsonl", "train.jsonl"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert json.loads(result.output) == manifest
    assert manifest["counts"]["per_source"] == {
        "belle_conversations": {"read": 3, "written": 2, "rejected": 1, "removed": 0},
        "belle_multiturn": {"read": 9, "written": 5, "rejected": 4, "removed": 0},
    }
    assert manifest["counts"]["balanced"] is True
    assert manifest["multiturn"] == {
        "mode": "every-turn", "rows_read": 12, "records_written": 13,
        "records_per_dialogue": {"1": 2, "2": 4, "3": 1},
        "history_rounds_dropped_by_limit": 0, "history_rounds_dropped_by_budget": 0}
    assert manifest["parameters"]["template"] == "chatglm" and manifest["parameters"]["mode"] == "every-turn"
    assert len(lines(out / "train.jsonl")) == 13
    assert len(lines(out / "rejects.jsonl")) == 5
    # conversations.jsonl: the canonical dialogues, which re-render to the same records
    conversations = [Conversation.model_validate(c) for c in lines(out / "conversations.jsonl")]
    assert len(conversations) == 7
    rerendered = [r for c in conversations for r in expand(c, "chatglm", MultiturnSettings())]
    assert rerendered == lines(out / "train.jsonl")


def test_record_ids_are_unique_and_stable_between_runs(tmp_path):
    for name in ("a", "b"):
        assert invoke(FIXTURES / "prompt_response.jsonl", FIXTURES / "messages.jsonl", "--out", tmp_path / name,
                      "--max-reject-rate", "1").exit_code == 0
    first, second = (tmp_path / "a" / "train.jsonl").read_bytes(), (tmp_path / "b" / "train.jsonl").read_bytes()
    assert first == second
    ids = [r["id"] for r in lines(tmp_path / "a" / "train.jsonl")]
    assert len(ids) == len(set(ids)) == 5


def test_summary_reports_records_per_dialogue_and_history_drops(tmp_path):
    result = invoke(FIXTURES / "prompt_response.jsonl", "--out", tmp_path / "mt", "--max-history-turns", "1")
    assert result.exit_code == 0, result.output
    assert "3 records from 1 dialogues" in result.output
    assert "records per dialogue  3: 1" in result.output
    assert "1 by --max-history-turns" in result.output
    record = lines(tmp_path / "mt" / "train.jsonl")[2]
    assert record["context"] == "Instruction: 还有呢？\nAnswer: 第二，睡前少看手机。\nInstruction: 第三条呢？\nAnswer: "


def test_char_budget_drops_history_inclusively_and_rejects_what_cannot_fit(tmp_path):
    result = invoke(FIXTURES / "belle_conversations.jsonl", "--out", tmp_path / "a", "--max-context-chars", "42",
                    "--max-reject-rate", "1", "--json")
    assert result.exit_code == 0, result.output
    records = {r["id"]: r for r in lines(tmp_path / "a" / "train.jsonl")}
    assert all(len(r["context"]) + len(r["target"]) <= 42 for r in records.values())
    first = records["belle_conversations:1#t1"]
    assert len(first["context"]) + len(first["target"]) == 42  # exactly the budget fits
    assert records["belle_conversations:2#t3"]["context"] == "Instruction: 哪个更好？\nAnswer: "
    assert json.loads(result.output)["multiturn"]["history_rounds_dropped_by_budget"] == 3

    result = invoke(FIXTURES / "belle_conversations.jsonl", "--out", tmp_path / "b", "--max-context-chars", "41",
                    "--mode", "last-turn", "--max-reject-rate", "1", "--json")
    assert result.exit_code == 0, result.output
    over = [r for r in lines(tmp_path / "b" / "rejects.jsonl") if r["reason"] == "over_budget"]
    assert [(r["stage"], r["id"]) for r in over] == [("multiturn", "belle_conversations:1")]
    assert over[0]["detail"] == "round 1: the question and its reply alone are 42 chars, over the budget of 41"
    assert json.loads(result.output)["counts"]["totals"] == {"read": 3, "written": 1, "rejected": 2, "removed": 0}


def test_order_by_needs_group_by_and_budgets_are_exclusive(tmp_path):
    result = invoke(FIXTURES / "grouped.jsonl", "--out", tmp_path / "x", "--order-by", "turn")
    assert result.exit_code == 2 and "--order-by needs --group-by" in result.output
    result = invoke(FIXTURES / "grouped.jsonl", "--out", tmp_path / "x", "--max-context-tokens", "10")
    assert result.exit_code == 2 and "--max-context-tokens needs a --tokenizer" in result.output
    result = invoke(FIXTURES / "grouped.jsonl", "--out", tmp_path / "x", "--max-context-chars", "10",
                    "--max-context-tokens", "10", "--tokenizer", "x")
    assert result.exit_code == 2 and "not both" in result.output
    assert not (tmp_path / "x").exists()


def test_a_group_or_order_column_the_file_lacks_is_an_error_naming_its_columns(tmp_path):
    """`--group-by 会话ID` on a file whose column is `会话` grouped nothing, in silence."""
    sheet = tmp_path / "d.csv"
    sheet.write_text("会话,轮次,问题,答案\n1,1,你好,你好！\n1,2,天气如何,晴天。\n", encoding="utf-8")
    result = invoke(sheet, "--out", tmp_path / "x", "--group-by", "会话ID")
    assert result.exit_code == 2
    assert "d.csv:1: --group-by 会话ID: no such column in this file (its columns: 会话, 轮次, 问题, 答案)" in result.output
    result = invoke(sheet, "--out", tmp_path / "x", "--group-by", "会话", "--order-by", "轮")
    assert result.exit_code == 2 and "--order-by 轮: no such column" in result.output
    assert not (tmp_path / "x").exists()
    result = invoke(sheet, "--out", tmp_path / "y", "--group-by", "会话", "--order-by", "轮次")
    assert result.exit_code == 0, result.output
    assert [r["target"] for r in lines(tmp_path / "y" / "train.jsonl")] == ["你好！", "晴天。"]


def test_strict_fails_on_the_first_bad_dialogue_with_file_and_line_and_writes_nothing(tmp_path):
    out = tmp_path / "mt"
    result = invoke(FIXTURES / "belle_multiturn.jsonl", "--out", out, "--strict")
    assert result.exit_code == 3
    assert "belle_multiturn.jsonl:6: bad_transcript: turns 1 and 2 are both 'Human:'" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_too_many_rejects_fails_and_leaves_no_outputs(tmp_path):
    out = tmp_path / "mt"
    result = invoke(FIXTURES / "belle_conversations.jsonl", "--out", out, "--max-context-chars", "20")
    assert result.exit_code == 3
    assert "rejected" in result.output and "--max-reject-rate" in result.output
    assert not out.exists() or not any(out.iterdir())


def test_missing_input_is_one_line_error(tmp_path):
    result = invoke(tmp_path / "nope.jsonl", "--out", tmp_path / "mt")
    assert result.exit_code == 2
    assert "nope.jsonl: no such file" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["to-multiturn", "--help"])
    assert result.exit_code == 0
    assert "idata to-multiturn multiturn_chat_0.8M.json --out mt" in result.output


@pytest.fixture(scope="module")
def tiny_tokenizer_dir(tmp_path_factory):
    from instruct_data.training.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"), arch="llama")


def test_token_budget_keeps_the_longest_recent_history_that_fits(tmp_path, tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)

    def n_tokens(text):
        return len(tokenizer.encode(text, add_special_tokens=False))

    row = lines(FIXTURES / "prompt_response.jsonl")[0]
    pairs = [*row["history"], [row["prompt"], row["response"]]]
    result = invoke(FIXTURES / "prompt_response.jsonl", "--out", tmp_path / "all", "--template", "belle",
                    "--mode", "last-turn", "--json")
    whole = lines(tmp_path / "all" / "train.jsonl")[0]
    whole_tokens = n_tokens(whole["context"]) + n_tokens(whole["target"])
    budget = whole_tokens - 1  # one token short: the oldest round must go
    result = invoke(FIXTURES / "prompt_response.jsonl", "--out", tmp_path / "cut", "--template", "belle",
                    "--mode", "last-turn", "--max-context-tokens", budget, "--tokenizer", tiny_tokenizer_dir,
                    "--json")
    assert result.exit_code == 0, result.output
    record = lines(tmp_path / "cut" / "train.jsonl")[0]
    assert n_tokens(record["context"]) + n_tokens(record["target"]) <= budget
    assert record["context"] == (f"Human: \n{pairs[1][0]}\n\nAssistant: \n{pairs[1][1]}\n\n"
                                 f"Human: \n{pairs[2][0]}\n\nAssistant: \n")
    manifest = json.loads(result.output)
    assert manifest["multiturn"]["history_rounds_dropped_by_budget"] == 1
    assert manifest["parameters"]["tokenizer"] == str(tiny_tokenizer_dir)


def test_a_tokenizer_that_cannot_load_fails_before_writing(tmp_path):
    result = invoke(FIXTURES / "messages.jsonl", "--out", tmp_path / "mt", "--max-context-tokens", "100",
                    "--tokenizer", tmp_path / "no-model")
    assert result.exit_code == 2
    assert "no-model: no such tokenizer folder" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke(FIXTURES / "messages.jsonl", "--out", tmp_path / "mt", "--max-context-tokens", "100",
                    "--tokenizer", tmp_path / "empty")
    assert result.exit_code == 2
    assert "empty: cannot load the tokenizer" in result.output
    assert not (tmp_path / "mt").exists()


def test_the_readme_worked_example(tmp_path):
    row = {"instruction": "Human:请根据题材「健身房」写一句广告语。\nAssistant:流汗的每一分钟，都在塑造更好的你。\n"
                          "Human:再写一句，要押韵。\nAssistant:", "input": "", "output": "今天多练一组，明天自信一筹。"}
    (tmp_path / "multiturn.json").write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    assert invoke(tmp_path / "multiturn.json", "--out", tmp_path / "mt", "--template", "chatglm").exit_code == 0
    assert [(r["context"], r["id"]) for r in lines(tmp_path / "mt" / "train.jsonl")] == [
        ("[Round 1]\n问：请根据题材「健身房」写一句广告语。\n答：", "multiturn:1#t1"),
        ("[Round 1]\n问：请根据题材「健身房」写一句广告语。\n答：流汗的每一分钟，都在塑造更好的你。\n"
         "[Round 2]\n问：再写一句，要押韵。\n答：", "multiturn:1#t2")]
    assert invoke(tmp_path / "multiturn.json", "--out", tmp_path / "mt2", "--template", "chatglm", "--mode",
                  "last-turn", "--max-context-chars", "40").exit_code == 0
    assert lines(tmp_path / "mt2" / "train.jsonl")[0]["context"] == "[Round 1]\n问：再写一句，要押韵。\n答："


def test_token_budget_in_worker_processes_matches_one_process(tmp_path, tiny_tokenizer_dir, monkeypatch):
    from instruct_data.multiturn import run as run_module

    monkeypatch.setattr(run_module, "CHUNK_BYTES", 50)
    monkeypatch.setattr(run_module, "SERIAL_BELOW_BYTES", 0)
    args = [FIXTURES / "belle_conversations.jsonl", "--max-context-tokens", 70, "--tokenizer", tiny_tokenizer_dir,
            "--max-reject-rate", 1]
    assert invoke(*args, "--out", tmp_path / "one", "--workers", 1).exit_code == 0
    assert invoke(*args, "--out", tmp_path / "two", "--workers", 2).exit_code == 0
    for name in ("train.jsonl", "rejects.jsonl", "conversations.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["multiturn"]["history_rounds_dropped_by_budget"] > 0  # the budget did cut history
    assert manifest["multiturn"]["records_written"] > 0


def test_system_and_forced_format_reach_the_records(tmp_path):
    result = invoke(FIXTURES / "messages.jsonl", "--out", tmp_path / "mt", "--template", "chatml", "--mode", "last-turn",
                    "--system", "你是历史老师。", "--format", "messages")
    assert result.exit_code == 0, result.output
    record = lines(tmp_path / "mt" / "train.jsonl")[0]
    assert record["context"].startswith("<|im_start|>system\n你是历史老师。<|im_end|>\n<|im_start|>user\n长城有多长？")
    manifest = json.loads((tmp_path / "mt" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["parameters"]["system"] == "你是历史老师。" and manifest["inputs"][0]["format"] == "messages"
    result = invoke(FIXTURES / "messages.jsonl", "--out", tmp_path / "bad", "--format", "nope")
    assert result.exit_code == 2 and "unknown format 'nope'" in result.output
