"""The false drops and false keeps found on real public data (issue 11), each as a test.

Rows are short paraphrases of the real ones (the public files stay out of the project).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from instruct_data.clean import CleanSettings, Cleaner

# ai_identity is off by default (0.91 on the frozen test split); these cases test the rule itself.
AI_ON = {"ai_identity": True}
from instruct_data.clean.filters import (AiIdentity, Arithmetic, Echo, BelleBlacklist, ChineseShare, MissingAttachment,
                                         Repetition, Truncated, UnkTokens, WrongScript)
from instruct_data.clean.normalizers import DoubledLabel
from instruct_data.clean.pii import EMAIL, Pii
from instruct_data.schema import Conversation, Turn

ROOT = Path(__file__).resolve().parents[1]


def conv(instruction: str, reply: str, input: str | None = None, history=(), system: str | None = None) -> Conversation:
    turns = []
    for question, answer in history:
        turns += [Turn(role="user", text=question), Turn(role="assistant", text=answer)]
    turns += [Turn(role="user", text=instruction, input=input), Turn(role="assistant", text=reply)]
    return Conversation(id="t:1", source="t", turns=turns, system=system)


def kept(rule, row) -> bool:
    return rule.apply(row) is None


def on(rule_class, **settings):
    return rule_class(rule_class.Settings(enabled=True, **settings))


# ------------------------------------------------------------------ chinese_share: false drops

@pytest.mark.parametrize("instruction,reply", [
    ("将句子“El agua es importante”翻译成英语。", "The sentence \"El agua es importante\" translates to \"Water is important\" in English."),
    ("你能用英文介绍一下湖南岳阳这座城市吗？", "Yueyang is a city with a rich history and culture, located on the eastern bank of Dongting Lake."),
    ("写一个包含“do away with”短语的句子。", "Many people believe that we should do away with single-use plastics to protect the environment."),
    ("根据自然语言描述，生成SQL语句：查询平均工资高于整体平均的部门",
     "SELECT d.name, d.budget FROM instructor i JOIN department d ON i.dept_name = d.name\nGROUP BY i.dept_name"),
    ("编辑给定的代码以添加错误处理。", "def calculate_sum(numbers):\n    if not isinstance(numbers, list):  # Check the input\n"
     "        raise TypeError(\"Input must be a list of numbers\")\n    return sum(numbers)"),
    ("告诉我这个英文句子是否语法正确：John visited China after his graduation from Yale university, where he enjoyed the food.",
     "不是。正确的版本：John visited China after graduating from Yale University. He really enjoyed the food and the people there."),
    ("将以下电影按类型分类：The Matrix, Titanic, Toy Story, Alien",
     "科幻：The Matrix, Alien\n爱情：Titanic\n动画：Toy Story"),
    ("给我一个当前流行歌曲的列表。", "这里是截至2021年的一些热门歌曲，供你参考：\n1. Levitating - Dua Lipa\n2. Peaches - Justin Bieber ft. Daniel Caesar\n"
     "3. Save Your Tears - The Weeknd\n4. Good 4 U - Olivia Rodrigo\n建议查询音乐平台，查看当地实时最受欢迎的歌曲。"),
])
def test_chinese_share_keeps_english_that_was_asked_for_code_and_names(instruction, reply):
    assert kept(ChineseShare(), conv(instruction, reply))


def test_chinese_share_drops_a_chinese_request_answered_in_english():
    row = conv("列出四张披头士专辑。", "Here is a list of four albums by The Beatles: Abbey Road, Revolver, Help and Let It Be.")
    assert ChineseShare().apply(row).reason == "low_chinese_share"


# Batch 3 of the quality set (GUIDE.md) measured the default rules on sources nobody had tuned
# them on; their false drops outside its test split, each as a case written here.

@pytest.mark.parametrize("instruction,reply", [
    # a Chinese answer about Scratch blocks and English titles names them: between Chinese marks, in quotes
    ("Button () Pressed 可以和哪些扩展块一起使用？", "Button () Pressed 可以和Motor () Turn This Way for () Seconds、"
     "Motor () Turn That Way for () Seconds、Motor () Set Power ()%、When Distance is less than ()等扩展块一起使用。"),
    ("有哪些滚动平台游戏的例子？", "例如“More Than Just a Platformer Game”、“Bounce”、“Scrolling Platformer Game Template”和“Mario Scroller”。"),
    ("有哪些迷宫游戏的例子？", "The Adventures of the Black Circle和Maze Game（由AlSweigart制作）。"),
    ("如何使聊天机器人理解更多的单词？", "可以使用“if <[words v] contains [Word you would like the bot to understand]> then”块来检测单词。"),
    ("not () 块的替代方法是什么？", "可以使用< . . . :: grey> = [false]或者if <. . . :: grey> then set [result v] to [false] else set "
     "[result v] to [true]"),
    # code is the answer: its docstring and a line before it go with it
    ("编写一个函数来计算三角形的面积。", '"""\nCalculate the area of a triangle given the lengths of its sides\n"""\n\n'
     "def triangle_area(a, b, c):\n    s = (a + b + c) / 2\n    return (s * (s - a) * (s - b) * (s - c)) ** 0.5"),
    ("创建一个计算圆面积的程序。", "A program that calculates the area of a circle:\n\nradius = float(input('Radius? '))\n"
     "area = 3.14159 * radius ** 2\nprint('The area of the circle is:', area)"),
])
def test_chinese_share_keeps_chinese_answers_that_name_english_things(instruction, reply):
    assert kept(ChineseShare(), conv(instruction, reply))


def test_chinese_share_still_drops_english_prose_around_quoted_words():
    row = conv("创造一个将“flavor”和“satisfied”两个词组合起来的新词。",
               'A creative combination of the words "flavor" and "satisfied" could be "flatisfried" or "satisflavored".')
    assert ChineseShare().apply(row).reason == "low_chinese_share"
    row = conv("在HTML表单中，询问客户姓名的字段标签应该是什么？",
               '"First Name" should be used as the field label to ask for the customer\'s first name.')
    assert ChineseShare().apply(row).reason == "low_chinese_share"


def test_wrong_script_reads_a_request_for_traditional_characters_not_words_that_hold_its_letters():
    simplified = "在这次劳动课中，我真正体会到了劳动的意义和价值，也明白了坚持的重要性。" * 2
    assert kept(WrongScript(), conv("扩写以下心得体会：我真正体会到了劳动的意义", simplified))
    assert kept(WrongScript(), conv("医生建议他频繁体检，写一段提醒", simplified))
    for request in ("请用繁体中文回答：什么是劳动？", "把下面的话转为繁体：劳动的意义", "请写正體字版本", "Answer in Traditional Chinese"):
        assert WrongScript().apply(conv(request, simplified)).reason == "wrong_script", request


def test_repetition_keeps_a_song_s_chorus_and_a_survey_s_options():
    chorus = "合唱：\n让我们一起把握暑假，\n会玩得很开心，\n夏日永不说再见，\n夏日的欢乐永不消逝！\n\n"
    song = ("第1节：\n慵懒的日子和晴朗的天空，\n空气中弥漫着幸福。\n\n" + chorus + "第2节：\n心情好，没有压力，\n"
            "过着充实的生活。\n\n" + chorus + "桥：\n与家人共度时光，\n欢笑、歌唱、玩乐！\n\n" + chorus)
    assert kept(Repetition(), conv("写一首关于夏日欢乐的歌曲的歌词。", song))
    options = "\n    a. 非常满意\n    b. 比较满意\n    c. 一般般吧\n    d. 不太满意\n    e. 非常不满意\n"
    survey = "".join(f"{n}. {q}{options}" for n, q in enumerate(("您对整体购物体验有多满意？", "您对商品质量有多满意？",
                                                                  "您对配送速度有多满意？"), 1))
    assert kept(Repetition(), conv("设计一份调查问卷，衡量客户对网店的满意度。", survey))
    # an answer pasted again and again is still a repetition, in a song or not
    pasted = "口臭的原因有很多，最常见的是口腔卫生不好。建议每天刷牙两次，并用牙线清洁。" * 4
    assert Repetition().apply(conv("口臭怎么办？", pasted)).reason == "repeated_sentences"
    assert not kept(Repetition(), conv("写一首歌", "合唱：\n" + "我爱你，我爱你，我爱你，我爱你，我爱你。\n" * 12))


# ------------------------------------------------------------------ repetition: false drops

def test_repetition_leaves_code_tables_and_ascii_art_out():
    code = "代码如下：\n```python\n" + "print('hello world')\n" * 12 + "```\n这段代码打印十二次。"
    flow = "流程图：\n" + "    +-------------------+\n    |    处理数据       |\n    +-------------------+\n            |\n            v\n" * 5
    table = "对比如下：\n| 项目 | 数值 |\n|---|---|\n" + "| 速度 | 很快 |\n" * 10
    for reply in (code, flow, table):
        assert kept(Repetition(), conv("画一个流程图", reply))


def test_repetition_asked_for_is_not_a_defect():
    assert kept(Repetition(), conv("帮我把这句话重复3遍“我喜欢吃苹果”", "我喜欢吃苹果。\n我喜欢吃苹果。\n我喜欢吃苹果。"))
    # alpaca_zh_demo.json item 509: the instruction (in `input`) asks for a transcription, so the
    # reply is rightly the customer's words again.
    assert kept(Echo(), conv("输入：顾客：你好，我想要点一份鸡肉三明治。", "顾客：你好，我想要点一份鸡肉三明治。",
                             input="指示：将顾客所说的话转录下来。"))
    assert not kept(Echo(), conv("顾客：你好，我想要点一份鸡肉三明治。", "顾客：你好，我想要点一份鸡肉三明治。"))
    assert kept(Repetition(), conv("help me repeat this sentence five times, \"I like apple\"", "I like apple.\n" * 5))
    assert Repetition().apply(conv("写一段话", "我很喜欢这个公园。" * 8)).reason == "repeated_sentences"


# ------------------------------------------------------------------ truncated: false drops and false keeps

def test_truncated_knows_a_blank_to_fill_an_emoji_code_and_a_password():
    survey = "感谢您访问我们的网站！\n1. 找到信息有多容易？\n2. 您认为网站缺少哪些功能？\n3. 请提供您的其他反馈或意见："
    assert kept(Truncated(), conv("为网站创建一份客户反馈调查。", survey))
    fields = "请为您的购物体验打分（0-10）：\n- 产品质量：\n- 交货速度：\n- 总体满意度："
    assert kept(Truncated(), conv("写一段话", fields))
    assert kept(Truncated(), conv("给黑客马拉松的参赛者写一段鼓励", "祝你们好运，愉快地参与黑客马拉松！:hackathon:"))
    assert kept(Truncated(), conv("生成一个包含符号的随机密码。", "B9u（h#-g7WH1y"))
    # still cut off: a list header with nothing after it, a table announced and missing
    assert Truncated().apply(conv("为网站创建一份客户反馈调查。", "以下是调查问卷：\n1. 您对网站满意吗？\n2. 其他意见：\n"
                                  "表格将如下所示：")).reason == "truncated_reply"
    assert Truncated().apply(conv("列出硬件和软件", "硬件：鼠标、键盘\n软件：")).reason == "truncated_reply"


def test_truncated_judges_prose_endings_not_code_or_complete_ads():
    assert kept(Truncated(), conv("写一段MATLAB代码", "代码如下：\npuns = {'a', 'b'};\ndisp(puns);"))
    ad = "这款连衣裙经典圆领，优雅气质，高腰线，散开的裙摆，遮住了腿部粗的部分，穿起来很女神；裙身刺绣让人一眼难忘；"
    assert kept(Truncated(), conv("请根据以下标签为商品编写一段广告", ad))
    assert Truncated().apply(conv("列出爵士乐的元素", "1. 即兴。\n2. 和声。\n3. 音色：萨克斯、小号、")).reason == "truncated_reply"
    assert Truncated().apply(conv("写代码", "```python\nfor epoch in range(3):\n\n```")).reason == "truncated_reply"


# ------------------------------------------------------------------ ai_identity: spellings, questions about AI, strip

@pytest.mark.parametrize("reply", ["作为一个 AI 助手，我建议你多休息。", "抱歉，作为一个大型语言模型，我无法评价这家公司。",
                                   "作为人工智能，我无法拥有超能力。", "我只是一个开源的人工智能助理，不能替你做决定。",
                                   "由于我是一台语言模型，我无法生成图像。"])
def test_ai_identity_catches_the_spellings_it_missed(reply):
    assert AiIdentity().apply(conv("你怎么看", reply)).reason == "ai_identity"


def test_ai_identity_keeps_questions_about_ai_and_scripts():
    assert kept(AiIdentity(), conv("解释AI助手的目的，用两句话。", "AI助手的目的是利用人工智能技术帮助用户高效地完成任务。它在需要时提供帮助。"))
    assert kept(AiIdentity(), conv("解释GPT-3是什么。", "GPT-3 是一个由 OpenAI 开发的自然语言处理模型，拥有 1750 亿个参数。"))
    script = "用户: 嗨，你好吗？\nAI: 你好！我是一个人工智能，所以我没有真实的感受。但我很乐意为你服务！"
    assert kept(AiIdentity(), conv("创建一个有5个对话回合的聊天机器人脚本。", script))


def test_ai_identity_strip_mode_keeps_the_answer():
    reply = "作为一个AI助手，我建议房地产企业考虑以下策略。一是讲好项目故事，二是分享专业知识，三是参与社区活动，以此建立口碑并拉近与客户的距离。"
    row = conv("建议房地产企业使用三种内容营销策略。", reply)
    rule = on(AiIdentity, mode="strip")
    assert rule.apply(row) is None
    assert row.reply.startswith("一是讲好项目故事") and "AI" not in row.reply
    short = conv("描述一次难忘的经历。", "作为一个人工智能助手，我无法拥有自己的经历。")
    assert on(AiIdentity, mode="strip").apply(short).reason == "ai_identity"


# ------------------------------------------------------------------ dialogues, turn by turn

def test_a_bad_later_turn_cuts_the_dialogue_and_the_ledger_counts_it():
    row = conv("好的，谢谢你，从没想过AI会教我带孩子。", "不用客气。虽然作为一款人工智能程序，我无法替代亲身体验，但我会尽力帮助您。",
               history=[("如何在冲泡配方奶粉时减少泡沫？", "先加水再加奶粉，轻轻水平滚动奶瓶，不要上下猛摇。")])
    verdict, changed = Cleaner(AI_ON).clean(row)
    assert verdict is None
    assert [t.text[:4] for t in row.turns] == ["如何在冲", "先加水再"]
    assert changed.count("turns_cut.ai_identity") == 1


def test_a_bad_first_turn_is_removed_when_the_next_question_stands_alone():
    row = conv("列举10个最有名的建筑", "1. 埃菲尔铁塔\n2. 长城\n3. 金字塔",
               history=[("你最喜欢的建筑是什么？", "作为一个人工智能，我没有感情和偏好，但我可以告诉你一些著名的建筑。")])
    verdict, changed = Cleaner(AI_ON).clean(row)
    assert verdict is None and len(row.turns) == 2 and row.turns[0].text == "列举10个最有名的建筑"
    dependent = conv("你最喜欢以上哪一首？", "我喜欢第一首。", history=[("有哪些关于雪的古诗？", "作为一个AI，我没有喜好。")])
    assert Cleaner(AI_ON).clean(dependent)[0].reason == "ai_identity"


def test_drop_dialogue_mode_drops_the_whole_dialogue():
    settings = CleanSettings.model_validate({"on_bad_turn": "drop-dialogue", "ai_identity": True})
    row = conv("再讲一个", "作为一个AI语言模型，我不会讲笑话。", history=[("讲个笑话", "为什么小鸡要过马路？为了到另一边。")])
    verdict, _ = Cleaner(settings).clean(row)
    assert verdict.reason == "ai_identity" and verdict.turn == 2


# ------------------------------------------------------------------ blacklist, unk, attachments, labels

def test_belle_blacklist_leaves_linked_lists_folders_and_code_alone():
    rule = on(BelleBlacklist)
    assert kept(rule, conv("用Python实现一个链接列表", "链接列表由节点组成，每个节点指向下一个节点。"))
    assert kept(rule, conv("如何新建文件夹", "右键点击桌面，选择新建文件夹即可。"))
    assert kept(rule, conv("发送一个请求", "示例：\n```python\nrequests.get('http://example.org')  # 发送HTTP请求\n```\n以上代码发送请求。"))
    assert rule.apply(conv("描述这张图片", "图片里有一只猫。")).reason == "blacklisted_word"


def test_unk_tokens_drop_replies_with_lost_words():
    assert UnkTokens().apply(conv("写一段广告", "吐露出<UNK>微妙而又浪漫的清新之意。")).reason == "unk_tokens"
    assert UnkTokens().apply(conv("写一段广告", "设计点在于胸前的[UNK]印花\ufffd。")).reason == "unk_tokens"
    assert kept(UnkTokens(), conv("写一段广告", "简约大方的纯色卫衣。"))


def test_missing_attachment_finds_dead_links_and_replies_about_missing_material(tmp_path):
    (tmp_path / "here.png").write_bytes(b"png")
    rule = on(MissingAttachment, base=str(tmp_path))
    assert rule.apply(conv("描述图片", "如图所示：![示意图](images/fig1.png)")).reason == "missing_attachment"
    assert kept(rule, conv("描述图片", "如图所示：![示意图](here.png)"))
    assert kept(rule, conv("插入图片的语法", "写法是 `![图片描述](图片链接)`。"))
    assert rule.apply(conv("解释这幅漫画。", "您好，我无法看到您提到的漫画。能提供更多细节吗？")).reason == "missing_attachment"


def test_doubled_labels_are_removed():
    row = conv("输入三支篮球队的名称并生成一个口号。", "输出： 雷霆，公牛和网队：各显神通！", input="Input: 输入：雷霆队，公牛队，网队。")
    assert DoubledLabel().apply(row) is True
    assert row.prompt.input == "雷霆队，公牛队，网队。"
    assert row.reply == "雷霆，公牛和网队：各显神通！"
    assert row.prompt.text == "输入三支篮球队的名称并生成一个口号。"


def test_arithmetic_checks_plain_sums():
    assert Arithmetic().apply(conv("计算124+259", "我的计算结果是：124+459=383。")).reason == "wrong_arithmetic"
    assert kept(Arithmetic(), conv("平均值", "(5 + 8 + 10 + 12) / 4 = 35 / 4 = 8.75，另外 10 x 4 - 4 = 36。"))


# ------------------------------------------------------------------ PII that protects people without rewriting facts

@pytest.mark.parametrize("text", ["2的34次方等于17179869184", "123456 × 142857 = 17636274432",
                                  "12345678901 + 98765432109 = 111111111010", "结果：18912345678 - 1 = 18912345677"])
def test_pii_changes_no_number_in_arithmetic(text):
    row = conv("计算", text)
    assert kept(Pii(), row) and row.reply == text
    assert kept(Pii(Pii.Settings(mode="reject")), conv("计算", text))


@pytest.mark.parametrize("question,reply", [("123456789乘以111等于多少", "13703703579"), ("2^34=?", "17179869184"),
                                            ("计算2的34次方", "2的34次方是17179869184。"),
                                            ("99999-12345=?", "答案是87654，再乘以200000得17530800000")])
def test_pii_leaves_the_result_of_a_computing_question(question, reply):
    """A correct answer was trained as `[PHONE]`: the result stands alone in the reply."""
    row = conv(question, reply)
    assert kept(Pii(), row) and row.reply == reply


def test_pii_still_masks_a_phone_number_after_a_question_that_computes_nothing():
    row = conv("请拨打010-12345678咨询，电话多少？", "客服电话是13812345678。")
    assert kept(Pii(), row) and row.reply == "客服电话是[PHONE]。"


@pytest.mark.parametrize("text", ["运行 `ssh -T git@github.com` 测试连接。", "ssh -T git@github.com",
                                  "```python\nprint(is_valid_email('zhang.san@163.com'))\n```",
                                  "def notify():\n    send('13812345678', to='li.si@qq.com')",
                                  "邮箱请写成 your_email@example.com 的形式"])
def test_pii_leaves_code_and_placeholders_alone(text):
    row = conv("怎么做", text)
    assert kept(Pii(), row) and row.reply == text


def test_pii_catches_every_planted_kind():
    rule = Pii()
    cases = {
        "请发邮件到zhangsan@163.com联系我们": "请发邮件到[EMAIL]联系我们",
        "手机：１３８１２３４５６７８": "手机：[PHONE]",
        "邮箱 li.si＠qq.com": "邮箱 [EMAIL]",
        "座机 010-62345678，或(021)62345678": "座机 [PHONE]，或[PHONE]",
        "客服热线 400-810-8888 或 800 820 8820": "客服热线 [PHONE] 或 [PHONE]",
        "电话+86 139 1234 5678": "电话[PHONE]",
        "身份证 11010519491231002X": "身份证 [ID_CARD]",
    }
    for text, masked in cases.items():
        row = conv("联系方式", text)
        assert kept(rule, row) and row.reply == masked, text
    assert rule.masked == {"email": 2, "phone": 2, "landline": 2, "service_number": 2, "id_card": 1}
    assert EMAIL.search("请发邮件到zhangsan@example.com联系我们").group(0) == "zhangsan@example.com"


def test_pii_covers_the_system_field_and_every_turn():
    row = conv("还有吗", "没有了", history=[("我的电话", "记下了：13912345678")], system="客服：李四，电话13812345678")
    verdict, changed = Cleaner(AI_ON).clean(row)
    assert verdict is None and row.system == "客服：李四，电话[PHONE]" and row.turns[1].text == "记下了：[PHONE]"
    assert changed.count("pii.phone") == 2
    rejecting = Pii(Pii.Settings(mode="reject"))
    assert rejecting.apply(conv("你好", "你好", system="联系 13812345678")).reason == "pii"


# ------------------------------------------------------------------ the benchmark cannot rot
