"""Train what you evaluate: the prompt tokens a model is trained on are the ones `idata eval` feeds it.

Tiny local models and tokenizers made here: a byte-level BPE with and without BOS, a GLM-4-like
tokenizer that puts `[gMASK]<sop>` before every text, and a chat model whose own ChatML
chat template adds a default system prompt (as Qwen2.5's does).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from instruct_data.schema import Conversation
from instruct_data.templates import TEMPLATES, NativeTemplate, get_template, prompt_layout, render, segments
from instruct_data.training.tiny import DEFAULT_TEXT, make_tiny_model
from instruct_data.training.tokenize import IGNORE, Encoder, resolve_eos

pytestmark = pytest.mark.slow

CHATML_WITH_DEFAULT_SYSTEM = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message['role'] == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
CHAT_SPECIALS = ["<|im_start|>", "<|im_end|>"]
PAIRS = [("北京是哪个国家的首都？", "北京是中国的首都。"), ("用一句话介绍长城。", "长城是中国古代的军事防御工程。"),
         ("什么是光合作用？", "光合作用是植物利用光能制造有机物的过程。")]
SINGLE = {"id": "s1", "source": "t", "turns": [{"role": "user", "text": "把这句话翻译成英文。", "input": "我喜欢喝茶。"},
                                              {"role": "assistant", "text": "I like drinking tea."}]}
MULTI = {"id": "m1", "source": "t", "system": "你是一个中文助手。", "turns": [
    {"role": "user", "text": "你好，你是谁？"}, {"role": "assistant", "text": "我是一个中文助手。"},
    {"role": "user", "text": "给我讲一个笑话。"}, {"role": "assistant", "text": "从前有一只小猫，它每天都在学习数学。"},
    {"role": "user", "text": "再讲一个。"}, {"role": "assistant", "text": "小狗问小猫：你为什么学数学？"}]}
TEXTS = DEFAULT_TEXT + [q + a for q, a in PAIRS] + [t["text"] for t in MULTI["turns"]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("prompts")


@pytest.fixture(scope="module")
def chat_model(root):
    return make_tiny_model(root / "chat", "qwen2", texts=TEXTS, chat_template=CHATML_WITH_DEFAULT_SYSTEM,
                           extra_special_tokens=CHAT_SPECIALS)


@pytest.fixture(scope="module")
def plain_model(root):
    return make_tiny_model(root / "plain", "llama", texts=TEXTS)


def load_tokenizer(folder, kind="plain"):
    """kind: plain (no special tokens before a text), bos (Llama's <s>), glm (GLM-4's [gMASK]<sop>)."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    if kind == "bos":
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    elif kind == "glm":
        tok.add_special_tokens({"additional_special_tokens": ["[gMASK]", "<sop>"]})
        ids = tok.convert_tokens_to_ids(["[gMASK]", "<sop>"])
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="[gMASK] <sop> $A", special_tokens=[("[gMASK]", ids[0]), ("<sop>", ids[1])])
    return tok


class CaptureModel:
    """Stands in for a model in `generate`: records the prompt ids it is given (padding removed)."""

    device = torch.device("cpu")

    def __init__(self, eos_id):
        self.eos_id = eos_id
        self.prompts = []

    def generate(self, input_ids, attention_mask, **kwargs):
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            self.prompts.append([i for i, m in zip(ids, mask) if m])
        return torch.cat([input_ids, torch.full((input_ids.shape[0], 1), self.eos_id)], dim=1)


def training_prompt_ids(tok, template, conversation, native=False):
    """The tokens before the final reply in the training example `idata train` makes."""
    eos = resolve_eos(tok, tok.eos_token_id, template)
    pieces = segments(conversation, template)
    out = Encoder(tok, eos, 1024, "truncate", layout=prompt_layout(template), native=native)(
        {"texts": [[t for t, _ in pieces]], "supervised": [[s for _, s in pieces]]})
    ids, labels = out["input_ids"][0], out["labels"][0]
    start = max(i for i, label in enumerate(labels) if label == IGNORE) + 1  # the final reply's first token
    assert all(label != IGNORE for label in labels[start:])
    return ids[:start]


def evaluation_prompt_ids(tok, template, conversation, native=False):
    """The tokens `idata eval`'s generation feeds the model for the same conversation's last reply."""
    from instruct_data.evaluation.generation import Decoding, generate
    from instruct_data.tokens import PromptPrefix

    context, _ = render(conversation, template)
    model = CaptureModel(tok.eos_token_id)
    tok.padding_side = "left"
    generate(model, tok, [context], Decoding(max_new_tokens=1), prefix=PromptPrefix(tok, native=native))
    return model.prompts[0]


