"""benchmarks/clean_quality/firings.py lists a rule's firings for reading by hand: it must never
show a row of the frozen test split (by position, or by text copied to another position)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "clean_quality" / "firings.py"
SHARED = ROOT.parent / "shared" / "data"

sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "clean_quality"))
import firings  # noqa: E402
from sources import SOURCES, record_hash  # noqa: E402

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not here (the shared real data sits "
                                                               "beside the project checkout)")


@needs_shared
def test_no_test_row_is_ever_listed():
    positions, hashes = firings.test_pointers()
    assert positions and hashes
    seen = 0
    for where, source, position, record, fmt in firings.rows(SHARED, firings.MIRRORS, 0, False, False):
        seen += 1
        assert (source, position) not in positions, where
    assert seen > 1000  # the shared files alone hold thousands of rows outside the test split


@needs_shared
def test_a_test_rows_text_at_another_position_is_skipped_too():
    positions, hashes = firings.test_pointers()
    glaive = SOURCES["glaive_toolcall_zh_demo.json"]
    records = glaive.read(SHARED)
    copies = [i for i, r in enumerate(records, 1)
              if record_hash(r) in hashes and (glaive.name, i) not in positions]
    assert copies  # GUIDE.md: glaive repeats dialogues, some across the split
    listed = {(s, p) for _, s, p, _, _ in firings.rows(SHARED, firings.MIRRORS, 0, False, False)}
    assert not [i for i in copies if (glaive.name, i) in listed]


@needs_shared
def test_it_lists_a_rules_firings_and_samples_only_unlabeled_rows(tmp_path):
    out = tmp_path / "sample.jsonl"
    done = subprocess.run([sys.executable, str(SCRIPT), "ai_identity", "--sample", "5", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "firings on" in done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["labeled"] is None and r["reply"] for r in rows)
