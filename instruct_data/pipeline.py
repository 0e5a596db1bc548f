"""`idata build`: sources -> read -> clean -> cap -> split -> dedupe -> write, with the ledger.

    from instruct_data.pipeline import build
    from instruct_data.recipe import load_recipe
    manifest = build(load_recipe("recipes/mix.yaml"), "out/")

Two passes keep memory flat. Pass 1 reads every source in chunks and hands each chunk to a
worker process, which parses, cleans and renders its rows and spools the kept ones to files
of its own; the main process keeps only a few small keys per kept row (id, source, stratum,
lengths). The split and the dedupe decision are made on those keys (dedupe reads the spooled
texts back as a stream). Pass 2 copies the spooled lines into the outputs in input order, so
the outputs do not depend on how many workers ran.

Everything is written into a hidden folder beside the output folder, which replaces the
output folder only at the very end: an interrupted build leaves the old outputs (or none).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from instruct_data.clean import Cleaner
from instruct_data.convert import check_reject_rate, source_name, training_record
from instruct_data.errors import IdataError, RejectRateError, StrictModeError
from instruct_data.formats import Rejected, parse_row, read_conversations, row_id
from instruct_data.io import JSON_SUFFIXES, Row, base_suffix, expand_inputs, read_rows
from instruct_data.ledger import Ledger
from instruct_data.plainrow import PlainConversation, plain_conversation, plain_row_id
from instruct_data.recipe import Recipe, RecipeError, Source
from instruct_data.schema import Conversation, Origin
from instruct_data.split import SplitSettings, choose_heldout
from instruct_data.templates import get_template

BLOCK_BYTES = 1 << 20  # one chunk of a JSON-lines file handed to a worker (about 700 Belle rows)
BATCH_ROWS = 1000  # one chunk of rows from a table or the hub
PENDING_PER_WORKER = 4  # chunks in flight per worker: enough to keep them busy, memory bounded
LENGTH_BINS = (0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class BuildError(IdataError):
    pass


# ------------------------------------------------------------------ planning


@dataclass
class FileInput:
    path: Path
    fmt: str
    mapping: dict[str, str] | None  # the recipe's `map`, or Chinese column aliases found by the readers
    lines: bool  # JSON lines: read in raw blocks, parsed by the workers


@dataclass
class Plan:
    """One source, resolved: what to read, and what it has done so far."""

    index: int
    label: str
    source: Source
    cap: int | None
    limit: int | None
    max_reject_rate: float
    files: list[FileInput] = field(default_factory=list)
    subset: Any = None  # hub.Subset for a Belle source
    read: int = 0
    kept: int = 0
    stopped: bool = False  # the cap was reached: nothing more is read


def plan_sources(recipe: Recipe) -> list[Plan]:
    """Resolve every source before anything is written: a missing file or unknown subset fails here."""
    from instruct_data import hub

    caps = recipe.caps()
    plans = []
    for index, source in enumerate(recipe.sources):
        label = source.label
        plan = Plan(index, label, source, caps[label], source.limit,
                    source.max_reject_rate if source.max_reject_rate is not None else recipe.max_reject_rate)
        if source.belle is not None:
            plan.subset = hub.get_subset(source.belle)
            if source.from_ is not None:
                hub.local_file(plan.subset, source.from_)  # fails now, naming the path, if it is not there
        else:
            try:
                paths = expand_inputs(source.files)
            except IdataError as exc:
                raise RecipeError(f"source {label!r}: {exc}") from None
            for path in paths:
                info: dict[str, Any] = {}
                fmt, stream = read_conversations(str(path), fmt=source.format, source=label, mapping=source.map,
                                                 encoding=source.encoding, info=info)
                stream.close()
                plan.files.append(FileInput(path, fmt, info.get("map") or None, _is_json_lines(path, source.encoding)))
        plans.append(plan)
    return plans


def _is_json_lines(path: Path, encoding: str) -> bool:
    if base_suffix(path) not in JSON_SUFFIXES:
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(4096).decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return not head.startswith("[")


# ------------------------------------------------------------------ the work of one chunk (in a worker)


@dataclass
class WorkerState:
    cleaner: Cleaner
    template: Any
    multiturn: Any
    system: str | None
    seed: int
    spool: str
    sources: list[str]  # the label of each source, by index


_STATE: WorkerState | None = None


def _init_worker(state: WorkerState) -> None:
    global _STATE
    _STATE = state


def _parsed_lines(first_line: int, lines: list[bytes], encoding: str) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """(line number, object or None, error, raw text) per non-blank line, as io.read_rows reads
    JSON lines: a bad line carries its error, never raises."""
    for offset, raw in enumerate(lines):
        line_no = first_line + offset
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            yield (line_no, None, f"undecodable bytes ({encoding}): {exc.reason} at byte {exc.start}",
                   raw.decode(encoding, errors="replace").rstrip("\r\n"))
            continue
        if line_no == 1:
            text = text.lstrip("\ufeff")
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield line_no, None, f"invalid JSON: {exc.msg} (column {exc.colno})", text.rstrip("\r\n")
            continue
        if not isinstance(data, dict):
            yield line_no, None, f"expected a JSON object, got {type(data).__name__}", text.rstrip("\r\n")
            continue
        yield line_no, data, None, None


def _origin_dict(origin: Origin) -> dict[str, Any]:
    """The origin as Conversation.model_dump_json(exclude_none=True) writes it."""
    return {key: value for key in ("file", "line", "dataset", "revision", "row")
            if (value := getattr(origin, key)) is not None}


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps builds one per call with options
_dumps = _ENCODER.encode


def _records(conversation: Conversation, state: WorkerState) -> list[dict] | Rejected:
    """train.jsonl records: one per reply for a dialogue (multiturn settings), else one."""
    if conversation.n_rounds > 1 or state.multiturn.budget is not None:
        from instruct_data.multiturn import expand

        records = expand(conversation, state.template, state.multiturn, system=state.system)
        if not isinstance(records, Rejected) and conversation.n_rounds == 1:
            records[0]["id"] = conversation.id  # a single-turn row keeps its own id
        return records
    return [training_record(conversation, state.template, state.system)]


class _Spool:
    """The spool files of one chunk, written by the worker that cleans it."""

    def __init__(self, base: str):
        self.base = base
        self.conv = open(base + ".conv", "w", encoding="utf-8", newline="\n")
        self.train = open(base + ".train", "w", encoding="utf-8", newline="\n")
        self.held = open(base + ".held", "w", encoding="utf-8", newline="\n")
        self.items: list[tuple[str, str]] = []  # (prompt, reply) for dedupe

    def close(self) -> None:
        for fh in (self.conv, self.train, self.held):
            fh.close()
        with open(self.base + ".items", "wb") as fh:
            pickle.dump(self.items, fh, protocol=pickle.HIGHEST_PROTOCOL)


def process_chunk(task: tuple) -> tuple[int, list[tuple]]:
    """Parse, clean and render one chunk; spool the kept rows; return one small outcome per row."""
    number, source_index, kind, payload = task
    state = _STATE
    label = state.sources[source_index]
    spool = _Spool(os.path.join(state.spool, str(number)))
    outcomes: list[tuple] = []
    try:
        if kind == "lines":
            path, fmt, mapping, id_prefix, first_line, lines, encoding = payload
            for line_no, data, error, raw in _parsed_lines(first_line, lines, encoding):
                plain = None
                if data is not None and not mapping:
                    plain = plain_conversation(data, fmt, label, {"file": path, "line": line_no}, line_no)
                    if plain is not None and id_prefix != label:
                        plain.id = plain_row_id(data, id_prefix, line_no)
                if plain is not None:
                    outcomes.append(_clean_and_spool(plain, data, f"{path}:{line_no}", state, spool))
                else:
                    row = Row(Origin(file=path, line=line_no), data, error, raw)
                    outcomes.append(_one_row(row, fmt, mapping, id_prefix, label, state, spool))
        else:
            fmt, mapping, id_prefix, rows = payload
            for row in rows:
                plain = None
                if row.data is not None and not mapping:
                    position = row.origin.line if row.origin.line is not None else row.origin.row
                    plain = plain_conversation(row.data, fmt, label, _origin_dict(row.origin), position)
                    if plain is not None and id_prefix != label:
                        plain.id = plain_row_id(row.data, id_prefix, position)
                if plain is not None:
                    outcomes.append(_clean_and_spool(plain, row.data, str(row.origin), state, spool))
                else:
                    outcomes.append(_one_row(row, fmt, mapping, id_prefix, label, state, spool))
    finally:
        spool.close()
    return number, outcomes


def _one_row(row: Row, fmt: str, mapping, id_prefix: str, label: str, state: WorkerState, spool: _Spool) -> tuple:
    raw = row.data if row.data is not None else row.raw
    result = parse_row(row, fmt, source=id_prefix, mapping=mapping)
    if isinstance(result, Rejected):
        return ("r", "read", result.reason, result.detail, str(row.origin), raw, row_id(row, id_prefix))
    result.source = label
    return _clean_and_spool(result, raw, str(row.origin), state, spool)


def _clean_and_spool(conversation, raw: Any, origin: str, state: WorkerState, spool: _Spool) -> tuple:
    """Clean and render one conversation; spool it if kept. Returns its outcome for the main process."""
    verdict, changed = state.cleaner.clean(conversation)
    if verdict is not None:
        return ("r", "clean", verdict.reason, verdict.detail, origin, raw, conversation.id)
    records = _records(conversation, state)
    if isinstance(records, Rejected):
        return ("r", "multiturn", records.reason, records.detail, origin, raw, conversation.id)
    if isinstance(conversation, PlainConversation):
        spool.conv.write(conversation.to_json())
    else:
        spool.conv.write(conversation.model_dump_json(exclude_none=True))
    spool.conv.write("\n")
    for record in records:
        spool.train.write(_dumps(record))
        spool.train.write("\n")
    multi = conversation.n_rounds > 1
    if multi:
        spool.held.write(_dumps(training_record(conversation, state.template, state.system)))
        spool.held.write("\n")
    users = [t.full_text for t in conversation.turns if t.role == "user"]
    replies = [t.text for t in conversation.turns if t.role == "assistant"]
    prompt, reply = "\n".join(users), "\n".join(replies)
    spool.items.append((prompt, reply))
    rank = xxhash.xxh64_intdigest(conversation.id.encode("utf-8"), seed=state.seed & 0xFFFFFFFFFFFFFFFF)
    prompt_key = xxhash.xxh64_intdigest(prompt.strip().encode("utf-8"))
    stratum = conversation.category or ""
    return ("k", conversation.id, tuple(changed), rank, prompt_key, stratum, len(records), multi,
            len(prompt), len(reply))


# ------------------------------------------------------------------ pass 1 (main process)


@dataclass
class Kept:
    """What the main process keeps per kept row: small keys, no text."""

    ids: list[str] = field(default_factory=list)
    source: array = field(default_factory=lambda: array("H"))
    rank: array = field(default_factory=lambda: array("Q"))
    prompt_key: array = field(default_factory=lambda: array("Q"))
    stratum: array = field(default_factory=lambda: array("I"))
    records: array = field(default_factory=lambda: array("I"))
    multi: bytearray = field(default_factory=bytearray)
    prompt_len: array = field(default_factory=lambda: array("I"))
    reply_len: array = field(default_factory=lambda: array("I"))
    # 1 where a row's id was already used by an earlier row: rejected (`duplicate_id`) in pass 2,
    # since dedupe and the ledger name rows by id.
    repeated_id: bytearray = field(default_factory=bytearray)
    strata: dict[str, int] = field(default_factory=dict)
    chunks: list[tuple[int, int, int]] = field(default_factory=list)  # (chunk number, rows used, rows spooled)

    def __len__(self) -> int:
        return len(self.ids)


def _tasks(plans: list[Plan]) -> Iterator[tuple]:
    """Chunks of every source in order; a source stops being read once its cap is reached."""
    number = 0
    for plan in plans:
        for kind, payload in _source_chunks(plan):
            if plan.stopped:
                break
            yield (number, plan.index, kind, payload)
            number += 1


def _source_chunks(plan: Plan) -> Iterator[tuple[str, tuple]]:
    if plan.subset is not None:
        from instruct_data import hub

        rows = hub.stream_rows(plan.subset, from_path=plan.source.from_, revision=plan.source.revision,
                               limit=plan.limit)
        for batch in _batched(Row(origin, data) for origin, data in rows):
            yield "rows", (plan.subset.format, None, plan.label, batch)
        return
    remaining = plan.limit
    several = len(plan.files) > 1
    for file in plan.files:
        # Row ids are `source:line`; with several files in a source the file name keeps them apart.
        id_prefix = f"{plan.label}/{source_name(file.path)}" if several else plan.label
        encoding = plan.source.encoding
        if file.lines:
            for first_line, lines, rows in _line_chunks(file.path, remaining):
                yield "lines", (str(file.path), file.fmt, file.mapping, id_prefix, first_line, lines, encoding)
                if remaining is not None:
                    remaining -= rows
        else:
            for batch in _batched(read_rows(file.path, encoding=encoding, limit=remaining)):
                yield "rows", (file.fmt, file.mapping, id_prefix, batch)
                if remaining is not None:
                    remaining -= len(batch)
        if remaining is not None and remaining <= 0:
            return


def _batched(rows) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _line_chunks(path: Path, remaining: int | None) -> Iterator[tuple[int, list[bytes], int]]:
    """(first line number, raw lines, rows in them) blocks; stops exactly at `remaining` rows."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    line_no = 1
    with opener(path, "rb") as fh:
        while remaining is None or remaining > 0:
            lines = fh.readlines(BLOCK_BYTES)
            if not lines:
                return
            rows = len(lines)
            if remaining is not None:
                nonblank = [i for i, line in enumerate(lines) if line.strip()]
                if len(nonblank) > remaining:
                    lines = lines[:nonblank[remaining - 1] + 1]
                rows = min(len(nonblank), remaining)
                remaining -= rows
            yield line_no, lines, rows
            line_no += len(lines)


