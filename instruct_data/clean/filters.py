"""Filters: rules that keep a row or drop it with a reason code (stage `clean` in rejects.jsonl)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from instruct_data.clean.base import Drop, Filter, RuleSettings, reply_texts, user_texts, without_code
from instruct_data.schema import Conversation

# ------------------------------------------------------------------ empty


class Empty(Filter):
    """A user turn or a reply left empty (normalizers can empty a text made of invisible characters)."""

    name = "empty"
    reasons = ("empty_instruction", "empty_reply")

    def filter(self, conversation: Conversation) -> Drop | None:
        for index, turn in enumerate(conversation.turns):
            if not turn.full_text.strip():
                reason = "empty_instruction" if turn.role == "user" else "empty_reply"
                return Drop(reason, f"turn {index + 1} ({turn.role}) is empty after normalization")
        return None


# ------------------------------------------------------------------ length


class LengthSettings(RuleSettings):
    min_instruction: int = Field(2, ge=0, description="fewest characters in a user turn")
    max_instruction: int = Field(8192, ge=1)
    min_reply: int = Field(1, ge=0, description="fewest characters in a reply")
    max_reply: int = Field(8192, ge=1)


class Length(Filter):
    """Too short or too long, in characters, per field (every user turn, every reply)."""

    name = "length"
    reasons = ("instruction_too_short", "instruction_too_long", "reply_too_short", "reply_too_long")
    Settings = LengthSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        s = self.settings
        for field, texts, low, high in (("instruction", user_texts(conversation), s.min_instruction, s.max_instruction),
                                        ("reply", reply_texts(conversation), s.min_reply, s.max_reply)):
            for text in texts:
                size = len(text.strip())
                if size < low:
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


def count_han_latin(text: str) -> tuple[int, int]:
    """(Chinese characters, Latin letters) in the text."""
    raw = text.encode("utf-8")
    return len(raw.translate(None, _NOT_HAN)), len(raw.translate(None, _NOT_LATIN))


class ChineseShareSettings(RuleSettings):
    min_share: float = Field(0.3, ge=0, le=1, description="least share of Chinese among Chinese+Latin letters")
    min_letters: int = Field(10, ge=0, description="rows with fewer letters than this are not judged")
    field: Literal["all", "instruction", "reply"] = "all"


class ChineseShare(Filter):
    """Too few Chinese characters for a Chinese set: Han / (Han + Latin letters), code excluded.

    Digits, punctuation and code blocks do not count either way, so a math answer or a
    Python reply with Chinese comments is judged by its prose only.
    """

    name = "chinese_share"
    reasons = ("low_chinese_share",)
    Settings = ChineseShareSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        field = self.settings.field
        texts = []
        if field in ("all", "instruction"):
            texts += user_texts(conversation)
        if field in ("all", "reply"):
            texts += reply_texts(conversation)
        han, latin = count_han_latin(without_code("\n".join(texts)))
        letters = han + latin
        if letters < self.settings.min_letters:
            return None
        share = han / letters
        if share < self.settings.min_share:
            return Drop("low_chinese_share", f"Chinese share {share:.2f} < {self.settings.min_share}")
        return None


# ------------------------------------------------------------------ repetition

# Trailing spaces go with the terminator; a leading \s* would make the scan try every position.
SENTENCE_END = re.compile(r"[。！？!?；;\n]+\s*")


class RepetitionSettings(RuleSettings):
    max_duplicate_sentences: float = Field(0.3, ge=0, le=1, description="largest share of repeated sentences")
    min_sentences: int = Field(3, ge=2, description="replies with fewer sentences are not judged by sentences")
    min_sentence_chars: int = Field(4, ge=1, description="shorter sentences (list markers, 是。) are ignored")
    ngram: int = Field(10, ge=2, description="character n-gram size")
    max_duplicate_ngrams: float = Field(0.4, ge=0, le=1, description="largest share of n-grams seen earlier in the reply")
    min_chars: int = Field(60, ge=0, description="shorter replies are not judged by n-grams")
    probes: int = Field(8, ge=0, description="n-grams sampled at even steps to decide whether to count them all (0: always count)")


class Repetition(Filter):
    """A reply that repeats itself: many repeated sentences, or many repeated character n-grams.

    Counting n-grams costs a set of every window, so it runs only when n-grams sampled at even
    steps through the reply already repeat (a `str.count` each): in a reply where 40% of the
    n-grams repeat, 8 probes all miss with probability 0.6**8 (under 2%); in a looping reply
    almost every n-gram repeats and they never miss.
    """

    name = "repetition"
    reasons = ("repeated_sentences", "repeated_ngrams")
    Settings = RepetitionSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        for reply in reply_texts(conversation):
            verdict = self._sentences(reply) or self._ngrams(reply)
            if verdict:
                return verdict
        return None

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
        share = 1 - len({text[i:i + n] for i in range(total)}) / total
        if share > s.max_duplicate_ngrams:
            return Drop("repeated_ngrams", f"{share:.0%} of {n}-character n-grams repeat earlier ones")
        return None


# ------------------------------------------------------------------ ai_identity

AI_IDENTITY = re.compile(
    r"作为(?:一个|一名|一款|一位)(?:AI|人工智能|机器人|语言模型|虚拟助手|智能助手|聊天机器人)"
    r"|作为(?:AI|人工智能)?(?:语言模型|助手)"
    r"|我是(?:一个|一名|一款)(?:AI|人工智能|语言模型|聊天机器人)"
    r"|我是(?:AI|人工智能)(?:语言模型|助手|程序)"
    r"|我是\s*(?:ChatGPT|GPT)"
    r"|(?:由|被)\s*OpenAI\s*(?:开发|训练|创建|打造|设计)"
    r"|OpenAI\s*(?:开发|训练)的"
    r"|我(?:没有|不具备)(?:个人|自己的)(?:观点|情感|意见|感情|偏好|喜好|经历)"
    r"|我(?:无法|不能)(?:访问|浏览|连接)(?:互联网|网络|实时)"
    r"|我的(?:知识|训练数据)(?:截止|更新)"
    r"|\bas an AI(?: language model| assistant)?\b|\bI am (?:ChatGPT|an AI language model)\b"
    r"|\bI'm (?:ChatGPT|an AI language model)\b",
    re.IGNORECASE,
)


# Every match of the pattern above holds one of these literals: searching for them first skips
# the full pattern on most replies. Case variants are spelled out: IGNORECASE makes a search
# over Chinese text about ten times slower.
AI_IDENTITY_HINT = re.compile("作为|我是|我没有|我不具备|我无法|我不能|我的知识|我的训练|AI|ai|Ai|aI|I am|I'm|i am|i'm|I AM")


class AiIdentity(Filter):
    """AI self-identity and disclaimer boilerplate in a reply (作为一个AI语言模型, 我是ChatGPT, OpenAI ...)."""

    name = "ai_identity"
    reasons = ("ai_identity",)

    def filter(self, conversation: Conversation) -> Drop | None:
        for reply in reply_texts(conversation):
            if not AI_IDENTITY_HINT.search(reply):
                continue
            match = AI_IDENTITY.search(reply)
            if match:
                return Drop("ai_identity", f"reply says {match.group(0)!r}")
        return None


# ------------------------------------------------------------------ belle_blacklist

# BELLE's generator dropped rows holding any of these (BELLE.md, from the BELLE repository).
BELLE_BLACKLIST = ("图像", "图片", "照片", "文件", "图表", "图层", "曲线图", "折线图", "直线图", "柱形图", "饼状图",
                   "链接", "http", "OpenAI", "chatgpt", "gpt-3", "gpt-3.5", "gpt-4")


class BlacklistSettings(RuleSettings):
    enabled: bool = False
    words: list[str] = Field(default_factory=lambda: list(BELLE_BLACKLIST), min_length=1)


class BelleBlacklist(Filter):
    """Belle's own generation blacklist (图片, 链接, http, GPT ...), anywhere in the row (off unless asked)."""

    name = "belle_blacklist"
    reasons = ("blacklisted_word",)
    Settings = BlacklistSettings

    def __init__(self, settings=None):
        super().__init__(settings)
        self._pattern = re.compile("|".join(re.escape(w) for w in self.settings.words), re.IGNORECASE)

    def filter(self, conversation: Conversation) -> Drop | None:
        for text in user_texts(conversation) + reply_texts(conversation):
            match = self._pattern.search(text)
            if match:
                return Drop("blacklisted_word", f"holds {match.group(0)!r}")
        return None


