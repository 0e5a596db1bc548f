"""The local executor's dedupe decision on the keys: which records of the kept rows are duplicates
(the held-out split is pipeline.flow.choose_heldout's, for every executor)."""

from __future__ import annotations

import os
import pickle
from typing import Any

from instruct_data.allocator import return_large_blocks
from instruct_data.dedupe.keys import record_prompt
from instruct_data.formats import read_conversations
from instruct_data.io import expand_inputs
from instruct_data.pipeline.keys import Kept
from instruct_data.table import Reject


def held_records(entry: bytes, multi: bool) -> int:
    """How many held-out records a held-out row gives: its last record, or every reply of a
    dialogue that calls tools (pipeline.worker spools them all, so that its calls are scored)."""
    return entry.count(b"\n") if multi else 1


def held_record_counts(spool: str, kept: Kept, heldout: bytearray):
    """held_records of every kept row (1 for a row not held out), read from the spooled
    held-out lines of the chunks that hold a held-out dialogue."""
    import numpy as np

    counts = np.ones(len(kept), dtype=np.int64)
    held = np.flatnonzero(np.frombuffer(heldout, dtype=np.uint8))
    if not len(held):
        return counts
    starts = np.cumsum([0, *(used for _, used, _ in kept.chunks)])
    # Only the chunks holding a held-out row are read (their `multi` column and .held lines).
    for chunk in np.unique(np.searchsorted(starts, held, side="right") - 1).tolist():
        number, used, _ = kept.chunks[chunk]
        start = int(starts[chunk])
        multi = kept.multi.read(start, start + used)
        if not any(heldout[start + k] and multi[k] for k in range(used)):
            continue
        lengths = kept.line_lengths(chunk)[2].tolist()
        with open(os.path.join(spool, f"{number}.held"), "rb") as fh:
            data = fh.read()
        at, dialogue = 0, 0
        for k in np.flatnonzero(multi).tolist():
            entry = data[at:at + lengths[dialogue]]
            at, dialogue = at + lengths[dialogue], dialogue + 1
            if heldout[start + k]:
                counts[start + k] = held_records(entry, True)
    return counts


class Layout:
    """The dedupe items of the kept rows: one per train record a row gives (one per reply of a
    dialogue in every-turn mode), but only its held-out records for a held-out row (its last,
    or every reply of a dialogue that calls tools: `held`), none for a row whose id repeats. Dedupe runs on what is written, so a record of a training dialogue
    that repeats a held-out row is found (the first round of one dialogue can be another
    row whole). Arrays over the items, in input order:

    row[n]: the kept row of item n; record[n]: which of the row's records it is (0-based);
    spooled[n]: its index among all the spooled records (the .items and exact keys order).
    """

    def __init__(self, kept: Kept, heldout: bytearray, held=None):
        import numpy as np

        records = kept.records.load().astype(np.int64)
        held_n = np.ones(len(records), dtype=np.int64) if held is None else held
        is_held = np.frombuffer(bytes(heldout), dtype=np.uint8).astype(bool)
        compared = np.frombuffer(bytes(kept.repeated_id), dtype=np.uint8) == 0
        counts = np.where(is_held, held_n, records) * compared
        # Row and record numbers in 32 bits where they fit (always, short of 2**31 rows): the
        # layout is held through dedupe, one entry per item.
        narrow = np.int32 if len(records) < 2**31 and (not len(records) or records.max() < 2**31) else np.int64
        self.row = np.repeat(np.arange(len(records), dtype=narrow), counts)
        starts = np.cumsum(counts) - counts
        within = np.arange(len(self.row)) - np.repeat(starts, counts)
        # A held-out row's items are its last held_n records.
        self.record = np.where(is_held[self.row], (records - held_n)[self.row] + within, within).astype(narrow)
        del starts, within, counts
        first_record = np.cumsum(records) - records
        # Spool positions in 32 bits too, where every spooled record's fits.
        spool_dtype = np.int32 if not len(records) or int(first_record[-1] + records[-1]) < 2**31 else np.int64
        self.spooled = (first_record[self.row] + self.record).astype(spool_dtype)
        del first_record
        self.protected = is_held[self.row]
        # The row columns `ids` reads, narrow: records per row, held-out records per row.
        self._kept, self._records = kept, records.astype(np.uint32)
        self._held_n = held_n.astype(np.uint32)

    def __len__(self) -> int:
        return len(self.row)

    def ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The id of items start..stop-1 (default: all), as train.jsonl or heldout.jsonl names its record."""
        stop = len(self) if stop is None else min(stop, len(self))
        if stop <= start:
            return []
        rows = self.row[start:stop]
        first = int(rows[0])
        ids, records, held_n = self._kept.ids.read(first, int(rows[-1]) + 1), self._records, self._held_n
        return [ids[row - first] if records[row] == 1 or (held and held_n[row] == 1)
                else f"{ids[row - first]}#t{record + 1}"
                for row, record, held in zip(rows.tolist(), self.record[start:stop].tolist(),
                                             self.protected[start:stop].tolist())]

    def name_parts(self, items):
        """(kept row, suffix) of each of `items`, as `ids` names them: the row's id, followed
        by `#t{suffix}` where the suffix (record number + 1) is not 0."""
        import numpy as np

        rows = self.row[items]
        plain = (self._records[rows] == 1) | (self.protected[items] & (self._held_n[rows] == 1))
        return rows, np.where(plain, 0, self.record[items] + 1)


class ItemIds:
    """Layout.ids as a sequence, read item by item where asked (dedupe names only the items it
    removes, their survivors and clusters): no string per item held in memory."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def __len__(self) -> int:
        return len(self.layout)

    def __getitem__(self, n: int) -> str:
        return self.layout.ids(n, n + 1)[0]