def _run_chunks(plans: list[Plan], state: WorkerState, workers: int):
    """Yield (chunk number, source index, outcomes) in chunk order, over `workers` processes."""
    tasks = _tasks(plans)
    if workers <= 1:
        _init_worker(state)
        for task in tasks:
            number, outcomes = process_chunk(task)
            yield number, task[1], outcomes
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(state,)) as pool:
        pending: deque = deque()
        # Submit by hand, a few chunks ahead: Pool.imap would read the whole input into its queue.
        for task in tasks:
            pending.append((task[1], pool.apply_async(process_chunk, (task,))))
            if len(pending) >= workers * PENDING_PER_WORKER:
                source_index, result = pending.popleft()
                number, outcomes = result.get()
                yield number, source_index, outcomes
        while pending:
            source_index, result = pending.popleft()
            number, outcomes = result.get()
            yield number, source_index, outcomes


def clean_pass(plans: list[Plan], state: WorkerState, ledger: Ledger, *, workers: int, strict: bool,
               on_row: Callable[[], None] | None = None) -> Kept:
    kept = Kept()
    seen_ids: set[str] = set()
    for number, source_index, outcomes in _run_chunks(plans, state, workers):
        plan = plans[source_index]
        if plan.stopped:
            _drop_chunk(state.spool, number)  # read ahead of the cap: these rows are not taken
            continue
        used = read = 0
        spooled = sum(1 for outcome in outcomes if outcome[0] == "k")
        for outcome in outcomes:
            read += 1
            if on_row:
                on_row()
            if outcome[0] == "r":
                _, stage, reason, detail, origin, raw, reject_id = outcome
                if strict and stage == "read":
                    raise StrictModeError(f"{origin}: {reason}: {detail}")
                # The worker sends the origin as text; the ledger writes str(origin) either way.
                ledger.reject(stage, reason, detail, origin, raw, source=plan.label, row_id=reject_id)
                continue
            _keep(kept, outcome, source_index, plan, ledger, seen_ids)
            used += 1
            plan.kept += 1
            if plan.cap is not None and plan.kept >= plan.cap:
                plan.stopped = True
                break
        ledger.read(plan.label, read)
        plan.read += read
        kept.chunks.append((number, used, spooled))
    return kept


