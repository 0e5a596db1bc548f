"""steps.place: where each kept row goes and what is written for it, block by block (pass 2 of
both executors). The blocks' bytes concatenated and their stats merged equal one block's."""

import io
import json

import numpy as np
import pytest

from instruct_data.dedupe import Removal
from instruct_data.ledger import Reject, Removed, Written
from instruct_data.pipeline.stats import SplitStats
from instruct_data.schema import Conversation, Turn
from instruct_data.steps import place

LABELS = ["a", "b"]


def dialogue(row_id: str, replies: int) -> Conversation:
    turns = []
    for n in range(replies):
        turns += [Turn(role="user", text=f"{row_id} 问题{n}"), Turn(role="assistant", text=f"{row_id} 回答{n}")]
    return Conversation(id=row_id, source="a", turns=turns, origin={"file": "in.jsonl", "line": 1})


class ListLines:
    """The Lines of rows held in lists, as an executor with the rows in memory gives them."""

    def __init__(self, rows):
        self.rows = rows

    def conversation(self, k):
        return self.rows[k]["conv"]

    def records(self, k):
        return self.rows[k]["train"]

    def held(self, k):
        return self.rows[k]["held"]

    def write_plain(self, begin, end, out):
        for row in self.rows[begin:end]:
            out.conversations.write(row["conv"])
            out.train.write(b"".join(row["train"]))


def make_rows(n: int, replies=lambda i: 1 + (i % 3 == 2)):
    rows = []
    for i in range(n):
        conv = dialogue(f"a:{i}", replies(i))
        records = [json.dumps({"id": f"a:{i}", "n": r}).encode() + b"\n" for r in range(replies(i))]
        rows.append({"conv": (conv.model_dump_json(exclude_none=True) + "\n").encode(), "train": records,
                     "held": b"".join(b'{"held": "%d-%d"}\n' % (i, r) for r in range(2)), "multi": replies(i) > 1,
                     "id": conv.id, "source": i % 2, "category": "cat" if i % 4 else "",
                     "prompt_len": 10 + i, "reply_len": 20 * i})
    return rows


def columns(rows):
    return {"source": np.array([r["source"] for r in rows]), "multi": np.array([r["multi"] for r in rows]),
            "records": np.array([len(r["train"]) for r in rows]),
            "prompt_len": np.array([r["prompt_len"] for r in rows]),
            "reply_len": np.array([r["reply_len"] for r in rows]),
            "category": np.array([r["category"] for r in rows], dtype=object)}


def run(rows, held=(), repeated=(), removals=None, blocks=(None,)):
    """place() over `rows` cut into blocks at `blocks` (row numbers); the outputs, outcomes and
    the merged stats, as an executor merges them."""
    removals = removals or {}
    out = place.Outputs(io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO())
    mask = lambda rows_: np.isin(np.arange(len(rows)), list(rows_))
    fate = place.fates(mask(held), mask(repeated), mask(removals))
    total, outcomes = SplitStats(LABELS), []
    cuts = [0, *[b for b in blocks if b is not None], len(rows)]
    for start, stop in zip(cuts, cuts[1:]):
        block = rows[start:stop]
        placed = place.place(columns(block), fate[start:stop], ListLines(block),
                             lambda k, s=start: removals[s + k], out, LABELS, row_id=lambda k, b=block: b[k]["id"])
        outcomes += placed.outcomes
        total.merge(placed.stats)
    return out, outcomes, total


def removal(row_id: str, method: str = "exact") -> Removal:
    return Removal(row_id, "a:0", "a:0", method, 1.0)


def test_plain_rows_go_whole_to_train_and_conversations_in_input_order():
    rows = make_rows(7)
    out, outcomes, stats = run(rows)
    assert out.train.getvalue() == b"".join(b"".join(r["train"]) for r in rows)
    assert out.conversations.getvalue() == b"".join(r["conv"] for r in rows)
    assert out.heldout.getvalue() == b"" and outcomes == []
    assert stats.summary()["split"]["train"] == {"a": 4, "b": 3}
    assert stats.summary()["split"]["train_records"] == sum(len(r["train"]) for r in rows)


