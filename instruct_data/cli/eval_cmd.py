"""`idata eval`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console, print_json
from instruct_data.templates import TEMPLATES


@click.command("eval")
@click.option("--model", "-m", default=None, metavar="NAME_OR_PATH",
              help="Base model: a hub name or a local folder [default: the one the adapter names].")
@click.option("--adapter", "-a", default=None, type=click.Path(exists=True, file_okay=False),
              help="LoRA adapter folder from `idata train` (its template.json picks the prompt template).")
@click.option("--benchmark", "-b", default="idata-zh-mini", show_default=True, metavar="NAME_OR_FILE",
              help="A registered name (idata-zh-mini, belle-eval), a build's heldout.jsonl, or any file the readers know.")
@click.option("--from", "from_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Local copy of a registered remote benchmark (e.g. BELLE's eval_set.json), for offline use.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for predictions, results and report.")
@click.option("--template", "-t", default=None, type=click.Choice(sorted(TEMPLATES)),
              help="Prompt template [default: the adapter's template.json, else seed].")
@click.option("--compare-base", is_flag=True, help="Also score the base model (adapter switched off, one load) and report deltas.")
@click.option("--max-new-tokens", default=128, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Prompts per generation batch; lower it on out-of-memory.")
@click.option("--sample", is_flag=True, help="Sample instead of greedy decoding (scores then vary with --seed).")
@click.option("--temperature", default=0.7, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--top-p", default=0.9, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--seed", default=0, show_default=True, help="Seed for --sample.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Only the first N items (a quick look).")
@click.option("--per-category", default=None, type=click.IntRange(1),
              help="Only the first N items of each category (a quick look that covers every category).")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "bfloat16", "float16"]), help="auto: bf16/fp16 on GPU, fp32 on CPU.")
@click.option("--device", default=None, help="cuda, cuda:1, cpu [default: cuda when available].")
@click.option("--trust-remote-code", is_flag=True, help="Run the model repository's own code (off by default).")
@click.option("--fail-if-worse", is_flag=True,
              help="With --compare-base: exit 5 when a category is worse than the base beyond its interval.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of a summary.")
def eval_command(model, adapter, benchmark, from_path, out, template, compare_base, max_new_tokens, batch_size,
                 sample, temperature, top_p, seed, limit, per_category, dtype, device, trust_remote_code, fail_if_worse, as_json):
    """Score a model (and its LoRA adapter) on a held-out Chinese instruction benchmark.

    Greedy, batched generation; ROUGE-1/2/L on characters and on jieba words, BLEU-4 and
    exact match, overall and per category with bootstrap 95% intervals. Writes
    OUT/predictions.jsonl, OUT/results.json, OUT/report.md and OUT/scores_by_category.png.
    Exit code 0 on success; with --fail-if-worse, 5 when a category got worse than the base.

    \b
    Examples:
      idata eval --model Qwen/Qwen2.5-0.5B --adapter runs/lora --compare-base --out eval-out
      idata eval --adapter runs/lora --compare-base -o eval-out   # the base the adapter names
      idata eval -m runs/tiny-model -a runs/lora -b build/heldout.jsonl -o eval-out
      idata eval -m Qwen/Qwen2.5-0.5B -b belle-eval --from eval_set.json -o eval-belle
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from instruct_data.evaluation import EvalConfig, evaluate

    config = EvalConfig(model=model, adapter=adapter, benchmark=benchmark, from_path=from_path, out=out,
                        template=template, compare_base=compare_base, max_new_tokens=max_new_tokens,
                        batch_size=batch_size, sample=sample, temperature=temperature, top_p=top_p, seed=seed,
                        limit=limit, per_category=per_category, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    columns = [TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("generating", total=None)
        results = evaluate(config, on_progress=lambda done, total: progress.update(task, completed=done, total=total))
    report_results(results, out, as_json=as_json, fail_if_worse=fail_if_worse)


def report_results(results: dict, out: str, *, as_json: bool, fail_if_worse: bool) -> None:
    """The results as JSON or a summary; exit 5 with --fail-if-worse when a category got worse."""
    if as_json:
        print_json(results)
    else:
        print_summary(results, out)
    if fail_if_worse and results.get("worse_categories"):
        raise SystemExit(5)


def print_summary(results: dict, out: str) -> None:
    from instruct_data.evaluation.aggregate import OVERALL
    from instruct_data.evaluation.metrics import HEADLINE, METRIC_LABELS

    metrics = results["metrics"]
    counts = results["counts"]
    console.print(f"[green]scored[/green] {counts['items']} items ({counts['with_reference']} with a reference, "
                  f"{counts['without_reference']} without; {counts['empty_predictions']} empty predictions)")
    head = metrics["model"][OVERALL]["metrics"][HEADLINE]
    line = f"  {METRIC_LABELS[HEADLINE]}: {head['mean']} [{head['low']}, {head['high']}]"
    if "base" in metrics:
        base = metrics["base"][OVERALL]["metrics"][HEADLINE]
        delta = metrics["delta"][OVERALL][HEADLINE]
        line = (f"  {METRIC_LABELS[HEADLINE]}: tuned {head['mean']} vs base {base['mean']} "
                f"(delta {delta['mean']:+} [{delta['low']:+}, {delta['high']:+}])")
    console.print(line)
    for warning in results.get("warnings") or []:
        console.print(f"  [yellow]warning:[/yellow] {warning}")
    worse = results.get("worse_categories")
    if worse:
        console.print(f"  [red]worse than base beyond the interval:[/red] {', '.join(worse)}")
    console.print(f"  report: {out}/report.md")
