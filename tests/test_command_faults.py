"""train, merge, eval, score and stats as a hostile user tries them, through the installed `idata`:
--out refused where it would destroy something, one lock for every command, outputs swapped in
whole (signals at 10/35/60/99% of the work and at the moment the first output is renamed),
workers and stalled judges that never outlive a stop, and secrets that never reach a file.

Signals are sent on progress, never after a guessed wall time: the command writes where it has
got to in $IDATA_PROGRESS_FILE and, with $IDATA_HOLD_AT, waits at the chosen point
(instruct_data.faults), so a busy machine only makes the test slower.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from entrypoint import IDATA, assert_one_line_error, idata
from faultkit import assert_gone, descendants, finish, send, wait_until

FIXTURES = Path(__file__).parent / "fixtures"
HELDOUT = FIXTURES / "eval" / "heldout.jsonl"
TRAIN = ["--max-len", "128", "--batch-size", "4", "--logging-steps", "1", "--save-steps", "4", "--no-progress",
         "--lr", "0.01", "--template", "seed"]
SECRET, KEY = "PLANTEDpw8431", "PLANTEDkey5519"


# ---------------------------------------------------------------- helpers


def files(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under `folder` (hidden names skipped)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".lock"))
                  or ".building-" in p.name or ".old-" in p.name)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def error_line(result: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit `code`, no traceback, and a line (the last one) holding every word given. (Not
    `assert_one_line_error`: train and eval may print what they load before they stop.)"""
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = [line for line in result.stderr.splitlines() if line.strip()][-1]
    for word in words:
        assert word in line, (word, line)
    return line


def run_env(tmp_path: Path, **extra: str) -> dict:
    return dict(os.environ, COLUMNS="200", NO_COLOR="1", IDATA_CACHE=str(tmp_path / "cache"), **extra)


def signal_at(args: list, hold: str, sig: signal.Signals, tmp_path: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `idata ARGS`, wait until it holds at `hold` (a stage, or STAGE:FRACTION), send `sig`
    (SIGINT to the process group, as Ctrl-C does), and check that it ends within 20 s with every
    process it started. At the swap, Ctrl-C and SIGTERM wait for the renames (a 3 s hold)."""
    marks = tmp_path / f"progress-{time.monotonic_ns()}"
    hold_s = "3" if hold == "swap" and sig != signal.SIGKILL else "60"
    env = run_env(tmp_path, IDATA_PROGRESS_FILE=str(marks), IDATA_HOLD_AT=hold, IDATA_HOLD_S=hold_s)
    proc = subprocess.Popen([str(IDATA), *map(str, args)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    wait_until(lambda: marks.is_file() and "hold " in marks.read_text(), proc, f"it reached {hold}", timeout=timeout)
    workers = descendants(proc.pid)
    send(proc, sig)
    where = f"{args[0]} {sig.name} at {hold}"
    out, err = finish(proc, 20, where)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, (where, err[-2000:])
    else:
        assert proc.returncode == 128 + sig, (where, proc.returncode, err[-3000:])
        assert "Traceback" not in err, (where, err[-3000:])
        assert "interrupted" in err.splitlines()[-1], (where, err[-2000:])
    assert_gone(workers, 10, f"{where}: a worker outlived its parent")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny model, training rows, and one finished run (the adapter) of it."""
    from instruct_data.training.tiny import DEFAULT_TEXT, make_tiny_model

    root = tmp_path_factory.mktemp("commands")
    model = make_tiny_model(root / "tiny", "llama", texts=DEFAULT_TEXT)
    data = write_jsonl(root / "train.jsonl", [
        {"context": f"Instruction: 用一句话解释第{i}个词。\nAnswer: ", "target": f"第{i}个词是一个常用的词。"}
        for i in range(16)])
    run = root / "run"
    result = idata("train", "--data", data, "--model", model, "--out", run, "--max-steps", "4",
                   "--cache-dir", root / "tok", *TRAIN, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "model": model, "data": data, "run": run, "tok": root / "tok"}


# ---------------------------------------------------------------- --out refused


def test_out_is_never_a_model_the_adapter_s_parent_or_a_users_folder(setup, tmp_path):
    model, run, data = setup["model"], setup["run"], setup["data"]
    before = files(model)
    common = ["--data", data, "--model", model, "--max-steps", "1", "--cache-dir", setup["tok"], *TRAIN]
    error_line(idata("train", *common, "--out", model, "--overwrite"), 1, "model folder")
    parent = tmp_path / "par"
    (parent / "sub").mkdir(parents=True)
    (parent / "notes.md").write_text("mine")
    (parent / "sub" / "thesis.txt").write_text("mine too")
    adapter = parent / "ad"
    import shutil

    shutil.copytree(run, adapter)
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "README.md").write_text("my readme")
    error_line(idata("train", *common, "--out", user, "--overwrite"), 1, "did not write", "README.md")
    error_line(idata("merge", "--adapter", adapter, "--out", parent, "--overwrite"), 1, "holds")
    error_line(idata("merge", "--adapter", run, "--base", model, "--out", model, "--overwrite"), 1,
                          "model folder")
    assert (parent / "notes.md").read_text() == "mine" and (parent / "sub" / "thesis.txt").is_file()
    assert files(adapter) == files(run)
    assert files(model) == before and (user / "README.md").read_text() == "my readme"

    # eval and score: a folder of the user's with files named like theirs is not theirs.
    mine = tmp_path / "results"
    mine.mkdir()
    for name in ("predictions.jsonl", "report.md", "results.json", "notes.txt"):
        (mine / name).write_text("{}\n")
    error_line(idata("eval", "-m", model, "-b", HELDOUT, "--out", mine), 1, "did not write")
    error_line(idata("score", run / "metrics.json", "--out", mine), 1, "did not write")
    assert all((mine / name).read_text() == "{}\n" for name in ("predictions.jsonl", "report.md", "results.json"))
    # An eval may not write into the adapter or the model it reads.
    error_line(idata("eval", "-m", model, "-a", run, "-b", HELDOUT, "--out", run), 1, "model folder")


