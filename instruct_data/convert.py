"""`idata convert`: any supported input to context/target JSONL, with its ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_data.errors import InputError
from instruct_data.io import JsonlWriter, expand_inputs
from instruct_data import outputs_guard
from instruct_data.ledger import Ledger, Reject, Written, ledger_paths, ledger_prefix, source_names
from instruct_data.outputs_guard import no_signals
from instruct_data.rowpath import read_conversations
from instruct_data.templates import get_template, training_record


def own_outputs_left_out(files: list[Path], out: Path) -> list[Path]:
    """Converting a folder that holds an earlier run's output must not read that output (and its
    ledger) back in as input."""
    own = {path.resolve() for path in (out, *ledger_paths(out))}
    kept = [path for path in files if path.resolve() not in own]
    if not kept:
        raise InputError(str(out), "the only inputs are this command's own output files")
    return kept


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
    ledger = Ledger(out.parent, command="convert", prefix=ledger_prefix(out), parameters={
        "template": template, "format": fmt, "map": mapping or {}, "encoding": encoding, "system": system,
        "strict": strict, "max_reject_rate": max_reject_rate,
    })
    writer = JsonlWriter(out)
    try:
        for path, source in zip(files, source_names(files)):
            info: dict[str, Any] = {}
            used_format, stream = read_conversations(str(path), fmt=fmt, source=source, mapping=mapping,
                                                     encoding=encoding, info=info)
            ledger.add_input(path, format=used_format, source=source, map=info["map"],
                             **({"unused_columns": info["unused_columns"]} if info["unused_columns"] else {}),
                             **({"sheets": info["sheets"]} if info.get("sheets") else {}))
            for row, result in stream:
                ledger.read(source)
                if on_row:
                    on_row()
                if isinstance(result, Reject):
                    ledger.outcome(source, result, strict=strict)
                    continue
                writer.write(training_record(result, chosen, system))
                ledger.outcome(source, Written())
                ledger.note_own_id(result.own_id, result.id)
            ledger.check_reject_rate(source, max_reject_rate)
        # The output and its three ledger files are renamed one after another: Ctrl-C and
        # SIGTERM wait for the last of them (a SIGKILL between them cannot be held back).
        with no_signals():
            writer.commit()
            manifest = ledger.finish(outputs=[out])
            outputs_guard.committed = True
        return manifest
    except BaseException:
        writer.abort()
        ledger.abort()
        raise
