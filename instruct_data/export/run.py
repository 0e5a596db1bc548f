"""export(build, to, out): read the build once, write one target, atomically, with a manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from instruct_data import __version__
from instruct_data.errors import IdataError
from instruct_data.export.build import BuildData, read_build
from instruct_data.io import file_sha256, write_json
from instruct_data.outputs_guard import OutputError

TARGETS = ("llama-factory", "hf", "openai")


def export(build: str | os.PathLike, to: str, out: str | os.PathLike, *, name: str | None = None,
           license_id: str | None = None, split: str = "train", overwrite: bool = False,
           push_to_hub: str | None = None, private: bool = False) -> dict[str, Any]:
    """Export the build folder `build` to `out` as `to`; returns the export's manifest."""
    from instruct_data.outputs_guard import guard_output

    if to not in TARGETS:
        raise IdataError(f"--to {to!r}: choose one of {', '.join(TARGETS)}")
    if name is not None:
        _check_name(name)
    build = Path(build)
    folder = to != "openai"
    if not folder and (str(out).endswith(("/", os.sep)) or Path(out).is_dir()):
        raise IdataError(f"--out {out}: --to openai writes one file; name it (e.g. {Path(out) / 'train.messages.jsonl'})")
    if Path(os.path.realpath(out)).is_relative_to(os.path.realpath(build)):
        # Inside the build folder an export would replace its files or leave a folder a later
        # build into it refuses as not its own.
        raise OutputError(f"--out {out} is inside the build folder {build}: give a path outside it")
    with guard_output(out, [build], command="export" if folder else "export-file", overwrite=overwrite,
                      staged=folder) as target:
        data = read_build(build)
        if not folder:
            return _export_file(data, target, split)
        manifest = _export_folder(data, target, to, name or _dataset_name(build), license_id)
    if push_to_hub:
        from instruct_data.export.hf import push_to_hub as push

        manifest["pushed_to"] = push(Path(out), push_to_hub, private)
    return manifest


def _check_name(name: str) -> None:
    """A dataset name names files inside --out (`NAME_alpaca.jsonl`): `../notes` wrote over a
    user's file beside it, and `a/b` into a folder the next export refused as not its own."""
    if not name or name in (".", "..") or name.startswith(".") or any(ch in name for ch in "/\\\0"):
        raise IdataError(f"--name {name!r}: a dataset name, not a path (letters, digits, '-', '_' and '.'; "
                         "not starting with '.')")


def _dataset_name(build: Path) -> str:
    name = build.resolve().name
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "idata"


def _export_folder(data: BuildData, work: Path, to: str, name: str, license_id: str | None) -> dict[str, Any]:
    """Write the target into `work`, the fresh folder the guard swaps in at --out."""
    if to == "llama-factory":
        from instruct_data.export.llama_factory import write_llama_factory

        counts = write_llama_factory(data, work, name)
    else:
        from instruct_data.export.hf import write_hf

        counts = write_hf(data, work, name, license_id)
    manifest = _manifest(data, to, counts, sorted(p for p in work.rglob("*") if p.is_file()), work)
    write_json(work / "manifest.json", manifest)
    return manifest


def _export_file(data: BuildData, out: Path, split: str) -> dict[str, Any]:
    from instruct_data.export.openai_messages import write_openai
    from instruct_data.outputs_guard import ledger_files

    if split not in data.splits:
        raise IdataError(f"--split {split}: the build held no rows out (build with --heldout to have a "
                         "held-out split)" if split == "heldout" else f"--split {split}: the build has "
                         f"{', '.join(data.splits)}")
    rows = write_openai(data.splits[split], out)
    manifest = _manifest(data, "openai", {split: rows}, [out], out.parent)
    write_json(ledger_files(out)[-1], manifest)
    return manifest


def _manifest(data: BuildData, to: str, counts: dict[str, Any], files: list[Path], base: Path) -> dict[str, Any]:
    return {
        "command": "export",
        "idata_version": __version__,
        "target": to,
        "build": str(data.folder.resolve()),
        "build_manifest_sha256": file_sha256(data.folder / "manifest.json"),
        "build_template": data.template,
        "conversations": {split: len(rows) for split, rows in data.splits.items()},
        "unparsed_heldout": data.unparsed_heldout,
        "counts": counts,
        "outputs": [{"path": str(p.relative_to(base)), "sha256": file_sha256(p), "bytes": p.stat().st_size}
                    for p in files],
    }