def test_a_held_out_row_gives_its_last_record_or_a_dialogues_own_held_lines_and_trains_nothing():
    rows = make_rows(6)  # rows 2 and 5 are dialogues of two replies
    out, outcomes, stats = run(rows, held=[1, 2])
    assert out.heldout.getvalue() == rows[1]["train"][-1] + rows[2]["held"]
    assert out.heldout_conversations.getvalue() == rows[1]["conv"] + rows[2]["conv"]  # the dialogues whole
    assert rows[1]["conv"] not in out.conversations.getvalue() and rows[2]["conv"] not in out.conversations.getvalue()
    assert out.train.getvalue() == b"".join(b"".join(r["train"]) for i, r in enumerate(rows) if i not in (1, 2))
    assert stats.summary()["split"]["heldout"] == {"a": 1, "b": 1} and outcomes == []
    assert place.written(stats) == [("a", Written(3)), ("b", Written(3))]


def test_a_repeated_id_writes_nothing_and_is_rejected_naming_the_id_even_when_held_out():
    rows = make_rows(4)
    out, outcomes, stats = run(rows, held=[3], repeated=[3])
    assert out.heldout.getvalue() == b"" and rows[3]["conv"] not in out.conversations.getvalue()
    assert out.heldout_conversations.getvalue() == b""
    [(label, reject)] = outcomes
    assert label == "b" and isinstance(reject, Reject)
    assert (reject.stage, reject.reason, reject.row_id) == ("read", "duplicate_id", "a:3")
    assert "'a:3' is already used by an earlier row" in reject.detail and reject.origin == "in.jsonl:1"
    assert sum(n for _, n in stats.written()) == 3


def test_a_row_losing_some_records_trains_the_others_and_its_dialogue_follows():
    rows = make_rows(3, replies=lambda i: 3)
    out, outcomes, stats = run(rows, removals={1: {0: removal("a:1#t1")}})
    assert out.train.getvalue() == b"".join(rows[0]["train"] + rows[1]["train"][1:] + rows[2]["train"])
    trained = json.loads(out.conversations.getvalue().splitlines()[1])
    assert [t.get("weight") for t in trained["turns"] if t["role"] == "assistant"] == [0, None, None]
    [(label, removed)] = outcomes
    assert label == "b" and isinstance(removed, Removed) and not removed.whole_row
    assert stats.summary()["split"]["train_records"] == 8 and stats.summary()["split"]["train"]["b"] == 1


def test_a_row_losing_every_record_is_removed_whole_once_and_written_nowhere():
    rows = make_rows(2, replies=lambda i: 2)
    out, outcomes, stats = run(rows, removals={1: {0: removal("a:1#t1"), 1: removal("a:1#t2")}})
    assert out.train.getvalue() == b"".join(rows[0]["train"])
    assert out.conversations.getvalue() == rows[0]["conv"]
    assert [o.whole_row for _, o in outcomes] == [True, False]
    assert stats.summary()["split"]["train"] == {"a": 1} and stats.summary()["split"]["train_records"] == 2


def test_a_contaminated_record_cuts_the_dialogue_after_it():
    rows = make_rows(1, replies=lambda i: 3)
    out, outcomes, _ = run(rows, removals={0: {1: Removal("a:0#t2", "against:1", "against:1", "contamination", 1.0)}})
    assert out.train.getvalue() == rows[0]["train"][0]
    assert [o.removal.id for _, o in outcomes] == ["a:0#t2", "a:0#t3"]


@pytest.mark.parametrize("blocks", [(None,), (1,), (3, 4), (1, 2, 3, 4, 5, 6, 7, 8, 9)])
def test_any_cut_into_blocks_gives_the_same_bytes_outcomes_and_stats(blocks):
    rows = make_rows(10)
    args = dict(held=[4, 8], repeated=[6], removals={5: {1: removal("a:5#t2")}, 9: {0: removal("a:9")}})
    whole, cut = run(rows, **args), run(rows, blocks=blocks, **args)
    for name in ("train", "heldout", "conversations"):
        assert getattr(whole[0], name).getvalue() == getattr(cut[0], name).getvalue()
    assert whole[1] == cut[1] and whole[2].summary() == cut[2].summary()
    assert whole[2].written() == cut[2].written()
