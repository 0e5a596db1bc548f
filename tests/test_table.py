"""table.py: one reject type from the row path to rejects.jsonl, and the kept rows' key columns
declared once (the worker's ChunkResult, the main process's Kept and Ray's block schema)."""

import json
import pickle
from array import array

import numpy as np
import pytest

from instruct_data.io import Row
from instruct_data.ledger import Ledger
from instruct_data.pipeline.keys import Ids, Kept
from instruct_data.pipeline.worker import ChunkResult
from instruct_data.rowpath import conversation_of
from instruct_data.schema import Origin
from instruct_data.table import KEY_COLUMNS, Reject


def test_the_row_paths_reject_reaches_rejects_jsonl_as_it_is(tmp_path):
    origin = Origin(file="mine.jsonl", line=7)
    reject = conversation_of(Row(origin, {"instruction": "问题", "output": "  "}), "alpaca", "mine")
    assert isinstance(reject, Reject)
    assert (reject.stage, reject.reason, reject.origin, reject.row_id) == ("read", "empty_reply", "mine.jsonl:7", "mine:7")
    # A worker's pipe and Ray's blocks pickle it; it comes back equal, of the same type.
    assert pickle.loads(pickle.dumps(reject, protocol=pickle.HIGHEST_PROTOCOL)) == reject
    unreadable = conversation_of(Row(Origin(file="mine.jsonl", line=8), None, raw="{oops", error="invalid JSON"),
                                 "alpaca", "mine")
    assert (unreadable.reason, unreadable.raw, unreadable.row_id) == ("unparseable", "{oops", "mine:8")

    ledger = Ledger(tmp_path, command="build")
    ledger.read("mine", 2)
    ledger.outcome("mine", reject)
    ledger.outcome("mine", unreadable)
    ledger.finish(outputs=[])
    lines = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"stage": "read", "reason": "empty_reply", "detail": reject.detail, "origin": "mine.jsonl:7",
                        "source": "mine", "id": "mine:7", "raw": {"instruction": "问题", "output": "  "}}
    assert lines[1]["raw"] == "{oops" and lines[1]["origin"] == "mine.jsonl:8"


def test_the_worker_and_the_main_process_hold_every_key_column_at_its_declared_width(tmp_path):
    kept = Kept(Ids(str(tmp_path / "ids")))
    for name, dtype in KEY_COLUMNS:
        column = getattr(ChunkResult(), name)
        assert isinstance(column, array) and column.itemsize == np.dtype(dtype).itemsize, name
        # The main process's column is a file of the spool (dedupe.spill.ColumnFile), at that width.
        assert kept.column(name).dtype.itemsize == np.dtype(dtype).itemsize, name
    kept.close()


def test_rays_blocks_carry_every_key_column_with_its_declared_type():
    pa = pytest.importorskip("pyarrow")
    from instruct_data.ray_engine.rows import schema

    block = schema()
    for name, dtype in KEY_COLUMNS:
        assert block.field(name).type == pa.from_numpy_dtype(np.dtype(dtype)), name
