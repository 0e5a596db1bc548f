"""The build report: a summary table (rich) and report.md with PNG plots, both from the manifest.

Everything here reads manifest.json only, so `idata stats DIR` can redraw the report of any
build folder without reading the data again.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

from instruct_data.errors import InputError

PLOTS = ("lengths.png", "rejects.png", "categories.png", "duplicates.png")
TOKEN_PLOT = "token_lengths.png"  # written by `idata stats --tokenizer`, not by the build
# CJK fonts matplotlib can use for Chinese labels, best first (Debian: fonts-noto-cjk,
# fonts-wqy-microhei, fonts-wqy-zenhei; `make fonts` installs one).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei", "PingFang SC")
CJK_FILE = re.compile(r"wqy|NotoSans.*CJK|NotoSansSC|SourceHanSans|DroidSansFallback|uming|simhei|msyh", re.IGNORECASE)
EXAMPLES_PER_REASON = 3


def load_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise InputError(str(path), "no manifest.json: not a build folder (run `idata build` first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    from instruct_data.manifest_model import manifest_problem

    problem = manifest_problem(manifest)  # the pydantic model of the fields stats and the report read
    if problem:
        raise InputError(str(path), problem)
    return manifest


def _bin_labels(bins: list[int]) -> list[str]:
    return [f"{low}-{high - 1}" for low, high in zip(bins, bins[1:])] + [f"{bins[-1]}+"]


def median_bin(hist: list[int], bins: list[int]) -> str:
    total = sum(hist)
    if not total:
        return "-"
    running = 0
    for label, count in zip(_bin_labels(bins), hist):
        running += count
        if running * 2 >= total:
            return label
    return "-"


def _plots(out: Path, manifest: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    plt.rcParams["svg.hashsalt"] = "idata"

    def label(text: str, number: int) -> str:
        """The label itself with a CJK font; else ASCII labels stay and others become [n]."""
        return text if font or text.isascii() else f"[{number}]"

    counts, stats = manifest["counts"], manifest.get("stats", {})
    written = []

    def save(fig, name):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing")  # no CJK font: boxes, not noise
            fig.tight_layout()
            fig.savefig(out / name, dpi=90, metadata={"Software": None})  # no version stamp: same bytes each build
        plt.close(fig)
        written.append(name)

    bins = stats.get("length_bins")
    if bins:
        labels = _bin_labels(bins)
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=False)
        for axis, key, name in ((axes[0], "instruction_length", "instruction (all user turns)"),
                                (axes[1], "reply_length", "reply (all assistant turns)")):
            axis.bar(range(len(labels)), stats[key], color="#4c72b0")
            axis.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
            axis.set_title(f"{name}: characters")
            axis.set_ylabel("train rows")
        save(fig, "lengths.png")

    def barh(data: dict[str, int], title: str, name: str, color: str):
        items = sorted(data.items(), key=lambda kv: (-kv[1], kv[0]))[:25]
        fig, axis = plt.subplots(figsize=(8, 0.35 * max(len(items), 1) + 1.2))
        if items:
            names = [label(k, n) for n, (k, _) in enumerate(items, 1)][::-1]
            values = [v for _, v in items][::-1]
            bars = axis.barh(names, values, color=color)
            axis.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
            axis.set_xlim(0, max(values) * 1.15)
        else:
            axis.text(0.5, 0.5, "none", ha="center", va="center", transform=axis.transAxes)
        axis.set_title(title)
        axis.set_xlabel("rows")
        save(fig, name)

    barh({k: sum(v.values()) for k, v in counts.get("rejects_by_reason", {}).items()}, "rejected rows, by stage/reason",
         "rejects.png", "#c44e52")
    barh(stats.get("categories", {}), "train rows, by category", "categories.png", "#55a868")
    barh(counts.get("duplicates_by_method", {}), "duplicates removed, by method", "duplicates.png", "#8172b2")
    return written


def cjk_font() -> str | None:
    """The name of an installed font matplotlib can draw Chinese with, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    if found is None:
        # matplotlib's font cache predates a font installed since: add the system's CJK files.
        for path in font_manager.findSystemFonts():
            if CJK_FILE.search(Path(path).name):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
        found = next((name for name in CJK_FONTS if name in installed), None)
    return found


def reject_examples(folder: Path, limit: int = EXAMPLES_PER_REASON) -> dict[str, list[tuple[str, str]]]:
    """stage/reason -> up to `limit` (origin, short excerpt) from rejects.jsonl, in file order."""
    path = folder / "rejects.jsonl"
    examples: dict[str, list[tuple[str, str]]] = {}
    if not path.is_file():
        return examples
    with path.open(encoding="utf-8") as rejects:
        for line in rejects:
            try:
                reject = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = f"{reject.get('stage')}/{reject.get('reason')}"
            found = examples.setdefault(key, [])
            if len(found) < limit:
                found.append((str(reject.get("origin") or reject.get("id") or "?"), excerpt(reject.get("raw"))))
    return examples


def excerpt(raw: Any, width: int = 110) -> str:
    """A short one-line view of a raw row: its question and its reply where they can be told apart."""
    if isinstance(raw, dict):
        question = next((raw[k] for k in ("instruction", "prompt", "question", "input", "context") if raw.get(k)), "")
        reply = next((raw[k] for k in ("output", "response", "answer", "target") if raw.get(k)), "")
        turns = raw.get("conversations") or raw.get("messages")
        if not (question or reply) and isinstance(turns, list) and turns:
            texts = [str(t.get("value", t.get("content", ""))) for t in turns if isinstance(t, dict)]
            question, reply = (texts[0], texts[-1]) if texts else ("", "")
        text = f"{str(question)[:40]} → {reply}" if question else str(reply or json.dumps(raw, ensure_ascii=False))
    else:
        text = str(raw)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[:width - 30] + " … " + text[-27:]


