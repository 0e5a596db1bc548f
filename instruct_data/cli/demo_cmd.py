"""`idata demo`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console


@click.command("demo")
@click.option("--out", "-o", default="demo-out", show_default=True, type=click.Path(file_okay=False),
              help="Folder for everything the demo writes.")
def demo_command(out):
    """Run the whole flow on the sample bundled with the package, offline.

    \b
    Example:
      idata demo --out demo-out
    """
    from instruct_data.demo import run_demo

    manifest = run_demo(out)
    totals = manifest["counts"]["totals"]
    console.print(f"[green]demo done[/green]: {totals['written']} records from {totals['read']} rows "
                  f"({totals['rejected']} rejected) -> {out}/train.jsonl")
    click.echo(f"{out}/train.jsonl")
