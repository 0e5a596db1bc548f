"""`idata eval` and `idata score` as library calls: evaluate(EvalConfig) and score(path).

    from instruct_data.evaluation import EvalConfig, evaluate
    results = evaluate(EvalConfig(model="tiny-model", adapter="adapter", out="eval-out", compare_base=True))

Both write into OUT, each file atomically: predictions.jsonl, results.json, report.md and
scores_by_category.png. `score` recomputes every score from the predictions' text, so it
reproduces an `evaluate` run exactly from its predictions.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.evaluation.aggregate import DEFAULT_RESAMPLES, DEFAULT_SEED, OVERALL, paired_delta, summarize
from instruct_data.evaluation.benchmarks import DEFAULT_BENCHMARK, display_category, load_benchmark
from instruct_data.evaluation.generation import (Decoding, adapter_base_model, end_token_ids, generate, load_model,
                                                 read_recorded_template)
from instruct_data.evaluation.metrics import HEADLINE, SHORT_REFERENCE_CHARS, score_item
from instruct_data.evaluation.report import CHART_NAME, write_chart, write_report
from instruct_data.io import file_sha256, write_json, write_jsonl
from instruct_data.templates import DEFAULT_TEMPLATE, Template, get_template


HASH_WEIGHTS_UP_TO = 2 * 2**30  # bytes of local weights worth hashing for results.json


@dataclass
class EvalConfig:
    model: str | None  # None: the base model named in the adapter's adapter_config.json
    out: str
    adapter: str | None = None
    benchmark: str = DEFAULT_BENCHMARK
    from_path: str | None = None  # a local copy of a registered remote benchmark
    template: str | None = None  # None: the adapter's template.json, else the default
    compare_base: bool = False
    max_new_tokens: int = 128
    batch_size: int = 16
    sample: bool = False
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0
    limit: int | None = None  # the first N items
    per_category: int | None = None  # the first N items of each category (applied before limit)
    dtype: str = "auto"
    device: str | None = None
    trust_remote_code: bool = False
    resamples: int = DEFAULT_RESAMPLES
    bootstrap_seed: int = DEFAULT_SEED


def resolve_template(name: str | None, adapter: str | None, model: str | None = None) -> tuple[Template, str]:
    """(template, where it came from): --template, else the template.json recorded beside the
    adapter (or in a merged model folder), else the default."""
    if name:
        return get_template(name), "--template"
    recorded = read_recorded_template(adapter, model)
    if recorded:
        data, path = recorded
        fields = set(Template.__dataclass_fields__)
        data = {k: v for k, v in data.items() if k in fields}
        data["stop"] = tuple(data.get("stop") or ())
        return Template(**data), path
    return get_template(DEFAULT_TEMPLATE), "default"


def resolve_model(config: EvalConfig) -> str:
    if config.model:
        return config.model
    if not config.adapter:
        raise IdataError("pass --model (or --adapter, whose adapter_config.json names its base model)")
    base = adapter_base_model(config.adapter)
    if not base:
        raise IdataError(f"{config.adapter}/adapter_config.json names no base model: pass --model")
    return base


def _template_sha256(template: Template) -> str:
    return hashlib.sha256(json.dumps(template.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def evaluate(config: EvalConfig, on_progress: Callable[[int, int], None] | None = None) -> dict:
    """Generate on the benchmark (tuned, and base with --compare-base), score, write OUT; the results."""
    if config.compare_base and not config.adapter:
        raise IdataError("--compare-base needs --adapter: the base is the model with its adapter switched off")
    check_out(Path(config.out))  # before minutes of generation, not after
    model_name = resolve_model(config)
    template, template_source = resolve_template(config.template, config.adapter, model_name)
    bench = load_benchmark(config.benchmark, template, from_path=config.from_path, limit=config.limit,
                           per_category=config.per_category)
    model, tokenizer = load_model(model_name, config.adapter, dtype=config.dtype, device=config.device,
                                  trust_remote_code=config.trust_remote_code)
    decoding = Decoding(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, do_sample=config.sample,
                        temperature=config.temperature, top_p=config.top_p, seed=config.seed, stop=list(template.stop),
                        eos_token_ids=end_token_ids(model, tokenizer, config.adapter, model_name))
    tuned, base, timing = _generate_passes(model, tokenizer, [item.prompt for item in bench.items], decoding,
                                           config.compare_base, on_progress)
    rows = [_row(item, tuned[index], base[index] if base else None) for index, item in enumerate(bench.items)]
    meta = {
        "benchmark": bench.describe(),
        "model": _model_info(model_name, model),
        "adapter": _adapter_info(config.adapter),
        "template": {"name": template.name, "source": template_source, "sha256": _template_sha256(template),
                     "stop": list(template.stop)},
        "decoding": decoding.describe(),
        "warnings": [w for w in [bench.template_warning(template)] if w],
        "device": str(getattr(model, "device", "")),
        "throughput": timing,
    }
    return write_outputs(rows, Path(config.out), meta, resamples=config.resamples, seed=config.bootstrap_seed)


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise IdataError(f"--out {out} is a file, not a folder")


def _generate_passes(model, tokenizer, prompts, decoding, compare_base, on_progress):
    """(tuned outputs, base outputs or None, throughput of each pass)."""
    passes = 2 if compare_base else 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, passes * len(prompts))

    timing = {}
    started = time.perf_counter()
    tuned = generate(model, tokenizer, prompts, decoding, on_batch=advance)
    timing["model"] = _throughput(tuned, time.perf_counter() - started)
    base = None
    if compare_base:
        started = time.perf_counter()
        with model.disable_adapter():  # peft: the same loaded weights, LoRA switched off
            base = generate(model, tokenizer, prompts, decoding, on_batch=advance)
        timing["base"] = _throughput(base, time.perf_counter() - started)
    return tuned, base, timing


def _row(item, tuned, base) -> dict:
    """One line of predictions.jsonl."""
    row = {"id": item.id, "category": item.category, "prompt": item.prompt, "reference": item.reference,
           "prediction": tuned.text, "finish": tuned.finish, "new_tokens": tuned.new_tokens,
           "scores": score_item(tuned.text, item.reference)}
    if base is not None:
        row.update(base_prediction=base.text, base_finish=base.finish, base_new_tokens=base.new_tokens,
                   base_scores=score_item(base.text, item.reference))
    return row


def _throughput(generated, seconds: float) -> dict:
    tokens = sum(g.new_tokens for g in generated)
    return {"new_tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 2) if seconds else None}


def _model_info(name: str, model) -> dict:
    info = {"name_or_path": name}
    config = getattr(model, "config", None)
    if config is not None:
        info["architecture"] = (getattr(config, "architectures", None) or [type(model).__name__])[0]
        commit = getattr(config, "_commit_hash", None)
        if commit:
            info["revision"] = commit
    folder = Path(name)
    if (folder / "config.json").is_file():
        info["config_sha256"] = file_sha256(folder / "config.json")
        # The weights themselves when small; a big sharded model is named by its index file.
        files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.safetensors.index.json"))
        small = sum(f.stat().st_size for f in files) <= HASH_WEIGHTS_UP_TO
        info["files_sha256"] = {f.name: file_sha256(f) for f in files if small or f.name.endswith(".json")}
    return info


def _adapter_info(adapter: str | None) -> dict | None:
    if not adapter:
        return None
    folder = Path(adapter)
    info = {"path": str(folder)}
    for name in ("adapter_model.safetensors", "adapter_config.json", "template.json"):
        if (folder / name).is_file():
            info[f"{name}_sha256"] = file_sha256(folder / name)
    return info


def versions() -> dict:
    from importlib import metadata

    found = {}
    for package in ("instruct-data", "torch", "transformers", "peft", "rouge-score", "nltk", "jieba", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def write_outputs(rows: list[dict], out: Path, meta: dict, *, resamples: int, seed: int,
                  write_predictions: bool = True) -> dict:
    """predictions.jsonl, results.json, report.md and the chart; the results dict."""
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {"model": summarize(rows, resamples=resamples, seed=seed)}
    compared = bool(rows) and all("base_prediction" in r for r in rows)
    if compared:
        metrics["base"] = summarize(rows, "base_scores", "base_prediction", resamples=resamples, seed=seed)
        metrics["delta"] = paired_delta(rows, resamples=resamples, seed=seed)
    results = {
        **meta,
        "bootstrap": {"resamples": resamples, "seed": seed, "confidence": 0.95,
                      "short_reference_chars": SHORT_REFERENCE_CHARS},
        "headline_metric": HEADLINE,
        "counts": metrics["model"][OVERALL]["counts"],
        "metrics": metrics,
        "versions": versions(),
    }
    if compared:
        results["worse_categories"] = [c for c, d in metrics["delta"].items() if c != OVERALL and d[HEADLINE]["worse"]]
    if write_predictions:
        write_jsonl(out / "predictions.jsonl", rows)
        results["predictions"] = str(out / "predictions.jsonl")
    results["chart"] = CHART_NAME
    write_chart(results, out / CHART_NAME)
    write_report(results, out)
    write_json(out / "results.json", results)
    return results


# ---------------------------------------------------------------- idata score

PREDICTION_KEYS = ("prediction", "predict", "output", "response")
REFERENCE_KEYS = ("reference", "label", "std_answer", "target", "answer")
PROMPT_KEYS = ("prompt", "question", "context", "instruction")


def _first(data: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in data:
            return key, data[key]
    return None, None


def _text(value) -> str | None:
    """Text as is; a number (a math answer in a spreadsheet) as text; anything else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def read_predictions(path: str | Path) -> list[dict]:
    """Prediction rows from `idata eval`, LLaMA-Factory (`predict`/`label`) or any similar file."""
    from instruct_data.io import read_rows

    rows = []
    for row in read_rows(path):
        where = str(row.origin)
        if row.data is None:
            raise InputError(str(path), f"cannot read predictions: {row.error}", line=row.origin.line or row.origin.row)
        key, prediction = _first(row.data, PREDICTION_KEYS)
        if key is None:
            raise InputError(str(path), f"no prediction field (one of {', '.join(PREDICTION_KEYS)}) in row {where}",
                             line=row.origin.line or row.origin.row)
        _, reference = _first(row.data, REFERENCE_KEYS)
        _, prompt = _first(row.data, PROMPT_KEYS)
        position = row.origin.line if row.origin.line is not None else row.origin.row
        item = {"id": str(row.data.get("id", position)), "category": display_category(row.data.get("category") or row.data.get("class")),
                "prompt": prompt, "reference": _text(reference), "prediction": _text(prediction) or ""}
        item["scores"] = score_item(item["prediction"], item["reference"])
        if "base_prediction" in row.data:
            item["base_prediction"] = _text(row.data["base_prediction"]) or ""
            item["base_scores"] = score_item(item["base_prediction"], item["reference"])
        rows.append(item)
    return rows


