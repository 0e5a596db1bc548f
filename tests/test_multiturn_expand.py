"""expand(): modes, history limits, the length budget and record ids, on hand-built dialogues."""

import pytest
from pydantic import ValidationError

from instruct_data.table import Reject
from instruct_data.multiturn import OVER_BUDGET, MultiturnSettings, expand
from instruct_data.schema import Conversation, Turn


def dialogue(*texts, system=None, category=None, conv_id="mine:7"):
    turns = [Turn(role="user" if i % 2 == 0 else "assistant", text=t) for i, t in enumerate(texts)]
    return Conversation(id=conv_id, source="mine", turns=turns, system=system, category=category)


THREE = dialogue("你好", "你好！有什么可以帮你？", "讲个笑话", "从前有只猫。", "再讲一个", "小狗学会了算数。")


def test_every_turn_gives_one_record_per_reply_with_earlier_rounds_in_seed_form():
    records = expand(THREE, "seed", MultiturnSettings(mode="every-turn"))
    assert [r["id"] for r in records] == ["mine:7#t1", "mine:7#t2", "mine:7#t3"]
    assert [r["target"] for r in records] == ["你好！有什么可以帮你？", "从前有只猫。", "小狗学会了算数。"]
    assert records[2]["context"] == (
        "Instruction: 你好\nAnswer: 你好！有什么可以帮你？\n"
        "Instruction: 讲个笑话\nAnswer: 从前有只猫。\n"
        "Instruction: 再讲一个\nAnswer: ")
    assert records[0]["context"] == "Instruction: 你好\nAnswer: "


def test_last_turn_gives_one_record_keyed_by_the_conversation_id():
    records = expand(THREE, "chatglm", MultiturnSettings(mode="last-turn"))
    assert records == [{
        "context": "[Round 1]\n问：你好\n答：你好！有什么可以帮你？\n[Round 2]\n问：讲个笑话\n答：从前有只猫。\n"
                   "[Round 3]\n问：再讲一个\n答：",
        "target": "小狗学会了算数。", "id": "mine:7", "source": "mine"}]


def test_max_history_turns_keeps_the_most_recent_rounds_renumbered():
    records = expand(THREE, "chatglm", MultiturnSettings(mode="last-turn", max_history_turns=1))
    assert records[0]["context"] == "[Round 1]\n问：讲个笑话\n答：从前有只猫。\n[Round 2]\n问：再讲一个\n答："
    records = expand(THREE, "chatglm", MultiturnSettings(mode="last-turn", max_history_turns=0))
    assert records[0]["context"] == "[Round 1]\n问：再讲一个\n答："


def test_char_budget_drops_oldest_whole_rounds_and_counts_the_target():
    full = expand(THREE, "seed", MultiturnSettings(mode="last-turn"))[0]
    one_round = "Instruction: 讲个笑话\nAnswer: 从前有只猫。\nInstruction: 再讲一个\nAnswer: "
    budget = len(one_round) + len("小狗学会了算数。")
    assert len(full["context"]) + len(full["target"]) > budget
    records = expand(THREE, "seed", MultiturnSettings(mode="last-turn", max_context_chars=budget))
    assert records[0]["context"] == one_round
    records = expand(THREE, "seed", MultiturnSettings(mode="last-turn", max_context_chars=budget - 1))
    assert records[0]["context"] == "Instruction: 再讲一个\nAnswer: "


def test_question_and_reply_alone_over_budget_is_a_reject_with_the_reason():
    result = expand(THREE, "seed", MultiturnSettings(mode="every-turn", max_context_chars=20))
    assert isinstance(result, Reject)
    assert result.reason == OVER_BUDGET
    assert "round 1" in result.detail and "over the budget of 20" in result.detail


def test_system_text_is_added_or_overridden_where_the_template_has_a_slot():
    conv = dialogue("你是谁？", "我是助手。", system="你是一个有帮助的助手。")
    chatml = expand(conv, "chatml", MultiturnSettings())[0]["context"]
    assert chatml == ("<|im_start|>system\n你是一个有帮助的助手。<|im_end|>\n"
                      "<|im_start|>user\n你是谁？<|im_end|>\n<|im_start|>assistant\n")
    override = expand(conv, "llama3", MultiturnSettings(), system="请简短回答。")[0]["context"]
    assert override.startswith("<|start_header_id|>system<|end_header_id|>\n\n请简短回答。<|eot_id|>")
    assert "有帮助" not in override


def test_category_is_carried_to_every_record():
    conv = dialogue("问一", "答一", "问二", "答二", category="open qa")
    assert {r["category"] for r in expand(conv, "belle", MultiturnSettings())} == {"open qa"}


@pytest.mark.parametrize("bad", [
    {"max_context_chars": 10, "max_context_tokens": 10, "tokenizer": "x"},
    {"max_context_tokens": 10},
    {"tokenizer": "x"},
    {"mode": "all"},
    {"max_history_turns": -1},
    {"max_context_chars": 0},
    {"unknown_key": 1},
])
def test_settings_reject_bad_combinations(bad):
    with pytest.raises(ValidationError):
        MultiturnSettings(**bad)


def test_an_already_rendered_context_passes_through_and_still_meets_the_budget():
    conv = Conversation(id="ct:1", source="ct", rendered=True, turns=[
        Turn(role="user", text="Instruction: 你好\nAnswer: "), Turn(role="assistant", text="你好！")])
    assert expand(conv, "chatglm", MultiturnSettings()) == [
        {"context": "Instruction: 你好\nAnswer: ", "target": "你好！", "id": "ct:1#t1", "source": "ct"}]
    assert expand(conv, "chatglm", MultiturnSettings(mode="last-turn"))[0]["id"] == "ct:1"
    rejected = expand(conv, "seed", MultiturnSettings(max_context_chars=5))
    assert isinstance(rejected, Reject) and rejected.reason == OVER_BUDGET


def test_stats_count_rounds_dropped_by_the_limit_and_by_the_budget():
    from collections import Counter

    stats = Counter()
    expand(THREE, "seed", MultiturnSettings(mode="every-turn", max_history_turns=1), stats=stats)
    assert stats == {"history_rounds_dropped_by_limit": 1}  # round 3 loses round 1
    stats = Counter()
    expand(THREE, "seed", MultiturnSettings(mode="last-turn", max_context_chars=40), stats=stats)
    assert stats == {"history_rounds_dropped_by_budget": 2}


def test_a_rejected_conversation_adds_nothing_to_the_drop_stats():
    from collections import Counter

    stats = Counter()
    long_last = dialogue("问一", "答一", "问二", "答二" * 40)
    assert isinstance(expand(long_last, "seed", MultiturnSettings(max_history_turns=0, max_context_chars=60),
                             stats=stats), Reject)
    assert stats == {}
