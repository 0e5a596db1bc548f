"""The dataset card (README.md) of an exported Hugging Face dataset: YAML metadata the hub reads
(license, language, task categories, size, configs) and a datasheet written from the manifest:
where the rows came from, what each rule did to them, dedupe and contamination, the split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from instruct_data import __version__
from instruct_data.export.build import BuildData

# What is known of a source's license: Belle's hub cards (BELLE.md beside the design notes).
BELLE_LICENSE = ("gpl-3.0", "Belle's hub cards say GPL-3.0 and ask for research use only; "
                 "the BELLE repository's data license says ODC-By")
# Measured precision of the cleaning rules on idata's frozen test split, when the benchmark
# has written it (benchmarks/bench_clean_quality.py --write-measured).
MEASURED = Path(__file__).resolve().parent.parent / "data" / "clean_measured.json"


def size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "10M<n<100M"


def dataset_card(data: BuildData, name: str, license_id: str | None, splits: dict[str, int],
                 files: dict[str, str]) -> str:
    """The whole README.md: YAML front matter, then the datasheet. `files`: split -> parquet path."""
    manifest = data.manifest
    license_id = license_id or _license_from_sources(manifest) or "other"
    metadata = {
        "license": license_id,
        "language": ["zh"],
        "task_categories": ["text-generation"],
        "tags": ["instruction-tuning", "sft", "chinese", "idata"],
        "size_categories": [size_category(sum(splits.values()))],
        "pretty_name": name,
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": path} for split, path in files.items()]}],
    }
    front = yaml.safe_dump(metadata, allow_unicode=True, sort_keys=False)
    parts = [f"---\n{front}---\n", f"# {name}\n", _summary(data, splits), _sources(manifest),
             _rules(manifest), _dedupe(manifest), _split_and_template(data), _loading(name), _provenance(manifest)]
    return "\n".join(part for part in parts if part)


def _license_from_sources(manifest: dict[str, Any]) -> str | None:
    kinds = {source.get("kind") for source in manifest.get("sources") or []}
    return BELLE_LICENSE[0] if "belle" in kinds else None


def _summary(data: BuildData, splits: dict[str, int]) -> str:
    counts = data.manifest.get("counts", {}).get("totals", {})
    lines = ["Chinese instruction data built with [idata](https://pypi.org/project/instruct-data/) "
             "(`idata build`, then `idata export --to hf`). Each row is one conversation in "
             "`messages` (system, user, assistant and tool messages, OpenAI's layout), plain text: "
             "no prompt template is applied.", "",
             "| split | conversations |", "|---|---:|"]
    lines += [f"| {split} | {n:,}{'' if n else ' (no file: the split is empty)'} |" for split, n in splits.items()]
    if counts:
        lines += ["", f"Of {counts.get('read', 0):,} rows read, {counts.get('written', 0):,} were written, "
                      f"{counts.get('rejected', 0):,} rejected by a rule or a reader, and "
                      f"{counts.get('removed', 0):,} removed as duplicates "
                      f"(read = written + rejected + removed: {data.manifest.get('counts', {}).get('balanced')})."]
    if data.unparsed_heldout:
        lines += ["", f"{data.unparsed_heldout} held-out rows could not be read back into turns and "
                      "hold their rendered prompt as one user message."]
    return "\n".join(lines) + "\n"


def _sources(manifest: dict[str, Any]) -> str:
    per_source = manifest.get("counts", {}).get("per_source", {})
    lines = ["## Sources", "", "| source | kind | read | written | rejected | removed | license |",
             "|---|---|---:|---:|---:|---:|---|"]
    for source in manifest.get("sources") or []:
        counts = per_source.get(source.get("name"), {})
        license_text = BELLE_LICENSE[1] if source.get("kind") == "belle" else "as the source's owner states"
        lines.append(f"| {source.get('name')} | {source.get('kind')} | {counts.get('read', 0):,} | "
                     f"{counts.get('written', 0):,} | {counts.get('rejected', 0):,} | {counts.get('removed', 0):,} | "
                     f"{license_text} |")
    lines += ["", "Input files, with the SHA-256 of what was read (hub datasets with their pinned revision):", ""]
    for item in manifest.get("inputs") or []:
        where = item.get("path") or item.get("dataset")
        revision = f" @ {item['revision']}" if item.get("revision") else ""
        digest = f" sha256 `{item['sha256'][:16]}…`" if item.get("sha256") else ""
        lines.append(f"- `{Path(str(where)).name if item.get('path') else where}`{revision}{digest} "
                     f"({item.get('format') or 'format detected'})")
    return "\n".join(lines) + "\n"


def _rules(manifest: dict[str, Any]) -> str:
    clean = manifest.get("parameters", {}).get("recipe", {}).get("clean", {}) or {}
    enabled = [rule for rule, settings in clean.items() if isinstance(settings, dict) and settings.get("enabled")]
    rejects = manifest.get("counts", {}).get("rejects_by_reason", {})
    changed = manifest.get("counts", {}).get("rows_changed_by_normalizer", {})
    measured = _measured()
    lines = ["## Cleaning", "", "Rules applied, what each did here, and its precision measured on idata's "
             "hand-labeled frozen test split of real rows (where measured):", "",
             "| rule | rows changed or rejected here | precision on the labeled test split |", "|---|---:|---|"]
    for rule in enabled:
        hits = changed.get(rule, 0) + sum(sum(v.values()) for reason, v in rejects.items()
                                          if reason.startswith("clean/") and _rule_of(reason, measured) == rule)
        lines.append(f"| `{rule}` | {hits:,} | {_precision(measured.get(rule))} |")
    lines += ["", "Rejected rows by reason:", "", "| reason | rows |", "|---|---:|"]
    lines += [f"| `{reason}` | {sum(v.values()):,} |" for reason, v in sorted(rejects.items())]
    return "\n".join(lines) + "\n"


def _measured() -> dict[str, Any]:
    try:
        return json.loads(MEASURED.read_text(encoding="utf-8")).get("rules", {})
    except (OSError, ValueError):
        return {}


def _rule_of(reason: str, measured: dict[str, Any]) -> str | None:
    """The cleaning rule that gives a reason code (`clean/wrong_arithmetic` -> `arithmetic`)."""
    from instruct_data.clean import reason_codes

    code = reason.split("/", 1)[1]
    return next((rule for rule, codes in reason_codes().items() if code in codes), None)


def _precision(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("precision") is None:
        return "not measured"
    low, high = entry.get("interval", [None, None])
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None else ""
    return f"{entry['precision']:.3f}{interval} over {entry.get('fired', '?')} firings"


def _dedupe(manifest: dict[str, Any]) -> str:
    methods = manifest.get("counts", {}).get("duplicates_by_method", {})
    settings = manifest.get("parameters", {}).get("recipe", {}).get("dedupe", {}) or {}
    lines = ["## Deduplication and contamination", "",
             f"Key `{settings.get('key', 'both')}`, near duplicates {'on' if settings.get('near', True) else 'off'} "
             f"(MinHash on character 3-grams, every candidate pair verified, threshold "
             f"{settings.get('threshold', 0.6)}). Removed:", ""]
    lines += [f"- {method}: {n:,}" for method, n in sorted(methods.items())] or ["- nothing"]
    lines += ["", "`contamination` counts training records removed because they duplicate a held-out row or a "
                  "benchmark question (`against`): no held-out item has a duplicate left in the training split."]
    return "\n".join(lines) + "\n"


def _split_and_template(data: BuildData) -> str:
    split = data.manifest.get("parameters", {}).get("recipe", {}).get("split", {}) or {}
    return "\n".join([
        "## Split and template", "",
        f"The held-out split (`heldout`) was drawn before dedupe, stratified by {split.get('by', 'category')}, "
        f"seeded by each row's id ({split.get('heldout', 'the default share')}). The build rendered "
        f"its own `train.jsonl` with the `{data.template}` template; this export is the unrendered "
        "conversations, to be rendered by the trainer with the model's own chat template."]) + "\n"


def _loading(name: str) -> str:
    return "\n".join(["## Loading", "", "```python", "from datasets import load_dataset",
                      f'ds = load_dataset("path/or/hub-id/of/{name}")', 'ds["train"][0]["messages"]', "```"]) + "\n"


def _provenance(manifest: dict[str, Any]) -> str:
    versions = manifest.get("versions") or {}
    return "\n".join(["## Provenance", "",
                      f"Built by idata {manifest.get('idata_version', '?')}, exported by idata {__version__}; "
                      f"the build's manifest.json is included beside this card as `idata_manifest.json`. "
                      f"Package versions: {', '.join(f'{k} {v}' for k, v in sorted(versions.items()))}."]) + "\n"
