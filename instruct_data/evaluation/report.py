"""report.md (overall and per-category tables) and the per-category bar chart (PNG)."""

from __future__ import annotations

import logging
from pathlib import Path

from instruct_data.evaluation.aggregate import MIN_ITEMS_FOR_A_VERDICT, OVERALL
from instruct_data.evaluation.choices import LETTERS
from instruct_data.evaluation.metrics import HEADLINE, METRIC_LABELS, METRICS
from instruct_data.io import atomic_path

CHART_NAME = "scores_by_category.png"


def tool_report_lines(results: dict) -> list[str]:
    """The tool-call section (evaluation/toolcalls.py, imported here: it reads this module's cells)."""
    from instruct_data.evaluation.toolcalls import report_lines

    return report_lines(results)


def _cell(stats: dict | None) -> str:
    if stats is None or stats["mean"] is None:
        return "–"
    return f"{stats['mean']:.1f} [{stats['low']:.1f}, {stats['high']:.1f}]"


def _delta_cell(stats: dict | None, worse: str = "**worse**") -> str:
    if stats is None or stats["mean"] is None:
        return "–"
    mark = f" {worse}" if stats["worse"] else (" better" if stats["better"] else "")
    return f"{stats['mean']:+.1f} [{stats['low']:+.1f}, {stats['high']:+.1f}]{mark}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    return (["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def render_report(results: dict) -> str:
    lines = ["# Evaluation report", ""]
    lines += _header(results)
    lines += help_or_hurt(results)
    if "metrics" in results:
        lines += _reference_sections(results)
        lines += tool_report_lines(results)  # tool-call scores, reasoning traces taken off (toolcalls.py)
    for name, block in (results.get("knowledge") or {}).items():
        lines += ["", *_knowledge_section(name, block)]
    if results.get("judge"):
        lines += ["", *_judge_section(results["judge"])]
    return "\n".join(lines) + "\n"


