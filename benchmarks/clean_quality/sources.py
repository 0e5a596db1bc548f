"""Where the labeled rows come from: the public files in ../shared/data and files of public git
repositories at a fixed commit, read from a local mirror or clone (never copied here).

Each source reads to a list of raw records; a label points at one by its 1-based position and
carries the record's SHA-256 (`record_hash`). `flatten` turns a raw record into what the
project's reader gets (`fmt` names the format), e.g. a DPO pair into the dialogue with its
chosen reply.

A source that cannot be read (no ../shared/data, no mirror, a clone without the commit) raises
`Absent` with the reason: the benchmark reports it as skipped and goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
# `fetch` mirrors sit in ../.mirror/<owner>+<name>/repo; a user points --mirrors (or the
# IDATA_QUALITY_MIRRORS variable) at a folder holding clones instead (see GUIDE.md).
MIRRORS = Path(os.environ.get("IDATA_QUALITY_MIRRORS") or ROOT.parent / ".mirror")


class Absent(Exception):
    """A source that is not on this machine; the message says why."""


def record_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _parse(text: str, layout: str) -> list[dict[str, Any]]:
    if layout == "json":
        return json.loads(text)
    if layout == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if layout == "qa_blocks":
        # Toyhom's medical dialogue text: "title,question\nanswer" blocks between blank lines
        # (its own script wrote them from the department/title/ask/answer table).
        records = []
        for block in text.replace("\r\n", "\n").split("\n\n"):
            lines = [line for line in block.split("\n") if line.strip()]
            if lines:
                records.append({"问题": lines[0], "回答": "\n".join(lines[1:])})
        return records
    raise ValueError(f"unknown layout {layout!r}")


@dataclass(frozen=True)
class Source:
    name: str  # what labels call it (`file` for ../shared/data, `source` otherwise)
    fmt: str  # the project's format for the flattened record; "" to let the reader detect it
    layout: str  # json | jsonl | qa_blocks
    repo: str = ""  # owner/name of a public GitHub repository; empty: a file in ../shared/data
    commit: str = ""
    path: str = ""
    encoding: str = "utf-8"
    flatten: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def where(self) -> str:
        return f"{self.repo}@{self.commit[:8]}:{self.path}" if self.repo else f"../shared/data/{self.name}"

    def read(self, data_dir: Path = DATA, mirrors: Path = MIRRORS) -> list[dict[str, Any]]:
        """The raw records; `Absent` when the file is not here."""
        if not self.repo:
            path = data_dir / self.name
            if not path.exists():
                raise Absent(f"{path} not found (../shared/data is not beside this clone; --data names it)")
            return _parse(path.read_text(encoding=self.encoding), self.layout)
        raw = _git_show(self.repo, self.commit, self.path, mirrors)
        return _parse(raw.decode(self.encoding), self.layout)


def _clone_of(repo: str, mirrors: Path) -> Path | None:
    owner, name = repo.split("/")
    for candidate in (mirrors / f"{owner}+{name}" / "repo", mirrors / f"{owner}+{name}", mirrors / owner / name,
                      mirrors / name):
        if (candidate / "HEAD").exists() or (candidate / ".git").exists():
            return candidate
    return None


def _git_show(repo: str, commit: str, path: str, mirrors: Path) -> bytes:
    clone = _clone_of(repo, mirrors)
    if clone is None:
        raise Absent(f"no clone of {repo} under {mirrors} (clone it there, or name the folder with --mirrors)")
    done = subprocess.run(["git", "-C", str(clone), "show", f"{commit}:{path}"], capture_output=True, timeout=120)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise Absent(f"{clone}: cannot read {commit[:8]}:{path} ({why[-1] if why else 'git show failed'})")
    return done.stdout


def _dpo_chosen(record: dict[str, Any]) -> dict[str, Any]:
    """A DPO pair as the dialogue it trains: the conversation and its chosen reply."""
    return {"conversations": [*record["conversations"], record["chosen"]]}


def _seed_instance(task: dict[str, Any], instance: int) -> dict[str, Any]:
    item = task["instances"][instance - 1]
    return {"instruction": task["instruction"], "input": item.get("input", ""), "output": item.get("output", ""),
            "category": task.get("name")}


def _without_english(record: dict[str, Any]) -> dict[str, Any]:
    """open-chinese's rows keep the English original beside the translation (en_*): the Chinese
    fields are the training row."""
    return {k: v for k, v in record.items() if not k.startswith("en_")}


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("alpaca_zh_demo.json", "alpaca", "json"),
    Source("oaast_sft_zh.json", "alpaca", "json"),
    Source("prompt_response_sample.jsonl", "prompt_response", "jsonl"),
    Source("belle_zh_seed_tasks.jsonl", "alpaca", "jsonl"),  # one instance per label (`instance`)
    Source("belle_school_math_dev1K.jsonl", "alpaca", "jsonl"),
    Source("glaive_toolcall_zh_demo.json", "sharegpt", "json"),
    Source("belle_eval_set", "qa_benchmark", "jsonl", repo="LianjiaTech/BELLE",
           commit="645084d36454cdeb4e7f1ce9b2f3426bac39f1f9", path="eval/eval_set.json"),
    Source("llamafactory_dpo_zh", "sharegpt", "json", repo="hiyouga/LLaMA-Factory",
           commit="ff6d4d12eeb035d6ce06805a5733dd7b29f2ac30", path="data/dpo_zh_demo.json", flatten=_dpo_chosen),
    Source("alpaca_chinese_part0", "alpaca", "json", repo="open-chinese/alpaca-chinese-dataset",
           commit="7ae6bb212fa9ca487469537e12f35f8386e8eea0", path="data/alpaca_chinese_part_0.json",
           flatten=_without_english),
    # a two-column table (问题, 回答): read as the reader reads any table, through the column aliases
    Source("medical_im_table", "", "qa_blocks", repo="Toyhom/Chinese-medical-dialogue-data",
           commit="26724a4357fcd142f0cab81188cacf1a2dd8a827", path="Data_数据/IM_内科/内科.txt", encoding="gb18030"),
    # Batch 3 (GUIDE.md): sources nobody working on the rules had read. AlignBench's questions with
    # their reference answers, read through the column aliases (question, reference, category).
    Source("alignbench", "", "jsonl", repo="THUDM/AlignBench", commit="5b79d4a84e566db26e755c719935c62a0e1b0527",
           path="data/data_v1.1_release.jsonl"),
    # hikariming/alpaca_chinese_dataset: a team's own supplements (code, terms, academic, party
    # building, integer sums, advice, feelings, poetry), collected by hand and with chat models,
    # and its own translation of Alpaca.
    *(Source(name, "alpaca", "json", repo="hikariming/alpaca_chinese_dataset",
             commit="a32705cdfdde2a111ef08bc5fb47f5efaa874cfa", path=f"history/{path}")
      for name, path in (("hk_code", "其他中文问题补充/代码问题.json"),
                         ("hk_terms", "其他中文问题补充/名词解释类问题.json"),
                         ("hk_academic", "其他中文问题补充/学术问题.json"),
                         ("hk_party", "其他中文问题补充/党建类数据集.json"),
                         ("hk_sums", "其他中文问题补充/整数加减法.json"),
                         ("hk_advice", "其他中文问题补充/建议类问题.json"),
                         ("hk_feelings", "其他中文问题补充/情绪心理类问题.json"),
                         ("hk_poetry", "其他中文问题补充/传统诗词及文化常识问题.json"),
                         ("hk_translated", "翻译后的中文数据/alpaca_data-0-3252-中文-已完成.json"))),
)}


def flattened(source: Source, record: dict[str, Any], instance: int | None = None) -> dict[str, Any]:
    """The record the project's reader gets for this raw record."""
    if instance is not None:
        return _seed_instance(record, instance)
    return source.flatten(record) if source.flatten else record


def to_conversation(where: str, source: str, position: int, record: dict[str, Any], fmt: str):
    """The project's Conversation for a flattened record, read the way `idata` reads a file of
    that format (a table through its column aliases), or the reader's `Reject`: cleaning
    never sees such a row (glaive's rows with function calls, for one)."""
    from instruct_data.formats import parse_row, resolve_format
    from instruct_data.io import Row
    from instruct_data.schema import Origin

    row = Row(origin=Origin(file=source, row=position), data=record)
    fmt, mapping = resolve_format([row], source, fmt or None)
    return parse_row(row, fmt, source=source, mapping=mapping)
