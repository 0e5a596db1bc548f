"""The one pool of worker processes that build, dedupe and to-multiturn hand their chunks to.

    with WorkerPool(workers, initializer=init, initargs=(state,)) as pool:
        for result in pool.map(work, tasks):   # in task order, a few tasks ahead per worker
            ...

Why not `multiprocessing.Pool` or `concurrent.futures.ProcessPoolExecutor`: both feed their
workers through a queue whose feeder thread writes into a pipe the parent also holds open.
When workers die with a task half-sent (Ctrl-C, SIGTERM, a kill), that thread blocks forever
and so does the interpreter's exit, which joins it (`Pool.terminate()` waits on it too). Here
each worker has its own pipes, and the parent's threads that write tasks and read results are
daemon threads that end when a pipe breaks: a dead worker can never hold the parent up.

- Workers ignore Ctrl-C. The terminal sends SIGINT to the whole process group; a worker
  interrupted mid-task printed a KeyboardInterrupt or BrokenPipeError traceback. The main
  process alone decides what an interrupt means.
- Workers die with their parent, even one killed by SIGKILL (Linux: `PR_SET_PDEATHSIG`;
  elsewhere a thread that watches the parent's pid), so no orphan keeps a core busy.
- On an error or an interrupt the workers are killed at once, not waited for.
- Results come back in task order with a bounded number of tasks in flight (memory stays
  flat: the task iterator is read only as fast as results are used). Task i goes to worker
  i mod N; a worker's results are read as they come (a thread per worker), so a worker never
  waits for the main process to want its result.
- With one worker nothing is started: the tasks run here, the same code path for tests.
- `start_method="spawn"` for a parent that already runs threads (train: torch and tokenizers
  start some): a fork copies the memory of every thread but only one of them, so a lock a
  missing thread held stays locked in the child forever. A spawned worker is a fresh
  interpreter that ignores Ctrl-C from its first instruction, and receives its initializer
  through its pipe once it does (unpickling a tokenizer takes seconds: a Ctrl-C then would
  print a KeyboardInterrupt traceback).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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


def _worker_main(parent: int, initializer: Callable | None, initargs: tuple, tasks, results,
                 init_by_pipe: bool = False) -> None:
    """A worker's life: (func, task) in, (ok, result or exception) out, until None or EOF.

    With `init_by_pipe` the first message is (initializer, initargs)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the CLI's SIGTERM handler (which raises in the main process to
    # run its clean-up); here the default is right: end at once, the parent cleans up.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    failed = None  # an initializer's error, returned for every task (the parent raises it once)
    try:
        if init_by_pipe:
            initializer, initargs = pickle.loads(tasks.recv_bytes())
        if initializer is not None:
            initializer(*initargs)
    except (EOFError, OSError):
        return
    except Exception as exc:
        failed = exc
    while True:
        try:
            job = tasks.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        func, task = job
        try:
            if failed is not None:
                raise failed
            reply = (True, func(task))
        except Exception as exc:  # raised again in the parent, at this task's place in the order
            reply = (False, exc)
        try:
            results.send_bytes(_dumps(reply))
        except (BrokenPipeError, OSError):
            return


def _dumps(reply: tuple) -> bytes:
    try:
        return pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # an exception that does not pickle: its text still reaches the parent
        return pickle.dumps((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]} ({exc})")))


def _context(start_method: str | None = None):
    # fork where there is one: workers start at once and inherit what the parent loaded.
    if start_method is None:
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(start_method)


def _start_ignoring_interrupts(process) -> None:
    """Start a spawned process with SIGINT ignored: an ignored signal stays ignored across exec
    (a handler does not), so the new interpreter never raises KeyboardInterrupt while it starts.

    Meanwhile the main thread blocks SIGINT and SIGTERM (Linux queues a blocked signal even while
    it is ignored): one that arrives during the start (a millisecond) is delivered to its own
    handler right after. (Another thread of the process may take it meanwhile and drop it: a
    window of that millisecond, where a Ctrl-C is lost, not turned into a traceback.)"""
    if threading.current_thread() is not threading.main_thread():
        process.start()  # signal handlers belong to the main thread
        return
    watched = {signal.SIGINT, signal.SIGTERM}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


_DEAD = object()  # what a worker's result reader queues when the worker's pipe ends


