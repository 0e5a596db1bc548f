"""`idata validate`."""

from __future__ import annotations

import sys

import click
from rich.markup import escape

from instruct_data.cli.common import console, input_options, print_json
from instruct_data.cli.convert_cmd import reports_errors
from instruct_data.cli.summary import unused_advice


@click.command("validate")
@click.argument("inputs", nargs=-1, required=True)
@input_options
@click.option("--max-errors", default=20, show_default=True, help="How many bad rows to list per file.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@reports_errors
def validate_command(inputs, fmt, mapping, encoding, max_errors, as_json):
    """Check files against their format; list bad rows with file:line.

    Any input `idata convert` reads can be checked, and so can its output (context/target).
    Exit status: 0 when every row of every file is valid, 1 when some rows are invalid,
    2 when a file cannot be read at all (missing, unknown format, nothing parses).

    \b
    Examples:
      idata validate out/train.jsonl
      idata validate raw/*.json --json | jq '.files[].invalid'
    """
    from instruct_data.formats import format_name, parse_mapping
    from instruct_data.validate import validate

    fmt = format_name(fmt) if fmt else None
    reports = validate(list(inputs), fmt=fmt, mapping=parse_mapping(mapping), encoding=encoding,
                       max_errors=max_errors)
    status = 2 if any(r.file_error for r in reports) else (1 if any(r.invalid for r in reports) else 0)
    if as_json:
        rows = sum(r.rows for r in reports)
        valid = sum(r.valid for r in reports)
        print_json({"ok": status == 0, "exit_code": status, "rows": rows, "valid": valid, "invalid": rows - valid,
                    "files": [r.to_dict() for r in reports]})
    else:
        for report in reports:
            _print_report(report)
    sys.exit(status)


def _print_report(report) -> None:
    if report.file_error:
        console.print(f"[red]✗[/red] {escape(report.file_error)}", soft_wrap=True)
        return
    mark = "[green]✓[/green]" if report.ok else "[red]✗[/red]"
    mapped = f", columns {', '.join(f'{k}={v}' for k, v in report.mapping.items())}" if report.mapping else ""
    console.print(f"{mark} {escape(report.path)} ({report.format}{escape(mapped)}): {report.rows:,} rows, "
                  f"{report.valid:,} valid, {report.invalid:,} invalid", soft_wrap=True)
    if report.unused_columns:
        console.print(f"    [yellow]unused columns[/yellow]: {escape(', '.join(report.unused_columns))} "
                      f"({escape(unused_advice(report.unused_columns))})", soft_wrap=True)
    for reason, count in sorted(report.invalid_by_reason.items()):
        console.print(f"    {count:>6,}  {reason}")
    for error in report.errors:
        console.print(f"    {escape(error['where'])}: {error['reason']}: {escape(error['detail'])}", soft_wrap=True)
    hidden = report.invalid - len(report.errors)
    if hidden > 0:
        console.print(f"    … and {hidden:,} more (--max-errors, or --json)")