def _source_run(predictions: Path) -> dict:
    """Model, adapter, template and decoding of the `idata eval` run that wrote these predictions."""
    beside = predictions.parent / "results.json"
    if predictions.name != "predictions.jsonl" or not beside.is_file():
        return {}
    try:
        run = json.loads(beside.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    keys = ("benchmark", "model", "adapter", "template", "decoding")
    return {"source_run": str(beside), **{k: run[k] for k in keys if run.get(k)}}


def score(predictions: str | Path, out: str | Path, *, resamples: int = DEFAULT_RESAMPLES,
          seed: int = DEFAULT_SEED) -> dict:
    """Score a predictions file made elsewhere with the same metrics; writes results.json, report.md, chart."""
    rows = read_predictions(predictions)
    out = Path(out)
    digest = file_sha256(predictions)
    meta = {"benchmark": {"name": Path(predictions).stem, "path": str(predictions), "sha256": digest,
                          "format": "predictions", "items": len(rows)},
            "scored_from": {"path": str(predictions), "sha256": digest}}
    meta.update(_source_run(Path(predictions)))  # an `idata eval` run: its benchmark, model, template
    # Keep the source file untouched; write the rescored rows beside the report only when OUT differs.
    same_place = out.resolve() / "predictions.jsonl" == Path(predictions).resolve()
    if same_place:
        meta["predictions"] = str(predictions)
    return write_outputs(rows, out, meta, resamples=resamples, seed=seed, write_predictions=not same_place)
