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


def held_record_counts(spool: str, kept: Kept, heldout: bytearray) -> dict[int, int]:
    """held_records of the held-out dialogues that give other than one ({kept row: count}; every
    other row gives 1), read from the spooled held-out lines of the chunks that hold a held-out
    dialogue."""
    import numpy as np

    counts: dict[int, int] = {}
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
            if heldout[start + k] and held_records(entry, True) != 1:
                counts[start + k] = held_records(entry, True)
    return counts


LAYOUT_ROWS = 1 << 18  # kept rows laid out at a time


class Layout:
    """The dedupe items of the kept rows: one per train record a row gives (one per reply of a
    dialogue in every-turn mode), but only its held-out records for a held-out row (its last,
    or every reply of a dialogue that calls tools: `held`, {row: count} where not 1), none for
    a row whose id repeats. Dedupe runs on what is written, so a record of a training dialogue
    that repeats a held-out row is found (the first round of one dialogue can be another
    row whole). Columns over the items, in input order, in files of `folder`
    (dedupe.spill.ColumnFile: `read(name, start, stop)`, `take(name, items)`), laid out
    LAYOUT_ROWS kept rows at a time, so that neither they nor the making of them is held in
    memory (about 17 bytes per item):

    row[n]: the kept row of item n; record[n]: which of the row's records it is (0-based);
    spooled[n]: its index among all the spooled records (the .items and exact keys order);
    protected[n]: a held-out record (never removed).
    """

    def __init__(self, kept: Kept, heldout: bytearray, held: dict[int, int] | None = None, folder: str = "layout"):
        import numpy as np

        from instruct_data.dedupe.spill import ColumnFile

        self._kept, self._records = kept, kept.records
        held = held or {}
        self._held_rows = np.array(sorted(held), dtype=np.int64)  # the rows whose held_n is not 1
        self._held_counts = np.array([held[row] for row in self._held_rows.tolist()], dtype=np.int64)
        n = len(kept)
        blocks = [(a, min(a + LAYOUT_ROWS, n)) for a in range(0, n, LAYOUT_ROWS)]
        total, most = 0, 0
        for a, b in blocks:
            records = self._records.read(a, b)
            total, most = total + int(records.sum(dtype=np.int64)), max(most, int(records.max()))
        # Row and record numbers in 32 bits where they fit (always, short of 2**31 rows), spool
        # positions too where every spooled record's fits.
        narrow = np.int32 if n < 2**31 and most < 2**31 else np.int64
        spool_dtype = np.int32 if total < 2**31 else np.int64
        os.makedirs(folder, exist_ok=True)
        self.columns = {name: ColumnFile(os.path.join(folder, f"{name}.col"), dtype) for name, dtype in
                        (("row", narrow), ("record", narrow), ("spooled", spool_dtype), ("protected", np.uint8))}
        spooled_before = 0
        for a, b in blocks:
            spooled_before = self._lay_out(a, b, heldout, kept.repeated_id, spooled_before, narrow, spool_dtype)
        self.items = len(self.columns["row"])

    def _lay_out(self, a: int, b: int, heldout, repeated_id, spooled_before: int, narrow, spool_dtype) -> int:
        """Append the items of kept rows a..b-1; return the spooled records before row b."""
        import numpy as np

        records = self._records.read(a, b).astype(np.int64)
        held_n = self.held_n(np.arange(a, b, dtype=np.int64))
        is_held = np.frombuffer(heldout, dtype=np.uint8)[a:b].astype(bool)
        compared = np.frombuffer(repeated_id, dtype=np.uint8)[a:b] == 0
        counts = np.where(is_held, held_n, records) * compared
        local = np.repeat(np.arange(b - a, dtype=np.int64), counts)  # each item's row, from a
        starts = np.cumsum(counts) - counts
        within = np.arange(len(local)) - np.repeat(starts, counts)
        # A held-out row's items are its last held_n records.
        record = np.where(is_held[local], (records - held_n)[local] + within, within)
        first_record = np.cumsum(records) - records + spooled_before
        self.columns["row"].append((local + a).astype(narrow))
        self.columns["record"].append(record.astype(narrow))
        self.columns["spooled"].append((first_record[local] + record).astype(spool_dtype))
        self.columns["protected"].append(is_held[local].astype(np.uint8))
        return spooled_before + int(records.sum())

    def __len__(self) -> int:
        return self.items

    def read(self, name: str, start: int = 0, stop: int | None = None):
        """Column `name` of items start..stop-1 (default: all), read from its file."""
        column = self.columns[name].read(start, len(self) if stop is None else min(stop, len(self)))
        return column.astype(bool) if name == "protected" else column

    def take(self, name: str, items):
        column = self.columns[name].take(items)
        return column.astype(bool) if name == "protected" else column

    def held_n(self, rows):
        """How many held-out records each of `rows` gives if held out (numpy, int64)."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        counts = np.ones(len(rows), dtype=np.int64)
        if len(self._held_rows):
            at = np.searchsorted(self._held_rows, rows).clip(0, len(self._held_rows) - 1)
            found = self._held_rows[at] == rows
            counts[found] = self._held_counts[at[found]]
        return counts

    def ids(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The id of items start..stop-1 (default: all), as train.jsonl or heldout.jsonl names its record."""
        stop = len(self) if stop is None else min(stop, len(self))
        if stop <= start:
            return []
        rows = self.read("row", start, stop)
        first, last = int(rows[0]), int(rows[-1]) + 1
        ids, records = self._kept.ids.read(first, last), self._records.read(first, last)
        held_n = self.held_n(rows)
        return [ids[row - first] if records[row - first] == 1 or (held and n == 1)
                else f"{ids[row - first]}#t{record + 1}"
                for row, record, held, n in zip(rows.tolist(), self.read("record", start, stop).tolist(),
                                                self.read("protected", start, stop).tolist(), held_n.tolist())]

    def name_parts(self, items):
        """(kept row, suffix) of each of `items`, as `ids` names them: the row's id, followed
        by `#t{suffix}` where the suffix (record number + 1) is not 0."""
        import numpy as np

        rows = self.take("row", items)
        plain = (self._records.take(rows) == 1) | (self.take("protected", items) & (self.held_n(rows) == 1))
        return rows, np.where(plain, 0, self.take("record", items) + 1)

    def remove(self) -> None:
        for column in self.columns.values():
            column.remove()


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
        rows = layout.read("row", start, start + ITEM_BLOCK)
        first = int(rows[0])
        dialogues = kept.ids.read(first, int(rows[-1]) + 1)
        for n, (row_id, row, spooled, protected) in enumerate(zip(
                layout.ids(start, start + ITEM_BLOCK), rows.tolist(),
                layout.read("spooled", start, start + ITEM_BLOCK).tolist(),
                layout.read("protected", start, start + ITEM_BLOCK).tolist()), start=start):
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
        self.names: dict[int, str] | None = None  # the ids of the rows named, where read ahead

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
        row_id = self.names[row] if self.names is not None else self.ids[row]
        return f"{row_id}#t{suffix}" if suffix else row_id


