"""Training with the real chat templates of Qwen2.5, Llama-3.1, GLM-4 and Qwen3 (issue 24 items 1-2,
issue 20 items 5 and 8): the ids idata trains are the ids `apply_chat_template` gives, token for
token, and every run of trained labels is the text the template writes for that reply.

The templates are the models' own (tests/fixtures/templates, origins in SOURCES.md). The
tokenizers are tiny byte-level BPEs trained here on text rendered by each template, with the
family's special tokens and Qwen2's pre-tokenizer (which keeps "\\n\\n" one token, as the real
vocabularies do). The expected ids and reply texts are computed from hand-written OpenAI-style
messages through transformers' own `apply_chat_template`, not through idata's conversion.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_data.schema import Conversation
from instruct_data.templates import NativeTemplate, get_template, prompt_layout, training_examples
from instruct_data.training.tokenize import IGNORE, Encoder, resolve_eos

FIXTURES = Path(__file__).parent / "fixtures" / "templates"
# Qwen2's pre-tokenizer pattern (its tokenizer.json): newlines run together into one piece.
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
              r"\s*[\r\n]+|\s+(?!\S)|\s+")

FAMILIES = {
    "qwen2.5": dict(file="qwen2.5-instruct.jinja", eos="<|im_end|>", bos=None,
                    specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
    "llama3.1": dict(file="llama3.1-instruct.jinja", eos="<|eot_id|>", bos="<|begin_of_text|>",
                     specials=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                               "<|eot_id|>", "<|eom_id|>", "<|python_tag|>"]),
    "glm4": dict(file="glm4-9b-chat.jinja", eos="<|endoftext|>", bos=None,
                 specials=["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
                           "<|observation|>"]),
    "qwen3": dict(file="qwen3.jinja", eos="<|im_end|>", bos=None,
                  specials=["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
}

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "查询一个城市今天的天气",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "城市名"}},
                   "required": ["city"]}}}
TOOL_RESULT = '{"temp": 3, "sky": "晴"}'


def case(turns, messages, system=None, tools=None):
    """(idata conversation, the same dialogue as OpenAI messages, tools)."""
    record = {"id": "c:1", "source": "t", "turns": turns}
    if system:
        record["system"] = system
        messages = [{"role": "system", "content": system}, *messages]
    if tools:
        record["tools"] = tools
    return Conversation.model_validate(record), messages, tools


def user(text):
    return {"role": "user", "text": text}, {"role": "user", "content": text}


def reply(text, reasoning=None, call=None):
    turn = {"role": "assistant", "text": text}
    message = {"role": "assistant", "content": text}
    if reasoning:
        turn["reasoning"], message["reasoning_content"] = reasoning, reasoning
    if call:
        turn["tool_calls"] = [{"name": call[0], "arguments": call[1]}]
        message["tool_calls"] = [{"type": "function", "function": {"name": call[0], "arguments": call[1]}}]
    return turn, message


def result(text):
    return {"role": "tool", "text": text, "name": "get_weather"}, {"role": "tool", "content": text}


def dialogue(*pairs, system=None, tools=None):
    return case([t for t, _ in pairs], [m for _, m in pairs], system=system, tools=tools)


CASES = {
    "single": lambda: dialogue(user("北京是哪个国家的首都？"), reply("北京是中国的首都。")),
    "multi-system-whitespace": lambda: dialogue(
        user("1+1等于几？"), reply("\n等于2。"), user("再加1呢？"), reply("等于3。 "), user("谢谢"), reply("\n不客气！"),
        system="你是一个中文助手。"),
    "tools": lambda: dialogue(
        user("北京今天天气怎么样？"), reply("", call=("get_weather", {"city": "北京"})), result(TOOL_RESULT),
        reply("北京今天晴，3度。"), system="你是一个天气助手。", tools=[WEATHER]),
    "text-and-call": lambda: dialogue(
        user("上海呢？"), reply("我来查一下。", call=("get_weather", {"city": "上海"})), result(TOOL_RESULT),
        reply("上海今天晴。"), tools=[WEATHER]),
    "think": lambda: dialogue(
        user("1+1等于几？"), reply("等于2。", reasoning="先算1+1。"), user("再加1呢？"), reply("等于3。", reasoning="2再加1。")),
}


@pytest.fixture(scope="module")
def tokenizers():
    return {name: family_tokenizer(spec) for name, spec in FAMILIES.items()}


def family_tokenizer(spec: dict, dialogues: list | None = None):
    """A tiny tokenizer of the family, trained on `dialogues` ((messages, tools) pairs; default:
    this file's cases) as its template renders them. benchmarks/check_template_tokens.py uses it too."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    chat_template = (FIXTURES / spec["file"]).read_text(encoding="utf-8")
    if dialogues is None:
        dialogues = [make()[1:] for make in CASES.values()]
    texts = [render(chat_template, messages, tools, spec) for messages, tools in dialogues]
    model = Tokenizer(models.BPE())
    model.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
                                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=spec["specials"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    model.train_from_iterator(texts * 3, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=model, eos_token=spec["eos"], bos_token=spec["bos"],
                                  pad_token=spec["specials"][0], additional_special_tokens=spec["specials"])
    tok.chat_template = chat_template
    return tok


def render(chat_template, messages, tools, spec, **options):
    from transformers.utils.chat_template_utils import render_jinja_template

    tokens = {"bos_token": spec["bos"] or "", "eos_token": spec["eos"]}
    rendered, _ = render_jinja_template([messages], tools=tools, chat_template=chat_template, **tokens, **options)
    return rendered[0]


def template_ids(tok, messages, tools, **options):
    """What the model's own template gives: transformers' apply_chat_template, tokenized."""
    return tok.apply_chat_template(messages, tools=tools, tokenize=True, return_dict=False, **options)


def template_reply(tok, messages, tools, k):
    """The text the template writes for the assistant message at index k: render(messages[:k+1])
    minus render(messages[:k], add_generation_prompt=True)."""
    whole = tok.apply_chat_template(messages[:k + 1], tools=tools, tokenize=False)
    prompt = tok.apply_chat_template(messages[:k], tools=tools, tokenize=False, add_generation_prompt=True)
    assert whole.startswith(prompt)
    return whole[len(prompt):]


def encode(tok, template, pieces):
    eos = resolve_eos(tok, tok.eos_token_id, template)
    out = Encoder(tok, eos, 4096, "truncate", layout=prompt_layout(template), native=True)(
        {"texts": [[t for t, _ in pieces]], "supervised": [[s for _, s in pieces]]})
    assert out["truncated"] == [False] and out["skipped"] == [False]
    return out["input_ids"][0], out["labels"][0], eos


def runs(labels):
    """(start, end) of each run of trained labels."""
    found, start = [], None
    for index, label in enumerate([*labels, IGNORE]):
        if label != IGNORE and start is None:
            start = index
        elif label == IGNORE and start is not None:
            found.append((start, index))
            start = None
    return found


def assert_runs_are_the_replies(tok, ids, labels, eos, replies):
    """Each run of trained labels is one reply as the template writes it: the same characters,
    apart from a token shared with the text before it (a merged "\\n\\n"), and the end token."""
    found = runs(labels)
    assert len(found) == len(replies), (found, replies)
    assert all(labels[i] == ids[i] for start, end in found for i in range(start, end))
    for (start, end), expected in zip(found, replies):
        run = ids[start:end]
        if run[-1] == eos.id and not expected.rstrip().endswith(eos.token):
            run = run[:-1]  # the end token idata adds after a reply the template leaves open
        text = tok.decode(run)
        assert text.endswith(expected), (text, expected)
        first = tok.decode(run[:1])
        assert len(text) - len(expected) < len(first) or text == expected, (text, expected)


def assistant_indices(messages):
    return [i for i, m in enumerate(messages) if m["role"] == "assistant"]


PREFIX_STABLE = [("qwen2.5", "single"), ("qwen2.5", "multi-system-whitespace"), ("qwen2.5", "tools"),
                 ("qwen2.5", "text-and-call"), ("llama3.1", "single"), ("llama3.1", "multi-system-whitespace"),
                 ("llama3.1", "tools"), ("glm4", "single"), ("glm4", "multi-system-whitespace")]


@pytest.mark.parametrize("family,name", PREFIX_STABLE, ids=[f"{f}-{n}" for f, n in PREFIX_STABLE])
def test_prefix_stable_template_trains_every_reply_in_its_own_tokens(tokenizers, family, name):
    tok = tokenizers[family]
    template = NativeTemplate.from_tokenizer(tok)
    conversation, messages, tools = CASES[name]()
    examples = training_examples(conversation, template)
    assert len(examples) == 1  # the whole dialogue, every reply supervised
    ids, labels, eos = encode(tok, template, examples[0])
    expected = template_ids(tok, messages, tools)
    closes = template_reply(tok, messages, tools, len(messages) - 1).rstrip().endswith(eos.token)
    assert ids == (expected if closes else expected + [eos.id])  # GLM-4 leaves the reply open: EOS added
    replies = [template_reply(tok, messages, tools, k) for k in assistant_indices(messages)]
    assert_runs_are_the_replies(tok, ids, labels, eos, replies)
    trained = tok.decode([label for label in labels if label != IGNORE])
    for message in messages:  # label masks per role: only the assistant's words and calls are trained
        if message["role"] != "assistant":
            assert message["content"] not in trained, message
    if tools:
        assert "查询一个城市今天的天气" in tok.decode(ids[:runs(labels)[0][0]])  # the tool list is in the prompt,
        assert "查询一个城市今天的天气" not in trained  # never trained
        assert '"city": "北京"' in trained or '"city": "上海"' in trained  # the call is


def test_a_reply_starting_with_a_newline_trains_the_merged_token_the_one_string_gives(tokenizers):
    tok = tokenizers["qwen2.5"]
    template = NativeTemplate.from_tokenizer(tok)
    conversation, messages, tools = CASES["multi-system-whitespace"]()
    ids, labels, _ = encode(tok, template, training_examples(conversation, template)[0])
    double = tok.convert_tokens_to_ids("ĊĊ")
    assert double != tok.unk_token_id and tok.convert_tokens_to_ids("Ċ") != double
    at = ids.index(double)  # "assistant\n" + "\n等于2。": one "\n\n" token, as the template's string gives
    assert labels[at] == double and tok.decode(ids[at - 1:at]) == "assistant"
    # Prompt and reply tokenized apart (idata before issue 24) give "\n" "\n" there instead.
    apart = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"] + \
        tok("\n等于2。", add_special_tokens=False)["input_ids"]
    assert double not in apart


@pytest.mark.parametrize("name,count", [("single", 1), ("multi-system-whitespace", 3), ("think", 2), ("tools", 2)])
def test_qwen3_trains_one_example_per_reply_each_as_inference_renders_it(tokenizers, name, count):
    tok = tokenizers["qwen3"]
    template = NativeTemplate.from_tokenizer(tok)
    conversation, messages, tools = CASES[name]()
    examples = training_examples(conversation, template)
    assert len(examples) == count == len(assistant_indices(messages))  # none dropped, none only the last
    for example, k in zip(examples, assistant_indices(messages)):
        ids, labels, eos = encode(tok, template, example)
        assert ids == template_ids(tok, messages[:k + 1], tools)  # reply k as inference renders it
        reply_text = template_reply(tok, messages, tools, k)
        assert reply_text.startswith("<think>\n")  # the think block Qwen3 writes, empty or not
        assert_runs_are_the_replies(tok, ids, labels, eos, [reply_text])
        # Its history is the template's: earlier traces dropped, as at inference.
        history = tok.decode(ids[:runs(labels)[0][0]])
        for earlier in messages[:k]:
            if earlier.get("reasoning_content"):
                assert earlier["reasoning_content"] not in history
    if name == "think":
        trained = [tok.decode([l for l in encode(tok, template, e)[1] if l != IGNORE]) for e in examples]
        assert "先算1+1。" in trained[0] and "2再加1。" in trained[1]  # --reasoning keep trains each trace


def test_reasoning_drop_and_drop_history_on_a_template_that_keeps_traces():
    conversation, _, _ = CASES["think"]()
    chatml = get_template("chatml")
    kept = training_examples(conversation, chatml, reasoning="keep")
    assert len(kept) == 1 and sum("<think>\n先算1+1。\n</think>" in t for t, s in kept[0] if s) == 1
    dropped = training_examples(conversation, chatml, reasoning="drop")
    assert len(dropped) == 1 and not any("<think>" in t for t, _ in dropped[0])
    history = training_examples(conversation, chatml, reasoning="drop-history")
    assert len(history) == 2  # reply 2's history loses reply 1's trace: one example per reply
    first, second = ("".join(t for t, _ in example) for example in history)
    assert "先算1+1。" in first and "先算1+1。" not in second and "2再加1。" in second


def test_built_in_templates_write_tools_calls_and_results_in_the_documented_format():
    conversation, _, _ = CASES["text-and-call"]()
    for name in ("seed", "chatml", "llama3", "glm4"):
        (pieces,) = training_examples(conversation, name)
        text = "".join(t for t, _ in pieces)
        replies = [t for t, supervised in pieces if supervised]
        assert "<tools>\n" + json.dumps(WEATHER, ensure_ascii=False) + "\n</tools>" in text
        assert replies == ['我来查一下。\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "上海"}}\n</tool_call>',
                           "上海今天晴。"]
        assert f"<tool_response>\n{TOOL_RESULT}\n</tool_response>" in text
        assert not any("<tools>" in t or "<tool_response>" in t for t in replies)  # masked: prompt only


def test_a_template_that_would_drop_the_tools_is_an_error_not_silence(tokenizers):
    glm = NativeTemplate.from_tokenizer(tokenizers["glm4"])  # GLM-4 reads tools from a message, not `tools=`
    conversation, _, _ = CASES["tools"]()
    with pytest.raises(ValueError, match="does not write the tool list"):
        training_examples(conversation, glm)


def test_train_counts_and_records_the_dialogues_trained_one_example_per_reply(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli
    from instruct_data.training.tiny import DEFAULT_TEXT, make_tiny_model

    chat_template = (FIXTURES / "qwen3.jinja").read_text(encoding="utf-8")
    rows = []
    for index, name in enumerate(["single", "multi-system-whitespace", "think", "tools", "single"]):
        conversation, _, _ = CASES[name]()
        rows.append({**conversation.model_dump(exclude_none=True), "id": f"c:{index}"})
    data = tmp_path / "conversations.jsonl"
    data.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    model = make_tiny_model(tmp_path / "qwen3", "qwen2", texts=DEFAULT_TEXT + [json.dumps(rows, ensure_ascii=False)],
                            chat_template=chat_template, extra_special_tokens=["<|im_start|>", "<|im_end|>"])
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--model", str(model), "--out", str(out),
                                      "--template", "native", "--max-steps", "1", "--batch-size", "2",
                                      "--max-len", "512", "--cache-dir", str(tmp_path / "cache"), "--no-progress",
                                      "--save-steps", "10"])
    assert result.exit_code == 0, result.output
    # 3 of 5 dialogues have several replies: 3 + 2 + 2 examples for them, 1 each for the other two.
    assert "3 of 5 dialogues are trained one example per reply (7 examples)" in result.output
    run_config = json.loads((out / "run_config.json").read_text())["resolved"]
    assert run_config["reasoning"] == "keep"
    assert run_config["supervision"]["one_example_per_reply"]["rows"] == 3
    assert run_config["supervision"]["one_example_per_reply"]["examples"] == 7
    metrics = json.loads((out / "metrics.json").read_text())["data"]["train"]
    assert metrics["rows"] == 5 and metrics["examples"] == 9


def test_reasoning_mode_reaches_the_examples_read_from_a_file(tmp_path):
    from instruct_data.training.data import per_reply, read_pieces

    conversation, _, _ = CASES["think"]()
    path = tmp_path / "conversations.jsonl"
    path.write_text(conversation.model_dump_json(exclude_none=True) + "\n", encoding="utf-8")
    chatml = get_template("chatml")
    _, kept = read_pieces(path, chatml, reasoning="keep")
    _, history = read_pieces(path, chatml, reasoning="drop-history")
    assert [per_reply(p) for p in kept] == [0]  # one example, both traces trained
    assert [per_reply(p) for p in history] == [1, 2]  # one per reply, counted as such
    assert "先算1+1。" not in "".join(t for t, _ in history[1])


def test_a_template_that_drops_the_trace_of_the_reply_it_trains_is_an_error_with_keep():
    r1 = NativeTemplate((FIXTURES / "deepseek-r1.jinja").read_text(encoding="utf-8"), (("bos_token", "<s>"),))
    conversation, _, _ = CASES["think"]()
    with pytest.raises(ValueError, match="drops the reasoning trace of reply 1"):
        training_examples(conversation, r1)  # keep: the trace would silently not be trained
    (dropped,) = training_examples(conversation, r1, reasoning="drop")  # answers only, as R1's template renders them
    assert [t for t, s in dropped if s] == ["等于2。<｜end▁of▁sentence｜>", "等于3。<｜end▁of▁sentence｜>"]
