"""`idata validate`."""

from __future__ import annotations

import sys

import click

from instruct_data.cli.common import console, input_options, print_json


@click.command("validate")
@click.argument("inputs", nargs=-1, required=True)
@input_options
@click.option("--max-errors", default=20, show_default=True, help="How many bad rows to list per file.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def validate_command(inputs, fmt, mapping, encoding, max_errors, as_json):
    """Check files against their format; list bad rows with file:line.

    Exit status: 0 when every row of every file is valid, 1 when some rows are invalid,
    2 when a file cannot be read at all.

    \b
    Examples:
      idata validate out/train.jsonl
      idata validate raw/*.json --json | jq '.files[].invalid'
    """
    from instruct_data.formats import parse_mapping
    from instruct_data.validate import validate

    reports = validate(list(inputs), fmt=fmt, mapping=parse_mapping(mapping), encoding=encoding,
                       max_errors=max_errors)
    status = 2 if any(r.file_error for r in reports) else (1 if any(r.invalid for r in reports) else 0)
    if as_json:
        print_json({"ok": status == 0, "files": [r.to_dict() for r in reports]})
    else:
        for report in reports:
            _print_report(report)
    sys.exit(status)


def _print_report(report) -> None:
    if report.file_error:
        console.print(f"[red]✗[/red] {report.file_error}")
        return
    mark = "[green]✓[/green]" if report.ok else "[red]✗[/red]"
    console.print(f"{mark} {report.path} ({report.format}): {report.rows:,} rows, "
                  f"{report.valid:,} valid, {report.invalid:,} invalid")
    for reason, count in sorted(report.invalid_by_reason.items()):
        console.print(f"    {count:>6,}  {reason}")
    for error in report.errors:
        console.print(f"    {error['where']}: {error['reason']}: {error['detail']}")
