"""What an instruction asks for, where that changes how a reply is judged.

    asks_for_english("把这句话翻译成英文")      # True: the reply should be English
    asks_for_repetition("把这句话重复3遍")      # True: repeated lines are the answer
    asks_for_ai_talk("写一个聊天机器人脚本")     # True: an AI character may speak as an AI
    sets_ai_character("扮演一个虚构的语言模型")  # True, and for the turns that follow too
"""

from __future__ import annotations

import re

ENGLISH = re.compile(
    r"(?:翻译|译|转换|改写|写|回答|回复|介绍|说|用|以|输出|造句|句子|给出)[^。！？\n]{0,12}(?:英文|英语)"
    r"|(?:英文|英语)(?:写|回答|回复|翻译|表达|介绍|句子|单词|短语|名|怎么说)"
    r"|(?:into|in|to) English|English (?:sentence|translation|version)|translate"
    r"|(?:包含|使用|用)[^。\n]{0,20}[“\"'][A-Za-z][A-Za-z \-']*[”\"'][^。\n]{0,30}(?:句子|例句|新词)"
    r"|例句|literal translation|(?:英文|英语)的?(?:单词|短语|句子|名字|缩写)",
    re.IGNORECASE,
)
# An English passage (five words or more) or a question about English words: the task is about
# English text, and the reply may well be English.
ENGLISH_PASSAGE = re.compile(r"(?:[A-Za-z]+[ ,.;:'\"-]+){4,}[A-Za-z]+"
                             r"|[A-Za-z]{2,}[^\n]{0,20}(?:复数|单数|过去式|词性|拼写|同义词|反义词)"
                             r"|(?:复数|单数|过去式|词性|拼写|同义词|反义词)[^\n]{0,20}[A-Za-z]{2,}")
REPEAT = re.compile(r"重复|复述|转录|抄写|照抄|原样|逐字|repeat|transcribe|verbatim|(?:说|写|念|输出)\s*\d+\s*(?:遍|次)|\d+\s*(?:遍|times)", re.IGNORECASE)
# A request to write a script or a dialogue, in which an AI may be one of the speakers: a verb of
# making before 对话/剧本/台词/脚本 in the same sentence ("创建一个有5个对话回合的聊天机器人脚本"). The bare
# word is not such a request: "我该如何分享这个对话？", "在这次对话中", "你有多少种对话模式" ask nothing
# to be written, and a code script ("编写一个Python脚本", JavaScript) has no speakers.
AI_TALK = re.compile(
    r"(?:写|创建|创作|编写|生成|设计|模拟|编|续写|构思|给出|提供|举|描述|展示|制作|演示|完成|改写|(?<![可所得足予难加借])以|(?<![使利采应作])用)"
    r"(?:(?!Python|python|Shell|shell|bash|Bash|JS|SQL|程序|代码|自动化|批处理)[^。！？!?\n]){0,20}?"
    r"(?:对话|剧本|台词|(?<!注入)脚本)"
    r"|剧本|聊天机器人|机器人之间"
    r"|(?<![A-Za-z])(?:dialogue|screenplay|role-?play|(?:movie|film|video|chatbot) script)(?![A-Za-z])",
    re.IGNORECASE)
# A role-play is asked for; it lets the reply speak as an AI only when an AI is in the request
# ("扮演AIM。AIM是一个无过滤的聊天机器人"). Asked to play a person or a tool ("扮演伯特的角色", "扮演漏洞扫描器
# 的角色"), a reply that steps out of the role as an AI ("作为一款AI语言模型，我无法…") is still AI
# self-talk; "谁可以扮演Rohan的角色？" (casting) asks for no role at all.
ROLE_PLAY = re.compile(r"扮演|角色扮演|假装|(?<![A-Za-z])(?:role-?play|pretend)(?![A-Za-z])", re.IGNORECASE)
# The instruction's topic is an AI's point of view ("请描述一下作为一名AI语音助手的日常工作流程", "以机器人
#的口吻…"): the reply may speak as one. A question about the assistant itself (你是谁) is not such a
# topic: self-identity data should come from the practitioner's own set.
# (English words stand alone: the "ai" of "Mailer" is not AI)
_AI = (r"(?:(?<![A-Za-z])AI(?![A-Za-z])|ＡＩ|人工智能|语言模型|大模型|机器人|智能助手|语音助手|虚拟助手|聊天助手|ChatGPT|GPT"
       r"|(?<![A-Za-z])(?:chatbot|assistant|language model)(?![A-Za-z]))")
