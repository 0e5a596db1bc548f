"""`idata train` / `idata merge` on tiny local Llama, Qwen2 and GPT-2 models, on the CPU."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from instruct_data.errors import IdataError
from instruct_data.schema import Conversation
from instruct_data.templates import get_template, render, segments
from instruct_data.training import TrainConfig, make_config, train
from instruct_data.training.collate import PackCollator, PadCollator
from instruct_data.training.config import ConfigError
from instruct_data.training.data import read_pieces, resolve_source
from instruct_data.training.loop import TrainingDiverged
from instruct_data.training.model import PrecisionError
from instruct_data.training.tiny import DEFAULT_TEXT, make_tiny_model
from instruct_data.training.tokenize import IGNORE, Encoder, resolve_eos, tokenize_file

pytestmark = pytest.mark.slow

ARCHS = ("llama", "qwen2", "gpt2")
PAIRS = [
    ("把这句话翻译成英文：我喜欢喝茶。", "I like drinking tea."),
    ("北京是哪个国家的首都？", "北京是中国的首都。"),
    ("用一句话介绍长城。", "长城是中国古代修建的军事防御工程，绵延数千公里。"),
    ("给我三个早睡的建议。", "1. 固定作息时间。2. 睡前不看手机。3. 下午不喝咖啡。"),
    ("写一句关于秋天的诗。", "秋风吹落叶，明月照山川。"),
    ("什么是光合作用？", "光合作用是植物利用光能把二氧化碳和水变成有机物并释放氧气的过程。"),
]
DIALOGUE = {
    "id": "d1", "source": "fixture",
    "turns": [
        {"role": "user", "text": "你好，你是谁？"},
        {"role": "assistant", "text": "我是一个中文助手。"},
        {"role": "user", "text": "给我讲一个笑话。"},
        {"role": "assistant", "text": "从前有一只小猫，它每天都在学习数学。"},
        {"role": "user", "text": "再讲一个。"},
        {"role": "assistant", "text": "小狗问小猫：你为什么学数学？小猫说：为了数清楚鱼。"},
    ],
}


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def seed_rows(repeat: int = 4):
    template = get_template("seed")
    rows = []
    for n in range(repeat):
        for q, a in PAIRS:
            rows.append({"context": template.user_block(1, _turn(q)), "target": a, "id": f"r{n}-{q[:4]}"})
    return rows


def _turn(text):
    from instruct_data.schema import Turn

    return Turn(role="user", text=text)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="session")
def models(workdir):
    texts = DEFAULT_TEXT + [f"Instruction: {q}\nAnswer: {a}" for q, a in PAIRS] + [t["text"] for t in DIALOGUE["turns"]]
    return {arch: make_tiny_model(workdir / f"tiny-{arch}", arch, texts=texts) for arch in ARCHS}


@pytest.fixture(scope="session")
def data(workdir):
    folder = workdir / "build"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", seed_rows())
    write_jsonl(folder / "heldout.jsonl", seed_rows(1)[:4])
    (folder / "manifest.json").write_text(json.dumps({"parameters": {"template": "seed"}}), encoding="utf-8")
    write_jsonl(folder / "conversations.jsonl", [DIALOGUE] * 8)
    return folder


def tokenizer_of(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def base_config(model_dir, data, out, workdir, **extra) -> TrainConfig:
    settings = dict(data=str(data), model=str(model_dir), out=str(out), max_steps=12, batch_size=4, lr=1e-2,
                    logging_steps=1, save_steps=4, max_len=128, cache_dir=str(workdir / "cache"), progress=False,
                    warmup_ratio=0.0)
    settings.update(extra)
    return TrainConfig(**settings)


def logits(model, tokenizer, text="北京是中国的首都。"):
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


class CaptureModel(TrainerCallback):
    """Keeps the trained model object, to compare with what was saved."""

    def __init__(self):
        self.model = None

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.model = model


# ---------------------------------------------------------------- tokenization


@pytest.mark.parametrize("arch", ARCHS)
def test_context_is_masked_and_eos_is_supervised(models, arch):
    tok = tokenizer_of(models[arch])
    eos = resolve_eos(tok, tok.eos_token_id, get_template("seed"))
    assert eos.id == tok.eos_token_id
    context, target = "Instruction: 北京是哪个国家的首都？\nAnswer: ", "北京是中国的首都。"
    out = Encoder(tok, eos, 128, "truncate")({"texts": [[context, target]], "supervised": [[False, True]]})
    ids, labels = out["input_ids"][0], out["labels"][0]
    # One string, tokenized once: the space closing the prompt goes with the reply's first token
    # (" 北"), as it does in the text; that token is trained.
    assert ids == tok(context + target, add_special_tokens=False)["input_ids"] + [eos.id]
    n_context = labels.count(IGNORE)
    assert labels[:n_context] == [IGNORE] * n_context
    assert labels[n_context:] == ids[n_context:]
    assert ids[-1] == labels[-1] == eos.id
    assert tok.decode(ids[n_context:-1]).strip() == target
    assert context.rstrip() in tok.decode(ids[:n_context])
    assert out["truncated"] == [False]


def with_bos(tok):
    """The tokenizer adding BOS before every text, as real Llama tokenizers do."""
    from tokenizers import processors

    bos = tok.bos_token_id
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    assert tok("你好")["input_ids"][0] == bos
    return tok


def encode_pieces(tok, template, pieces, max_len=512, too_long="truncate", native=False):
    from instruct_data.templates import prompt_layout

    eos = resolve_eos(tok, tok.eos_token_id, template)
    out = Encoder(tok, eos, max_len, too_long, layout=prompt_layout(template), native=native)(
        {"texts": [[t for t, _ in pieces]], "supervised": [[s for _, s in pieces]]})
    return out, eos


def test_long_question_loses_its_middle_not_its_header_or_last_sentence(models):
    tok = with_bos(tokenizer_of(models["llama"]))
    template = get_template("seed")
    question = "请阅读下面的材料。" + "很久以前的背景故事。" * 40 + "根据材料，作者的观点是什么？"
    context = template.user_block(1, _turn(question))
    out, eos = encode_pieces(tok, template, [(context, False), ("作者认为读书很重要。", True)], max_len=64)
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert len(ids) <= 64 and out["truncated"] == [True] and out["skipped"] == [False]
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    prompt = tok.decode([i for i, l in zip(ids, labels) if l == IGNORE], skip_special_tokens=True)
    assert prompt.startswith("Instruction: 请") and "…" in prompt  # the header and the question's start stay
    assert prompt.endswith("根据材料，作者的观点是什么？\nAnswer: ")  # its last sentence and the template's tail stay
    assert ids[-1] == labels[-1] == eos.id  # the short reply is whole, with its end token


def test_long_reply_is_cut_at_the_end_without_an_end_token(models):
    tok = tokenizer_of(models["llama"])
    template = get_template("seed")
    context = template.user_block(1, _turn("写一篇长文。"))
    target = "这是一个很长的回答。" * 40
    out, eos = encode_pieces(tok, template, [(context, False), (target, True)], max_len=64)
    ids, labels = out["input_ids"][0], out["labels"][0]
    assert len(ids) <= 64 and out["truncated"] == [True] and out["skipped"] == [False]
    assert eos.id not in ids  # a cut reply must not teach the model to stop mid-answer
    assert tok.decode([i for i, l in zip(ids, labels) if l == IGNORE]) == context  # the prompt is whole
    reply = tok.decode([l for l in labels if l != IGNORE])
    assert target.startswith(reply) and len(reply) > 10
    skipped, _ = encode_pieces(tok, template, [(context, False), (target, True)], max_len=64, too_long="skip")
    assert skipped["skipped"] == [True] and skipped["truncated"] == [False] and skipped["input_ids"] == [[]]


def test_earlier_rounds_are_dropped_oldest_first(models):
    tok = tokenizer_of(models["qwen2"])
    template = get_template("chatml")
    pairs = [("第一轮的问题很长很长。" * 6, "第一轮的回答。" * 6), ("第二轮的问题？", "第二轮的回答。"), ("最后的问题？", "最后的回答。")]
    turns = [{"role": role, "text": text} for pair in pairs for role, text in zip(("user", "assistant"), pair)]
    conv = Conversation.model_validate({"id": "c", "source": "t", "system": "你是助手。", "turns": turns})
    full, _ = encode_pieces(tok, template, segments(conv, template))
    budget = len(full["input_ids"][0]) - 10
    out, eos = encode_pieces(tok, template, segments(conv, template), max_len=budget)
    ids, labels = out["input_ids"][0], out["labels"][0]
    text = tok.decode(ids)
    assert out["truncated"] == [True] and out["skipped"] == [False] and len(ids) <= budget
    assert "第一轮" not in text and "第二轮的问题？" in text and "最后的问题？" in text
    assert text.startswith("<|im_start|>system\n你是助手。<|im_end|>\n<|im_start|>user\n第二轮的问题？")
    supervised = tok.decode([l for l in labels if l != IGNORE])
    assert "第二轮的回答。" in supervised and supervised.endswith("最后的回答。" + tok.eos_token)


def test_prompt_alone_too_long_is_skipped_and_counted_apart(models):
    tok = tokenizer_of(models["llama"])
    template = get_template("seed")
    context = template.user_block(1, _turn("这是一个没有句号的很长很长的问题" * 30))
    out, _ = encode_pieces(tok, template, [(context, False), ("回答。", True)], max_len=32)
    assert out["truncated"] == [False] and out["skipped"] == [True]  # counted apart: skipped, not truncated


def test_conversation_supervises_every_reply_and_nothing_else(models):
    tok = tokenizer_of(models["qwen2"])
    template = get_template("seed")
    conv = Conversation.model_validate(DIALOGUE)
    out, eos = encode_pieces(tok, template, segments(conv, template))
    ids, labels = out["input_ids"][0], out["labels"][0]
    supervised = tok.decode([l for l in labels if l != IGNORE])
    for reply in (t.text for t in conv.turns if t.role == "assistant"):
        assert reply in supervised
    assert not any(t.text in supervised for t in conv.turns if t.role == "user")
    assert ids[-1] == labels[-1] == eos.id
    # The tokens before the last reply are exactly the evaluation prompt's: render() tokenized at once.
    context, _ = render(conv, template)
    prompt = tok(context, add_special_tokens=False)["input_ids"]
    assert ids[:len(prompt)] == prompt


def test_chat_template_ends_replies_with_its_special_token(models):
    tok = tokenizer_of(models["qwen2"])
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    template = get_template("chatml")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    eos = resolve_eos(tok, [tok.eos_token_id, im_end], template)
    assert eos.token == "<|im_end|>"
    conv = Conversation.model_validate(DIALOGUE)
    pieces = segments(conv, template)
    out = Encoder(tok, eos, 512, "truncate")({"texts": [[t for t, _ in pieces]], "supervised": [[s for _, s in pieces]]})
    ids = out["input_ids"][0]
    assert ids.count(im_end) == 6  # 3 user turns closed in the text, 3 replies closed by the EOS token
    assert not any(a == b == im_end for a, b in zip(ids, ids[1:]))  # never doubled


def test_eos_disagreeing_with_generation_config_follows_generation(models):
    tok = tokenizer_of(models["llama"])
    eos = resolve_eos(tok, [tok.pad_token_id], get_template("seed"))
    assert eos.id == tok.pad_token_id and "generation config" in eos.why


def test_tokenized_data_is_cached(models, data, workdir):
    tok = tokenizer_of(models["llama"])
    template = get_template("seed")
    eos = resolve_eos(tok, tok.eos_token_id, template)
    path = data / "train.jsonl"
    cache = workdir / "cache-test"
    first = tokenize_file(path, "context_target", lambda: read_pieces(path, template)[1], tok, template, eos, 128,
                          "truncate", cache, None)

    def must_not_run():
        raise AssertionError("the second run tokenized again")

    second = tokenize_file(path, "context_target", must_not_run, tok, template, eos, 128, "truncate", cache, None)
    assert not first.cached and second.cached
    assert second.dataset["input_ids"] == first.dataset["input_ids"]
    other = tokenize_file(path, "context_target", lambda: read_pieces(path, template)[1], tok, template, eos, 64,
                          "truncate", cache, None)
    assert not other.cached  # another length is another key
    assert list(first.lengths) == [len(ids) for ids in first.dataset["input_ids"]]
    short = tokenize_file(path, "context_target", lambda: read_pieces(path, template)[1], tok, template, eos, 18,
                          "skip", cache, None)
    assert short.skipped > 0 and len(short.dataset) == short.rows - short.skipped == len(short.lengths)
    assert short.truncated == 0  # skipped rows are not counted as truncated too
    assert all(0 < n <= 18 for n in short.dataset["length"]) and list(short.lengths) == short.dataset["length"]


def test_large_file_read_and_tokenized_in_parallel_blocks_equals_one_stream(models, tmp_path, monkeypatch):
    from instruct_data.training import tokenize
    from instruct_data.training.data import BlockReader, file_blocks

    tok = tokenizer_of(models["llama"])
    template = get_template("seed")
    eos = resolve_eos(tok, tok.eos_token_id, template)
    path = write_jsonl(tmp_path / "big.jsonl", seed_rows(50))
    monkeypatch.setattr(tokenize, "BLOCK_BYTES", 2000)  # several blocks per process

    def run(file, **extra):
        return tokenize_file(file, "context_target", lambda: read_pieces(file, template)[1], tok, template, eos, 20,
                             "skip", tmp_path / "cache", 2, **extra)

    parallel = run(path, block_reader=BlockReader(path, template, "context_target"))
    stream = run(path, variant="one stream")
    blocks = len(file_blocks(path, 2000))
    assert blocks > 2 and len(list((parallel.path / "data").iterdir())) == blocks  # one file per block, in order
    assert parallel.rows == 300 and parallel.skipped > 0
    assert (parallel.rows, parallel.truncated, parallel.skipped) == (stream.rows, stream.truncated, stream.skipped)
    assert parallel.dataset["input_ids"] == stream.dataset["input_ids"] and list(parallel.lengths) == list(stream.lengths)
    rows = seed_rows(50)
    rows[250] = {"context": "问："}
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    parallel = run(bad, block_reader=BlockReader(bad, template, "context_target"))  # the bad row alone is rejected
    stream = run(bad, variant="one stream")
    assert (parallel.rows, parallel.rejected, parallel.rejects) == (stream.rows, stream.rejected, stream.rejects)
    assert parallel.rows == 300 and parallel.rejected == 1
    assert re.match(r".*bad.jsonl:251: not context/target", parallel.rejects[0])
    assert len(parallel.lengths) == 300 - 1 - parallel.skipped


def test_packed_batch_gives_the_same_loss_as_padded(models, data):
    from transformers import AutoModelForCausalLM

    tok = tokenizer_of(models["llama"])
    template = get_template("seed")
    eos = resolve_eos(tok, tok.eos_token_id, template)
    examples = read_pieces(data / "train.jsonl", template)[1][:4]
    batch = Encoder(tok, eos, 128, "truncate")({"texts": [[t for t, _ in e] for e in examples],
                                                "supervised": [[s for _, s in e] for e in examples]})
    features = [{"input_ids": i, "labels": l} for i, l in zip(batch["input_ids"], batch["labels"])]
    model = AutoModelForCausalLM.from_pretrained(str(models["llama"]), attn_implementation="sdpa")
    model.config.use_cache = False
    with torch.no_grad():
        padded = model(**PadCollator(tok.pad_token_id)(features)).loss
        packed = model(**PackCollator()(features)).loss
    assert torch.allclose(padded, packed, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_reply_loss_equals_the_models_own_loss_and_gradients(models, data, arch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from instruct_data.training.loop import ReplyLoss

    tok = tokenizer_of(models[arch])
    template = get_template("seed")
    eos = resolve_eos(tok, tok.eos_token_id, template)
    examples = read_pieces(data / "train.jsonl", template)[1][:3]
    batch = Encoder(tok, eos, 128, "truncate")({"texts": [[t for t, _ in e] for e in examples],
                                                "supervised": [[s for _, s in e] for e in examples]})
    inputs = PadCollator(tok.pad_token_id)([{"input_ids": i, "labels": l} for i, l in zip(batch["input_ids"], batch["labels"])])
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(models[arch])),
                           LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    assert ReplyLoss.applies(model, sharded=False)

    def grads():
        found = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad()
        return found

    own = model(**inputs).loss
    own.backward()
    own_grads = grads()
    loss_fn = ReplyLoss(model.get_output_embeddings(), chunk_tokens=7)  # several chunks
    handle = loss_fn.head.register_forward_pre_hook(loss_fn.capture)
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    handle.remove()
    assert outputs.logits.shape[1] == 1  # the full logits were never made
    mine = loss_fn(outputs, inputs["labels"])
    mine.backward()
    assert torch.allclose(own, mine, atol=1e-5)
    for name, grad in grads().items():
        assert torch.allclose(grad, own_grads[name], atol=1e-5), name


def test_build_folder_gives_heldout_and_recorded_template(data):
    manifest = data / "manifest.json"
    source = resolve_source(str(data), None, None)
    assert source.train == data / "train.jsonl" and source.eval == data / "heldout.jsonl"
    assert source.template.name == "seed" and "the template the data were rendered with" in source.template_from
    other = resolve_source(str(data), None, "chatml")  # another template: the conversations, re-rendered
    assert other.train == data / "conversations.jsonl" and other.eval == data / "heldout.jsonl"
    assert other.eval_rendered_with.name == "seed" and "re-rendered" in other.template_from
    assert manifest.is_file()


def test_build_folder_with_empty_heldout_trains_without_eval(data, tmp_path):
    import shutil

    folder = tmp_path / "small-build"
    shutil.copytree(data, folder)
    (folder / "heldout.jsonl").write_text("", encoding="utf-8")
    source = resolve_source(str(folder), None, None)
    assert source.eval is None and source.train == folder / "train.jsonl"


def test_bad_row_names_file_and_line(tmp_path):
    from instruct_data.training.data import rejected

    path = write_jsonl(tmp_path / "bad.jsonl", [{"context": "问：", "target": "答"}, {"context": "问：", "target": " "}])
    _, pieces = read_pieces(path, get_template("seed"))
    assert not rejected(pieces[0]) and re.match(r".*bad.jsonl:2: .*target", rejected(pieces[1]))


def test_a_bad_row_is_rejected_and_the_rest_trained(models, tmp_path, workdir):
    """As every other command does: a row that is not a record, or a truncated last line, is a
    reject naming its file:line; the run trains the rest and says so."""
    rows = seed_rows(1)
    rows.insert(2, {"context": "问：", "answer": "答"})
    path = write_jsonl(tmp_path / "broken.jsonl", rows)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"context": "问：今天', )  # a last line cut off mid-row
    out = train(base_config(models["llama"], path, tmp_path / "run", workdir, cache_dir=str(tmp_path / "cache")))
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["data"]["train"]
    assert data["rejected"] == 2 and data["rows"] == len(rows) + 1
    assert re.match(r".*broken.jsonl:3: not context/target: target", data["rejects"][0])
    assert re.match(rf".*broken.jsonl:{len(rows) + 1}: ", data["rejects"][1])


def test_a_file_of_mostly_bad_rows_stops_training(models, tmp_path, workdir):
    path = write_jsonl(tmp_path / "wrong.jsonl", [{"question": "问", "answer": "答"}] * 5 + seed_rows(1)[:2])
    with pytest.raises(IdataError, match=r"wrong.jsonl: 5 of 7 rows cannot be trained"):
        train(base_config(models["llama"], path, tmp_path / "run", workdir, cache_dir=str(tmp_path / "cache")))
    assert not [p for p in (tmp_path / "cache").iterdir()]  # nothing half-built left in the cache


def test_recipe_then_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: some/model\nlora-r: 16\nlr: 0.0001\nlora_target: q_proj,v_proj\n", encoding="utf-8")
    config = make_config(recipe, data="d", out="o", lr=0.001, lora_r=None)
    assert (config.model, config.lora_r, config.lr, config.lora_target) == ("some/model", 16, 0.001, "q_proj,v_proj")
    recipe.write_text("learning_rate: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown option"):
        make_config(recipe, data="d", out="o", model="m")


@pytest.mark.parametrize("option, value, said", [
    ("lr", float("nan"), "--lr must be a finite number > 0, not nan"), ("lr", 0.0, "--lr must be a finite number > 0"),
    ("epochs", float("inf"), "--epochs must be a finite number > 0, not inf"),
    ("warmup_ratio", float("nan"), "--warmup-ratio must be a finite number in [0, 1], not nan"),
    ("weight_decay", -0.1, "--weight-decay must be a finite number >= 0")])
def test_rates_are_finite_and_in_range_before_the_model_loads(option, value, said):
    """`--lr nan` failed after the model was loaded and the data tokenized; `--warmup-ratio nan`
    as `cannot convert float NaN to integer`."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        make_config(None, data="d", out="o", model="m", **{option: value})
    assert make_config(None, data="d", out="o", model="m", max_grad_norm=0.0).max_grad_norm == 0.0  # no clipping


