"""`idata convert`: any supported input to context/target JSONL, with its ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_data.errors import RejectRateError, StrictModeError
from instruct_data.formats import Rejected, read_conversations, row_id
from instruct_data.io import JsonlWriter, expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.schema import Conversation
from instruct_data.templates import Template, get_template, render


def source_name(path: Path) -> str:
    """`data/mine.jsonl.gz` -> `mine`."""
    name = path.name
    for suffix in reversed(path.suffixes):
        name = name.removesuffix(suffix)
    return name or path.name


def training_record(conversation: Conversation, template: Template, system: str | None = None) -> dict[str, Any]:
    if conversation.rendered:
        context, target = conversation.turns[0].text, conversation.reply
    else:
        context, target = render(conversation, template, system=system)
    record = {"context": context, "target": target, "id": conversation.id, "source": conversation.source}
    if conversation.category:
        record["category"] = conversation.category
    return record


def check_reject_rate(ledger: Ledger, source: str, limit: float) -> None:
    rate = ledger.reject_rate(source)
    if rate > limit:
        counts = ledger.counts[source]
        raise RejectRateError(
            f"{source}: {counts['rejected']} of {counts['read']} rows rejected ({rate:.0%} > {limit:.0%}); "
            "check --format and --map, or raise --max-reject-rate"
        )


def convert(
    inputs: Iterable[str],
    out: str | Path,
    *,
    template: str = "seed",
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    encoding: str = "utf-8",
    system: str | None = None,
    strict: bool = False,
    max_reject_rate: float = 0.5,
    on_row: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Convert the inputs; returns the manifest. Nothing appears at `out` unless it all succeeds."""
    files = expand_inputs(inputs)  # a missing file fails here, before anything is written
    chosen = get_template(template)
    out = Path(out)
    ledger = Ledger(out.parent, command="convert", prefix=f"{source_name(out)}.", parameters={
        "template": template, "format": fmt, "map": mapping or {}, "encoding": encoding, "system": system,
        "strict": strict, "max_reject_rate": max_reject_rate,
    })
    writer = JsonlWriter(out)
    try:
        for path in files:
            source = source_name(path)
            used_format, stream = read_conversations(str(path), fmt=fmt, source=source, mapping=mapping,
                                                     encoding=encoding)
            ledger.add_input(path, format=used_format, source=source)
            for row, result in stream:
                ledger.read(source)
                if on_row:
                    on_row()
                if isinstance(result, Rejected):
                    if strict:
                        raise StrictModeError(f"{row.origin}: {result.reason}: {result.detail}")
                    raw = row.data if row.data is not None else row.raw
                    ledger.reject("read", result.reason, result.detail, row.origin, raw, source=source,
                                  row_id=row_id(row, source))
                    continue
                writer.write(training_record(result, chosen, system))
                ledger.written(source)
            check_reject_rate(ledger, source, max_reject_rate)
        writer.commit()
        return ledger.finish(outputs=[out])
    except BaseException:
        writer.abort()
        ledger.abort()
        raise
