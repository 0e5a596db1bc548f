"""context/target: the seed training format read back; the context is already rendered."""

from __future__ import annotations

from instruct_data.formats.base import build, category_of, text_field

NAME = "context_target"
SIGNATURE = {"context", "target"}


def to_conversation(data, *, row_id, source, origin):
    turns = [("user", text_field(data, "context")), ("assistant", text_field(data, "target"))]
    source = text_field(data, "source", required=False) or source
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data), rendered=True)
