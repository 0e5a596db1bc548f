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

import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from instruct_data.convert import check_reject_rate, source_names
from instruct_data.errors import InputError, StrictModeError
from instruct_data.formats import read_conversations
from instruct_data.io import GZIP_ERRORS, JsonlWriter, is_json_array, open_binary, base_suffix, expand_inputs
from instruct_data.ledger import Ledger
from instruct_data.parallel import WorkerPool
from instruct_data.multiturn.expansion import MultiturnSettings, length_function
from instruct_data.multiturn.grouping import dialogues
from instruct_data.multiturn.work import Batch, Expander, expand_lines, start_worker
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
            info: dict[str, Any] = {}
            used_format, stream = read_conversations(str(path), fmt=fmt, source=source, mapping=mapping,
                                                     encoding=encoding, info=info)
            ledger.add_input(path, format=used_format, source=source, map=info.get("map"))
            if workers > 1 and group_by is None and _worth_workers(path, encoding):
                stream.close()  # the format is known; workers read the lines themselves
                pool = pool or _pool(workers, template, settings, system)
                mapping_used = info.get("map") or {}
                batches = pool.map(expand_lines, ((str(path), first, block, used_format, source, mapping_used, encoding)
                                                  for first, block in _line_chunks(path)))
            else:
                units = dialogues(stream, source=source, group_by=group_by, order_by=order_by)
                batches = (expander.batch(chunk, source) for chunk in _chunks(units, 1_000))
            first_reject = None
            for batch in batches:
                where = run.apply(batch, source)
                first_reject = first_reject or where
            check_reject_rate(ledger, source, max_reject_rate, first_reject)
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

    def apply(self, batch: Batch, source: str) -> str | None:
        """Write a batch and count it; returns the first reject as `file:line: reason: detail`."""
        first_reject = None
        for outcome in batch.outcomes:
            self.ledger.read(source)
            if self.on_dialogue:
                self.on_dialogue()
            if outcome.reject is None:
                self.ledger.written(source)
                self.records_written += outcome.records
                self.per_dialogue[outcome.records] += 1
                continue
            stage, why, origin, raw, the_id = outcome.reject
            where = f"{origin}: {why.reason}: {why.detail}"
            if self.strict:
                raise StrictModeError(f"{where} (--strict)")
            self.ledger.reject(stage, why.reason, why.detail, origin, raw, source=source, row_id=the_id)
            first_reject = first_reject or where
        self.train.write_encoded(batch.train)
        self.conversations.write_encoded(batch.conversations)
        self.rows_read += batch.rows
        self.dropped.update(batch.dropped)
        return first_reject

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


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _worth_workers(path: Path, encoding: str) -> bool:
    """JSON lines (workers split them by line) and big enough to repay starting processes."""
    if base_suffix(path) not in {".jsonl", ".ndjson", ".json"} or path.stat().st_size < SERIAL_BELOW_BYTES:
        return False
    return not is_json_array(path, encoding)


def _pool(workers: int, template: str, settings: MultiturnSettings, system: str | None) -> WorkerPool:
    # Workers are forked where they can be and inherit a loaded tokenizer. Each worker encodes
    # one text at a time, so the tokenizers library needs no threads of its own (and does not
    # warn about them after the fork).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return WorkerPool(workers, start_worker, (template, settings, system))


def _line_chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(number of the first line, a block of whole lines) of a JSON-lines file, about
    CHUNK_BYTES at a time. One bytes block per task costs far less to read and send than the
    same lines one by one."""
    first, carry = 1, b""
    with open_binary(path) as fh:
        try:
            while block := fh.read(CHUNK_BYTES):
                block = carry + block
                cut = block.rfind(b"\n") + 1
                carry = block[cut:]
                if cut:  # else a line longer than the block: read on
                    yield first, block[:cut]
                    first += block.count(b"\n", 0, cut)
        except GZIP_ERRORS as exc:  # a damaged .gz: as the single-process reader reports it
            raise InputError(str(path), f"cannot read past this line: {exc}", line=first) from None
    if carry:
        yield first, carry
