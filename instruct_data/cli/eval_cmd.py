"""`idata eval`."""

from __future__ import annotations

from contextlib import contextmanager

import click

from instruct_data.cli.common import FiniteRange, console, print_json
from instruct_data.templates import TEMPLATES


@click.command("eval")
@click.option("--model", "-m", default=None, metavar="NAME_OR_PATH",
              help="Base model: a hub name or a local folder [default: the one the adapter names].")
@click.option("--adapter", "-a", default=None, type=click.Path(exists=True, file_okay=False),
              help="LoRA adapter folder from `idata train` (its template.json picks the prompt template).")
@click.option("--benchmark", "-b", "benchmarks", multiple=True, metavar="NAME_OR_FILE",
              help="Repeatable. A registered name (idata-zh-mini, belle-eval; multiple choice: idata-zh-mc, ceval, "
                   "cmmlu), a build's heldout.jsonl, any file the readers know, or a C-Eval/CMMLU-layout file, "
                   "folder or zip. At most one generated benchmark per run [default: idata-zh-mini].")
@click.option("--from", "from_paths", multiple=True, metavar="[NAME=]PATH",
              help="Local copy of a registered remote benchmark (BELLE's eval_set.json, ceval-exam.zip, "
                   "cmmlu_v1_0_1.zip or their unpacked folders), for offline use; NAME=PATH when several need one.")
@click.option("--shots", default=0, show_default=True, type=click.IntRange(0),
              help="Multiple choice: examples from the benchmark's dev split before each question.")
