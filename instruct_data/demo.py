"""`idata demo`: the whole flow on the sample bundled with the package, offline, on a CPU.

    build  the bundled sample (five files, five formats, deliberate noise) -> OUT/build/
    train  a tiny local Llama (tokenizer trained on the data, random weights) with LoRA -> OUT/adapter/
    eval   the tuned model against its base on the build's held-out set, and on the shipped
           multiple-choice set idata-zh-mc (knowledge kept or forgotten) -> OUT/eval/

The tiny model learns little in a few CPU steps: the point is that every stage runs through
exactly the code a real run uses, and that every output a real run writes is there to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

HELDOUT_FRACTION = 0.1
EVAL_NEW_TOKENS = 32
KNOWLEDGE = "idata-zh-mc"  # the shipped multiple-choice set: did tuning make the model forget?


def sample_dir() -> Path:
    return Path(str(resources.files("instruct_data") / "data" / "sample"))


@dataclass
class DemoResult:
    build: dict[str, Any]  # the build's manifest
    adapter: Path
    results: dict[str, Any]  # the evaluation's results.json


def demo_build(out: Path) -> dict[str, Any]:
    from instruct_data.pipeline import build
    from instruct_data.recipe import parse_recipe

    recipe = parse_recipe({"sources": [{"name": "sample", "files": [str(sample_dir())]}],
                           "split": {"heldout": HELDOUT_FRACTION}, "template": "seed", "seed": 0})
    return build(recipe, out)


def demo_eval(build_dir: Path, adapter: Path, out: Path) -> dict[str, Any]:
    from instruct_data.evaluation import EvalConfig, evaluate

    return evaluate(EvalConfig(model=None, adapter=str(adapter), benchmark=[str(build_dir / "heldout.jsonl"), KNOWLEDGE],
                               out=str(out), compare_base=True, max_new_tokens=EVAL_NEW_TOKENS))


def run_demo(out: str | Path, say: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Build, train and evaluate under `out`; `say` hears one line per stage."""
    from instruct_data.training.demo import demo_train

    from instruct_data.outputs_guard import OutputError

    out = Path(out)
    if out.exists() and not out.is_dir():  # a refused --out is exit 1, as for every command
        raise OutputError(f"--out {out} is a file, not a folder")
    say("1/3 build: cleaning, deduplicating and splitting the bundled sample")
    manifest = demo_build(out / "build")
    say("2/3 train: LoRA on a tiny local Llama, a few CPU steps")
    adapter = demo_train(out / "build", out / "adapter")
    say("3/3 eval: tuned against base on the held-out set and the multiple-choice knowledge set")
    results = demo_eval(out / "build", adapter, out / "eval")
    return DemoResult(build=manifest, adapter=adapter, results=results)
