"""Pieces -> input_ids and labels, with the model's real end token, cached on disk.

    ids    = [special prefix] + context + target + EOS
    labels = -100 ...           -100 ...  target + EOS

The prompt is tokenized as one string, exactly as evaluation tokenizes it (see `Encoder`);
over `max_len` an example is fitted as `truncate.py` says (earlier rounds, then the middle of
the question, then the end of the reply, with no EOS after a cut reply). Tokenization is batched with the fast tokenizer,
spread over the cores by idata's WorkerPool (spawned processes, see below), and saved under a key made of the
data's hash, the tokenizer, the template, the end token and the length, so a second run loads it at once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from instruct_data.errors import IdataError
from instruct_data.io import file_sha256
from instruct_data.templates import AnyTemplate, NativeTemplate, PromptLayout, prompt_layout
from instruct_data.tokens import Encoded, PromptPrefix, encode_texts
from instruct_data.training.truncate import Example, cut_question, drop_rounds, reply_cut

IGNORE = -100
# Bump when the encoding below changes: old caches then stop matching.
ENCODING_VERSION = 6  # 2: one tokenization, truncation that keeps meaning; 3: int32 files; 4: skipped is not truncated;
# 5: an example is one string (prompt and reply together), replies are the template's own text, per-reply column;
# 6: a bad row is a rejected example (its file:line reason in a column), not an error for the whole file
MAX_REJECT_RATE = 0.5  # as `idata build`'s default: more rejected rows than this almost always means a wrong file
REJECTS_SHOWN = 5


@dataclass(frozen=True)
class EndToken:
    token: str
    id: int
    why: str


def _as_list(value) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def resolve_eos(tokenizer, generation_eos, template: AnyTemplate, override: str | None = None) -> EndToken:
    """The token every reply ends with, checked against the tokenizer and the generation config.

    A chat template whose replies close with a special token (ChatML `<|im_end|>`, Llama 3
    `<|eot_id|>`) ends them with that token; otherwise the tokenizer's EOS, which must be one
    the generation config stops on (else the tuned model would never stop).
    """
    vocab = tokenizer.get_vocab()
    gen_ids = _as_list(generation_eos)
    if override:
        if override not in vocab:
            raise IdataError(f"--eos-token {override!r} is not a single token of this tokenizer")
        return EndToken(override, vocab[override], "--eos-token")
    special = set(tokenizer.all_special_tokens) | {str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values()}
    for stop in template.stop:
        if stop in vocab and stop in special:
            return EndToken(stop, vocab[stop], f"the {template.name} template closes replies with it")
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        if not gen_ids:
            raise IdataError("the model has no end-of-sequence token in its tokenizer or generation config; "
                             "pass --eos-token")
        eos_id = gen_ids[0]
        return EndToken(tokenizer.convert_ids_to_tokens(eos_id), eos_id, "the generation config's eos_token_id")
    if gen_ids and eos_id not in gen_ids:
        # The tokenizer and the generation config disagree: train on the one generation stops at.
        eos_id = gen_ids[0]
        return EndToken(tokenizer.convert_ids_to_tokens(eos_id), eos_id,
                        "the generation config's eos_token_id (the tokenizer's EOS is not one it stops on)")
    return EndToken(tokenizer.eos_token, eos_id, "the tokenizer's EOS, which the generation config stops on"
                    if gen_ids else "the tokenizer's EOS")


class Encoder:
    """The tokenizing function: a batch of pieces -> ids, labels, length, truncated, skipped.

    Each example's pieces join into the one string the template renders, tokenized once: its
    ids are the template's ids, token for token (a reply that starts with "\\n" after a prompt
    ending in "\\n" trains the merged "\\n\\n" token the one string gives). The supervised pieces
    are found in it by character offsets (the fast tokenizer's offset mapping): every token
    overlapping one is trained, and so is the end token right after one (ChatML's `<|im_end|>`
    in a built-in template's history). The end token is added after the final reply unless the
    template's own text already closes it with that token (a chat template's `<|im_end|>\\n`).
    """

    def __init__(self, tokenizer, eos: EndToken, max_len: int, too_long: str, layout: PromptLayout | None = None,
                 native: bool = False):
        self.tokenizer = tokenizer
        self.eos = eos
        self.max_len = max_len
        self.too_long = too_long
        self.layout = layout or PromptLayout("", "", "")
        self.prefix = PromptPrefix(tokenizer, native=native)

    def __call__(self, batch: dict) -> dict:
        reasons = list(batch.get("rejected") or [""] * len(batch["texts"]))
        examples = [Example.from_pieces(t, f) if not why else None
                    for t, f, why in zip(batch["texts"], batch["supervised"], reasons)]
        found = iter(self._tokenize([e.prompt + e.reply for e in examples if e is not None]))  # one string an example
        out = {"input_ids": [], "labels": [], "length": [], "truncated": [], "skipped": [],
               "per_reply": list(batch.get("per_reply") or [0] * len(examples)), "rejected": reasons}
        for example in examples:
            # A rejected row stays as an empty, skipped example: counted with its reason, never trained.
            ids, labels, truncated, skipped = self.encode(example, next(found)) if example else ([], [], False, True)
            out["input_ids"].append(ids)
            out["labels"].append(labels)
            out["length"].append(len(ids))
            out["truncated"].append(truncated)
            out["skipped"].append(skipped)
        return out

    def _tokenize(self, texts: list[str]) -> list[Encoded]:
        return encode_texts(self.tokenizer, texts)  # offsets are read only for rows that need them

    def encode(self, example: Example, encoded: Encoded):
        """(ids, labels, truncated, skipped) for one example: `encoded` is its whole text's tokens."""
        prefix = self.prefix.ids_for(example.prompt)
        room = self.max_len - len(prefix)
        close = self._closing(example)
        if len(encoded.ids) + len(close) <= room:
            return self._assemble(prefix, example, encoded, len(encoded.ids), close) + (False, False)
        if self.too_long == "skip":
            return [], [], False, True
        # The prompt gives up no more than half the room when the reply is what is long.
        start = encoded.first_token_after(len(example.prompt))
        target = min(start, max(room - (len(encoded.ids) - start) - len(close), room // 2))
        example, encoded = self._shorten(example, encoded, target, drop_rounds)
        example, encoded = self._shorten(example, encoded, target, cut_question)
        start = encoded.first_token_after(len(example.prompt))
        left = room - start
        if left < 1:
            return [], [], False, True  # header, system block and the question's last sentence alone are too long
        if len(encoded.ids) - start + len(close) <= left:
            return self._assemble(prefix, example, encoded, len(encoded.ids), close) + (True, False)
        keep = reply_cut(encoded.offsets[start:], left)
        if keep < 1:
            return [], [], False, True
        return self._assemble(prefix, example, encoded, start + keep, []) + (True, False)  # cut: no end token

    def _closing(self, example: Example) -> list[int]:
        """The end token to add after the final reply: none when the template's text closes it with it."""
        return [] if example.reply.rstrip().endswith(self.eos.token) else [self.eos.id]

    def _shorten(self, example: Example, encoded: Encoded, target: int, step) -> tuple[Example, Encoded]:
        for _ in range(4):  # a cut can change how the text around it tokenizes: measure again
            start = encoded.first_token_after(len(example.prompt))
            if start <= target:
                break
            shorter = step(example, encoded, self.layout, start - target)
            if shorter is None:
                break
            example, encoded = shorter, self._tokenize([shorter.prompt + shorter.reply])[0]
        return example, encoded

    def _assemble(self, prefix: list[int], example: Example, encoded: Encoded, upto: int, close: list[int]):
        labels = [IGNORE] * len(prefix) + self._labels(example, encoded, upto) + close
        return prefix + encoded.ids[:upto] + close, labels

    def _labels(self, example: Example, encoded: Encoded, upto: int) -> list[int]:
        """The first `upto` tokens' labels: every token overlapping a supervised piece, and the end
        token right after one."""
        ids = encoded.ids[:upto]
        if not example.spans:  # one reply, at the end: no offsets list needed
            start = encoded.first_token_after(len(example.prompt))
            return [IGNORE] * start + ids[start:]
        spans = [*example.spans, (len(example.prompt), len(example.prompt) + len(example.reply))]
        ends = {end for _, end in spans}
        labels, span = [IGNORE] * len(ids), 0
        for index, (token, (start, end)) in enumerate(zip(ids, encoded.offsets)):
            if token == self.eos.id and start in ends:
                labels[index] = token  # ChatML's <|im_end|> right after a reply: the model learns to stop
                continue
            while span < len(spans) and start >= spans[span][1]:
                span += 1
            if span == len(spans):
                break
            if end > spans[span][0] or (start == end and start >= spans[span][0]):  # (an empty offset inside)
                labels[index] = token
        return labels


def tokenizer_fingerprint(tokenizer) -> str:
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update(backend.to_str().encode() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cache_key(data_path: Path, kind: str, tokenizer, template: AnyTemplate, eos: EndToken, max_len: int,
              too_long: str, variant: str | None = None) -> str:
    parts = {
        "version": ENCODING_VERSION, "data": file_sha256(data_path), "kind": kind,
        "tokenizer": tokenizer_fingerprint(tokenizer), "template": template.to_dict(),
        "eos": eos.id, "max_len": max_len, "too_long": too_long, "variant": variant,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    return Path(os.environ.get("IDATA_CACHE", Path.home() / ".cache" / "idata")) / "tokenized"


@dataclass
class Tokenized:
    dataset: object  # datasets.Dataset with input_ids, labels, length
    rows: int
    truncated: int
    skipped: int
    cached: bool
    path: Path
    lengths: object  # numpy int array, one per example: read once, for length-grouped batches and the report
    per_reply_rows: int = 0  # dialogues trained one example per reply (a template not prefix-stable over them)
    per_reply_examples: int = 0  # the examples they gave
    rejected: int = 0  # rows that could not be trained (unparseable, not a record)
    rejects: list = field(default_factory=list)  # the first few, as file:line: what is wrong

    def select(self, count: int) -> None:
        """Keep the first `count` examples."""
        self.dataset = self.dataset.select(range(count))
        self.lengths = self.lengths[:count]


LENGTHS_FILE = "lengths.npy"


KEPT_FILE = "kept.npy"  # the rows not skipped, when some were


def _load(path: Path, stats: dict, cached: bool) -> Tokenized:
    """The cache entry's Arrow files, memory-mapped (no copy, flat memory), and its lengths array."""
    import datasets
    import numpy as np

    parts = [datasets.Dataset.from_file(str(path / "data" / name)) for name in stats["files"]]
    dataset = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if (path / KEPT_FILE).is_file():
        dataset = dataset.select(np.load(path / KEPT_FILE))
    return Tokenized(dataset, stats["rows"], stats["truncated"], stats["skipped"], cached, path,
                     np.load(path / LENGTHS_FILE), stats.get("per_reply_rows", 0), stats.get("per_reply_examples", 0),
                     stats.get("rejected", 0), stats.get("rejects", []))


def tokenize_file(data_path: Path, kind: str, examples_loader, tokenizer, template: AnyTemplate, eos: EndToken,
                  max_len: int, too_long: str, cache_dir: str | Path | None, num_proc: int | None,
                  variant: str | None = None, block_reader=None) -> Tokenized:
    """Load the tokenized data from the cache, or tokenize `examples_loader()` and cache it.

    With a `block_reader` (data.BlockReader) a large JSON-lines file is read and tokenized in
    one pass, each process reading its own blocks of the file: reading is spread over the
    cores too, and no intermediate copy of the text is written.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / cache_key(data_path, kind, tokenizer, template, eos, max_len, too_long, variant)
    stats_file = path / "idata_stats.json"
    if stats_file.is_file():
        return _load(path, json.loads(stats_file.read_text(encoding="utf-8")), cached=True)
    remove_dead_entries(root)
    # Written beside, then renamed: a cache entry is complete or absent (another rank may be reading).
    tmp = path.with_name(f"{path.name}{TMP_MARK}{_host()}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "data").mkdir(parents=True)
    encoder = Encoder(tokenizer, eos, max_len, too_long, layout=prompt_layout(template),
                      native=isinstance(template, NativeTemplate))
    blocks = _blocks(data_path, block_reader, num_proc)
    try:
        if blocks:
            encoded = _encode_blocks(blocks, block_reader, encoder, tmp / "data", num_proc, data_path)
        else:
            encoded = _encode_stream(examples_loader, encoder, tmp / "data", num_proc, data_path)
        _save(encoded, data_path, path, tmp, encoder.max_len)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _load(path, json.loads(stats_file.read_text(encoding="utf-8")), cached=False)


BLOCK_BYTES = 4 * 2**20  # a block of a large file that one tokenizing process reads (~10k Belle rows)
STREAM_TASK_ROWS = 10_000  # rows of a file read in one stream that one task tokenizes
TMP_MARK = ".tmp-"  # KEY.tmp-HOST-PID: a cache entry being written


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def remove_dead_entries(root: Path) -> None:
    """Remove the half-written cache entries of runs on this machine that no longer run
    (killed, or the machine lost power): their pid is gone. Another machine's entries, on a
    shared cache, are left to it."""
    host = _host()
    for entry in root.glob(f"*{TMP_MARK}{host}-*"):
        pid = entry.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
    for entry in root.glob(".build-*-*"):  # the datasets cache folders of versions before 0.1.1
        pid = entry.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _blocks(data_path: Path, block_reader, num_proc: int | None) -> list | None:
    """The file's blocks when it is worth reading in parallel (two or more, more than one core)."""
    if block_reader is None or (num_proc or _cores()) < 2:
        return None
    from instruct_data.training.data import file_blocks

    blocks = file_blocks(data_path, BLOCK_BYTES)
    return blocks if blocks and len(blocks) >= 2 else None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# ------------------------------------------------------------------ the tokenizing processes
#
# idata's own WorkerPool, not datasets' multiprocess pool: the train process already runs
# threads (torch, tokenizers), so its workers are spawned, not forked; they ignore Ctrl-C, die
# on SIGTERM and with their parent (even one killed by SIGKILL), and are killed, not waited
# for, when the parent is interrupted (a datasets worker inherited the CLI's SIGTERM handler and
# the pool's terminate waited on it forever). Each task writes its rows to its own Arrow file in
# the cache entry being built, in task order: the entry is those files, concatenated.

_WORKER: dict = {}


def _init_worker(encoder: Encoder, reader, folder: Path) -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core per process: the processes are the parallelism
    _WORKER.update(encoder=encoder, reader=reader, folder=folder)


def _encode_task(task: tuple) -> tuple[str, int]:
    """(number, block or list of pieces) -> (its Arrow file's name, rows written)."""
    from datasets.arrow_writer import ArrowWriter

    from instruct_data.io import chunked
    from instruct_data.training.data import per_reply, rejected

    number, work = task
    encoder, folder = _WORKER["encoder"], _WORKER["folder"]
    pieces = _WORKER["reader"](work) if _WORKER["reader"] is not None else work
    name = f"part-{number:05d}.arrow"
    writer = ArrowWriter(features=_encoded_features(), path=str(folder / name))
    try:
        for batch in chunked(pieces, 1000):
            writer.write_batch(encoder({"texts": [[t for t, _ in p] for p in batch],
                                        "supervised": [[s for _, s in p] for p in batch],
                                        "rejected": [rejected(p) for p in batch],
                                        "per_reply": [per_reply(p) for p in batch]}))
        rows, _ = writer.finalize()
    finally:
        writer.close()
    return name, rows


def _run_tasks(tasks, workers: int, encoder: Encoder, reader, folder: Path, progress) -> list[str]:
    """The tasks' Arrow files, in task order; `progress(task_result)` after each."""
    from instruct_data.parallel import WorkerPool

    names = []
    with WorkerPool(workers, _init_worker, (encoder, reader, folder), start_method="spawn") as pool:
        for name, rows in pool.map(_encode_task, enumerate(tasks)):
            names.append(name)
            progress(rows)
    return names


def _open(folder: Path, names: list[str]):
    import datasets

    parts = [datasets.Dataset.from_file(str(folder / name)) for name in names]
    return datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _encode_blocks(blocks: list, reader, encoder: Encoder, folder: Path, num_proc: int | None, data_path: Path):
    """Each process reads and tokenizes whole blocks of the file (no copy of the text between)."""
    from instruct_data.progress import Progress

    workers = min(num_proc or _cores(), len(blocks))
    total = sum(size for _, _, size in blocks)
    sizes = iter([size for _, _, size in blocks])
    with Progress(f"tokenizing {data_path.name}", total=total, unit="bytes") as progress:
        names = _run_tasks(blocks, workers, encoder, reader, folder,
                           lambda rows: progress.advance(next(sizes), rows=rows))
    return _open(folder, names)


def _encode_stream(examples_loader, encoder: Encoder, folder: Path, num_proc: int | None, data_path: Path):
    """A file read in one stream (gzip, a JSON array, a small file): tasks of STREAM_TASK_ROWS rows,
    tokenized here when there is one, else by `num_proc` processes (default: the cores)."""
    from instruct_data.io import chunked
    from instruct_data.progress import Progress

    tasks = chunked(examples_loader(), STREAM_TASK_ROWS)
    first = next(tasks, None)
    second = next(tasks, None) if first is not None else None
    if first is None:
        raise IdataError(f"{data_path}: no rows to train on")
    workers = 1 if second is None else (num_proc or _cores())
    pending = (chunk for chunk in (first, second) if chunk is not None)
    with Progress(f"tokenizing {data_path.name}", unit="rows") as progress:
        names = _run_tasks(itertools.chain(pending, tasks), workers, encoder, None, folder,
                           lambda rows: progress.advance(rows, rows=rows))
    return _open(folder, names)


def _save(encoded, data_path: Path, path: Path, tmp: Path, max_len: int) -> None:
    """Counts, the lengths array and the Arrow files into `tmp`, renamed to the cache entry `path`."""
    import numpy as np
    import pyarrow.compute as pc

    # Whole columns through Arrow and numpy: a Python loop over a datasets column of 1M rows costs minutes.
    table = encoded.data
    truncated = int(pc.sum(table.column("truncated")).as_py() or 0)
    marks = table.column("per_reply").to_numpy()
    skipped_mask = table.column("skipped").to_numpy(zero_copy_only=False)
    reasons = table.column("rejected")
    rejected_at = np.flatnonzero(pc.not_equal(reasons, "").to_numpy(zero_copy_only=False))
    rejects = [reasons[int(i)].as_py() for i in rejected_at[:REJECTS_SHOWN]]
    if len(rejected_at) > MAX_REJECT_RATE * len(skipped_mask):
        raise IdataError(f"{data_path}: {len(rejected_at):,} of {len(skipped_mask):,} rows cannot be trained "
                         f"(first: {rejects[0]}); is it the right file? `idata validate {data_path}` lists them")
    kept = np.flatnonzero(~skipped_mask)
    if len(kept) == 0:
        raise IdataError(f"{data_path}: every row is longer than --max-len {max_len}; raise --max-len "
                         "or use --too-long truncate")
    np.save(tmp / LENGTHS_FILE, table.column("length").to_numpy()[kept].astype(np.int32))
    if len(kept) < len(skipped_mask):
        np.save(tmp / KEPT_FILE, kept)  # the skipped rows stay in the files, unread
    files = [Path(f["filename"]) for f in encoded.cache_files]
    del encoded, table  # (their memory maps of the files about to move)
    for file in files:
        if file.parent != tmp / "data":
            shutil.move(str(file), tmp / "data" / file.name)
    stats = {"rows": len(skipped_mask), "truncated": truncated,
             "skipped": int(len(skipped_mask) - len(kept) - len(rejected_at)),
             "rejected": int(len(rejected_at)), "rejects": rejects,
             "per_reply_rows": int((marks == 1).sum()), "per_reply_examples": int((marks > 0).sum()),
             "data": str(data_path), "files": [f.name for f in files]}
    (tmp / "idata_stats.json").write_text(json.dumps(stats), encoding="utf-8")
    try:
        os.replace(tmp, path)
    except OSError:  # someone else wrote the same entry first: theirs is identical
        pass


def _encoded_features():
    import datasets

    ids = datasets.List(datasets.Value("int32"))
    return datasets.Features({"input_ids": ids, "labels": ids, "length": datasets.Value("int32"),
                              "truncated": datasets.Value("bool"), "skipped": datasets.Value("bool"),
                              "per_reply": datasets.Value("int8"),  # data.per_reply: 0 whole row, 1 first, 2 later
                              "rejected": datasets.Value("string")})  # why a bad row was not trained, or ""