def test_shipped_recipes_load():
    recipes = sorted((Path(__file__).parent.parent / "recipes" / "train").glob("*.yaml"))
    assert len(recipes) >= 6
    for recipe in recipes:
        make_config(recipe, data="d", out="o", model="m")


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("arch", ARCHS)
def test_training_learns_saves_reloads_and_merges(models, data, workdir, arch):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from instruct_data.training.merge import merge

    capture = CaptureModel()
    variants = {"llama": {}, "qwen2": {"dora": True, "rslora": True}, "gpt2": {"packing": True}}
    out = train(base_config(models[arch], data, workdir / f"run-{arch}", workdir, eval_steps=6, **variants[arch]),
                callbacks=[capture])
    log = [json.loads(line) for line in (out / "logs" / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1
    assert all(r["tokens_per_s"] > 0 for r in log if "loss" in r)
    # evaluated at steps 6 and 12, once each: the last step's figures are the run's, not a second pass
    evals = [r for r in log if "eval_loss" in r]
    assert [r["step"] for r in evals] == [6, 12]
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert json.loads((out / "template.json").read_text()) == {"name": "seed", **get_template("seed").to_dict()}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["eval_loss"] == evals[-1]["eval_loss"]
    assert metrics["data"]["train"]["examples"] == 24
    run = json.loads((out / "run_config.json").read_text())
    assert run["resolved"]["eos"]["token"] == "</s>" and run["config"]["packing"] == (arch == "gpt2")
    assert run["resolved"]["loss"] == "reply tokens, fused output head"
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((out / "logs" / "tensorboard").glob("events.*"))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-12", "checkpoint-8"]

    tok = tokenizer_of(out)
    trained = capture.model.eval()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(models[arch])), str(out)).eval()
    base = AutoModelForCausalLM.from_pretrained(str(models[arch])).eval()
    assert torch.equal(logits(trained, tok), logits(reloaded, tok))
    assert not torch.allclose(logits(base, tok), logits(reloaded, tok), atol=1e-4)  # the adapter is not empty
    merged_dir = merge(out, workdir / f"merged-{arch}")
    merged = AutoModelForCausalLM.from_pretrained(str(merged_dir)).eval()
    assert (logits(merged, tok) - logits(reloaded, tok)).abs().max() < 1e-4
    assert (merged_dir / "template.json").is_file() and (merged_dir / "tokenizer.json").is_file()


