"""Averages of per-item scores, overall and per category, each with a bootstrap 95% interval.

The interval is the percentile bootstrap over items (seeded, so a rerun gives the same
numbers). Base-versus-tuned deltas use a *paired* bootstrap: the same resampled items for
both models, so the interval reflects the difference on this benchmark, not two unrelated
spreads. A category where the whole delta interval lies below zero is marked worse.
"""

from __future__ import annotations

from collections import defaultdict

from instruct_data.evaluation.metrics import METRICS, has_reference

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
OVERALL = "overall"
# Fewer paired items than this and the bootstrap has nothing to resample (one item, or a
# handful that all moved the same way give a zero-width interval): no worse/better verdict.
MIN_ITEMS_FOR_A_VERDICT = 5


def _rng(seed: int, key: str):
    import numpy as np
    import zlib

    # One stream per (seed, group, metric): adding a category never shifts another's interval.
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def mean_interval(values: list[float], *, resamples: int, seed: int, key: str) -> dict:
    import numpy as np

    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) == 1:
        return {"mean": round(mean, 4), "low": round(mean, 4), "high": round(mean, 4), "n": 1}
    picks = _rng(seed, key).integers(0, len(data), size=(resamples, len(data)))
    means = data[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": round(mean, 4), "low": round(float(low), 4), "high": round(float(high), 4), "n": len(data)}


def group_items(rows: list[dict], key: str = "category") -> dict[str, list[dict]]:
    """Rows by category (or another key: a knowledge benchmark's subject); "overall" holds them all."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row.get(key) or "(none)"].append(row)
    return {OVERALL: rows, **{name: groups[name] for name in sorted(groups)}}


def counts(rows: list[dict], prediction_key: str = "prediction") -> dict:
    with_ref = [r for r in rows if has_reference(r.get("reference"))]
    return {
        "items": len(rows),
        "with_reference": len(with_ref),
        "without_reference": len(rows) - len(with_ref),
        "empty_predictions": sum(1 for r in rows if not (r.get(prediction_key) or "").strip()),
    }


def summarize(rows: list[dict], scores_key: str = "scores", prediction_key: str = "prediction", *,
              resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """{group: {"counts": ..., "metrics": {metric: {mean, low, high, n}}}}."""
    summary = {}
    for group, items in group_items(rows).items():
        metrics = {}
        for name in METRICS:
            values = [r[scores_key][name] for r in items if r[scores_key].get(name) is not None]
            metrics[name] = mean_interval(values, resamples=resamples, seed=seed, key=f"{group}/{name}")
        summary[group] = {"counts": counts(items, prediction_key), "metrics": metrics}
    return summary


def paired_delta(rows: list[dict], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """tuned − base per group and metric, with a paired bootstrap interval and a `worse` mark."""
    deltas = {}
    for group, items in group_items(rows).items():
        metrics = {}
        for name in METRICS:
            values = [r["scores"][name] - r["base_scores"][name] for r in items
                      if r["scores"].get(name) is not None and r["base_scores"].get(name) is not None]
            metrics[name] = with_verdict(mean_interval(values, resamples=resamples, seed=seed, key=f"delta/{group}/{name}"))
        deltas[group] = metrics
    return deltas


def summarize_value(rows: list[dict], value, *, group_key: str = "category", name: str,
                    resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """{group: {mean, low, high, n}} of one per-item value (`value(row)`, None: left out)."""
    summary = {}
    for group, items in group_items(rows, group_key).items():
        values = [v for v in (value(r) for r in items) if v is not None]
        summary[group] = mean_interval(values, resamples=resamples, seed=seed, key=f"{group}/{name}")
    return summary


def paired_value_delta(rows: list[dict], tuned, base, *, group_key: str = "category", name: str,
                       resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict:
    """{group: {mean, low, high, n, worse, better}} of tuned(row) − base(row) over items that have both."""
    deltas = {}
    for group, items in group_items(rows, group_key).items():
        values = [t - b for t, b in ((tuned(r), base(r)) for r in items) if t is not None and b is not None]
        deltas[group] = with_verdict(mean_interval(values, resamples=resamples, seed=seed, key=f"delta/{group}/{name}"))
    return deltas


def with_verdict(stats: dict) -> dict:
    """`worse`/`better`: the whole interval of the delta on one side of zero, on enough items."""
    enough = stats["n"] >= MIN_ITEMS_FOR_A_VERDICT
    stats["worse"] = enough and stats["high"] < 0
    stats["better"] = enough and stats["low"] > 0
    return stats
