"""One truth per dialogue: what a dialogue writes when dedupe removed some of its records.

A dialogue gives train.jsonl one record per reply (every-turn mode) and conversations.jsonl
the dialogue whole, which `idata train --template auto` trains every reply of. Both must
train the same replies and carry the same texts:

- a record removed as a copy (exact, near) keeps its reply in the dialogue as history, as the
  later records' contexts hold it, marked `weight: 0` (not trained);
- a record removed as contamination (its prompt is a held-out or benchmark question) cuts the
  dialogue before it: the later records go too, since their history holds the question and
  often the held-out answer; they are recorded as contamination of the same question;
- the turns after the last record left are dropped; with no record left the row is removed;
- in last-turn mode (one record, the last reply) the earlier replies are at weight 0 too;
- a reply the input marked weight 0 gives no record (schema.record_replies) and stays at weight 0.

The workers spool conversation_line; pass 2 (steps.place, for both executors) calls
follow_removals.
"""

from __future__ import annotations

from instruct_data.formats.plainrow import PlainConversation
from instruct_data.dedupe.types import Removal
from instruct_data.schema import Conversation, is_trained, record_replies


def follow_removals(conv_line: bytes, records: int, removals: dict[int, Removal]
                    ) -> tuple[bytes | None, list[int], dict[int, Removal]]:
    """(the conversations.jsonl line, or None when no record is left; the numbers of the train
    records left; every removal, those of a contamination cut added) for one dialogue whose
    `records` train records lost `removals` (record number -> Removal)."""
    conversation = Conversation.model_validate_json(conv_line)
    removals = with_cut(conversation.id, records, removals)
    left = [k for k in range(records) if k not in removals]
    if not left:
        return None, [], removals
    trained = trained_turns(conversation, records, set(removals), left[-1])
    line = conversation.model_copy(update={"turns": trained}).model_dump_json(exclude_none=True) + "\n"
    return line.encode("utf-8"), left, removals


def conversation_line(conversation: Conversation, records: int) -> bytes:
    """The conversations.jsonl line of a dialogue that gives `records` train records (the
    workers spool it): a reply that gives none (each but the last in last-turn mode, and one
    the input marked weight 0) is at weight 0, history only, as it is in train.jsonl, and the
    turns after the last record's reply are dropped, as train.jsonl has nothing of them."""
    if type(conversation) is PlainConversation and records >= 1:  # one reply, given its record
        return conversation.json_line()
    replies = [i for i, turn in enumerate(conversation.turns) if turn.role == "assistant"]
    kept = record_turns(conversation.turns, records)
    if len(kept) < len(replies):
        turns = list(conversation.turns)
        if kept[-1] != replies[-1]:  # the last replies are at weight 0: nothing after kept[-1] is trained
            turns = turns[:kept[-1] + 1]
        for at in sorted(set(replies) - set(kept)):
            if at < len(turns) and is_trained(turns[at]):
                turns[at] = turns[at].model_copy(update={"weight": 0})
        conversation = conversation.model_copy(update={"turns": turns})
    return (conversation.model_dump_json(exclude_none=True) + "\n").encode("utf-8")


def record_turns(turns, records: int) -> list[int]:
    """The turns (indexes) whose replies a dialogue's `records` train records are, in order:
    the last `records` replies not at weight 0 (every one in every-turn mode, the last in
    last-turn mode: schema.record_replies)."""
    replies = [i for i, turn in enumerate(turns) if turn.role == "assistant"]
    trained = [replies[k] for k in record_replies(turns)]
    if len(trained) < records:
        raise AssertionError(f"{records} records but {len(trained)} replies not at weight 0")
    return trained[len(trained) - records:]


def with_cut(conversation_id: str, records: int, removals: dict[int, Removal]) -> dict[int, Removal]:
    """The removals, plus every later record of a dialogue cut at a contaminated record."""
    cut = min((k for k, r in removals.items() if r.method == "contamination"), default=None)
    if cut is None:
        return removals
    first = removals[cut]
    removals = dict(removals)
    for k in range(cut + 1, records):
        if k not in removals:
            record_id = f"{conversation_id}#t{k + 1}"  # as multiturn.expand names a dialogue's records
            removals[k] = Removal(record_id, first.duplicate_of, first.cluster, "contamination", first.similarity)
    return removals


def trained_turns(conversation: Conversation, records: int, removed: set[int], last: int) -> list:
    """The turns up to the reply of record `last`, the replies of removed records at weight 0.

    Record k is the k-th of record_turns: in a spooled line (conversation_line) the replies not
    at weight 0, one per record (keys.record_texts gives one text per record)."""
    turns = list(conversation.turns)
    replies = record_turns(turns, records)
    for k in removed:
        if k <= last:
            at = replies[k]
            turns[at] = turns[at].model_copy(update={"weight": 0})
    return turns[:replies[last] + 1]
