"""The `garbled` rule (instruct_data/clean/garbled.py): Chinese prose that lost its punctuation.

The garbled replies below were written for these tests in the manner of the defect seen in a
public medical Q&A table: each comma was removed together with the character before it."""

from __future__ import annotations

from instruct_data.clean import Cleaner
from instruct_data.clean.garbled import Garbled, longest_han_run
from instruct_data.schema import Conversation, Turn

RULE = Garbled(Garbled.Settings(enabled=True))


def conv(instruction: str, *replies_and_questions: str) -> Conversation:
    texts = [instruction, *replies_and_questions]
    return Conversation(id="t:1", source="t", turns=[Turn(role="user" if i % 2 == 0 else "assistant", text=text)
                                                     for i, text in enumerate(texts)])


# A sound reply, then the same reply with every comma and the character before it dropped.
SOUND = ("高血压患者平时要注意低盐低脂饮食，少吃腌制食品，多吃新鲜蔬菜和水果。每天保持适量运动，比如散步、慢跑或者打太极拳，"
         "运动强度以不感到疲劳为宜。要按时服用降压药物，不要自行停药或者减量，定期测量血压并做好记录。如果出现头痛、头晕、胸闷等"
         "不适症状，应及时到医院就诊。")
COMMAS_DROPPED = ("高血压患者平时要注意低盐低脂饮少吃腌制食多吃新鲜蔬菜和水果。每天保持适量运比如散步、慢跑或者打太极运动强度以不感到疲劳"
                  "为宜。要按时服用降压药不要自行停药或者减定期测量血压并做好记录。如果出现头痛、头晕、胸闷等不适症应及时到医院就诊。")
# No punctuation at all for over 70 characters, in a reply that has commas elsewhere.
RUN_ON = ("你好，这种情况首先要考虑是不是血糖控制得不好引起的症状建议你先去医院内分泌科做个空腹血糖和糖化血红蛋白检查看看最近三个月"
          "的血糖控制情况然后再根据检查结果调整用药方案平时注意饮食清淡。")


def test_a_reply_whose_commas_were_dropped_with_a_character_is_garbled():
    verdict = RULE.apply(conv("高血压平时要注意什么？", COMMAS_DROPPED))
    assert verdict is not None and verdict.reason == "no_commas"
    assert RULE.apply(conv("高血压平时要注意什么？", SOUND)) is None


def test_a_long_run_without_any_mark_is_garbled():
    verdict = RULE.apply(conv("血糖高怎么办？", RUN_ON))
    assert verdict is not None and verdict.reason == "run_on_text"
    assert "8" in verdict.detail  # the run's length is named


def test_sound_text_without_commas_is_kept():
    # lists of short items, a table, a short paragraph of two sentences, an English reply, code
    kept = [
        "治疗方法：\n1. 按时服药\n2. 控制饮食\n3. 适量运动\n4. 定期复查血压和血糖\n5. 保持良好的作息习惯和愉快的心情",
        "- 苹果\n- 香蕉\n- 橙子\n- 葡萄柚和火龙果是糖分较低的水果\n- 猕猴桃含有丰富的维生素C适合经常食用",
        "| 药物 | 用法 |\n|---|---|\n| 二甲双胍 | 每日两次随餐服用效果最好也最不容易引起胃肠道不适 |",
        "主要的科技公司正在考虑使用人工智能工具来帮助过滤网上的极端内容。这是在各国政府施加了更大压力之后出现的。",
        "Regular exercise, a balanced diet and enough sleep help to keep blood pressure in a healthy range " * 3,
        "```python\n# 读取数据文件并计算每一列的平均值然后把结果写入一个新的文件里面方便以后查看和比较各个月份的数据变化情况\nx = 1\n```",
    ]
    for reply in kept:
        assert RULE.apply(conv("请回答。", reply)) is None, reply


def test_the_rule_judges_each_round_of_a_dialogue():
    row = conv("高血压要注意什么？", SOUND, "那糖尿病呢？", COMMAS_DROPPED)
    verdict = RULE.apply(row)
    assert verdict is not None and verdict.turn == 2


def test_off_by_default_and_on_by_recipe():
    assert "garbled" not in Cleaner().enabled
    cleaner = Cleaner({"garbled": True})
    row = conv("高血压要注意什么？", SOUND, "那糖尿病呢？", COMMAS_DROPPED)
    verdict, changed = cleaner.clean(row)
    # the bad second round is cut, the sound first round stays
    assert verdict is None and changed == ["turns_cut.garbled"] and len(row.turns) == 2


def test_longest_han_run_is_exact():
    assert longest_han_run("一二三四五六七八九十" * 8, 70) == 80
    assert longest_han_run("一二三四五，六七八九十" * 20, 70) == 0
    text = "短句。" + "字" * 69 + "，" + "字" * 71 + "。"
    assert longest_han_run(text, 70) == 71
    assert longest_han_run("字" * 69 + "é" + "字" * 69, 70) == 0


