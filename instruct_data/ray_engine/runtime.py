"""Starting or joining Ray, and turning its errors into one-line messages."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from instruct_data.errors import IdataError

INSTALL = "pip install 'instruct-data[ray]'"


class EngineError(IdataError):
    pass


def require_ray():
    """The ray module, or a one-line EngineError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra: pyarrow, fsspec)
    except ImportError:
        raise EngineError(f"--engine ray needs Ray Data, which is not installed: {INSTALL}") from None
    return ray


@dataclass
class Cluster:
    """What the manifest records of the cluster that ran a job."""

    address: str | None
    nodes: int
    cpus: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": "ray", "address": self.address or "local", "nodes": self.nodes, "cpus": self.cpus}


@contextmanager
def ray_runtime(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = False):
    """Yield the Cluster the job runs on: a running Ray session if this process already has one
    (tests start one per session), else a cluster at `address`, else a local runtime with this
    machine's cores, shut down again at the end."""
    ray = require_ray()
    started = False
    if address:
        _check_reachable(address)
    if not ray.is_initialized():
        options = dict(include_dashboard=False, configure_logging=False, log_to_driver=not quiet)
        if address:
            try:
                ray.init(address=address, **options)
            except Exception as exc:  # ConnectionError, ValueError, a timeout: all mean "not reachable"
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise EngineError(f"--ray-address {address}: no Ray cluster can be reached there ({first})") from None
        else:
            cpus = num_cpus or os.cpu_count() or 1
            ray.init(num_cpus=cpus, _temp_dir=tempfile.mkdtemp(prefix="idata-ray-"),
                     _system_config=local_system_config(cpus), **options)
        started = True
    try:
        configure_data()
        if started and not address:
            for name in _NOISY_LOGGERS:
                logging.getLogger(name).addFilter(_own_runtime_noise)
        yield _cluster(ray, address)
    except Exception as exc:
        cause = task_error(exc)
        if cause is not None and cause is not exc:
            raise cause from None  # the error the task met (file:line), not Ray's wrapping
        raise
    finally:
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).removeFilter(_own_runtime_noise)
        if started:
            ray.shutdown()


# The loggers that print them: a logger's filter sees only the records made on it.
_NOISY_LOGGERS = ("ray.data.dataset", "ray.data._internal.progress.utils")


def _own_runtime_noise(record: logging.LogRecord) -> bool:
    """False for two warnings Ray Data prints on a runtime of our own, where they mean nothing:
    "no available CPUs, the job will hang" (it races with the workers that just read the
    blocks' metadata; nothing here holds CPUs: no actors), and "truncating long operator name"."""
    message = record.getMessage()
    return "does not have any available CPUs" not in message and "Truncating long operator name" not in message


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A quick TCP connect to HOST:PORT first: ray.init keeps retrying an address that does
    not answer for a minute or more before it gives up."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: left to ray.init
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EngineError(f"--ray-address {address}: no Ray cluster can be reached there ({reason}); "
                          "start one with `ray start --head` and give its address") from None


def local_system_config(cpus: int) -> dict[str, int]:
    """Ray's settings for a runtime of our own. Ray keeps as many idle worker processes as the
    node has CPUs and stops the rest after a second idle; a Ray Data stage needs a few more than
    that (its streaming reduce tasks block, waiting for their consumer), so each stage waited for
    new workers to start, 2-3 s each on 2 cores: a shuffle of 300 rows took 7 s, and 0.2 s once
    the workers stay. A cluster started with `ray start` takes the same setting as the
    environment variable RAY_num_workers_soft_limit."""
    return {"num_workers_soft_limit": cpus + 8}


def configure_data() -> None:
    """Ray Data as the engine needs it: blocks in input order, shuffles as tasks; its progress
    bars stay, its per-dataset INFO lines (plans, log paths) go."""
    from ray.data import DataContext
    from ray.data.context import ShuffleStrategy

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    context = DataContext.get_current()
    # Blocks come out in the order their inputs went in: the outputs are written in input order.
    context.execution_options.preserve_order = True
    # Shuffles (groupby, sort) as map and reduce tasks. The sort-based shuffle keeps state in
    # the driver for every pair of blocks it moves: a groupby of 1M rows in 1,000 blocks took
    # 97 s and 4.6 GB of driver memory on 2 CPUs, against 3.7 s and 264 MB here (the hash
    # shuffle, flat too, keeps actors that hold CPUs between stages and took 14.6 s).
    context.shuffle_strategy = ShuffleStrategy.SHUFFLE_V2


