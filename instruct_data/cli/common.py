"""What every command shares: input options, error reporting, progress and output."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

import click
from rich.console import Console
from rich.markup import escape

from instruct_data.errors import IdataError

console = Console(stderr=True, highlight=False, soft_wrap=True)  # paths are never cut mid-line


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) or SIGTERM. Not a KeyboardInterrupt, which click would turn into an
    Abort with a blank line; a BaseException, so every `except BaseException` clean-up runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them


def _interrupt(signum, frame) -> None:
    """The handler of SIGINT and SIGTERM once a command runs: raise Interrupted where the main
    thread is, so that every `finally` and `except BaseException` clean-up runs.

    Not inside importlib's own frames: an exception raised there does harm (CPython 3.11,
    measured). importlib's module locks are left broken, and the next import fails with a
    KeyError traceback, exit 1. And `compile()`, which runs for every module loaded without a
    .pyc file, loses one raised while it works: CPython's constant folding clears any exception
    but a KeyboardInterrupt (Python/ast_opt.c), and the command ran to the end, exit 0. There the
    interrupt is raised a moment later instead, once the main thread has left them."""
    if _in_import_machinery(frame):
        _raise_later(signum, 0.01)
        return
    _raise(signum)


_IMPORT_MACHINERY = frozenset({"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"})

_pending = 0  # the signal of an interrupt that has not stopped the command yet


def _raise(signum: int) -> None:
    # Armed again first: if some code swallows this exception, a timer raises it again
    # (_raise_pending), and a command that still returns is reported as interrupted (run_cli).
    _raise_later(signum, 0.05)
    raise Interrupted(signum)


def _raise_later(signum: int, seconds: float) -> None:
    """Raise Interrupted(signum) `seconds` from now, from a timer's handler."""
    global _pending
    _pending = signum
    signal.signal(signal.SIGALRM, _raise_pending)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _raise_pending(signum, frame) -> None:
    if _interrupt_under_way() or _in_import_machinery(frame) or _inside_unraisable_hook(frame):
        signal.setitimer(signal.ITIMER_REAL, 0.01)  # not now: look again in 10 ms
        return
    _raise(_pending)


def _interrupt_under_way() -> bool:
    """True while an Interrupted passes through `finally`, `except` and `__exit__` clean-ups:
    Python shows the exception being handled there (sys.exc_info), even in functions they call."""
    exc = sys.exc_info()[1]
    while exc is not None:
        if isinstance(exc, Interrupted):
            return True
        exc = exc.__context__  # (a clean-up that failed while the interrupt was handled)
    return False


def _in_import_machinery(frame) -> bool:
    return frame is not None and frame.f_code.co_filename in _IMPORT_MACHINERY


def _send_again_if_swallowed(unraisable) -> None:
    """sys.unraisablehook: an Interrupted raised where Python cannot pass an exception on (a
    weakref callback or a __del__; importlib runs such callbacks while a command loads) is only
    printed as "Exception ignored", and the command would run on as if never stopped. Raise it
    again a moment later, from a timer: a signal sent from here would be handled inside this
    hook (Python runs handlers after any call), where it would be swallowed once more."""
    if isinstance(unraisable.exc_value, Interrupted):
        _raise_later(unraisable.exc_value.exit_code - 128, 0.01)
        return
    _other_unraisablehook(unraisable)


def _inside_unraisable_hook(frame) -> bool:
    while frame is not None:
        if frame.f_code is _send_again_if_swallowed.__code__:  # the hook has not returned yet
            return True
        frame = frame.f_back
    return False


_other_unraisablehook = sys.unraisablehook  # what was there before run_cli put its own


_said = threading.Event()  # set once the main thread has said "interrupted"


