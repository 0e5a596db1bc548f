"""Multiple-choice knowledge benchmarks: readers for C-Eval/CMMLU layouts, option log-likelihoods
checked item by item against a direct transformers computation, base versus tuned."""

import json
import zipfile
from pathlib import Path

import pytest

from instruct_data.errors import InputError
from instruct_data.evaluation.choices import LETTERS, is_multiple_choice, load_choices, subject_of
from instruct_data.templates import get_template

CEVAL_HEADER = "id,question,A,B,C,D,answer,explanation\n"
CMMLU_HEADER = ",Question,A,B,C,D,Answer\n"


def _ceval_zip(path: Path) -> Path:
    """C-Eval's ceval-exam.zip layout: dev/val/test folders of {subject}_{split}.csv; test has no answers."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("dev/computer_network_dev.csv", CEVAL_HEADER + '0,"TCP 属于哪一层？",应用层,传输层,网络层,物理层,B,"TCP 是传输层协议。"\n')
        archive.writestr("val/computer_network_val.csv", CEVAL_HEADER
                         + '0,"HTTP 默认端口是____",21,22,80,443,C,\n'
                         + '1,"IPv4 地址有多少位？",16,32,64,128,B,\n')
        archive.writestr("val/college_physics_val.csv", CEVAL_HEADER
                         + '0,"力的单位是____",焦耳,瓦特,牛顿,帕斯卡,C,\n'
                         + '1,"这一行的答案不是字母",甲,乙,丙,丁,E,\n')
        archive.writestr("test/college_physics_test.csv", CEVAL_HEADER + '0,"无答案",甲,乙,丙,丁,,\n')
    return path


def _cmmlu_folder(root: Path) -> Path:
    """CMMLU's zip unpacked: dev/ and test/ folders of {subject}.csv with an unnamed index column."""
    (root / "dev").mkdir(parents=True)
    (root / "test").mkdir()
    (root / "dev" / "agronomy.csv").write_text(CMMLU_HEADER + '0,水稻属于哪一类作物？,粮食作物,油料作物,纤维作物,糖料作物,A\n', encoding="utf-8")
    (root / "test" / "agronomy.csv").write_text(CMMLU_HEADER + '0,小麦主要种植在哪里？,北方,海上,沙漠,冰川,A\n'
                                                 '1,"选项里有 ""NA""",NA,None,null,N/A,D\n', encoding="utf-8")
    (root / "test" / "anatomy.csv").write_text(CMMLU_HEADER + '0,人体最大的器官是？,肝脏,心脏,皮肤,大脑,C\n', encoding="utf-8")
    return root


def test_ceval_zip_layout_reads_val_with_dev_shots_and_rejects_bad_answers(tmp_path):
    path = _ceval_zip(tmp_path / "ceval-exam.zip")
    assert is_multiple_choice(path)
    data = load_choices(path)
    assert data.split == "val"
    assert sorted({i.subject for i in data.items}) == ["college_physics", "computer_network"]
    assert len(data.items) == 3 and len({i.id for i in data.items}) == 3  # ids 0, 1 repeat across subjects
    assert [r["reason"] for r in data.rejected] == ["bad_answer"]
    assert "college_physics_val.csv:row 2" in data.rejected[0]["origin"]
    assert [d.answer for d in data.dev["computer_network"]] == ["B"]


def test_cmmlu_layout_keeps_na_like_options_as_text(tmp_path):
    data = load_choices(_cmmlu_folder(tmp_path / "cmmlu"))
    assert data.split == "test"
    odd = next(i for i in data.items if "NA" in i.question)
    assert odd.options == {"A": "NA", "B": "None", "C": "null", "D": "N/A"} and odd.answer == "D"
    assert {i.subject for i in data.items} == {"agronomy", "anatomy"}
    assert "agronomy" in data.dev