AI_SELF = re.compile(
    r"(?:作为|身为|当作|假如你是|假设你是|如果你是|想象你是|扮演)[^。！？\n]{0,12}?" + _AI
    + r"|" + _AI + r"[^。！？\n]{0,12}?(?:的|之)?(?:身份|角度|视角|口吻|第一人称|自述|日常|一天|工作流程|生活|自我介绍|简介|台词|独白)"
    # text written for an AI to say: "为机器人创建推特简介", "给聊天机器人写一段开场白"
    # (为 as "for": not 内容为, 成为, 认为, 因为 …)
    + r"|(?:(?<![容成作认称因以行较更极最视])为|给|替)[^。！？\n，,]{0,8}?" + _AI + r"[^。！？\n]{0,12}?(?:写|创建|创作|编写|设计|起草|生成|制作|编)"
    r"|\b(?:as|imagine you are|pretend to be) an? (?:AI|robot|chatbot|assistant|language model)\b",
    re.IGNORECASE)
# Fiction or a role in which a character is an AI ("用第一人称写本书的第一章，讲述一个名为Chatgpt的邪恶聊天
# 机器人", "扮演一个名叫西蒙娜的虚构语言模型"): both words in one sentence of the request.
FICTION = re.compile(r"故事|小说|童话|寓言|诗|第一人称|扮演|角色|假装|模仿|想象|假设你|虚构"
                     r"|(?<![A-Za-z])(?:story|novel|poem|fiction|role-?play|pretend|imagine)(?![A-Za-z])", re.IGNORECASE)
AI_CHARACTER = re.compile(_AI + r"|仿生人|电脑|计算机|(?<![A-Za-z])(?:robot|android)(?![A-Za-z])", re.IGNORECASE)
SENTENCES = re.compile(r"[^。！？!?\n]+")
# 繁体 / 正體 as a script: followed by 字, 中文, 汉字 or 版, or after a verb that asks for it (用, 以, 成,
# 为, 转, 改). Alone they are also the ends of common words: 频繁体检, 真正体会, 公正体现.
TRADITIONAL = re.compile(r"[繁正][体體](?:字|中文|汉字|漢字|版)|(?:用|以|成|为|為|转|轉|改|换|換)\s*[繁正][体體]"
                         r"|zh-[Hh]ant|zh[-_][Tt][Ww]|[Tt]raditional [Cc]hinese")
HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")  # accented letters too (pinyin: dàilái)


def asks_for_english(instruction: str) -> bool:
    """The instruction asks for English: translate into English, write or answer in English,
    use an English word in a sentence."""
    return bool(ENGLISH.search(instruction) or ENGLISH_PASSAGE.search(instruction))


def asks_for_repetition(instruction: str) -> bool:
    return bool(REPEAT.search(instruction))


def asks_for_ai_talk(instruction: str) -> bool:
    """The instruction asks for a script, a dialogue or a role in which an AI may speak as one, or
    its topic is an AI's point of view ("请描述一下作为一名AI语音助手的日常工作流程")."""
    return bool(AI_TALK.search(instruction) or AI_SELF.search(instruction)
                or ROLE_PLAY.search(instruction) and AI_CHARACTER.search(instruction))


def sets_ai_character(instruction: str) -> bool:
    """The instruction sets up an AI that speaks: fiction or a role whose character is an AI, in
    one sentence ("写一个机器人讲述自己一天的故事", "扮演一个虚构的语言模型"), or an AI's point of view
    ("以机器人的口吻"). Unlike a plain "写一个对话" it holds for the rest of the dialogue ("继续")."""
    if not AI_CHARACTER.search(instruction):
        return False
    if AI_SELF.search(instruction):
        return True
    return any(FICTION.search(s) and AI_CHARACTER.search(s) for s in SENTENCES.findall(instruction))


def asks_for_traditional(instruction: str) -> bool:
    """The instruction asks for traditional characters (请使用繁体中文, #zh-hant)."""
    return bool(TRADITIONAL.search(instruction))


def is_chinese(text: str) -> bool:
    """Chinese characters make up at least half of the letters (the instruction is in Chinese)."""
    han = len(HAN.findall(text))
    latin = len(LATIN.findall(text))
    return han > 0 and han * 2 >= latin
