"""`idata to-multiturn`: dialogues in, multi-turn context/target records out, with the ledger.

    DIR/train.jsonl          context/target records (history rendered into the context)
    DIR/conversations.jsonl  the canonical dialogues, one per line, for re-rendering
    DIR/rejects.jsonl        every dialogue that gave no records, with its reason
    DIR/manifest.json        the ledger at the dialogue level, plus records written and a
                             histogram of records per dialogue

The ledger counts dialogues: read = written + rejected. A dialogue is one input row, or one
group of rows with --group-by. Rows read and records written are reported beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_data.convert import check_reject_rate, source_names
from instruct_data.errors import StrictModeError
from instruct_data.formats import Rejected, read_conversations, row_id
from instruct_data.io import JsonlWriter, expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.multiturn.expansion import MultiturnSettings, expand, length_function
from instruct_data.multiturn.grouping import Dialogue, dialogues
from instruct_data.templates import get_template


def to_multiturn(
    inputs: Iterable[str],
    out_dir: str | Path,
    *,
    template: str = "seed",
    settings: MultiturnSettings | None = None,
    system: str | None = None,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    encoding: str = "utf-8",
    group_by: str | None = None,
    order_by: str | None = None,
    strict: bool = False,
    max_reject_rate: float = 0.5,
    on_dialogue: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Expand every dialogue of the inputs; returns the manifest. Outputs appear only on success."""
    if order_by is not None and group_by is None:
        raise ValueError("--order-by needs --group-by")
    settings = settings or MultiturnSettings()
    files = expand_inputs(inputs)  # a missing file fails here, before anything is written
    chosen = get_template(template)
    length_function(settings)  # a tokenizer that cannot load fails before anything is written
    out_dir = Path(out_dir)
    ledger = Ledger(out_dir, command="to-multiturn", parameters={
        "template": template, **settings.model_dump(), "system": system, "format": fmt, "map": mapping or {},
        "encoding": encoding, "group_by": group_by, "order_by": order_by, "strict": strict,
        "max_reject_rate": max_reject_rate,
    })
    train = JsonlWriter(out_dir / "train.jsonl")
    canonical = JsonlWriter(out_dir / "conversations.jsonl")
    tally = Tally()
    try:
        for path, source in zip(files, source_names(files)):
            info: dict[str, Any] = {}
            used_format, stream = read_conversations(str(path), fmt=fmt, source=source, mapping=mapping,
                                                     encoding=encoding, info=info)
            ledger.add_input(path, format=used_format, source=source, map=info.get("map"))
            first_reject = None
            for dialogue in dialogues(stream, source=source, group_by=group_by, order_by=order_by):
                ledger.read(source)
                tally.rows_read += len(dialogue.rows)
                if on_dialogue:
                    on_dialogue()
                if isinstance(dialogue.result, Rejected):
                    where = _reject(ledger, dialogue, dialogue.result, dialogue.stage, source, strict)
                    first_reject = first_reject or where
                    continue
                records = expand(dialogue.result, chosen, settings, system=system, stats=tally.dropped)
                if isinstance(records, Rejected):
                    where = _reject(ledger, dialogue, records, "multiturn", source, strict)
                    first_reject = first_reject or where
                    continue
                train.write_many(records)
                canonical.write(dialogue.result.model_dump(exclude_none=True))
                ledger.written(source)
                tally.records(len(records))
            check_reject_rate(ledger, source, max_reject_rate, first_reject)
        ledger.extra["multiturn"] = tally.report(settings)
        outputs = [train.commit(), canonical.commit()]
        return ledger.finish(outputs=outputs)
    except BaseException:
        train.abort()
        canonical.abort()
        ledger.abort()
        raise


class Tally:
    """What the manifest adds beside the dialogue ledger."""

    def __init__(self) -> None:
        self.rows_read = 0
        self.records_written = 0
        self.per_dialogue: Counter[int] = Counter()
        self.dropped: Counter[str] = Counter()

    def records(self, n: int) -> None:
        self.records_written += n
        self.per_dialogue[n] += 1

    def report(self, settings: MultiturnSettings) -> dict[str, Any]:
        return {
            "mode": settings.mode,
            "rows_read": self.rows_read,
            "records_written": self.records_written,
            "records_per_dialogue": {str(n): self.per_dialogue[n] for n in sorted(self.per_dialogue)},
            "history_rounds_dropped_by_limit": self.dropped["history_rounds_dropped_by_limit"],
            "history_rounds_dropped_by_budget": self.dropped["history_rounds_dropped_by_budget"],
        }


def _reject(ledger: Ledger, dialogue: Dialogue, rejected: Rejected, stage: str, source: str, strict: bool) -> str:
    """Write the reject; returns `file:line: reason: detail` for error messages."""
    first = dialogue.rows[0]
    where = f"{first.origin}: {rejected.reason}: {rejected.detail}"
    if strict:
        raise StrictModeError(f"{where} (--strict)")
    if not isinstance(dialogue.result, Rejected):
        the_id = dialogue.result.id
    else:
        the_id = dialogue.group_id or row_id(first, source)
    ledger.reject(stage, rejected.reason, rejected.detail, first.origin, dialogue.raw, source=source, row_id=the_id)
    return where
