"""context/target: the seed training format read back; the context is already rendered."""

from __future__ import annotations

from instruct_data.formats.base import EMPTY_INSTRUCTION, EMPTY_REPLY, build, category_of, required_text, text_field

NAME = "context_target"
SIGNATURE = {"context", "target"}


def to_conversation(data, *, row_id, source, origin):
    turns = [("user", required_text(data, "context", EMPTY_INSTRUCTION)),
             ("assistant", required_text(data, "target", EMPTY_REPLY))]
    source = text_field(data, "source", required=False) or source
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data), rendered=True)
