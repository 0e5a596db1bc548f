"""`make setup` installs the CPU build of torch, as a user's machine would get it.

On plain PyPI `torch==X` is the CUDA build for Linux: 19 nvidia packages and triton, several GB,
useless on a CPU machine. `make install-dry-run` resolves everything `make setup` installs into a
fresh environment (pip's --dry-run --report, nothing installed) with the same indexes as setup;
no nvidia, CUDA or triton package may be in it. The resolution needs the package index (CI
reaches PyPI): without it the test is skipped, with that reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _index_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10).close()
        return True
    except OSError:
        return False


def test_setup_resolves_the_cpu_torch_and_no_cuda_package(tmp_path):
    if not _index_reachable():
        pytest.skip("PyPI cannot be reached: the install cannot be resolved here")
    report = tmp_path / "report.json"
    result = subprocess.run(["make", "-s", "install-dry-run", f"PY={sys.executable}", f"REPORT={report}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=840)
    assert result.returncode == 0, result.stderr[-3000:]
    installed = {item["metadata"]["name"].lower(): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    assert installed["torch"].endswith("+cpu"), installed["torch"]
    gpu = sorted(name for name in installed if name.startswith(("nvidia", "cuda")) or "triton" in name)
    assert gpu == [], f"make setup would install GPU packages: {gpu}"
    assert {"transformers", "peft", "datasets", "pytest-timeout"} <= set(installed)
