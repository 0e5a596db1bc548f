"""The build summary printed after `idata build` and by `idata stats`: rich tables from the manifest.

Printing lives here, in the CLI layer; instruct_data.report only writes report.md and the plots.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from instruct_data.cli.common import console
from instruct_data.report import median_bin


def column_lines(manifest: dict) -> list[str]:
    """Per input file, the columns read as fields under other names (the manifest's
    inputs[].map: a --map, or the header names idata recognised, `Question` as instruction), and
    the columns that hold data no field reads (inputs[].unused_columns): nothing is guessed or
    dropped in silence."""
    lines = []
    for entry in manifest.get("inputs", []):
        if entry.get("role") == "categories":
            lines.append(f"  categories of {escape(str(entry['source']))} from {escape(str(entry['path']))}: "
                         f"{entry['ids']:,} ids, {len(entry['categories'])} categories")
        sheets = entry.get("sheets")  # (a hub input has no path, and no map)
        readings = ({f"{entry['path']}[{sheet}]": reading.get("map") for sheet, reading in sheets.items()} if sheets
                    else {str(entry.get("path")): entry.get("map")})
        for where, mapping in readings.items():
            if mapping:
                read_as = ", ".join(f"{field}={column}" for field, column in mapping.items())
                lines.append(f"  columns of {escape(where)} read as: {escape(read_as)} "
                             "(--map FIELD=COLUMN to read them otherwise)")
        unused = entry.get("unused_columns")
        if unused:
            names = ", ".join(unused)
            lines.append(f"  [yellow]unused columns[/yellow] in {escape(str(entry['path']))}: {escape(names)} "
                         f"({unused_advice(unused)})")
    return lines


def missing_categories_hint(manifest: dict) -> str | None:
    """For a Belle release whose categories BELLE published apart (train_3.5M_CN) built without
    them: where they are and how to join them."""
    from instruct_data.hub import SUBSETS

    joined = {entry.get("source") for entry in manifest.get("inputs", []) if entry.get("role") == "categories"}
    for source in manifest.get("sources", []):
        subset = SUBSETS.get(source.get("subset") or "")
        if subset is not None and subset.categories and source["name"] not in joined:
            dataset, name = subset.categories
            return (f"  note: {source['name']}'s rows have no categories (held out by source, no per-category eval): "
                    f"BELLE publishes them apart, {dataset} ({name}); pass --categories {name}, or put it in the "
                    "--from folder")
    return None


def unused_advice(unused: list[str]) -> str:
    """What to do about unused columns: --map for a column; for a message's own field (named
    `messages[].key`), how idata marks a reply not to train, the usual meaning of such a field."""
    advice = "not in the records; --map FIELD=COLUMN to use one"
    if any("[]." in name for name in unused):
        advice += "; a message field is not read: idata keeps a reply out of training with \"weight\": 0"
    return advice


def print_summary(manifest: dict[str, Any], title: str = "build") -> None:
    """Rows per source (read, kept, rejected, duplicates, held out) and the reasons, as rich tables."""
    from rich.table import Table

    counts = manifest["counts"]
    split = manifest.get("split", {})
    table = Table(title=title, title_justify="left")
    for column in ("source", "read", "rejected", "duplicates", "train", "held out"):
        table.add_column(column, justify="left" if column == "source" else "right")
    rows = list(counts["per_source"].items()) + [("total", counts["totals"])]
    for source, c in rows:
        train = sum(split.get("train", {}).values()) if source == "total" else split.get("train", {}).get(source, 0)
        held = sum(split.get("heldout", {}).values()) if source == "total" else split.get("heldout", {}).get(source, 0)
        table.add_row(source, f"{c['read']:,}", f"{c['rejected']:,}", f"{c['removed']:,}", f"{train:,}", f"{held:,}",
                      style="bold" if source == "total" else None)
    console.print(table)
    for line in column_lines(manifest):
        console.print(line, soft_wrap=True)
    reasons = counts.get("rejects_by_reason", {})
    if reasons:
        why = Table(title="rejected, by reason", title_justify="left")
        why.add_column("stage/reason")
        why.add_column("rows", justify="right")
        for reason, per_source in sorted(reasons.items(), key=lambda kv: -sum(kv[1].values())):
            why.add_row(reason, f"{sum(per_source.values()):,}")
        console.print(why)
    dups = counts.get("duplicates_by_method", {})
    stats = manifest.get("stats", {})
    bins = stats.get("length_bins", [])
    line = ", ".join(f"{m} {n:,}" for m, n in dups.items()) or "none"
    console.print(f"duplicates removed: {line}")
    changed = ", ".join(f"{rule} {n:,}" for rule, n in counts.get("rows_changed_by_normalizer", {}).items())
    console.print(f"rows changed by cleaning: {changed or 'none'}")
    if bins:
        console.print(f"median length (chars): instruction {median_bin(stats['instruction_length'], bins)}, "
                      f"reply {median_bin(stats['reply_length'], bins)}; "
                      f"train records: {split.get('train_records', 0):,}; template: {manifest.get('template')}")
    if counts["totals"]["read"] and not split.get("train_records", 0):
        console.print(f"[yellow]train.jsonl is empty[/yellow]: of {counts['totals']['read']:,} rows read, "
                      f"{counts['totals']['rejected']:,} were rejected, {counts['totals']['removed']:,} removed as "
                      f"duplicates and {sum(split.get('heldout', {}).values()):,} held out; nothing is left to train "
                      "on (see rejects.jsonl and duplicates.jsonl)", soft_wrap=True)
