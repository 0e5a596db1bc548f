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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from instruct_data.errors import IdataError, InputError
from instruct_data.evaluation.aggregate import DEFAULT_RESAMPLES, DEFAULT_SEED, OVERALL, paired_delta, summarize
from instruct_data.evaluation.benchmarks import DEFAULT_BENCHMARK, display_category, load_benchmark
from instruct_data.evaluation.choices import is_choice_benchmark, load_choice_benchmark
from instruct_data.evaluation.judge import JudgeConfig, judge_rows, rubrics_for
from instruct_data.evaluation.generation import (Decoding, adapter_base_model, end_token_ids, generate, load_model,
                                                 read_recorded_template)
from instruct_data.evaluation.heldout import agree
from instruct_data.evaluation.metrics import HEADLINE, SHORT_REFERENCE_CHARS
from instruct_data.evaluation.report import CHART_NAME, write_chart, write_report
from instruct_data.evaluation.toolcalls import reasoning_counts, scored, summarize_tool_calls
from instruct_data.io import file_sha256, write_json, write_jsonl
from instruct_data.model_path import check_adapter
from instruct_data.templates import (DEFAULT_TEMPLATE, NATIVE, AnyTemplate, NativeTemplate, Template, get_template,
                                     template_from_dict)
from instruct_data.tokens import PromptPrefix


HASH_WEIGHTS_UP_TO = 2 * 2**30  # bytes of local weights worth hashing for results.json


@dataclass
class EvalConfig:
    model: str | None  # None: the base model named in the adapter's adapter_config.json
    out: str
    adapter: str | None = None
    # One name or file, or several: at most one generated benchmark, any number of multiple-choice ones.
    benchmark: str | Sequence[str] = DEFAULT_BENCHMARK
    # A local copy of a registered remote benchmark; with several benchmarks, NAME=PATH each.
    from_path: str | Sequence[str] | None = None
    shots: int = 0  # multiple choice: examples from the dev split before each question
    shots_from: str | None = None  # multiple choice: a dev file for a benchmark file that has none
    choice_format: str = "letter"  # multiple choice: score the letters, or the options' texts
    judge: JudgeConfig | None = None
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


def resolve_template(name: str | None, adapter: str | None, model: str | None = None) -> tuple[AnyTemplate, str]:
    """(template, where it came from): --template, else the template.json recorded beside the
    adapter (or in a merged model folder), else the default. `native` is the chat template of
    the adapter's (or the model's) tokenizer."""
    if name == NATIVE:
        return _native_template(adapter, model), "--template native"
    if name:
        return get_template(name), "--template"
    recorded = read_recorded_template(adapter, model)
    if recorded:
        data, path = recorded
        return template_from_dict(data), path
    trained = _run_config_template(adapter)
    if trained:  # an adapter folder whose template.json was lost: its run_config.json names the template
        return (_native_template(adapter, model) if trained == NATIVE else get_template(trained)), \
            f"{adapter}/run_config.json"
    return get_template(DEFAULT_TEMPLATE), "default"


def _run_config_template(adapter: str | None) -> str | None:
    path = Path(adapter) / "run_config.json" if adapter else None
    if not path or not path.is_file():
        return None
    try:
        name = (json.loads(path.read_text(encoding="utf-8")).get("resolved") or {}).get("template")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _native_template(adapter: str | None, model: str | None) -> NativeTemplate:
    from transformers import AutoTokenizer

    for folder in (adapter, model):
        if not folder:
            continue
        try:
            found = NativeTemplate.from_tokenizer(AutoTokenizer.from_pretrained(folder))
        except (OSError, ValueError):
            continue
        if found is not None:
            return found
    raise IdataError("--template native: the tokenizer has no chat_template; name another template")


