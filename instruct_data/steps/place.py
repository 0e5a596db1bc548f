"""Pass 2's step: where each kept row goes and what is written for it, for both executors.

    placed = place(rows, lines, removals, out, labels)   # one block of kept rows, in input order
    total.merge(placed.stats)                             # the merge: the blocks' bytes follow one
                                                          # another in order; their stats add up
    for label, outcome in written(total): ledger.outcome(label, outcome)

What becomes of a kept row (`fates`, in this order of precedence):

    REPEATED  its id an earlier row already used: nothing written; rejected as read/duplicate_id
    HELD      held out: heldout.jsonl gets a dialogue's own held-out lines (spooled apart),
              else the row's last train record, and heldout_conversations.jsonl its line (the
              canonical dialogue, tools and all, for eval and export); its records are never
              removed (dedupe protects them)
    REMOVED   dedupe removed some of its train records: train.jsonl gets the others and
              conversations.jsonl the dialogue as they leave it (pipeline.dialogue.follow_removals);
              every removal goes to the ledger, the first as the whole row when none is left
    PLAIN     train.jsonl gets all its records, conversations.jsonl its line

A block's lines come from `lines` (the executor's: spool files on this machine, a block's
columns on Ray), its removals from `removals(k)` (the executor's accessor over dedupe's
output), and its bytes go to `out`'s four files. Runs of PLAIN rows go to `lines.write_plain`
in one call, so the local executor copies them as byte ranges (copy_file_range); every other
row is written here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from instruct_data.ledger import Reject, Removed, Written
from instruct_data.pipeline.dialogue import follow_removals
from instruct_data.pipeline.stats import SplitStats
from instruct_data.schema import Origin

PLAIN, HELD, REPEATED, REMOVED = 0, 1, 2, 3  # a row's fate


class Lines(Protocol):
    """The spooled lines of a block's rows; k is a row's place in the block (0-based)."""

    def conversation(self, k: int) -> bytes:
        """Row k's conversations.jsonl line."""

    def records(self, k: int) -> list[bytes]:
        """Row k's train.jsonl lines, one per train record."""

    def held(self, k: int) -> bytes:
        """A dialogue's own held-out lines (spooled apart: row k is multi)."""

    def write_plain(self, begin: int, end: int, out: Outputs) -> None:
        """Rows begin..end-1 whole: their conversation lines and records to `out`, in order."""


@dataclass
class Outputs:
    """Where a block's bytes go: the build's train.jsonl, heldout.jsonl, conversations.jsonl and
    heldout_conversations.jsonl."""

    train: BinaryIO
    heldout: BinaryIO
    conversations: BinaryIO
    heldout_conversations: BinaryIO


@dataclass
class Placed:
    """What a block gave besides its bytes: the ledger's outcomes in row order ((source label,
    Reject or Removed)) and the block's SplitStats."""

    stats: SplitStats
    outcomes: list[tuple[str, Any]] = field(default_factory=list)


def fates(held, repeated, removed):
    """Each row's fate (uint8) from three boolean masks over the block: held out, id repeated,
    records removed. A repeated id is never held out nor compared, whatever the masks say."""
    import numpy as np

    fate = np.zeros(len(held), dtype=np.uint8)
    fate[np.asarray(removed, dtype=bool)] = REMOVED
    fate[np.asarray(held, dtype=bool)] = HELD
    fate[np.asarray(repeated, dtype=bool)] = REPEATED
    return fate


def place(rows: dict[str, Any], fate, lines: Lines, removals: Callable[[int], dict], out: Outputs,
          labels: list[str], *, row_id: Callable[[int], str], names: dict | None = None) -> Placed:
    """Write one block of kept rows, in input order, to `out`; return its outcomes and stats.

    `rows`: the block's columns, equal-length numpy arrays: source (source number), records
    (train records per row), prompt_len, reply_len, category (SplitStats.add's, with `names`);
    `fate`: fates(...) of the block; `row_id(k)`: row k's id (asked only for a repeated id);
    `removals(k)`: {record number: dedupe Removal} of a REMOVED row k."""
    import numpy as np

    placed = Placed(SplitStats(labels))
    trained = fate == PLAIN  # a REMOVED row counts as trained while it writes a record
    source = rows["source"]
    begin = 0
    for k in [*np.flatnonzero(fate).tolist(), len(fate)]:
        if k > begin:
            lines.write_plain(begin, k, out)
        begin = k + 1
        if k == len(fate):
            break
        label = labels[int(source[k])]
        if fate[k] == HELD:
            out.heldout.write(heldout_line(lines, k, bool(rows["multi"][k])))
            out.heldout_conversations.write(lines.conversation(k))
        elif fate[k] == REPEATED:
            placed.outcomes.append((label, repeated_id(row_id(k), lines.conversation(k))))
        else:
            left, outcomes = write_some_records(lines.conversation(k), lines.records(k), removals(k), out)
            trained[k] = bool(left)
            placed.stats.records_removed += len(outcomes) if left else 0
            placed.outcomes += [(label, outcome) for outcome in outcomes]
    placed.stats.add(rows, train=trained, heldout=fate == HELD, names=names)
    return placed


def heldout_line(lines: Lines, k: int, multi: bool) -> bytes:
    """Row k's heldout.jsonl lines: a dialogue's own (spooled apart), else its last train record."""
    return lines.held(k) if multi else lines.records(k)[-1]


def repeated_id(row_id: str, conversation_line: bytes) -> Reject:
    """The reject of a row whose id an earlier row already used."""
    conversation = json.loads(conversation_line)
    return Reject("read", "duplicate_id", f"id {row_id!r} is already used by an earlier row",
                  origin_text(conversation), conversation, row_id)


def write_some_records(conversation_line: bytes, records: list[bytes], removals: dict, out: Outputs
                       ) -> tuple[list[int], list[Removed]]:
    """A row some of whose train records dedupe removed: the others to train, its conversation
    as they leave it (pipeline.dialogue); (the records left, a Removed per record removed, those
    of a contamination cut included; the first is the whole row when none is left)."""
    conversation = json.loads(conversation_line)
    trained, left, removals = follow_removals(conversation_line, len(records), removals)
    if left:
        out.conversations.write(trained)
        for k in left:
            out.train.write(records[k])
    origin = origin_text(conversation)
    return left, [Removed(removal, origin, conversation, whole_row=not left and number == 0)
                  for number, (_, removal) in enumerate(sorted(removals.items()))]


def written(stats: SplitStats) -> list[tuple[str, Written]]:
    """The ledger's Written outcome per source, from the merged stats of every block."""
    return [(label, Written(n)) for label, n in stats.written()]


def origin_text(conversation: dict) -> str | None:
    origin = conversation.get("origin")
    return str(Origin(**origin)) if origin else None
