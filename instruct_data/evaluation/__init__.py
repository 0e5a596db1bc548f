"""Evaluation: batched generation on a benchmark, Chinese-aware metrics, base-versus-tuned report.

    from instruct_data.evaluation import EvalConfig, evaluate, score
    results = evaluate(EvalConfig(model="tiny", adapter="adapter", out="eval-out", compare_base=True))
    results = score("elsewhere/predictions.jsonl", out="rescored")

Modules, one job each: `benchmarks` (registry and readers -> items), `generation` (model
load and batched decoding), `metrics` (per-item scores), `aggregate` (means, bootstrap
intervals, paired deltas), `report` (report.md and the chart), `run` (the two entry points).
Heavy imports (torch, transformers, peft) happen inside functions.
"""

from instruct_data.quiet import quiet_third_party

quiet_third_party()  # before torch, transformers and peft load

from instruct_data.evaluation.run import EvalConfig, evaluate, score

__all__ = ["EvalConfig", "evaluate", "score"]
