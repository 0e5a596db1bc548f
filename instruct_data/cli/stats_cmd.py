"""`idata stats`: the summary table and report.md of a build folder."""

from __future__ import annotations

import click

from instruct_data.cli.common import console, print_json


@click.command("stats")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the counts and statistics as JSON.")
@click.option("--no-report", is_flag=True, help="Only print the table; do not (re)write report.md and its plots.")
@click.option("--tokenizer", default=None, metavar="MODEL",
              help="Also measure lengths in this model's tokens (a local folder or a hub name), rendered and "
                   "tokenized exactly as `idata train --model MODEL` would; writes token_lengths.png.")
@click.option("--template", "-t", default=None, metavar="NAME",
              help="With --tokenizer: the template `idata train --template` would use (default: auto).")
@click.option("--max-len", type=click.IntRange(min=8), default=None, metavar="N",
              help="With --tokenizer: how many examples exceed N tokens, and what `idata train --max-len N` "
                   "would cut (--too-long truncate) or leave out (--too-long skip).")
@click.option("--trust-remote-code", is_flag=True, help="With --tokenizer: allow a tokenizer with its own code.")
def stats_command(folder, as_json, no_report, tokenizer, template, max_len, trust_remote_code):
    """Summarise a build folder: rows per source, kept, rejected per reason, duplicates, lengths.

    Reads FOLDER/manifest.json (written by `idata build`) and rewrites FOLDER/report.md
    with its plots (PNG). With --tokenizer, also the token lengths of prompt, reply and the
    whole example (percentiles overall, per source and per category) and, with --max-len,
    the share over it and what truncation would cut: before training, not after.

    \b
    Examples:
      idata stats build/belle
      idata stats build/belle --tokenizer Qwen/Qwen2.5-0.5B-Instruct --max-len 1024
      idata stats build/belle --tokenizer ./my-model --template seed --json
    """
    if (template or max_len) and not tokenizer:
        raise click.UsageError("--template and --max-len measure tokens: give --tokenizer MODEL too")
    from instruct_data.cli.summary import print_summary
    from instruct_data.outputs_guard import output_lock
    from instruct_data.report import load_manifest, write_report

    manifest = load_manifest(folder)
    if not no_report:
        with output_lock(folder):  # the lock a build into FOLDER holds: never a report beside a half-swapped build
            write_report(folder, load_manifest(folder))
    tokens = _token_lengths(folder, tokenizer, template, max_len, trust_remote_code, as_json) if tokenizer else None
    if as_json:
        summary = {key: manifest.get(key) for key in ("counts", "split", "stats", "sources", "template")}
        print_json(summary | ({"tokens": tokens} if tokens else {}))
        return
    print_summary(manifest, title=folder)
    if not no_report:
        console.print(f"[green]wrote[/green] {folder}/report.md")
    if tokens:
        from instruct_data.cli.token_summary import print_token_lengths

        print_token_lengths(tokens)
        console.print(f"[green]wrote[/green] {folder}/token_lengths.png")


def _token_lengths(folder, tokenizer, template, max_len, trust_remote_code, quiet):
    from instruct_data.cli.common import row_progress
    from instruct_data.outputs_guard import output_lock
    from instruct_data.report import plot_token_lengths
    from instruct_data.training.lengths import token_lengths

    with row_progress("tokenizing") as advance:
        found = token_lengths(folder, tokenizer, template, max_len, trust_remote_code,
                              progress=lambda rows: [advance() for _ in range(rows)])
    with output_lock(folder):
        plot_token_lengths(found, folder)
    return found