ITEM_BLOCK = 65536  # items read back together (ids, row numbers), so no list spans all of them


def spooled_items(spool: str, kept: Kept, layout: Layout, only_heldout: bool = False):
    """The items of `layout` as dedupe Items, their texts read back from the spool in input order."""
    from instruct_data.dedupe import Item

    texts = _spooled_texts(spool, kept)
    at, text = -1, None
    for start in range(0, len(layout), ITEM_BLOCK):
        rows = layout.row[start:start + ITEM_BLOCK]
        first = int(rows[0])
        dialogues = kept.ids.read(first, int(rows[-1]) + 1)
        for n, (row_id, row, spooled, protected) in enumerate(zip(
                layout.ids(start, start + ITEM_BLOCK), rows.tolist(),
                layout.spooled[start:start + ITEM_BLOCK].tolist(),
                layout.protected[start:start + ITEM_BLOCK].tolist()), start=start):
            while at < spooled:
                text, at = next(texts), at + 1
            if protected or not only_heldout:
                # The row's id names the dialogue: its records are never compared with each other.
                yield Item(row_id, text[0], text[1], n, protected, dialogues[row - first])


def _spooled_texts(spool: str, kept: Kept):
    """(prompt, reply) of every spooled record of the kept rows, in order, chunk by chunk."""
    row = 0
    for number, used, _ in kept.chunks:
        with open(os.path.join(spool, f"{number}.items"), "rb") as fh:
            items = pickle.load(fh)
        yield from items[:int(kept.records.read(row, row + used).sum())]
        row += used


def benchmark_questions(paths: list[str]) -> list[str]:
    """The questions of benchmark files (any format the readers know): what training must not contain."""
    questions = []
    for path in expand_inputs(paths):
        _, stream = read_conversations(str(path), source="against")
        questions += [record_prompt(result) for _, result in stream if not isinstance(result, Reject)]
    return questions


class RowRemovals:
    """What find_removals found, for pass 2: `of_row(row)` is {record number: Removal} for a
    kept row that loses records, `rows` the rows that do: the RemovalTable of dedupe's
    decision (steps.dedupe) with its items as kept rows and record numbers. Held as columns sorted by row, about
    70 bytes per removed record (Removal objects in dicts took about 0.8 KB: most of what a
    build's memory grew by per row); a row's Removals are made, their ids read back from the
    spool, only when pass 2 writes that row.

    Each removal names three items (the removed one, the one it duplicates, its cluster's
    best): `name_row` holds their kept rows (or -1 - q for benchmark question q) and
    `name_suffix` their `#t` suffixes (0: none), as Layout.name_parts gives them."""

    def __init__(self, ids, question_ids: list[str], row, record, name_row, name_suffix, method, similarity):
        import numpy as np

        self.ids, self.question_ids = ids, question_ids
        self.row, self.record = row, record
        self.name_row, self.name_suffix = name_row, name_suffix
        self.method, self.similarity = method, similarity
        self.rows = np.unique(row)

    @classmethod
    def none(cls) -> "RowRemovals":
        import numpy as np

        empty = np.zeros(0, dtype=np.int64)
        return cls(None, [], empty, empty, empty.reshape(0, 3), empty.reshape(0, 3), empty, empty)

    def __len__(self) -> int:
        return len(self.rows)

    def of_row(self, row: int) -> dict[int, Any]:
        """{record number: Removal} of kept row `row` ({} when it loses none): pass 2's one
        accessor, with `rows` (the rows that lose some records, sorted)."""
        import numpy as np

        from instruct_data.dedupe import Removal
        from instruct_data.steps.dedupe import METHODS

        # The bounds in the column's own dtype: Python ints would make numpy search a copy of
        # the column (int32 widened to int64), made once per row asked.
        lo, hi = np.searchsorted(self.row, np.array([row, row + 1], dtype=self.row.dtype)).tolist()
        return {int(self.record[k]): Removal(self._name(k, 0), self._name(k, 1), self._name(k, 2),
                                             METHODS[self.method[k]], round(float(self.similarity[k]), 4))
                for k in range(lo, hi)}

    __getitem__ = of_row  # the older spelling

    def _name(self, k: int, which: int) -> str:
        row, suffix = int(self.name_row[k, which]), int(self.name_suffix[k, which])
        if row < 0:
            return self.question_ids[-1 - row]
        row_id = self.ids[row]
        return f"{row_id}#t{suffix}" if suffix else row_id


