"""--out safety: what a command writes never touches an input, a user's file or another run.

    with guard_output(out, inputs, command="dedupe"):            # an output folder
        dedupe_files(inputs, out, ...)
    with guard_output(out, inputs, command="convert", overwrite=overwrite):   # an output file
        convert(inputs, out, ...)

Before anything is read, the guard

- refuses an --out that is an input, or that holds one (an input inside the output folder);
- refuses an output folder that holds anything the command did not write: a folder is
  recognised as the command's own by its manifest.json (written by the same command), and
  then only the names that command writes, and the outputs its manifest lists, may be in it;
  anything else is the user's, and stays;
- refuses to replace an output file (and the ledger files beside it) that no idata run wrote,
  unless --overwrite: idata's own is recognised by the manifest beside it, which lists it;
- takes a lock beside --out (`.NAME.lock`), so a second run into the same --out fails at once;
- removes what runs that died left behind: temporary files and folders carry the pid of their
  run in their name (`.train.jsonl.PID-xxxx.tmp`, `.OUT.building-PID-xxxx`, `.OUT.old-PID`), and
  those of a pid that no longer runs are deleted.

A folder command writes into a fresh hidden folder beside --out (`staged_folder`), swapped in
once at the end (`swap_in`): an interrupted run, even one killed at the moment its first file is
renamed, leaves the previous outputs whole, never a mix of old and new. The outputs an earlier
run wrote and this one did not (a dedupe of other inputs) go with the old folder.

--out is resolved through symlinks first, so a link and the folder it names share one lock and
the swap replaces the folder, never the link.

Commands whose output names vary (train: the tokenizer's files; merge: a model folder; eval: one
file per benchmark) have their folder recognised by the `manifest.json` the swap writes in it
(`{"command": ..., "outputs": [...]}`) when the command wrote none of its own.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.faults import reached
from instruct_data.ledger import ledger_paths
from instruct_data.report import PLOTS, TOKEN_PLOT

# What each folder command writes besides the outputs its manifest lists.
FOLDER_NAMES = {
    "build": {"train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl",
              "rejects.jsonl", "duplicates.jsonl",
              "manifest.json", "report.md", *PLOTS, TOKEN_PLOT},
    "dedupe": {"rejects.jsonl", "duplicates.jsonl", "manifest.json"},
    "to-multiturn": {"train.jsonl", "conversations.jsonl", "rejects.jsonl", "duplicates.jsonl", "manifest.json"},
    "export": {"manifest.json"},  # and the outputs its manifest lists (one layout per --to)
}
VIEW = "view.html"  # `idata view` writes it into a build or eval folder: idata's, and goes with the folder
# Commands whose output names vary: recognised by the manifest the swap writes (outputs listed).
MANIFEST_COMMANDS = {"train", "merge", "eval", "score"}
# What those commands wrote before they had a manifest, recognised by a file in it.
LEGACY = {
    "eval": ("results.json", re.compile(r"^(predictions\.jsonl|results\.json|report\.md|scores_by_category\.png|"
                                        r"knowledge-[^/]+\.jsonl)$")),
    "train": ("run_config.json", re.compile(r"^(adapter_model\.safetensors|adapter_config\.json|run_config\.json|"
                                            r"metrics\.json|template\.json|generation_config\.json|loss_curve\.png|"
                                            r"logs|checkpoints|README\.md|chat_template\.jinja|tokenizer.*|vocab\.json|"
                                            r"merges\.txt|special_tokens_map\.json|added_tokens\.json)$")),
}
LEGACY["score"] = LEGACY["eval"]
RESULTS_COMMANDS = {"eval", "score"}  # one may write into the other's folder (score rescoring in place)

# Temporary names, each with the pid of the run that made it (io.temp_beside, pipeline.run).
TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[^./]+\.tmp$")


def building_prefix(out: Path) -> str:
    """mkdtemp prefix of the folder a build writes before it is swapped in."""
    return f".{out.name}.building-{os.getpid()}-"


def old_name(out: Path) -> str:
    """Where a build's previous outputs wait while the new ones are swapped in."""
    return f".{out.name}.old-{os.getpid()}"


def real_out(out: str | os.PathLike) -> Path:
    """--out with every symlink resolved: a link and its target are one output, one lock."""
    return Path(os.path.realpath(os.path.abspath(out)))


