"""Is the material a request works on actually in the row? Used by `missing_attachment` (a reply
saying the article, poem or picture was not given) and `unseen_attachment` (an instruction that
refers to a text, picture or file the row does not carry).

A row carries material when the user's side holds more than the request: an `input`, text after
a colon or on further lines, a quoted or titled passage, an English sentence or a list of
numbers, or a second sentence beside the one that refers to it
("养育健康的孩子需要整个社区的参与。将以下句子拼接起来").

    carries_material("总结以下文章。")                       # False
    carries_material("总结以下文章：\\n今天……")                # True
    only_asks_for_it("很抱歉，您没有提供文本。请提供一段文本。")  # True: the reply does nothing else
    refers_to_text("确定这个陈述的目的。")                    # the match '这个陈述'
"""

from __future__ import annotations

import re

HAN = re.compile(r"[\u4e00-\u9fff]")
SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?\n]+|$)")

# What carries a passage in the request itself: a colon or line break followed by text, quotes or
# book-title marks, three Latin words or more (an English sentence to work on; one word is a name,
# as in 这篇LinkedIn帖子 or 以下gif图), a list of numbers.
CARRIED = re.compile(r"[：:]\s*\S|\n\s*\S|[“”\"'‘’「」『』《》〈〉]|[A-Za-z]+(?:[^\S\n]+[A-Za-z]+){2,}|\d\s*[,，、]\s*\d")
MAX_REQUEST = 60  # a longer request describes what it wants well enough to be answered

# A request that points at a definite text the row should hold: 这/该/以下/给定 … 文章/句子/陈述 …
# (not 这个问题: that is the request itself; a table has its own reason, `refers_to_missing_table`).
TEXT_REFERENCE = re.compile(
    r"(?:这|该|此|以下|下面|下列|上述|上面|(?P<given>给定|所给|给出))(?:的|一|个|些|篇|首|段|句|则|封|家|幅|张|份|条|项|组|部)*"
    r"(?:新闻|[A-Za-z]+\s*)?(?P<noun>文章|段落|句子|陈述|声明|诗歌|诗|文本|评论|短文|故事|对话|邮件|帖子|推文|报告|歌词|演讲|论点|论文|"
    r"食谱|菜谱|场景|漫画|标志|段话|句话|产品描述|文档|合同|简历|新闻|留言|代码|列表|清单)")
# "给定的句子" in a request to build something is an abstract input: 编写一个函数，判断给定的句子是否为回文.
BUILDS_SOMETHING = re.compile(r"函数|程序|算法|脚本|系统|模型|代码|编写|实现|开发|正则|工具")


def carries_material(question: str, sentence_at: int | None = None) -> bool:
    """The user's side (`instruction` and `input` joined, as `Turn.full_text`) holds a passage:
    text after a colon or on another line, quotes, Latin words, digits, or, when `sentence_at`
    names a position in it, another sentence of 6 Chinese characters or more."""
    if CARRIED.search(question.strip()):
        return True
    if sentence_at is None:
        return False
    return any(len(HAN.findall(sentence)) >= 6 and not (start <= sentence_at < start + len(sentence))
               for start, sentence in _sentences(question))


def _sentences(text: str):
    position = 0
    for sentence in SENTENCE.findall(text):
        if sentence:
            yield position, sentence
        position += len(sentence)


def refers_to_text(question: str) -> re.Match | None:
    """The request refers to a definite text (这个陈述, 以下文章, 给定的文本) and carries none: a short
    request with nothing beside the sentence that refers to it."""
    request = question.strip()
    if len(request) > MAX_REQUEST:
        return None
    match = TEXT_REFERENCE.search(request)
    if match is None or match.group("given") and BUILDS_SOMETHING.search(request):
        return None
    # "写一篇文章，并为这篇文章起个标题": the text is the one the request asks for
    if re.search(r"一(?:篇|首|段|个|句|则|封|份|条|部|组|张|幅)[^，。,；]{0,12}?" + match.group("noun"), request[:match.start()]):
        return None
    return None if carries_material(request, match.start()) else match


# A sentence of a reply that only deals with the missing material: says it was not given, asks
# for it, apologises, says it cannot answer, or offers to help once it has it.
ABOUT_THE_MATERIAL = re.compile(
    r"(?:没有|没|未|并未|并没有)(?:提供|给出|告诉|指定|上传|附上|发送|看到)|看不到|无法看到|无法访问|无法得知|"
    r"提供|告诉我|描述|给出|上传|发送|分享|补充|说明一下|抱歉|对不起|不好意思|遗憾|无法|不能|没法|没办法|"
    r"乐意|很高兴|帮助|协助|帮您|帮你|为您|为你|解答|回答|需要(?:知道|了解|更多)|哪一?(?:句|篇|首|段|个)")


def only_asks_for_it(reply: str, max_other: int = 15) -> bool:
    """The reply does nothing but say the material is missing and ask for it: its sentences that
    do not deal with the material hold at most `max_other` Chinese characters in all. A reply
    that notes what is missing and then answers ("您没有提供预算，一般来说……") is an answer."""
    other = sum(len(HAN.findall(sentence)) for _, sentence in _sentences(reply)
                if not ABOUT_THE_MATERIAL.search(sentence))
    return other <= max_other
