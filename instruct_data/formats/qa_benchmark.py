"""question/answer benchmark: BELLE's eval set, `question`, `std_answer`, `class`.

Items without a reference answer cannot become training conversations and are rejects
here (`empty_reply`); the evaluation reader keeps them and scores them only where a
reference exists.
"""

from __future__ import annotations

from instruct_data.formats.base import build, category_of, text_field

NAME = "qa_benchmark"
SIGNATURE = {"question", "std_answer"}


def to_conversation(data, *, row_id, source, origin):
    turns = [("user", text_field(data, "question")), ("assistant", text_field(data, "std_answer"))]
    return build(row_id=row_id, source=source, origin=origin, turns=turns, category=category_of(data))