def _keep(kept: Kept, outcome: tuple, source_index: int, plan: Plan, ledger: Ledger, seen_ids: set[str]) -> None:
    _, conv_id, changed, rank, prompt_key, stratum, n_records, multi, prompt_len, reply_len = outcome
    for rule in changed:
        ledger.note_changed(rule)
    repeated = conv_id in seen_ids
    seen_ids.add(conv_id)
    kept.ids.append(conv_id)
    kept.repeated_id.append(1 if repeated else 0)
    kept.source.append(source_index)
    kept.rank.append(rank)
    kept.prompt_key.append(prompt_key)
    kept.stratum.append(kept.strata.setdefault(stratum or f"source:{plan.label}", len(kept.strata)))
    kept.records.append(n_records)
    kept.multi.append(1 if multi else 0)
    kept.prompt_len.append(prompt_len)
    kept.reply_len.append(reply_len)


def _drop_chunk(spool: str, number: int) -> None:
    for suffix in (".conv", ".train", ".held", ".items"):
        Path(spool, f"{number}{suffix}").unlink(missing_ok=True)


# ------------------------------------------------------------------ split


def heldout_rows(kept: Kept, plans: list[Plan], settings: SplitSettings) -> bytearray:
    """The held-out choice (instruct_data.split) over the kept rows' keys."""
    if settings.by == "source":
        groups, names = kept.source, {p.index: f"source:{p.label}" for p in plans}
    else:
        groups, names = kept.stratum, {index: name for name, index in kept.strata.items()}
    return choose_heldout(settings, groups=groups, names=names, ranks=kept.rank, prompt_keys=kept.prompt_key,
                          skip=kept.repeated_id)


