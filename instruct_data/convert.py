"""`idata convert`: any supported input to context/target JSONL, with its ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_data.errors import InputError, RejectRateError, StrictModeError
from instruct_data.formats import Rejected, read_conversations
from instruct_data.formats.base import position_id
from instruct_data.io import SUPPORTED_SUFFIXES, JsonlWriter, expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.schema import Conversation
from instruct_data.templates import Template, get_template, render


def source_name(path: Path) -> str:
    """`data/mine.jsonl.gz` -> `mine`; `train_3.5M_CN.json` -> `train_3.5M_CN` (only the file
    type is taken off, not every dot)."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem, dot, suffix = name.rpartition(".")
    return (stem if dot and f".{suffix.lower()}" in SUPPORTED_SUFFIXES else name) or path.name


def own_outputs_left_out(files: list[Path], out: Path) -> list[Path]:
    """Converting a folder that holds an earlier run's output must not read that output (and its
    ledger) back in as input."""
    stem = source_name(out)
    own = {(out.parent / name).resolve() for name in
           (out.name, f"{stem}.rejects.jsonl", f"{stem}.duplicates.jsonl", f"{stem}.manifest.json")}
    kept = [path for path in files if path.resolve() not in own]
    if not kept:
        raise InputError(str(out), "the only inputs are this command's own output files")
    return kept


def source_names(files: list[Path]) -> list[str]:
    """One source name per file; files that share a name get their folder too (`a/x`, `b/x`),
    so row ids (`source:line`) stay unique and stable."""
    names = [source_name(path) for path in files]
    clashes = {name for name in names if names.count(name) > 1}
    result = []
    for path, name in zip(files, names):
        if name in clashes:
            parent = path.parent.name or "."
            name = f"{parent}/{name}"
        result.append(name)
    # A name still shared (the same file given twice, or a/x and c/a/x) gets a counter.
    seen: dict[str, int] = {}
    unique = []
    for name in result:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


def training_record(conversation: Conversation, template: Template, system: str | None = None) -> dict[str, Any]:
    context, target = render(conversation, template, system=system)  # passes a rendered context through
    record = {"context": context, "target": target, "id": conversation.id, "source": conversation.source}
    if conversation.category:
        record["category"] = conversation.category
    return record


def check_reject_rate(ledger: Ledger, source: str, limit: float, first_reject: str | None = None) -> None:
    """Fail when too many of a source's rows were rejected: almost always a wrong format or map.

    `first_reject` (`file:line: reason: detail`) leads the message, so the user sees a real row.
    """
    rate = ledger.reject_rate(source)
    if rate > limit:
        counts = ledger.counts[source]
        lead = f"{first_reject}; " if first_reject else f"{source}: "
        raise RejectRateError(
            f"{lead}{counts['rejected']} of {counts['read']} rows of {source} rejected "
            f"({rate:.0%} > {limit:.0%}); check --format and --map, or raise --max-reject-rate"
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
    out = Path(out)
    files = own_outputs_left_out(expand_inputs(inputs), out)  # a missing file fails here, before any output
    chosen = get_template(template)
    ledger = Ledger(out.parent, command="convert", prefix=f"{source_name(out)}.", parameters={
        "template": template, "format": fmt, "map": mapping or {}, "encoding": encoding, "system": system,
        "strict": strict, "max_reject_rate": max_reject_rate,
    })
    writer = JsonlWriter(out)
    try:
        for path, source in zip(files, source_names(files)):
            info: dict[str, Any] = {}
            used_format, stream = read_conversations(str(path), fmt=fmt, source=source, mapping=mapping,
                                                     encoding=encoding, info=info)
            ledger.add_input(path, format=used_format, source=source, map=info["map"])
            first_reject = None
            for row, result in stream:
                ledger.read(source)
                if on_row:
                    on_row()
                if isinstance(result, Rejected):
                    where = f"{row.origin}: {result.reason}: {result.detail}"
                    if strict:
                        raise StrictModeError(f"{where} (--strict)")
                    first_reject = first_reject or where
                    raw = row.data if row.data is not None else row.raw
                    ledger.reject("read", result.reason, result.detail, row.origin, raw, source=source,
                                  row_id=position_id(source, row.origin))
                    continue
                writer.write(training_record(result, chosen, system))
                ledger.written(source)
                ledger.note_own_id(result.own_id, result.id)
            check_reject_rate(ledger, source, max_reject_rate, first_reject)
        writer.commit()
        return ledger.finish(outputs=[out])
    except BaseException:
        writer.abort()
        ledger.abort()
        raise
