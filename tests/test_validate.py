"""`idata validate`: planted bad rows reported with their line numbers; exit 0 / 1 / 2; --json."""

import json

from click.testing import CliRunner

from instruct_data.cli import cli
from instruct_data.validate import validate_file

GOOD = '{"instruction": "说出一种水果。", "input": "", "output": "苹果。"}'
PLANTED = {
    3: ('{"instruction": "说出一种颜色。", "input": "", "output": ""}', "empty_reply", "'output' is empty"),
    6: ('{"instruction": "说出一种动物。", "input": ""}', "missing_field", "no 'output' field"),
    8: ('{"instruction": "说出一种花", "output": ', "unparseable", "invalid JSON"),
    9: ('{"instruction": ["一", "二"], "output": "三"}', "wrong_type", "'instruction' should be text, got list"),
}


def planted_file(tmp_path):
    lines = [PLANTED[n][0] if n in PLANTED else GOOD for n in range(1, 11)]
    lines[4] = ""  # a blank line is not a row, and does not shift the numbering
    path = tmp_path / "planted.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["validate", *map(str, args)])


def test_each_planted_bad_row_is_reported_with_its_line(tmp_path):
    path = planted_file(tmp_path)
    result = invoke(path)
    assert result.exit_code == 1
    for line, (_, reason, detail) in PLANTED.items():
        assert f"{path}:{line}: {reason}: {detail}" in result.output, result.output
    assert "9 rows, 5 valid, 4 invalid" in result.output


def test_json_summary(tmp_path):
    path = planted_file(tmp_path)
    result = invoke(path, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and summary["rows"] == 9 and summary["invalid"] == 4
    report, = summary["files"]
    assert report["format"] == "alpaca" and report["valid"] == 5
    assert report["invalid_by_reason"] == {"empty_reply": 1, "missing_field": 1, "unparseable": 1, "wrong_type": 1}
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [(n, PLANTED[n][1]) for n in sorted(PLANTED)]


def test_max_errors_limits_the_list_not_the_counts(tmp_path):
    report = validate_file(str(planted_file(tmp_path)), max_errors=2)
    assert report.invalid == 4 and len(report.errors) == 2


def test_all_valid_is_exit_0_and_output_files_validate(tmp_path):
    src = tmp_path / "ok.jsonl"
    src.write_text(GOOD + "\n" + GOOD, encoding="utf-8")
    result = invoke(src)
    assert result.exit_code == 0 and "2 rows, 2 valid, 0 invalid" in result.output
    out = tmp_path / "train.jsonl"
    assert CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)]).exit_code == 0
    result = invoke(out, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["files"][0]["format"] == "context_target"


def test_unreadable_files_are_exit_2(tmp_path):
    missing = tmp_path / "missing.jsonl"
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b"\x80\x81garbage\n")
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"x": 1}\n', encoding="utf-8")
    result = invoke(missing, garbage, odd)
    assert result.exit_code == 2
    assert f"{missing}: no such file or folder" in result.output
    assert f"{garbage}:1: nothing in this file parses: undecodable bytes" in result.output
    assert f"{odd}:1: unknown format" in result.output
    assert invoke(odd, "--format", "nonsense").exit_code == 2


def test_format_and_map_options(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("q,a\n一周有几天？,七天。\n一年有几个月？,\n", encoding="utf-8")
    result = invoke(path, "--map", "instruction=q,output=a", "--json")
    report = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 1 and report["map"] == {"instruction": "q", "output": "a"}
    assert report["errors"][0]["where"] == f"{path}:row 2" and report["errors"][0]["row"] == 2


def test_bundled_sample_is_detectable_varied_and_noisy_as_documented():
    import re
    from collections import Counter

    from instruct_data.demo import sample_dir
    from instruct_data.formats import read_conversations
    from instruct_data.table import Reject

    folder = sample_dir()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 300_000
    formats, categories, reasons, replies, rounds = {}, Counter(), Counter(), Counter(), Counter()
    for path in sorted(folder.iterdir()):
        if path.suffix == ".md":
            continue
        formats[path.name], stream = read_conversations(str(path), source=path.stem)  # auto-detected
        for _, result in stream:
            if isinstance(result, Reject):
                reasons[result.reason] += 1
                continue
            categories[result.category] += 1
            replies[re.sub(r"[\W_]+", "", result.prompt.full_text + result.reply)] += 1
            rounds[min(result.n_rounds, 2)] += 1
    assert formats == {"chat_transcripts.json": "belle", "collected.jsonl": "alpaca", "dialogues.jsonl": "messages",
                       "faq_sheet.csv": "alpaca", "qa_pairs.json": "prompt_response"}
    assert sum(categories.values()) + sum(reasons.values()) >= 250
    assert set(categories) == {"open qa", "brainstorming", "rewrite", "generation", "math", "classification",
                               "closed qa", "summarization", "code", "extract"}
    assert min(categories.values()) >= 10
    assert reasons == {"empty_reply": 5}  # the planted blank answers (see the sample README)
    assert sum(n - 1 for n in replies.values() if n > 1) >= 4  # planted duplicates (exact, or punctuation apart)
    assert rounds[2] >= 15  # multi-turn dialogues and rows with history
    text = "".join(p.read_text(encoding="utf-8") for p in folder.iterdir())
    assert "作为一个AI" in text and "為什麼" in text  # AI boilerplate and Traditional Chinese rows