# ------------------------------------------------------------------ refusal

REFUSAL = re.compile(
    r"^\W{0,3}(?:(?:很|非常|十分)?抱歉|对不起|不好意思)[，,。！!\s]*(?:但是?|，)?\s*(?:作为[^，,。]{0,12}[，,]\s*)?"
    r"(?:我|本助手)?(?:无法|不能|没有办法|没办法|不可以|不会)"
    r"|^\W{0,3}我(?:无法|不能)(?:回答|提供|完成|满足|帮助|协助|执行)"
    r"|^\W{0,3}(?:I'm sorry|Sorry|I apologize)[,.]?\s*(?:but\s+)?I (?:can't|cannot|am unable)",
    re.IGNORECASE,
)


class RefusalSettings(RuleSettings):
    enabled: bool = False


class Refusal(Filter):
    """A reply that opens by refusing (抱歉，我无法 ...) (off unless asked)."""

    name = "refusal"
    reasons = ("refusal",)
    Settings = RefusalSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        for reply in reply_texts(conversation):
            match = REFUSAL.search(reply)
            if match:
                return Drop("refusal", f"reply opens with {match.group(0)!r}")
        return None


# ------------------------------------------------------------------ truncated


class TruncatedSettings(RuleSettings):
    # A complete reply does not end on a comma, an enumeration comma, a colon or an opening bracket.
    dangling: str = "，,、：:；;（(“‘《[{【"


