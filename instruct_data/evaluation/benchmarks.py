"""Benchmarks: what `--benchmark` names, read into prompts with optional references.

`--benchmark` is one of
- a name from the registry (`instruct_data/data/eval/registry.yaml`, also seen as
  `eval/registry.yaml` in the repository): a file shipped in the package, or a remote file
  pinned by URL and sha256, downloaded when online or read from `--from PATH`;
- a build folder (`-b build/mine`): its held-out rows, asked in the model's template
  (`evaluation.heldout`: re-rendered when the build rendered them with another);
- a build's `heldout.jsonl` (or any context/target file): the context is already rendered and
  is the prompt as-is, or re-rendered as for a build folder when its manifest names another template;
- idata's canonical records (a build's `conversations.jsonl`): rendered with the template;
- any other file the readers know (alpaca, messages, ...): rendered with the template.

A question/answer benchmark row (`question`, `std_answer`, `class`) with an empty answer is
kept as an item without reference (the training readers reject such rows); rows that cannot
be an item at all (no question) are counted as rejects with their reason, never dropped.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.evaluation.heldout import build_folder, heldout_file
from instruct_data.io import file_sha256
from instruct_data.templates import Template, render_prompt
from instruct_data.schema import Turn

DEFAULT_BENCHMARK = "idata-zh-mini"
DOWNLOAD_TIMEOUT_S = 60


@dataclass
class Item:
    id: str
    prompt: str
    reference: str | None
    category: str | None = None
    question: str | None = None  # the user's text before the template (what a judge is shown)


@dataclass
class Benchmark:
    name: str
    path: str
    sha256: str
    format: str
    items: list[Item]
    rejected: list[dict] = field(default_factory=list)
    registry: dict | None = None  # the registry entry, when the benchmark is a named one
    rerendered: dict | None = None  # held-out prompts rendered again with the model's template (evaluation.heldout)

    def template_warning(self, template: Template) -> str | None:
        """A context/target file rendered with another template than the one the model learned."""
        if self.format != "context_target":
            return None
        marker = template.user.split("{", 1)[0].strip()
        if not marker:
            return None
        missing = sum(1 for item in self.items if marker not in item.prompt)
        if missing * 2 <= len(self.items):
            return None
        return (f"{missing} of {len(self.items)} prompts in {self.path} lack the {template.name!r} template's "
                f"{marker!r}: the file was rendered with another template than the model's")

    def describe(self) -> dict:
        info = {"name": self.name, "path": self.path, "sha256": self.sha256, "format": self.format,
                "items": len(self.items), "rejected": len(self.rejected),
                "rejects": self.rejected[:20]}
        if self.rerendered:
            info["rerendered"] = self.rerendered
        if self.registry:
            info["registry"] = {k: v for k, v in self.registry.items() if k in ("url", "sha256", "file")}
            if self.registry.get("sha256"):
                info["sha256_matches_registry"] = self.registry["sha256"] == self.sha256
        return info


class BenchmarkError(IdataError):
    """A benchmark that cannot be had: unknown name, failed download, wrong checksum."""


def display_category(label) -> str | None:
    """BELLE writes `closed\\u00a0qa`: any run of odd spaces becomes one plain space."""
    if not isinstance(label, str) or not label.strip():
        return None
    return " ".join(label.split())


# ---------------------------------------------------------------- the registry


def data_dir() -> Path:
    return Path(str(resources.files("instruct_data") / "data" / "eval"))


def registry() -> dict[str, dict]:
    import yaml

    with open(data_dir() / "registry.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)["benchmarks"]


def cache_dir() -> Path:
    root = os.environ.get("IDATA_CACHE") or Path.home() / ".cache" / "idata"
    return Path(root) / "benchmarks"


def offline() -> bool:
    return any(os.environ.get(name, "") not in ("", "0") for name in ("IDATA_OFFLINE", "HF_HUB_OFFLINE"))


def fetch(name: str, entry: dict) -> Path:
    """The remote file of a named benchmark: the cached copy, else a download, sha256 checked."""
    filename = entry["url"].rsplit("/", 1)[-1]
    target = cache_dir() / name / filename
    if target.is_file() and file_sha256(target) == entry["sha256"]:
        return target
    hint = f"download it from {entry['url']} and pass --from PATH"
    if offline():
        raise BenchmarkError(f"{name}: offline (HF_HUB_OFFLINE/IDATA_OFFLINE set) and not cached; {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(entry["url"], timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as fh:
            fh.write(response.read())
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BenchmarkError(f"{name}: cannot download ({exc}); {hint}") from None
    digest = file_sha256(partial)
    if digest != entry["sha256"]:
        partial.unlink(missing_ok=True)
        raise BenchmarkError(f"{name}: downloaded file has sha256 {digest}, expected {entry['sha256']}")
    os.replace(partial, target)
    return target


def fetch_hub(name: str, entry: dict) -> Path:
    """A named benchmark's file from a Hugging Face dataset repository at its pinned revision
    (huggingface_hub's own cache, so a second run reads it locally), sha256 checked when pinned."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    hub = entry["hub"]
    hint = (f"download {hub['file']} from https://huggingface.co/datasets/{hub['repo']} "
            f"(revision {hub['revision']}) and pass --from PATH")
    try:
        path = Path(hf_hub_download(hub["repo"], hub["file"], repo_type="dataset", revision=hub["revision"]))
    except LocalEntryNotFoundError:
        raise BenchmarkError(f"{name}: offline or unreachable, and not in the Hugging Face cache; {hint}") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise BenchmarkError(f"{name}: cannot download ({str(exc).splitlines()[0]}); {hint}") from None
    if entry.get("sha256"):
        digest = file_sha256(path)
        if digest != entry["sha256"]:
            raise BenchmarkError(f"{name}: {path} has sha256 {digest}, expected {entry['sha256']}")
    return path


def resolve(benchmark: str, from_path: str | None = None) -> tuple[str, Path, dict | None]:
    """(name, local file, registry entry or None) for what the user typed."""
    entries = registry()
    if benchmark in entries:
        entry = entries[benchmark]
        if from_path:
            return benchmark, Path(from_path), entry
        if entry.get("file"):
            return benchmark, data_dir() / entry["file"], entry
        if entry.get("hub"):
            return benchmark, fetch_hub(benchmark, entry), entry
        return benchmark, fetch(benchmark, entry), entry
    path = Path(benchmark)
    if path.exists():
        return path.stem, path, None
    raise BenchmarkError(f"unknown benchmark {benchmark!r}: not a file, and not a registered name "
                         f"({', '.join(entries)})")


# ---------------------------------------------------------------- reading


def load_benchmark(benchmark: str = DEFAULT_BENCHMARK, template: Template | None = None, *,
                   from_path: str | None = None, limit: int | None = None,
                   per_category: int | None = None) -> Benchmark:
    """The benchmark's items; `per_category` keeps the first N of each category (a quick look
    that still covers every category), `limit` the first N of what is left."""
    from instruct_data.templates import DEFAULT_TEMPLATE, get_template

    template = template or get_template(DEFAULT_TEMPLATE)
    name, path, entry = resolve(benchmark, from_path)
    if path.is_dir() and build_folder(path):  # `-b build/mine`: its held-out rows
        name, path = path.name, heldout_file(path)
    if path.is_dir():  # exists, but is not a C-Eval/CMMLU layout (those are read as multiple choice)
        raise InputError(str(path), "a folder, not a benchmark file, and it holds no multiple-choice tables "
                                    "(C-Eval/CMMLU CSVs): give -b a file (JSON lines, JSON, CSV, xlsx), a "
                                    "C-Eval/CMMLU folder or zip, or a registered name")
    if not path.is_file():
        raise InputError(str(path), "no such file")
    fmt = (entry or {}).get("format") or _detect(path)
    if fmt == "qa_benchmark":
        items, rejected = _read_mapped(path, name, template, question="question", reference="std_answer", rendered=False)
    elif fmt == "conversations":
        items, rejected = _read_conversations(path, name, template)
    elif fmt == "context_target":
        items, rejected = _read_mapped(path, name, template, question="context", reference="target", rendered=True)
    else:
        items, rejected = _read_any(path, name, template, fmt)
    if per_category is not None:
        seen: dict[str | None, int] = {}
        kept = []
        for item in items:
            seen[item.category] = seen.get(item.category, 0) + 1
            if seen[item.category] <= per_category:
                kept.append(item)
        items = kept
    if limit is not None:
        items = items[:limit]
    if not items:
        raise InputError(str(path), "no benchmark item could be read from this file")
    return Benchmark(name=name, path=str(path), sha256=file_sha256(path), format=fmt, items=items,
                     rejected=rejected, registry=entry)


def _detect(path: Path) -> str:
    import itertools

    from instruct_data.formats import DETECT_ROWS, detect_format
    from instruct_data.io import read_rows

    rows = list(itertools.islice(read_rows(path), DETECT_ROWS))
    first = next((row.data for row in rows if isinstance(row.data, dict)), None)
    if first is not None and "turns" in first:  # idata's canonical records (a build's conversations.jsonl)
        return "conversations"
    return detect_format(rows, str(path))


def _parsed_rows(path: Path, rejected: list[dict]):
    """The rows of `path` that parse; each one that does not is added to `rejected`."""
    from instruct_data.io import read_rows

    for row in read_rows(path):
        if row.data is None:
            rejected.append({"origin": str(row.origin), "reason": "unparseable", "detail": row.error})
        else:
            yield row


def _read_conversations(path: Path, name: str, template: Template) -> tuple[list[Item], list[dict]]:
    """Canonical records: each dialogue's last reply is the reference, its earlier rounds the
    history, rendered with the template as training renders them; a dialogue that calls tools
    gives every reply, as a build holds it out (heldout.jsonl's records, the same ids)."""
    from pydantic import ValidationError

    from instruct_data.schema import Conversation, describe_validation_error
    from instruct_data.templates import render

    items, rejected = [], []
    for row in _parsed_rows(path, rejected):
        where = str(row.origin)
        try:
            conversation = Conversation.model_validate(row.data)
            if _calls_tools(conversation):
                items += _tool_dialogue_items(conversation, template)
                continue
            context, reference = render(conversation, template)
        except ValidationError as exc:
            rejected.append({"origin": where, "reason": "not_a_record", "detail": describe_validation_error(exc)})
            continue
        except ValueError as exc:  # a chat template that cannot render it (tools it would drop)
            rejected.append({"origin": where, "reason": "cannot_render", "detail": str(exc).splitlines()[0]})
            continue
        items.append(Item(id=conversation.id, prompt=context, reference=reference or None,
                          category=display_category(conversation.category), question=conversation.prompt.full_text))
    return items, rejected


def _calls_tools(conversation) -> bool:
    return not conversation.rendered and any(getattr(turn, "tool_calls", None) for turn in conversation.turns)


def _tool_dialogue_items(conversation, template: Template) -> list[Item]:
    """Every reply of a dialogue that calls tools is an item, calls included (toolcalls.py)."""
    from instruct_data.evaluation.toolcalls import dialogue_items

    return [Item(id=item_id, prompt=prompt, reference=reference, category=display_category(conversation.category),
                 question=question) for item_id, prompt, reference, question in dialogue_items(conversation, template)]


def _item_id(data: dict, name: str, position: int | None) -> str:
    own = data.get("id")
    if isinstance(own, (str, int)) and not isinstance(own, bool) and str(own).strip():
        return str(own)
    return f"{name}:{position}"


def _read_mapped(path: Path, name: str, template: Template, *, question: str, reference: str,
                 rendered: bool) -> tuple[list[Item], list[dict]]:
    """qa_benchmark and context/target rows, mapped here so that an empty answer stays an item."""
    items, rejected = [], []
    for row in _parsed_rows(path, rejected):
        where = str(row.origin)
        text = row.data.get(question)
        if not isinstance(text, (str, int, float)) or isinstance(text, bool) or not str(text).strip():
            rejected.append({"origin": where, "reason": "empty_instruction", "detail": f"no '{question}' text"})
            continue
        answer = row.data.get(reference)
        answer = str(answer) if isinstance(answer, (str, int, float)) and not isinstance(answer, bool) else None
        prompt = str(text) if rendered else render_prompt(template, [], Turn(role="user", text=str(text)))
        category = display_category(row.data.get("category") or row.data.get("class") or row.data.get("type"))
        position = row.origin.line if row.origin.line is not None else row.origin.row
        items.append(Item(id=_item_id(row.data, name, position), prompt=prompt,
                          reference=answer if answer and answer.strip() else None, category=category,
                          question=str(text)))
    return items, rejected


def _read_any(path: Path, name: str, template: Template, fmt: str) -> tuple[list[Item], list[dict]]:
    """Any other format the readers know: their Conversation, rendered with the template."""
    from instruct_data.formats import read_conversations
    from instruct_data.table import Reject
    from instruct_data.templates import render

    items, rejected = [], []
    _, stream = read_conversations(str(path), fmt=fmt, source=name)
    for row, result in stream:
        if isinstance(result, Reject):
            rejected.append({"origin": str(row.origin), "reason": result.reason, "detail": result.detail})
            continue
        if _calls_tools(result):
            items += _tool_dialogue_items(result, template)
            continue
        context, target = render(result, template)
        if result.rendered:
            context = result.prompt.text
        items.append(Item(id=result.id, prompt=context, reference=target, category=display_category(result.category),
                          question=result.prompt.full_text))
    return items, rejected
