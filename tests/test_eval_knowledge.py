"""Multiple-choice knowledge benchmarks: readers for C-Eval/CMMLU layouts, option log-likelihoods
checked item by item against a direct transformers computation, base versus tuned."""

import io
import json
import zipfile
from pathlib import Path

import pytest

from instruct_data.errors import InputError
from instruct_data.evaluation.choices import is_multiple_choice, load_choices, subject_of
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
        context = tokenizer(prompt)["input_ids"]
        cont_ids = tokenizer(prompt + cont)["input_ids"][len(context):]
        ids = torch.tensor([context + cont_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        out.append(sum(float(logprobs[len(context) - 1 + j, token]) for j, token in enumerate(cont_ids)))
    return out


@pytest.mark.parametrize("choice_format", ["letter", "text"])
def test_batched_option_logliks_equal_a_direct_transformers_computation_item_by_item(tiny, choice_format):
    from instruct_data.evaluation.choices import load_choice_benchmark
    from instruct_data.evaluation.generation import load_model
    from instruct_data.evaluation.multiple_choice import ChoiceRun, continuations, evaluate_choices

    model_dir, adapter = tiny
    model, tokenizer = load_model(str(model_dir), str(adapter))
    _, data = load_choice_benchmark("idata-zh-mc", per_category=1)
    run = ChoiceRun(template=get_template("seed"), choice_format=choice_format, shots=1, batch_size=7, compare_base=True)
    rows, summary = evaluate_choices(model, tokenizer, data, run)
    assert len(rows) == 10
    with model.disable_adapter():
        base_direct = [_direct_logliks(model, tokenizer, row["prompt"], continuations(item, choice_format))
                       for row, item in zip(rows, data.items)]
    tuned_direct = [_direct_logliks(model, tokenizer, row["prompt"], continuations(item, choice_format))
                    for row, item in zip(rows, data.items)]
    for row, item, tuned, base in zip(rows, data.items, tuned_direct, base_direct):
        assert list(row["logliks"].values()) == pytest.approx(tuned, abs=2e-4), item.id
        assert list(row["base_logliks"].values()) == pytest.approx(base, abs=2e-4), item.id
        best = "ABCD"[max(range(4), key=lambda i: tuned[i])]
        assert row["pick"] == best and row["correct"] == (best == item.answer)
        lengths = [len(c) for c in continuations(item, choice_format)]
        assert row["pick_norm"] == "ABCD"[max(range(4), key=lambda i: tuned[i] / lengths[i])]
    assert tuned_direct != base_direct  # the adapter changes the scores: the base pass really ran without it
    accuracy = summary["model"]["accuracy"]["overall"]["mean"]
    assert accuracy == pytest.approx(100 * sum(r["correct"] for r in rows) / len(rows))
    assert set(summary["delta"]["accuracy"]) == {"overall", *{i.subject for i in data.items}}
    # one shot from the dev split of the same subject sits before the question, as an earlier round
    assert data.dev[data.items[0].subject][0].question in rows[0]["prompt"]
