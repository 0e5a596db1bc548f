"""belle: Belle's releases.

- `instruction`, `input`, `output` (0.5M, 1M, 2M, math, chat): as alpaca;
- `input`, `target`: the variant where instruction and input were merged into `input`;
- multiturn_chat: `instruction` holds a whole `Human:…\\nAssistant:…` transcript that ends
  with `Assistant:`, and the reply is `output`.
"""

from __future__ import annotations

from instruct_data.formats import alpaca
from instruct_data.formats.base import (BAD_TRANSCRIPT, EMPTY_INSTRUCTION, EMPTY_REPLY, RowReject, build, category_of,
                                        required_text, text_field)
from instruct_data.formats.transcript import TranscriptError, looks_like_transcript, parse_transcript

NAME = "belle"
SIGNATURE = {"instruction", "input", "output"}


def to_conversation(data, *, row_id, source, origin):
    if "instruction" not in data and "target" in data:
        turns = [("user", required_text(data, "input", EMPTY_INSTRUCTION)),
                 ("assistant", required_text(data, "target", EMPTY_REPLY))]
        return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data))
    instruction = text_field(data, "instruction")
    if not looks_like_transcript(instruction):
        return alpaca.to_conversation(data, row_id=row_id, source=source, origin=origin)
    try:
        turns = parse_transcript(instruction)
    except TranscriptError as exc:
        raise RowReject(BAD_TRANSCRIPT, str(exc)) from None
    output = required_text(data, "output", EMPTY_REPLY)
    if turns[-1][0] == "assistant" and not turns[-1][1]:
        turns[-1] = ("assistant", output)  # the transcript ends with 'Assistant:'; the reply is output
    elif turns[-1][0] == "user":
        turns.append(("assistant", output))
    else:
        raise RowReject(BAD_TRANSCRIPT, "the transcript ends with a reply but 'output' holds another")
    extra = text_field(data, "input", required=False)
    if extra.strip():
        raise RowReject(BAD_TRANSCRIPT, "a transcript row with a non-empty 'input'")
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data))