def render_markdown(manifest: dict[str, Any], plots: list[str], examples: dict[str, list[tuple[str, str]]] | None = None,
                    font: str | None = None) -> str:
    counts, split = manifest["counts"], manifest.get("split", {})
    lines = ["# Build report", "",
             f"Template: `{manifest.get('template')}`. "
             f"Check: {manifest.get('check')} — {'holds' if counts.get('balanced') else 'DOES NOT HOLD'}.", "",
             "## Rows per source", "",
             "| source | read | rejected | duplicates | train | held out |", "|---|---:|---:|---:|---:|---:|"]
    for source, c in list(counts["per_source"].items()) + [("**total**", counts["totals"])]:
        plain = source.strip("*")
        train = sum(split.get("train", {}).values()) if plain == "total" else split.get("train", {}).get(source, 0)
        held = sum(split.get("heldout", {}).values()) if plain == "total" else split.get("heldout", {}).get(source, 0)
        lines.append(f"| {source} | {c['read']:,} | {c['rejected']:,} | {c['removed']:,} | {train:,} | {held:,} |")
    lines += ["", f"Train records (a dialogue gives one per reply in every-turn mode): {split.get('train_records', 0):,}.",
              "", "## Rejected, by reason", "", "| stage/reason | rows | per source |", "|---|---:|---|"]
    ordered = sorted(counts.get("rejects_by_reason", {}).items(), key=lambda kv: -sum(kv[1].values()))
    for reason, per_source in ordered:
        detail = ", ".join(f"{s} {n:,}" for s, n in per_source.items())
        lines.append(f"| {reason} | {sum(per_source.values()):,} | {detail} |")
    if examples:
        lines += ["", "### Examples, per reason (the first rows of rejects.jsonl)", ""]
        for reason, _ in ordered:
            lines.append(f"**{reason}**")
            lines.append("")
            lines += [f"- `{where}`: {text}" for where, text in examples.get(reason, [])] or ["- (none kept)"]
            lines.append("")
    stats = manifest.get("stats", {})
    bins = stats.get("length_bins")
    if bins:
        lines += ["", "## Lengths of the training rows (characters)", "", "| field | median bin | rows per bin |", "|---|---|---|"]
        for key, name in (("instruction_length", "instruction"), ("reply_length", "reply")):
            spread = ", ".join(f"{label}: {n:,}" for label, n in zip(_bin_labels(bins), stats[key]) if n)
            lines.append(f"| {name} | {median_bin(stats[key], bins)} | {spread} |")
    categories = stats.get("categories", {})
    if categories:
        lines += ["", "## Categories of the training rows", "", "| category | rows |", "|---|---:|"]
        lines += [f"| {name} | {n:,} |" for name, n in list(categories.items())[:20]]
        if len(categories) > 20:
            lines.append(f"| … {len(categories) - 20} more | {sum(list(categories.values())[20:]):,} |")
    lines += ["", "## Duplicates, by method", ""]
    lines += [f"- {m}: {n:,}" for m, n in counts.get("duplicates_by_method", {}).items()] or ["- none"]
    lines += ["", "## Rows changed, by normalizer", ""]
    lines += [f"- {m}: {n:,}" for m, n in counts.get("rows_changed_by_normalizer", {}).items()] or ["- none"]
    for key, title in (("turns_cut_by_rule", "Dialogue rounds cut, by rule"), ("pii_masks_by_kind", "Personal data masked, by kind")):
        if counts.get(key):
            lines += ["", f"## {title}", ""] + [f"- {k}: {n:,}" for k, n in counts[key].items()]
    if plots:
        lines += ["", "## Plots", ""]
        if not font:
            lines += ["No CJK font is installed (`make fonts`, or Debian's fonts-noto-cjk), so labels that are not "
                      "ASCII fall back to `[n]`, numbered by rank as in the tables above.", ""]
        lines += [f"![{name[:-4]}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def write_report(folder: str | Path, manifest: dict[str, Any]) -> Path:
    """report.md and its PNG plots, beside the manifest."""
    out = Path(folder)
    plots = _plots(out, manifest)
    path = out / "report.md"
    text = render_markdown(manifest, plots, reject_examples(out), cjk_font() if plots else None)
    path.write_text(text, encoding="utf-8")
    return path


def plot_token_lengths(tokens: dict[str, Any], folder: str | Path) -> Path:
    """token_lengths.png: the examples by whole length in the model's tokens, --max-len marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges, counts = tokens["histogram"]["edges"], tokens["histogram"]["counts"]
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])]
    fig, axis = plt.subplots(figsize=(8, 3.8))
    bars = axis.bar(range(len(counts)), counts, color="#4c72b0")
    axis.bar_label(bars, labels=[f"{c:,}" if c else "" for c in counts], padding=2, fontsize=8)
    axis.set_xticks(range(len(labels)), labels, rotation=45, fontsize=7)
    title = f"examples by length in tokens ({tokens['tokenizer']}, template {tokens['template']})"
    over = tokens.get("max_len")
    if over:
        title += f"\n{over['over']:,} of {tokens['examples']:,} over --max-len {over['max_len']:,}"
    axis.set_title(title, fontsize=9)
    axis.set_ylabel("examples")
    path = Path(folder) / TOKEN_PLOT
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.tight_layout()
        fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path
