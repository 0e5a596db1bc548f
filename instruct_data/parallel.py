"""The one pool of worker processes that build, dedupe and to-multiturn hand their chunks to.

    with WorkerPool(workers, initializer=init, initargs=(state,)) as pool:
        for result in pool.map(work, tasks):   # in task order, a few tasks ahead per worker
            ...

What it adds to `concurrent.futures.ProcessPoolExecutor`:

- Workers ignore Ctrl-C. The terminal sends SIGINT to every process of the group; a worker
  interrupted mid-task printed a KeyboardInterrupt or BrokenPipeError traceback, and one
  interrupted while holding a queue lock left `multiprocessing.Pool.terminate()` waiting
  forever. The main process alone decides what an interrupt means.
- Workers die with their parent, even one killed by SIGKILL (Linux: `PR_SET_PDEATHSIG`;
  elsewhere a thread that watches the parent's pid), so no orphan keeps a core busy.
- On an error or an interrupt the workers are killed at once, not waited for.
- Results come back in task order with a bounded number of tasks in flight (memory stays
  flat: the task iterator is read only as fast as results are used).
- With one worker nothing is started: the tasks run here, the same code path for tests.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from instruct_data.errors import IdataError

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class WorkerDied(IdataError):
    """A worker process was killed from outside (out of memory, most often)."""

    exit_code = 1


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; a watcher thread elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the CLI's SIGTERM handler (which raises in the main process to
    # run its clean-up); here the default is right: end at once, the parent cleans up.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def _context():
    # fork where there is one: workers start at once and inherit what the parent loaded.
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


class WorkerPool:
    """`workers` processes (none for 1) that each ran `initializer(*initargs)` once."""

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = (), *,
                 ahead: int = 2):
        self.workers = max(1, workers)
        self.ahead = ahead  # tasks in flight per worker
        self._executor: ProcessPoolExecutor | None = None
        if self.workers == 1:
            if initializer is not None:
                initializer(*initargs)
            return
        self._executor = ProcessPoolExecutor(self.workers, mp_context=_context(), initializer=_start_worker,
                                             initargs=(os.getpid(), initializer, initargs))

    def map(self, func: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        """func(task) for every task, in task order."""
        if self._executor is None:
            yield from map(func, tasks)
            return
        pending: deque = deque()
        limit = self.workers * self.ahead
        try:
            for task in tasks:
                pending.append(self._executor.submit(func, task))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise WorkerDied("a worker process was killed (out of memory? try fewer --workers)") from None

    def close(self) -> None:
        """Wait for the workers to finish and end them."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def kill(self) -> None:
        """End the workers now (SIGKILL): nothing they hold is waited for."""
        if self._executor is None:
            return
        # The executor has no public way to kill its processes; `_processes` is where it keeps them.
        processes = list((getattr(self._executor, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
        self._executor = None

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()