def _override_warning(config: EvalConfig, template: AnyTemplate) -> str | None:
    """--template naming another template than the one the adapter was trained with: allowed, and said."""
    recorded = read_recorded_template(config.adapter) if config.template and config.adapter else None
    if recorded and recorded[0].get("name") != template.name:
        return (f"asked with --template {template.name}, but the adapter was trained with {recorded[0].get('name')!r} "
                f"({recorded[1]}): drop --template to ask it as it was trained")
    return None


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
    """Generate on the benchmark (tuned, and base with --compare-base), score, write OUT; the results.

    Multiple-choice benchmarks among `config.benchmark` are scored by option log-likelihood on
    the same loaded model; with `config.judge`, a judge model scores every generated answer."""
    if config.compare_base and not config.adapter:
        raise IdataError("--compare-base needs --adapter: the base is the model with its adapter switched off")
    if config.adapter:
        check_adapter(config.adapter)  # before the base model loads: then peft failed in its own words
    check_out(Path(config.out))  # before minutes of generation, not after
    model_name = resolve_model(config)
    template, template_source = resolve_template(config.template, config.adapter, model_name)
    generated_name, choice_names, from_paths = plan_benchmarks(config.benchmark, config.from_path)
    bench = None
    if generated_name:
        bench = load_benchmark(generated_name, template, from_path=from_paths.get(generated_name), limit=config.limit,
                               per_category=config.per_category)
        bench = agree(bench, template, config.adapter)  # held-out rows asked as the adapter was trained, or an error
    elif config.judge:
        raise IdataError("--judge-url needs a generated benchmark (the judge scores generated answers)")
    choice_sets = [load_choice_benchmark(name, from_paths.get(name), shots_from=config.shots_from,
                                         limit=config.limit, per_category=config.per_category) for name in choice_names]
    _check_shots(config.shots, choice_sets)
    rubrics = rubrics_for(_judge_benchmark_name(bench), config.judge.prompt_file) if config.judge else None
    if config.judge:
        config.judge.api_key()  # a missing key fails now, not after the generation
    if on_progress:  # the count is known before the model loads (which can take minutes): say it at once
        on_progress(0, *_first_stage(bench, choice_sets, config))
    model, tokenizer = load_model(model_name, config.adapter, dtype=config.dtype, device=config.device,
                                  trust_remote_code=config.trust_remote_code)
    meta = {
        "model": _model_info(model_name, model),
        "adapter": _adapter_info(config.adapter),
        "template": {"name": template.name, "source": template_source, "sha256": _template_sha256(template),
                     "stop": list(template.stop)},
        "device": str(getattr(model, "device", "")),
    }
    # The special tokens before a prompt follow training's rule (instruct_data.tokens): none added
    # to a model's own chat template, which writes them itself.
    prefix = PromptPrefix(tokenizer, native=isinstance(template, NativeTemplate))
    rows = None
    if bench:
        decoding = Decoding(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, do_sample=config.sample,
                            temperature=config.temperature, top_p=config.top_p, seed=config.seed,
                            stop=list(template.stop), eos_token_ids=end_token_ids(model, tokenizer, config.adapter, model_name))
        tuned, base, timing = _generate_passes(model, tokenizer, [item.prompt for item in bench.items], decoding,
                                               config.compare_base, on_progress, prefix=prefix)
        rows = [_row(item, tuned[index], base[index] if base else None) for index, item in enumerate(bench.items)]
        meta.update({"benchmark": bench.describe(), "decoding": decoding.describe(), "throughput": timing,
                     "warnings": [w for w in [_override_warning(config, template)] if w]})
    knowledge = _score_choices(model, tokenizer, template, prefix, choice_sets, config, on_progress)
    if config.judge and rows is not None:
        meta["judge"] = judge_rows(rows, config.judge, rubrics, resamples=config.resamples, seed=config.bootstrap_seed,
                                   on_done=_counter(on_progress, len(rows) * (2 if config.compare_base else 1),
                                                    "answers judged"))
    return write_outputs(rows, Path(config.out), meta, resamples=config.resamples, seed=config.bootstrap_seed,
                         knowledge=knowledge)


def plan_benchmarks(benchmark: str | Sequence[str], from_path: str | Sequence[str] | None
                    ) -> tuple[str | None, list[str], dict[str, str]]:
    """(the generated benchmark or None, the multiple-choice ones, --from path by name)."""
    from instruct_data.evaluation.benchmarks import registry

    names = [benchmark] if isinstance(benchmark, str) else list(benchmark)
    if not names:
        raise IdataError("no benchmark given")
    from_paths = assign_from_paths(names, [from_path] if isinstance(from_path, str) else list(from_path or []),
                                   registry())
    choice = [name for name in names if is_choice_benchmark(name, from_paths.get(name))]
    generated = [name for name in names if name not in choice]
    if len(generated) > 1:
        raise IdataError(f"one generated benchmark per run, got {', '.join(generated)} "
                         "(multiple-choice benchmarks can be added to it)")
    return (generated[0] if generated else None), choice, from_paths