# What the driver keeps grows with the number of blocks (Ray's references and metadata for each,
# some tens of KB), not with rows: so the blocks grow with the input instead of their number.
BLOCKS_PER_JOB = 256  # at least; 4 per CPU on a larger cluster
MIN_BLOCK_BYTES = 1 << 20  # the local engine's chunk: small inputs keep their parallelism
MAX_BLOCK_BYTES = 64 << 20  # a pass-1 block holds about 3x its input: a few hundred MB per task
MIN_BLOCK_ROWS = 1_000  # rows read by the driver (arrays, tables, a Belle release from the hub)
MAX_BLOCK_ROWS = 100_000


def block_bytes(input_bytes: int, cpus: int) -> int:
    """Input bytes per Ray block (a JSON-lines byte range), so a job has about
    max(BLOCKS_PER_JOB, 4 x cpus) blocks (more once blocks reach MAX_BLOCK_BYTES: past some
    60 GB of input on a small cluster)."""
    return _per_block(input_bytes, cpus, MIN_BLOCK_BYTES, MAX_BLOCK_BYTES)


def block_rows(rows: int | None, cpus: int) -> int:
    """Rows per Ray block for rows the driver reads, as block_bytes does for bytes."""
    return _per_block(rows or 0, cpus, MIN_BLOCK_ROWS, MAX_BLOCK_ROWS)


def _per_block(total: int, cpus: int, smallest: int, largest: int) -> int:
    blocks = max(BLOCKS_PER_JOB, 4 * cpus)
    return min(largest, max(smallest, -(-total // blocks)))


def tasks_dataset(tasks):
    """A Ray dataset of one block per task (column `task`: the pickled task), in task order.
    Each task goes to the object store as it is made: rows the driver reads (arrays, tables,
    a Belle release) are never all in its memory at once."""
    import pickle

    import pyarrow as pa
    import ray
    import ray.data

    refs = [ray.put(pa.table({"task": pa.array([pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)],
                                                pa.binary())})) for task in tasks]
    return ray.data.from_arrow_refs(refs) if refs else None


@contextmanager
def in_driver_dir(cwd: str | None):
    """Run a task in the driver's working directory: a relative input path (`idata build
    rows.jsonl`) names the same file on every node (all see the inputs at the same paths), and
    the task's messages keep the path as the user gave it. A Ray worker that joined a cluster
    with `ray start` otherwise runs in that command's directory. Tasks run one at a time in a
    worker process, so changing its directory for one task is safe."""
    if not cwd or cwd == os.getcwd():
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def _cluster(ray, address: str | None) -> Cluster:
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    return Cluster(address, len(nodes), int(ray.cluster_resources().get("CPU", 0)))


STAGES_ENV = "IDATA_RAY_STAGES"  # a file: each stage's rows and bytes are appended to it (benchmarks/bench_ray.py)


def note_stage(name: str, ds, shuffled=None) -> None:
    """With $IDATA_RAY_STAGES set, append one JSON line: a stage's output rows and bytes (and,
    for a shuffle, the rows and bytes of what went into it), and Ray Data's text of the
    operators that made it (their tasks' wall and CPU time: `Dataset.stats()`). Counting a lazy `shuffled`
    dataset runs it again, so this is for measuring only."""
    path = os.environ.get(STAGES_ENV)
    if not path:
        return
    import json

    entry = {"stage": name, "rows": ds.count(), "bytes": ds.size_bytes(), "stats": ds.stats()}
    if shuffled is not None:
        shuffled = shuffled.materialize()
        entry.update(shuffled_rows=shuffled.count(), shuffled_bytes=shuffled.size_bytes())
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def error_payload(exc: IdataError) -> bytes:
    """An IdataError as bytes that survive the trip back from a Ray task (Ray wraps a raised
    exception, and errors with their own __init__, like InputError, do not unpickle)."""
    import pickle

    return pickle.dumps((type(exc), exc.args, vars(exc)), protocol=pickle.HIGHEST_PROTOCOL)


def error_from_payload(payload: bytes) -> IdataError:
    import pickle

    cls, args, state = pickle.loads(payload)
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    vars(error).update(state)
    return error


def task_error(exc: BaseException) -> BaseException:
    """The error a Ray task raised, as it would have been raised locally: an IdataError (a bad
    file, `file:line: what is wrong`) comes back as itself, not as a Ray traceback."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, IdataError):
            return exc
        cause = getattr(exc, "cause", None)
        exc = cause if isinstance(cause, BaseException) else exc.__cause__
    return None