@click.option("--shots-from", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Multiple choice: the dev file for --shots when the benchmark file has no dev split.")
@click.option("--choice-format", default="letter", show_default=True, type=click.Choice(["letter", "text"]),
              help="Multiple choice: score the option letters (as lm-eval's ceval/cmmlu tasks) or the options' texts.")
@click.option("--judge-url", default=None, metavar="URL",
              help="An OpenAI-compatible endpoint (…/v1) whose chat/completions scores every generated answer.")
@click.option("--judge-model", default=None, metavar="NAME", help="The judge's model name at --judge-url.")
@click.option("--judge-key-env", default=None, metavar="VAR",
              help="Name of the environment variable holding the judge's API key (never the key itself).")
@click.option("--judge-prompt", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Your own rubric: text with {question}, {reference}, {answer} (scale 0–10), or YAML with text, scale, categories.")
@click.option("--judge-concurrency", default=4, show_default=True, type=click.IntRange(1), help="Judge requests in flight.")
@click.option("--judge-timeout", default=60.0, show_default=True, type=FiniteRange(0, min_open=True),
              help="Seconds to wait for one judge reply.")
@click.option("--judge-retries", default=3, show_default=True, type=click.IntRange(0),
              help="Retries on timeouts, 429 and 5xx, with exponential backoff.")
@click.option("--out", "-o", required=True, type=click.Path(), help="Folder for predictions, results and report.")
@click.option("--template", "-t", default=None, type=click.Choice(["native", *sorted(TEMPLATES)]),
              help="Prompt template [default: the adapter's template.json, else seed]; native: the tokenizer's chat "
                   "template. Multiple choice is asked as lm-eval asks a base model (no template) unless this is given.")
@click.option("--compare-base", is_flag=True, help="Also score the base model (adapter switched off, one load) and report deltas.")
@click.option("--max-new-tokens", default=128, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Prompts per generation batch; lower it on out-of-memory.")
@click.option("--sample", is_flag=True, help="Sample instead of greedy decoding (scores then vary with --seed).")
@click.option("--temperature", default=0.7, show_default=True, type=FiniteRange(0, min_open=True))
@click.option("--top-p", default=0.9, show_default=True, type=FiniteRange(0, 1, min_open=True))
@click.option("--seed", default=0, show_default=True, help="Seed for --sample.")
@click.option("--limit", default=None, type=click.IntRange(1), help="Only the first N items (a quick look).")
@click.option("--per-category", default=None, type=click.IntRange(1),
              help="Only the first N items of each category (a quick look that covers every category).")
@click.option("--dtype", default="auto", show_default=True,
              type=click.Choice(["auto", "float32", "bfloat16", "float16"]), help="auto: bf16/fp16 on GPU, fp32 on CPU.")
@click.option("--device", default=None, help="cuda, cuda:1, cpu [default: cuda when available].")
@click.option("--trust-remote-code", is_flag=True, help="Run the model repository's own code (off by default).")
@click.option("--fail-if-worse", is_flag=True,
              help="With --compare-base: exit 5 when a category is worse than the base beyond its interval "
                   "(reference or judge score) or a knowledge subject was forgotten.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of a summary.")
def eval_command(model, adapter, benchmarks, from_paths, shots, shots_from, choice_format, judge_url, judge_model,
                 judge_key_env, judge_prompt, judge_concurrency, judge_timeout, judge_retries, out, template, compare_base,
                 max_new_tokens, batch_size, sample, temperature, top_p, seed, limit, per_category, dtype, device,
                 trust_remote_code, fail_if_worse, as_json):
    """Score a model (and its LoRA adapter) on a held-out Chinese instruction benchmark.

    Greedy, batched generation; ROUGE-1/2/L on characters and on jieba words, BLEU-4 and
    exact match, overall and per category with bootstrap 95% intervals. Multiple-choice
    benchmarks (C-Eval, CMMLU, idata-zh-mc) are scored by option log-likelihood: accuracy per
    subject, and with --compare-base the subjects the tuned model forgot. With --judge-url, a
    judge model scores every answer. Writes OUT/predictions.jsonl, OUT/knowledge-NAME.jsonl,
    OUT/results.json, OUT/report.md and OUT/scores_by_category.png. Exit code 0 on success;
    6 when a judge was asked for and scored no answer (all requests failed or unreadable); with
    --fail-if-worse, 5 when a category got worse than the base or a subject was forgotten.

    \b
    Examples:
      idata eval --model Qwen/Qwen2.5-0.5B --adapter runs/lora --compare-base --out eval-out
      idata eval --adapter runs/lora --compare-base -o eval-out   # the base the adapter names
      idata eval -a runs/lora --compare-base -b build/heldout.jsonl -b idata-zh-mc -o eval-out
      idata eval -a runs/lora --compare-base -b ceval --from ceval-exam.zip --shots 5 -o eval-ceval
      idata eval -m Qwen/Qwen2.5-0.5B -b belle-eval --from eval_set.json -o eval-belle \\
          --judge-url http://127.0.0.1:8000/v1 --judge-model Qwen2.5-72B-Instruct --judge-key-env JUDGE_KEY
    """
    from pathlib import Path

    from instruct_data.evaluation import EvalConfig, evaluate
    from instruct_data.evaluation.judge import JudgeConfig
    from instruct_data.faults import reached
    from instruct_data.outputs_guard import adapter_base, guard_output

    judge = None
    if judge_url or judge_model:
        if not (judge_url and judge_model):
            raise click.UsageError("--judge-url and --judge-model go together")
        judge = JudgeConfig(url=judge_url, model=judge_model, key_env=judge_key_env, prompt_file=judge_prompt,
                            concurrency=judge_concurrency, timeout_s=judge_timeout, retries=judge_retries)
    config = EvalConfig(model=model, adapter=adapter, benchmark=list(benchmarks) or "idata-zh-mini",
                        from_path=list(from_paths), shots=shots, shots_from=shots_from, choice_format=choice_format,
                        judge=judge, out=out, template=template, compare_base=compare_base, max_new_tokens=max_new_tokens,
                        batch_size=batch_size, sample=sample, temperature=temperature, top_p=top_p, seed=seed,
                        limit=limit, per_category=per_category, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    inputs = [p for p in (*benchmarks, *from_paths, shots_from) if p and Path(p).exists()]
    with guard_output(out, inputs, command="eval", models=[model, adapter, adapter_base(adapter)]), _progress() as on_progress:
        def progress(done: int, total: int, unit: str) -> None:
            on_progress(done, total, unit)
            reached("eval", done / total if total else None)  # for the fault tests (instruct_data.faults)

        results = evaluate(config, on_progress=progress)
    report_results(results, out, as_json=as_json, fail_if_worse=fail_if_worse)


PROGRESS_EVERY_S = 30.0  # a logged eval (stderr not a terminal) prints a line at least this often


@contextmanager
def _progress():
    """A bar on a terminal; in a log, a plain line at least every 30 s (instruct_data.progress).
    Each stage (generation, knowledge, judge) reports its own done/total."""
    from instruct_data.progress import Progress

    with Progress("eval", unit="items", every=PROGRESS_EVERY_S) as progress:
        def update(done: int, total: int, unit: str) -> None:
            progress.total, progress.unit = total, unit
            progress.advance(done - progress.done)

        yield update


JUDGE_FAILED = 6  # exit code: a judge was asked for and scored no answer at all


def report_results(results: dict, out: str, *, as_json: bool, fail_if_worse: bool) -> None:
    """The results as JSON or a summary; exit 6 when a judge ran and scored nothing; exit 5 with
    --fail-if-worse when a category got worse (reference or judge score) or a knowledge subject
    was forgotten."""
    from instruct_data.evaluation.judge import scored_nothing

    if as_json:
        print_json(results)
    else:
        print_summary(results, out)
    judge = results.get("judge")
    if judge and scored_nothing(judge):
        # The outputs are written (report.md lists the failures), but a judge score was asked for and none exists.
        console.print(f"[red]error:[/red] the judge scored no answer ({judge['counts']['failed']} requests failed, "
                      f"{judge['counts']['unparsed']} replies unreadable): check --judge-url, --judge-model and the key")
        raise SystemExit(JUDGE_FAILED)
    if fail_if_worse and got_worse(results):
        raise SystemExit(5)


def got_worse(results: dict) -> bool:
    forgot = any(block["summary"].get("forgot_subjects") or block["summary"].get("forgot_overall")
                 for block in (results.get("knowledge") or {}).values())
    return bool(results.get("worse_categories") or (results.get("judge") or {}).get("worse_categories") or forgot)


def print_summary(results: dict, out: str) -> None:
    if "metrics" in results:
        _print_reference(results)
    if results.get("judge"):
        _print_judge(results["judge"])
    for name, block in (results.get("knowledge") or {}).items():
        _print_knowledge(name, block)
    console.print(f"  report: {out}/report.md")


def _interval(stats: dict) -> str:
    return f"{stats['mean']} [{stats['low']}, {stats['high']}]"


def _versus(model: dict, base: dict | None, delta: dict | None) -> str:
    if not base:
        return _interval(model)
    return (f"tuned {model['mean']} vs base {base['mean']} "
            f"(delta {delta['mean']:+} [{delta['low']:+}, {delta['high']:+}])")


def _print_reference(results: dict) -> None:
    from instruct_data.evaluation.aggregate import OVERALL
    from instruct_data.evaluation.metrics import HEADLINE, METRIC_LABELS
    from instruct_data.evaluation.toolcalls import TOOL_LABELS

    metrics = results["metrics"]
    counts = results["counts"]
    console.print(f"[green]scored[/green] {counts['items']} items ({counts['with_reference']} with a reference, "
                  f"{counts['without_reference']} without; {counts['empty_predictions']} empty predictions)")
    base = (metrics.get("base") or {}).get(OVERALL, {}).get("metrics", {}).get(HEADLINE)
    delta = (metrics.get("delta") or {}).get(OVERALL, {}).get(HEADLINE)
    console.print(f"  {METRIC_LABELS[HEADLINE]}: {_versus(metrics['model'][OVERALL]['metrics'][HEADLINE], base, delta)}")
    tools = results.get("tool_calls")  # items whose answer is a call (evaluation/toolcalls.py)
    if tools:
        for name in ("arguments_exact", "name_accuracy", "valid_json"):
            model = tools["model"][name][OVERALL]
            base_tools, delta_tools = ((tools.get(side) or {}).get(name, {}).get(OVERALL) for side in ("base", "delta"))
            console.print(f"  tool calls, {TOOL_LABELS[name]} ({tools['items']} items): "
                          f"{_versus(model, base_tools, delta_tools)}")
        if tools.get("worse"):
            console.print("  [red]tool calls worse than base beyond the interval:[/red] "
                          + ", ".join(TOOL_LABELS[name] for name in tools["worse"]))
    stripped = results.get("reasoning_stripped") or {}
    if any(stripped.values()):
        console.print(f"  reasoning traces taken off before scoring: {stripped['predictions']} predictions, "
                      f"{stripped['references']} references")
    for warning in results.get("warnings") or []:
        console.print(f"  [yellow]warning:[/yellow] {warning}")
    worse = results.get("worse_categories")
    if worse:
        console.print(f"  [red]worse than base beyond the interval:[/red] {', '.join(worse)}")


def _print_judge(judge: dict) -> None:
    from instruct_data.evaluation.aggregate import OVERALL
    from instruct_data.evaluation.judge import judge_summary_line

    console.print(f"  judge ({judge['judge_model']}): {_versus(judge['model'][OVERALL], (judge.get('base') or {}).get(OVERALL), (judge.get('delta') or {}).get(OVERALL))}")
    console.print(f"    {judge_summary_line(judge)}")
    if judge["counts"]["unparsed"] or judge["counts"]["failed"]:
        console.print(f"  [yellow]warning:[/yellow] {judge['counts']['unparsed']} judge replies unreadable and "
                      f"{judge['counts']['failed']} failed: left out of the judge score (see report.md)")
    if judge.get("worse_categories"):
        console.print(f"  [red]judge: worse than base beyond the interval:[/red] {', '.join(judge['worse_categories'])}")


def _print_knowledge(name: str, block: dict) -> None:
    from instruct_data.evaluation.aggregate import OVERALL

    summary = block["summary"]
    accuracy = summary["model"]["accuracy"][OVERALL]
    base = (summary.get("base") or {}).get("accuracy", {}).get(OVERALL)
    delta = (summary.get("delta") or {}).get("accuracy", {}).get(OVERALL)
    console.print(f"  knowledge {name} ({block['benchmark']['items']} items, {block['shots']}-shot) accuracy: "
                  f"{_versus(accuracy, base, delta)}")
    short = block.get("subjects_short_of_shots") or []
    if short:
        console.print(f"  [yellow]warning:[/yellow] fewer than {block['shots']} dev examples for {len(short)} of "
                      f"{block['benchmark']['subjects']} subjects ({', '.join(short[:5])}{', …' if len(short) > 5 else ''}): "
                      "those questions had fewer shots")
    if summary.get("forgot_subjects"):
        console.print(f"  [red]forgot (accuracy below base beyond the interval):[/red] {', '.join(summary['forgot_subjects'])}")