def assign_from_paths(names: list[str], values: list[str], entries: dict) -> dict[str, str]:
    """`--from NAME=PATH` for that name; a bare `--from PATH` for the one registered name that needs it."""
    assigned: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in names:
            assigned[name] = _existing(path)
            continue
        _existing(value)
        remote = [n for n in names if n in entries and not entries[n].get("file")] or [n for n in names if n in entries]
        if len(remote) != 1:
            raise IdataError(f"--from {value}: say which benchmark it is for, as --from NAME=PATH "
                             f"(registered names here: {', '.join(remote) or 'none'})")
        assigned[remote[0]] = value
    return assigned


def _judge_benchmark_name(bench) -> str | None:
    """BELLE's set gets BELLE's per-class rubrics, whether named `belle-eval` or passed as its file."""
    from instruct_data.evaluation.benchmarks import registry

    if bench is None:
        return None
    return "belle-eval" if bench.sha256 == registry()["belle-eval"]["sha256"] else bench.name


def _existing(path: str) -> str:
    if not Path(path).exists():
        raise InputError(path, "no such file or folder (--from)")
    return path


def _check_shots(shots: int, choice_sets: list[tuple[dict, object]]) -> None:
    for info, data in choice_sets:
        if shots and not data.dev:
            raise IdataError(f"--shots {shots}: {info['name']} has no dev split to take examples from "
                             "(pass --shots-from DEV_FILE, or a zip or folder with a dev/ split)")


def _score_choices(model, tokenizer, template, prefix, choice_sets, config: EvalConfig, on_progress) -> list[dict]:
    """One block per multiple-choice benchmark: its description, summary, and per-item rows."""
    from instruct_data.evaluation.choices import LETTERS
    from instruct_data.evaluation.multiple_choice import LM_EVAL, ChoiceRun, evaluate_choices

    # Knowledge is asked as lm-eval and OpenCompass ask a base model (plain text, no chat template),
    # so the numbers compare with published ones; --template NAME asks it in that template instead.
    if not config.template:
        template, prefix = None, PromptPrefix(tokenizer)
    run = ChoiceRun(template=template, prefix=prefix, choice_format=config.choice_format, shots=config.shots,
                    batch_size=config.batch_size, compare_base=config.compare_base, resamples=config.resamples,
                    seed=config.bootstrap_seed)
    prompt = LM_EVAL if template is None else template.name
    blocks = []
    for info, data in choice_sets:
        started = time.perf_counter()
        passes = 2 if config.compare_base else 1
        rows, summary = evaluate_choices(model, tokenizer, data, run,
                                         on_batch=_counter(on_progress, passes * len(data.items) * len(LETTERS),
                                                           "answer options"))
        without_shots = sorted({i.subject for i in data.items if len(data.dev.get(i.subject) or []) < config.shots})
        blocks.append({"benchmark": info, "prompt": prompt, "choice_format": config.choice_format, "shots": config.shots,
                       "subjects_short_of_shots": without_shots, "seconds": round(time.perf_counter() - started, 3),
                       "summary": summary, "rows": rows})
    return blocks


def _counter(on_progress, total: int, unit: str):
    """A progress callback that counts `done` up to `total` `unit` for one stage."""
    if on_progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        on_progress(done, total, unit)

    return advance


def _first_stage(bench, choice_sets, config: EvalConfig) -> tuple[int, str]:
    """(total, unit) of the first stage that reports progress: generation, else the first
    multiple-choice benchmark (every answer option of every item is scored)."""
    from instruct_data.evaluation.choices import LETTERS

    passes = 2 if config.compare_base else 1
    if bench:
        return passes * len(bench.items), "answers"
    return passes * len(choice_sets[0][1].items) * len(LETTERS), "answer options"


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise IdataError(f"--out {out} is a file, not a folder")


def _generate_passes(model, tokenizer, prompts, decoding, compare_base, on_progress, prefix=None):
    """(tuned outputs, base outputs or None, throughput of each pass)."""
    passes = 2 if compare_base else 1
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if on_progress:
            on_progress(done, passes * len(prompts), "answers")

    timing = {}
    started = time.perf_counter()
    tuned = generate(model, tokenizer, prompts, decoding, on_batch=advance, prefix=prefix)
    timing["model"] = _throughput(tuned, time.perf_counter() - started)
    base = None
    if compare_base:
        started = time.perf_counter()
        with model.disable_adapter():  # peft: the same loaded weights, LoRA switched off
            base = generate(model, tokenizer, prompts, decoding, on_batch=advance, prefix=prefix)
        timing["base"] = _throughput(base, time.perf_counter() - started)
    return tuned, base, timing


