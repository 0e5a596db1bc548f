"""Filters: rules that keep a row or drop it with a reason code (stage `clean` in rejects.jsonl)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from instruct_data.clean.arithmetic import first_wrong
from instruct_data.clean.final_answer import mismatch as final_mismatch
from instruct_data.clean.base import (CODE_SPAN, Drop, Filter, RuleSettings, TurnFilter, reply_texts, user_texts,
                                     without_code)
from instruct_data.clean.garbled import Garbled
from instruct_data.clean.material import carries_material, only_asks_for_it, refers_to_text
from instruct_data.clean.stray_turn import StrayFirstTurn
from instruct_data.clean.terse import TerseReply
from instruct_data.clean.pii import Pii, valid_id_card  # noqa: F401 (valid_id_card: re-exported)
from instruct_data.clean.structure import last_prose_line, prose, prose_lines
from instruct_data.clean.task import (asks_for_english, asks_for_repetition, asks_for_traditional,
                                     is_chinese)
from instruct_data.schema import Conversation

# ------------------------------------------------------------------ empty


class Empty(Filter):
    """A user turn or a reply left empty (normalizers can empty a text made of invisible characters).
    In a dialogue of plain rounds the verdict names the round, so the Cleaner keeps the rounds
    before it (a reply left empty in round 3 of 14 dropped the dialogue whole)."""

    name = "empty"
    reasons = ("empty_instruction", "empty_reply")

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        for index, turn in enumerate(turns):
            if not turn.full_text.strip():
                reason = "empty_instruction" if turn.role == "user" else "empty_reply"
                verdict = Drop(reason, f"turn {index + 1} ({turn.role}) is empty after normalization")
                plain_rounds = len(turns) > 2 and all(t.role == ("user", "assistant")[i % 2] for i, t in enumerate(turns))
                return verdict._replace(turn=index // 2 + 1) if plain_rounds else verdict
        return None


# ------------------------------------------------------------------ length


class LengthSettings(RuleSettings):
    min_instruction: int = Field(2, ge=0, description="fewest characters in a user turn")
    # Long texts are not defects (a city guide, a whole program): the limits catch runaway
    # rows only; fitting a model's context is done in tokens, at training time.
    max_instruction: int = Field(16384, ge=1)
    min_reply: int = Field(1, ge=0, description="fewest characters in a reply")
    max_reply: int = Field(16384, ge=1)


class Length(Filter):
    """Too short or too long, in characters, per field (every user turn, every reply). A user
    turn is judged too short in a single-turn row only: in a dialogue people answer in a
    character (`1`, `A`, `是`, `嗨`, an emoji), and the whole dialogue was dropped for it."""

    name = "length"
    reasons = ("instruction_too_short", "instruction_too_long", "reply_too_short", "reply_too_long")
    Settings = LengthSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        s = self.settings
        for field, texts, low, high in (("instruction", user_texts(conversation), s.min_instruction, s.max_instruction),
                                        ("reply", reply_texts(conversation), s.min_reply, s.max_reply)):
            for text in texts:
                size = len(text.strip())
                if size < low and not (field == "instruction" and len(texts) > 1):
                    return Drop(f"{field}_too_short", f"{field} has {size} characters (< {low})")
                if size > high:
                    return Drop(f"{field}_too_long", f"{field} has {size} characters (> {high})")
        return None


# ------------------------------------------------------------------ chinese_share

# Counted on the UTF-8 bytes, where a byte table does the work in C: a CJK ideograph
# (U+4000-U+9FFF, the unified block and most of extension A) starts with a byte E4-E9; a Latin
# letter is an ASCII letter or starts with C3-C9 (U+00C0-U+027F, accented letters). CJK
# punctuation (U+3000-U+303F, full-width forms U+FF00-) starts with E3/EF and counts as neither.
_HAN_LEADS = bytes(range(0xE4, 0xEA))
_LATIN_BYTES = bytes(range(0x41, 0x5B)) + bytes(range(0x61, 0x7B)) + bytes(range(0xC3, 0xCA))
_ALL_BYTES = bytes(range(256))
_NOT_HAN = bytes(b for b in _ALL_BYTES if b not in _HAN_LEADS)
_NOT_LATIN = bytes(b for b in _ALL_BYTES if b not in _LATIN_BYTES)


def count_han(text: str) -> int:
    """count_han_latin(text)[0], without counting the Latin letters."""
    return len(text.encode("utf-8").translate(None, _NOT_HAN))


def count_han_latin(text: str) -> tuple[int, int]:
    """(Chinese characters, Latin letters) in the text."""
    raw = text.encode("utf-8")
    return len(raw.translate(None, _NOT_HAN)), len(raw.translate(None, _NOT_LATIN))


URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+")
# What a sentence quotes: “…”, "…", 「…」, 『…』, 《…》, ‘…’, on one line. Its words are not the
# reply's own; the sentence around them is read as if they were not there.
QUOTED = re.compile(r"“[^”\n]*”|\"[^\"\n]*\"|「[^」\n]*」|『[^』\n]*』|《[^》\n]*》|‘[^’\n]*’")
# Code written inline: `…`, […] and <…> (a Scratch block's slots: `set [result v] to [false]`,
# `if <… :: grey> then`). They break the text around them, as Chinese does.
INLINE_CODE = re.compile(r"`[^`\n]*`|\[[^\]\n]*\]|<[^<>\n]*>")
# A stretch of text between Chinese characters and Chinese punctuation (CJK marks U+3000-U+303F,
# full-width forms U+FF00-U+FFEF): the names a Chinese sentence lists (`Motor () Turn This Way
# for () Seconds、Motor () Position`, `The Adventures of the Black Circle和Maze Game`) are each
# such a stretch, a few words long.
CHINESE_BREAK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
# An English sentence: a lowercase function word with a word before it and two after it. (Written
# `(?:word sep){1,}` and `{2,}`, it found the same texts, but on a long run of words with no
# function word every start position read the run to its end: n² steps, 22 s for 16,000 words.)
ENGLISH_SENTENCE = re.compile(r"\b[A-Za-z']+[ ,;:\"-]+(?:the|is|are|a|an|of|to|and|in|you|your|for|with|this|that|be|can|will|it)"
                              r"(?:[ ,;:\"-]+[A-Za-z']+\b){2}")


class ChineseShareSettings(RuleSettings):
    min_share: float = Field(0.3, ge=0, le=1, description="least share of Chinese among Chinese+Latin letters")
    min_letters: int = Field(10, ge=0, description="replies with fewer letters than this are not judged")
    max_han: int = Field(20, ge=0, description="a reply with this many Chinese characters is Chinese (names and terms aside)")
    # 8: the names a Chinese answer lists run 2 to 7 words (Scratch blocks, game and song titles);
    # the English answers of the labeled rows run 9 words and more outside their quotes.
    min_sentence_words: int = Field(8, ge=1, description="English words in one stretch, outside quotes, that make an "
                                                         "English sentence of the reply's own")
    field: Literal["reply", "instruction", "all"] = Field(
        "reply", description="reply: a Chinese instruction's reply; instruction: the instruction; all: both")


class ChineseShare(TurnFilter):
    """A Chinese instruction answered in another language: Han / (Han + Latin letters) of the
    reply's prose, where code, tables and ASCII art do not count.

    Not judged: replies to instructions that are not in Chinese, that ask for English (translate
    into English, answer in English, a sentence using an English word) or that hold an English
    passage to work on. `field: instruction` (or `all`) also drops instructions that are not Chinese.
    """

    name = "chinese_share"
    reasons = ("low_chinese_share",)
    Settings = ChineseShareSettings

    def _share(self, text: str) -> float | None:
        han, latin = count_han_latin(text)
        letters = han + latin
        return None if letters < self.settings.min_letters else han / letters

    def judge(self, question: str, reply: str) -> Drop | None:
        s = self.settings
        if s.field in ("instruction", "all"):
            share = self._share(prose(question))
            if share is not None and share < s.min_share:
                return Drop("low_chinese_share", f"instruction: Chinese share {share:.2f} < {s.min_share}")
        if s.field == "instruction" or count_han(reply) >= s.max_han:
            return None  # (prose holds no more Chinese than the whole reply: the usual case, decided in C)
        if not is_chinese(question) or asks_for_english(question):
            return None
        text = URL.sub(" ", prose(reply))
        share = self._share(text)
        if share is None or share >= s.min_share or _mostly_code(reply, text):
            return None
        # A Chinese reply listing English names (songs, books, characters) is still Chinese:
        # only a reply with few Chinese characters and English sentences of its own is judged.
        if count_han(text) >= s.max_han or not own_english_sentence(text, s.min_sentence_words):
            return None
        return Drop("low_chinese_share", f"a Chinese instruction answered with Chinese share {share:.2f} < {s.min_share}")


def _mostly_code(reply: str, prose_text: str) -> bool:
    """Whether code is most of the reply: then it is the answer, and the English around it (a
    docstring's line, `A program that calculates the area of a circle:`) goes with the code."""
    prose_chars = len("".join(prose_text.split()))
    return len("".join(reply.split())) - prose_chars > prose_chars


def own_english_sentence(text: str, min_words: int) -> bool:
    """Whether the text holds an English sentence of its own: outside what it quotes or
    brackets, in a stretch of at least `min_words` English words between Chinese text. A Chinese
    answer about Scratch blocks or English titles (`可以和Motor () Turn This Way for () Seconds、…
    等EV3扩展块一起使用`, `例如“More Than Just a Platformer Game”…`) names them, each in a short
    stretch between Chinese marks or in quotes; an English answer runs on in sentences."""
    for stretch in CHINESE_BREAK.split(INLINE_CODE.sub("、", QUOTED.sub(" ", text))):
        if len(ENGLISH_WORD.findall(stretch)) >= min_words and ENGLISH_SENTENCE.search(stretch):
            return True
    return False


# ------------------------------------------------------------------ repetition

# Trailing spaces go with the terminator; a leading \s* would make the scan try every position.
# `[...][...]*` is `[...]+`, written so that re sees a character class first: it then skips to
# the next terminator in C instead of trying the pattern at every character (a third faster).
SENTENCE_END = re.compile(r"[。！？!?；;\n][。！？!?；;\n]*\s*")


class RepetitionSettings(RuleSettings):
    max_duplicate_sentences: float = Field(0.3, ge=0, le=1, description="largest share of repeated sentences")
    min_sentences: int = Field(3, ge=2, description="replies with fewer sentences are not judged by sentences")
    min_sentence_chars: int = Field(4, ge=1, description="shorter sentences (list markers, 是。) are ignored")
    ngram: int = Field(10, ge=2, description="character n-gram size")
    max_duplicate_ngrams: float = Field(0.4, ge=0, le=1, description="largest share of n-grams seen earlier in the reply")
    min_chars: int = Field(60, ge=0, description="shorter replies are not judged by n-grams")
    probes: int = Field(8, ge=0, description="n-grams sampled at even steps to decide whether to count them all (0: always count)")


# A song's chorus or refrain, labeled at the start of a line: `合唱：`, `副歌`, `【副歌】`, `Chorus:`.
CHORUS = re.compile(r"(?:^|\n)[ \t]*[【\[(（]?(?:合唱|副歌|叠句|重复段|Chorus|CHORUS|chorus|Refrain|refrain)")


# A line that is a list item: `- `, `•`, `1.`, `2、`, `a.`, `(3)` first.
LIST_ITEM = re.compile(r"[ \t]*(?:[-*•·]|\d{1,2}[.、)）]|[a-zA-Z][.)）]|[(（]\d{1,2}[)）])")


def without_repeated_list_items(text: str) -> str:
    """The text without the list items that repeat an earlier line whole: a list repeats its
    items by design (a survey's `a. 非常满意` under each question, a recipe's `-橄榄油`, a weekly
    plan's days). Items that differ, by their number at least (`1. 多喝水`, `2. 多喝水`), stay."""
    if "\n" not in text:
        return text
    lines = text.split("\n")
    seen: set[str] = set()
    kept = []
    for line in lines:
        key = line.strip()
        if key in seen and LIST_ITEM.match(line):
            continue
        seen.add(key)
        kept.append(line)
    return "\n".join(kept) if len(kept) < len(lines) else text


class Repetition(TurnFilter):
    """A reply that repeats itself: many repeated sentences, or many repeated character n-grams.

    Judged on the reply's prose: code, tables and ASCII art repeat by nature and are left out,
    and a reply to an instruction that asks for repetition ("重复3遍", "repeat ... 5 times") is
    not judged. Counting n-grams costs a set of every window, so it runs only when n-grams
    sampled at even steps through the reply already repeat (a `str.count` each): in a reply
    where 40% of the n-grams repeat, 8 probes all miss with probability 0.6**8 (under 2%); in a
    looping reply almost every n-gram repeats and they never miss.
    """

    name = "repetition"
    reasons = ("repeated_sentences", "repeated_ngrams")
    Settings = RepetitionSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        # The whole reply first: it repeats itself rarely, and its prose repeats only if it does.
        if not (self._sentences(reply) or self._ngrams(reply)) or asks_for_repetition(question):
            return None
        text = without_repeated_list_items(prose(reply))
        # A song sings its chorus again, whole sentences of it: its sentences are not judged,
        # its n-grams are (a song that loops repeats far more than its chorus).
        return (None if CHORUS.search(text) else self._sentences(text)) or self._ngrams(text)

    def _sentences(self, text: str) -> Drop | None:
        s = self.settings
        pieces = SENTENCE_END.split(text.strip())
        if len(pieces) < s.min_sentences or len(set(pieces)) == len(pieces):
            return None  # no sentence repeats at all: the usual case, decided in C
        sentences = [p.strip() for p in pieces]
        sentences = [p for p in sentences if len(p) >= s.min_sentence_chars]
        if len(sentences) < s.min_sentences:
            return None
        share = 1 - len(set(sentences)) / len(sentences)
        if share > s.max_duplicate_sentences:
            return Drop("repeated_sentences", f"{share:.0%} of {len(sentences)} sentences are repeats")
        return None

    def _ngrams(self, text: str) -> Drop | None:
        s = self.settings
        if len(text) < max(s.min_chars, s.ngram + 1):
            return None
        n = s.ngram
        total = len(text) - n + 1
        if s.probes:
            step = max(1, total // s.probes)
            if not any(text.count(text[i:i + n]) > 1 for i in range(0, total, step)):
                return None
        # Counted a block at a time: once enough distinct n-grams are seen the reply is kept
        # whatever the rest holds (the share only falls as the count grows), without the rest.
        seen: set[str] = set()
        for start in range(0, total, 256):
            seen.update([text[i:i + n] for i in range(start, min(start + 256, total))])
            if 1 - len(seen) / total <= s.max_duplicate_ngrams:
                return None
        share = 1 - len(seen) / total
        return Drop("repeated_ngrams", f"{share:.0%} of {n}-character n-grams repeat earlier ones")


# ------------------------------------------------------------------ ai_identity

# In its own module (it reads the request and the whole dialogue); imported here for the registry
# and for code that imports it from filters.
from instruct_data.clean.ai_identity import AI_IDENTITY, AiIdentity, AiIdentitySettings, strip_disclaimer  # noqa: E402,F401


# ------------------------------------------------------------------ belle_blacklist

# BELLE's generator dropped rows holding any of these (BELLE.md, from the BELLE repository).
BELLE_BLACKLIST = ("图像", "图片", "照片", "文件", "图表", "图层", "曲线图", "折线图", "直线图", "柱形图", "饼状图",
                   "链接", "http", "OpenAI", "chatgpt", "gpt-3", "gpt-3.5", "gpt-4")
# Words that hold a blacklisted word but mean something else (a linked list, a folder).
BLACKLIST_EXCEPTIONS = ("链接列表", "链表", "文件夹", "文件系统")


class BlacklistSettings(RuleSettings):
    enabled: bool = False
    words: list[str] = Field(default_factory=lambda: list(BELLE_BLACKLIST), min_length=1)
    exceptions: list[str] = Field(default_factory=lambda: list(BLACKLIST_EXCEPTIONS))


class BelleBlacklist(Filter):
    """Belle's own generation blacklist (图片, 链接, http, GPT ...) in the prose of the row (code
    left out, 文件夹 and 链接列表 not counted) (off unless asked)."""

    name = "belle_blacklist"
    reasons = ("blacklisted_word",)
    Settings = BlacklistSettings

    def __init__(self, settings=None):
        super().__init__(settings)
        self._pattern = re.compile("|".join(re.escape(w) for w in self.settings.words), re.IGNORECASE)
        self._exceptions = (re.compile("|".join(re.escape(w) for w in self.settings.exceptions))
                            if self.settings.exceptions else None)

    def filter(self, conversation: Conversation) -> Drop | None:
        for text in user_texts(conversation) + reply_texts(conversation):
            if not self._pattern.search(text):
                continue
            text = prose(text)
            if self._exceptions is not None:
                text = self._exceptions.sub(" ", text)
            match = self._pattern.search(text)
            if match:
                return Drop("blacklisted_word", f"holds {match.group(0)!r}")
        return None


# ------------------------------------------------------------------ refusal

# In its own module (it reads the dialogue: tools, roles, safety answers).
from instruct_data.clean.refusal import REFUSAL, Refusal, RefusalSettings  # noqa: E402,F401


# ------------------------------------------------------------------ truncated

# A code block whose last line opens a block (Python's `for ...:`) stops before its body.
CODE_BLOCK_TAIL = re.compile(r"[:{]\s*\n*```\s*$")
OPEN_BRACKET_AT_END = re.compile(r"[（(][^）)]{0,20}$")


SENTENCE_ENDS = frozenset("。！？!?.…”\"）)》』」】]～~；;")


class TruncatedSettings(RuleSettings):
    # A complete sentence does not end on a comma, an enumeration comma, a colon or an opening
    # bracket. A semicolon can end a complete list or ad line ("…做工；"), so it is not here.
    dangling: str = "，,、：:（(“‘《[{【"


class Truncated(TurnFilter):
    """A reply that looks cut off: its last prose line ends on a comma, colon or opening bracket,
    or leaves a bracket open; or it leaves a code block open or ends it on a block opener. A
    reply that ends in code, a table or ASCII art is not judged by its last character."""

    name = "truncated"
    reasons = ("truncated_reply",)
    Settings = TruncatedSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        text = reply.rstrip()
        end = text[-1:]
        if end in SENTENCE_ENDS and "```" not in text:
            return None  # ends a sentence and holds no code block: the usual case
        if text.count("```") % 2:
            return Drop("truncated_reply", "reply leaves a code block open")
        if text.endswith("```") and CODE_BLOCK_TAIL.search(text):
            return Drop("truncated_reply", "reply's code stops on a block opener")
        last = last_prose_line(text)
        if last is None:
            return None
        if last[-1] in self.settings.dangling and not _blank_to_fill(text, last, question):
            return Drop("truncated_reply", f"reply ends with {last[-1]!r}")
        if OPEN_BRACKET_AT_END.search(last) and last[-1].isalnum() and not _one_token(last):
            return Drop("truncated_reply", "reply stops inside a bracket")
        if "\u4e00" <= last[-1] <= "\u9fff" and re.search("[。！？]", last) and _ends_sentences(text):
            # the last line finished sentences before this one, as did every line before it
            return Drop("truncated_reply", "reply stops mid-sentence where its other lines end theirs")
        return None


# A request for a form to fill in: its last field's label ends on a colon, the blank after it
# left to whoever fills it (`5. 请提供您的其他意见：`).
ASKS_FOR_FORM = re.compile(r"调查|问卷|表单|填写|申请表|登记表|反馈表|survey|questionnaire|\bform\b", re.IGNORECASE)
ANNOUNCES = re.compile(r"如下|以下|下面|下列|following", re.IGNORECASE)  # `…将如下所示：` announces what is missing
EMOJI_CODE = re.compile(r":[a-z0-9_+-]+:$")


def _blank_to_fill(text: str, last: str, question: str) -> bool:
    """The reply ends on a blank, not mid-sentence: an emoji's short code (`:hackathon:`), the
    last of several labels left blank (`- 交货速度：` `- 总体满意度：`), or a form's last field where
    a form was asked for."""
    if EMOJI_CODE.search(last):
        return True
    if last[-1] not in "：:" or ANNOUNCES.search(last):
        return False
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if len(lines) >= 2 and lines[-2][-1] in "：:" and LIST_ITEM.match(lines[-1]) and LIST_ITEM.match(lines[-2]):
        return True
    return bool(LIST_ITEM.match(last.strip()) and ASKS_FOR_FORM.search(question))


def _one_token(line: str) -> bool:
    """A line that is one string with no space and no Chinese (a generated password, a code):
    a bracket in it opens nothing."""
    stripped = line.strip()
    return not any(c.isspace() for c in stripped) and count_han(stripped) == 0


def _ends_sentences(text: str) -> bool:
    """The reply's prose lines before the last one (three at least) all end with sentence punctuation."""
    lines = [line.rstrip() for line in text.split("\n")[:-1] if line.strip()]
    lines = [line for line in lines if last_prose_line(line) is not None]
    return len(lines) >= 3 and all(line[-1] in "。！？!?.…”\"）)：:" for line in lines)


# ------------------------------------------------------------------ echo

PUNCT_SPACE = re.compile(r"[\s\W_][\s\W_]*")  # [...]+, with a class first (see SENTENCE_END)


def _plain(text: str) -> str:
    return PUNCT_SPACE.sub("", text).casefold()


class Echo(Filter):
    """A reply that only repeats its instruction (spaces, punctuation and case aside), unless the
    dialogue asked for repetition."""

    name = "echo"
    reasons = ("reply_echoes_instruction",)

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        for index in range(0, len(turns) - 1, 2):
            user, reply = turns[index], turns[index + 1]
            if len(reply.text) > len(user.full_text) + 8:
                continue
            plain = _plain(reply.text)
            if plain and plain in (_plain(user.text), _plain(user.full_text)):
                if any(asks_for_repetition(turns[i].full_text) for i in range(0, index + 1, 2)):
                    continue
                verdict = Drop("reply_echoes_instruction", f"reply {index // 2 + 1} repeats its instruction")
                return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None


# ------------------------------------------------------------------ unk_tokens

UNK = re.compile(r"<unk>|\[UNK\]|\ufffd", re.IGNORECASE)


class UnkTokens(TurnFilter):
    """Unknown-token debris where words were lost: `<UNK>`, `[UNK]`, `�`."""

    name = "unk_tokens"
    reasons = ("unk_tokens",)

    def judge(self, question: str, reply: str) -> Drop | None:
        for where, text in (("reply", reply), ("instruction", question)):
            if "UNK" not in text and "unk" not in text and "Unk" not in text and "\ufffd" not in text:
                continue
            match = UNK.search(text)
            if match:
                return Drop("unk_tokens", f"{where} holds {match.group(0)!r} ({len(UNK.findall(text))} in all)")
        return None


# ------------------------------------------------------------------ missing_attachment

# An image or file linked outside code: Markdown images, <img src>, Markdown links to files.
ATTACHMENT = re.compile(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)"
                        r"|<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)"
                        r"|\[[^\]\n]*\]\(\s*<?([^)\s>]+\.(?:png|jpe?g|gif|bmp|webp|svg|pdf|docx?|xlsx?|pptx?|zip|csv|mp3|mp4|wav))",
                        re.IGNORECASE)
# A reply saying the material the instruction refers to was not given.
NOT_GIVEN = re.compile(r"(?:您|你)(?:并|还|好像|似乎)?(?:没有|没|未|并未)(?:提供|给出|告诉|指定|上传|附上|发送)"
                       r"|(?:我|)(?:没有?看到|无法看到|看不到)(?:您|你)(?:提到|提供|说|给出|所说)?"
                       r"|(?:希望|请)(?:您|你)?能?提供更多的?(?:信息|细节|上下文)"
                       r"|(?:请|麻烦)(?:您|你)?(?:先)?提供(?:具体|相应|相关)?的?(?:文章|段落|诗歌|诗|文本|图片|图像|链接|句子|评论|代码|陈述)")


# A request about writing Markdown, HTML or a web page: image links in its reply are examples.
MARKUP_TOPIC = re.compile(r"markdown|html|readme|网页|博客|<img|插入图片|图片链接|图床|\bmd\b", re.IGNORECASE)

# Every NOT_GIVEN match holds one of these (a substring test is much cheaper than the pattern).
NOT_GIVEN_WORDS = ("提供", "给出", "告诉", "指定", "上传", "附上", "发送", "看到", "看不到")


class MissingAttachmentSettings(RuleSettings):
    # Off by default: 6 right of 7 firings (0.86) on the frozen test split once it read whether the material
    # is there (was 7 of 9); under the 0.95 over 20 firings a default rule needs (docs/cleaning.md).
    enabled: bool = False
    max_chars: int = Field(300, ge=0, description="a reply saying the material is missing is judged only when "
                           "shorter than this (a longer one went on to answer anyway)")
    base: str = Field("", description="folder that relative links are resolved against ('': the working folder)")


class MissingAttachment(TurnFilter):
    """Material that is not there: a link to a local image or file that does not exist (web links
    are not checked), or a reply saying the article, poem or picture it was asked about was not given."""

    name = "missing_attachment"
    reasons = ("missing_attachment",)
    Settings = MissingAttachmentSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        for index in range(0, len(turns) - 1, 2):
            # a reply asking for the material, then the user going on: it was asked for and given
            # ("把这句话翻译一下" / "请问你要翻译哪一句话呢？" / "Guten Morgen!…")
            verdict = self.judge(turns[index].full_text, turns[index + 1].text, answered=index + 2 < len(turns))
            if verdict is not None:
                return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None

    def judge(self, question: str, reply: str, answered: bool = False) -> Drop | None:
        short = len(reply) < self.settings.max_chars and any(word in reply for word in NOT_GIVEN_WORDS)
        match = NOT_GIVEN.search(reply) if short and not answered else None
        # Only a reply that does nothing but ask for material the row lacks: one that notes what
        # is missing and answers anyway, or asks for more beside material the row carries, is not.
        if match and only_asks_for_it(reply) and not carries_material(question):
            return Drop("missing_attachment", f"reply says {match.group(0)!r}")
        for text in (question, reply):
            if "](" not in text and "<img" not in text and "<IMG" not in text:
                continue
            if text is reply and MARKUP_TOPIC.search(question):
                continue  # a reply teaching Markdown or HTML shows image links as examples
            for link in ATTACHMENT.finditer(CODE_SPAN.sub(" ", text)):
                target = next(g for g in link.groups() if g)
                if not self._exists(target):
                    return Drop("missing_attachment", f"links to {target!r}, which is not there")
        return None

    def _exists(self, target: str) -> bool:
        if re.match(r"^(?:https?|ftp|data):", target, re.IGNORECASE):
            return True  # not checked: no network
        from pathlib import Path

        return (Path(self.settings.base or ".") / target.split("#")[0].split("?")[0]).exists()


# ------------------------------------------------------------------ unseen_attachment

# A text that refers to a picture or an attached file as being there ("看图写话", "如图所示",
# "根据附件"). 图 after a word that makes another word of it (地图, 意图, 试图) is not a picture,
# nor 图 before 书/案/形/像 (图书馆, 图案). 图中 on its own must start a phrase.
_NOT_PICTURE_AFTER = r"(?!书|案|形|像|纸|腾|谋|钉|强|存|文并茂|距离)"  # 图上距离: a distance on a map (比例尺)
PICTURE_REFERENCE = re.compile(
    r"(?:(?<!好)看图|识图|读图|(?<![比例假譬正诸])如图|(?<![不可])见图|附图|据图|根据图|观察图|下图|上图|左图|右图|此图|该图|本图"
    r"|这张图|这幅图|这个图|那张图|(?<![\u4e00-\u9fff])图(?:中|里|上)|(?<![\u4e00-\u9fff])图片(?:中|里|上)|所给图片|以下图片"
    r"|下面的图片|上面的图片|这张照片|这幅照片|该照片|(?<![\u4e00-\u9fff])照片(?:中|里))" + _NOT_PICTURE_AFTER
    + r"|\b(?:the|this) (?:image|picture|photo|figure|chart) (?:above|below|shows|attached)\b|\bsee (?:the )?(?:figure|image)\b"
    r"|\battached (?:image|picture|photo)\b",
    re.IGNORECASE)
TABLE_REFERENCE = re.compile(
    r"(?:下表|上表|附表|此表|该表)(?![达示现演扬明白情态哥姐弟妹兄面层皮])"
    r"|(?:下面|上面|以下|如下|所给|这个|这张|该|此)(?:还有)?(?:的)?(?:一个|一张)?表格|\bthe table (?:below|above)\b",
    re.IGNORECASE)
FILE_REFERENCE = re.compile(
    r"(?:见|根据|参考|参照|按照|查看|打开|阅读|请看)(?:所附的?|附上的|上传的)?附件|附件(?:中|里|内)(?:的|所)|附件(?:是|为)"
    r"|所附(?:的)?(?:文件|文档|表格|材料|图片)|附上的(?:文件|文档|表格|材料|图片)|(?:我|您)上传的(?:文件|文档|表格|图片|照片)"
    r"|\battached (?:file|document|spreadsheet|pdf)\b|\b(?:the|this) (?:file|document) (?:attached|I uploaded)\b",
    re.IGNORECASE)
# Every match of the two patterns holds one of these (a substring test first is much cheaper).
ATTACHMENT_WORDS = ("图", "照片", "附", "上传", "表格", "下表", "上表", "此表", "该表", "table", "image", "picture", "photo",
                    "figure", "chart", "attached", "Image", "Picture", "Photo", "Figure", "Chart", "Attached", "file",
                    "document", "File", "Document")
ATTACHMENT_HINT = re.compile("|".join(ATTACHMENT_WORDS))  # one search in C instead of a test per word
# What carries a picture or a file in a text row: an image link or tag, a URL, a data URI, an
# `<image>` placeholder (LLaVA-style rows).
CARRIES_MEDIA = re.compile(r"!\[[^\]\n]*\]\(|<img\b|<image>|data:image/|https?://|www\.", re.IGNORECASE)


class OffUntilMeasured(RuleSettings):
    # Off until measured on the frozen test split (docs/cleaning.md).
    enabled: bool = False


class UnseenAttachment(Filter):
    """An instruction that refers to a picture, a table or an attached file the row does not carry:
    "看图写话" or "如图，长方形的长是…" with no picture, "下面还有一个表格" with none, "根据附件中的表格"
    with no file; or a single short request that refers to a text it does not hold ("确定这个陈述的
    目的。", "总结以下新闻文章。": instruct_data/clean/material.py). Not judged where the user's side
    carries an image link, a URL or an `<image>` placeholder (a link in the reply was invented by
    it), or gives the figure in text (a table, ASCII art, code, or lines of data after the
    reference). Replies are not judged: one that says "（见图示）" in a long answer usually
    answers all the same."""

    name = "unseen_attachment"
    reasons = ("refers_to_missing_picture", "refers_to_missing_table", "refers_to_missing_file",
               "refers_to_missing_text")
    Settings = OffUntilMeasured

    def filter(self, conversation: Conversation) -> Drop | None:
        turns = conversation.turns
        # A single request that refers to a text it does not hold ("确定这个陈述的目的。", "总结以下文章。"):
        # in a dialogue the text may be an earlier turn, and a system text may hold it.
        if len(turns) == 2 and not (conversation.system or "").strip():
            match = refers_to_text(turns[0].full_text)
            if match:
                return Drop("refers_to_missing_text", f"the instruction refers to {match.group(0)!r}, which the row does not carry")
        texts = [(turn.role, turn.full_text) for turn in turns]
        # a hint word first (one search in C), then a reference at all, before reading the layout
        candidates = [(i, role, text) for i, (role, text) in enumerate(texts)
                      if role == "user" and ATTACHMENT_HINT.search(text)
                      and any(p.search(text) for p in (PICTURE_REFERENCE, TABLE_REFERENCE, FILE_REFERENCE))]
        if not candidates:
            return None  # the usual case
        # only the user's side can carry the picture: a reply that links one invented it
        if conversation.system and CARRIES_MEDIA.search(conversation.system) or any(
                CARRIES_MEDIA.search(text) for role, text in texts if role == "user"):
            return None
        for index, role, text in candidates:
            lines = prose_lines(text)
            if len(lines) < sum(1 for line in text.split("\n") if line.strip()):
                continue  # a table, ASCII art or code may be the figure itself
            plain = "\n".join(lines)
            for pattern, reason in ((PICTURE_REFERENCE, "refers_to_missing_picture"),
                                    (TABLE_REFERENCE, "refers_to_missing_table"),
                                    (FILE_REFERENCE, "refers_to_missing_file")):
                if pattern is TABLE_REFERENCE and index > 0:
                    continue  # "我该如何导出这个表格" may mean a table an earlier reply made
                match = pattern.search(plain)
                if match and not _given_after(plain, match.end()) and not (
                        pattern is not PICTURE_REFERENCE and _given_before(plain, match.start())):
                    verdict = Drop(reason, f"the instruction refers to {match.group(0)!r}, which the row does not carry")
                    return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None


def _given_before(text: str, position: int) -> bool:
    """Two lines or more come before the reference: a table given as text, then asked about
    ("地区,2018年人口,…\n亚洲,4584,…\n…\n总结一下这个表格")."""
    return sum(1 for line in text[:position].split("\n")[:-1] if line.strip()) >= 2


def _given_after(text: str, position: int) -> bool:
    """Lines follow the reference: the figure's data is given as text ("如下图所示：\n星期一：12公里
    …", or an input "边长 2 厘米的立方体" after "确定下图的表面积")."""
    return any(line.strip() for line in text[position:].split("\n")[1:])


# ------------------------------------------------------------------ lost_tools

# A reply that speaks of a tool set: "我的功能仅限于计算税款", "为我提供的功能", "根据提供的函数",
# "<functioncall>", "the functions I have been provided".
TOOL_TALK = re.compile(
    r"(?:我的|我目前的|目前我的|我现在的)(?:功能|能力)(?:仅限于|只限于|仅包括|局限于|只有|仅有)"
    r"|(?:为我提供的|提供给我的|我可以使用的|我能使用的|我可用的|我所拥有的|我被赋予的)(?:功能|函数|工具|API)"
    r"|(?:根据|使用|调用)(?:所?提供的|给定的|可用的)(?:函数|功能|工具|API)"
    r"|(?:与|在)我(?:所)?提供的功能|在我(?:的)?功能范围内|无法执行[^。！？\n]{0,12}外部任务|外部任务的功能"
    r"|<functioncall>|<function_call>|<tool_call>|\bfunction_call\b"
    r"|\b(?:functions|tools) (?:I have been|I've been|I am|I'm) (?:provided|given)\b|\bmy (?:current )?capabilities are limited to\b"
    r"|\bI (?:don't|do not) have (?:a|the|any) (?:function|tool)s? (?:to|for|that)\b",
    re.IGNORECASE)
TOOL_WORDS = ("功能", "能力", "函数", "工具", "API", "function", "tool", "Function", "Tool", "capabilit")
# After a refusal ("很抱歉，我目前无法预订机票。"), naming what it can do speaks of its tools too:
# "我的功能是转换货币", "我没有预订机票的功能".
DECLINES = re.compile(r"抱歉|无法|不能|没有办法")
NAMES_ITS_FUNCTION = re.compile(r"我(?:目前|现在)?的(?:主要)?功能(?:目前)?(?:仅限于|只限于|是|主要是)|我(?:目前|并)?没有[^。！？\n，,]{0,16}的功能")


class LostTools(Filter):
    """A dialogue that lost its tools: a reply speaks of the functions it was given ("我的功能仅限于
    计算税款", "<functioncall>") and the row declares no tools and calls none, so what it refers to
    is not in the training record (a reader or a converter dropped them)."""

    name = "lost_tools"
    reasons = ("refers_to_missing_tools",)
    Settings = OffUntilMeasured

    def filter(self, conversation: Conversation) -> Drop | None:
        if getattr(conversation, "tools", None) or _calls_tools(conversation):
            return None
        turns = conversation.turns
        for index, turn in enumerate(turns):
            if turn.role != "assistant" or not any(word in turn.text for word in TOOL_WORDS):
                continue
            match = TOOL_TALK.search(turn.text) or (DECLINES.search(turn.text) and NAMES_ITS_FUNCTION.search(turn.text))
            if match:
                verdict = Drop("refers_to_missing_tools", f"the reply says {match.group(0)!r}, and the row carries no tools")
                return verdict._replace(turn=index // 2 + 1) if len(turns) > 2 else verdict
        return None


def _calls_tools(conversation) -> bool:
    """A tool turn or a call in the dialogue (a row read without its tool list still shows them)."""
    return any(turn.role == "tool" or getattr(turn, "tool_calls", None) for turn in conversation.turns)


# ------------------------------------------------------------------ arithmetic


class ArithmeticSettings(RuleSettings):
    # Off until it reaches 0.95 precision and 0.8 recall of wrong final results on real maths
    # (benchmarks/bench_arithmetic.py; the figures are in docs/cleaning.md).
    enabled: bool = False
    # A final statement (答：…, 所以…) that contradicts the working's last result just above it
    # (instruct_data/clean/final_answer.py): `wrong_final_answer`.
    final_answer: bool = True


class Arithmetic(TurnFilter):
    """A reply whose worked equations are wrong: every closed chain `a op b = c = d` in its prose
    (brackets, × ÷ * /, fractions, percentages, decimals, full-width digits, units) is computed
    exactly and must hold to the decimals the text shows. Chains with unknowns, remainders,
    ratios and changes of unit are not checked (instruct_data/clean/arithmetic.py)."""

    name = "arithmetic"
    reasons = ("wrong_arithmetic", "wrong_final_answer")
    Settings = ArithmeticSettings

    def judge(self, question: str, reply: str) -> Drop | None:
        if "=" not in reply and "＝" not in reply and "≈" not in reply:
            return None
        prose = without_code(reply)
        wrong = first_wrong(prose, question)
        if wrong is not None:
            left, right, value = wrong.wrong
            return Drop("wrong_arithmetic", f"{left} = {right} (it is {_shown(value)})")
        if self.settings.final_answer:
            found = final_mismatch(prose, question)
            if found is not None:
                return Drop("wrong_final_answer", f"the working gives {found.result}, the answer says {found.stated}")
        return None


def _shown(value) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.6g}"


# ------------------------------------------------------------------ non_answer

ACKNOWLEDGEMENT = re.compile(r"^\W*(?:好的|好|好吧|嗯+|哦|收到|没问题|可以|OK|Okay|ok|Why|为什么)\W*$", re.IGNORECASE)


# A question an acknowledgement answers well: a yes/no question, or one setting up what follows.
SETS_UP = re.compile(r"[吗么][？?]?\s*$|从现在开始|接下来|以后|记住|扮演|明白|准备好|\?$|？$")


def _offered(text: str, question: str) -> bool:
    """The reply is one of the answers the question offers in quotes (输出“好”或“坏”)."""
    core = text.strip("。.!！？? ")
    return bool(core) and re.search(rf"[“\"'「『‘]{re.escape(core)}[”\"'」』’]", question) is not None


class NonAnswer(TurnFilter):
    """A reply that is only an acknowledgement or a question back ("好的", "Why?") to a request
    that wanted content (not an answer the question offers: 输出“好”或“坏” -> 好)."""

    name = "non_answer"
    reasons = ("non_answer",)

    def judge(self, question: str, reply: str) -> Drop | None:
        text = reply.strip()
        if len(text) > 8 or not ACKNOWLEDGEMENT.match(text) or SETS_UP.search(question) or _offered(text, question):
            return None
        return Drop("non_answer", f"the reply is only {text!r}")


# ------------------------------------------------------------------ deflection

# In its own module (it reads which answers the instruction offers).
from instruct_data.clean.deflection import Deflection, DeflectionSettings  # noqa: E402,F401


# ------------------------------------------------------------------ wrong_script


class WrongScript(TurnFilter):
    """An instruction asking for traditional characters (请使用繁体中文, #zh-hant) answered in
    simplified ones: more than `max_simplified` characters change when the reply is converted
    to traditional (OpenCC s2t)."""

    name = "wrong_script"
    reasons = ("wrong_script",)

    def judge(self, question: str, reply: str) -> Drop | None:
        if ("繁" not in question and "正體" not in question and "正体" not in question and "zh" not in question
                and "raditional" not in question) or not asks_for_traditional(question):
            return None
        converted = _s2t().convert(reply)
        changed = sum(a != b for a, b in zip(reply, converted))
        if changed > 3:
            return Drop("wrong_script", f"traditional characters asked for; {changed} characters of the reply are simplified")
        return None


def _s2t():
    import opencc

    global _S2T
    if _S2T is None:
        _S2T = opencc.OpenCC("s2t")
    return _S2T


_S2T = None


# ------------------------------------------------------------------ copied_page

COPIED_PAGE = re.compile(r"著作权归作者所有|商业转载请联系作者获得授权|非商业转载请注明出处|本文(?:转载|来源)自|原文链接[:：]")


class CopiedPage(TurnFilter):
    """A reply pasted from a web page with its copyright header (作者… 来源：知乎 著作权归作者所有)."""

    name = "copied_page"
    reasons = ("copied_page",)

    def judge(self, question: str, reply: str) -> Drop | None:
        if "著作权" not in reply and "转载" not in reply and "原文链接" not in reply:
            return None
        match = COPIED_PAGE.search(reply)
        return Drop("copied_page", f"reply holds {match.group(0)!r}") if match else None


FILTERS: tuple[type[Filter], ...] = (Empty, Length, UnkTokens, ChineseShare, Repetition, AiIdentity, BelleBlacklist,
                                      Refusal, Truncated, Echo, MissingAttachment, UnseenAttachment, LostTools, CopiedPage,
                                      Garbled, StrayFirstTurn, WrongScript, Arithmetic, NonAnswer, Deflection, TerseReply, Pii)
