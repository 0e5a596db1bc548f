"""The README's guarantees, checked through the installed `idata` entry point: --out never
touches an input or a user's file, one run per --out at a time, stale temporary files of dead
runs go, clear one-line errors with documented exit codes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from entrypoint import assert_one_line_error, idata

ROOT = Path(__file__).resolve().parents[1]


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"instruction": f"请解释第{i}个概念的含义和用途", "input": "",
             "output": f"第{i}个概念指的是一种常见的做法，它的用途很广，编号{i * 7919 % 100003}。"}
            for i in range(start, start + n)]


def write_jsonl(path: Path, items) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(folder: Path) -> dict[str, str]:
    """name -> sha256 of every file in a folder but the hidden ones (temporary files, locks)."""
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def leftovers(folder: Path) -> list[str]:
    """Temporary files, folders and locks of idata runs in a folder."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith((".tmp", ".lock")) or ".building-" in p.name or ".old-" in p.name)


# ---------------------------------------------------------------- --out never touches inputs


def test_to_multiturn_refuses_an_out_folder_that_holds_its_input(tmp_path):
    data = write_jsonl(tmp_path / "d" / "train.jsonl", rows(30))
    before = digest(data)
    result = idata("to-multiturn", data, "--out", tmp_path / "d")
    assert_one_line_error(result, 1, "holds the input", "train.jsonl")
    assert digest(data) == before
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["train.jsonl"]


def test_dedupe_refuses_an_out_folder_that_holds_its_input(tmp_path):
    data = write_jsonl(tmp_path / "d" / "mine.jsonl", rows(30) + rows(5))  # with duplicates to remove
    before = digest(data)
    result = idata("dedupe", data, "--out", tmp_path / "d", "--no-near")
    assert_one_line_error(result, 1, "holds the input", "mine.jsonl")
    assert digest(data) == before


def test_build_into_an_earlier_build_folder_keeps_the_users_files(tmp_path):
    out = tmp_path / "B"
    assert idata("build", write_jsonl(tmp_path / "a.jsonl", rows(40)), "--out", out, "--heldout", "0",
                 "--no-near").returncode == 0
    outputs = tree(out)
    mine = write_jsonl(out / "mine.jsonl", rows(20, start=100))
    result = idata("build", mine, "--out", out, "--no-near")
    assert_one_line_error(result, 1, "holds the input", "mine.jsonl")
    notes = out / "notes.txt"
    notes.write_text("my notes\n")
    result = idata("build", tmp_path / "a.jsonl", "--out", out, "--no-near")
    assert_one_line_error(result, 1, "idata did not write", "mine.jsonl", "notes.txt")
    assert notes.read_text() == "my notes\n" and mine.is_file()
    assert {name: sha for name, sha in tree(out).items() if name in outputs} == outputs


