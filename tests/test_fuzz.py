"""Every command fed malformed files: truncated, binary, wrong types, deep nesting, mixed
encodings, empty, and seeded random damage to a good file. Through the installed entry point,
each run must end with a documented exit code and no traceback; a file that cannot be read
is one line naming it; a bad row is a reject naming `file:line`; and wherever anything is
written, the manifest's counts add up: read = written + rejected + removed."""

from __future__ import annotations

import gzip
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from entrypoint import error_lines, idata

GOOD = [{"instruction": f"请用一句话介绍第{i}种水果的味道", "input": "",
         "output": f"第{i}种水果的味道酸甜可口，果肉细腻，编号{i * 7919 % 10007}。"} for i in range(40)]
DEEP = '{"instruction": "深", "input": "", "output": ' + "[" * 1500 + "]" * 1500 + "}"
EXIT_CODES = {"convert": {0, 2, 3}, "build": {0, 2, 3}, "dedupe": {0, 2, 3}, "to-multiturn": {0, 2, 3},
              "validate": {0, 1, 2}}
ORIGIN = re.compile(r":(\d+|row \d+)$")


def _line(row) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode("utf-8")


def _good_lines() -> list[bytes]:
    return [_line(row) for row in GOOD]


def _mixed() -> bytes:
    """Good rows with one bad row of every kind between them."""
    lines = _good_lines()
    bad = [
        _line(GOOD[0])[:25],  # truncated in the middle of a row
        bytes(range(256)),  # binary
        _line({"instruction": 5, "input": "", "output": ["a", "b"]}),  # wrong types
        _line({"instruction": None, "output": {"text": "x"}}),
        b"[1, 2, 3]",  # not an object
        b"42",
        DEEP.encode(),  # 1,500 levels deep
        json.dumps({"instruction": "用国标码写的问题", "input": "", "output": "这一行是GB18030编码"},
                   ensure_ascii=False).encode("gb18030"),  # another encoding inside a UTF-8 file
        b"\xef\xbb\xbf" + _line(GOOD[1]),  # a byte-order mark in the middle of the file
        _line({"instruction": "", "output": ""}),
    ]
    for i, row in enumerate(bad):
        lines.insert(3 + i * 3, row)
    return b"\n".join(lines) + b"\n"


def _damaged(seed: int) -> bytes:
    """A good file with seeded random damage: bytes flipped, cut out, junk put in, the end cut off."""
    rng = random.Random(seed)
    data = bytearray(b"\n".join(_good_lines()) + b"\n")
    for _ in range(12):
        at = rng.randrange(len(data))
        choice = rng.random()
        if choice < 0.4:
            data[at] = rng.randrange(256)
        elif choice < 0.7:
            del data[at:at + rng.randint(1, 40)]
        else:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
    return bytes(data[: len(data) - rng.randint(0, 30)])


FILES = {
    "mixed.jsonl": _mixed,
    "damaged1.jsonl": lambda: _damaged(1),
    "damaged2.json": lambda: _damaged(2),
    "empty.jsonl": lambda: b"\n  \n\t\n",  # blank lines only
    "binary.jsonl": lambda: bytes(random.Random(3).randrange(256) for _ in range(4000)),
    "truncated.json": lambda: b"[\n" + b",\n".join(_good_lines())[:-40],  # an array cut short
    "truncated.jsonl.gz": lambda: gzip.compress(b"\n".join(_good_lines()) + b"\n")[:-200],
    "utf16.jsonl": lambda: "\n".join(json.dumps(r, ensure_ascii=False) for r in GOOD).encode("utf-16"),
    "fake.xlsx": lambda: b"this is not a spreadsheet\n",
    "ragged.csv": lambda: "instruction,output\n问题,回答\n问题,回答,多出来的一格\n".encode(),
}


def _run(command: str, path: Path, out: Path):
    if command == "validate":
        return idata("validate", path), None
    if command == "convert":
        return idata("convert", path, "--out", out / "out.jsonl"), out / "out.manifest.json"
    extra = ["--workers", "1"] + (["--no-near"] if command != "to-multiturn" else [])
    return idata(command, path, "--out", out / "o", *extra), out / "o" / "manifest.json"


@pytest.mark.parametrize("name", list(FILES))
def test_every_command_on_a_malformed_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(FILES[name]())
    for command in EXIT_CODES:
        (tmp_path / command).mkdir()
    with ThreadPoolExecutor(3) as pool:  # the commands are independent processes: use the cores
        runs = list(pool.map(lambda command: _run(command, path, tmp_path / command), EXIT_CODES))
    for command, (result, manifest) in zip(EXIT_CODES, runs):
        where = f"idata {command} {name}"
        assert result.returncode in EXIT_CODES[command], (where, result.returncode, result.stderr[-3000:])
        assert "Traceback" not in result.stderr + result.stdout, (where, result.stderr[-3000:])
        if result.returncode == 2 or (result.returncode == 3 and command != "validate"):
            lines = error_lines(result.stderr)
            assert len(lines) == 1 and path.stem.split(".")[0] in lines[0], (where, result.stderr)
            assert manifest is None or not manifest.exists(), f"{where}: failed but wrote its outputs"
        elif command == "validate" and result.returncode == 1:
            assert re.search(rf"{re.escape(name)}:(\d+|row \d+)", result.stdout + result.stderr), where
        elif result.returncode == 0 and manifest is not None:
            data = json.loads(manifest.read_text())
            totals = data["counts"]["totals"]
            assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"], (where, totals)
            assert data["counts"]["balanced"] is True
            rejects = manifest.with_name(manifest.name.replace("manifest.json", "rejects.jsonl"))
            for line in rejects.read_text(encoding="utf-8").splitlines():
                origin = json.loads(line)["origin"]
                assert name in origin and ORIGIN.search(origin), (where, origin)
    if name == "mixed.jsonl":  # every bad row is a reject with its line, in each command that writes
        rejects = (tmp_path / "convert" / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(rejects) >= 9