class Truncated(Filter):
    """A reply that looks cut off: it ends on a comma, colon or opening bracket, or leaves a code block open."""

    name = "truncated"
    reasons = ("truncated_reply",)
    Settings = TruncatedSettings

    def filter(self, conversation: Conversation) -> Drop | None:
        for reply in reply_texts(conversation):
            text = reply.rstrip()
            if text and text[-1] in self.settings.dangling:
                return Drop("truncated_reply", f"reply ends with {text[-1]!r}")
            if text.count("```") % 2:
                return Drop("truncated_reply", "reply leaves a code block open")
        return None


# ------------------------------------------------------------------ echo

PUNCT_SPACE = re.compile(r"[\s\W_]+")


def _plain(text: str) -> str:
    return PUNCT_SPACE.sub("", text).casefold()


class Echo(Filter):
    """A reply that only repeats its instruction (spaces, punctuation and case aside)."""

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
                return Drop("reply_echoes_instruction", f"reply {index // 2 + 1} repeats its instruction")
        return None


# ------------------------------------------------------------------ pii

PHONE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?![\d.])")
ID_CARD = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])")
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
NUMBER_RUN = re.compile(r"\d\d\d")  # every phone and ID card number holds one (faster to scan than \d{3})
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_id_card(number: str) -> bool:
    """The GB 11643 check digit: random 18-digit numbers rarely pass it."""
    total = sum(int(d) * w for d, w in zip(number[:17], ID_WEIGHTS))
    return "10X98765432"[total % 11] == number[17].upper()


class PiiSettings(RuleSettings):
    mode: Literal["mask", "reject"] = "mask"
    phone: bool = True
    id_card: bool = True
    email: bool = True
    masks: dict[Literal["phone", "id_card", "email"], str] = Field(
        default_factory=lambda: {"phone": "[PHONE]", "id_card": "[ID_CARD]", "email": "[EMAIL]"})


class Pii(Filter):
    """Phone numbers, ID card numbers (check digit verified) and e-mail addresses: masked or rejected."""

    name = "pii"
    reasons = ("pii",)
    Settings = PiiSettings

    def __init__(self, settings=None):
        super().__init__(settings)
        s = self.settings
        # (kind, needs, pattern, check). `needs` names the quick test a text must pass first:
        # a run of digits for numbers, an '@' for addresses; most texts pass neither.
        self._kinds = [kind for kind, on in (
            (("phone", "number", PHONE, None), s.phone),
            (("id_card", "number", ID_CARD, valid_id_card), s.id_card),
            (("email", "at", EMAIL, None), s.email),
        ) if on]

    def _candidates(self, text: str):
        number, at = NUMBER_RUN.search(text) is not None, "@" in text
        if not (number or at):
            return ()
        passed = {"number": number, "at": at}
        return [(kind, pattern, check) for kind, needs, pattern, check in self._kinds if passed[needs]]

    def find(self, text: str) -> str | None:
        """The kind of the first PII found in the text, or None."""
        for kind, pattern, check in self._candidates(text):
            for match in pattern.finditer(text):
                if check is None or check(match.group(0)):
                    return kind
        return None

    def mask(self, text: str) -> str:
        for kind, pattern, check in self._candidates(text):
            replacement = self.settings.masks.get(kind, f"[{kind.upper()}]")
            text = pattern.sub(lambda m: replacement if check is None or check(m.group(0)) else m.group(0), text)
        return text

    def filter(self, conversation: Conversation) -> Drop | None:
        if self.settings.mode == "reject":
            for turn in conversation.turns:
                kind = self.find(turn.full_text)
                if kind:
                    return Drop("pii", f"a {turn.role} turn holds a {kind.replace('_', ' ')}")
            return None
        changed = False
        for turn in conversation.turns:
            new = self.mask(turn.text)
            if new != turn.text:
                turn.text, changed = new, True
            if turn.input:
                new = self.mask(turn.input)
                if new != turn.input:
                    turn.input, changed = new, True
        if changed:
            self.changed += 1
        return None


FILTERS: tuple[type[Filter], ...] = (Empty, Length, ChineseShare, Repetition, AiIdentity, BelleBlacklist, Refusal,
                                      Truncated, Echo, Pii)
