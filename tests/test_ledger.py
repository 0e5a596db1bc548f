"""The ledger: read = written + rejected + removed, per source and in total, or no manifest."""

import json

import pytest

from instruct_data.io import file_sha256, write_jsonl
from instruct_data.ledger import Ledger, LedgerImbalance
from instruct_data.schema import Origin


def test_counts_rejects_duplicates_and_manifest(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"a": 1}\n', encoding="utf-8")
    ledger = Ledger(tmp_path / "out", command="build", parameters={"seed": 1})
    ledger.add_input(src, format="alpaca", source="mine")
    ledger.read("mine", 4)
    ledger.read("theirs", 1)
    ledger.written("mine", 2)
    ledger.written("theirs")
    ledger.reject("clean", "too_short", "instruction has 2 characters", Origin(file="in.jsonl", line=3),
                  {"instruction": "嗨"}, source="mine", row_id="mine:3")
    ledger.duplicate(row_id="mine:4", duplicate_of="mine:1", method="exact", similarity=1.0, source="mine",
                     origin=Origin(file="in.jsonl", line=4))
    ledger.note_changed("nfkc", 2)
    out = write_jsonl(tmp_path / "out" / "train.jsonl", [{"context": "c", "target": "t"}])
    manifest = ledger.finish(outputs=[tmp_path / "out" / "train.jsonl"])
    assert out == 1
    counts = manifest["counts"]
    assert counts["totals"] == {"read": 5, "written": 3, "rejected": 1, "removed": 1}
    assert counts["per_source"]["mine"] == {"read": 4, "written": 2, "rejected": 1, "removed": 1}
    assert counts["balanced"] is True
    assert counts["rejects_by_reason"] == {"clean/too_short": {"mine": 1}}
    assert counts["rejects_by_stage"] == {"clean": {"mine": 1}}
    assert counts["duplicates_by_method"] == {"exact": 1}
    assert counts["rows_changed_by_normalizer"] == {"nfkc": 2}
    assert manifest["inputs"][0]["sha256"] == file_sha256(src)
    assert manifest["parameters"] == {"seed": 1} and "created" not in manifest  # no timestamp unless asked
    assert [o["path"] for o in manifest["outputs"]] == ["train.jsonl", "rejects.jsonl", "duplicates.jsonl"]
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == manifest
    reject, = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert reject == {"stage": "clean", "reason": "too_short", "detail": "instruction has 2 characters",
                      "origin": "in.jsonl:3", "source": "mine", "id": "mine:3", "raw": {"instruction": "嗨"}}
    dup, = [json.loads(line) for line in (tmp_path / "out" / "duplicates.jsonl").read_text(encoding="utf-8").splitlines()]
    assert dup["duplicate_of"] == "mine:1" and dup["origin"] == "in.jsonl:4" and dup["similarity"] == 1.0


def test_imbalance_is_a_bug_and_writes_nothing(tmp_path):
    ledger = Ledger(tmp_path, command="convert", prefix="train.")
    ledger.read("mine", 3)
    ledger.written("mine", 2)  # one row lost
    ledger.reject("read", "x", "y", None, None, source="other")
    with pytest.raises(LedgerImbalance):
        ledger.finish()
    assert list(tmp_path.iterdir()) == []


def test_prefix_names_the_ledger_after_the_output_and_rates(tmp_path):
    ledger = Ledger(tmp_path, command="convert", prefix="train.")
    ledger.read("a", 4)
    ledger.written("a", 3)
    ledger.reject("read", "empty_reply", "'output' is empty", Origin(file="a.csv", row=2), {}, source="a")
    assert ledger.reject_rate("a") == 0.25 and ledger.reject_rate() == 0.25
    ledger.finish()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.manifest.json", "train.rejects.jsonl"]
    reject = json.loads((tmp_path / "train.rejects.jsonl").read_text(encoding="utf-8"))
    assert reject["origin"] == "a.csv:row 2"


def test_hub_origins_read_as_dataset_revision_row():
    assert str(Origin(dataset="BelleGroup/train_0.5M_CN", revision="abc123", row=7)) == "BelleGroup/train_0.5M_CN@abc123:row 7"
