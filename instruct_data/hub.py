"""Belle's releases on the Hugging Face hub: downloaded whole into the cache (`download`, then
read as a local file by the build), or read through `datasets` as a stream (a `--limit`).

    subset = SUBSETS["1M"]
    rows = stream_rows(subset, limit=1000)                  # the hub (never downloads it all)
    rows = stream_rows(subset, from_path="~/belle")          # a local copy, same code path
    for origin, data in rows: ...

The hub files are JSON lines (despite `.json`); `datasets`' "json" builder reads them, from
the hub or from local files alike, and `streaming=True` lets `limit` stop early. Dataset ids,
file names and schemas come from ../shared/BELLE.md.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instruct_data.errors import InputError, IdataError
from instruct_data.schema import Origin


@dataclass(frozen=True)
class Subset:
    name: str  # --subset
    dataset: str  # hub dataset id
    file: str  # the file inside it
    format: str  # reader format for its rows
    dialogue: bool  # holds multi-turn dialogues
    description: str
    rows: int = 0  # about how many rows the dataset card gives (for a progress bar only)
    categories: tuple[str, str] | None = None  # (dataset, file) of its rows' categories, published apart


SUBSETS: dict[str, Subset] = {s.name: s for s in [
    Subset("0.5M", "BelleGroup/train_0.5M_CN", "Belle_open_source_0.5M.json", "belle", False,
           "~0.5M instructions (never cleaned by BELLE)", 500_000),
    Subset("1M", "BelleGroup/train_1M_CN", "Belle_open_source_1M.json", "belle", False, "~1M instructions", 1_000_000),
    Subset("2M", "BelleGroup/train_2M_CN", "train_2M_CN.json", "belle", False, "2M instructions", 2_000_000),
    Subset("3.5M", "BelleGroup/train_3.5M_CN", "train_3.5M_CN.json", "belle_conversations", True,
           "3.6M single- and multi-turn conversations", 3_610_000,
           ("BELLE-2/train_3.5M_CN_With_Category", "train_3.5M_CN_id2category.json")),
    Subset("multiturn", "BelleGroup/multiturn_chat_0.8M", "multiturn_chat_0.8M.json", "belle", True,
           "831k Human:/Assistant: transcripts", 831_000),
    Subset("math", "BelleGroup/school_math_0.25M", "school_math_0.25M.json", "belle", False,
           "248k school math problems with solutions", 248_000),
    Subset("chat", "BelleGroup/generated_chat_0.4M", "generated_chat_0.4M.json", "belle", False,
           "~0.4M generated role-play dialogues (one row: role description -> whole dialogue)", 400_000),
]}


class UnknownSubset(IdataError):
    pass


def get_subset(name: str) -> Subset:
    try:
        return SUBSETS[name]
    except KeyError:
        raise UnknownSubset(f"unknown Belle subset {name!r} (known: {', '.join(SUBSETS)})") from None


def local_file(subset: Subset, from_path: str | os.PathLike) -> Path:
    """The subset's file in a local copy (its first shard, for a copy in shards: local_files)."""
    return local_files(subset, from_path)[0]


def local_categories(subset: Subset, from_path: str | os.PathLike) -> Path | None:
    """The subset's categories file in a local copy, where it is there (BELLE-2 publishes
    train_3.5M_CN's apart): PATH/FILE, PATH/<dataset id>/FILE or PATH/<dataset name>/FILE, PATH
    the copy's folder (or the folder of the copy's file)."""
    if subset.categories is None:
        return None
    dataset, name = subset.categories
    path = Path(from_path).expanduser()
    base = path.parent if path.is_file() else path
    for folder in [*_copy_folders(base, dataset), base.parent / dataset.split("/")[1]]:
        if (folder / name).is_file():
            return folder / name
    return None


def _copy_folders(path: Path, dataset: str) -> list[Path]:
    """Where a local copy may hold a dataset's file: PATH, PATH/<dataset id>, PATH/<dataset name>."""
    return [path, path / dataset, path / dataset.split("/")[1]]


def local_files(subset: Subset, from_path: str | os.PathLike) -> list[Path]:
    """The subset's file in a local copy: PATH itself, PATH/FILE, or PATH/<dataset id>/FILE; or,
    in those folders, the file in shards named as the hub names them (FILE's stem, then
    `-00000-of-00004` and its suffix), in order."""
    path = Path(from_path).expanduser()
    folders = _copy_folders(path, subset.dataset)
    candidates = [path] if path.is_file() else [folder / subset.file for folder in folders]
    for candidate in candidates:
        if candidate.is_file():
            return [candidate]
    stem, suffix = os.path.splitext(subset.file)
    for folder in folders if not path.is_file() else []:
        shards = sorted(folder.glob(f"{glob.escape(stem)}-*-of-*{glob.escape(suffix)}"))
        if shards:
            return shards
    if not path.exists():
        raise InputError(str(path), "no such file or folder")
    raise InputError(str(path), f"no {subset.file} here (looked for {', '.join(str(c) for c in candidates)})")


@dataclass(frozen=True)
class Shard:
    """One shard file of a local copy, with the number of its first row in the whole dataset."""

    dataset: str
    revision: str | None
    path: str
    first_row: int
    rows: int  # rows it holds: its lines with text (datasets skips blank ones)