class _Raw:
    """Bytes pickled once for every worker (a spawned worker's initializer and its arguments: a
    tokenizer pickles to megabytes, seconds of the parent's time on a busy machine)."""

    def __init__(self, data: bytes):
        self.data = data


class _Worker:
    """One process, its two pipes, and the parent's daemon threads that feed and drain them."""

    def __init__(self, context, initializer: Callable | None, initargs: tuple, init_bytes: bytes | None = None):
        task_reader, self._task_writer = context.Pipe(duplex=False)
        self._result_reader, result_writer = context.Pipe(duplex=False)
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        spawned = context.get_start_method() != "fork"
        args = (os.getpid(), None, (), task_reader, result_writer, True) if spawned else (
            os.getpid(), initializer, initargs, task_reader, result_writer)
        self.process = context.Process(target=_worker_main, daemon=True, args=args)
        if spawned:
            _start_ignoring_interrupts(self.process)
            self.outbox.put(_Raw(init_bytes))  # sent by the feeding thread, once it starts
        else:
            self.process.start()
        task_reader.close()  # the parent keeps only its own ends: a dead worker breaks the pipes
        result_writer.close()

    def start_threads(self) -> None:
        """After every worker is forked: a fork copies no thread, but would copy their locks."""
        self._threads = [threading.Thread(target=self._feed, daemon=True),
                         threading.Thread(target=self._drain, daemon=True)]
        for thread in self._threads:
            thread.start()

    def join_threads(self, timeout: float) -> None:
        """Wait for the feeding and draining threads (they end with the worker's pipes), so that
        the parent has no thread of this pool left when it forks again."""
        for thread in self._threads:
            if thread.ident is not None:  # (started)
                thread.join(timeout)

    def _feed(self) -> None:
        while True:
            job = self.outbox.get()
            try:
                if isinstance(job, _Raw):
                    self._task_writer.send_bytes(job.data)
                else:
                    self._task_writer.send(job)
            except Exception:  # the worker died (its result reader reports it) or did not pickle
                return
            if job is None:
                return

    def _drain(self) -> None:
        while True:
            try:
                data = self._result_reader.recv_bytes()
            except (EOFError, OSError):
                self.inbox.put(_DEAD)
                return
            self.inbox.put(data)

    def result(self) -> Any:
        data = self.inbox.get()
        if data is _DEAD:
            raise WorkerDied("a worker process was killed (out of memory? try fewer --workers)")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        return value


class WorkerPool:
    """`workers` processes (none for 1) that each ran `initializer(*initargs)` once."""

    def __init__(self, workers: int, initializer: Callable | None = None, initargs: tuple = (), *,
                 ahead: int = 2, start_method: str | None = None):
        self.workers = max(1, workers)
        self.ahead = ahead  # tasks in flight per worker
        self._procs: list[_Worker] = []
        if self.workers == 1:
            if initializer is not None:
                initializer(*initargs)
            return
        context = _context(start_method)
        init_bytes = None
        if context.get_start_method() != "fork":
            init_bytes = pickle.dumps((initializer, initargs), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            for _ in range(self.workers):
                self._procs.append(_Worker(context, initializer, initargs, init_bytes))
            for worker in self._procs:
                worker.start_threads()
        except BaseException:
            self.kill()
            raise

    def map(self, func: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        """func(task) for every task, in task order (func: a module-level function)."""
        if not self._procs:
            yield from map(func, tasks)
            return
        owners: deque = deque()  # the worker of each task in flight, in task order
        limit = len(self._procs) * self.ahead
        for number, task in enumerate(tasks):
            worker = self._procs[number % len(self._procs)]
            worker.outbox.put((func, task))
            owners.append(worker)
            if len(owners) >= limit:
                yield owners.popleft().result()
        while owners:
            yield owners.popleft().result()

    def close(self) -> None:
        """Let the workers finish what they were given, and end them."""
        for worker in self._procs:
            worker.outbox.put(None)
        for worker in self._procs:
            worker.process.join()
        for worker in self._procs:
            worker.join_threads(timeout=5)
        self._procs = []

    def kill(self) -> None:
        """End the workers now (SIGKILL): nothing they hold is waited for."""
        for worker in self._procs:
            worker.process.kill()
        for worker in self._procs:
            worker.process.join(timeout=5)
        for worker in self._procs:
            worker.outbox.put(None)  # a feeding thread waiting for work ends too
            worker.join_threads(timeout=1)
        self._procs = []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.kill()
