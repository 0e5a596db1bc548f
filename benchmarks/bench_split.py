"""Time and memory of the held-out choice (split.choose_heldout) over synthetic keys.

    python benchmarks/bench_split.py --rows 1000000
    python benchmarks/bench_split.py --rows 1000000 --code /tmp/old-checkout   # another checkout

The keys are the columns the split reads per kept row (a build reads them from the spool a
block at a time, pipeline.local.KeptTable; here array.array columns in memory, one partition):
group numbers (12 groups), seeded ranks, prompt keys (about 30% of prompts repeat) and 1%
repeated ids. Prints, per setting (a count, a fraction, the automatic share), the best of
`--repeat` wall times and the peak of numpy's allocations during one call (tracemalloc), so
that two checkouts can be compared on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from array import array


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--code", help="the checkout to import instruct_data from (default: this one)")
    args = parser.parse_args()
    if args.code:
        sys.path.insert(0, args.code)
    import numpy as np

    import instruct_data
    from instruct_data.split import SplitSettings, choose_heldout

    rng = np.random.default_rng(0)
    n = args.rows
    keys = dict(groups=array("I", rng.integers(0, 12, n).astype(np.uint32).tobytes()),
                names={i: f"category{i}" for i in range(12)},
                ranks=array("Q", rng.integers(0, 2**63, n, dtype=np.uint64).tobytes()),
                prompt_keys=array("Q", rng.integers(0, int(n * 0.7) + 1, n, dtype=np.uint64).tobytes()),
                skip=bytearray((rng.random(n) < 0.01).astype(np.uint8).tobytes()))
    results = {"code": instruct_data.__file__, "rows": n}
    for label, settings in (("count 500", SplitSettings(heldout=500)), ("fraction 0.1", SplitSettings(heldout=0.1)),
                            ("automatic", SplitSettings())):
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            chosen = choose_heldout(settings, **keys)
            times.append(time.perf_counter() - start)
        tracemalloc.start()
        choose_heldout(settings, **keys)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        results[label] = {"best_s": round(min(times), 3), "peak_mib": round(peak / 2**20, 1), "chosen": sum(chosen)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
