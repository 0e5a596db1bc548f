"""The README's main flow, run as a user runs it, on a chat model: the prompts `idata eval` sends
are the ones training rendered (issue 21 item 4: train and eval agree on the template by construction).

    idata build mine.jsonl --heldout 0.1 --out build/mine
    idata train --data build/mine --model "$MODEL" --template auto --out runs/mine --max-steps 20
    idata eval --model "$MODEL" --adapter runs/mine --compare-base -b build/mine --out eval/mine

The build renders heldout.jsonl with its default template (seed) and keeps the held-out dialogues
(heldout_conversations.jsonl); `train --template auto` trains the chat model in its own chat
template; eval must ask the held-out questions in that chat template, as training's eval loss saw
them (re-rendered from heldout.jsonl), and as `apply_chat_template` writes them.
"""

import json
from pathlib import Path

import pytest

from entrypoint import idata

SAMPLE = Path(__file__).resolve().parents[1] / "instruct_data" / "data" / "sample"
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _chat_file(path: Path) -> dict[str, list[dict]]:
    """A chat-format (messages) file: the sample's dialogues and its single-turn rows as messages,
    a third of them with a system prompt."""
    rows = [json.loads(line) for line in (SAMPLE / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()]
    for number, line in enumerate((SAMPLE / "collected.jsonl").read_text(encoding="utf-8").splitlines()):
        row = json.loads(line)
        question = row["instruction"] + (f"\n{row['input']}" if row.get("input") else "")
        system = [{"role": "system", "content": "请用简体中文回答。"}] if number % 3 == 0 else []
        rows.append({"messages": system + [{"role": "user", "content": question},
                                           {"role": "assistant", "content": row["output"]}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {f"mine:{line}": row["messages"] for line, row in enumerate(rows, start=1)}


@pytest.mark.slow
def test_readme_flow_eval_asks_the_held_out_questions_as_training_rendered_them(tmp_path):
    from transformers import AutoTokenizer

    from instruct_data.training.data import read_pieces, resolve_source
    from instruct_data.training.tiny import make_tiny_model

    model = make_tiny_model(tmp_path / "model", "qwen2", chat_template=CHAT_TEMPLATE,
                            extra_special_tokens=["<|im_start|>", "<|im_end|>"])
    dialogues = _chat_file(tmp_path / "mine.jsonl")

    build = idata("build", "mine.jsonl", "--heldout", "0.1", "--out", "build/mine", cwd=tmp_path, timeout=300)
    assert build.returncode == 0, build.stderr
    train = idata("train", "--data", "build/mine", "--model", model, "--template", "auto", "--out", "runs/mine",
                  "--max-steps", "20", cwd=tmp_path, timeout=600)
    assert train.returncode == 0, train.stderr
    evaluated = idata("eval", "--model", model, "--adapter", "runs/mine", "--compare-base", "-b", "build/mine",
                      "--out", "eval/mine", "--max-new-tokens", "4", cwd=tmp_path, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr

    run_config = json.loads((tmp_path / "runs/mine/run_config.json").read_text(encoding="utf-8"))
    assert run_config["resolved"]["template"] == "native"
    results = json.loads((tmp_path / "eval/mine/results.json").read_text(encoding="utf-8"))
    assert results["template"]["name"] == "native" and results["template"]["source"].endswith("template.json")
    # The build's held-out dialogues, rendered with the adapter's template (none read back from seed prompts).
    bench = results["benchmark"]
    assert bench["path"].endswith("heldout_conversations.jsonl") and bench["format"] == "conversations"
    assert "rerendered" not in bench
    assert "warnings" not in results or not results["warnings"]
    sent = {row["id"]: row["prompt"] for row in map(json.loads, open(tmp_path / "eval/mine/predictions.jsonl"))}
    assert len(sent) >= 10 and "base_prediction" in json.loads(open(tmp_path / "eval/mine/predictions.jsonl").readline())

    # Training's own view of the same held-out rows (its eval loss): the same prompts, id by id.
    tokenizer = AutoTokenizer.from_pretrained(model)
    source = resolve_source(str(tmp_path / "build/mine"), None, "auto", tokenizer)
    _, examples = read_pieces(source.eval, source.template, source.eval_rendered_with)
    held = [json.loads(line) for line in open(tmp_path / "build/mine/heldout.jsonl", encoding="utf-8")]
    trained = {row["id"]: pieces[0][0] for row, pieces in zip(held, examples)}
    assert sent == trained

    # And what a chat server would send: apply_chat_template over the original dialogue up to the last question.
    for item_id, prompt in sent.items():
        messages = dialogues[item_id][:-1]
        assert prompt == tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), item_id
        assert prompt.endswith("<|im_start|>assistant\n") and "Instruction:" not in prompt
    # some held-out rows had a system prompt: the build wrote it as their first line, eval asks it as the system message
    assert any(prompt.startswith("<|im_start|>system\n请用简体中文回答。<|im_end|>") for prompt in sent.values())