def test_hub_parquet_layout_and_a_broken_json_line_is_one_reject(tmp_path):
    import pandas as pd

    row = {"id": 0, "question": "力的单位是____", "A": "焦耳", "B": "瓦特", "C": "牛顿", "D": "帕斯卡", "answer": "C",
           "explanation": ""}
    for split in ("dev", "val", "test"):
        (tmp_path / "ceval" / "college_physics").mkdir(parents=True, exist_ok=True)
        pd.DataFrame([row]).to_parquet(tmp_path / "ceval" / "college_physics" / f"{split}-00000-of-00001.parquet")
    data = load_choices(tmp_path / "ceval")
    assert data.split == "val" and [i.subject for i in data.items] == ["college_physics"] and data.dev
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(json.dumps({**row, "subject": "物理"}, ensure_ascii=False) + "\n{broken\n", encoding="utf-8")
    data = load_choices(mixed)
    assert len(data.items) == 1 and data.rejected[0]["origin"].endswith("mixed.jsonl:2")
    assert data.rejected[0]["reason"] == "unparseable"


def test_subject_comes_from_the_file_name_in_every_layout():
    assert subject_of("val/accountant_val.csv") == "accountant"
    assert subject_of("test/agronomy.csv") == "agronomy"
    assert subject_of("accountant/val-00000-of-00001.parquet") == "accountant"


def test_a_table_without_the_columns_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("q,a\n1,2\n", encoding="utf-8")
    assert not is_multiple_choice(bad)
    with pytest.raises(InputError, match="bad.csv: not a multiple-choice table"):
        load_choices(bad)


def test_the_shipped_set_has_100_items_over_ten_subjects_and_dev_shots():
    from instruct_data.evaluation.benchmarks import data_dir, registry

    entry = registry()["idata-zh-mc"]
    data = load_choices(data_dir() / entry["file"], dev_path=data_dir() / entry["dev_file"])
    assert len(data.items) >= 100 and not data.rejected
    assert len({i.subject for i in data.items}) == 10
    assert all(len(data.dev[s]) >= 2 for s in {i.subject for i in data.items})
    from instruct_data.io import file_sha256

    assert file_sha256(data_dir() / entry["file"]) == entry["sha256"]


def test_prompts_name_the_subject_in_chinese_with_each_benchmarks_own_header(tmp_path):
    from instruct_data.evaluation.choices import load_choice_benchmark
    from instruct_data.evaluation.multiple_choice import build_prompt

    info, ceval = load_choice_benchmark(str(_ceval_zip(tmp_path / "ceval-exam.zip")))
    assert info["prompt_style"] == ceval.style == "ceval"
    item = next(i for i in ceval.items if i.subject == "computer_network")
    shots = ceval.dev["computer_network"]
    assert build_prompt(item, None, shots, ceval.style) == (
        "以下是中国关于计算机网络的单项选择题，请选出其中的正确答案。\n\n"
        "TCP 属于哪一层？\nA. 应用层\nB. 传输层\nC. 网络层\nD. 物理层\n答案： B\n\n"
        "HTTP 默认端口是____\nA. 21\nB. 22\nC. 80\nD. 443\n答案：")  # lm-eval's ceval-valid text, one shot
    _, cmmlu = load_choice_benchmark(str(_cmmlu_folder(tmp_path / "cmmlu")))
    assert cmmlu.style == "cmmlu"
    item = next(i for i in cmmlu.items if i.subject == "anatomy")
    assert build_prompt(item, None, [], cmmlu.style).startswith("以下是关于解剖学的单项选择题，请直接给出正确答案的选项。\n\n")
    assert "chinese history" not in build_prompt(
        type(item)(id="x", subject="chinese_history", question="q", options=item.options, answer="A"), None, [])
    _, shipped = load_choice_benchmark("idata-zh-mc", per_category=1)
    assert build_prompt(shipped.items[0], None, []).startswith(f"以下是关于{shipped.items[0].subject}的单项选择题")


