"""`idata convert`."""

from __future__ import annotations

import functools
import sys

import click

from instruct_data.cli.common import console, input_options, print_json, reject_lines, row_progress, strictness_options
from instruct_data.cli.summary import column_lines
from instruct_data.outputs_guard import guard_output
from instruct_data.templates import DEFAULT_TEMPLATE, TEMPLATES


def reports_errors(func):
    """An IdataError (or a bad option value found by the library) becomes one red line and its
    exit code here, inside the command, so `CliRunner` and `idata` alike see no traceback."""
    from rich.markup import escape

    from instruct_data.errors import IdataError

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except IdataError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            sys.exit(exc.exit_code)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            sys.exit(2)

    return wrapper


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The context/target JSONL to write (an existing file idata did not write needs --overwrite).")
@click.option("--template", "-t", default=DEFAULT_TEMPLATE, show_default=True, type=click.Choice(sorted(TEMPLATES)),
              help="How a conversation becomes context/target.")
@click.option("--system", default=None, help="System text to add (or override) where the template has a slot.")
@click.option("--overwrite", is_flag=True, help="Replace OUT (and its ledger files) even if no idata run wrote them.")
@input_options
@strictness_options
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary.")
@reports_errors
def convert_command(inputs, out, template, system, overwrite, fmt, mapping, encoding, strict, max_reject_rate, as_json):
    """Convert any supported input to context/target JSONL, with its ledger.

    INPUTS are files, folders or globs: .jsonl, .json (array or lines), .csv, .tsv, .xlsx,
    .parquet, or any of them .gz. The format is detected from the keys (Chinese column names
    such as 指令/输入/输出 or 问题/答案 are recognised too). Beside OUT go
    OUT-STEM.rejects.jsonl (every dropped row with its reason and file:line) and
    OUT-STEM.manifest.json (inputs, counts, hashes). Nothing is written when the run fails.

    \b
    Examples:
      idata convert alpaca_zh.json --out train.jsonl
      idata convert answers.xlsx --map instruction=问题,output=答案 --template chatglm -o train.jsonl
      idata convert raw/ --strict --max-reject-rate 0.1 -o train.jsonl --json
    """
    from instruct_data.convert import convert
    from instruct_data.formats import format_name, parse_mapping

    fmt = format_name(fmt) if fmt else None  # an unknown name fails before any file is read
    with guard_output(out, inputs, command="convert", overwrite=overwrite), row_progress("converting") as advance:
        manifest = convert(inputs, out, template=template, fmt=fmt, mapping=parse_mapping(mapping),
                           encoding=encoding, system=system, strict=strict, max_reject_rate=max_reject_rate,
                           on_row=advance)
    if as_json:
        print_json(manifest)
        return
    totals = manifest["counts"]["totals"]
    console.print(f"[green]wrote[/green] {out}: {totals['written']:,} records "
                  f"({totals['read']:,} read, {totals['rejected']:,} rejected)")
    for line in reject_lines(manifest):
        console.print(line)
    for line in column_lines(manifest):
        console.print(line, soft_wrap=True)
    ledger = [o["path"] for o in manifest["outputs"][1:]] + [manifest["outputs"][1]["path"].replace(
        "rejects.jsonl", "manifest.json")]
    console.print(f"  ledger beside it: {', '.join(ledger)}")
