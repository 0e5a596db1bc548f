"""The `idata` console script: catch Ctrl-C and SIGTERM first, then load the command line.

Loading click, rich and a command takes a few hundred milliseconds, more on a busy machine;
until `cli.common.run_cli` installs its handlers, Python's own would print a KeyboardInterrupt
traceback. Nothing has been read or written yet then, so the early handler just says so and
exits with the shell's code (130 for Ctrl-C, 143 for SIGTERM). Kept apart from `instruct_data.cli`
so that importing the library never changes a program's signal handlers.

The handlers are installed when this module is imported, the console script's first import,
so the only moments left uncovered are Python's own start-up before it (the interpreter and
`site`, with its .pth files): no idata code runs then, and a signal there either ends the
process as the signal's default does (exit 130 or 143 in a shell, nothing printed) or, for
Ctrl-C once the interpreter has its handler, is reported by Python itself. docs/guarantees.md
gives the measured sizes of that window.
"""

from __future__ import annotations

import os
import signal

NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


def _interrupted_while_starting(signum, frame) -> None:
    os.write(2, f"interrupted ({NAMES.get(signum, signum)}) while starting: nothing was read or written\n".encode())
    os._exit(128 + signum)


def _catch_signals() -> None:
    for signum in NAMES:
        signal.signal(signum, _interrupted_while_starting)


_catch_signals()  # at import: the console script imports this module before anything else


def main() -> None:
    _catch_signals()  # again, for a caller that imported this module long before calling main
    from instruct_data.cli import main as run

    run()
