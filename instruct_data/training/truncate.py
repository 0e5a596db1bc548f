"""Fitting an example into `--max-len` without losing its meaning.

An example is a prompt (the template header and system block, earlier rounds, the current
question) and the final reply. When it is too long, in this order:

1. drop whole earlier rounds, oldest first (the header and system block stay);
2. cut the middle of the current question, marking the cut with "…": its beginning and its
   last sentence stay, as does the template text around it;
3. cut the end of the reply, at a character boundary; a cut reply gets no end token, so the
   model is never taught to stop mid-answer.

The prompt gives up at most half of the room when the reply is what is long. An example whose
header, system block, last round lead and last sentence alone do not fit is skipped (counted
apart from the truncated ones). Example, `--max-len 64` with the seed template:

    Instruction: 请阅读下面的材料。很久以前的背景故事。……（两千字）……根据材料，作者的观点是什么？\\nAnswer: 作者认为读书很重要。
 -> Instruction: 请…事。根据材料，作者的观点是什么？\\nAnswer: 作者认为读书很重要。</s>
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from instruct_data.templates import PromptLayout
from instruct_data.tokens import Encoded

ELLIPSIS = "…"
# A sentence ends at Chinese or Western end punctuation or a line break.
SENTENCE_END = re.compile(r"[。！？!?；;\n]+|\.(?=\s)")


@dataclass
class Example:
    """A row as text: the prompt before the final reply, the supervised spans inside it, the reply."""

    prompt: str
    reply: str
    spans: list[tuple[int, int]] = field(default_factory=list)  # earlier replies, as (start, end) in prompt

    @classmethod
    def from_pieces(cls, texts: list[str], supervised: list[bool]) -> Example:
        last = max(i for i, s in enumerate(supervised) if s)
        prompt, spans = "", []
        for text, is_reply in zip(texts[:last], supervised[:last]):
            if is_reply:
                spans.append((len(prompt), len(prompt) + len(text)))
            prompt += text
        return cls(prompt, texts[last], spans)


def round_starts(example: Example, lead: str) -> list[int]:
    """Where each round's user block begins (outside earlier replies)."""
    if not lead:
        return []
    starts, at = [], example.prompt.find(lead)
    while at >= 0:
        if not any(s <= at < e for s, e in example.spans):
            starts.append(at)
        at = example.prompt.find(lead, at + 1)
    return starts


def drop_rounds(example: Example, encoded: Encoded, layout: PromptLayout, excess: int) -> Example | None:
    """The example without its oldest rounds, as few as remove about `excess` tokens; None: none to drop."""
    starts = round_starts(example, layout.lead)
    if len(starts) < 2:
        return None
    first = starts[0]
    upto = starts[-1]
    for start in starts[1:]:
        removed = sum(1 for s, _ in encoded.offsets if first <= s < start)
        if removed >= excess:
            upto = start
            break
    shift = upto - first
    spans = [(s - shift, e - shift) for s, e in example.spans if s >= upto]
    return Example(example.prompt[:first] + example.prompt[upto:], example.reply, spans)


def question_bounds(example: Example, layout: PromptLayout) -> tuple[int, int]:
    """(start, end) of the current question's text: after the last lead, before the template's tail."""
    starts = round_starts(example, layout.lead)
    start = starts[-1] + len(layout.lead) if starts else 0
    end = len(example.prompt) - len(layout.tail) if layout.tail and example.prompt.endswith(layout.tail) else len(example.prompt)
    return start, max(start, end)


def last_sentence_start(text: str, start: int, end: int) -> int:
    """Where the last sentence of text[start:end] begins (its final punctuation ignored)."""
    body = text[start:end].rstrip(" \t\n。！？!?；;.")
    found = None
    for found in SENTENCE_END.finditer(body):
        pass
    return start + (found.end() if found else 0)


def cut_question(example: Example, encoded: Encoded, layout: PromptLayout, excess: int) -> Example | None:
    """The example with about `excess` tokens cut from the middle of its question (a cut that
    takes an earlier cut's mark leaves one mark)."""
    start, end = question_bounds(example, layout)
    keep_from = last_sentence_start(example.prompt, start, end)
    cuttable = [i for i, (s, e) in enumerate(encoded.offsets) if s >= start and e <= keep_from and e > s]
    if not cuttable:
        return None
    need = min(len(cuttable), excess + 2)  # one for the mark, one for a merge the cut may make
    head = (len(cuttable) - need) // 2
    lo, hi = head, head + need
    a, b = encoded.offsets[cuttable[lo]][0], encoded.offsets[cuttable[hi - 1]][1]
    while example.prompt[a:b] == ELLIPSIS:  # only an earlier cut's mark: take a token beside it too
        if lo == 0 and hi == len(cuttable):
            return None
        lo, hi = max(0, lo - 1), min(len(cuttable), hi + 1)
        a, b = encoded.offsets[cuttable[lo]][0], encoded.offsets[cuttable[hi - 1]][1]
    prompt = example.prompt[:a] + ELLIPSIS + example.prompt[b:]
    return Example(prompt, example.reply, example.spans)


def reply_cut(offsets: list[tuple[int, int]], keep: int) -> int:
    """At most `keep` reply tokens, ending at a character boundary (a character split over
    several byte-level tokens is kept whole or not at all)."""
    keep = min(keep, len(offsets))
    while 0 < keep < len(offsets) and offsets[keep][0] < offsets[keep - 1][1]:
        keep -= 1
    return keep