def _reference_sections(results: dict) -> list[str]:
    metrics = results["metrics"]
    model, base, delta = metrics["model"], metrics.get("base"), metrics.get("delta")
    label = "tuned" if base else "model"
    lines = [f"## Reference scores: {(results.get('benchmark') or {}).get('name', '')}", ""]
    totals = model[OVERALL]["counts"]
    lines += [f"Items: {totals['items']} ({totals['with_reference']} with a reference, "
              f"{totals['without_reference']} without: counted, not scored); "
              f"empty predictions: {totals['empty_predictions']} (scored 0).", ""]
    rejected = (results.get("benchmark") or {}).get("rejected")
    if rejected:
        reasons = sorted({r["reason"] for r in results["benchmark"].get("rejects", [])})
        lines += [f"Benchmark rows that could not be items: {rejected} ({', '.join(reasons)}; listed in results.json).", ""]
    for warning in results.get("warnings") or []:
        lines += [f"**Warning:** {warning}", ""]
    lines += ["Scores are 0–100, mean over items with a reference, with a bootstrap 95% interval "
              f"({results['bootstrap']['resamples']} resamples, seed {results['bootstrap']['seed']}). "
              f"Exact match covers references of at most {results['bootstrap']['short_reference_chars']} characters. "
              "ROUGE and BLEU count characters (and jieba words) with punctuation and whitespace dropped, "
              "so a reply of punctuation alone scores 0.", ""]
    lines += ["### Overall", ""]
    overall = {name: model[OVERALL]["metrics"][name] for name in METRICS}
    if base:
        lines += _table(["metric", "base", "tuned", "tuned − base"],
                        [[METRIC_LABELS[name], _cell(base[OVERALL]["metrics"][name]), _cell(stats),
                          _delta_cell(delta[OVERALL][name])] for name, stats in overall.items()])
    else:
        lines += _table(["metric", "score", "n"],
                        [[METRIC_LABELS[name], _cell(stats), str(stats["n"])] for name, stats in overall.items()])
    lines += ["", f"### By category: {METRIC_LABELS[HEADLINE]}", ""]
    categories = [c for c in model if c != OVERALL]
    if base:
        lines += ["| category | items | with reference | base | tuned | tuned − base |", "|---|---|---|---|---|---|"]
        for cat in categories:
            c = model[cat]["counts"]
            lines.append(f"| {cat} | {c['items']} | {c['with_reference']} | {_cell(base[cat]['metrics'][HEADLINE])} | "
                         f"{_cell(model[cat]['metrics'][HEADLINE])} | {_delta_cell(delta[cat][HEADLINE])} |")
        worse = results.get("worse_categories", [])
        lines += ["", ("Categories where the tuned model is worse than its base beyond the interval "
                       f"({METRIC_LABELS[HEADLINE]}): " + ", ".join(worse)) if worse else
                  "No category is worse than the base beyond the interval on the headline metric."]
    else:
        lines += ["| category | items | with reference | score |", "|---|---|---|---|"]
        for cat in categories:
            c = model[cat]["counts"]
            lines.append(f"| {cat} | {c['items']} | {c['with_reference']} | {_cell(model[cat]['metrics'][HEADLINE])} |")
    lines += ["", f"### By category: every metric ({label})", ""]
    # The judge's score (when a judge ran) sits beside the reference metrics.
    names = list(METRICS) + (["judge"] if "judge" in model[OVERALL]["metrics"] else [])
    lines += _table(["category"] + [METRIC_LABELS.get(n, "judge (0–100)") for n in names],
                    [[cat] + ["–" if (model[cat]["metrics"].get(n) or {}).get("mean") is None
                              else f"{model[cat]['metrics'][n]['mean']:.1f}" for n in names]
                     for cat in [OVERALL] + categories])
    if results.get("chart"):
        lines += ["", f"![{METRIC_LABELS[HEADLINE]} by category]({results['chart']})"]
        numbered = [f"[{n}] {c}" for n, c in enumerate(model, start=1) if not c.isascii()]
        if numbered and not results.get("chart_font"):
            lines += ["", "No CJK font is installed (`make fonts`, or Debian's fonts-noto-cjk), so the chart numbers "
                      "these categories: " + ", ".join(numbered) + "."]
    return lines


# ---------------------------------------------------------------- did tuning help or hurt?


def help_or_hurt(results: dict) -> list[str]:
    """The first section: reference scores, judge scores and knowledge accuracy, base vs tuned."""
    measures = _measures(results)
    compared = any(m["base"] is not None for m in measures)
    lines = ["## Did tuning help or hurt?", ""]
    if not measures:
        return lines + ["Nothing was scored.", ""]
    if compared:
        lines += _table(["measure", "benchmark", "base", "tuned", "tuned − base"],
                        [[m["label"], m["bench"], _cell(m["base"]), _cell(m["model"]), _delta_cell(m["delta"])]
                         for m in measures])
    else:
        lines += _table(["measure", "benchmark", "score"], [[m["label"], m["bench"], _cell(m["model"])] for m in measures])
    lines.append("")
    if not compared:
        return lines + ["No base to compare with: pass `--adapter` and `--compare-base` to see what tuning changed.", ""]
    lines += _worse_lines(results)
    lines += ["", "Each score is a mean over items (0–100) with a bootstrap 95% interval; a difference counts only "
              f"when the whole interval of the paired difference (the same items for both) is on one side of zero, "
              f"on at least {MIN_ITEMS_FOR_A_VERDICT} items.", ""]
    return lines


def _measures(results: dict) -> list[dict]:
    out = []
    metrics = results.get("metrics")
    bench = (results.get("benchmark") or {}).get("name", "")
    if metrics:
        def row(label, name):
            delta = (metrics.get("delta") or {}).get(OVERALL, {}).get(name)
            return {"label": label, "bench": bench, "model": metrics["model"][OVERALL]["metrics"][name],
                    "base": (metrics.get("base") or {}).get(OVERALL, {}).get("metrics", {}).get(name), "delta": delta}

        out.append(row(f"reference: {METRIC_LABELS[HEADLINE]}", HEADLINE))
        if "judge" in metrics["model"][OVERALL]["metrics"]:
            out.append(row("judge score", "judge"))
    for name, block in (results.get("knowledge") or {}).items():
        summary = block["summary"]
        out.append({"label": f"knowledge: accuracy ({block['shots']}-shot)", "bench": name,
                    "model": summary["model"]["accuracy"][OVERALL],
                    "base": (summary.get("base") or {}).get("accuracy", {}).get(OVERALL),
                    "delta": _forgot_as_worse((summary.get("delta") or {}).get("accuracy", {}).get(OVERALL))})
    return out


