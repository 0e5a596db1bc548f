"""`idata stats`: the summary table and report.md of a build folder."""

from __future__ import annotations

import click

from instruct_data.cli.common import console, print_json


@click.command("stats")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the counts and statistics as JSON.")
@click.option("--no-report", is_flag=True, help="Only print the table; do not (re)write report.md and its plots.")
def stats_command(folder, as_json, no_report):
    """Summarise a build folder: rows per source, kept, rejected per reason, duplicates, lengths.

    Reads FOLDER/manifest.json (written by `idata build`) and rewrites FOLDER/report.md
    with its plots (PNG).

    \b
    Example:
      idata stats build/belle
    """
    from instruct_data.cli.summary import print_summary
    from instruct_data.outputs_guard import output_lock
    from instruct_data.report import load_manifest, write_report

    manifest = load_manifest(folder)
    if not no_report:
        with output_lock(folder):  # the lock a build into FOLDER holds: never a report beside a half-swapped build
            write_report(folder, load_manifest(folder))
    if as_json:
        print_json({key: manifest.get(key) for key in ("counts", "split", "stats", "sources", "template")})
        return
    print_summary(manifest, title=folder)
    if not no_report:
        console.print(f"[green]wrote[/green] {folder}/report.md")
