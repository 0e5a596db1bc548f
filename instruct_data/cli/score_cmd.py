"""`idata score`."""

from __future__ import annotations

import click


@click.command("score")
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", default=None, type=click.Path(),
              help="Folder for the rescored predictions, results.json, report.md and the chart "
                   "[default: PREDICTIONS-STEM-scored beside PREDICTIONS].")
@click.option("--fail-if-worse", is_flag=True,
              help="With base_prediction: exit 5 when a category is worse than the base beyond its interval.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of a summary.")
def score_command(predictions, out, fail_if_worse, as_json):
    """Score predictions made elsewhere (vLLM, LLaMA-Factory, ...) with idata eval's metrics.

    PREDICTIONS is JSON lines (or any file the readers take) with a prediction field
    (prediction, predict, output or response), a reference (reference, label, std_answer,
    target or answer) and optionally category/class, id, prompt and base_prediction (then
    base and tuned are compared as in `idata eval --compare-base`). An `idata eval`
    predictions.jsonl is rescored to the same numbers.

    \b
    Examples:
      idata score eval-out/predictions.jsonl --out rescored
      idata score generated_predictions.jsonl      # LLaMA-Factory's predict/label file
    """
    from pathlib import Path

    from instruct_data.cli.eval_cmd import report_results
    from instruct_data.evaluation import score
    from instruct_data.outputs_guard import guard_output

    # Never over an `idata eval` run's own results: those hold the model and decoding details.
    out = out or str(Path(predictions).with_name(Path(predictions).stem + "-scored"))
    # Rescoring an eval folder's own predictions.jsonl in place keeps that file (evaluation.score).
    in_place = Path(predictions).resolve() == Path(out).resolve() / "predictions.jsonl"
    with guard_output(out, [] if in_place else [predictions], command="score"):
        results = score(predictions, out)
    report_results(results, out, as_json=as_json, fail_if_worse=fail_if_worse)