def swap_in(work: Path, out: Path) -> None:
    """Put the finished folder `work` at `out` with two renames; the old outputs are deleted only
    once the new ones are in place. Signals wait for the end of the swap (`no_signals`)."""
    global committed
    if out.is_symlink():  # never move the link aside: replace the folder it names
        out = real_out(out)
    global swapping
    old, swapped = None, False
    try:
        swapping = True
        with no_signals():
            reached("swap")  # the fault tests signal here: the moment the first output is renamed
            if out.is_dir() and _exchange(work, out):
                # One atomic step; the old outputs, now at the work folder's name, take the name
                # a later run removes if this one dies before it does.
                old = out.parent / old_name(out)
                os.replace(work, old)
            else:
                if out.exists():
                    old = out.parent / old_name(out)
                    os.replace(out, old)  # a run killed here: the next run puts it back (_remove_stale)
                os.replace(work, out)
            committed = swapped = True
    finally:  # also when a signal held back during the renames is raised now
        if old is not None and swapped:
            shutil.rmtree(old, ignore_errors=True)
        swapping = False


# True once this process has swapped its outputs in: an interrupt after that point must not
# say that the outputs were left as before (cli.common reads it).
committed = False
swapping = False  # during the renames: cli.common's interrupt watchdog waits for them to end


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    system cannot, and the caller renames twice."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextmanager
def no_signals():
    """Ctrl-C and SIGTERM held back for the few renames of a swap, and delivered just after.

    The Python handlers are swapped for ones that only note the signal: blocking it with
    pthread_sigmask would not do, since the kernel hands a process's signal to any thread
    that does not block it (a worker pool's reader thread) and the handler still runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda signum, frame: noted.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if noted:
            signal.raise_signal(noted[0])  # now, through the handler the command had


def fresh_work_folder(out: Path) -> Path:
    """A new, empty folder beside `out` for a run to write its outputs into before the swap."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later run remove the folder if this process dies (_remove_stale).
    work = Path(tempfile.mkdtemp(prefix=building_prefix(out), dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(work, 0o777 & ~umask)  # mkdtemp makes it private; the outputs are an ordinary folder
    return work


@contextmanager
def staged_folder(out: str | os.PathLike, *, command: str | None = None, carry: Iterable[str] = ()) -> Iterator[Path]:
    """A fresh folder beside `out` to write a run's outputs into; swapped in at `out` when the
    block ends without error, deleted when it fails. `command`: write a manifest.json listing the
    outputs when the run wrote none (how the guard recognises the folder next time). `carry`:
    names of the old folder to keep in the new one (hard-linked where possible)."""
    out = real_out(out)
    work = fresh_work_folder(out)
    try:
        yield work
        for name in carry:
            if (out / name).is_file() and not (work / name).exists():
                _link_or_copy(out / name, work / name)
        if command is not None and not (work / "manifest.json").exists():
            write_folder_manifest(work, command)
        swap_in(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_folder_manifest(folder: Path, command: str) -> None:
    """manifest.json naming the command and every entry of `folder` (bytes for files)."""
    from instruct_data import __version__

    outputs = [{"path": entry.name, "bytes": entry.stat().st_size if entry.is_file() else None}
               for entry in sorted(folder.iterdir()) if not entry.name.startswith(".")]
    data = {"command": command, "idata_version": __version__, "outputs": outputs}
    (folder / "manifest.json").write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


class OutputError(IdataError):
    """An output that cannot be written: exit 1 (2 is for inputs and options)."""

    exit_code = 1


@contextmanager
def guard_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike], *, command: str,
                 overwrite: bool = False, models: Iterable[str | os.PathLike | None] = (),
                 staged: bool = False) -> Iterator[Path]:
    """Check --out against the inputs and what it holds, lock it, and clean up after dead runs.
    `inputs`: every path the command reads (files, folders, globs as given, or expanded).
    `models`: model and adapter folders the command loads (--model, --base, --adapter; hub names
    are skipped): --out may not be one, hold one, or lie inside one.
    Yields --out resolved through symlinks; with `staged`, a fresh folder beside it instead,
    swapped in at --out when the block ends without error (see staged_folder)."""
    out = real_out(out)
    folder = command in FOLDER_NAMES or command in MANIFEST_COMMANDS
    targets = [out] if folder else [out, *ledger_files(out)]
    inputs = list(inputs)
    _refuse_models(out, models)
    _refuse_inputs(out, targets, _input_files(inputs, folder), folder)
    with _locked(out):
        _remove_stale(out, folder)
        previous = _check_folder(out, command, overwrite) if folder else _check_file(out, targets, overwrite)
        created = folder and not out.exists()
        try:
            if staged:
                with staged_folder(out, command=command if command in MANIFEST_COMMANDS else None) as work:
                    yield work
            else:
                yield out
        except BaseException as exc:
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # a failed run leaves no trace, not even the empty folder it made
            if isinstance(exc, OSError):  # a full disk, a file the user may not read: one line
                raise _os_error(exc, out, inputs) from None
            raise
        if folder and not staged:
            _remove_unlisted(out, previous)


def adapter_base(adapter: str | os.PathLike | None) -> str | None:
    """The base model an adapter folder names (adapter_config.json), or None: a folder the
    command loads, so --out may not be it."""
    try:
        data = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    except (TypeError, OSError, ValueError):
        return None
    base = data.get("base_model_name_or_path") if isinstance(data, dict) else None
    return base if isinstance(base, str) else None


def _refuse_models(out: Path, models: Iterable[str | os.PathLike | None]) -> None:
    """--out is never a model or adapter folder the command loads, nor a folder that holds one
    or lies inside one (a merge into its base model's folder would replace the base's weights)."""
    for model in models:
        if not model or not Path(model).exists():
            continue  # a hub name: nothing local to protect
        real = Path(os.path.realpath(model))
        if out == real:
            raise OutputError(f"--out {out} is the model folder {model} this command reads; give another --out")
        if out in real.parents:
            raise OutputError(f"--out {out} holds {model}, which this command reads; give a folder that does not "
                              "hold it")
        if real in out.parents:
            raise OutputError(f"--out {out} lies inside {model}, which this command reads; give a folder outside it")


def _os_error(exc: OSError, out: Path, inputs: list) -> IdataError:
    """An input that cannot be read (exit 2), else an output that cannot be written (exit 1)."""
    why = "a symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
    if exc.filename:
        path = Path(os.path.abspath(exc.filename))
        given = [Path(os.path.abspath(p)) for p in inputs if not any(ch in str(p) for ch in "*?[")]
        if any(path == p or p in path.parents for p in given):
            return InputError(str(exc.filename), f"cannot read: {why}")
    return OutputError(f"{exc.filename or out}: cannot write: {why}")


def ledger_files(out: Path) -> list[Path]:
    """The ledger files `idata convert` writes beside its output file (ledger.ledger_paths)."""
    return ledger_paths(out)


# ---------------------------------------------------------------- inputs


def _input_files(inputs: Iterable[str | os.PathLike], folder: bool) -> list[Path]:
    """Every input path as given, absolute (links resolved: a link to the output is the
    output); for an output folder, the files inside input folders too. (`idata convert` leaves
    its own earlier outputs out of an input folder it expands, so for it only paths given count.)"""
    paths = []
    for item in inputs:
        path = Path(item)
        if any(ch in str(item) for ch in "*?["):
            continue  # a glob: the command passes its matches too
        paths.append(path)
        if folder and path.is_dir():
            paths += [p for p in path.rglob("*") if p.is_file()]
    return [Path(os.path.realpath(p)) for p in paths]


def _refuse_inputs(out: Path, targets: list[Path], inputs: list[Path], folder: bool) -> None:
    real_targets = {Path(os.path.realpath(t)) for t in targets}
    real_out = Path(os.path.realpath(out))
    for path in inputs:
        if path in real_targets:
            raise OutputError(f"--out {out}: {path} is an input; give an --out that is not one of the inputs")
        if folder and real_out in path.parents:
            raise OutputError(f"--out {out} holds the input {path}; give an output folder outside the inputs")


# ---------------------------------------------------------------- what --out holds


def _manifest(path: Path) -> dict | None:
    """An idata manifest (a JSON object naming its command), or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("command"), str) else None


def _legacy_marker(path: Path) -> bool:
    """results.json of an eval or score (it has "bootstrap"), or run_config.json of a train run
    (it has "resolved"), written before these commands wrote a manifest."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("bootstrap" in data or "resolved" in data)


def _listed(manifest: dict) -> dict[str, int | None]:
    """name -> bytes of each output the manifest lists."""
    outputs = manifest.get("outputs") or []
    return {o["path"]: o.get("bytes") for o in outputs if isinstance(o, dict) and isinstance(o.get("path"), str)}


def _check_folder(out: Path, command: str, overwrite: bool = False) -> set[str]:
    """Refuse a folder holding anything this command did not write; return the names of the
    outputs its manifest lists (empty for a new or empty folder)."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise OutputError(f"--out {out} is a file, not a folder")
    entries = {entry.name for entry in out.iterdir() if not TEMP_FILE.match(entry.name)}
    if not entries:
        return set()
    manifest = _manifest(out / "manifest.json")
    legacy = LEGACY.get(command)
    if manifest is None and legacy and _legacy_marker(out / legacy[0]):
        foreign = {name for name in entries if not legacy[1].match(name)}  # written before manifests
        if foreign:
            raise OutputError(f"--out {out} holds files idata did not write ({_some(foreign)}); "
                              "move them, or give another folder")
        return set(entries)
    if manifest is None:
        raise OutputError(f"--out {out} holds files idata did not write ({_some(entries)}); "
                          "give a new or empty folder")
    if manifest["command"] != command and not {manifest["command"], command} <= RESULTS_COMMANDS:
        raise OutputError(f"--out {out} holds the output of `idata {manifest['command']}`; "
                          f"give another folder for `idata {command}`")
    listed = set(_listed(manifest))
    foreign = entries - FOLDER_NAMES.get(command, set()) - listed - {"manifest.json", VIEW}
    if foreign:
        raise OutputError(f"--out {out} holds files idata did not write ({_some(foreign)}); "
                          "move them, or give another folder")
    if command == "merge" and not overwrite:
        raise OutputError(f"--out {out} holds an earlier merge; pass --overwrite to replace it")
    return listed


def _check_file(out: Path, targets: list[Path], overwrite: bool) -> set[str]:
    """Refuse to replace an output file, or a ledger file beside it, that no idata run wrote."""
    if out.is_dir():
        raise OutputError(f"--out {out} is a folder, not a file")
    manifest_path = targets[-1]
    manifest = _manifest(manifest_path)
    listed = _listed(manifest) if manifest else {}
    for path in targets:
        if not path.exists() or overwrite:
            continue
        ours = path == manifest_path and manifest is not None or \
            path.name in listed and listed[path.name] in (None, path.stat().st_size)
        if not ours:
            raise OutputError(f"{path} exists and was not written by idata; pass --overwrite to replace it")
    return set()


def _some(names: set[str], shown: int = 5) -> str:
    names = sorted(names)
    more = f", and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _remove_unlisted(out: Path, previous: set[str]) -> None:
    """After a successful run: earlier outputs the new manifest no longer lists."""
    manifest = _manifest(out / "manifest.json")
    if manifest is None:
        return
    current = set(_listed(manifest))
    for name in previous - current - {"manifest.json"}:
        (out / name).unlink(missing_ok=True)


# ---------------------------------------------------------------- lock and stale files


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True


def _dead(name: str, pattern: re.Pattern) -> bool:
    match = pattern.match(name)
    return bool(match) and int(match["pid"]) != os.getpid() and not _pid_runs(int(match["pid"]))


def _remove_stale(out: Path, folder: bool) -> None:
    """Temporary files and folders of runs into this --out whose process no longer runs."""
    name = re.escape(out.name)
    dirs = re.compile(rf"^\.{name}\.(?:building-(?P<pid>\d+)-[^/]+|old-(?P<pid2>\d+))$")
    parent_files = re.compile(rf"^\.(?:{name}|{'|'.join(re.escape(p.name) for p in ledger_files(out))})"
                              rf"\.(?P<pid>\d+)-[^./]+\.tmp$")
    if not out.parent.is_dir():
        return
    for entry in sorted(out.parent.iterdir()):
        match = dirs.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            pid = int(match["pid"] or match["pid2"])
            if pid != os.getpid() and not _pid_runs(pid):
                if match["pid2"] and not out.exists():
                    os.replace(entry, out)  # killed between the two renames of a swap: put it back
                else:
                    shutil.rmtree(entry, ignore_errors=True)
        elif match and entry.is_symlink() and not _pid_runs(int(match["pid"] or match["pid2"])):
            entry.unlink()  # left by the swap of a symlinked --out before links were resolved
        elif not folder and _dead(entry.name, parent_files):
            entry.unlink(missing_ok=True)
    if folder and out.is_dir():
        for entry in out.iterdir():
            if _dead(entry.name, TEMP_FILE):
                entry.unlink(missing_ok=True)


def output_lock(out: str | os.PathLike):
    """The lock every command takes on --out (`idata stats` on the build folder it rewrites
    report.md in): resolved through symlinks, so a link and its folder share it."""
    return _locked(real_out(out))


@contextmanager
def _locked(out: Path):
    """An exclusive lock on `.NAME.lock` beside --out for the run, removed at its end. The
    kernel releases it when the process dies, so a killed run never blocks the next one."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f".{out.name}.lock"
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"--out {out}: cannot write beside it: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputError(f"--out {out} is being written by another idata run (pid {holder}); wait for it "
                              "to finish, or give another --out") from None
        # The file may have been removed by the run that held it between our open and lock:
        # then the lock is on a file nobody else sees; take it again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        try:
            os.unlink(path)
        finally:
            os.close(fd)
