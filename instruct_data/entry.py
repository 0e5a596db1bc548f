"""The `idata` console script: catch Ctrl-C and SIGTERM first, then load the command line.

Loading click, rich and a command takes a few hundred milliseconds, more on a busy machine;
until `cli.common.run_cli` installs its handlers, Python's own would print a KeyboardInterrupt
traceback. Nothing has been read or written yet then, so the early handler just says so and
exits with the shell's code (130 for Ctrl-C, 143 for SIGTERM). Kept apart from `instruct_data.cli`
so that importing the library never changes a program's signal handlers.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum, frame) -> None:
    name = signal.Signals(signum).name
    os.write(2, f"interrupted ({name}) while starting: nothing was read or written\n".encode())
    os._exit(128 + signum)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupted_while_starting)
    from instruct_data.cli import main as run

    run()
