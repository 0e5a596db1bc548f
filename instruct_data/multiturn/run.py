"""`idata to-multiturn`: dialogues in, multi-turn context/target records out, with the ledger.

    DIR/train.jsonl          context/target records (history rendered into the context)
    DIR/conversations.jsonl  the canonical dialogues, one per line, for re-rendering
    DIR/rejects.jsonl        every dialogue that gave no records, with its reason
    DIR/manifest.json        the ledger at the dialogue level, plus records written and a
                             histogram of records per dialogue

The ledger counts dialogues: read = written + rejected. A dialogue is one input row, or one
group of rows with --group-by. Rows read and records written are reported beside it.

Large JSON-lines inputs are expanded by worker processes in ordered chunks of lines (the
main process reads, writes and keeps the ledger, at most a few chunks in flight, so memory
stays flat); other inputs, and --group-by, run in this process. The output is the same
either way.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from instruct_data.errors import InputError
from instruct_data.formats import DETECT_ROWS
from instruct_data.io import TABLE_SUFFIXES, JsonlWriter, base_suffix, chunked, expand_inputs, read_rows
from instruct_data.ledger import Ledger, Written, source_names
from instruct_data.rowpath import FileSpec, file_chunks, file_results, open_file
from instruct_data.parallel import WorkerPool
from instruct_data.multiturn.expansion import MultiturnSettings, length_function
from instruct_data.multiturn.grouping import dialogues
from instruct_data.multiturn.work import Batch, Expander, expand_chunk, start_worker
from instruct_data.templates import get_template

CHUNK_BYTES = 1 << 20  # about this much input per worker task
SERIAL_BELOW_BYTES = 4 << 20  # smaller files are not worth starting workers for
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


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
    workers: int | None = None,
    on_dialogue: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Expand every dialogue of the inputs; returns the manifest. Outputs appear only on success.

    `workers`: processes for large JSON-lines inputs (default: up to 4, one per CPU; 1: none).
    """
    if order_by is not None and group_by is None:
        raise ValueError("--order-by needs --group-by")
    settings = settings or MultiturnSettings()
    workers = DEFAULT_WORKERS if workers is None else max(1, workers)
    files = expand_inputs(inputs)  # a missing file fails here, before anything is written
    get_template(template)  # an unknown template fails here too
    length_function(settings)  # and a tokenizer that cannot load
    out_dir = Path(out_dir)
    ledger = Ledger(out_dir, command="to-multiturn", parameters={
        "template": template, **settings.model_dump(), "system": system, "format": fmt, "map": mapping or {},
        "encoding": encoding, "group_by": group_by, "order_by": order_by, "strict": strict,
        "max_reject_rate": max_reject_rate,
    })
    run = Run(ledger, out_dir, strict, on_dialogue)
    expander = Expander(template, settings, system)
    pool = None
    try:
        for path, source in zip(files, source_names(files)):
            spec = open_file(path, fmt=fmt, mapping=mapping, encoding=encoding, also_read=(group_by, order_by))
            _check_columns(path, encoding, group_by=group_by, order_by=order_by)
            ledger.add_input(path, format=spec.format, source=source, map=spec.mapping, **spec.column_info())
            if workers > 1 and group_by is None and _worth_workers(spec):
                pool = pool or _pool(workers, template, settings, system)  # workers read the lines themselves
                batches = pool.map(expand_chunk, ((chunk, source) for chunk in file_chunks(spec, block_bytes=CHUNK_BYTES)))
            else:
                units = dialogues(file_results(spec, source), source=source, group_by=group_by, order_by=order_by)
                batches = (expander.batch(chunk, source) for chunk in chunked(units, 1_000))
            for batch in batches:
                run.apply(batch, source)
            ledger.check_reject_rate(source, max_reject_rate)
        ledger.extra["multiturn"] = run.report(settings)
        return ledger.finish(outputs=run.commit())
    except BaseException:
        if pool is not None:
            pool.kill()  # before the clean-up: no worker keeps writing
        run.abort()
        ledger.abort()
        raise
    finally:
        if pool is not None:
            pool.close()


