"""Dialogues assembled from single-turn rows (`--group-by FIELD --order-by FIELD`).

Rows of one file that share a value of FIELD become one dialogue, their rounds ordered by the
second field (file order when there is none). Rows without FIELD pass through at once as
dialogues of their own, so a mixed file gives a mixed set. Grouped rows wait in a temporary
SQLite file until the file ends (a group may be spread over the whole file), then come out in
the order their first row appeared; memory holds only the distinct field values.

A dialogue with any bad row, a row without the order field, or two rows at the same place in
the order is rejected whole: a history with a hole or a guessed order is a mangled sample.
"""

from __future__ import annotations

import itertools
import json
import pickle
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instruct_data.table import Reject
from instruct_data.io import Row
from instruct_data.schema import Conversation, Turn

BAD_GROUP = "bad_group"  # reason code, stage "group"


@dataclass
class Dialogue:
    """One unit of the ledger: the rows it came from and what they became."""

    rows: list[Row]
    result: Conversation | Reject
    group_id: str | None = None  # `source:FIELD=value` for a grouped dialogue
    stage: str = "read"  # the stage of a Reject result: "read" when any of its rows was rejected, else "group"

    @property
    def raw(self) -> Any:
        """What rejects.jsonl keeps: the row (or its text), or the list of a group's rows."""
        raws = [row.data if row.data is not None else row.raw for row in self.rows]
        return raws if self.group_id is not None else raws[0]


def dialogues(stream: Iterable[tuple[Row, Conversation | Reject]], *, source: str, group_by: str | None = None,
              order_by: str | None = None) -> Iterator[Dialogue]:
    """One Dialogue per row, or per group of rows sharing `group_by`."""
    if group_by is None:
        for row, result in stream:
            yield Dialogue([row], result)
        return
    with GroupStore() as store:
        for row, result in stream:
            key = _key(row.data.get(group_by)) if row.data is not None else None
            if key is None:
                yield Dialogue([row], result)
            else:
                store.add(key, row, result)
        for key, members in store.groups():
            group_id = f"{source}:{group_by}={key}"
            result = merge(members, group_id=group_id, order_by=order_by)
            bad_row = any(isinstance(member, Reject) for _, member in members)
            yield Dialogue([row for row, _ in members], result, group_id=group_id,
                           stage="read" if bad_row else "group")


class GroupStore:
    """Grouped rows wait in a temporary SQLite file, not in memory: a file of millions of
    single-turn rows can be grouped with flat memory (only the distinct keys are kept)."""

    BATCH = 1_000

    def __enter__(self) -> "GroupStore":
        self._dir = tempfile.TemporaryDirectory(prefix="idata-groups-")
        self._db = sqlite3.connect(Path(self._dir.name) / "groups.sqlite")
        self._db.execute("CREATE TABLE rows (grp INTEGER, seq INTEGER, member BLOB)")
        self._keys: dict[str, int] = {}  # key -> its number, in order of first appearance
        self._pending: list[tuple[int, int, bytes]] = []
        self._seq = 0
        return self

    def add(self, key: str, row: Row, result: Conversation | Reject) -> None:
        number = self._keys.setdefault(key, len(self._keys))
        self._seq += 1
        self._pending.append((number, self._seq, pickle.dumps((row, result), pickle.HIGHEST_PROTOCOL)))
        if len(self._pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO rows VALUES (?, ?, ?)", self._pending)
        self._pending = []

    def groups(self) -> Iterator[tuple[str, list[tuple[Row, Conversation | Reject]]]]:
        """(key, its rows in file order), groups in order of their first row."""
        self._flush()
        keys = list(self._keys)
        cursor = self._db.execute("SELECT grp, member FROM rows ORDER BY grp, seq")
        for number, members in itertools.groupby(cursor, key=lambda item: item[0]):
            yield keys[number], [pickle.loads(member) for _, member in members]

    def __exit__(self, *exc_info) -> None:
        self._db.close()
        self._dir.cleanup()


def _key(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()) or _is_nan(value):
        return None  # (NaN: pandas' empty cell; as "nan" it would join every such row into one dialogue)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _is_nan(value: Any) -> bool:
    return type(value) is float and value != value


def _order_key(value: Any) -> tuple[int, float | str]:
    """Numbers (and numeric text, as spreadsheets give) by value, before other text."""
    if _is_nan(value):
        value = None  # (NaN compares false with everything: a sort by it would be no order at all)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value))
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return (1, text)
    return (1, text) if _is_nan(number) else (0, number)  # ("nan" is text, not a number to sort by)


def merge(members: list[tuple[Row, Conversation | Reject]], *, group_id: str,
          order_by: str | None) -> Conversation | Reject:
    """The group's rows as one Conversation, rounds in order; or why they cannot be one."""
    for row, result in members:
        if isinstance(result, Reject):
            return Reject("read", result.reason, f"{row.origin}: {result.detail} (the whole dialogue is rejected)")
        if result.rendered:
            return Reject("group", BAD_GROUP,
                          f"{row.origin}: an already-rendered context/target row cannot join a dialogue")
    if order_by is not None:
        members = _ordered(members, order_by)
        if isinstance(members, Reject):
            return members
    conversations = [conv for _, conv in members]
    systems = {conv.system for conv in conversations if conv.system}
    if len(systems) > 1:
        return Reject("group", BAD_GROUP, f"the rows of {group_id} disagree on the system text")
    first = conversations[0]
    return Conversation(
        id=group_id,
        source=first.source,
        system=next(iter(systems), None),
        turns=[_turn(turn) for conv in conversations for turn in conv.turns],
        category=next((conv.category for conv in conversations if conv.category), None),
        origin=first.origin,
    )


def _turn(turn):
    """A turn for Conversation(): as it is, or a row path fast path's PlainTurn as its fields."""
    return turn if isinstance(turn, Turn) else {"role": turn.role, "text": turn.text, "input": turn.input}


def _ordered(members, order_by: str):
    seen: dict[tuple, Row] = {}
    for row, _ in members:
        value = row.data.get(order_by)
        if value is None or (isinstance(value, str) and not value.strip()):
            return Reject("group", BAD_GROUP, f"{row.origin}: no '{order_by}' value to order the dialogue by")
        place = _order_key(value)
        if place in seen:
            return Reject("group", BAD_GROUP, f"{seen[place].origin} and {row.origin} both have {order_by}={value}")
        seen[place] = row
    # Text and numbers never compare equal here, so the sort is total.
    return sorted(members, key=lambda member: _order_key(member[0].data.get(order_by)))
