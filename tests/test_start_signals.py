"""Ctrl-C or SIGTERM while `idata` starts: one line, exit 130/143, no traceback.

Loading click, rich and a command takes a few hundred milliseconds (more on a busy machine)
before the command line's own handlers are in place; the console script (instruct_data/entry.py)
installs handlers first of all. The signal is sent at moments counted from when those are in
place (seen in /proc/PID/status): 0 ms is the first moment idata's own code controls, 200 ms
is inside a command's work. The moments before it are Python's own start-up (the interpreter and
`site`), where no idata code runs: docs/guarantees.md says what a signal does there.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from entrypoint import start
from faultkit import finish, send, signals_caught, wait_until

MOMENTS_MS = (0, 20, 50, 100, 200)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Enough rows that validate and build are still busy 200 ms after they start, with room to
    spare: the row path's fast path validates 20,000 plain rows in well under 200 ms on a quiet
    machine, so a smaller file let validate finish before the signal came."""
    path = tmp_path_factory.mktemp("start") / "rows.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"第{n}个问题是什么", "output": f"第{n}个回答"},
                                       ensure_ascii=False) + "\n" for n in range(300000)), encoding="utf-8")
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["validate", "build"])
def test_a_signal_at_any_moment_of_start_up_ends_with_one_line(rows, tmp_path, command, sig):
    for ms in MOMENTS_MS:
        out = tmp_path / f"out-{ms}"
        proc = start(command, rows, *(["--no-near", "--out", out] if command == "build" else []))
        wait_until(lambda: signal.SIGTERM in signals_caught(proc.pid), proc, "idata's signal handlers", every=0.001)
        time.sleep(ms / 1000)
        send(proc, sig)  # SIGINT to the whole process group, as Ctrl-C does
        where = f"{command}, {sig.name} {ms} ms after idata's handlers"
        _, err = finish(proc, 60, where)
        assert proc.returncode == 128 + sig, (where, proc.returncode, err[-2000:])
        assert "Traceback" not in err, (where, err[-3000:])
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "interrupted" in lines[0], (where, err[-2000:])
        assert not out.exists() or not any(out.iterdir()), (where, "a half-written --out")


SWALLOWED = r'''
import os, signal, sys, time
import click
from instruct_data.cli.common import run_cli

class Doomed:
    def __del__(self):
        os.kill(os.getpid(), signal.SIG)  # arrives while Python runs a __del__ ...
        for _ in range(1000):  # ... whose bytecodes run the handler: its exception cannot leave __del__
            pass

@click.group()
def group():
    pass

@group.command()
def work():
    Doomed()
    time.sleep(0.1)
    print("ran on as if never stopped")

run_cli(group, ["work"])
'''


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_whose_exception_python_would_swallow_still_stops_the_command(sig):
    """Importlib's module-lock callbacks run while a command loads; an interrupt raised inside one
    (or any __del__) was printed as "Exception ignored" and the command ran to the end, exit 0."""
    result = stopped_with_one_line(SWALLOWED, sig)
    assert "Exception ignored" not in result.stderr, result.stderr


def stopped_with_one_line(script: str, sig) -> subprocess.CompletedProcess:
    """Run a script that signals itself (`signal.SIG)` in it: `sig`); it must end as interrupted,
    with one line, without running on."""
    script = script.replace("signal.SIG)", f"signal.{sig.name})")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, COLUMNS="200", NO_COLOR="1"))
    assert result.returncode == 128 + sig, (result.returncode, result.stdout, result.stderr)
    assert "ran on" not in result.stdout, result.stdout
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"interrupted ({sig.name}): stopped; outputs are left as they were before the run"], result.stderr
    return result


WRAPPED = r'''
import os, signal, time
import click
from instruct_data.cli.common import run_cli

class Field:
    def __set_name__(self, owner, name):  # as a dataclass field's, while a module is imported
        os.kill(os.getpid(), signal.SIG)
        time.sleep(0.2)  # the handler runs here: its exception leaves __set_name__

@click.group()
def group():
    pass

@group.command()
def work():
    class Template:
        stop = Field()
    print("ran on as if never stopped")

run_cli(group, ["work"])
'''


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_inside_a_descriptors_set_name_stops_the_command_with_one_line(sig):
    """Python wraps what __set_name__ raises in a RuntimeError ("Error calling __set_name__ on
    'Field' instance 'stop'"): a Ctrl-C there left a traceback, then the re-arming timer's
    SIGALRM killed the process (exit -14; seen once in CI's start-up signal test)."""
    stopped_with_one_line(WRAPPED, sig)


COMPILED = r'''
import os, subprocess, sys
import click
from instruct_data.cli.common import run_cli

# A module Python compiles from source (no .pyc): a second or so of parsing, then constant
# folding, whose `2**63` checks for signals and clears any exception but a KeyboardInterrupt.
folder = sys.argv[1]
source = "".join(f"v{n} = ({n}, 'text {n}')\n" for n in range(150000)) + "BIG = float(2**63)\n"
with open(os.path.join(folder, "slow_to_compile.py"), "w") as file:
    file.write(source)
sys.path.insert(0, folder)
sys.dont_write_bytecode = True

@click.group()
def group():
    pass

@group.command()
def work():
    # From another process: a thread of this one would wait for the GIL, which compile() holds.
    subprocess.Popen(["sh", "-c", f"sleep 0.2; kill -SIG {os.getpid()}"])
    HOW
    print("ran on as if never stopped")

run_cli(group, ["work"])
'''


@pytest.mark.parametrize("how", ["import slow_to_compile", "compile(source, 'library.py', 'exec')"],
                         ids=["import", "compile"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_while_python_compiles_source_stops_the_command(sig, how, tmp_path):
    """A run without .pyc files compiles every idata module it loads; an interrupt that came
    meanwhile was cleared by CPython's constant folding (the command ran to the end, exit 0), or
    broke importlib's locks (a KeyError traceback, exit 1). Also for compile() called by a library."""
    script = COMPILED.replace("-SIG ", f"-{sig.name[3:]} ").replace("HOW", how)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, COLUMNS="200", NO_COLOR="1"))
    assert result.returncode == 128 + sig, (result.returncode, result.stdout, result.stderr)
    assert "ran on" not in result.stdout, result.stdout
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"interrupted ({sig.name}): stopped; outputs are left as they were before the run"], result.stderr
