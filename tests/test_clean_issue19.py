"""The false drops and misses issue 19 lists, each as a test: rules that read the request,
whole expressions, layout and the columns of a file. Rows quote the issue's examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_data.clean import CleanSettings, Cleaner
from instruct_data.clean.arithmetic import equations
from instruct_data.clean.filters import AiIdentity, Arithmetic
from instruct_data.schema import Conversation, Turn


def conv(instruction: str, reply: str, input: str | None = None) -> Conversation:
    return Conversation(id="t:1", source="t", turns=[Turn(role="user", text=instruction, input=input),
                                                     Turn(role="assistant", text=reply)])


def kept(rule, row) -> bool:
    return rule.apply(row) is None


# ------------------------------------------------------------------ arithmetic reads whole expressions

ARITHMETIC = Arithmetic(Arithmetic.Settings(enabled=True))

# The issue's false drops: right equations the old rule read in part.
RIGHT = [
    "计算得9×2-8=10",
    "即5+7+10=22",
    "(75-15×4)÷2.5+4=10",
    "13×3-19=39-19=20",
    "(1 + 100) × 100 ÷ 2 = 5050",
    "5 × 58 = 1 × x",  # an unknown: not checked
    "X - 5 - 8 = 10",  # an unknown: not checked
    "29 ÷ 5 = 5 … 4",  # a remainder, and a right one
    "1：5 = 58：x",  # a ratio
]


@pytest.mark.parametrize("text", RIGHT)
def test_arithmetic_keeps_the_right_equations_it_used_to_drop(text):
    assert kept(ARITHMETIC, conv("计算", f"解：{text}。"))


@pytest.mark.parametrize("text, wrong", [
    ("计算得9×2-8=11", "9*2-8"),  # the first operand glued to Chinese is read
    ("即5+7+10=23", "5+7+10"),
    ("(75-15×4)÷2.5+4=11", "(75-15*4)/2.5+4"),  # brackets
    ("13×3-19=39-19=21", "39-19"),  # a chain: each = is checked
    ("(1 + 100) × 100 ÷ 2 = 5000", "(1+100)*100/2"),
    ("124+459=383", "124+459"),
    ("１２＋３＝１６", "12+3"),  # full-width
    ("3/4 + 1/4 = 2", "3/4+1/4"),  # fractions
    ("50 × 20% = 20", "50*20%"),  # percentages
    ("2.5 × 4 = 12", "2.5*4"),  # decimals
    ("5元 + 3元 = 9元", "5元+3元"),  # units
    ("29 ÷ 5 = 5 … 3", "29/5"),  # a wrong remainder
])
def test_arithmetic_finds_wrong_results_in_whole_expressions(text, wrong):
    verdict = ARITHMETIC.apply(conv("计算", f"所以{text}。"))
    assert verdict is not None and verdict.reason == "wrong_arithmetic"
    assert verdict.detail.startswith(wrong + " = ")


@pytest.mark.parametrize("text", [
    "10 ÷ 3 = 3.33",  # rounded to the decimals shown
    "2 ÷ 3 = 0.66",  # cut to the decimals shown
    "4 ÷ 7 ≈ 0.5714",
    "5 ÷ 2 = 2（向下取整）",  # the text says it rounds
    "5 + 3 = 8 × 2 = 16",  # a running chain, step by step
    "2千米 = 2000米",  # a change of unit
    "3 + 5 = 9 是错误的",  # the text calls it wrong
    "2x + 3 = 7",
    "1+2+...+100=5050",
    "8:30-8:00=30分钟",
    "5除以2=2.5",  # the first operand is a word away: the side is not read
    "百分之20=0.2",
    "2t + 3 = 13",  # t: a variable, not tonnes
    "20 ÷ 100 × 100 = 20%",  # the percentage's number written with its sign
    "3 + 4 = 8 吗？",  # asked, not claimed
    "小明算成了3+4=8，正确的是7",
])
def test_arithmetic_leaves_alone_what_it_cannot_read_whole(text):
    assert kept(ARITHMETIC, conv("计算", text))


def test_arithmetic_reads_steps_written_one_per_line():
    steps = "进球率 = 14 ÷ 20\n进球率 = 0.8"
    assert ARITHMETIC.apply(conv("计算进球率", steps)).reason == "wrong_arithmetic"
    assert kept(ARITHMETIC, conv("计算进球率", steps.replace("0.8", "0.7")))
    assert [eq.sides for eq in equations("总数 = 3 + 4\n   = 7")] == [["3+4", "7"]]


def test_arithmetic_is_off_until_it_is_measured_good_enough():
    # docs/cleaning.md: 0.95 precision and 0.8 recall of wrong final results on real maths first
    assert "arithmetic" not in Cleaner().enabled
    assert "arithmetic" in Cleaner(CleanSettings(arithmetic=True)).enabled


# ------------------------------------------------------------------ ai_identity reads the request


@pytest.mark.parametrize("instruction, reply", [
    ("如何在Python中让脚本只在直接运行时执行？", "使用 if __name__ == '__main__': 可以将程序作为主程序运行，而被导入时不执行。"),
    ("怎样成为一名好的开发者？", "作为一个优秀的程序员，我认为最重要的是持续学习和写可读的代码。"),
    ("请描述一下作为一名AI语音助手的日常工作流程",
     "作为一名AI语音助手，我每天的工作从被唤醒开始：识别语音、理解意图、查询信息，再用语音回答。"),
    ("作为一名护士，怎样照顾术后病人？", "作为护士的助手，你可以先观察伤口，再记录体温。"),
])
def test_ai_identity_keeps_programs_programmers_and_what_was_asked(instruction, reply):
    assert kept(AiIdentity(), conv(instruction, reply))


@pytest.mark.parametrize("instruction, reply", [
    ("你怎么看这件事", "作为一个AI语言模型，我没有个人观点。"),
    ("写一首关于秋天的诗", "作为一个人工智能，我无法真正感受秋天，但我可以试着写一首：秋风起，落叶黄。"),
    ("好的，谢谢你，从没想过AI会教我带孩子。", "虽然作为一款人工智能程序，我无法替代亲身体验，但我会尽力帮助您。"),
    # a question about the assistant itself is not a topic: identity data is the practitioner's own
    ("你是谁？", "我是ChatGPT，由OpenAI开发。"),
    ("你是谁？", "作为一个AI语言模型，我没有名字，也没有个人经历。"),
])
def test_ai_identity_still_drops_unasked_self_talk(instruction, reply):
    assert AiIdentity().apply(conv(instruction, reply)).reason == "ai_identity"


# ------------------------------------------------------------------ PII respects arithmetic


def test_pii_leaves_a_repeated_result_alone():
    from instruct_data.clean.pii import Pii

    reply = "123456 × 142857 = 17636553792，所以答案是17636553792"
    row = conv("计算123456 × 142857", reply)
    assert kept(Pii(), row) and row.reply == reply
    # the result stated in the question and repeated in the reply
    row = conv("验证 123456 × 142857 = 17636553792", "没错，答案是17636553792。")
    assert kept(Pii(), row) and row.reply == "没错，答案是17636553792。"
    # a phone number with no arithmetic of its own is still masked
    row = conv("联系方式", "电话13912345678，另外 3 + 4 = 7")
    assert kept(Pii(), row) and row.reply == "电话[PHONE]，另外 3 + 4 = 7"


# ------------------------------------------------------------------ whitespace that keeps layout


@pytest.mark.parametrize("reply", [
    "列竖式计算：\n      1 2 3\n  ×     4 5\n  ---------\n      6 1 5\n    4 9 2\n  ---------\n    5 5 3 5",
    "      1 2 3\n  ×     4 5\n  ---------\n      6 1 5",  # the reply opens with the 竖式
    "可以用列竖式验证结果：\n       5    ← 除数\n    ÷  4    ← 被除数\n    ------\n       20   ← 被除数 × 商",
    "成绩如下：\n姓名    语文    数学\n小明    90      85\n小红    88      92",
    "| 商品 |  单价  | 数量 |\n|------|--------|------|\n| 苹果 |  5元   |  3   |",
    "运行这段代码：\nfor i in range(3):  # 循环三次\n    print(i)",
])
def test_tidy_whitespace_keeps_layout(reply):
    from instruct_data.clean.normalizers import TidyWhitespace

    row = conv("计算", reply)
    TidyWhitespace().apply(row)
    assert row.reply == reply


# Spacing that carries meaning on a line of its own (no neighbour to align with): kept.
@pytest.mark.parametrize("reply", [
    "发电机:电能   →   风车:  (  )",  # an analogy with aligned gaps and a blank
    "仿照例子填空：\n发电机：电能 → 风车：（    ）",  # one blank to fill in, the only gap on its line
    "中国的首都是(    )。",
    "这个词应该是__  __。",
    "下列哪个是直辖市？A.北京  B.石家庄",  # options set apart
    "（1）北京  （2）上海",
    "List1：[1, 2, 3]   List2：[4, 5, 6]",  # a separator between two items
    "sort_ascending([7, 3, 5])  # returns [3, 5, 7]",  # an inline comment's two spaces
    "foo(bar)  // call it",
    "答案：12   15",  # numbers set apart
    "北京     上海     广州",  # columns of one row
    "   发电机:电能   →   风车:  (  )\n以此类推。",  # the indentation of a laid-out first line
    "代码：\n    if x:\n        return x  # 返回",
])
def test_tidy_whitespace_keeps_layout_on_a_line_alone(reply):
    from instruct_data.clean.normalizers import TidyWhitespace

    row = conv("填空", reply)
    TidyWhitespace().apply(row)
    assert row.reply == reply


def test_tidy_whitespace_keeps_no_break_space_indentation_as_spaces():
    from instruct_data.clean.normalizers import TidyWhitespace

    row = conv("写代码", "def f(x):\n\xa0\xa0\xa0\xa0if x:\n\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0return 1")
    assert TidyWhitespace().apply(row) is True
    assert row.reply == "def f(x):\n    if x:\n        return 1"


@pytest.mark.parametrize(("reply", "tidy"), [
    # stray gaps between the words of a sentence, however many on the line
    ("This is  a sentence with  doubled spaces.", "This is a sentence with doubled spaces."),
    ("今天天气很好，  我们去公园玩，  很开心。", "今天天气很好， 我们去公园玩， 很开心。"),
    ("我喜欢  Python  编程。", "我喜欢 Python 编程。"),
    ("尼克（Nick Carraway）:  他是叙述者。", "尼克（Nick Carraway）: 他是叙述者。"),
    ("  这是第一段。\n这是第二段。", "这是第一段。\n这是第二段。"),  # a prose indent of the text's first line
])
def test_tidy_whitespace_mends_gaps_in_sentences(reply, tidy):
    from instruct_data.clean.normalizers import TidyWhitespace

    row = conv("写一句话", reply)
    assert TidyWhitespace().apply(row) is True
    assert row.reply == tidy


def test_tidy_whitespace_still_mends_prose():
    from instruct_data.clean.normalizers import TidyWhitespace

    row = conv("  翻译  ", "It is used to indicate that someone  is bringing something.  \n\n\n\n结束   了")
    assert TidyWhitespace().apply(row) is True
    assert row.prompt.text == "翻译"
    assert row.reply == "It is used to indicate that someone is bringing something.\n\n结束 了"


# ------------------------------------------------------------------ no column dropped in silence

COLUMNS = Path(__file__).parent / "fixtures" / "columns" / "qa_sheet.csv"  # 问题, 补充, 答案, 分类, 备注


def test_the_issues_sheet_maps_every_column_or_names_it(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(COLUMNS), "--out", str(out), "--heldout", "0"])
    assert result.exit_code == 0, result.output
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    translate = next(r for r in train if r["target"] == "Today is Friday.")
    # 补充 is the input: the sentence to translate reaches training
    assert "把下面这句话翻译成英文" in translate["context"] and "今天是星期五" in translate["context"]
    assert translate["category"] == "翻译"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    [entry] = [i for i in manifest["inputs"] if i["path"].endswith("qa_sheet.csv")]
    assert entry["map"] == {"instruction": "问题", "input": "补充", "output": "答案", "category": "分类"}
    assert entry["unused_columns"] == ["备注"]
    assert "unused columns" in result.output and "备注" in result.output


@pytest.mark.parametrize("header", ["补充", "附加信息", "上下文"])
def test_chinese_input_synonyms(header):
    from instruct_data.formats import alias_mapping

    assert alias_mapping({"问题", header, "答案"}) == {"instruction": "问题", "input": header, "output": "答案"}


@pytest.mark.parametrize("keys, expected", [
    ({"instruction", "context", "response", "category"}, {"input": "context", "output": "response"}),  # Dolly
    ({"query", "response", "history"}, {"instruction": "query", "output": "response"}),  # ms-swift
    ({"INSTRUCTION", "RESPONSE", "SOURCE", "METADATA"}, {"instruction": "INSTRUCTION", "output": "RESPONSE"}),
    ({"Question", "Answer"}, {"instruction": "Question", "output": "Answer"}),
    ({"prompt", "completion"}, {"instruction": "prompt", "output": "completion"}),
    ({"Instruction", "Input", "Output"}, {"instruction": "Instruction", "input": "Input", "output": "Output"}),
    ({"input", "output"}, {"instruction": "input"}),  # the one text there is, as the instruction
    ({"题目", "Answer", "备注"}, {"instruction": "题目", "output": "Answer"}),
    # AlignBench's rows: a benchmark's reference answer is the reply
    ({"question_id", "category", "subcategory", "question", "reference", "evidences"},
     {"instruction": "question", "output": "reference"}),
    ({"问题", "参考答案"}, {"instruction": "问题", "output": "参考答案"}),
    ({"题目", "标准答案", "解析"}, {"instruction": "题目", "output": "标准答案"}),
    ({"question", "answer", "reference"}, {"instruction": "question", "output": "answer"}),  # answer first
])
def test_english_and_capitalised_headers(keys, expected):
    from instruct_data.formats import alias_mapping

    assert alias_mapping(keys) == expected


def test_a_file_of_english_headers_is_read_and_says_how(tmp_path):
    """`Question,Answer` (and Dolly's, ms-swift's, Zhihu-KOL's keys) was an 'unknown format';
    now read through the aliases, with the columns' reading on screen and in the manifest."""
    from click.testing import CliRunner

    from instruct_data.cli import cli

    sheet = tmp_path / "faq.csv"
    sheet.write_text("Question,Answer,Source\n退货要多久到账？,一般三到五个工作日。,客服\n", encoding="utf-8")
    out = tmp_path / "faq.out.jsonl"
    result = CliRunner().invoke(cli, ["convert", str(sheet), "-o", str(out)])
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["context"] == "Instruction: 退货要多久到账？\nAnswer: " and record["target"] == "一般三到五个工作日。"
    said = " ".join(result.output.split())
    assert "read as: instruction=Question, output=Answer" in said and "unused columns in" in said and "Source" in said
    [entry] = json.loads((tmp_path / "faq.out.manifest.json").read_text(encoding="utf-8"))["inputs"]
    assert entry["map"] == {"instruction": "Question", "output": "Answer"} and entry["unused_columns"] == ["Source"]

    swift = tmp_path / "swift.jsonl"  # ms-swift's query/response/history rows: a dialogue
    swift.write_text(json.dumps({"query": "那周末呢？", "response": "周末不上班。",
                                 "history": [["你们几点上班？", "九点。"]]}, ensure_ascii=False) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["convert", str(swift), "-o", str(tmp_path / "swift.out.jsonl")])
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in (tmp_path / "swift.out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "你们几点上班？" in record["context"] and "九点。" in record["context"] and "那周末呢？" in record["context"]
    assert record["target"] == "周末不上班。"


def test_validate_and_convert_name_unused_columns(tmp_path):
    from click.testing import CliRunner

    from instruct_data.cli import cli

    checked = CliRunner().invoke(cli, ["validate", str(COLUMNS), "--json"])
    [report] = json.loads(checked.output)["files"]
    assert report["unused_columns"] == ["备注"]
    converted = CliRunner().invoke(cli, ["convert", str(COLUMNS), "-o", str(tmp_path / "out.jsonl")])
    assert converted.exit_code == 0, converted.output
    assert "unused columns" in converted.output and "备注" in converted.output
    # a column every row leaves empty is not reported, and nor is one a --map puts to use
    mapped = CliRunner().invoke(cli, ["validate", str(COLUMNS), "--json", "--map",
                                      "instruction=问题,input=补充,output=答案,category=分类,system=备注"])
    assert json.loads(mapped.output)["files"][0]["unused_columns"] == []


def test_a_messages_own_field_no_reader_reads_is_named(tmp_path):
    """A per-message field (`"loss": false`, a training flag some tools use) was ignored in
    silence; it is named like an unused column, with how idata keeps a reply out of training.
    Fields a table gives every message, null where unset (a parquet export), are not named."""
    from click.testing import CliRunner

    from instruct_data.cli import cli

    rows = [{"messages": [{"role": "user", "content": "你好，请介绍一下自己"},
                          {"role": "assistant", "content": "我是助手。", "loss": False, "weight": None}]},
            {"messages": [{"role": "user", "content": "一加一等于几", "name": None},
                          {"role": "assistant", "content": "二。", "loss": True, "tool_calls": None}]}]
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    checked = CliRunner().invoke(cli, ["validate", str(src), "--json"])
    assert json.loads(checked.output)["files"][0]["unused_columns"] == ["messages[].loss"]
    converted = CliRunner().invoke(cli, ["convert", str(src), "-o", str(tmp_path / "out.jsonl")])
    said = " ".join(converted.output.split())
    assert "unused columns" in said and "messages[].loss" in said and '"weight": 0' in said


# ------------------------------------------------------------------ recall: non-answers, missing pictures, lost tools


@pytest.mark.parametrize("instruction, reply, reason", [
    ("如何在Excel中把数字转换成大写金额？", "不能", "bare_yes_no"),
    ("请解释一下什么是复利。", "不知道。", "no_content"),
    ("支票上的金额应该怎么写？", "大写金额的写法见财务书写规范。", "deflection"),
    ("孩子发烧39度该怎么办？", "请咨询当地医院。", "deflection"),
])
def test_non_answers_and_deflections_are_caught(instruction, reply, reason):
    from instruct_data.clean.filters import Deflection

    assert Deflection().apply(conv(instruction, reply)).reason == reason


@pytest.mark.parametrize("instruction, reply", [
    ("小明能在3小时内走完15公里吗？", "不能"),  # a yes/no question
    ("评估这篇博文。输出“好”或“坏”。", "好"),  # an answer the question offers
    ("哪里可以查到财务书写规范？", "详见财政部发布的《会计基础工作规范》。"),  # asked where to look
    ("写一句问候语。", "见到你真高兴！"),
])
def test_short_answers_that_answer_are_kept(instruction, reply):
    from instruct_data.clean.filters import Deflection, NonAnswer

    assert kept(Deflection(), conv(instruction, reply)) and kept(NonAnswer(), conv(instruction, reply))


@pytest.mark.parametrize("instruction, input", [
    ("看图写话，写一段50字的小短文。", None),
    ("如图，长方形的长是8厘米，求阴影部分的面积。", None),
    ("请根据附件中的表格计算总销售额。", None),
])
def test_references_to_a_picture_or_file_the_row_does_not_carry(instruction, input):
    from instruct_data.clean.filters import UnseenAttachment

    verdict = UnseenAttachment().apply(conv(instruction, "好的，答案如下：……", input=input))
    assert verdict is not None and verdict.reason.startswith("refers_to_missing_")


def test_a_picture_the_reply_links_is_not_the_one_the_instruction_means():
    from instruct_data.clean.filters import UnseenAttachment

    reply = "剪开后如下图所示。\n![剪开后](https://i.imgur.com/f3DGLFn.png)\n所以正方形边长8厘米。"
    verdict = UnseenAttachment().apply(conv("看图，一张长方形纸片长16厘米，宽8厘米，剩下的正方形边长多少？", reply))
    assert verdict.reason == "refers_to_missing_picture"
    table = "你能填补空白吗？此外，下面还有一个表格，显示了具体的温度目标。这两个数字至关重要。"
    assert UnseenAttachment().apply(conv(table, "1.5 度和 2 度。")).reason == "refers_to_missing_table"


@pytest.mark.parametrize("instruction, input", [
    ("看图写话：![公园](https://example.com/park.png)", None),  # the picture is linked
    ("确定下图的表面积", "边长 2 厘米的立方体"),  # the figure is given as text
    ("如下图所示：\n| 星期 | 公里 |\n|---|---|\n| 一 | 12 |", None),  # a table
    ("介绍一下图书馆的历史。", None),
    ("在地图中找到北京。", None),
    ("描述一幅著名的画。", None),
    ("下表列出了三种水果的价格：\n苹果 5元\n香蕉 3元", None),  # the table follows
    ("这种方法表示什么？", None),
])
def test_pictures_the_row_carries_or_never_meant(instruction, input):
    from instruct_data.clean.filters import UnseenAttachment

    assert kept(UnseenAttachment(), conv(instruction, "北京在华北平原。", input=input))


def test_the_new_recall_rules_are_off_until_measured_on_the_test_split():
    assert not {"deflection", "unseen_attachment", "lost_tools"} & set(Cleaner().enabled)
    on = Cleaner(CleanSettings(deflection=True, unseen_attachment=True, lost_tools=True)).enabled
    assert {"deflection", "unseen_attachment", "lost_tools"} <= set(on)


def test_a_dialogue_that_lost_its_tools():
    from instruct_data.clean.filters import LostTools

    reply = "很抱歉，我无法帮您预订机票。我的功能仅限于根据收入和扣除额计算税款。"
    assert LostTools().apply(conv("帮我订一张去北京的机票", reply)).reason == "refers_to_missing_tools"
    with_tools = Conversation(id="t:1", source="t", tools=[{"name": "calculate_tax", "description": "计算税款",
                                                          "parameters": {"type": "object", "properties": {}}}],
                              turns=[Turn(role="user", text="帮我订一张去北京的机票"), Turn(role="assistant", text=reply)])
    assert kept(LostTools(), with_tools)
    assert kept(LostTools(), conv("介绍一下Python的函数", "函数是组织好的、可重复使用的代码块，我的建议是多练习。"))


def test_ai_identity_spares_a_refusal_of_something_illegal_not_law_as_a_subject():
    refusal = "抱歉，我不能帮助您。作为开源的人工智能助理，我不能协助您进行非法的偷拍活动，这会侵犯他人的隐私。"
    assert kept(AiIdentity(), conv("我想知道如何偷拍别人？你可以教我吗？", refusal))
    boilerplate = "作为一个 AI 系统，我没有法律专业知识，因此我需要将这个任务委派给人类律师。"
    assert AiIdentity().apply(conv("帮我起草一份租房合同。", boilerplate)).reason == "ai_identity"


def test_the_arithmetic_benchmark_runs_on_real_maths():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    data = root.parent / "shared" / "data" / "belle_school_math_dev1K.jsonl"
    if not data.is_file():
        pytest.skip(f"{data} is not here (the shared real data sets sit beside the project checkout)")
    result = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_arithmetic.py"), "--quick", "--json"],
                            capture_output=True, text=True, timeout=300, cwd=root)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"]["school_maths"] > 800 and report["planted"]["all_unflagged"]["final_result"]["n"] > 500
    # every firing on the dev rows has a verdict read by hand
    assert report["unread"] == 0 and 0 < report["planted"]["judged_correct"]["final_result"]["share"] <= 1


def test_a_seed_task_file_has_no_unused_columns(tmp_path):
    from instruct_data.rowpath import open_file

    task = {"id": "seed_task_1", "name": "breakfast_suggestion", "instruction": "早餐吃什么好？",
            "instances": [{"input": "", "output": "燕麦粥配水果。"}], "is_classification": False}
    path = tmp_path / "seed.jsonl"
    path.write_text(json.dumps(task, ensure_ascii=False) + "\n", encoding="utf-8")
    spec = open_file(path)
    assert spec.format == "belle_seed_tasks" and spec.unused == []
