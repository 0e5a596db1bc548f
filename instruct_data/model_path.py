"""A model named on the command line: a local folder, or a hub id ("org/name").

`--model models/tinyy` (a typo) used to reach the hub and fail with a connection error, which
says nothing about the typo. A name is taken as a local folder when it looks like a path
(starts with `.`, `/` or `~`, has more than one `/`, or a backslash) or when its parent folder
exists here (`models/` beside the user): then a missing folder is reported as such.

An adapter folder (`--adapter` of merge and eval) is checked by `check_adapter` before any
model loads: without it a folder with no weights failed only after the base model had loaded,
in peft's words (merge even blamed its --out), and a damaged adapter_config.json as a bare
JSON message naming no file.
"""

from __future__ import annotations

import json
from pathlib import Path

from instruct_data.errors import IdataError, InputError

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")  # what peft loads; idata writes the first


def meant_as_folder(name: str) -> bool:
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return True
    parent = Path(name).expanduser().parent
    return str(parent) not in ("", ".") and parent.is_dir()


def check_model(name: str, option: str = "--model") -> None:
    """Fail with "no such folder" for a local model folder that is not there (hub ids pass)."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise IdataError(f"{option} {name}: a file, not a model folder")
        return
    if meant_as_folder(name):
        raise IdataError(f"{option} {name}: no such folder (a local model folder; a hub model is named org/name)")


def adapter_config(folder: str | Path) -> dict:
    """An adapter folder's adapter_config.json (peft's settings: its base model, rank, layers)."""
    path = Path(folder) / ADAPTER_CONFIG
    if not path.is_file():
        raise InputError(str(folder), f"no {ADAPTER_CONFIG} (is this the output folder of `idata train`?)")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if not isinstance(settings, dict):
        raise InputError(str(path), "not a JSON object")
    return settings


def check_adapter(folder: str | Path) -> dict:
    """An adapter folder's settings, once its config and weights are known to be there: a
    stopped run's folder has no weights yet, only checkpoints."""
    settings = adapter_config(folder)
    if not any((Path(folder) / name).is_file() for name in ADAPTER_WEIGHTS):
        raise InputError(str(folder), f"no {ADAPTER_WEIGHTS[0]} (the adapter's weights: `idata train` writes them "
                                      "when a run completes; a stopped run continues with --resume)")
    return settings
