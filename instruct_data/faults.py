"""Progress markers for the fault tests: where a run has got to, so a test can signal it at a
chosen point of its work (10%, 60%, the final rename) instead of after a guessed wall time.

Off unless $IDATA_PROGRESS_FILE is set: then `reached(stage, fraction)` appends
`STAGE FRACTION` to that file, and when $IDATA_HOLD_AT names the stage, waits there
$IDATA_HOLD_S seconds (default 10) so that the signal lands at that very point. Costs one
environment lookup otherwise.
"""

from __future__ import annotations

import os
import time


def reached(stage: str, fraction: float | None = None) -> None:
    path = os.environ.get("IDATA_PROGRESS_FILE")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{stage} {'' if fraction is None else round(fraction, 4)}\n")
    if os.environ.get("IDATA_HOLD_AT") == stage:
        time.sleep(float(os.environ.get("IDATA_HOLD_S", "10")))