def shards(subset: Subset, from_path: str | os.PathLike, revision: str | None = None) -> list[Shard]:
    """The shard files of a local copy, each numbered from where the one before ends, so that a
    task per shard gives every row the id a stream of the whole dataset gives it."""
    found, first = [], 1
    for path in local_files(subset, from_path):
        with open(path, "rb") as fh:
            rows = sum(1 for line in fh if line.strip())
        found.append(Shard(subset.dataset, revision, str(path), first, rows))
        first += rows
    return found


def shard_rows(shard: Shard) -> Iterator[tuple[Origin, dict[str, Any]]]:
    """(origin, row) pairs of one shard, read by `datasets` as stream_rows reads the whole copy."""
    import datasets

    datasets.disable_progress_bars()
    count = 0
    try:
        stream = datasets.load_dataset("json", data_files=shard.path, split="train", streaming=True)
        for count, data in enumerate(stream, start=1):
            yield Origin(dataset=shard.dataset, revision=shard.revision, row=shard.first_row + count - 1), _plain(data)
    except IdataError:
        raise
    except Exception as exc:  # as stream_rows
        raise InputError(shard.path, f"cannot read {shard.dataset} ({type(exc).__name__}): {_first_line(exc)}") from None
    if count != shard.rows:
        raise InputError(shard.path, f"datasets read {count} rows from this shard, which has {shard.rows} lines of text")


def describe(subset: Subset, from_path: str | None = None, revision: str | None = None,
             downloaded: str | None = None) -> dict[str, Any]:
    """The manifest's record of where the rows came from (`downloaded`: the hub file's copy in the
    cache, whose hash is recorded)."""
    from instruct_data.io import file_sha256

    info: dict[str, Any] = {"dataset": subset.dataset, "file": subset.file, "subset": subset.name,
                            "revision": revision}
    if downloaded is not None:
        info.update(sha256=file_sha256(Path(downloaded)), bytes=Path(downloaded).stat().st_size)
    if from_path is not None:
        paths = local_files(subset, from_path)
        files = [{"path": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size} for path in paths]
        info.update(files[0] if len(files) == 1 else {"shards": files})
    return info


def open_stream(subset: Subset, from_path: str | None = None, revision: str | None = None):
    """An iterable of row dicts from `datasets`, streaming (nothing is downloaded up front)."""
    import datasets

    datasets.disable_progress_bars()
    if from_path is not None:
        files = [str(path) for path in local_files(subset, from_path)]
        return datasets.load_dataset("json", data_files=files[0] if len(files) == 1 else files, split="train",
                                     streaming=True)
    return datasets.load_dataset(subset.dataset, data_files=subset.file, revision=revision, split="train",
                                 streaming=True)


def stream_rows(subset: Subset, *, from_path: str | None = None, revision: str | None = None,
                limit: int | None = None) -> Iterator[tuple[Origin, dict[str, Any]]]:
    """(origin, row) pairs; `limit` stops reading after that many rows."""
    where = str(local_file(subset, from_path)) if from_path is not None else f"{subset.dataset}/{subset.file}"
    try:
        stream = open_stream(subset, from_path, revision)
        rows = iter(stream)
        if limit is not None:
            rows = itertools.islice(rows, limit)
        for number, data in enumerate(rows, start=1):
            yield Origin(dataset=subset.dataset, revision=revision, row=number), _plain(data)
    except IdataError:
        raise
    except Exception as exc:  # datasets/pyarrow raise many types for an unreachable hub or a bad file
        hint = _offline_hint(subset) if from_path is None and _unreachable(exc) else ""
        raise InputError(where, f"cannot read {subset.dataset} ({type(exc).__name__}): {_first_line(exc)}{hint}") from None


def download(subset: Subset, revision: str | None = None) -> Path:
    """The release's file in the local Hugging Face cache (huggingface_hub.hf_hub_download:
    fetched once, resumed if cut, through HF_ENDPOINT's mirror where set; a later build reads it
    from the cache). A build without --limit reads the whole release anyway: read from a file,
    its rows are cut into byte ranges the workers parse, where a stream is parsed by one process."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(subset.dataset, subset.file, repo_type="dataset", revision=revision))
    except Exception as exc:  # huggingface_hub raises many types for an unreachable hub
        hint = _offline_hint(subset) if _unreachable(exc) else ""
        raise InputError(f"{subset.dataset}/{subset.file}",
                         f"cannot download {subset.dataset} ({type(exc).__name__}): {_first_line(exc)}{hint}") from None


# What `datasets` and `huggingface_hub` raise when the hub cannot be reached (or may not be).
_UNREACHABLE = {"ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectError", "ConnectTimeout",
                "ReadTimeout", "Timeout", "ProxyError", "SSLError"}


def _unreachable(exc: Exception) -> bool:
    return type(exc).__name__ in _UNREACHABLE or "Couldn't reach" in str(exc)


def _offline_hint(subset: Subset) -> str:
    return (f"; without the hub, download {subset.file} from https://huggingface.co/datasets/{subset.dataset} "
            "(or through a mirror: HF_ENDPOINT=https://hf-mirror.com) and pass --from FOLDER")


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """Drop the None that datasets fills in for keys a row does not have."""
    return {k: v for k, v in data.items() if v is not None}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
