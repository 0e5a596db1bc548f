"""The token-length tables `idata stats --tokenizer` prints."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from instruct_data.cli.common import console

# (part, percentile) per column: prompt and reply at the median and p99, the whole example in full.
COLUMNS = (("prompt", "p50"), ("prompt", "p99"), ("reply", "p50"), ("reply", "p99"),
           ("whole", "p50"), ("whole", "p90"), ("whole", "p99"), ("whole", "p100"))


def print_token_lengths(tokens: dict[str, Any]) -> None:
    console.print(f"tokens of {tokens['tokenizer']}, template {tokens['template']} ({tokens['template_why']}); "
                  f"{tokens['examples']:,} examples from {tokens['data']}", soft_wrap=True)
    table = Table(title="length in tokens", title_justify="left")
    table.add_column("")
    for column in ("examples", *COLUMNS):
        table.add_column(" ".join(column) if isinstance(column, tuple) else column, justify="right")
    _rows(table, "all", tokens["overall"], style="bold")
    for kind in ("by_source", "by_category"):
        for name, stats in tokens[kind].items():
            _rows(table, f"{kind[3:]}: {name}", stats)
    console.print(table)
    over = tokens.get("max_len")
    if over:
        cut = over["truncate"]
        console.print(
            f"--max-len {over['max_len']:,}: {over['over']:,} examples over it ({over['share_over']:.1%}). "
            f"`idata train --too-long truncate` (the default) would truncate {cut['truncated']:,} and skip "
            f"{cut['skipped']:,} (too long even cut), cutting {cut['prompt_tokens_cut']:,} prompt and "
            f"{cut['reply_tokens_cut']:,} reply tokens; `--too-long skip` would leave out {over['skip']['skipped']:,} "
            f"examples and their {over['skip']['reply_tokens_lost']:,} reply tokens.", soft_wrap=True)


def _rows(table: Table, name: str, stats: dict[str, Any], style: str | None = None) -> None:
    if stats.get("examples"):
        table.add_row(name, f"{stats['examples']:,}", *(f"{stats[part][p]:,}" for part, p in COLUMNS), style=style)
