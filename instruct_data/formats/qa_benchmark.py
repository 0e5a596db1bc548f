"""question/answer benchmark: BELLE's eval set, `question`, `std_answer`, `class`.

Items without a reference answer cannot become training conversations and are rejects
here (`empty_reply`); the evaluation reader keeps them and scores them only where a
reference exists.
"""

from __future__ import annotations

from instruct_data.formats.base import EMPTY_INSTRUCTION, EMPTY_REPLY, build, category_of, required_text

NAME = "qa_benchmark"
SIGNATURE = {"question", "std_answer"}


def to_conversation(data, *, row_id, source, origin):
    turns = [("user", required_text(data, "question", EMPTY_INSTRUCTION)),
             ("assistant", required_text(data, "std_answer", EMPTY_REPLY))]
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data))