# ------------------------------------------------------------------ dedupe


def _spooled_items(spool: str, kept: Kept, heldout: bytearray):
    from instruct_data.dedupe import Item

    order = 0
    for number, used, _ in kept.chunks:
        with open(os.path.join(spool, f"{number}.items"), "rb") as fh:
            items = pickle.load(fh)
        for prompt, reply in items[:used]:
            if not kept.repeated_id[order]:
                # kept.ids[order] is the spooled id; reusing that string object saves a copy per row.
                yield Item(kept.ids[order], prompt, reply, order, bool(heldout[order]))
            order += 1


def benchmark_questions(paths: list[str]) -> list[str]:
    """The questions of benchmark files (any format the readers know): what training must not contain."""
    questions = []
    for path in expand_inputs(paths):
        _, stream = read_conversations(str(path), source="against")
        questions += [result.prompt.full_text for _, result in stream if not isinstance(result, Rejected)]
    return questions


def find_removals(spool: str, kept: Kept, heldout: bytearray, settings, workers: int,
                  against: list[str] = ()) -> dict[str, Any]:
    """id -> Removal for every kept row dedupe removes (held-out rows are protected)."""
    if not (settings.exact or settings.near or against) or not len(kept):
        return {}
    from instruct_data.dedupe import find_duplicates

    # Fingerprints over processes pay off once there are enough rows to cover the start-up.
    dedupe_workers = workers if len(kept) >= 20_000 else 1
    removals = find_duplicates(_spooled_items(spool, kept, heldout), settings, against=against,
                               workers=dedupe_workers)
    return {removal.id: removal for removal in removals}


