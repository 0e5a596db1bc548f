"""alpaca: `instruction`, `input`, `output`, optional `system` and `history` [[q, a], ...]."""

from __future__ import annotations

from instruct_data.formats.base import (EMPTY_INSTRUCTION, EMPTY_REPLY, RowReject, build, category_of, history_pairs,
                                        required_text, text_field)

NAME = "alpaca"
SIGNATURE = {"instruction", "output"}


def to_conversation(data, *, row_id, source, origin):
    instruction = text_field(data, "instruction")
    extra = text_field(data, "input", required=False)
    output = required_text(data, "output", EMPTY_REPLY)
    if not instruction.strip():
        if not extra.strip():
            raise RowReject(EMPTY_INSTRUCTION, "instruction and input are both empty")
        instruction, extra = extra, ""  # some sets leave instruction empty and put the task in input
    turns = []
    for question, answer in history_pairs(data):
        turns += [("user", question), ("assistant", answer)]
    turns += [("user", instruction, extra or None), ("assistant", output)]
    system = text_field(data, "system", required=False) or None
    return build(row_id=row_id, source=source, origin=origin, turns=turns, system=system, category=category_of(data))