@pytest.mark.parametrize("kind", ["plain", "bos"])
@pytest.mark.parametrize("conversation", [SINGLE, MULTI], ids=["single", "multi"])
def test_training_prompt_tokens_equal_evaluation_prompt_tokens(plain_model, chat_model, kind, conversation):
    conv = Conversation.model_validate(conversation)
    tok = load_tokenizer(plain_model, kind)
    for name in TEMPLATES:
        template = get_template(name)
        assert training_prompt_ids(tok, template, conv) == evaluation_prompt_ids(tok, template, conv), name
    chat = load_tokenizer(chat_model, kind)
    native = NativeTemplate.from_tokenizer(chat)
    trained = training_prompt_ids(chat, native, conv, native=True)
    assert trained == evaluation_prompt_ids(chat, native, conv, native=True)
    # ... and both are what the model's own chat template gives, token for token.
    messages = native.messages([(conv.turns[i], conv.turns[i + 1]) for i in range(0, len(conv.turns) - 2, 2)],
                               conv.turns[-2], conv.system)
    assert trained == chat.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)


def test_glm4_prefix_is_given_once_in_training_and_evaluation(plain_model):
    tok = load_tokenizer(plain_model, "glm")
    gmask = tok.convert_tokens_to_ids("[gMASK]")
    template = get_template("glm4")
    conv = Conversation.model_validate(SINGLE)
    trained, evaluated = training_prompt_ids(tok, template, conv), evaluation_prompt_ids(tok, template, conv)
    assert trained == evaluated
    assert evaluated.count(gmask) == 1 and evaluated[0] == gmask
    seed = get_template("seed")  # a template without the prefix gets it from the tokenizer, once
    assert evaluation_prompt_ids(tok, seed, conv)[:2] == tok.convert_tokens_to_ids(["[gMASK]", "<sop>"])


def test_native_train_then_eval_prompts_are_the_chat_templates(chat_model, root):
    from transformers import AutoTokenizer

    from instruct_data.cli import cli

    data = root / "conversations.jsonl"
    rows = [MULTI, SINGLE] + [{"id": f"p{i}", "source": "t", "turns": [{"role": "user", "text": q},
                                                                        {"role": "assistant", "text": a}]}
                              for i, (q, a) in enumerate(PAIRS)]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows * 2), encoding="utf-8")
    out = root / "native-run"
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--data", str(data), "--model", str(chat_model), "--out", str(out),
                                 "--template", "native", "--max-steps", "2", "--batch-size", "2", "--max-len", "256",
                                 "--cache-dir", str(root / "cache"), "--no-progress", "--save-steps", "10"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((out / "template.json").read_text())
    assert recorded["name"] == "native" and recorded["chat_template"] == CHATML_WITH_DEFAULT_SYSTEM
    resolved = json.loads((out / "run_config.json").read_text())["resolved"]
    assert resolved["template"] == "native" and "native" in resolved["template_why"]
    assert resolved["eos"]["token"] == "<|im_end|>"

    instructions = root / "instructions.jsonl"
    items = [{"instruction": q, "input": "", "output": a} for q, a in PAIRS]
    items.append({"instruction": "把这句话翻译成英文。", "input": "我喜欢喝茶。", "output": "I like drinking tea."})
    instructions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    result = runner.invoke(cli, ["eval", "-a", str(out), "-b", str(instructions), "-o", str(root / "eval"),
                                 "--max-new-tokens", "3"])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in (root / "eval" / "predictions.jsonl").read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(str(chat_model))
    expected = [tok.apply_chat_template([{"role": "user", "content": r["instruction"] + (f"\n{r['input']}" if r["input"] else "")}],
                                        tokenize=False, add_generation_prompt=True) for r in items]
    assert [p["prompt"] for p in predictions] == expected  # item by item, with the default system prompt
    assert all("You are a helpful assistant." in p["prompt"] for p in predictions)