# ------------------------------------------------------------------ pass 2: the outputs


TRAIN, HELDOUT = 1, 2


class _Outputs:
    """The three data files of a build, and where each kept row went (counted at the end)."""

    def __init__(self, work: Path, kept: Kept, plans: list[Plan], ledger: Ledger):
        self.kept, self.plans, self.ledger = kept, plans, ledger
        # Binary: the spooled lines are already UTF-8 and are copied without decoding.
        self.train = open(work / "train.jsonl", "wb")
        self.held = open(work / "heldout.jsonl", "wb")
        self.convs = open(work / "conversations.jsonl", "wb")
        self.dest = bytearray(len(kept))  # TRAIN or HELDOUT per kept row; 0: rejected or removed

    def close(self) -> None:
        for fh in (self.train, self.held, self.convs):
            fh.close()

    def summary(self) -> dict[str, Any]:
        """Counts per source, the ledger's `written`, length histograms and categories, with numpy."""
        import numpy as np

        kept = self.kept
        dest = np.frombuffer(bytes(self.dest), dtype=np.uint8)
        train = dest == TRAIN
        source = np.frombuffer(kept.source, dtype=np.uint16)
        per_source = {}
        for where, mask in (("train", train), ("heldout", dest == HELDOUT)):
            counts = np.bincount(source[mask], minlength=len(self.plans))
            per_source[where] = {self.plans[i].label: int(n) for i, n in enumerate(counts) if n}
        for plan in self.plans:
            written = per_source["train"].get(plan.label, 0) + per_source["heldout"].get(plan.label, 0)
            if written:
                self.ledger.written(plan.label, written)
        edges = np.array(LENGTH_BINS[1:])
        lengths = {}
        for name, values in (("instruction_length", kept.prompt_len), ("reply_length", kept.reply_len)):
            bins = np.searchsorted(edges, np.frombuffer(values, dtype=np.uint32)[train], side="right")
            lengths[name] = [int(n) for n in np.bincount(bins, minlength=len(LENGTH_BINS))]
        strata = {index: name for name, index in kept.strata.items()}
        categories: Counter = Counter()
        by_stratum = np.bincount(np.frombuffer(kept.stratum, dtype=np.uint32)[train], minlength=len(strata))
        for index, n in enumerate(by_stratum):
            if n:
                categories["(none)" if strata[index].startswith("source:") else strata[index]] += int(n)
        records = int(np.frombuffer(kept.records, dtype=np.uint32)[train].sum())
        return {
            "split": {
                "train": dict(sorted(per_source["train"].items())),
                "heldout": dict(sorted(per_source["heldout"].items())),
                "train_records": records,
            },
            "stats": {
                "length_bins": list(LENGTH_BINS),
                **lengths,
                "categories": dict(sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
        }


def write_outputs(work: Path, spool: str, kept: Kept, heldout: bytearray, removed: dict, plans: list[Plan],
                  ledger: Ledger) -> dict[str, Any]:
    """Pass 2: copy the spooled lines of every kept row to train, heldout or the duplicates, in order."""
    out = _Outputs(work, kept, plans, ledger)
    try:
        start = 0
        for number, used, spooled in kept.chunks:
            base = os.path.join(spool, str(number))
            rows = range(start, start + used)
            plain = used == spooled and not any(
                heldout[i] or kept.repeated_id[i] or kept.ids[i] in removed for i in rows)
            if plain:
                _copy_chunk(base, rows, out)  # the usual case: every row of the chunk goes to train
            else:
                _write_chunk(base, rows, out, heldout, removed)
            start += used
    finally:
        out.close()
    return out.summary()


def _copy_chunk(base: str, rows: range, out: _Outputs) -> None:
    for suffix, target in ((".conv", out.convs), (".train", out.train)):
        with open(base + suffix, "rb") as fh:
            shutil.copyfileobj(fh, target, 1 << 20)
    out.dest[rows.start:rows.stop] = bytes([TRAIN]) * len(rows)


def _spooled_lines(path: str) -> list[bytes]:
    """A spool file's lines (UTF-8 bytes, newline kept). JSON lines hold no raw newline byte."""
    with open(path, "rb") as fh:
        return fh.readlines()


def _write_chunk(base: str, rows: range, out: _Outputs, heldout: bytearray, removed: dict) -> None:
    kept, ledger = out.kept, out.ledger
    conv_lines, train_lines = _spooled_lines(base + ".conv"), _spooled_lines(base + ".train")
    held_lines = _spooled_lines(base + ".held") if any(kept.multi[i] for i in rows) else []
    conv_out, train_out = [], []
    record = held = 0
    for n, i in enumerate(rows):
        label = out.plans[kept.source[i]].label
        conv_line = conv_lines[n]
        records = train_lines[record:record + kept.records[i]]
        record += kept.records[i]
        if kept.multi[i]:
            last = held_lines[held]
            held += 1
        else:
            last = records[-1]
        removal = removed.get(kept.ids[i])
        if kept.repeated_id[i]:
            conversation = json.loads(conv_line)
            ledger.reject("read", "duplicate_id", f"id {kept.ids[i]!r} is already used by an earlier row",
                          _origin_text(conversation), conversation, source=label, row_id=kept.ids[i])
        elif removal is not None:
            conversation = json.loads(conv_line)
            ledger.duplicate(row_id=removal.id, duplicate_of=removal.duplicate_of, method=removal.method,
                             similarity=removal.similarity, source=label, cluster=removal.cluster,
                             origin=_origin_text(conversation), raw=conversation)
        elif heldout[i]:
            out.held.write(last)
            out.dest[i] = HELDOUT
        else:
            conv_out.append(conv_line)
            train_out.extend(records)
            out.dest[i] = TRAIN
    out.convs.writelines(conv_out)
    out.train.writelines(train_out)


def _origin_text(conversation: dict) -> str | None:
    origin = conversation.get("origin")
    return str(Origin(**origin)) if origin else None


# ------------------------------------------------------------------ the build


def estimate_rows(recipe: Recipe) -> int | None:
    """About how many rows a build will read, for a progress bar: limits and caps, the card's
    row counts for Belle, and for JSON-lines files their size over the mean size of their first lines."""
    from instruct_data import hub

    total = 0
    for source in recipe.sources:
        if source.belle is not None:
            guess = hub.SUBSETS[source.belle].rows
        else:
            guess = 0
            try:
                paths = expand_inputs(source.files)
            except IdataError:
                return None
            for path in paths:
                if base_suffix(path) not in JSON_SUFFIXES or path.suffix.lower() == ".gz":
                    return None
                with open(path, "rb") as fh:
                    head = fh.readlines(1 << 18)
                if head:
                    guess += round(path.stat().st_size / (sum(map(len, head)) / len(head)))
        for bound in (source.limit, source.cap):
            if bound is not None:
                guess = min(guess, bound) if guess else bound
        total += guess
    return total or None


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def build(recipe: Recipe, out_dir: str | os.PathLike, *, workers: int | None = None,
          on_row: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run a recipe into `out_dir`; returns the manifest. Nothing changes at `out_dir` unless it all succeeds."""
    from instruct_data import hub

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise BuildError(f"{out}: folder holds other files and no manifest.json; give an empty or new folder")
    workers = default_workers() if workers is None else max(1, workers)
    plans = plan_sources(recipe)  # fails before anything is written
    try:
        against = benchmark_questions(recipe.against) if recipe.against else []
    except IdataError as exc:
        raise RecipeError(f"against: {exc}") from None
    template = get_template(recipe.template)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the outputs are an ordinary folder
    try:
        spool = str(work / ".spool")
        os.mkdir(spool)
        state = WorkerState(Cleaner(recipe.clean), template, recipe.multiturn, recipe.system, recipe.seed, spool,
                            [p.label for p in plans])
        ledger = Ledger(work, command="build", parameters={
            "recipe": recipe.resolved(),
            "template": template.to_dict(),
            "cleaning_rules": state.cleaner.enabled,
        })
        for plan in plans:
            if plan.subset is not None:
                ledger.add_remote_input(source=plan.label, **hub.describe(plan.subset, plan.source.from_,
                                                                         plan.source.revision))
            for file in plan.files:
                ledger.add_input(file.path, source=plan.label, format=file.fmt, map=file.mapping)
        for path in expand_inputs(recipe.against):
            ledger.add_input(path, role="against", questions=len(against))
        kept = clean_pass(plans, state, ledger, workers=workers, strict=recipe.strict, on_row=on_row)
        for plan in plans:
            _check_reject_rate(ledger, plan)
        heldout = heldout_rows(kept, plans, recipe.split)
        removed = find_removals(spool, kept, heldout, recipe.dedupe, workers, against)
        summary = write_outputs(work, spool, kept, heldout, removed, plans, ledger)
        shutil.rmtree(spool)
        ledger.extra.update({
            "template": template.name,
            "sources": [_source_summary(plan) for plan in plans],
            **summary,
        })
        manifest = ledger.finish(outputs=[work / name for name in ("train.jsonl", "heldout.jsonl",
                                                                   "conversations.jsonl")])
        from instruct_data.report import write_report

        write_report(work, manifest)
        _replace_folder(work, out)
        return manifest
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _check_reject_rate(ledger: Ledger, plan: Plan) -> None:
    """The rejects are not written when the build fails, so the error names the commonest reasons."""
    try:
        check_reject_rate(ledger, plan.label, plan.max_reject_rate)
    except RejectRateError as exc:
        reasons = sorted(((per.get(plan.label, 0), reason) for reason, per in ledger.reasons.items()), reverse=True)
        top = ", ".join(f"{reason} {n:,}" for n, reason in reasons[:3] if n)
        raise RejectRateError(f"{exc} (most rejected: {top})") from None


def _source_summary(plan: Plan) -> dict[str, Any]:
    info = {"name": plan.label, "kind": "belle" if plan.subset is not None else "files", "read": plan.read,
            "kept_after_cleaning": plan.kept, "cap": plan.cap, "limit": plan.limit,
            "stopped_at_cap": plan.stopped}
    if plan.subset is not None:
        info["subset"] = plan.subset.name
    else:
        info["formats"] = sorted({f.fmt for f in plan.files})
    return info


def _replace_folder(work: Path, out: Path) -> None:
    """Swap the finished folder into place; the old outputs go only once the new ones are there."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
