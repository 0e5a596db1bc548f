"""The README's commands run as written.

Convention: a fenced ```bash block right after a line that starts with `<!-- tested` is run
here, whole, with `bash -euo pipefail`, as a user who followed the README would run it:
`idata` on the PATH (as after `source .venv/bin/activate`), in an empty folder that holds
`mine.jsonl` (the bundled sample of collected instructions, its rows with an empty reply left out) and
the repository's own files (recipes/, tests/fixtures/ ...), offline, with MODEL set to a tiny
local model (the block's `MODEL=${MODEL:-hub id}` keeps working for a user). A block that
fails fails here with its output. Blocks not marked are not run (GPU-only commands, hub downloads).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MARKER = "<!-- tested"
pytestmark = pytest.mark.slow


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, body) of every ```bash block right after a line starting with MARKER."""
    lines = text.splitlines()
    blocks = []
    for number, line in enumerate(lines):
        if not line.strip().startswith(MARKER):
            continue
        fence = number + 1
        assert fence < len(lines) and re.match(r"^```(bash|sh|shell)\s*$", lines[fence]), \
            f"README.md:{number + 1}: a tested marker must stand right above a ```bash fence"
        end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
        blocks.append((fence + 1, "\n".join(lines[fence + 1:end]) + "\n"))
    return blocks


def test_the_marker_finds_blocks_and_refuses_a_misplaced_one():
    text = "x\n<!-- tested -->\n```bash\necho hi\n```\n<!-- tested -->\n\n```bash\necho no\n```\n"
    with pytest.raises(AssertionError, match="README.md:6"):
        marked_blocks(text)
    assert marked_blocks(text.split("<!-- tested -->\n\n")[0]) == [(3, "echo hi\n")]


BLOCKS = marked_blocks(README.read_text(encoding="utf-8"))


def _tracked_top_level() -> set[str]:
    """The repository's top-level files and folders that git tracks (not a developer's out/)."""
    found = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if found.returncode == 0 and found.stdout.strip():
        return {line.split("/")[0] for line in found.stdout.splitlines() if not line.startswith(".")}
    return {e.name for e in ROOT.iterdir() if not e.name.startswith(".") and e.name not in ("out", "demo-out")}


def _valid_sample() -> str:
    """The bundled sample of collected instructions, less its rows with an empty reply: the
    README runs `idata validate mine.jsonl`, which exits 1 on a file with any bad row."""
    lines = (ROOT / "instruct_data" / "data" / "sample" / "collected.jsonl").read_text(encoding="utf-8").splitlines()
    return "".join(line + "\n" for line in lines if line.strip() and json.loads(line).get("output", "").strip())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from instruct_data.training.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("readme-model") / "tiny", "qwen2")


@pytest.mark.skipif(not BLOCKS, reason="README.md marks no block as tested")
@pytest.mark.parametrize("line,block", BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_a_marked_readme_block_runs_as_written(tmp_path, tiny_model, line, block):
    for name in _tracked_top_level():  # the repository's own files; outputs (out/ ...) land in tmp_path
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "mine.jsonl").write_text(_valid_sample(), encoding="utf-8")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               MODEL=str(tiny_model), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", NO_COLOR="1")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, f"README.md:{line}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
