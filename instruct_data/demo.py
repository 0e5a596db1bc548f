"""`idata demo`: the whole flow on the sample bundled with the package, offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_dir() -> Path:
    return Path(str(resources.files("instruct_data") / "data" / "sample"))


def run_demo(out: str | Path) -> dict:
    """For now: convert the bundled sample into context/target JSONL with its ledger."""
    from instruct_data.convert import convert

    out = Path(out)
    return convert([str(sample_dir())], out / "train.jsonl", template="seed")