def interrupt_watchdog(grace: float = 2.0) -> None:
    """End the process `grace` seconds after SIGINT/SIGTERM if the main thread has not by then.

    Python runs a signal handler only between bytecodes: a main thread inside one long C call
    (a forward pass of a large model on the CPU, a wait in a library) would hold the exit up for
    as long as the call lasts. The C-level handler writes the signal's number to the wakeup fd
    at once, so this thread sees it even then. For commands that fork no workers (train, eval):
    a fork after threads copies the memory of a thread but not the thread.
    """
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    signal.set_wakeup_fd(writer, warn_on_full_buffer=False)

    def watch() -> None:
        while True:
            data = os.read(reader, 1)
            if not data or data[0] not in (signal.SIGINT, signal.SIGTERM):
                continue
            time.sleep(grace)  # the main thread normally cleans up and exits well before
            from instruct_data import outputs_guard

            waited = 0.0
            # Never between the renames of a swap (milliseconds); once the outputs are in place, give
            # the main thread's clean-up (the lock, the message) a little longer.
            while outputs_guard.swapping or (outputs_guard.committed and not _said.is_set() and waited < 10):
                time.sleep(0.05)
                waited += 0.05
            if not _said.is_set():
                name = signal.Signals(data[0]).name
                left = ("the outputs were already complete and in place" if outputs_guard.committed
                        else "outputs are left as they were before the run")
                os.write(2, f"interrupted ({name}): stopped (the step under way did not return within {grace:.0f} s); "
                            f"{left}\n".encode())
            os._exit(128 + data[0])

    threading.Thread(target=watch, daemon=True, name="idata-interrupt-watchdog").start()


def exit_now(code: int) -> None:
    """Exit after an interrupt without the interpreter's teardown: with torch and a tokenizer
    loaded, freeing every module takes seconds on a busy machine, and a stopped command must end
    at once. The atexit handlers still run (Ray's shutdown, temporary folders); the clean-up of
    the command itself ran in its `finally` blocks before this."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run_cli(group: click.Group, argv: list[str]) -> None:
    """Run the group; an IdataError is one red line on stderr and its exit code, not a traceback.
    Exit codes: 0 done; 1 an output cannot be written; 2 a bad option or an unreadable input;
    3 too many rejects or --strict; 130/143 interrupted by Ctrl-C/SIGTERM (after cleaning up)."""
    global _other_unraisablehook, _pending
    _pending = 0
    if sys.unraisablehook is not _send_again_if_swallowed:
        _other_unraisablehook, sys.unraisablehook = sys.unraisablehook, _send_again_if_swallowed
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        _main_unless_interrupted(group, argv)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (Interrupted, click.exceptions.Abort) as exc:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the message short
            signal.signal(signum, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0)  # (_raise's timer: the interrupt has arrived)
        code = exc.exit_code if isinstance(exc, Interrupted) else 130
        from instruct_data import outputs_guard

        left = ("the outputs were already complete and in place" if outputs_guard.committed
                else "outputs are left as they were before the run")
        console.print(f"[red]interrupted[/red] ({exc or 'SIGINT'}): stopped; {left}")
        _said.set()  # (the watchdog, if it must end the process, stays silent)
        exit_now(code)
    except IdataError as exc:
        console.print(f"[red]error:[/red] {escape(only_existing_options(str(exc), group, argv))}")
        sys.exit(exc.exit_code)
    except ValueError as exc:  # bad option values found by the library (unknown template, bad --map)
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(2)
    except OSError as exc:  # not turned into an IdataError where it happened: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(f"[red]error:[/red] {escape(where)}{escape(exc.strerror or str(exc))}")
        sys.exit(1)
    sys.exit(0)


def _main_unless_interrupted(group: click.Group, argv: list[str]) -> None:
    """Run the command; if it ends, even by sys.exit, after an interrupt that some library
    swallowed before the timer could raise it again, it ends as interrupted all the same. So does
    an error after an interrupt: Python wraps an exception raised inside a descriptor's
    __set_name__ (a dataclass field, while a module that defines one is imported) in a
    RuntimeError, which went out as a traceback while the re-arming timer's SIGALRM killed
    the process (exit -14)."""
    try:
        group.main(args=argv, prog_name="idata", standalone_mode=False)
    except (SystemExit, click.exceptions.Exit):
        if _pending:
            raise Interrupted(_pending) from None
        raise
    except Exception:
        if _pending:
            raise Interrupted(_pending) from None
        raise
    if _pending:
        raise Interrupted(_pending)


def only_existing_options(message: str, group: click.Group, argv: list[str]) -> str:
    """A message from the shared readers advises `--encoding gb18030`; train, eval and score read
    UTF-8 only and have no such option: they are told to convert the file instead."""
    if "--encoding" not in message:
        return message
    names = set(group.list_commands(None))  # the lazy group imports only the command asked for
    name = next((arg for arg in argv if arg in names), None)
    command = group.get_command(None, name) if name else None
    if command is None or any(param.name == "encoding" for param in command.params):
        return message
    return message.replace("try --encoding gb18030", "the file is not UTF-8: convert it first, e.g. "
                                                    "iconv -f GB18030 -t UTF-8 FILE > FILE.utf8")


class Encoding(click.ParamType):
    """A text encoding Python knows (io.check_encoding, as a recipe's `encoding:` is checked),
    refused as a usage error before any file is opened."""

    name = "encoding"

    def convert(self, value, param, ctx):
        from instruct_data.io import check_encoding

        try:
            return check_encoding(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class FiniteRange(click.FloatRange):
    """click's FloatRange without nan and inf: nan passes its bounds (every comparison with nan is
    false), and a --max-reject-rate of nan failed every clean run (`0% > nan%`)."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def input_options(func):
    """--format, --map and --encoding: how to read the inputs."""
    func = click.option("--encoding", default="utf-8", show_default=True, type=Encoding(),
                        help="Text encoding of the inputs (e.g. gb18030 for older Chinese files).")(func)
    func = click.option("--map", "mapping", default=None, metavar="FIELD=COLUMN,...",
                        help="Map your columns to known fields, e.g. instruction=问题,output=答案.")(func)
    func = click.option("--format", "fmt", default=None, metavar="NAME",
                        help="Force the input format instead of detecting it from the keys "
                             "(alpaca, belle, belle_conversations, sharegpt, messages, prompt_response, "
                             "context_target, qa_benchmark).")(func)
    return func