def _forgot_as_worse(stats: dict | None) -> dict | None:
    return None if stats is None else {**stats, "worse": stats["forgot"]}


def _worse_lines(results: dict) -> list[str]:
    lines = []
    worse = results.get("worse_categories")
    if worse is not None:
        lines.append(f"- Worse on the reference score ({METRIC_LABELS[HEADLINE]}): "
                     + (", ".join(worse) if worse else "no category"))
    judge = results.get("judge") or {}
    if "worse_categories" in judge:
        lines.append("- Worse on the judge score: " + (", ".join(judge["worse_categories"]) or "no category"))
    for name, block in (results.get("knowledge") or {}).items():
        forgot = block["summary"].get("forgot_subjects")
        if forgot is not None:
            lines.append(f"- **Forgot** ({name}, accuracy below the base beyond the interval): "
                         + (", ".join(forgot) if forgot else "no subject"))
    return lines


def _knowledge_section(name: str, block: dict) -> list[str]:
    info, summary = block["benchmark"], block["summary"]
    model, base, delta = summary["model"], summary.get("base"), (summary.get("delta") or {}).get("accuracy")
    lines = [f"## Knowledge: {name}", "",
             f"{info['items']} multiple-choice items in {info['subjects']} subjects"
             + (f" ({info['split']} split)" if info.get("split") else "")
             + f", {block['shots']}-shot, options scored by log-likelihood of the {block['choice_format']}; "
             f"rows that could not be items: {info['rejected']}. Accuracy (0–100; picking at random scores "
             f"{100 / len(LETTERS):.0f}) with bootstrap 95% intervals; "
             "accuracy_norm divides each option's log-likelihood by its length in characters (lm-eval's acc_norm).", ""]
    if block.get("prompt") == "lm-eval":
        lines += ["Prompts as lm-evaluation-harness's cmmlu/ceval-valid tasks write them for a base model (no chat "
                  "template; subjects named in Chinese; each option scored as \" A\"), so accuracies compare with "
                  "published C-Eval and CMMLU numbers.", ""]
    elif block.get("prompt"):
        lines += [f"Prompts in the `{block['prompt']}` template (--template): not comparable with published "
                  "C-Eval and CMMLU numbers, which use no chat template.", ""]
    if block.get("subjects_short_of_shots"):
        lines += [f"**Note:** fewer than {block['shots']} dev examples in: {', '.join(block['subjects_short_of_shots'])}.", ""]
    subjects = list(model["accuracy"])
    accuracy = model["accuracy"]
    if base:
        lines += _table(["subject", "items", "base", "tuned", "tuned − base"],
                        [[s, str(accuracy[s]["n"]), _cell(base["accuracy"][s]), _cell(accuracy[s]),
                          _delta_cell(_forgot_as_worse(delta[s]), worse="**forgot**")] for s in subjects])
    else:
        lines += _table(["subject", "items", "accuracy", "accuracy_norm"],
                        [[s, str(accuracy[s]["n"]), _cell(accuracy[s]), _cell(model["accuracy_norm"][s])] for s in subjects])
    return lines + ["", f"Per-item choices and log-likelihoods: `{block.get('predictions', '')}`"]


