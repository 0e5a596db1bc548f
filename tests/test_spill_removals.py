"""pipeline.decide.SpilledRowRemovals: the removals pass 2 reads block by block from files give
the same Removals as the in-memory columns (issue 22 item 2)."""

import numpy as np

from instruct_data.pipeline.decide import RowRemovals, SpilledRowRemovals
from instruct_data.pipeline.keys import Ids


def test_a_blocks_removals_read_from_files_name_the_same_rows_as_in_memory(tmp_path):
    ids = Ids(str(tmp_path / "ids"))
    ids.extend([f"src:{n}" for n in range(50)])
    rng = np.random.default_rng(5)
    row = np.sort(rng.choice(50, size=30)).astype(np.int32)  # some rows lose several records
    record = rng.integers(0, 3, size=30)
    name_row = rng.integers(-3, 50, size=(30, 3))  # negative: benchmark question -1 - q
    name_suffix = rng.integers(0, 3, size=(30, 3))
    method = rng.integers(0, 3, size=30).astype(np.uint8)
    similarity = rng.random(30)
    memory = RowRemovals(ids, ["q0", "q1", "q2"], row, record, name_row, name_suffix, method, similarity)
    spilled = SpilledRowRemovals(memory, str(tmp_path / "removals"))
    for lo, hi in ((0, 30), (0, 7), (7, 30), (12, 12)):
        part = spilled.part(lo, hi)
        assert part.rows.tolist() == np.unique(row[lo:hi]).tolist()
        for r in part.rows.tolist():
            whole = memory.of_row(r)
            # a row's records split across two parts are asked of the part holding them
            assert part.of_row(r) == {k: v for k, v in whole.items() if k in record[lo:hi][row[lo:hi] == r].tolist()}
    assert spilled.part(0, 30).of_row(int(row[0])) == memory.of_row(int(row[0]))
    ids.close()