class LinesWriter(JsonlWriter):
    """A JsonlWriter that also takes lines already serialized and encoded (by a worker)."""

    def write_encoded(self, data: bytes) -> None:
        if data:
            self._fh.flush()  # anything written as text goes first
            self._fh.buffer.write(data)


class Run:
    """The main process's side: output files, the ledger, and what the manifest adds to it."""

    def __init__(self, ledger: Ledger, out_dir: Path, strict: bool, on_dialogue: Callable[[], None] | None):
        self.ledger = ledger
        self.strict = strict
        self.on_dialogue = on_dialogue
        self.train = LinesWriter(out_dir / "train.jsonl")
        self.conversations = LinesWriter(out_dir / "conversations.jsonl")
        self.rows_read = 0
        self.records_written = 0
        self.per_dialogue: Counter[int] = Counter()
        self.dropped: Counter[str] = Counter()

    def apply(self, batch: Batch, source: str) -> None:
        """Write a batch and count it in the ledger."""
        for outcome in batch.outcomes:
            self.ledger.read(source)
            if self.on_dialogue:
                self.on_dialogue()
            if outcome.reject is None:
                self.ledger.outcome(source, Written())
                if outcome.own_id is not None:
                    self.ledger.note_own_id(*outcome.own_id)
                self.records_written += outcome.records
                self.per_dialogue[outcome.records] += 1
                continue
            self.ledger.outcome(source, outcome.reject, strict=self.strict)
        self.train.write_encoded(batch.train)
        self.conversations.write_encoded(batch.conversations)
        self.rows_read += batch.rows
        self.dropped.update(batch.dropped)

    def report(self, settings: MultiturnSettings) -> dict[str, Any]:
        return {
            "mode": settings.mode,
            "rows_read": self.rows_read,
            "records_written": self.records_written,
            "records_per_dialogue": {str(n): self.per_dialogue[n] for n in sorted(self.per_dialogue)},
            "history_rounds_dropped_by_limit": self.dropped["history_rounds_dropped_by_limit"],
            "history_rounds_dropped_by_budget": self.dropped["history_rounds_dropped_by_budget"],
        }

    def commit(self) -> list[Path]:
        return [self.train.commit(), self.conversations.commit()]

    def abort(self) -> None:
        self.train.abort()
        self.conversations.abort()


def _worth_workers(spec: FileSpec) -> bool:
    """JSON lines (workers split them by line) and big enough to repay starting processes."""
    return spec.json_lines and Path(spec.path).stat().st_size >= SERIAL_BELOW_BYTES


def _pool(workers: int, template: str, settings: MultiturnSettings, system: str | None) -> WorkerPool:
    # Workers are forked where they can be and inherit a loaded tokenizer. Each worker encodes
    # one text at a time, so the tokenizers library needs no threads of its own (and does not
    # warn about them after the fork).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return WorkerPool(workers, start_worker, (template, settings, system))


def _check_columns(path, encoding: str, **columns: str | None) -> None:
    """--group-by and --order-by name columns of a table: a name that is not one (a typo,
    `会话ID` for `会话`) grouped nothing, in silence; like --map, it is an error naming the columns."""
    wanted = {option: name for option, name in columns.items() if name is not None}
    if not wanted or base_suffix(Path(path)) not in TABLE_SUFFIXES:
        return  # (JSON rows may each hold other keys: a later row can hold the column)
    head = [row for row in read_rows(path, encoding=encoding, limit=DETECT_ROWS) if row.data is not None]
    found = dict.fromkeys(str(key) for row in head for key in row.data)
    for option, name in wanted.items():
        if head and name not in found:
            raise InputError(str(path), f"--{option.replace('_', '-')} {name}: no such column in this file (its "
                                        f"columns: {', '.join(found)})", line=head[0].origin.line or head[0].origin.row)