def test_auto_is_native_for_a_chat_model_and_conversations_else_the_builds(chat_model, plain_model, root):
    from transformers import AutoTokenizer

    from instruct_data.training.data import iter_pieces, resolve_source

    build = root / "build"
    build.mkdir()
    seed = get_template("seed")
    conv = Conversation.model_validate(SINGLE)
    context, target = render(conv, seed)
    (build / "train.jsonl").write_text(json.dumps({"context": context, "target": target}, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    (build / "heldout.jsonl").write_text(json.dumps({"context": context, "target": target}, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    (build / "conversations.jsonl").write_text(json.dumps(SINGLE, ensure_ascii=False) + "\n", encoding="utf-8")
    (build / "manifest.json").write_text(json.dumps({"parameters": {"template": "seed"}}), encoding="utf-8")
    chat = AutoTokenizer.from_pretrained(str(chat_model))
    source = resolve_source(str(build), None, None, chat)
    assert source.template.name == "native" and source.train == build / "conversations.jsonl"
    assert "chat template" in source.template_from and "re-rendered" in source.template_from
    # The held-out loss is kept: the build's held-out rows, re-rendered with the chat template.
    held = list(iter_pieces(source.eval, source.template, "context_target", source.eval_rendered_with))
    assert held[0][0][0] == render(conv, source.template)[0] and held[0][1] == (target, True)
    plain = resolve_source(str(build), None, "auto", AutoTokenizer.from_pretrained(str(plain_model)))
    assert plain.template.name == "seed" and plain.train == build / "train.jsonl"
    assert "no chat template" in plain.template_from


def test_length_grouped_batches_match_transformers_and_take_a_million_rows_in_seconds():
    import time

    import numpy as np
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from instruct_data.training.loop import length_grouped_indices

    lengths = np.random.default_rng(0).integers(5, 1000, size=5000)
    ours = length_grouped_indices(lengths, 8, generator=torch.Generator().manual_seed(3))
    theirs = get_length_grouped_indices(lengths.tolist(), 8, generator=torch.Generator().manual_seed(3))
    assert ours == theirs
    many = np.random.default_rng(1).integers(5, 1000, size=1_000_000).astype(np.int32)
    started = time.process_time()
    order = length_grouped_indices(many, 8)
    assert time.process_time() - started < 10 and sorted(order[:1000]) != order[:1000]
    assert many[order[0]] == many.max() and len(set(order)) == len(many)


def test_fp16_trainable_parameters_are_fp32(plain_model):
    from transformers import AutoModelForCausalLM

    from instruct_data.training.config import TrainConfig
    from instruct_data.training.model import Precision, wrap_lora

    model = AutoModelForCausalLM.from_pretrained(str(plain_model), dtype=torch.float16)
    config = TrainConfig(data="d", model="m", out="o", lora_target="all", modules_to_save=["lm_head"])
    wrapped, _ = wrap_lora(model, config, gradient_checkpointing=False, precision=Precision("fp16", "test"))
    trainable = {n: p.dtype for n, p in wrapped.named_parameters() if p.requires_grad}
    assert any("lm_head" in n for n in trainable) and any("lora_A" in n for n in trainable)
    assert set(trainable.values()) == {torch.float32}
    assert any(p.dtype == torch.float16 for p in wrapped.parameters() if not p.requires_grad)  # the base stays fp16


def test_sampling_differs_from_greedy_and_repeats_with_its_seed(plain_model):
    from instruct_data.evaluation.generation import Decoding, generate, load_model

    model, tok = load_model(str(plain_model))
    prompts = [get_template("seed").user_block(1, Conversation.model_validate(SINGLE).turns[0]), "北京是", "春天来了"]

    def run(**options):
        return [g.text for g in generate(model, tok, prompts, Decoding(max_new_tokens=12, batch_size=3, **options))]

    greedy = run()
    sampled = run(do_sample=True, seed=7, temperature=1.5, top_p=1.0)
    assert sampled != greedy
    assert run(do_sample=True, seed=7, temperature=1.5, top_p=1.0) == sampled
    assert run(do_sample=True, seed=8, temperature=1.5, top_p=1.0) != sampled
    assert run() == greedy


def space_merging_tokenizer():
    """A byte-level BPE with Qwen2's pre-tokenizer, where a space joins the word after it (`ĠX`),
    as in the real Qwen and Llama-3 vocabularies: seed's `Answer: ` then ends in no token of its
    own once a reply follows."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_chat_templates import FAMILIES, family_tokenizer

    replies = [turn["text"] for c in (SINGLE, MULTI) for turn in c["turns"] if turn["role"] == "assistant"]
    texts = [f"Instruction: 问题{i}\nAnswer: {reply}" for i in range(20) for reply in replies + ["答案"]]
    return family_tokenizer(FAMILIES["qwen2.5"], [([{"role": "user", "content": text}], None) for text in texts])


@pytest.mark.parametrize("conversation", [SINGLE, MULTI], ids=["single", "multi"])
def test_a_prompt_ending_in_a_space_is_fed_as_training_saw_it(conversation):
    """Training tokenizes `Answer: 答…` as one string, so the space goes with the reply's first
    token; generation is fed the prompt without it (and the model writes it back), so the ids it
    sees are the training example's, up to the reply."""
    conv = Conversation.model_validate(conversation)
    tok = space_merging_tokenizer()
    for name in ("seed", "belle", "chatglm", "chatml"):
        template = get_template(name)
        context, _ = render(conv, template)
        assert training_prompt_ids(tok, template, conv) == evaluation_prompt_ids(tok, template, conv), name
    context, _ = render(conv, get_template("seed"))
    assert context.endswith("Answer: ")
    whole = tok(context + conv.turns[-1].text, add_special_tokens=False)["input_ids"]
    assert tok.decode(whole[len(evaluation_prompt_ids(tok, get_template("seed"), conv))]).startswith(" ")


def test_the_spaces_taken_off_the_prompt_are_taken_off_the_answer():
    from instruct_data.evaluation.generation import Generated, _without_moved

    assert _without_moved(Generated(" 答案", 2, "eos"), " ").text == "答案"
    assert _without_moved(Generated("答案", 1, "eos"), " ").text == "答案"
    assert _without_moved(Generated(" 答案", 2, "eos"), "").text == " 答案"
