"""The `idata` command line: a thin layer of options over the library.

Commands are imported only when run, so `idata --help` and `idata build --help` start at
once (torch and transformers load only inside `train` and `eval`). To add a command, add a
line to COMMANDS: name -> (module, function, one-line summary).
"""

from __future__ import annotations

import importlib
import sys

import click

from instruct_data import __version__

COMMANDS: dict[str, tuple[str, str, str]] = {
    "build": ("instruct_data.cli.build_cmd", "build_command", "Build a clean training set and held-out benchmark from Belle, files or a recipe."),
    "convert": ("instruct_data.cli.convert_cmd", "convert_command", "Convert any supported input to context/target JSONL."),
    "dedupe": ("instruct_data.cli.dedupe_cmd", "dedupe_command", "Remove exact and near duplicates and benchmark questions, with a record of each."),
    "demo": ("instruct_data.cli.demo_cmd", "demo_command", "Run the whole flow on the bundled sample, offline."),
    "export": ("instruct_data.cli.export_cmd", "export_command", "Export a build for LLaMA-Factory, Hugging Face datasets or OpenAI-style messages."),
    "eval": ("instruct_data.cli.eval_cmd", "eval_command", "Score a model and its adapter against its base on a Chinese benchmark."),
    "score": ("instruct_data.cli.score_cmd", "score_command", "Score predictions made elsewhere with idata eval's metrics."),
    "merge": ("instruct_data.cli.merge_cmd", "merge_command", "Merge a LoRA adapter into its base model."),
    "train": ("instruct_data.cli.train_cmd", "train_command", "Fine-tune a causal LM with LoRA on context/target or conversation JSONL."),
    "stats": ("instruct_data.cli.stats_cmd", "stats_command", "Summarise a build folder and write its report.md with plots."),
    "view": ("instruct_data.cli.view_cmd", "view_command", "Write one HTML page to look at a build's or an eval's decisions."),
    "validate": ("instruct_data.cli.validate_cmd", "validate_command", "Check files against their format, with file:line errors."),
    "to-multiturn": ("instruct_data.cli.multiturn_cmd", "multiturn_command", "Turn dialogues into multi-turn context/target records with history."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="idata")
def cli():
    """idata: Chinese instruction data, from raw files to a tuned and evaluated LoRA adapter.

    \b
    Example:
      idata convert mine.xlsx --map instruction=问题,output=答案 --out train.jsonl
      idata validate train.jsonl
    """


def main(argv: list[str] | None = None) -> None:
    from instruct_data.cli.common import run_cli

    run_cli(cli, argv if argv is not None else sys.argv[1:])
