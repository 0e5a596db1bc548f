"""What an export reads from a build folder: its manifest and its conversations, per split.

The training split is `conversations.jsonl` (the canonical records). The held-out split is
`heldout_conversations.jsonl` where the build wrote one; an older build has only the rendered
`heldout.jsonl`, whose contexts are parsed back with the template the build recorded
(`templates.parse_prompt`). A context that cannot be parsed back is kept as one user turn and
counted (`unparsed_heldout`), never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from instruct_data.errors import IdataError, InputError
from instruct_data.io import read_rows
from instruct_data.schema import Conversation, Turn


@dataclass
class BuildData:
    folder: Path
    manifest: dict[str, Any]
    splits: dict[str, list[Conversation]] = field(default_factory=dict)
    unparsed_heldout: int = 0

    @property
    def template(self) -> str | None:
        template = self.manifest.get("template")
        return template.get("name") if isinstance(template, dict) else template


def read_build(folder: str | Path) -> BuildData:
    """The manifest and the conversations of each split of a build folder."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(str(folder), "not a build folder (no manifest.json): run `idata build` first")
    manifest = _load_manifest(manifest_path)
    data = BuildData(folder, manifest)
    conversations = folder / "conversations.jsonl"
    if not conversations.is_file():
        raise InputError(str(folder), "a build folder must hold conversations.jsonl")
    data.splits["train"] = list(_conversations(conversations))
    held_conversations, held = folder / "heldout_conversations.jsonl", folder / "heldout.jsonl"
    if _holds_rows(held_conversations):
        data.splits["heldout"] = list(_conversations(held_conversations))
    elif not held_conversations.is_file() and _holds_rows(held):
        data.splits["heldout"] = list(_parsed_heldout(held, data))
    return data


def _holds_rows(path: Path) -> bool:
    """Whether a build's output file exists and is not empty: a build with no held-out split
    writes empty held-out files, and an empty input is an error to io.read_rows."""
    return path.is_file() and path.stat().st_size > 0


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot read the manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("command") != "build":
        raise InputError(str(path), "not the manifest of `idata build`")
    return manifest


def _conversations(path: Path) -> Iterator[Conversation]:
    if not _holds_rows(path):  # every row rejected, removed or held out: an empty split
        return
    for row in read_rows(path):
        if row.data is None:
            raise IdataError(f"{row.origin}: {row.error or 'not a JSON object'}")
        try:
            yield Conversation.model_validate(row.data)
        except ValueError as exc:
            raise IdataError(f"{row.origin}: not a canonical record: {str(exc).splitlines()[0]}") from None


def _parsed_heldout(path: Path, data: BuildData) -> Iterator[Conversation]:
    """Held-out context/target rows back to conversations, through the build's template."""
    from instruct_data.templates import get_template, parse_prompt

    template = get_template(data.template or "seed")
    for row in read_rows(path):
        if row.data is None:
            raise IdataError(f"{row.origin}: {row.error or 'not a JSON object'}")
        record = row.data
        parsed = parse_prompt(template, record["context"])
        if parsed is None:
            data.unparsed_heldout += 1
            history, question = [], Turn(role="user", text=record["context"])
        else:
            history, question = parsed
        turns = [turn for pair in history for turn in pair] + [question, Turn(role="assistant", text=record["target"])]
        yield Conversation(id=record.get("id") or str(row.origin), source=record.get("source") or "heldout",
                           category=record.get("category"), turns=turns)