def test_an_existing_folder_given_as_a_benchmark_says_what_is_wrong(setup, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    result = idata("eval", "-m", setup["model"], "-b", folder, "--out", tmp_path / "e")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "no such file" not in result.stderr and "folder" in result.stderr, result.stderr


def test_every_command_takes_the_same_lock_through_symlinks(setup, tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    build = tmp_path / "build"
    rows = [{"instruction": f"问题{i}是什么意思呢", "output": f"这是第{i}个回答，内容足够长。"} for i in range(12)]
    assert idata("build", write_jsonl(tmp_path / "rows.jsonl", rows), "--out", build, "--no-near").returncode == 0
    commands = {
        "train": ["train", "--data", setup["data"], "--model", setup["model"], "--out", link, "--max-steps", "1",
                  "--cache-dir", setup["tok"], *TRAIN],
        "merge": ["merge", "--adapter", setup["run"], "--out", link],
        "eval": ["eval", "-m", setup["model"], "-b", HELDOUT, "--out", link, "--max-new-tokens", "2"],
        "score": ["score", HELDOUT, "--out", link],
        "dedupe": ["dedupe", tmp_path / "rows.jsonl", "--out", link],
    }
    lock = tmp_path / ".real.lock"  # the link's target: a run through the link takes this lock
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        for name, args in commands.items():
            error_line(idata(*args), 1, "another idata run", str(os.getpid()))
        with open(tmp_path / ".build.lock", "w") as other:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            error_line(idata("stats", build), 1, "another idata run")
    lock.unlink()
    (tmp_path / ".build.lock").unlink()  # the test's own
    # Through the link, twice: the folder is replaced, the link stays a link, nothing is left.
    for _ in range(2):
        result = idata(*commands["dedupe"])
        assert result.returncode == 0, result.stderr
    assert link.is_symlink() and (real / "manifest.json").is_file()
    assert leftovers(tmp_path) == []


def test_stats_on_a_damaged_manifest_is_one_line(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    for text, words in (("[]", ("not a JSON object",)), ('{"command": "build"}', ("counts",)),
                        ('{"command": "build", "counts": {"totals": {"read": "x"}, "per_source": {}}}',
                         ("counts.totals",)), ("{", ("invalid JSON",))):
        (folder / "manifest.json").write_text(text)
        error_line(idata("stats", folder), 2, "manifest.json", *words)
        assert not (folder / "report.md").exists()


def test_a_resume_that_would_train_past_max_steps_or_also_overwrite_is_refused(setup, tmp_path):
    """A run at step 4 resumed with --max-steps 2 (or 4) was rewritten: mid-epoch it trained a
    5th step anyway (`step 5/2`) and replaced its adapter and checkpoints, at an epoch's end (as
    here) it wrote the run again with `0 tokens/s`; --resume --overwrite resumed, silently."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(setup["run"], run)  # at step 4, checkpoint-4
    before = files(run)
    args = ["train", "--data", setup["data"], "--model", setup["model"], "--out", "run", "--cache-dir", setup["tok"],
            *TRAIN, "--resume"]
    for steps in ("2", "4"):
        line = assert_one_line_error(idata(*args, "--max-steps", steps, cwd=tmp_path, timeout=300), 2)
        assert line == (f"error: --resume: run is already at step 4, at or past --max-steps {steps}; "
                        "raise --max-steps to train on")
    assert_one_line_error(idata(*args, "--max-steps", "8", "--overwrite", cwd=tmp_path, timeout=300), 2,
                          "--resume and --overwrite conflict")
    assert files(run) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no unfinished folder, no lock


def test_merge_and_eval_check_the_adapter_folder_before_loading_a_model(setup, tmp_path):
    """An adapter folder with no weights: merge loaded the base model, then blamed its --out
    (`merged: cannot write: …`, exit 1); a damaged adapter_config.json was a bare JSON message."""
    folder = tmp_path / "noweights"
    folder.mkdir()
    (folder / "adapter_config.json").write_bytes((setup["run"] / "adapter_config.json").read_bytes())
    commands = (["merge", "--adapter", "noweights", "--out", "merged"], ["eval", "-a", "noweights", "-o", "ev"])
    for command in commands:
        line = assert_one_line_error(idata(*command, cwd=tmp_path, timeout=300), 2)
        assert line.startswith("error: noweights: no adapter_model.safetensors ("), line
    (folder / "adapter_config.json").write_text("{bad")
    for command in commands:
        line = assert_one_line_error(idata(*command, cwd=tmp_path, timeout=300), 2)
        assert line.startswith("error: noweights/adapter_config.json:1: not valid JSON ("), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noweights"]  # no --out made, nothing left
    assert files(folder) == {"adapter_config.json": hashlib.sha256(b"{bad").hexdigest()}


# ---------------------------------------------------------------- signals on progress


def test_train_stopped_anywhere_leaves_the_previous_run_and_resumes_from_its_checkpoints(setup, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", setup["data"], "--model", setup["model"], "--out", out, "--cache-dir", setup["tok"],
            *TRAIN, "--max-steps", "8", "--save-steps", "2"]  # (the last of an option given twice counts)
    assert idata(*args, timeout=300).returncode == 0
    previous = files(out)
    assert any(name.startswith("checkpoints/") and name.endswith("optimizer.pt") for name in previous)
    unfinished = tmp_path / ".run.unfinished"
    # Step 1 of 8, before any checkpoint: nothing of the new run is left.
    signal_at([*args, "--overwrite"], "train:0.1", signal.SIGINT, tmp_path)
    assert files(out) == previous and not unfinished.exists()
    # Step 3: checkpoint-2 is kept for --resume, and said so; the previous run is whole.
    result = signal_at([*args, "--overwrite"], "train:0.35", signal.SIGTERM, tmp_path)
    assert "--resume" in result.stderr and files(out) == previous
    assert (unfinished / "checkpoints" / "checkpoint-2").is_dir()
    error_line(idata(*args), 1, "unfinished run", "--resume")
    signal_at([*args, "--resume"], "train:0.6", signal.SIGKILL, tmp_path)
    assert files(out) == previous and (unfinished / "checkpoints" / "checkpoint-4").is_dir()
    # Ctrl-C at the swap waits for the renames: the resumed run is in place, whole.
    result = signal_at([*args, "--resume"], "swap", signal.SIGINT, tmp_path)
    assert "already complete" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["resumed_from"].endswith("checkpoint-4")
    assert json.loads((out / "manifest.json").read_text())["command"] == "train"
    assert not unfinished.exists() and leftovers(tmp_path) == []


def test_eval_score_and_merge_stopped_anywhere_leave_the_previous_outputs(setup, tmp_path):
    out = tmp_path / "e"
    args = ["eval", "-m", setup["model"], "-a", setup["run"], "-b", HELDOUT, "--out", out, "--max-new-tokens", "4",
            "--batch-size", "1", "--compare-base"]
    assert idata(*args, timeout=300).returncode == 0
    previous = files(out)
    # (SIGKILL at 60% is train's; here 99% of generation and the rename.)
    for sig, hold in ((signal.SIGTERM, "eval:0.99"), (signal.SIGKILL, "swap")):
        signal_at(args, hold, sig, tmp_path)
        assert files(out) == previous, f"eval {sig.name} at {hold}: the previous outputs changed"
    result = signal_at(args, "swap", signal.SIGINT, tmp_path)  # completes, and cleans up after the killed runs
    assert "already complete" in result.stderr and (out / "results.json").is_file()
    scored = tmp_path / "scored"
    assert idata("score", out / "predictions.jsonl", "--out", scored).returncode == 0
    before = files(scored)
    signal_at(["score", out / "predictions.jsonl", "--out", scored], "swap", signal.SIGKILL, tmp_path)
    assert files(scored) == before
    merged = tmp_path / "merged"
    assert idata("merge", "--adapter", setup["run"], "--out", merged).returncode == 0
    assert json.loads((merged / "manifest.json").read_text())["command"] == "merge"
    error_line(idata("merge", "--adapter", setup["run"], "--out", merged), 1, "--overwrite")  # 1, as the README says
    before = files(merged)
    result = signal_at(["merge", "--adapter", setup["run"], "--out", merged, "--overwrite"], "swap", signal.SIGINT,
                       tmp_path)
    assert "already complete" in result.stderr and files(merged).keys() == before.keys()
    assert idata("score", out / "predictions.jsonl", "--out", scored).returncode == 0
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("command", ["build", "dedupe", "to-multiturn"])
def test_data_commands_killed_at_the_first_rename_leave_old_or_new_never_both(command, tmp_path):
    rows = [{"instruction": f"问题{i}是什么意思呢", "output": f"这是第{i}个回答，内容足够长。"} for i in range(30)]
    first = write_jsonl(tmp_path / "a.jsonl", rows[:20])
    second = write_jsonl(tmp_path / "b.jsonl", rows[10:])
    out = tmp_path / "out"
    assert idata(command, first, "--out", out).returncode == 0
    previous = files(out)
    signal_at([command, second, "--out", out], "swap", signal.SIGKILL, tmp_path)
    assert files(out) == previous
    signal_at([command, second, "--out", out], "swap", signal.SIGTERM, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [str(second)]  # the new run, whole
    assert {o["path"]: o["sha256"] for o in manifest["outputs"]}.items() <= files(out).items()
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- judges and secrets


class Judge(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Judge.seen.append(self.headers.get("Authorization"))
        if "FAIL" in json.dumps(body, ensure_ascii=False):
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps({"choices": [{"message": {"content": "理由：切题。\n得分：7"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_a_planted_secret_reaches_no_output_log_or_cache(setup, tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://judge:{SECRET}@127.0.0.1:{httpd.server_address[1]}/v1"
        out = tmp_path / "e"
        env = run_env(tmp_path, JUDGE_KEY=KEY)
        result = subprocess.run([str(IDATA), "eval", "-m", setup["model"], "-b", HELDOUT, "--out", out,
                                 "--max-new-tokens", "4", "--judge-url", url, "--judge-model", "j",
                                 "--judge-key-env", "JUDGE_KEY"], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert Judge.seen  # the judge was asked
        report = (out / "report.md").read_text()
        assert "127.0.0.1" in report and "***" in report
        # A failing URL: its error message lands in report.md; still no secret.
        bad = f"http://judge:{SECRET}@127.0.0.1:{httpd.server_address[1]}/FAIL/v1"
        again = subprocess.run([str(IDATA), "eval", "-m", setup["model"], "-b", HELDOUT, "--out", tmp_path / "f",
                                "--max-new-tokens", "4", "--judge-url", bad, "--judge-model", "FAIL",
                                "--judge-key-env", "JUDGE_KEY", "--judge-retries", "0"],
                               env=env, capture_output=True, text=True, timeout=300)
        printed = result.stdout + result.stderr + again.stdout + again.stderr
        for path in tmp_path.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert SECRET.encode() not in data and KEY.encode() not in data, path
        assert SECRET not in printed and KEY not in printed
        # A key given where the variable's name belongs: refused, never echoed.
        key = "sk-" + SECRET + "abcdef0123456789"
        refused = idata("eval", "-m", setup["model"], "-b", HELDOUT, "--out", tmp_path / "g", "--judge-url", url,
                        "--judge-model", "j", "--judge-key-env", key)
        line = error_line(refused, 2, "--judge-key-env", "looks like a key")
        assert SECRET not in line and "sk-" not in line
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_ctrl_c_abandons_a_judge_that_never_answers_within_5_s(setup, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])  # held open, never answered
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    env = run_env(tmp_path)
    proc = subprocess.Popen([str(IDATA), "eval", "-m", setup["model"], "-b", HELDOUT, "--out", tmp_path / "e",
                             "--max-new-tokens", "2", "--judge-url", f"http://127.0.0.1:{server.getsockname()[1]}/v1",
                             "--judge-model", "j", "--judge-timeout", "120"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_until(lambda: bool(accepted), proc, "the judge's first request", timeout=240)
        time.sleep(0.5)
        send(proc, signal.SIGINT)
        started = time.monotonic()
        _, err = finish(proc, 5, "eval did not stop within 5 s of Ctrl-C while the judge stalled")
        assert proc.returncode == 130 and time.monotonic() - started < 5, err[-2000:]
        assert "Traceback" not in err and not (tmp_path / "e").exists()
        # The main thread got out by itself, not the interrupt watchdog's os._exit 2 s later.
        assert "did not return" not in err, err[-2000:]
    finally:
        server.close()
        for conn in accepted:
            conn.close()


# ---------------------------------------------------------------- recipes


def test_a_recipe_reads_only_inside_its_folder_unless_a_path_is_absolute(tmp_path):
    from instruct_data.recipe import RecipeError, load_recipe

    folder = tmp_path / "r"
    (folder / "data").mkdir(parents=True)
    outside = write_jsonl(tmp_path / "secret.jsonl", [{"instruction": "问", "output": "答"}])
    recipe = folder / "recipe.yaml"
    for line in ("files: [../secret.jsonl]", "files: [data/../../secret.jsonl]", "files: ['~/x.jsonl']"):
        recipe.write_text(f"sources:\n  - name: a\n    {line}\n", encoding="utf-8")
        with pytest.raises(RecipeError, match=r"sources\.0\.files: .* outside the recipe's folder"):
            load_recipe(recipe)
    recipe.write_text(f"sources:\n  - name: a\n    files: [data/*.jsonl, {outside}]\nagainst: [data/q.jsonl]\n",
                      encoding="utf-8")
    loaded = load_recipe(recipe)
    assert loaded.sources[0].files == [str(folder.resolve() / "data" / "*.jsonl"), str(outside)]
    recipe.write_text("sources:\n  - name: a\n    files: [a.jsonl]\nagainst: [../q.jsonl]\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="against: ../q.jsonl is outside"):
        load_recipe(recipe)


# ---------------------------------------------------------------- workbooks


def test_dedupe_of_a_workbook_keeps_its_sheets_types_and_every_row(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    first.title = "一"
    first.append(["instruction", "output", "score"])
    for i in range(4):
        first.append([f"问题{i}是什么", f"这是回答{i}，足够长的内容。", i * 1.5])
    first.append(["问题0是什么", "这是回答0，足够长的内容。", 7])  # a duplicate of row 1
    first.append(["公式行的问题", "=CONCAT(A2,B2)", 3])  # a formula never calculated: no value
    for name in ("二", "三", "四"):
        sheet = book.create_sheet(name)
        sheet.append(["instruction", "output", "n"])
        for i in range(3):
            sheet.append([f"{name}表问题{i}是什么", f"{name}表回答{i}，足够长的内容。", i])
    book.save(tmp_path / "book.xlsx")
    result = idata("dedupe", tmp_path / "book.xlsx", "--out", tmp_path / "out", "--no-near")
    assert result.returncode == 0, result.stderr
    written = openpyxl.load_workbook(tmp_path / "out" / "book.xlsx")
    assert written.sheetnames == ["一", "二", "三", "四"]
    rows = {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in written.worksheets}
    assert rows["一"][0] == ("instruction", "output", "score") and len(rows["一"]) == 5
    assert [r[2] for r in rows["一"][1:]] == [0, 1.5, 3, 4.5]  # numbers, not text
    assert all(len(rows[name]) == 4 and rows[name][3][2] == 2 for name in ("二", "三", "四"))
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 1 and "formula with no computed value" in rejects[0]["detail"]
    assert rejects[0]["id"] == "book:一!6"
    totals = json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]["totals"]
    assert totals == {"read": 15, "written": 13, "rejected": 1, "removed": 1}


# ---------------------------------------------------------------- the data commands' bad inputs


def test_train_eval_score_and_stats_on_every_malformed_file(tmp_path):
    """test_fuzz's files: score and stats through the entry point (one line, exit 2, or a
    result); what train and eval read them with, in process (an IdataError naming the file, or
    rows), since loading a model per file would cost minutes."""
    from concurrent.futures import ThreadPoolExecutor

    from test_fuzz import FILES

    from instruct_data.errors import IdataError
    from instruct_data.evaluation.benchmarks import load_benchmark
    from instruct_data.templates import get_template
    from instruct_data.training.data import iter_pieces

    paths = []
    for name, make in FILES.items():
        path = tmp_path / name
        path.write_bytes(make())
        paths.append(path)
        for kind in ("context_target", "conversations"):
            try:
                list(iter_pieces(path, get_template("seed"), kind))
            except IdataError as exc:
                assert path.name in str(exc), (name, kind, str(exc))
        try:
            load_benchmark(str(path))
        except IdataError as exc:
            assert path.name in str(exc), (name, str(exc))
        folder = tmp_path / f"stats-{name}"
        folder.mkdir()
        (folder / "manifest.json").write_bytes(make())

    def run(path: Path):
        return (idata("score", path, "--out", tmp_path / f"scored-{path.name}"),
                idata("stats", tmp_path / f"stats-{path.name}"))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, paths))
    for path, (score, stats) in zip(paths, results):
        for command, result, codes in (("score", score, {0, 2}), ("stats", stats, {2})):
            where = f"idata {command} {path.name}"
            assert result.returncode in codes, (where, result.returncode, result.stderr[-2000:])
            assert "Traceback" not in result.stderr + result.stdout, (where, result.stderr[-2000:])
            if result.returncode == 2:
                lines = [line for line in result.stderr.splitlines() if line.strip()]
                assert len(lines) == 1, (where, result.stderr)