class Interrupt(Exception):
    pass


def test_resume_continues_from_the_saved_step(models, data, workdir):
    class StopAtFive(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.global_step == 5 and "loss" in (logs or {}):
                raise Interrupt

    config = base_config(models["llama"], data, workdir / "run-resume", workdir, max_steps=6, save_steps=2)
    with pytest.raises(Interrupt):
        train(config, callbacks=[StopAtFive()])
    # The stopped run's checkpoints and log wait in the unfinished folder; --out is not made yet.
    assert not (workdir / "run-resume").exists()
    log_file = workdir / ".run-resume.unfinished" / "logs" / "train_log.jsonl"
    first = [json.loads(line) for line in log_file.read_text().splitlines()]
    with pytest.raises(IdataError, match="--resume"):
        train(config)
    config.resume = True
    out = train(config)
    assert not (workdir / ".run-resume.unfinished").exists()
    log_file = out / "logs" / "train_log.jsonl"
    whole = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["step"] for r in whole if "loss" in r] == [1, 2, 3, 4, 5, 6]  # step 5 once, not twice
    log = [r for r in whole if r["step"] >= 5]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["resumed_from"].endswith("checkpoint-4")
    # Totals over the whole run, not only the resumed part.
    assert metrics["trained_tokens"] == [r for r in whole if "loss" in r][-1]["tokens"]
    assert metrics["trained_tokens"] > [r for r in first if r.get("step") == 4 and "loss" in r][0]["tokens"]
    losses = [r["loss"] for r in whole if "loss" in r]
    assert metrics["train_loss"] == pytest.approx(sum(losses) / 6)
    # Same weights, optimizer, schedule, data order and RNG: step 5 is computed again exactly.
    loss5 = [r for r in first if r.get("step") == 5 and "loss" in r][0]
    again = [r for r in log if r["step"] == 5 and "loss" in r][0]
    assert again["loss"] == pytest.approx(loss5["loss"], abs=1e-5)
    assert again["learning_rate"] == pytest.approx(loss5["learning_rate"])


