"""prompt/response: ChatGLM p-tuning data, `prompt`, `response`, optional `history`."""

from __future__ import annotations

from instruct_data.formats.base import (EMPTY_INSTRUCTION, EMPTY_REPLY, build, category_of, history_pairs,
                                        required_text)

NAME = "prompt_response"
SIGNATURE = {"prompt", "response"}


def to_conversation(data, *, row_id, source, origin):
    turns = []
    for question, answer in history_pairs(data):
        turns += [("user", question), ("assistant", answer)]
    turns += [("user", required_text(data, "prompt", EMPTY_INSTRUCTION)),
              ("assistant", required_text(data, "response", EMPTY_REPLY))]
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data))
