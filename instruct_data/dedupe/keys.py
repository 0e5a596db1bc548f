"""Normalized keys: what two rows are compared on. The stored text is never changed.

The key is NFKC-normalized (full-width letters and digits become ASCII), case-folded, and
stripped of whitespace, punctuation and symbols, optionally converted from Traditional to
Simplified Chinese. `好的，谢谢！` and `好的 谢谢!` then have the same key.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import numpy as np
import xxhash

from instruct_data.dedupe.types import DedupeSettings, Item
from instruct_data.schema import calls_json, record_replies

# \w keeps letters (every script, CJK included) and digits; everything else (spaces,
# punctuation of every width, symbols, emoji) goes. `_` is a \w character, so it is named.
_NOT_WORD = re.compile(r"[\W_]+")
_WORD_RUN = re.compile(r"\w+")


def strip_non_word(text: str) -> str:
    r"""_NOT_WORD.sub("", text), about a quarter faster (measured on Chinese rows): joining
    the runs of word characters builds no replacement pieces; `_` is the one \w character
    that _NOT_WORD also drops."""
    kept = "".join(_WORD_RUN.findall(text))
    return kept.replace("_", "") if "_" in kept else kept


# Joins prompt and reply for key "both": cannot survive normalization, so never collides.
_JOIN = "\x1f"


@lru_cache(maxsize=1)
def _t2s():
    import opencc  # opencc-python-reimplemented; loads its dictionaries once

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _word_table() -> np.ndarray:
    r"""True for each code point of the Basic Multilingual Plane that \w matches, `_` aside
    (str.isalnum: the test re's \w makes, tests/test_dedupe_keys_batch.py checks every one)."""
    return np.array([chr(c).isalnum() for c in range(0x10000)], dtype=bool)


def strip_non_word_many(texts: list[str]) -> list[str]:
    """[strip_non_word(t) for t in texts], about five times faster on Chinese rows: the texts
    are joined into one array of code points and the word characters looked up in a table, in
    numpy, where the regex tests each character in turn (the slowest step of a worker's exact
    keys). A text holding a character beyond the BMP (an emoji, a rare ideograph) is stripped
    the old way; so are batches too small to be worth the arrays."""
    if len(texts) < 16:
        return [strip_non_word(t) for t in texts]
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
    kept = np.flatnonzero(np.take(_word_table(), np.minimum(codes, 0xFFFF)))  # positions of word characters
    bounds = np.searchsorted(kept, np.concatenate(([0], ends))).tolist()  # word characters before each text's end
    words = codes[kept].tobytes().decode("utf-32-le")
    stripped = [words[a:b] for a, b in zip(bounds, bounds[1:])]
    beyond = np.flatnonzero(codes > 0xFFFF)
    for i in np.unique(np.searchsorted(ends, beyond, side="right")).tolist():
        stripped[i] = strip_non_word(texts[i])
    return stripped


def normalize_many(texts: list[str], traditional_to_simplified: bool = False) -> list[str]:
    """[normalize(t, traditional_to_simplified) for t in texts], the word characters found and
    the case folded for all of them at once."""
    stripped = [_nfkc_words(s) for s in strip_non_word_many(texts)]
    return [_normalized(text, folded, traditional_to_simplified) for text, folded in zip(texts, _casefold_many(stripped))]


@lru_cache(maxsize=1)
def _fold_table() -> np.ndarray:
    """True for each code point of the BMP that str.casefold changes, and for the one index past
    it (any character beyond the BMP, looked at one by one)."""
    return np.array([chr(c).casefold() != chr(c) for c in range(0x10000)] + [True], dtype=bool)


def _casefold_many(texts: list[str]) -> list[str]:
    """[t.casefold() for t in texts]: casefold maps each character on its own, so only the texts
    holding a character it changes are folded (found in one numpy pass over a batch: most
    Chinese texts have none, and casefold costs about 5 ns a character); else the texts are
    folded joined and cut again where no character grew (ß -> ss), else one by one."""
    if len(texts) >= 16:
        codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4")
        folds = np.flatnonzero(np.take(_fold_table(), np.minimum(codes, 0x10000)))
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        folded = list(texts)
        for i in np.unique(np.searchsorted(ends, folds, side="right")).tolist():
            folded[i] = texts[i].casefold()
        return folded
    joined = "".join(texts)
    folded = joined.casefold()
    if len(folded) != len(joined):
        return [t.casefold() for t in texts]
    pieces, start = [], 0
    for text in texts:
        end = start + len(text)
        pieces.append(folded[start:end])
        start = end
    return pieces


def normalize(text: str, traditional_to_simplified: bool = False) -> str:
    """The comparison form of a text."""
    return _normalized(text, _nfkc_words(strip_non_word(text)).casefold(), traditional_to_simplified)


def _nfkc_words(stripped: str) -> str:
    """The word characters of a text (strip_non_word), NFKC-normalized."""
    # Dropping punctuation first is the same as dropping it after NFKC (NFKC maps punctuation
    # to punctuation: ，→ , and ？→ ?), and the rest of a Chinese text is usually already NFKC,
    # which the quick check sees at once: NFKC on the raw text was the slowest step.
    if not unicodedata.is_normalized("NFKC", stripped):
        stripped = strip_non_word(unicodedata.normalize("NFKC", stripped))
    return stripped


def _normalized(text: str, stripped: str, traditional_to_simplified: bool) -> str:
    """normalize(text), given its word characters NFKC-normalized and case-folded."""
    if traditional_to_simplified:
        stripped = _t2s().convert(stripped)
    if not stripped:
        text = unicodedata.normalize("NFKC", text).casefold()
    # A text of nothing but punctuation or emoji still has to be compared with something:
    # fall back to the text without whitespace rather than an empty key shared by all of them.
    return stripped if stripped else "".join(text.split())


def record_texts(conversation, every_turn: bool = False) -> list[tuple[str, str]]:
    """(prompt, reply) of each training record a conversation gives, as dedupe compares them:
    one per reply in every-turn mode, else the final reply's. The one definition of a record's
    prompt, for build, dedupe and the benchmark questions of `--against` alike: the earlier
    rounds of the dialogue (question, reply, ...) and the question, joined by newlines.
    In every-turn mode the history ends with HISTORY_END instead: each earlier round is a
    record of its own there, so near detection compares a record's own round (near_key_text).

    The system text is left out: it is boilerplate shared by many rows, and would hide a
    benchmark question asked under a system text. A history cut short by the multi-turn
    settings (max_history_turns, a budget) is still compared whole.
    """
    turns = conversation.turns
    if len(turns) == 2 and not getattr(turns[1], "tool_calls", None):  # the usual single-turn row
        return [(turns[0].full_text, turns[1].text)]
    if getattr(conversation, "has_tools", False):
        return tool_record_texts(conversation, every_turn)
    texts = [turn.full_text if turn.role == "user" else turn.text for turn in turns]
    wanted = [2 * k + 1 for k in _record_replies(turns, every_turn)]  # turns alternate user, assistant
    return [(join_prompt(texts[:k - 1], texts[k - 1], every_turn), texts[k]) for k in wanted]


def _record_replies(turns, every_turn: bool) -> list[int]:
    """schema.record_replies: the replies that give records (a reply at weight 0 gives none);
    the last reply when every one is at weight 0 (a benchmark question's row: the build's
    readers reject such a row)."""
    return record_replies(turns, every_turn) or [sum(1 for turn in turns if turn.role == "assistant") - 1]


# Ends the history in a prompt of every-turn mode: neither a letter nor a digit, so the
# normalized (exact) key is the same as with a newline.
HISTORY_END = "\x1e"


def join_prompt(history: list[str], question: str, every_turn: bool = False) -> str:
    """A record's prompt: the texts of the earlier rounds, then the question."""
    if not history:
        return question
    return "\n".join(history) + (HISTORY_END if every_turn else "\n") + question


def tool_record_texts(conversation, every_turn: bool = False) -> list[tuple[str, str]]:
    """record_texts of a dialogue with tool calls (docs/tools.md): one record per assistant turn
    (a call is a reply too). The reply is the turn's text and its calls (name and arguments, as
    canonical JSON), so two dialogues that call differently are not copies; the prompt is what
    the users and the assistant said before it, tool results and calls left out, so a benchmark
    question (a user's words) is found in it as in a dialogue without tools."""
    turns = conversation.turns
    said = [turn.full_text if turn.role == "user" else turn.text for turn in turns]
    replies = [k for k, turn in enumerate(turns) if turn.role == "assistant"]
    wanted = [replies[k] for k in _record_replies(turns, every_turn)]
    texts = []
    for k in wanted:
        before = [i for i in range(k) if turns[i].role != "tool" and said[i].strip()]
        # The question: the round's user turn, and what the assistant said in it before this turn.
        asked = max((i for i in before if turns[i].role == "user"), default=-1)
        prompt = join_prompt([said[i] for i in before if i < asked], "\n".join(said[i] for i in before if i >= asked),
                             every_turn)
        reply = "\n".join(part for part in (turns[k].text, calls_json(turns[k].tool_calls)) if part)
        texts.append((prompt, reply))
    return texts


def record_prompt(conversation) -> str:
    """The prompt of a conversation's final record (record_texts): a benchmark question."""
    return record_texts(conversation)[-1][0]


def key_text(item: Item, key: str) -> str:
    """The raw text a key is built from: the prompt, the reply, or both joined."""
    if key == "prompt":
        return item.prompt
    if key == "reply":
        return item.reply
    return f"{item.prompt}{_JOIN}{item.reply}"


def normalized_key_text(item: Item, settings: DedupeSettings) -> str:
    t2s = settings.traditional_to_simplified
    if settings.key == "both":
        # Normalize the parts apart so the joiner survives (it is neither a letter nor a digit).
        return f"{normalize(item.prompt, t2s)}{_JOIN}{normalize(item.reply, t2s)}"
    return normalize(key_text(item, settings.key), t2s)


_DIGITS = re.compile(r"[0-9]+")


def numbers_key(normalized: str) -> int:
    """The numbers a normalized key text holds, as one 64-bit value (0 for none): near
    duplicates must have equal ones. Shingles see `6+3=9` and `5+3=8` as mostly the same
    text; a maths problem with other numbers is another problem, so LSH never pairs them
    (near.band_keys folds this value into every band). Compared as a multiset (sorted): a
    copy that moves a sentence keeps its numbers. The key has lost punctuation, so `1,000`
    and `1000` agree; Chinese numerals (三) are words and are left to the shingles."""
    found = _DIGITS.findall(normalized)
    if not found:
        return 0
    return xxhash.xxh3_64_intdigest(" ".join(sorted(found)).encode("ascii")) or 1


def own_question(prompt: str) -> str | None:
    """The question of a record whose prompt marks where its history ends (every-turn mode),
    else None. Contamination checks it as well as the whole prompt: a dialogue that asks a
    held-out question after rounds of its own trains its held-out answer all the same."""
    return prompt.rpartition(HISTORY_END)[2] if HISTORY_END in prompt else None


def near_key_text(item: Item, settings: DedupeSettings, normalized: str) -> str:
    """The text near detection compares (`normalized`: the item's normalized_key_text): the
    record's own round when its prompt marks where the history ends (every-turn mode).

    A later record's prompt holds every round before it, which outweighs its own question and
    reply: `x:20#t2` ("谢谢" and its reply, after the round that is row `x:19`) was removed as
    a near copy of `x:19`. The earlier rounds are records of their own, compared on their own;
    exact copies still compare the whole prompt."""
    if HISTORY_END not in item.prompt:
        return normalized
    own = Item(item.id, item.prompt.rpartition(HISTORY_END)[2], item.reply)
    return normalized_key_text(own, settings)


def dialogue_key(item: Item) -> int:
    """Which dialogue an item belongs to, as a 64-bit value: the records of one dialogue are
    never compared with each other (each is a later stage of the same conversation, and its
    prompt holds the earlier ones)."""
    return xxhash.xxh3_64_intdigest((item.dialogue or item.id).encode("utf-8"))


def hash_text(normalized: str) -> bytes:
    """A 128-bit hash of an already-normalized text."""
    return xxhash.xxh3_128_digest(normalized.encode("utf-8"))


def exact_key(text: str, settings: DedupeSettings | None = None) -> bytes:
    """The exact-duplicate key of one text: two texts are exact duplicates when these are equal."""
    t2s = settings.traditional_to_simplified if settings is not None else False
    return hash_text(normalize(text, t2s))


def content_hash(item: Item) -> bytes:
    """A hash of the stored (un-normalized) text: the order-free tie-break between copies."""
    return xxhash.xxh3_128_digest(f"{item.prompt}{_JOIN}{item.reply}".encode("utf-8"))