class SpilledRowRemovals:
    """RowRemovals with every column in files of `folder` but the kept rows' (4 bytes per removed
    record held, about 76 before): pass 2 reads a block's removals (`part`, a RowRemovals of
    those records) as it writes the block's rows."""

    FIELDS = ("record", "name_row", "name_suffix", "method", "similarity")

    def __init__(self, removed: RowRemovals, folder: str):
        import numpy as np

        from instruct_data.dedupe.spill import ColumnFile

        os.makedirs(folder, exist_ok=True)
        self.ids, self.question_ids, self.row = removed.ids, removed.question_ids, removed.row
        self.columns = {}
        for name in self.FIELDS:
            values = np.asarray(getattr(removed, name))
            self.columns[name] = column = ColumnFile(os.path.join(folder, f"{name}.col"), values.dtype, values.shape[1:])
            column.append(values)
            column.close()

    def part(self, lo: int, hi: int) -> RowRemovals:
        """The removed records lo..hi-1 (in row order) as a RowRemovals, the ids of the rows
        they name read together (Ids.pick), not one read per name."""
        import numpy as np

        part = RowRemovals(self.ids, self.question_ids, self.row[lo:hi],
                           *(self.columns[name].read(lo, hi) for name in self.FIELDS))
        named = np.unique(part.name_row)
        named = named[named >= 0]
        part.names = dict(zip(named.tolist(), self.ids.pick(named)))
        return part


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
    return RowRemovals(kept.ids, question_ids, layout.take("row", removed), layout.take("record", removed), name_row,
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
    layout = Layout(kept, heldout, held_record_counts(spool, kept, heldout), os.path.join(spool, "layout"))
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
    removals = row_removals(table, question_ids, kept, layout)
    layout.remove()
    return removals


def _exact_removals(kept: Kept, layout: Layout, settings, against: list[str]):
    """find_duplicate_positions without near detection, on the exact keys the workers computed:
    the same items, order, protection and questions as the spooled Items would give it."""
    import numpy as np

    from instruct_data.dedupe import ExactKeys, exact_batch, exact_key
    from instruct_data.dedupe.find import decide_table

    keys = ExactKeys.join(kept.dedupe_keys)
    kept.dedupe_keys.clear()
    if len(layout) != len(keys):  # else every spooled record is an item, in order: no copy
        keys = keys.take(layout.read("spooled"))
    ids = ItemIds(layout)
    protected = layout.read("protected")
    held = np.flatnonzero(protected).tolist()
    # The questions as find_duplicates numbers them: `against:N` texts, then the held-out records.
    questions = [(f"against:{n}", text) for n, text in enumerate(against, start=1)]
    questions += [(ids[i], "") for i in held]
    question_keys = [exact_key(text, settings) for text in against] + [keys.prompt[i].tobytes() for i in held]
    batch = exact_batch(keys, [], np.arange(len(layout)), protected, question_keys, settings,
                        dialogue=layout.read("row"))
    return decide_table([batch], settings, ids=ids), [qid for qid, _ in questions]