def test_the_trailing_space_of_a_prompt_is_scored_with_the_letter_as_lm_eval_does():
    """Issue 24: after `Answer: ` the letter was scored as a lone space token, then `A`; lm-eval scores `ĠA`."""
    from instruct_data.evaluation.multiple_choice import encode_pairs
    from instruct_data.training.tiny import DEFAULT_TEXT, train_tokenizer

    tokenizer = train_tokenizer(DEFAULT_TEXT + ["Answer: A\nAnswer: B\nAnswer: C\nAnswer: D\n"] * 20, vocab_size=600)
    assert tokenizer.convert_ids_to_tokens(tokenizer(" A", add_special_tokens=False)["input_ids"]) == ["ĠA"]
    context = "Instruction: 北京是哪个国家的首都？\nAnswer: "
    [(ids, n)] = encode_pairs(tokenizer, [(context, "A")])
    assert tokenizer.convert_ids_to_tokens(ids[-n:]) == ["ĠA"]
    assert ids[:-n] == tokenizer(context.rstrip(), add_special_tokens=False)["input_ids"]


def test_the_shipped_answers_follow_no_pattern_and_the_longest_option_is_right_about_a_quarter_of_the_time():
    """Issue 24: answers cycled within a subject (ACBDACBDBC). tools/shuffle_mc.py (seeded) wrote the files."""
    import subprocess
    import sys
    from collections import Counter

    from instruct_data.evaluation.benchmarks import data_dir

    root = Path(__file__).resolve().parents[1]
    check = subprocess.run([sys.executable, str(root / "tools" / "shuffle_mc.py"), "--check"], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr  # the shipped files are exactly the script's output
    items = load_choices(data_dir() / "idata-zh-mc.jsonl").items
    for subject in {i.subject for i in items}:
        answers = "".join(i.answer for i in items if i.subject == subject)
        assert sorted(Counter(answers).values()) == [2, 2, 3, 3], (subject, answers)
        assert not any(answers[k:k + 4] == answers[k + 4:k + 8] for k in range(len(answers) - 7)), (subject, answers)
    longest = sum(max(LETTERS, key=lambda x: (len(i.options[x]), -LETTERS.index(x))) == i.answer for i in items)
    assert 20 <= longest <= 30


# ---------------------------------------------------------------- scoring with a tiny model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model folder, adapter folder): a tiny Llama and a LoRA adapter whose weights are not zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from instruct_data.training.tiny import make_tiny_model

    root = tmp_path_factory.mktemp("tiny-mc")
    model_dir = make_tiny_model(root / "model", "llama", init_std=0.2)
    torch.manual_seed(2)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir),
                          LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter = root / "adapter"
    lora.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(adapter)
    return model_dir, adapter


