"""`idata dedupe`."""

from __future__ import annotations

import click

from instruct_data.cli.common import (FiniteRange, console, engine_options, input_options, print_json, reject_lines,
                                      row_progress, strictness_options)
from instruct_data.outputs_guard import guard_output


@click.command("dedupe")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(), help="Folder for the kept rows and the record: new, empty, or an earlier dedupe's (never one holding an input).")
@click.option("--key", type=click.Choice(["prompt", "reply", "both"]), default="both", show_default=True,
              help="Compare rows by their prompt, their reply, or both together.")
@click.option("--against", multiple=True, metavar="FILE",
              help="Benchmark questions (any supported format; repeatable): rows whose prompt is an exact or near "
                   "duplicate of one are removed as contamination.")
@click.option("--threshold", type=FiniteRange(0, 1, min_open=True), default=None,
              help="Estimated Jaccard similarity at which two rows are near duplicates [default: 0.6].")
@click.option("--ngram", type=click.IntRange(1, 16), default=None, help="Characters per shingle [default: 3].")
@click.option("--no-near", is_flag=True, help="Exact duplicates only.")
@click.option("--policy", type=click.Choice(["first", "longest-reply"]), default="first", show_default=True,
              help="Which copy of a duplicate group is kept (ties: by a hash of the text, then the id).")
@click.option("--t2s", "t2s", is_flag=True, help="Compare Traditional and Simplified Chinese as the same text.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes for shingling and hashing [default: the CPU count]; the result does not depend on it.")
@input_options
@strictness_options
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary.")
def dedupe_command(inputs, out, key, against, threshold, ngram, no_near, policy, t2s, workers, fmt, mapping,
                   encoding, strict, max_reject_rate, engine, ray_address, as_json):
    """Remove exact and near duplicates (and benchmark questions) from instruction data.

    INPUTS are files, folders or globs in any supported format. Rows are compared on a
    normalized key (Unicode NFKC, case-folded, spaces and punctuation removed); near
    duplicates are found with MinHash LSH on character 3-grams and every candidate pair is
    checked against the threshold. OUT gets each input's kept rows, unchanged, in the
    input's own format (`.gz` inputs are written uncompressed), plus duplicates.jsonl (every
    removed row, the id it duplicates, its cluster, method and similarity), rejects.jsonl
    (unreadable rows) and manifest.json.

    \b
    Examples:
      idata dedupe belle_0.5M.json mine.jsonl --out deduped/
      idata dedupe train.jsonl --key prompt --against heldout.jsonl --out clean/
      idata dedupe corpora/ --engine ray --ray-address head-node:6379 --out deduped/
    """
    from instruct_data.dedupe import DedupeSettings
    from instruct_data.dedupe.runner import dedupe_files
    from instruct_data.executors import executor_for
    from instruct_data.formats import parse_mapping

    overrides = {k: v for k, v in {"threshold": threshold, "ngram": ngram}.items() if v is not None}
    settings = DedupeSettings(key=key, near=not no_near, policy=policy, traditional_to_simplified=t2s, **overrides)
    def phase(name: str) -> None:
        if console.is_terminal:
            console.print(f"[dim]{name}…[/dim]")

    # Written into a fresh folder, swapped in at --out once complete (never a mix of runs).
    executor = executor_for(engine, workers=workers, address=ray_address)
    with guard_output(out, [*inputs, *against], command="dedupe", staged=True) as work, \
            row_progress("reading") as advance:
        manifest = dedupe_files(inputs, work, settings, against=against, fmt=fmt, mapping=parse_mapping(mapping),
                                encoding=encoding, strict=strict, max_reject_rate=max_reject_rate, on_row=advance,
                                on_phase=phase, executor=executor)
    if as_json:
        print_json(manifest)
        return
    totals = manifest["counts"]["totals"]
    console.print(f"[green]wrote[/green] {out}: kept {totals['written']:,} of {totals['read']:,} rows "
                  f"({totals['removed']:,} duplicates, {totals['rejected']:,} rejected)")
    for method, count in manifest["counts"]["duplicates_by_method"].items():
        console.print(f"  removed {count:>8,}  {method}")
    for line in reject_lines(manifest):
        console.print(line)