def test_enumerations_and_translated_sentences_without_commas_are_kept():
    # false firings read on unlabeled public rows (a medical QA set, ShareGPT-zh), rewritten here
    enumeration = ("哮喘的治疗药物包括沙丁胺醇、特布他林、异丙托溴铵、布地奈德、氟替卡松、孟鲁司特、茶碱、泼尼松、氨茶碱、色甘酸钠等；"
                   "慢性阻塞性肺疾病的治疗药物包括噻托溴铵、沙美特罗、福莫特罗、茶碱、罗氟司特、阿奇霉素、氧疗、乙酰半胱氨酸、"
                   "羧甲司坦、肺康复训练等。")
    assert len([c for c in enumeration if "\u4e00" <= c <= "\u9fff"]) >= 100  # long enough to be judged
    translated = ("总体而言他在象征互动理论和微观社会学领域的工作凸显了理解日常社交互动如何塑造我们的自我呈现以及我们如何在各种社交场合中"
                  "创建并维护自己身份的重要性。")
    assert longest_han_run(translated, 70) >= 70  # a 70-character run: sound, translated text
    for reply in (enumeration, translated):
        assert RULE.apply(conv("请回答。", reply)) is None, reply


# ------------------------------------------------------------------ spun text, garbled code, debris
# Written for these tests in the manner of each defect (not taken from labeled rows).

SOUND_ANSWER = ("您好，根据您的叙述，这种情况多是由于饮食不当导致的胃部不适，建议及时到医院就诊，在医生指导下服用药物治疗，"
                "平时注意清淡饮食，保持良好的作息。")
# the same answer through a synonym spinner: 导致→致使, 就诊→复诊, 服用→服食, 治疗→救治, 注意→留意
SPUN_ANSWER = ("您好，根据您的叙述，这种情况多是由于饮食不当致使的胃部不适，建议及时到医院复诊，在医生指导下服食药物救治，"
               "平时留意清淡饮食，始终保持良好的作息。")


def test_spun_text_is_garbled_and_its_source_is_not():
    verdict = RULE.apply(conv("胃不舒服怎么办？", SPUN_ANSWER))
    assert verdict is not None and verdict.reason == "spun_text"
    assert "致使" in verdict.detail and "服食" in verdict.detail
    assert RULE.apply(conv("胃不舒服怎么办？", SOUND_ANSWER)) is None


def test_spun_text_needs_three_distinct_words_close_together():
    two = "这种情况多是由于饮食不当致使的，建议及时到医院就诊，在医生指导下服用药物救治。"  # 致使, 救治
    assert RULE.apply(conv("怎么办？", two)) is None
    same_word = "建议救治。及时救治。" * 5  # one word, however often
    assert RULE.apply(conv("怎么办？", same_word)) is None
    far_apart = "饮食不当致使胃部不适。" + "平时要多喝水，多吃蔬菜和水果，早睡早起，适量运动。" * 8 + "建议复诊。" \
        + "保持心情愉快，不要熬夜，按时吃饭，少吃辛辣的食物。" * 8 + "遵医嘱服食药物。"
    assert RULE.apply(conv("怎么办？", far_apart)) is None
    assert Garbled(Garbled.Settings(enabled=True, spun_words=0)).apply(conv("胃不舒服怎么办？", SPUN_ANSWER)) is None


def test_code_with_full_width_punctuation_is_garbled():
    broken = "def add_all（numbers， start）：\n    total = sum（numbers， start）\n    return total"
    verdict = RULE.apply(conv("写一个求和函数", broken))
    assert verdict is not None and verdict.reason == "garbled_code"
    fenced = "```java\nfor （int i = 0; i < n; i++） {\n    int m = Math.max（m， arr[i]）;\n    System.out.println（m）;\n}\n```"
    assert RULE.apply(conv("打印0到n", fenced)).reason == "garbled_code"


def test_sound_code_and_prose_with_full_width_marks_are_kept():
    kept = [
        "def greet(name):\n    print(\"你好，\" + name + \"！\")  # 输出（问候语）：\n    return name",
        "Python（一种编程语言）很容易学：它的语法简洁，适合初学者。\nJava（另一种语言）则更严格。",
        "公式如下：\nL =（1 / n）× sum（y - y'）\n其中n是样本数。",
        "```python\nx = 1\n```\n这段代码把1赋给x（一个变量）。",
        "只有一行：foo（bar）",
    ]
    for reply in kept:
        assert RULE.apply(conv("请回答。", reply)) is None, reply


def test_calculator_markup_latex_without_backslashes_and_broken_lines_are_garbled():
    cases = {
        "calculator_markup": "西红柿重 6 × 150 = <<6*150=900>>900 克。",
        "stripped_latex": "所以概率是 frac{3}{5}。",
        "broken_lines": "第一步：热身，原地踏步。\n第二步：双脚分开\n搏击操\n，身体微微前倾，出拳。",
    }
    for reason, reply in cases.items():
        verdict = RULE.apply(conv("请回答。", reply))
        assert verdict is not None and verdict.reason == reason, reply
    kept = [
        "位运算：x << 2 表示左移两位，y >> 1 表示右移一位。",
        "所以概率是 $\\frac{3}{5}$。",
        "中文的标点：\n，（逗号）\n。（句号）\n、（顿号）",
        "1、苹果\n2、香蕉",
    ]
    for reply in kept:
        assert RULE.apply(conv("请回答。", reply)) is None, reply
    off = Garbled(Garbled.Settings(enabled=True, debris=False, code=False))
    assert off.apply(conv("请回答。", cases["calculator_markup"])) is None