def _direct_logliks(model, tokenizer, prompt, continuations):
    """Each option's summed log-probability, one unpadded sequence at a time, straight from the logits."""
    import torch

    out = []
    for cont in continuations:
        spaces = len(prompt) - len(prompt.rstrip())  # lm-eval: the context's trailing space is the option's
        ctx, cont = (prompt[:-spaces], prompt[-spaces:] + cont) if spaces else (prompt, cont)
        context = tokenizer(ctx)["input_ids"]
        cont_ids = tokenizer(ctx + cont)["input_ids"][len(context):]
        ids = torch.tensor([context + cont_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        out.append(sum(float(logprobs[len(context) - 1 + j, token]) for j, token in enumerate(cont_ids)))
    return out


@pytest.mark.parametrize("choice_format,template", [("letter", "seed"), ("text", "seed"), ("letter", None),
                                                     ("text", None)])
def test_batched_option_logliks_equal_a_direct_transformers_computation_item_by_item(tiny, choice_format, template):
    from instruct_data.evaluation.choices import load_choice_benchmark
    from instruct_data.evaluation.generation import load_model
    from instruct_data.evaluation.multiple_choice import ChoiceRun, continuations, evaluate_choices

    model_dir, adapter = tiny
    model, tokenizer = load_model(str(model_dir), str(adapter))
    _, data = load_choice_benchmark("idata-zh-mc", per_category=1)
    run = ChoiceRun(template=get_template(template) if template else None, choice_format=choice_format, shots=1,
                    batch_size=7, compare_base=True)
    rows, summary = evaluate_choices(model, tokenizer, data, run)
    assert len(rows) == 10
    delimiter = "" if template else " "  # lm-eval's target delimiter before each option of a plain prompt
    with model.disable_adapter():
        base_direct = [_direct_logliks(model, tokenizer, row["prompt"], continuations(item, choice_format, delimiter))
                       for row, item in zip(rows, data.items)]
    tuned_direct = [_direct_logliks(model, tokenizer, row["prompt"], continuations(item, choice_format, delimiter))
                    for row, item in zip(rows, data.items)]
    for row, item, tuned, base in zip(rows, data.items, tuned_direct, base_direct):
        assert list(row["logliks"].values()) == pytest.approx(tuned, abs=2e-4), item.id
        assert list(row["base_logliks"].values()) == pytest.approx(base, abs=2e-4), item.id
        best = "ABCD"[max(range(4), key=lambda i: tuned[i])]
        assert row["pick"] == best and row["correct"] == (best == item.answer)
        lengths = [len(c) for c in continuations(item, choice_format)]  # lm-eval's acc_norm: without the delimiter
        assert row["pick_norm"] == "ABCD"[max(range(4), key=lambda i: tuned[i] / lengths[i])]
    assert tuned_direct != base_direct  # the adapter changes the scores: the base pass really ran without it
    accuracy = summary["model"]["accuracy"]["overall"]["mean"]
    assert accuracy == pytest.approx(100 * sum(r["correct"] for r in rows) / len(rows))
    assert set(summary["delta"]["accuracy"]) == {"overall", *{i.subject for i in data.items}}
    # one shot from the dev split of the same subject sits before the question, as an earlier round
    assert data.dev[data.items[0].subject][0].question in rows[0]["prompt"]


# ---------------------------------------------------------------- hub layout, offline


def test_ceval_and_cmmlu_load_through_the_hub_code_path_from_the_hf_cache(tmp_path, monkeypatch):
    """hf_hub_download at the pinned revision, offline, finds the file where the hub cache keeps it."""
    import huggingface_hub.constants as hf_constants

    from instruct_data.evaluation import benchmarks
    from instruct_data.evaluation.choices import load_choice_benchmark
    from instruct_data.io import file_sha256

    cache = tmp_path / "hf"
    entries = benchmarks.registry()
    for name in ("ceval", "cmmlu"):
        hub = entries[name]["hub"]
        snapshot = cache / f"datasets--{hub['repo'].replace('/', '--')}" / "snapshots" / hub["revision"]
        snapshot.mkdir(parents=True)
        if name == "ceval":
            _ceval_zip(snapshot / hub["file"])
        else:
            folder = _cmmlu_folder(tmp_path / "cmmlu-unpacked")
            with zipfile.ZipFile(snapshot / hub["file"], "w") as archive:
                for file in folder.rglob("*.csv"):
                    archive.write(file, f"cmmlu_v1_0_1/{file.relative_to(folder)}")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    info, data = load_choice_benchmark("ceval")
    assert info["split"] == "val" and len(data.items) == 3 and info["hub"]["repo"] == "ceval/ceval-exam"
    assert info["registry_sha256"] is None and len(info["sha256"]) == 64  # recorded, to pin on first online use
    info, data = load_choice_benchmark("cmmlu")
    assert info["split"] == "test" and {i.subject for i in data.items} == {"agronomy", "anatomy"}
    # a pinned sha256 that does not match is refused
    pinned = {**entries, "cmmlu": {**entries["cmmlu"], "sha256": "0" * 64}}
    monkeypatch.setattr(benchmarks, "registry", lambda: pinned)
    with pytest.raises(benchmarks.BenchmarkError, match="has sha256 .* expected 0000"):
        load_choice_benchmark("cmmlu")
    pinned["cmmlu"]["sha256"] = file_sha256(info["path"])
    assert load_choice_benchmark("cmmlu")[0]["sha256_matches_registry"]


def test_not_in_the_cache_and_offline_says_to_use_from(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    from instruct_data.evaluation.benchmarks import BenchmarkError
    from instruct_data.evaluation.choices import load_choice_benchmark

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(BenchmarkError, match="ceval: offline .* pass --from PATH"):
        load_choice_benchmark("ceval")
    info, data = load_choice_benchmark("ceval", str(_ceval_zip(tmp_path / "ceval-exam.zip")))
    assert len(data.items) == 3


def test_forgot_marks_a_subject_whose_whole_interval_is_below_zero():
    from instruct_data.cli.eval_cmd import got_worse
    from instruct_data.evaluation.multiple_choice import ChoiceRun, summarize_choices

    rows = [{"subject": "物理", "correct": False, "correct_norm": False, "base_correct": True, "base_correct_norm": True}
            for _ in range(12)]
    rows += [{"subject": "历史", "correct": i % 2 == 0, "correct_norm": True, "base_correct": i % 3 == 0,
              "base_correct_norm": True} for i in range(12)]
    rows += [{"subject": "化学", "correct": False, "correct_norm": False, "base_correct": True, "base_correct_norm": True}]
    summary = summarize_choices(rows, ChoiceRun(template=get_template("seed"), compare_base=True))
    assert summary["forgot_subjects"] == ["物理"]  # 化学 dropped too, but on one item there is no telling
    assert summary["delta"]["accuracy"]["物理"]["mean"] == -100.0
    assert summary["model"]["accuracy"]["历史"]["mean"] == 50.0 and summary["base"]["accuracy"]["历史"]["mean"] == pytest.approx(100 / 3, abs=1e-3)
    assert got_worse({"knowledge": {"x": {"summary": summary}}})


# ---------------------------------------------------------------- the whole run


from test_eval_judge import FakeJudge, server  # noqa: E402,F401  (the local judge server fixture)


def test_eval_with_knowledge_and_judge_writes_the_help_or_hurt_section_and_reruns_from_the_cache(tiny, server, tmp_path):
    from instruct_data.evaluation import EvalConfig, evaluate
    from instruct_data.evaluation.judge import JudgeConfig

    model_dir, adapter = tiny
    judge = JudgeConfig(url=server, model="judge-7b", cache_path=str(tmp_path / "judge.sqlite"), timeout_s=5, retries=1,
                        backoff_s=0.01)
    config = EvalConfig(model=str(model_dir), adapter=str(adapter), benchmark=["idata-zh-mini", "idata-zh-mc"],
                        out=str(tmp_path / "out"), compare_base=True, max_new_tokens=6, per_category=1, judge=judge,
                        resamples=200)
    results = evaluate(config)
    knowledge = results["knowledge"]["idata-zh-mc"]
    assert knowledge["benchmark"]["items"] == 10 and knowledge["benchmark"]["subjects"] == 10
    assert set(knowledge["summary"]) >= {"model", "base", "delta", "forgot_subjects"}
    lines = (tmp_path / "out" / "knowledge-idata-zh-mc.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10 and {"pick", "base_pick", "logliks"} <= set(json.loads(lines[0]))
    judged = results["judge"]
    assert judged["counts"]["items"] == 20 and judged["counts"]["asked"] + judged["counts"]["empty"] == 20
    overall = results["metrics"]["model"]["overall"]["metrics"]
    assert {"rougeL_char", "judge"} <= set(overall) and "judge" in results["metrics"]["delta"]["overall"]
    assert all(r["question"] in r["prompt"] for r in map(json.loads, (tmp_path / "out" / "predictions.jsonl").open()))
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert report.index("## Did tuning help or hurt?") < report.index("## Reference scores") < report.index("## Knowledge: idata-zh-mc")
    section = report.split("## Did tuning help or hurt?")[1].split("## Reference scores")[0]
    for measure in ("reference: ROUGE-L (char)", "judge score", "knowledge: accuracy (0-shot)", "**Forgot**"):
        assert measure in section
    assert "## Judge" in report
    asked = len(FakeJudge.requests)
    assert asked == judged["counts"]["asked"]
    again = evaluate(config)
    assert len(FakeJudge.requests) == asked and again["judge"]["counts"]["asked"] == 0  # all from the cache
    assert again["judge"]["model"] == judged["model"]


def test_a_judge_that_scores_nothing_fails_the_run_with_exit_6(tiny, tmp_path, monkeypatch):
    import socket

    from click.testing import CliRunner

    from instruct_data.cli import cli

    with socket.socket() as probe:  # a port nothing listens on: every request is refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    monkeypatch.setenv("IDATA_CACHE", str(tmp_path / "cache"))
    model_dir, adapter = tiny
    out = tmp_path / "judged"
    result = CliRunner().invoke(cli, ["eval", "-m", str(model_dir), "-b", "idata-zh-mini", "--per-category", "1",
                                       "--max-new-tokens", "4", "--judge-url", dead, "--judge-model", "m",
                                       "--judge-retries", "0", "--judge-timeout", "2", "-o", str(out)])
    counts = json.loads((out / "results.json").read_text(encoding="utf-8"))["judge"]["counts"]
    assert counts["failed"] == counts["items"] - counts["empty"] > 0 and counts["ok"] == 0
    assert result.exit_code == 6, result.output
    assert "the judge scored no answer" in result.output
    assert (out / "report.md").is_file()  # the outputs are written; the failures are listed there


def test_cli_knowledge_only_run(tiny, tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    model_dir, adapter = tiny
    out = tmp_path / "k"
    result = CliRunner().invoke(cli, ["eval", "-m", str(model_dir), "-a", str(adapter), "--compare-base",
                                       "-b", "idata-zh-mc", "--shots", "2", "--per-category", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "knowledge idata-zh-mc (10 items, 2-shot) accuracy: tuned" in result.output
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert "metrics" not in results and not (out / "predictions.jsonl").exists()
    assert "## Did tuning help or hurt?" in (out / "report.md").read_text(encoding="utf-8")
    bad = CliRunner().invoke(cli, ["eval", "-m", str(model_dir), "-b", "idata-zh-mc", "-b", "idata-zh-mini",
                                    "-b", "belle-eval", "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "one generated benchmark per run" in str(bad.exception)


def test_out_of_memory_while_scoring_says_to_lower_the_batch_size():
    import torch

    from instruct_data.evaluation.generation import OutOfMemory
    from instruct_data.evaluation.multiple_choice import _batched

    def too_big(model, tokenizer, batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(OutOfMemory, match="try --batch-size 8"):
        _batched(None, None, [([1, 2, 3], 1)] * 20, 16, None, too_big)
    seen = []
    _batched(None, None, [([1], 0), ([1, 2], 0)], 1, seen.append, lambda m, t, b: [None] * len(b), weights=[4, 3])
    assert seen == [3, 4]  # progress counts the options each context scores, longest first


def test_with_a_native_chat_template_the_prompt_is_apply_chat_template_with_shots_as_earlier_rounds():
    from instruct_data.evaluation.choices import load_choice_benchmark
    from instruct_data.evaluation.multiple_choice import build_prompt, question_block
    from instruct_data.templates import NativeTemplate
    from instruct_data.training.tiny import train_tokenizer

    tokenizer = train_tokenizer(["你好 hello"], vocab_size=300)
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    native = NativeTemplate.from_tokenizer(tokenizer)
    _, data = load_choice_benchmark("idata-zh-mc", per_category=1)
    item, shots = data.items[0], data.dev[data.items[0].subject][:2]
    messages = []
    for index, shot in enumerate(shots):
        messages += [{"role": "user", "content": ("以下是关于语文的单项选择题，请直接给出正确答案的选项。\n\n" if index == 0 else "")
                      + question_block(shot)}, {"role": "assistant", "content": shot.answer}]
    messages.append({"role": "user", "content": question_block(item)})
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert build_prompt(item, native, shots) == expected
    assert expected.endswith("答案：<|im_end|>\n<|im_start|>assistant\n")
