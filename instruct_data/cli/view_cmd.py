"""`idata view`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console


@click.command("view")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "-o", default=None, type=click.Path(dir_okay=False),
              help="Where to write the page (default: FOLDER/view.html, beside report.md).")
@click.option("--max-items", type=click.IntRange(min=1), default=20_000, show_default=True,
              help="Rejects, duplicate pairs or eval items embedded per list; the page says how many more.")
def view_command(folder, out, max_items):
    """Write one static HTML page to look at every decision of a build or an evaluation.

    For a build: the ledger per source, every reject by reason (paged, searchable), duplicate
    pairs side by side with their differences marked, contamination hits next to the held-out
    item they matched, and the length histograms. For an eval folder: each item's prompt, base
    answer, tuned answer and reference with their scores, filtered by category and by
    better / worse. No server, no network: open the file in a browser.

    \b
    Examples:
      idata view build/mine            # writes build/mine/view.html
      idata view eval/mine             # writes eval/mine/view.html
    """
    from instruct_data.view import write_view

    path = write_view(folder, out, max_items)
    console.print(f"[green]wrote[/green] {path} (open it in a browser)")
