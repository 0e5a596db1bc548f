"""Every template, single- and multi-turn, with exact expected strings."""

import pytest

from instruct_data.schema import Conversation, Turn
from instruct_data.templates import TEMPLATES, get_template, render, render_prompt, segments

SYSTEM = "你是一个乐于助人的助手。"


def conv(*texts, system=None, input=None):
    turns = [Turn(role="user" if i % 2 == 0 else "assistant", text=t) for i, t in enumerate(texts)]
    if input:
        turns[-2] = Turn(role="user", text=turns[-2].text, input=input)
    return Conversation(id="t:1", source="t", turns=turns, system=system)


SINGLE = conv("把这句话翻译成英文。", "Good morning.", input="早上好")
MULTI = conv("你好", "你好！有什么可以帮你？", "讲个笑话", "从前有座山，山里有座庙。", system=SYSTEM)

EXPECTED_SINGLE = {
    "seed": "Instruction: 把这句话翻译成英文。\nInput: 早上好\nAnswer: ",
    "chatglm": "[Round 1]\n问：把这句话翻译成英文。\n早上好\n答：",
    "belle": "Human: \n把这句话翻译成英文。\n早上好\n\nAssistant: \n",
    "chatml": "<|im_start|>user\n把这句话翻译成英文。\n早上好<|im_end|>\n<|im_start|>assistant\n",
    "llama3": "<|start_header_id|>user<|end_header_id|>\n\n把这句话翻译成英文。\n早上好<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "glm4": "[gMASK]<sop><|user|>\n把这句话翻译成英文。\n早上好<|assistant|>\n",
}

EXPECTED_MULTI = {
    "seed": f"{SYSTEM}\nInstruction: 你好\nAnswer: 你好！有什么可以帮你？\nInstruction: 讲个笑话\nAnswer: ",
    "chatglm": f"{SYSTEM}\n[Round 1]\n问：你好\n答：你好！有什么可以帮你？\n[Round 2]\n问：讲个笑话\n答：",
    "belle": f"{SYSTEM}\nHuman: \n你好\n\nAssistant: \n你好！有什么可以帮你？\n\nHuman: \n讲个笑话\n\nAssistant: \n",
    "chatml": f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
              "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n你好！有什么可以帮你？<|im_end|>\n"
              "<|im_start|>user\n讲个笑话<|im_end|>\n<|im_start|>assistant\n",
    "llama3": f"<|start_header_id|>system<|end_header_id|>\n\n{SYSTEM}<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\n你好<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n你好！有什么可以帮你？<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\n讲个笑话<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n",
    "glm4": f"[gMASK]<sop><|system|>\n{SYSTEM}<|user|>\n你好<|assistant|>\n你好！有什么可以帮你？"
            "<|user|>\n讲个笑话<|assistant|>\n",
}


def test_every_shipped_template_is_tested():
    assert set(TEMPLATES) == set(EXPECTED_SINGLE) == set(EXPECTED_MULTI)


@pytest.mark.parametrize("name", sorted(EXPECTED_SINGLE))
def test_single_turn_with_input(name):
    assert render(SINGLE, name) == (EXPECTED_SINGLE[name], "Good morning.")


@pytest.mark.parametrize("name", sorted(EXPECTED_MULTI))
def test_multi_turn_history_and_system(name):
    assert render(MULTI, get_template(name)) == (EXPECTED_MULTI[name], "从前有座山，山里有座庙。")


def test_seed_without_input_matches_chatglm_tuning():
    assert render(conv("用一句话介绍长城。", "长城是中国古代修建的军事防御工程。")) == (
        "Instruction: 用一句话介绍长城。\nAnswer: ", "长城是中国古代修建的军事防御工程。")


def test_system_argument_overrides_the_conversation():
    context, _ = render(MULTI, "chatml", system="你是诗人。")
    assert context.startswith("<|im_start|>system\n你是诗人。<|im_end|>\n") and SYSTEM not in context


def test_render_prompt_is_what_evaluation_uses():
    history = [(MULTI.turns[0], MULTI.turns[1])]
    assert render_prompt(get_template("chatglm"), history, MULTI.turns[2]) == (
        "[Round 1]\n问：你好\n答：你好！有什么可以帮你？\n[Round 2]\n问：讲个笑话\n答：")


def test_history_helpers_on_the_record():
    assert MULTI.history == [("你好", "你好！有什么可以帮你？")] and MULTI.n_rounds == 2
    assert MULTI.prompt.text == "讲个笑话" and MULTI.reply == "从前有座山，山里有座庙。"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_segments_rebuild_every_context(name):
    three = conv("第一问", "第一答", "第二问", "第二答", "第三问", "第三答", system=SYSTEM)
    pieces = segments(three, name)
    assert [text for text, supervised in pieces if supervised] == ["第一答", "第二答", "第三答"]
    assert [supervised for _, supervised in pieces] == [False, True] * 3
    for n_rounds in (1, 2, 3):
        upto = "".join(text for text, _ in pieces[: 2 * n_rounds - 1])
        shorter = conv(*[t.text for t in three.turns[: 2 * n_rounds]], system=SYSTEM)
        assert upto == render(shorter, name)[0]


def test_rendered_context_passes_through_unchanged():
    rendered = Conversation(id="c:1", source="c", rendered=True, turns=[
        Turn(role="user", text="Instruction: 早\nAnswer: "), Turn(role="assistant", text="早上好")])
    assert render(rendered, "chatml") == ("Instruction: 早\nAnswer: ", "早上好")


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown template 'alpaca'.*seed"):
        get_template("alpaca")