def _judge_section(judge: dict) -> list[str]:
    from instruct_data.evaluation.judge import judge_summary_line

    rubric = judge["rubric"]
    lines = ["## Judge", "",
             f"`{judge['judge_model']}` at {judge['url']}, temperature 0; rubric: {rubric['origin']} "
             f"({rubric['source']}), scale {rubric['scale'][0]}–{rubric['scale'][1]} shown as 0–100.",
             f"Answers: {judge_summary_line(judge)}. Unreadable and failed verdicts are left out of the means, "
             "not guessed.", ""]
    scores = judge["model"]
    if judge.get("base"):
        lines += _table(["category", "judged (tuned)", "base", "tuned", "tuned − base"],
                        [[c, str(scores[c]["n"]), _cell(judge["base"][c]), _cell(scores[c]), _delta_cell(judge["delta"][c])]
                         for c in scores])
    else:
        lines += _table(["category", "score", "n"], [[c, _cell(scores[c]), str(scores[c]["n"])] for c in scores])
    if judge.get("problems"):
        lines += ["", f"Verdicts left out (the first {len(judge['problems'])}):"]
    for problem in judge.get("problems") or []:
        lines.append(f"- `{problem['id']}` ({problem['answer']} answer) {problem['status']}: {problem.get('reason', '')}")
    return lines


def _header(results: dict) -> list[str]:
    lines = []
    if results.get("model"):
        lines.append(f"- model: `{results['model']['name_or_path']}`")
    if results.get("adapter"):
        lines.append(f"- adapter: `{results['adapter']['path']}`")
    if results.get("template"):
        lines.append(f"- template: `{results['template']['name']}`")
    bench = results.get("benchmark") or {}
    if bench:
        lines.append(f"- benchmark: `{bench.get('name')}` ({bench.get('path')}, sha256 {str(bench.get('sha256'))[:12]}…)")
    if results.get("decoding"):
        d = results["decoding"]
        lines.append(f"- decoding: {d['mode']}, max {d['max_new_tokens']} new tokens, batch {d['batch_size']}")
    if results.get("predictions"):
        lines.append(f"- predictions: `{results['predictions']}`")
    return lines + [""] if lines else []


def write_chart(results: dict, path: Path) -> str | None:
    """Grouped bars of the headline metric per category (base and tuned), with 95% intervals.

    Chinese category names are drawn with the CJK font the build's plots use
    (`instruct_data.report.cjk_font`: WenQuanYi from `make fonts`, Noto CJK, ...); without one,
    labels that are not ASCII become [n] and report.md lists them, never boxes. Returns the font."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from instruct_data.report import cjk_font

    font = cjk_font()
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    with plt.rc_context({"font.sans-serif": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}):
        fig = _bars(plt, results, chart_labels(list(results["metrics"]["model"]), font))
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    return font


def chart_labels(categories: list[str], font: str | None) -> list[str]:
    """The categories as drawn: themselves with a CJK font; else ASCII ones stay and others become [n]."""
    return [c if font or c.isascii() else f"[{n}]" for n, c in enumerate(categories, start=1)]


def _bars(plt, results: dict, labels: list[str]):
    import numpy as np

    metrics = results["metrics"]
    columns = [("base", metrics["base"]), ("tuned", metrics["model"])] if metrics.get("base") else [("model", metrics["model"])]
    categories = list(metrics["model"])
    x = np.arange(len(categories))
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(categories) + 2), 4.5))
    for offset, (name, summary) in enumerate(columns):
        stats = [summary[c]["metrics"][HEADLINE] for c in categories]
        means = [s["mean"] or 0.0 for s in stats]
        errors = [[(s["mean"] or 0) - (s["low"] or 0) for s in stats], [(s["high"] or 0) - (s["mean"] or 0) for s in stats]]
        ax.bar(x + (offset - (len(columns) - 1) / 2) * width, means, width, yerr=errors, capsize=3, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel(f"{METRIC_LABELS[HEADLINE]} (0–100)")
    ax.set_title(f"{METRIC_LABELS[HEADLINE]} by category, 95% bootstrap intervals")
    ax.legend()
    fig.tight_layout()
    return fig


def write_report(results: dict, out: Path) -> Path:
    path = out / "report.md"
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(results), encoding="utf-8")
    return path