def test_an_earlier_build_folder_is_replaced_and_a_plain_folder_is_refused(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", rows(40))
    out = tmp_path / "B"
    assert idata("build", data, "--out", out, "--heldout", "0", "--no-near").returncode == 0
    assert idata("build", data, "--out", out, "--heldout", "5", "--no-near").returncode == 0  # its own: replaced
    assert sum(1 for _ in open(out / "heldout.jsonl")) == 5
    user = tmp_path / "photos"
    user.mkdir()
    (user / "cat.jpg").write_bytes(b"\xff\xd8")
    assert_one_line_error(idata("build", data, "--out", user), 1, "idata did not write", "cat.jpg")
    assert_one_line_error(idata("to-multiturn", data, "--out", out), 1, "output of `idata build`")
    assert (user / "cat.jpg").read_bytes() == b"\xff\xd8"


def test_convert_replaces_a_file_no_idata_run_wrote_only_with_overwrite(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", rows(20))
    out = tmp_path / "keep.jsonl"
    out.write_text("precious\n")
    assert_one_line_error(idata("convert", data, "--out", out), 1, "not written by idata", "--overwrite")
    assert out.read_text() == "precious\n"
    assert idata("convert", data, "--out", out, "--overwrite").returncode == 0
    assert idata("convert", data, "--out", out).returncode == 0  # now idata's own: replaced without asking
    (tmp_path / "keep.rejects.jsonl").write_text("mine\n")  # a user's file where the ledger goes
    assert_one_line_error(idata("convert", data, "--out", out), 1, "keep.rejects.jsonl")
    assert_one_line_error(idata("convert", data, "--out", data, "--overwrite"), 1, "is an input")
    assert sum(1 for _ in open(data)) == 20


def test_dedupe_removes_the_outputs_of_an_earlier_run_it_does_not_write_again(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", rows(20))
    b = write_jsonl(tmp_path / "b.jsonl", rows(20, start=50))
    out = tmp_path / "D"
    assert idata("dedupe", a, b, "--out", out, "--no-near").returncode == 0
    assert {"a.jsonl", "b.jsonl"} <= set(tree(out))
    assert idata("dedupe", a, "--out", out, "--no-near").returncode == 0
    assert "b.jsonl" not in tree(out)  # an output the new manifest would not explain


def test_a_second_run_into_the_same_out_fails_at_once(tmp_path):
    """This test process holds --out as a run does (the same guard), while idata tries it."""
    from instruct_data.outputs_guard import guard_output

    data = write_jsonl(tmp_path / "a.jsonl", rows(20))
    out = tmp_path / "B"
    with guard_output(out, [data], command="build"):
        started = time.monotonic()
        second = idata("build", data, "--out", out, "--no-near", "--heldout", "0")
        assert time.monotonic() - started < 30
        assert_one_line_error(second, 1, "another idata run", f"pid {os.getpid()}")
        assert not out.exists()
    assert idata("build", data, "--out", out, "--no-near", "--heldout", "0").returncode == 0
    assert leftovers(tmp_path) == []


def test_temporary_files_of_runs_that_died_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    data = write_jsonl(tmp_path / "a.jsonl", rows(20))
    for command, out in (("build", tmp_path / "B"), ("dedupe", tmp_path / "D"), ("to-multiturn", tmp_path / "M")):
        assert idata(command, data, "--out", out, "--no-near" if command != "to-multiturn" else "--workers=1"
                     ).returncode == 0
        stale_dir = tmp_path / f".{out.name}.building-{dead.pid}-x1y2z3"
        stale_dir.mkdir()
        (stale_dir / "train.jsonl").write_text("half\n")
        (out / f".train.jsonl.{dead.pid}-abcdefgh.tmp").write_text("half\n")
        (tmp_path / f".{out.name}.lock").write_text(f"{dead.pid}\n")  # left by a SIGKILL
        # Every folder command swaps in a new folder: even a running process's file is not carried.
        live = out / f".rejects.jsonl.{os.getpid()}-abcdefgh.tmp"
        live.write_text("")
        assert idata(command, data, "--out", out, "--no-near" if command != "to-multiturn" else "--workers=1"
                     ).returncode == 0
        assert not stale_dir.exists() and not (out / f".train.jsonl.{dead.pid}-abcdefgh.tmp").exists()
        assert not live.exists()
    assert leftovers(tmp_path) == []
    stale = tmp_path / f".out.jsonl.{dead.pid}-abcdefgh.tmp"
    stale.write_text("half\n")
    assert idata("convert", data, "--out", tmp_path / "out.jsonl").returncode == 0
    assert not stale.exists()


# ---------------------------------------------------------------- faults: one line, the right code, nothing left


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))  # Python ignores SIGXFSZ: writes fail (EFBIG)


def test_an_output_that_cannot_be_written_is_one_line_exit_1_and_leaves_no_temporary_file(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", rows(2_000))
    result = idata("convert", data, "--out", tmp_path / "out.jsonl", preexec_fn=_limit_file_size)
    assert_one_line_error(result, 1, "out.jsonl", "cannot write")
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.jsonl").exists()
    result = idata("to-multiturn", data, "--out", tmp_path / "M", "--workers", "1", preexec_fn=_limit_file_size)
    assert_one_line_error(result, 1, "cannot write")
    assert not (tmp_path / "M").exists() and leftovers(tmp_path) == []  # not even the folder it made


def test_a_full_disk_while_aborting_still_removes_the_temporary_file(tmp_path):
    from instruct_data.io import JsonlWriter

    writer = JsonlWriter(tmp_path / "out.jsonl")
    writer._fh = open("/dev/full", "w", encoding="utf-8")  # every flush: ENOSPC, as on a full disk
    writer.write({"context": "x" * 100, "target": "y"})
    with pytest.raises(OSError) as raised:
        writer._fh.flush()
    assert raised.value.errno == errno.ENOSPC
    writer.abort()  # closing flushes again and fails: the temporary file must go all the same
    assert list(tmp_path.iterdir()) == []


def _without_root_read_access() -> tuple:
    """A prefix under which chmod 000 stops the process, even as root (root reads anything)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root needs setpriv (util-linux) to drop the capability to read any file"
    return (setpriv, "--bounding-set=-dac_override,-dac_read_search")


def test_an_input_the_user_may_not_read_is_one_line_exit_2(tmp_path):
    data = write_jsonl(tmp_path / "secret.jsonl", rows(5))
    data.chmod(0)
    prefix = _without_root_read_access()
    try:
        for args in (("convert", data, "--out", tmp_path / "o.jsonl"), ("validate", data),
                     ("build", data, "--out", tmp_path / "B"), ("dedupe", data, "--out", tmp_path / "D"),
                     ("to-multiturn", data, "--out", tmp_path / "M")):
            result = idata(*args, prefix=prefix)
            line = assert_one_line_error(result, 2, "secret.jsonl")
            assert "ermission denied" in line
    finally:
        data.chmod(0o644)
    assert leftovers(tmp_path) == []


def test_a_symlink_loop_is_named_as_such(tmp_path):
    loop = tmp_path / "loop.jsonl"
    loop.symlink_to(loop)
    for args in (("convert", loop, "--out", tmp_path / "o.jsonl"), ("validate", loop),
                 ("dedupe", loop, "--out", tmp_path / "D")):
        assert_one_line_error(idata(*args), 2, "loop.jsonl", "symlink loop")


def test_a_row_nested_1500_deep_is_a_reject_with_its_line(tmp_path):
    deep = '{"instruction": "深", "input": "", "output": ' + "[" * 1500 + "]" * 1500 + "}"
    lines = [json.dumps(r, ensure_ascii=False) for r in rows(10)]
    data = tmp_path / "deep.jsonl"
    data.write_text("\n".join(lines[:4] + [deep] + lines[4:]) + "\n", encoding="utf-8")
    result = idata("convert", data, "--out", tmp_path / "o.jsonl")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    reject = json.loads((tmp_path / "o.rejects.jsonl").read_text())
    assert reject["origin"].endswith("deep.jsonl:5") and "nested too deeply" in reject["detail"]
    result = idata("validate", data)
    assert result.returncode == 1 and "deep.jsonl:5" in result.stderr + result.stdout


# ---------------------------------------------------------------- options and exit codes


def assert_usage_error(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit 2, no traceback, and under click's usage lines one `Error:` line that holds every word."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith(("Usage: idata ", "Try 'idata "))]
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_build_validates_command_line_options_like_the_recipe(tmp_path):
    data = write_jsonl(tmp_path / "a.jsonl", rows(20))
    for value in ("2.5", "-3", "nan", "inf"):  # inf was an OverflowError traceback (int(inf))
        result = idata("build", data, "--out", tmp_path / "B", "--heldout", value)
        assert_usage_error(result, "--heldout")
        assert not (tmp_path / "B").exists()
    result = idata("build", data, "--out", tmp_path / "B", "--max-reject-rate", "1.5")
    assert result.returncode == 2 and "--max-reject-rate" in result.stderr
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources:\n  - files: [a.jsonl]\nsplit: {heldout: .inf}\n", encoding="utf-8")
    assert_one_line_error(idata("build", recipe, "--out", tmp_path / "B"), 2, "split.heldout", "finite")
    assert not (tmp_path / "B").exists()


def test_a_recipe_takes_no_source_options_and_its_reject_rates_yield_to_the_command_line(tmp_path):
    """--limit, --format, --map (and --subset, --from, --revision) were ignored in silence with a
    recipe; a source's own max_reject_rate could not be raised, though the error said to raise
    --max-reject-rate."""
    good = [json.dumps(r, ensure_ascii=False) for r in rows(8)]
    (tmp_path / "a.jsonl").write_text("\n".join(good + ['{"instruction": "", "output": "空"}'] * 2) + "\n",
                                      encoding="utf-8")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources:\n  - files: [a.jsonl]\n    max_reject_rate: 0.1\nsplit: {heldout: 0}\n", encoding="utf-8")
    for options, said in ((("--limit", "1", "--format", "sharegpt"), "--limit, --format with a recipe"),
                          (("--map", "instruction=q"), "--map with a recipe"), (("--subset", "1M"), "--subset with a recipe")):
        assert_usage_error(idata("build", recipe, "--out", tmp_path / "B", *options), said)
    assert_one_line_error(idata("build", recipe, "--out", tmp_path / "B"), 3, "20% > 10%")
    assert not (tmp_path / "B").exists()
    assert idata("build", recipe, "--out", tmp_path / "B", "--max-reject-rate", "0.5").returncode == 0
    manifest = json.loads((tmp_path / "B" / "manifest.json").read_text())
    assert manifest["counts"]["totals"]["rejected"] == 2


def test_an_unknown_encoding_is_refused_before_any_file_is_read(tmp_path):
    """It was a LookupError traceback from deep in the readers, exit 1."""
    data = write_jsonl(tmp_path / "a.jsonl", rows(5))
    for args in (("convert", data, "--out", tmp_path / "o.jsonl"), ("validate", data),
                 ("dedupe", data, "--out", tmp_path / "D"), ("to-multiturn", data, "--out", tmp_path / "M")):
        assert_usage_error(idata(*args, "--encoding", "foo"), "--encoding", "unknown encoding 'foo'")
    # A codec of bytes, not of text, is no encoding to read a file with either.
    assert_usage_error(idata("validate", data, "--encoding", "base64"), "--encoding", "unknown encoding")
    assert idata("validate", data, "--encoding", "utf_8").returncode == 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources:\n  - files: [a.jsonl]\n    encoding: foo\n", encoding="utf-8")
    assert_one_line_error(idata("build", recipe, "--out", tmp_path / "B"), 2,
                          "r.yaml:3: sources.0.encoding: unknown encoding 'foo'")
    assert not any(tmp_path.glob("[oDMB]*"))


def test_a_json_file_in_utf16_says_to_save_it_as_utf8_whatever_the_option(tmp_path):
    """With `--encoding utf-16` the answer was "nothing in this file parses: truncated data": JSON
    is cut into lines as bytes. A UTF-16 table is still read with the option."""
    wide = tmp_path / "w.jsonl"
    wide.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(3)), encoding="utf-16")
    for options in ((), ("--encoding", "utf-16")):
        assert_one_line_error(idata("convert", wide, "--out", tmp_path / "o.jsonl", *options), 2, "save it as UTF-8")
    assert not (tmp_path / "o.jsonl").exists()
    sheet = tmp_path / "w.csv"
    sheet.write_text("instruction,output\n问题一是什么,回答一\n", encoding="utf-16")
    assert idata("convert", sheet, "--encoding", "utf-16", "--out", tmp_path / "s.jsonl").returncode == 0


def test_fractions_of_every_command_refuse_nan_and_infinity(tmp_path):
    """A --max-reject-rate of nan passed click's range (every comparison with nan is false) and
    failed a clean run with exit 3 (`0% > nan%`); a --threshold of nan was a pydantic dump."""
    data = write_jsonl(tmp_path / "a.jsonl", rows(5))
    for value in ("nan", "inf"):
        for args in (("convert", data, "--out", tmp_path / "o.jsonl"), ("dedupe", data, "--out", tmp_path / "D"),
                     ("to-multiturn", data, "--out", tmp_path / "M"), ("build", data, "--out", tmp_path / "B")):
            assert_usage_error(idata(*args, "--max-reject-rate", value), "--max-reject-rate", "finite")
        result = idata("dedupe", data, "--out", tmp_path / "D", "--threshold", value)
        assert_usage_error(result, "--threshold", f"{value} is not a finite number")
        for option in ("--temperature", "--top-p", "--judge-timeout"):  # eval's sampling: refused before a model loads
            result = idata("eval", "--model", "no/such-model", "-b", data, "--out", tmp_path / "E", option, value)
            assert_usage_error(result, option, f"{value} is not a finite number")
    assert not any(tmp_path.glob("[oDMBE]*"))


def test_build_takes_max_reject_rate(tmp_path):
    good = [json.dumps(r, ensure_ascii=False) for r in rows(30)]
    data = tmp_path / "a.jsonl"
    data.write_text("\n".join(good + ['{"instruction": "问", "output": ""}'] * 10) + "\n", encoding="utf-8")
    assert idata("build", data, "--out", tmp_path / "B", "--no-near").returncode == 0  # 25% < 50%
    result = idata("build", data, "--out", tmp_path / "C", "--no-near", "--max-reject-rate", "0.1")
    assert_one_line_error(result, 3, "--max-reject-rate", "25% > 10%")
    assert not (tmp_path / "C").exists()


@pytest.mark.parametrize("args, code", [
    (("convert", "missing.jsonl", "--out", "o.jsonl"), 2),
    (("build", "missing.jsonl", "--out", "B"), 2),
    (("dedupe", "missing.jsonl", "--out", "D"), 2),
    (("to-multiturn", "missing.jsonl", "--out", "M"), 2),
    (("validate", "missing.jsonl"), 2),
    (("convert", "a.jsonl", "--out", "o.jsonl", "--template", "nope"), 2),
    (("convert", "a.jsonl", "--out", "o.jsonl", "--format", "nope"), 2),
    (("convert", "bad.jsonl", "--out", "o.jsonl"), 3),
    (("convert", "some_bad.jsonl", "--out", "o.jsonl", "--strict"), 3),
    (("validate", "some_bad.jsonl"), 1),
    (("validate", "a.jsonl"), 0),
    (("convert", "a.jsonl", "--out", "a.jsonl"), 1),
    # A refused --out is 1 for the folder commands too (it was click's usage error, 2).
    (("dedupe", "a.jsonl", "--out", "a.jsonl"), 1),
    (("to-multiturn", "a.jsonl", "--out", "a.jsonl"), 1),
    (("build", "a.jsonl", "--out", "a.jsonl"), 1),
    (("dedupe", "a.jsonl", "--out", "notes.txt"), 1),
    (("build", "a.jsonl", "--out", "notes.txt"), 1),
    (("demo", "--out", "notes.txt"), 1),
])
def test_exit_codes_of_the_installed_entry_point(tmp_path, args, code):
    write_jsonl(tmp_path / "a.jsonl", rows(10))
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    good = [json.dumps(r, ensure_ascii=False) for r in rows(10)]
    (tmp_path / "bad.jsonl").write_text("\n".join(good[:2] + ['{"instruction": "问", "output": ""}'] * 8) + "\n")
    (tmp_path / "some_bad.jsonl").write_text("\n".join(good + ['{"instruction": "问", "output": ""}']) + "\n")
    result = idata(*args, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    if code != 0 and args[0] != "validate":
        assert result.stderr.strip().splitlines()[-1].lower().startswith("error:"), result.stderr


def test_the_license_is_an_spdx_string():
    """setuptools >= 77 prints a deprecation banner, three times per install, for a table."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"


def test_every_sheet_of_a_workbook_is_read_with_its_name_in_the_origin(tmp_path):
    import pandas as pd

    book = tmp_path / "answers.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"指令": ["问题一是什么", "问题二是什么"], "输出": ["回答一", "回答二"]}).to_excel(
            writer, sheet_name="第一页", index=False)
        pd.DataFrame({"指令": ["问题三是什么", "问题四是什么"], "输出": ["回答三", ""]}).to_excel(
            writer, sheet_name="第二页", index=False)
    result = idata("convert", book, "--out", tmp_path / "o.jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["target"] for r in records] == ["回答一", "回答二", "回答三"]
    assert len({r["id"] for r in records}) == 3
    reject = json.loads((tmp_path / "o.rejects.jsonl").read_text())
    assert reject["origin"] == f"{book}[第二页]:row 2"
    manifest = json.loads((tmp_path / "o.manifest.json").read_text())
    assert manifest["counts"]["totals"] == {"read": 4, "written": 3, "rejected": 1, "removed": 0}


def test_each_sheet_of_a_workbook_is_read_by_its_own_columns(tmp_path):
    """A team's sheets rarely share headers: the second sheet's `问题, 答案` was read with the
    first sheet's (none) and every row of it rejected as missing its instruction."""
    import pandas as pd

    book = tmp_path / "team.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"instruction": ["问题一是什么"], "output": ["回答一"]}).to_excel(writer, sheet_name="A", index=False)
        pd.DataFrame({"问题": ["问题二是什么", "问题三是什么"], "答案": ["回答二", "回答三"], "备注": ["x", ""]}).to_excel(
            writer, sheet_name="B", index=False)
    result = idata("convert", book, "--out", tmp_path / "o.jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [(r["context"], r["target"]) for r in records] == [
        ("Instruction: 问题一是什么\nAnswer: ", "回答一"), ("Instruction: 问题二是什么\nAnswer: ", "回答二"),
        ("Instruction: 问题三是什么\nAnswer: ", "回答三")]
    said = " ".join((result.stdout + result.stderr).split())
    assert f"columns of {book}[B] read as: instruction=问题, output=答案" in said and "备注" in said
    [entry] = json.loads((tmp_path / "o.manifest.json").read_text())["inputs"]
    assert entry["sheets"]["B"] == {"format": "alpaca", "map": {"instruction": "问题", "output": "答案"}}
    assert entry["unused_columns"] == ["备注"]
    kept = tmp_path / "kept"
    assert idata("dedupe", book, "--out", kept).returncode == 0
    assert pd.read_excel(kept / "team.xlsx", sheet_name="B")["答案"].tolist() == ["回答二", "回答三"]


def test_score_and_eval_outputs_never_land_in_a_build_or_a_users_folder(tmp_path):
    predictions = tmp_path / "preds.jsonl"
    write_jsonl(predictions, [{"id": str(i), "reference": f"答案{i}", "prediction": f"答案{i}"} for i in range(4)])
    build = tmp_path / "B"
    assert idata("build", write_jsonl(tmp_path / "a.jsonl", rows(20)), "--out", build, "--heldout", "0",
                 "--no-near").returncode == 0
    report = digest(build / "report.md")
    assert_one_line_error(idata("score", predictions, "--out", build), 1, "output of `idata build`")
    assert_one_line_error(idata("eval", "--model", "no-such-model", "-b", predictions, "--out", build), 1,
                          "output of `idata build`")
    assert digest(build / "report.md") == report
    scored = tmp_path / "scored"
    assert idata("score", predictions, "--out", scored).returncode == 0
    assert idata("score", predictions, "--out", scored).returncode == 0  # its own folder: rescored
    assert idata("score", scored / "predictions.jsonl", "--out", scored).returncode == 0  # in place, kept
    assert leftovers(tmp_path) == []


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(['{"instruction": "问", "output": ""}'] * 5 + ['{"instruction": "问", "output": "答"}']) + "\n")
    for command in ("dedupe", "to-multiturn", "build"):
        result = idata(command, bad, "--out", tmp_path / command)
        assert result.returncode == 3, result.stderr
        assert not (tmp_path / command).exists()
    assert leftovers(tmp_path) == []


def test_an_hf_export_of_a_build_with_an_empty_split_loads(tmp_path):
    """Every row held out: the empty train split was a parquet file of no rows, and
    `datasets.load_dataset` failed on it (`BatchSize must be greater than 0`)."""
    import datasets

    data = write_jsonl(tmp_path / "a.jsonl", rows(3))
    assert idata("build", data, "--heldout", "3", "--no-near", "--out", tmp_path / "b").returncode == 0
    assert idata("export", tmp_path / "b", "--to", "hf", "--out", tmp_path / "hf").returncode == 0
    loaded = datasets.load_dataset(str(tmp_path / "hf"))
    assert list(loaded) == ["heldout"] and loaded["heldout"].num_rows == 3
    assert "| train | 0 (no file: the split is empty) |" in (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")


def test_an_openai_export_names_a_file_not_a_folder(tmp_path):
    """`--out dir/` wrote a file named `dir`."""
    data = write_jsonl(tmp_path / "a.jsonl", rows(4))
    assert idata("build", data, "--heldout", "1", "--no-near", "--out", tmp_path / "b").returncode == 0
    assert_one_line_error(idata("export", tmp_path / "b", "--to", "openai", "--out", f"{tmp_path / 'dir'}/"), 2,
                          "writes one file")
    assert not (tmp_path / "dir").exists()
    assert idata("export", tmp_path / "b", "--to", "openai", "--out", tmp_path / "m.jsonl").returncode == 0
