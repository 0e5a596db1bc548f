"""One rule for the special tokens around a prompt, shared by training and evaluation.

A tokenizer may put special tokens before every text (Llama's BOS, GLM-4's `[gMASK]<sop>`).
A prompt gets them once: not when the rendered text already begins with them (an idata
template or a chat template that writes them itself), and never for a model's own chat
template, which is responsible for them (as `apply_chat_template(tokenize=True)` is). The
rest of the text is tokenized with `add_special_tokens=False`, so training and evaluation
produce the same ids for the same prompt. No heavy imports here: any tokenizer object works.
"""

from __future__ import annotations


def special_prefix(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before a text (Llama's BOS; nothing for Qwen)."""
    probe = "你好"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return list(full[:start])
    return []


class PromptPrefix:
    """Which special tokens go before a rendered text: `ids_for(text)`."""

    def __init__(self, tokenizer, native: bool = False):
        self.ids = [] if native else special_prefix(tokenizer)
        self.text = tokenizer.decode(self.ids) if self.ids else ""

    def ids_for(self, text: str) -> list[int]:
        # A template that writes the model's own prefix (GLM-4's [gMASK]<sop>) must not get it twice.
        return [] if not self.ids or text.startswith(self.text) else list(self.ids)

    def encode(self, tokenizer, texts: list[str]) -> list[list[int]]:
        """Each text's ids as the model sees them: the prefix when due, then the text's own tokens."""
        return [self.ids_for(text) + found.ids for text, found in zip(texts, encode_texts(tokenizer, texts))]


class Encoded:
    """One text's token ids, and its tokens' character offsets (made only when asked for)."""

    def __init__(self, ids: list[int], offsets=None, *, encoding=None, tokenizer=None, text: str = ""):
        self.ids = ids
        self._offsets = offsets
        self._encoding = encoding
        self._tokenizer = tokenizer
        self._text = text

    @property
    def offsets(self) -> list[tuple[int, int]]:
        if self._offsets is None:
            if self._encoding is not None:
                self._offsets = self._encoding.offsets
            else:
                self._offsets = _decoded_offsets(self._tokenizer, self.ids)
        return self._offsets

    def first_token_after(self, char: int) -> int:
        """The index of the first token that ends after character `char` (the one holding it):
        where the text from `char` on begins. Asks the Rust encoding when there is one, without
        building the offsets list (a single-turn row needs no more)."""
        if self._encoding is not None and self._offsets is None:
            found = self._encoding.char_to_token(char)
            if found is not None:
                return found
        return next((i for i, (_, end) in enumerate(self.offsets) if end > char), len(self.ids))


def encode_texts(tokenizer, texts: list[str]) -> list[Encoded]:
    """`texts` tokenized with `add_special_tokens=False`, by the fast tokenizer's Rust backend when
    there is one (what `tokenizer(...)` calls, without its per-row Python overhead)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [Encoded(e.ids, encoding=e) for e in backend.encode_batch(texts, add_special_tokens=False)]
    found = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [Encoded(list(ids), tokenizer=tokenizer, text=text) for ids, text in zip(found, texts)]


def _decoded_offsets(tokenizer, ids: list[int]) -> list[tuple[int, int]]:
    """Offsets for a tokenizer without them (a slow one): each token ends where the decoded prefix ends."""
    offsets, start = [], 0
    for index in range(len(ids)):
        end = max(start, len(tokenizer.decode(ids[:index + 1])))
        offsets.append((start, end))
        start = end
    return offsets
