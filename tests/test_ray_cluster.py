"""`--engine ray --ray-address` on a cluster of two nodes, simulated on this machine.

`ray start --head` and a second `ray start --address` (its own raylet, object store and a
resource of its own, `second`), each with 1 CPU and a 100 MB object store, run in their own
temp dir on a free port. `idata build` and `idata dedupe` run as a user runs them, from the
command line, on input paths relative to their working directory (a worker that joined with
`ray start` runs elsewhere), and write the local engine's files byte for byte; the manifest
says 2 nodes and 2 CPUs.

The nodes are this test's children, each `ray start --block` in its own session; at the end
every process they started is killed by its id (never `ray stop`: it would stop the other Ray
sessions on this machine), whether the test passed or not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# Ray itself is not imported here (the nodes and the CLI are other processes): found is enough.
if importlib.util.find_spec("ray") is None or importlib.util.find_spec("psutil") is None:
    pytest.skip("--engine ray needs Ray Data: pip install 'instruct-data[ray]'", allow_module_level=True)
import psutil  # noqa: E402  (installed with Ray)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import corpus  # noqa: E402  (benchmarks/corpus.py: Belle-like rows with planted copies)

RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray") or "ray"  # the venv's first
IDATA = [sys.executable, "-m", "instruct_data"]
START_S = 180  # a node starts in seconds; a loaded machine stretches that
RUN_S = 600

# Every node gets these. RAY_AUTH_MODE: a token in ~/.ray (another session's) must not be
# required of ours. The idle-worker settings keep a node's Python workers alive between Ray
# Data's stages: with 1 CPU a node may keep one idle worker, so each stage's tasks would start
# fresh processes (seconds of imports each), and a worker killed for being idle can abort on
# its way out ("Mutex corrupt: both reader and writer lock held", Ray 2.60), which is noise.
NODE_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_idle_worker_killing_time_threshold_ms": "600000",
    "RAY_num_workers_soft_limit": "4",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(args: list[str], log: Path, env: dict, nodes: list[subprocess.Popen]) -> None:
    """`ray start --block ...` in its own session, added to `nodes` at once (to be stopped even
    if it never comes up); returns once the node says it runs."""
    with open(log, "wb") as fh:
        node = subprocess.Popen([str(RAY), "start", "--block", *args], stdout=fh, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    nodes.append(node)
    deadline = time.monotonic() + START_S
    while b"Ray runtime started" not in log.read_bytes():
        if node.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"ray start {' '.join(args)} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)


def _stop(nodes: list[subprocess.Popen], temp_dir: str) -> None:
    """Kill the nodes and everything they started, by id: the `ray start` processes and their
    descendants (Ray's workers run in sessions of their own, so a process group is not enough),
    then anything left whose command line names this cluster's temp dir."""
    procs = []
    for node in nodes:
        try:
            parent = psutil.Process(node.pid)
            procs += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in part for part in proc.info["cmdline"] or ()):
            procs.append(proc)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    for node in nodes:
        node.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster():
    """The address of a 2-node Ray cluster on this machine (1 CPU each)."""
    temp_dir = tempfile.mkdtemp(prefix="idata-rc-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {**os.environ, **NODE_ENV}
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--object-store-memory", "100000000", "--disable-usage-stats",
              "--node-ip-address", "127.0.0.1"]

    def own_ports() -> list[str]:
        """Free ports for what Ray otherwise binds at fixed ones (a second cluster on the machine,
        another engineer's test run, would collide there)."""
        return [arg for option in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                                   "--runtime-env-agent-port", "--metrics-export-port")
                for arg in (option, str(_free_port()))]

    nodes: list[subprocess.Popen] = []
    try:
        _start_node(["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp_dir,
                     "--dashboard-port", str(_free_port()), "--ray-client-server-port", str(_free_port()),
                     *own_ports(), *common], Path(temp_dir + ".head.log"), env, nodes)
        _start_node(["--address", address, "--resources", '{"second": 1}', *own_ports(), *common],
                    Path(temp_dir + ".second.log"), env, nodes)
        yield address
    finally:
        _stop(nodes, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        for log in (".head.log", ".second.log"):
            Path(temp_dir + log).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with two files of generated rows (two chunks: tasks on both nodes), planted
    exact and near copies within and across them, and one bad line."""
    folder = tmp_path_factory.mktemp("cluster")
    corpus.generate(500, folder / "all.jsonl", near_dups=0.08, exact_dups=0.05, seed=5)
    lines = (folder / "all.jsonl").read_bytes().splitlines(keepends=True)
    (folder / "a.jsonl").write_bytes(b"".join(lines[:250]) + b"{not json\n")
    (folder / "b.jsonl").write_bytes(b"".join(lines[250:]))
    (folder / "all.jsonl").unlink()
    return folder


def _idata(folder: Path, *args: str) -> None:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([*IDATA, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_S)
    assert done.returncode == 0, f"idata {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def _same_outputs(local: Path, on_ray: Path) -> None:
    names = sorted(path.name for path in local.iterdir())
    assert names == sorted(path.name for path in on_ray.iterdir())
    for name in names:
        if name != "manifest.json":
            assert (on_ray / name).read_bytes() == (local / name).read_bytes(), name
    manifest = json.loads((on_ray / "manifest.json").read_text(encoding="utf-8"))
    engine = manifest.pop("engine")
    assert engine["name"] == "ray" and engine["nodes"] == 2 and engine["cpus"] == 2, engine
    assert manifest == json.loads((local / "manifest.json").read_text(encoding="utf-8"))


def test_build_on_a_two_node_cluster_is_byte_identical_to_the_local_build(cluster, inputs):
    common = ["a.jsonl", "b.jsonl", "--heldout", "20", "--seed", "3"]
    _idata(inputs, "build", *common, "--out", "build-local")
    _idata(inputs, "build", *common, "--engine", "ray", "--ray-address", cluster, "--out", "build-ray")
    _same_outputs(inputs / "build-local", inputs / "build-ray")
    assert (inputs / "build-ray" / "duplicates.jsonl").stat().st_size > 0  # the planted copies were found
    assert (inputs / "build-ray" / "rejects.jsonl").stat().st_size > 0  # the bad line


def test_dedupe_on_a_two_node_cluster_is_byte_identical_to_local_dedupe(cluster, inputs):
    _idata(inputs, "dedupe", "a.jsonl", "b.jsonl", "--out", "dedupe-local")
    _idata(inputs, "dedupe", "a.jsonl", "b.jsonl", "--engine", "ray", "--ray-address", cluster,
           "--out", "dedupe-ray")
    _same_outputs(inputs / "dedupe-local", inputs / "dedupe-ray")
    assert (inputs / "dedupe-ray" / "duplicates.jsonl").stat().st_size > 0