def row_removals(table, question_ids: list[str], kept: Kept, layout: Layout) -> RowRemovals:
    """A dedupe RemovalTable over the layout's items as RowRemovals: sorted by item (so by
    row), each named item as its row and suffix; the layout is not needed after this."""
    import numpy as np

    order = np.argsort(table.item, kind="stable")
    named = [table.item[order], table.kept[order], table.cluster[order]]
    name_row = np.empty((len(order), 3), dtype=np.int64)
    name_suffix = np.zeros((len(order), 3), dtype=np.int64)
    for which, items in enumerate(named):
        item = items >= 0  # else -1 - q: benchmark question q, kept as it is
        name_row[~item, which] = items[~item]
        name_row[item, which], name_suffix[item, which] = layout.name_parts(items[item])
    removed = named[0]
    return RowRemovals(kept.ids, question_ids, layout.row[removed], layout.record[removed], name_row,
                       name_suffix, table.method[order], table.similarity[order])


def find_removals(spool: str, kept: Kept, heldout: bytearray, settings, workers: int,
                  against: list[str] = ()) -> RowRemovals:
    """Kept row index -> {record number: Removal} for every train record dedupe removes
    (RowRemovals: made row by row as pass 2 asks).

    Dedupe compares the records that are written (Layout). Held-out records are protected
    (never removed), and their prompts join the benchmark questions of `against`: a training
    record that asks a held-out question, whatever its reply, is removed as contamination (so
    the benchmark never scores a question the model was trained on), as is a record that
    duplicates a held-out record under the dedupe key.
    """
    if not (settings.exact or settings.near or against or any(heldout)) or not len(kept):
        return RowRemovals.none()
    layout = Layout(kept, heldout, held_record_counts(spool, kept, heldout))
    if not settings.near:
        # The decision makes and frees columns of millions of items: their pages go back to
        # the system when freed, not to a heap that keeps them (instruct_data.allocator).
        return_large_blocks()
        table, question_ids = _exact_removals(kept, layout, settings, against)
    else:
        questions = list(against)
        if any(heldout):
            questions += list(spooled_items(spool, kept, layout, only_heldout=True))
        from instruct_data.dedupe.find import find_removal_table

        # Fingerprints over processes pay off once there are enough rows to cover the start-up.
        dedupe_workers = workers if len(layout) >= 20_000 else 1
        table, question_ids = find_removal_table(spooled_items(spool, kept, layout), settings, questions,
                                                 ids=ItemIds(layout), workers=dedupe_workers,
                                                 spill=os.path.join(spool, "fingerprints"))
    return row_removals(table, question_ids, kept, layout)


def _exact_removals(kept: Kept, layout: Layout, settings, against: list[str]):
    """find_duplicate_positions without near detection, on the exact keys the workers computed:
    the same items, order, protection and questions as the spooled Items would give it."""
    import numpy as np

    from instruct_data.dedupe import ExactKeys, exact_batch, exact_key
    from instruct_data.dedupe.find import decide_table

    keys = ExactKeys.join(kept.dedupe_keys)
    kept.dedupe_keys.clear()
    if len(layout) != len(keys):  # else every spooled record is an item, in order: no copy
        keys = keys.take(layout.spooled)
    ids = ItemIds(layout)
    held = np.flatnonzero(layout.protected).tolist()
    # The questions as find_duplicates numbers them: `against:N` texts, then the held-out records.
    questions = [(f"against:{n}", text) for n, text in enumerate(against, start=1)]
    questions += [(ids[i], "") for i in held]
    question_keys = [exact_key(text, settings) for text in against] + [keys.prompt[i].tobytes() for i in held]
    batch = exact_batch(keys, [], np.arange(len(layout)), layout.protected, question_keys, settings,
                        dialogue=layout.row)
    return decide_table([batch], settings, ids=ids), [qid for qid, _ in questions]
