"""`idata convert`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console, input_options, print_json, row_progress, strictness_options
from instruct_data.templates import DEFAULT_TEMPLATE, TEMPLATES


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The context/target JSONL to write.")
@click.option("--template", "-t", default=DEFAULT_TEMPLATE, show_default=True, type=click.Choice(sorted(TEMPLATES)),
              help="How a conversation becomes context/target.")
@click.option("--system", default=None, help="System text to add (or override) where the template has a slot.")
@input_options
@strictness_options
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of a summary.")
def convert_command(inputs, out, template, system, fmt, mapping, encoding, strict, max_reject_rate, as_json):
    """Convert any supported input to context/target JSONL, with its ledger.

    INPUTS are files, folders or globs: .jsonl, .json (array or lines), .csv, .tsv, .xlsx,
    .parquet, or any of them .gz. The format is detected from the keys. Beside OUT go
    OUT-STEM.rejects.jsonl (every dropped row with its reason and file:line) and
    OUT-STEM.manifest.json (inputs, counts, hashes).

    \b
    Examples:
      idata convert alpaca_zh.json --out train.jsonl
      idata convert answers.xlsx --map instruction=问题,output=答案 --template chatglm -o train.jsonl
    """
    from instruct_data.convert import convert
    from instruct_data.formats import parse_mapping

    with row_progress("converting") as advance:
        manifest = convert(inputs, out, template=template, fmt=fmt, mapping=parse_mapping(mapping),
                           encoding=encoding, system=system, strict=strict, max_reject_rate=max_reject_rate,
                           on_row=advance)
    if as_json:
        print_json(manifest)
        return
    totals = manifest["counts"]["totals"]
    console.print(f"[green]wrote[/green] {out}: {totals['written']:,} records "
                  f"({totals['read']:,} read, {totals['rejected']:,} rejected)")
    for reason, per_source in manifest["counts"]["rejects_by_reason"].items():
        console.print(f"  rejected {sum(per_source.values()):>6,}  {reason}")
    stem = manifest["outputs"][-1]["path"]
    console.print(f"  ledger: {stem} and manifest beside {out}")
