"""`idata demo`."""

from __future__ import annotations

import json

import click

from instruct_data.cli.common import console


def quiet_libraries() -> None:
    """The demo prints its own summary; the libraries' per-step bars and notices would bury it."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


@click.command("demo")
@click.option("--out", "-o", default="demo-out", show_default=True, type=click.Path(),
              help="Folder for everything the demo writes.")
def demo_command(out):
    """Run the whole flow on the sample bundled with the package, offline, on a CPU.

    Builds a clean, deduplicated training set and a held-out set from the bundled sample
    (OUT/build), LoRA-tunes a tiny local model on it (OUT/adapter), and scores the tuned model
    against its base on the held-out set (OUT/eval). Takes well under a minute.

    \b
    Example:
      idata demo --out demo-out
    """
    from instruct_data.demo import run_demo

    quiet_libraries()
    result = run_demo(out, say=lambda line: console.print(f"[bold]{line}[/bold]"))
    _summarise(out, result)


def _summarise(out: str, result) -> None:
    totals = result.build["counts"]["totals"]
    console.print(f"build: {totals['read']} rows read, {totals['written']} written, "
                  f"{totals['rejected']} rejected, {totals['removed']} duplicates removed -> {out}/build/")
    metrics = json.loads((result.adapter / "metrics.json").read_text(encoding="utf-8"))
    console.print(f"train: loss {metrics['first_loss']:.3f} -> {metrics['last_loss']:.3f} "
                  f"(held-out {metrics.get('eval_loss', float('nan')):.3f}) -> {result.adapter}/")
    headline = result.results["headline_metric"]
    overall = result.results["metrics"]
    base = overall["base"]["overall"]["metrics"][headline]
    tuned = overall["model"]["overall"]["metrics"][headline]
    console.print(f"eval: {headline} base {base['mean']:.1f}, tuned {tuned['mean']:.1f} on "
                  f"{result.results['counts']['items']} held-out items -> {out}/eval/report.md")
    console.print(_honest_eval(result.results))
    for name, block in (result.results.get("knowledge") or {}).items():
        summary = block["summary"]
        forgot = summary.get("forgot_subjects") or []
        console.print(f"knowledge ({name}, {block['benchmark']['items']} multiple-choice items): accuracy base "
                      f"{summary['base']['accuracy']['overall']['mean']:.1f}, tuned "
                      f"{summary['model']['accuracy']['overall']['mean']:.1f} (chance 25); "
                      f"forgot: {', '.join(forgot) or 'no subject'} "
                      f"(see 'Did tuning help or hurt?' in {out}/eval/report.md)")
    click.echo(f"Read the report: {out}/eval/report.md (predictions in {out}/eval/predictions.jsonl, "
               f"loss curve in {result.adapter}/loss_curve.png)")


def _honest_eval(results: dict) -> str:
    """What the demo's scores mean: empty predictions, categories marked worse, and what to expect."""
    overall = results["metrics"]
    empty = overall["model"]["overall"]["counts"]["empty_predictions"]
    base_empty = overall["base"]["overall"]["counts"]["empty_predictions"]
    items = results["counts"]["items"]
    worse = results.get("worse_categories") or []
    return (f"      {empty} of {items} tuned predictions are empty (base: {base_empty}); "
            f"categories worse than base: {', '.join(worse) or 'none'}. "
            "A tiny random model trained for seconds is expected to lose to its base: "
            "the demo shows the pipeline and its reports, not a gain.")