def _row(item, tuned, base) -> dict:
    """One line of predictions.jsonl."""
    row = {"id": item.id, "category": item.category, "prompt": item.prompt, "question": item.question,
           "reference": item.reference,
           "prediction": tuned.text, "finish": tuned.finish, "new_tokens": tuned.new_tokens}
    scored(row, tuned.text, item.reference)  # scores; tool_scores on a call item; traces taken off
    if base is not None:
        row.update(base_prediction=base.text, base_finish=base.finish, base_new_tokens=base.new_tokens)
        scored(row, base.text, item.reference, "base_")
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


def write_outputs(rows: list[dict] | None, out: Path, meta: dict, *, resamples: int, seed: int,
                  write_predictions: bool = True, knowledge: list[dict] | None = None, command: str = "eval") -> dict:
    """predictions.jsonl, knowledge-NAME.jsonl, results.json, report.md and the chart; the results dict.

    `rows` is None when only multiple-choice benchmarks ran (no generation, no reference scores).
    Written into a fresh folder swapped in at `out` at the end (outputs_guard.staged_folder): an
    earlier run's files are never mixed with this one's. Without `write_predictions` (score
    rescoring an eval folder in place) the files of the folder not written again are kept."""
    from instruct_data.outputs_guard import staged_folder

    check_out(out)
    results = {**meta, "bootstrap": {"resamples": resamples, "seed": seed, "confidence": 0.95,
                                     "short_reference_chars": SHORT_REFERENCE_CHARS}}
    kept = [] if write_predictions or not out.is_dir() else \
        [p.name for p in out.iterdir() if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")]
    with staged_folder(out, command=command, carry=kept) as work:
        if rows is not None:
            results.update(_reference_results(rows, meta.get("judge"), resamples=resamples, seed=seed))
            if write_predictions:
                write_jsonl(work / "predictions.jsonl", rows)
                results["predictions"] = str(out / "predictions.jsonl")
        if knowledge:
            results["knowledge"] = {}
            for block in knowledge:
                name = block["benchmark"]["name"]
                path = f"knowledge-{_file_safe(name)}.jsonl"
                write_jsonl(work / path, block["rows"])
                results["knowledge"][name] = {**{k: v for k, v in block.items() if k != "rows"},
                                              "predictions": str(out / path)}
        results["versions"] = versions()
        if rows is not None:
            results["chart"] = CHART_NAME
            results["chart_font"] = write_chart(results, work / CHART_NAME)
        write_report(results, work)
        write_json(work / "results.json", results)
    return results


def _reference_results(rows: list[dict], judge: dict | None, *, resamples: int, seed: int) -> dict:
    """Reference metrics per category (and the judge's score beside them), base and delta when compared."""
    metrics = {"model": summarize(rows, resamples=resamples, seed=seed)}
    compared = bool(rows) and all("base_prediction" in r for r in rows)
    if compared:
        metrics["base"] = summarize(rows, "base_scores", "base_prediction", resamples=resamples, seed=seed)
        metrics["delta"] = paired_delta(rows, resamples=resamples, seed=seed)
    if judge:  # the judge's score sits beside ROUGE in every group's metrics
        for side in ("model", "base"):
            for group, stats in (judge.get(side) or {}).items():
                if side in metrics and group in metrics[side]:
                    metrics[side][group]["metrics"]["judge"] = stats
        for group, stats in (judge.get("delta") or {}).items():
            if "delta" in metrics and group in metrics["delta"]:
                metrics["delta"][group]["judge"] = stats
    results = {"headline_metric": HEADLINE, "counts": metrics["model"][OVERALL]["counts"], "metrics": metrics}
    tool_calls = summarize_tool_calls(rows, resamples=resamples, seed=seed)  # items whose answer is a call
    if tool_calls:
        results["tool_calls"] = tool_calls
    results["reasoning_stripped"] = reasoning_counts(rows)
    if compared:
        results["worse_categories"] = [c for c, d in metrics["delta"].items() if c != OVERALL and d[HEADLINE]["worse"]]
    return results


def _file_safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


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
        scored(item, item["prediction"], item["reference"])
        if "base_prediction" in row.data:
            item["base_prediction"] = _text(row.data["base_prediction"]) or ""
            scored(item, item["base_prediction"], item["reference"], "base_")
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
    return write_outputs(rows, out, meta, resamples=resamples, seed=seed, write_predictions=not same_place,
                         command="score")