def engine_options(func):
    """--engine and --ray-address: where build and dedupe run (the outputs are the same)."""
    func = click.option("--ray-address", default=None, metavar="HOST:PORT",
                        help="With --engine ray: join this running Ray cluster (default: start Ray here).")(func)
    func = click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help="local: this machine's processes; ray: Ray Data, on this machine or a cluster "
                             "(needs pip install 'instruct-data[ray]').")(func)
    return func


def strictness_options(func):
    func = click.option("--max-reject-rate", default=0.5, show_default=True, type=FiniteRange(0, 1),
                        help="Fail when a larger share of a source's rows is rejected (usually a wrong --format/--map).")(func)
    func = click.option("--strict", is_flag=True, help="Fail on the first bad row instead of rejecting it.")(func)
    return func


def reject_lines(manifest: dict) -> list[str]:
    """One summary line per reject reason of a manifest, commonest reasons as the ledger orders them."""
    return [f"  rejected {sum(per_source.values()):>7,}  {reason}"
            for reason, per_source in manifest["counts"]["rejects_by_reason"].items()]


def print_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


LOG_EVERY_S = 30.0


@contextmanager
def row_progress(description: str, total: int | None = None):
    """Rows done, rows/s and time left on stderr: a bar on a terminal, else a line at least every
    30 s while rows come in; yields a per-row callback."""
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed:,.0f} rows/s" if task.speed else "")

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
               RateColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    # auto_refresh=False: no refresh thread. The commands that show this bar fork worker processes
    # inside it, and a fork copies no thread but every lock one holds (the console's, stderr's).
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal,
                  auto_refresh=False) as progress:
        task = progress.add_task(description, total=total)
        pending, done, started = 0, 0, time.monotonic()
        said = started

        def advance() -> None:
            nonlocal pending, done, said
            pending += 1
            if pending == 1000:  # updating per row would cost more than the work
                progress.update(task, advance=pending, refresh=True)
                done += pending
                pending = 0
                now = time.monotonic()
                if not console.is_terminal and now - said >= LOG_EVERY_S:
                    # A log (CI, nohup) gets a plain line at least every 30 s, so a quiet run is
                    # never mistaken for a hung one; no thread, since workers fork inside this block.
                    said = now
                    of = f" of {total:,}" if total else ""
                    print(f"{description}: {done:,}{of} rows, {done / (now - started):,.0f} rows/s "
                          f"({int(now - started)}s)", file=sys.stderr, flush=True)

        yield advance
