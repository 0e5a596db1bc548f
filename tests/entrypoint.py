"""Running the installed `idata` entry point in a subprocess, as a user does.

A CliRunner result with `exit_code != 0` also accepts an uncaught exception; the real
process tells the exit status and everything printed, traceback included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IDATA = Path(sys.executable).with_name("idata")  # .venv/bin/idata beside .venv/bin/python


def idata(*args, cwd: Path | None = None, timeout: float = 120, prefix: tuple = (), **popen) -> subprocess.CompletedProcess:
    """Run `idata ARGS` to the end; `prefix` wraps it (e.g. setpriv)."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([*prefix, str(IDATA), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, **popen)


def start(*args, cwd: Path | None = None) -> subprocess.Popen:
    """Start `idata ARGS` in its own process group (as a shell job: Ctrl-C reaches the group)."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.Popen([str(IDATA), *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def error_lines(stderr: str) -> list[str]:
    """The non-blank lines a failed run printed."""
    return [line for line in stderr.splitlines() if line.strip()]


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit `code`, no traceback, one line on stderr that holds every word given."""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]
