"""A model named on the command line: a local folder, or a hub id ("org/name").

`--model models/tinyy` (a typo) used to reach the hub and fail with a connection error, which
says nothing about the typo. A name is taken as a local folder when it looks like a path
(starts with `.`, `/` or `~`, has more than one `/`, or a backslash) or when its parent folder
exists here (`models/` beside the user): then a missing folder is reported as such.
"""

from __future__ import annotations

from pathlib import Path

from instruct_data.errors import IdataError


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