def test_conversations_file_trains(models, data, workdir):
    out = train(base_config(models["qwen2"], data / "conversations.jsonl", workdir / "run-conv", workdir,
                            template="seed", max_steps=2, save_steps=10))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["train"]["examples"] == 8 and metrics["steps"] == 2


def test_injected_nan_stops_the_run(models, data, workdir):
    class Poison(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 2:
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if "lora_A" in name:
                            param.fill_(float("nan"))

    out = workdir / "run-nan"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 3\. Try .*lower --lr") as info:
        train(base_config(models["llama"], data, out, workdir, max_steps=8), callbacks=[Poison()])
    assert info.value.exit_code != 0
    assert not (out / "adapter_model.safetensors").exists()


def test_gpu_only_paths_fail_clearly_on_cpu(models, data, workdir, monkeypatch):
    # The CPU-only errors, on any machine: CUDA is hidden here and in the subprocess.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PrecisionError, match="--qlora.*needs a CUDA GPU"):
        train(base_config(models["llama"], data, workdir / "run-q", workdir, qlora=True))
    with pytest.raises(PrecisionError, match="fp16 needs a CUDA GPU"):
        train(base_config(models["llama"], data, workdir / "run-q", workdir, precision="fp16"))
    result = subprocess.run([sys.executable, "-m", "instruct_data", "train", "--data", str(data), "--model",
                             str(models["llama"]), "--out", str(workdir / "run-q"), "--qlora"],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "needs a CUDA GPU" in result.stderr


def test_too_long_max_len_and_existing_out_are_refused(models, data, workdir):
    with pytest.raises(IdataError, match="longer than the model's context"):
        train(base_config(models["llama"], data, workdir / "run-long", workdir, max_len=100_000))
    with pytest.raises(IdataError, match="--lora-target nope"):
        train(base_config(models["llama"], data, workdir / "run-target", workdir, lora_target="nope", max_steps=1))


def test_torchrun_two_processes_write_one_adapter(models, data, workdir):
    out = workdir / "run-ddp"
    # Two CPU processes (gloo) on any machine: on a one-GPU machine rank 1 would ask for a cuda:1 it lacks.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "instruct_data", "train", "--data", str(data), "--model", str(models["llama"]), "--out", str(out),
               "--max-steps", "3", "--batch-size", "2", "--max-len", "128", "--cache-dir", str(workdir / "cache-ddp"),
               "--logging-steps", "1", "--save-steps", "10", "--no-progress", "--lr", "0.01"]
    # Its own process group, so that a hang is killed with every worker (no orphans left behind).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("torchrun did not finish in 240 s")
    assert process.returncode == 0, stderr[-3000:]
    assert len(list(out.glob("adapter_model.safetensors"))) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 3
    # Tokenized once and shared: one cache entry each for train and held-out, no half-written copies.
    assert sorted(len(p.name) for p in (workdir / "cache-ddp").iterdir()) == [24, 24]


def test_model_with_its_own_code_needs_the_flag(models, data, workdir):
    import shutil

    custom = workdir / "custom-model"
    shutil.copytree(models["llama"], custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="my-custom-lm", auto_map={"AutoConfig": "configuration_my.MyConfig",
                                                      "AutoModelForCausalLM": "modeling_my.MyModel"})
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(IdataError, match="--trust-remote-code"):
        train(base_config(custom, data, workdir / "run-custom", workdir))


def test_demo_training_runs_in_seconds(data, workdir):
    from instruct_data.training.demo import demo_train

    out = demo_train(data, workdir / "demo" / "adapter", cache_dir=str(workdir / "cache-demo"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["last_loss"] < metrics["first_loss"] - 0.3  # visibly falls
    assert (out / "template.json").is_file() and (out / "adapter_model.safetensors").is_file()


def test_cli_train_with_recipe_then_merge(models, data, workdir):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    recipe = Path(__file__).parent.parent / "recipes" / "train" / "tiny-cpu.yaml"
    out, merged = workdir / "run-cli", workdir / "merged-cli"
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--recipe", str(recipe), "--data", str(data), "--model", str(models["qwen2"]),
                                 "--out", str(out), "--max-steps", "3", "--cache-dir", str(workdir / "cache"),
                                 "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)  # --json: nothing else on stdout
    assert metrics["steps"] == 3  # the command line overrode the recipe's 20
    run = json.loads((out / "run_config.json").read_text())
    assert run["config"]["lr"] == 2e-2 and run["config"]["max_len"] == 256  # from the recipe
    result = runner.invoke(cli, ["merge", "--adapter", str(out), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    assert (merged / "model.safetensors").is_file() and (merged / "template.json").is_file()
    result = runner.invoke(cli, ["merge", "--adapter", str(out), "--out", str(merged)])
    assert result.exit_code != 0 and "--overwrite" in str(result.exception)


def test_loss_guard_stops_on_zero_loss_and_names_what_to_try():
    from instruct_data.training.loop import LossGuard

    guard = LossGuard(lr=2e-4, precision="fp16")
    guard.check(0.0, 1)
    guard.check(1.5, 2)  # a real loss resets the count
    guard.check(0.0, 3)
    guard.check(0.0, 4)
    with pytest.raises(TrainingDiverged, match=r"loss is 0 for 3 steps.*--max-len.*bf16"):
        guard.check(0.0, 5)
    with pytest.raises(TrainingDiverged, match=r"became inf at step 7\. Try --precision bf16.*lower --lr \(now 0.0002\)"):
        LossGuard(lr=2e-4, precision="fp16").check(float("inf"), 7)


def test_out_of_memory_names_the_options_to_lower():
    from instruct_data.training.runner import run_training

    class Exhausted:
        def train(self, resume_from_checkpoint=None):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(IdataError, match=r"out of memory: lower --batch-size \(now 4.*--max-len \(now 1024\).*--gradient-checkpointing"):
        run_training(Exhausted(), None, TrainConfig(data="d", model="m", out="o"))
