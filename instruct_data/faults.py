"""Progress markers for the fault tests: where a run has got to, so a test can signal it at a
chosen point of its work (10%, 60%, the final rename) instead of after a guessed wall time.

Off unless $IDATA_PROGRESS_FILE is set: then `reached(stage, fraction)` appends
`STAGE FRACTION` to that file, and when $IDATA_HOLD_AT names the stage (`swap`, or
`train:0.35` for the first point at or past 35% of it), waits there $IDATA_HOLD_S seconds
(default 10), once, so that the signal lands at that very point. Costs one
environment lookup otherwise.
"""

from __future__ import annotations

import os
import time


def reached(stage: str, fraction: float | None = None) -> None:
    path = os.environ.get("IDATA_PROGRESS_FILE")
    if not path:
        return
    hold = _holds(os.environ.get("IDATA_HOLD_AT", ""), stage, fraction)
    with open(path, "a", encoding="utf-8") as fh:  # "hold" first: the test signals on that word
        fh.write(f"{'hold ' if hold else ''}{stage} {'' if fraction is None else round(fraction, 4)}\n")
    if hold:
        time.sleep(float(os.environ.get("IDATA_HOLD_S", "10")))


_held: set[str] = set()


def _holds(spec: str, stage: str, fraction: float | None) -> bool:
    """`STAGE` holds at the stage; `STAGE:0.35` once, at the first fraction of it at or past 0.35."""
    name, _, at = spec.partition(":")
    if name != stage or spec in _held:
        return False
    if at and (fraction is None or fraction < float(at)):
        return False
    _held.add(spec)
    return True
