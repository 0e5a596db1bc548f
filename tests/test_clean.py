"""Every cleaning rule: a row it must drop (or change) and a row it must keep."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from instruct_data.clean import RULES, CleanSettings, Cleaner, reason_codes
from instruct_data.clean.filters import (AiIdentity, BelleBlacklist, ChineseShare, Echo, Empty, Length, Pii, Refusal,
                                         Repetition, Truncated, valid_id_card)
from instruct_data.clean.normalizers import (FixUnicode, FullwidthToHalfwidth, StripControl, TidyWhitespace,
                                             ToSimplified)
from instruct_data.schema import Conversation, Turn


def conv(instruction: str, reply: str, input: str | None = None, history=()) -> Conversation:
    turns = []
    for question, answer in history:
        turns += [Turn(role="user", text=question), Turn(role="assistant", text=answer)]
    turns += [Turn(role="user", text=instruction, input=input), Turn(role="assistant", text=reply)]
    return Conversation(id="t:1", source="t", turns=turns)


PROSE = ("春天来了，公园里的桃花和樱花陆续开放，吸引了许多市民前来赏花。孩子们在草地上放风筝，"
         "老人们在树荫下下棋聊天。傍晚时分，湖面映着晚霞，游船缓缓划过，整个公园显得格外宁静。")


def keeps(rule, row) -> bool:
    return rule.apply(row) is None


# ------------------------------------------------------------------ normalizers

def test_fix_unicode_repairs_mojibake_and_keeps_clean_text():
    broken = "你好，世界".encode("utf-8").decode("latin-1")
    row = conv(broken, "好的")
    assert FixUnicode().apply(row) is True
    assert row.prompt.text == "你好，世界"
    clean = conv("“引号”和全角：Ａ１，保持原样", "好的")
    assert FixUnicode().apply(clean) is False
    assert clean.prompt.text == "“引号”和全角：Ａ１，保持原样"


def test_strip_control_drops_invisible_characters_but_keeps_newlines():
    row = conv("请\u200b解释\x07一下\ufeff光合作用", "第一行\n第二行\u200b")
    assert StripControl().apply(row) is True
    assert row.prompt.text == "请解释一下光合作用"
    assert row.reply == "第一行\n第二行"
    keep = conv("请解释\t一下\n光合作用", "表情👨\u200d👩\u200d👧保留")
    assert StripControl().apply(keep) is False


def test_tidy_whitespace_leaves_code_blocks_alone():
    reply = "下面是代码：  \n\n\n\n```python\ndef f():\n    return  1\n\n\n\n```\n结束   了  "
    row = conv("  写一个函数  ", reply)
    assert TidyWhitespace().apply(row) is True
    assert row.prompt.text == "写一个函数"
    assert row.reply == "下面是代码：\n\n```python\ndef f():\n    return  1\n\n\n\n```\n结束 了"
    keep = conv("写一个函数", "列表：\n  - 缩进保留\n  - 第二项")
    assert TidyWhitespace().apply(keep) is False


def test_to_simplified_is_off_by_default_and_converts_when_on():
    assert "to_simplified" not in Cleaner().enabled
    row = conv("請問這個漢字怎麼讀", "這樣讀")
    rule = ToSimplified(ToSimplified.Settings(enabled=True))
    assert rule.apply(row) is True
    assert row.prompt.text == "请问这个汉字怎么读"
    assert rule.apply(conv("请问这个汉字怎么读", "这样读")) is False


def test_fullwidth_to_halfwidth_changes_letters_and_digits_only():
    row = conv("计算１２＋３４，用ＡＢＣ表示", "答案：４６。")
    assert FullwidthToHalfwidth().apply(row) is True
    assert row.prompt.text == "计算12＋34，用ABC表示"
    assert row.reply == "答案：46。"
    assert FullwidthToHalfwidth().apply(conv("中文标点：，。？！保持", "好的。")) is False


# ------------------------------------------------------------------ filters

def test_empty_drops_a_turn_emptied_by_normalizers():
    row = conv("\u200b\u200b", "好的")
    Cleaner().normalizers[1].apply(row)  # strip_control empties the instruction
    assert Empty().apply(row).reason == "empty_instruction"
    row = conv("说点什么", "\u200b")
    StripControl().apply(row)
    assert Empty().apply(row).reason == "empty_reply"
    assert keeps(Empty(), conv("说点什么", "好的"))


def test_length_per_field_with_tunable_limits():
    rule = Length(Length.Settings(min_instruction=4, max_reply=20))
    assert rule.apply(conv("你好", "你好呀")).reason == "instruction_too_short"
    assert rule.apply(conv("介绍一下北京", "北" * 21)).reason == "reply_too_long"
    assert Length(Length.Settings(max_instruction=5)).apply(conv("介绍一下北京的历史", "好")).reason == "instruction_too_long"
    assert Length(Length.Settings(min_reply=3)).apply(conv("介绍一下北京", "好")).reason == "reply_too_short"
    assert keeps(rule, conv("介绍一下北京", "北京是中国的首都。"))


def test_an_empty_reply_late_in_a_dialogue_cuts_it_there():
    from instruct_data.clean import Cleaner

    talk = Conversation(id="t:1", source="t", turns=[
        Turn(role="user", text="人们对催眠戒烟想了解什么？"), Turn(role="assistant", text="是否有效、是否安全。"),
        Turn(role="user", text="有副作用吗？"), Turn(role="assistant", text="很少。"),
        Turn(role="user", text="还有呢？"), Turn(role="assistant", text="\u200b")])
    verdict, changed = Cleaner().clean(talk)
    assert verdict is None and changed.count("turns_cut.empty") == 1
    assert [t.text for t in talk.turns][-1] == "很少。" and len(talk.turns) == 4
    assert Cleaner().clean(conv("说点什么", "\u200b"))[0].reason == "empty_reply"  # a single-turn row: dropped


def test_a_dialogue_is_not_dropped_for_a_user_turn_of_one_character():
    """A text adventure answered `1`, a greeting `嗨`: MedicalGPT's ShareGPT-zh dialogues of up to
    330 turns were dropped whole as `instruction_too_short`."""
    game = Conversation(id="t:1", source="t", turns=[
        Turn(role="user", text="你将扮演一款文字冒险游戏，给我选项。"), Turn(role="assistant", text="你想做什么？\n1. 下楼\n2. 看电视"),
        Turn(role="user", text="1"), Turn(role="assistant", text="你走下楼，看到了妈妈。"),
        Turn(role="user", text="嗨"), Turn(role="assistant", text="妈妈说：早上好！")])
    assert keeps(Length(), game)
    assert Length().apply(conv("?", "你想问什么？")).reason == "instruction_too_short"  # a single-turn row still


def test_chinese_share_ignores_code_and_digits():
    english = conv("翻译", "The quick brown fox jumps over the lazy dog near the river bank today.")
    assert ChineseShare().apply(english).reason == "low_chinese_share"
    code_reply = conv("用Python写一个求和函数", "可以这样写：\n```python\ndef add(numbers):\n    return sum(numbers)\n```\n这个函数返回列表之和。")
    assert keeps(ChineseShare(), code_reply)
    assert keeps(ChineseShare(), conv("计算 123 + 456", "123 + 456 = 579"))
    assert keeps(ChineseShare(), conv("介绍一下 Python 语言", "Python 是一种流行的编程语言，语法简洁，适合初学者。"))


def test_repetition_drops_looping_replies_and_keeps_prose():
    looping = conv("写一段话", "我很喜欢这个公园。" * 8)
    assert Repetition().apply(looping).reason == "repeated_sentences"
    stutter = conv("写一段话", "今天天气很好" + "哈哈哈哈哈哈哈哈哈哈" * 12)
    assert Repetition().apply(stutter).reason == "repeated_ngrams"
    assert keeps(Repetition(), conv("写一段描写公园的话", PROSE))
    steps = conv("列出步骤", "1. 准备材料。\n2. 清洗蔬菜。\n3. 切成小块。\n4. 下锅翻炒。\n5. 加盐调味。")
    assert keeps(Repetition(), steps)


@pytest.mark.parametrize("reply", ["作为一个AI语言模型，我没有个人观点。", "我是ChatGPT，很高兴为你服务。",
                                   "我是由OpenAI训练的语言模型。", "As an AI language model, I cannot do that."])
def test_ai_identity_drops_boilerplate(reply):
    assert AiIdentity().apply(conv("你怎么看这件事", reply)).reason == "ai_identity"


def test_ai_identity_keeps_replies_about_ai():
    assert keeps(AiIdentity(), conv("介绍一下人工智能", "人工智能是计算机科学的一个分支，作为人工智能的重要方向，机器学习发展很快。"))


def test_belle_blacklist_is_optional_and_tunable():
    row = conv("请描述这张图片里的内容", "图片里有一只猫。")
    assert "belle_blacklist" not in Cleaner().enabled
    rule = BelleBlacklist(BelleBlacklist.Settings(enabled=True))
    assert rule.apply(row).reason == "blacklisted_word"
    assert rule.apply(conv("打开 HTTP://example.com", "好的")).reason == "blacklisted_word"
    assert keeps(rule, conv("介绍一下长城", "长城是中国古代的军事防御工程。"))
    narrow = BelleBlacklist(BelleBlacklist.Settings(enabled=True, words=["链接"]))
    assert keeps(narrow, row)


def test_refusal_drops_a_reply_that_opens_by_refusing():
    rule = Refusal(Refusal.Settings(enabled=True))
    assert rule.apply(conv("帮我查一下今天的股价", "抱歉，我无法访问实时数据。")).reason == "refusal"
    assert rule.apply(conv("帮我查一下", "很抱歉，作为一个语言模型，我不能浏览网页。")).reason == "refusal"
    assert keeps(rule, conv("道歉信怎么写", "写道歉信时，先说明事情经过，再表达歉意，例如“抱歉，我无法按时赴约”。"))


def test_truncated_drops_a_reply_cut_off():
    assert Truncated().apply(conv("列举三种水果", "苹果、香蕉、")).reason == "truncated_reply"
    assert Truncated().apply(conv("写代码", "```python\nprint(1)\n")).reason == "truncated_reply"
    assert Truncated().apply(conv("解释", "原因有以下几点：")).reason == "truncated_reply"
    assert keeps(Truncated(), conv("列举三种水果", "苹果、香蕉和橙子。"))
    assert keeps(Truncated(), conv("写代码", "```python\nprint(1)\n```"))


def test_echo_drops_a_reply_repeating_its_instruction():
    assert Echo().apply(conv("今天天气怎么样？", "今天天气怎么样")).reason == "reply_echoes_instruction"
    assert keeps(Echo(), conv("今天天气怎么样？", "今天天气晴朗。"))


def test_echo_compares_with_the_input_joined():
    row = conv("把下面的句子抄一遍", "你好", input="你好")
    assert keeps(Echo(), row)  # copying the input is the task, not an echo of the whole instruction
    assert Echo().apply(conv("你好", "你好！")).reason == "reply_echoes_instruction"


def test_pii_masks_by_default():
    row = conv("我的电话是13812345678，邮箱 zhang.san@163.com", "好的，已记录。身份证 11010519491231002X")
    rule = Pii()
    assert rule.apply(row) is None
    assert row.prompt.text == "我的电话是[PHONE]，邮箱 [EMAIL]"
    assert row.reply == "好的，已记录。身份证 [ID_CARD]"
    assert rule.changed == 1


def test_pii_rejects_when_asked_and_keeps_ordinary_numbers():
    rule = Pii(Pii.Settings(mode="reject"))
    assert rule.apply(conv("联系 138-1234-5678", "好的")).reason == "pii"
    plain = conv("计算 123456789012 + 1", "结果是 123456789013。订单号 110105194912310021 无效")
    masker = Pii()
    assert keeps(rule, plain) and keeps(masker, plain)
    assert masker.changed == 0
    assert valid_id_card("11010519491231002X") and not valid_id_card("110105194912310021")


# ------------------------------------------------------------------ the chain and its settings

def test_cleaner_runs_normalizers_then_filters_and_reports_changes():
    cleaner = Cleaner(CleanSettings.model_validate({"fullwidth_to_halfwidth": True, "ai_identity": True}))
    row = conv("  请介绍一下Ｐｙｔｈｏｎ\u200b  ", "Ｐｙｔｈｏｎ是一种编程语言，简单易学，电话13812345678。")
    verdict, changed = cleaner.clean(row)
    assert verdict is None
    assert changed == ["strip_control", "tidy_whitespace", "fullwidth_to_halfwidth", "pii", "pii.phone"]
    assert row.prompt.text == "请介绍一下Python"
    verdict, _ = cleaner.clean(conv("你好吗", "作为一个AI语言模型，我没有感情。"))
    assert verdict.reason == "ai_identity"
    assert cleaner.counts()["dropped"]["ai_identity"] == 1


def test_every_rule_can_be_switched_off_and_wrong_keys_are_named():
    off = CleanSettings.model_validate({rule.name: False for rule in RULES})
    assert Cleaner(off).enabled == []
    with pytest.raises(ValidationError, match="min_instr"):
        CleanSettings.model_validate({"length": {"min_instr": 3}})
    with pytest.raises(ValidationError, match="no_such_rule"):
        CleanSettings.model_validate({"no_such_rule": True})
    assert set(reason_codes()) >= {"empty", "length", "pii", "echo"}


def test_chinese_and_latin_counts_on_utf8_bytes():
    from instruct_data.clean.filters import count_han_latin

    assert count_han_latin("中文ABC，。é１２3") == (2, 4)
    assert count_han_latin("") == (0, 0)
