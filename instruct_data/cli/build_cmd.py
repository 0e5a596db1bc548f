"""`idata build`: Belle from the hub, your own files, or a recipe mixing them."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import click

from instruct_data.cli.common import console, engine_options, print_json, row_progress
from instruct_data.outputs_guard import guard_output
from instruct_data.templates import TEMPLATES


# The options that describe one source, and the key a recipe's source gives them under.
RECIPE_KEYS = {"--categories": "`categories:`", "--limit": "`limit:`", "--format": "`format:`", "--map": "`map:`",
               "--from": "`from:`", "--revision": "`revision:`", "--subset": "`belle:`"}


def _given(name: str) -> bool:
    """Whether the option was given on the command line (not its default)."""
    from click.core import ParameterSource

    context = click.get_current_context(silent=True)
    return context is not None and context.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _recipe_from_arguments(targets, subset, limit, revision, from_path, fmt, mapping, categories=None):
    from instruct_data.formats import parse_mapping
    from instruct_data.recipe import load_recipe, parse_recipe

    if len(targets) == 1 and targets[0].lower().endswith((".yaml", ".yml")):
        ignored = [option for option, value in (("--categories", categories), ("--limit", limit), ("--format", fmt),
                                                ("--map", mapping), ("--from", from_path), ("--revision", revision),
                                                ("--subset", _given("subset") and subset)) if value]
        if ignored:  # (they were ignored in silence: a recipe says these per source)
            raise click.UsageError(f"{', '.join(ignored)} with a recipe: give each source its "
                                   f"{', '.join(RECIPE_KEYS[o] for o in ignored)} in the recipe")
        return load_recipe(targets[0])
    if targets[0] == "belle" and not Path("belle").exists():
        if len(targets) > 1:
            raise click.UsageError("`idata build belle` takes no other inputs; use a recipe to mix sources")
        source = {"belle": subset, "limit": limit, "revision": revision, "categories": categories}
        if from_path:
            source["from"] = from_path
        return parse_recipe({"sources": [source]}, "idata build belle")
    sources = [{"files": [t], "limit": limit, "format": fmt, "map": parse_mapping(mapping) or None,
                "categories": categories} for t in targets]
    # Files of one name in different folders (a/mine.jsonl b/mine.jsonl) are two sources named
    # by their folders too (a/mine, b/mine), as `idata convert` names them; other names stay.
    from instruct_data.ledger import source_name, source_names

    for source, derived, unique in zip(sources, [source_name(Path(t)) for t in targets],
                                       source_names([Path(t).resolve() for t in targets])):
        if unique != derived:
            source["name"] = unique
    return parse_recipe({"sources": sources}, "idata build")


# Recipe fields the command line can set, and the option that sets each (for error messages).
OPTION_FIELDS = {"template": "--template", "seed": "--seed", "split.heldout": "--heldout", "dedupe.near": "--near",
                 "against": "--against", "max_reject_rate": "--max-reject-rate"}


def _with_options(recipe, *, template, seed, heldout, near, against, max_reject_rate):
    """The recipe with the options given on the command line, validated by the recipe's own
    model (so `--heldout -3` fails as `heldout: -3` in a recipe does; model_copy(update=)
    skipped the validators)."""
    from pydantic import ValidationError

    from instruct_data.recipe import Recipe

    data = recipe.model_dump(by_alias=True)
    for key, value in {"template": template, "seed": seed, "max_reject_rate": max_reject_rate}.items():
        if value is not None:
            data[key] = value
    if max_reject_rate is not None:  # the command line's rate is every source's: a source's own rate
        for source in data["sources"]:  # could not be raised, though the error said to raise it
            source["max_reject_rate"] = None
    if heldout is not None:
        data["split"]["heldout"] = heldout
    if near is not None:
        data["dedupe"]["near"] = near
    data["against"] = [*data["against"], *against]
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{OPTION_FIELDS.get(where, where)}: {error['msg'].removeprefix('Value error, ')}")
        raise click.UsageError("; ".join(problems)) from None


def recipe_inputs(recipe) -> list[str]:
    """Every path a build reads: the sources' files, local Belle copies and benchmark files."""
    paths = [*recipe.against]
    for source in recipe.sources:
        paths += [*(source.files or []), *([source.from_] if source.from_ else []),
                  *([source.categories] if source.categories else [])]
    return paths


@click.command("build")
@click.argument("targets", nargs=-1, required=True)
@click.option("--out", "-o", required=True, type=click.Path(), help="Output folder: new, empty, or an earlier build (replaced atomically; other files in it stop the build).")
@click.option("--subset", default="0.5M", show_default=True,
              type=click.Choice(["0.5M", "1M", "2M", "3.5M", "multiturn", "math", "chat"]), help="Belle release, with `belle`.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Read at most N rows per source (streams: stops early).")
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit) of the Belle dataset.")
@click.option("--from", "from_path", default=None, type=click.Path(exists=True),
              help="Read local copies of Belle's files (the hub's layout) instead of the hub.")
@click.option("--template", "-t", default=None, type=click.Choice(sorted(TEMPLATES)),
              help="How conversations become context/target (default: the recipe's, else seed).")
@click.option("--seed", type=int, default=None, help="Seed of the held-out split (default: the recipe's, else 0).")
@click.option("--heldout", type=float, default=None, help="Held-out rows: a count (e.g. 500) or a fraction (e.g. 0.02); default 5% of the cleaned rows, at most 500; 0 for none.")
@click.option("--near/--no-near", default=None, help="Near-duplicate detection (default: the recipe's, else on).")
@click.option("--against", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A benchmark file: training rows whose prompt duplicates one of its questions are removed. Repeatable.")
@click.option("--categories", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A file of row ids and their categories (`id`, `category`; e.g. BELLE-2's "
                   "train_3.5M_CN_id2category.json), joined onto the rows by their own `id`: the held-out set is "
                   "stratified by them and `idata eval` scores each.")
@click.option("--format", "fmt", default=None, metavar="NAME", help="Force the input format of FILE inputs.")
@click.option("--map", "mapping", default=None, metavar="FIELD=COLUMN,...", help="Map your columns to known fields.")
@click.option("--max-reject-rate", type=float, default=None,
              help="Fail when a larger share of a source's rows is rejected (default: the recipe's, else 0.5); "
                   "a high rate usually means a wrong --format or --map.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes for reading and cleaning (default: the CPU count); with --engine ray and no --ray-address, the CPUs of the local Ray runtime.")
@engine_options
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
def build_command(targets, out, subset, limit, revision, from_path, template, seed, heldout, near, against, categories,
                  fmt, mapping, max_reject_rate, workers, engine, ray_address, as_json):
    """Build a clean training set and a held-out benchmark, with the record of every dropped row.

    TARGETS is `belle` (a Belle release: --subset, --limit, --revision, --from), one or more
    files of your own (any format `idata convert` reads), or one RECIPE.yaml mixing sources
    with caps or weights. OUT receives train.jsonl, heldout.jsonl, conversations.jsonl,
    rejects.jsonl, duplicates.jsonl, manifest.json and report.md with plots.

    \b
    Examples:
      idata build belle --subset 1M --limit 20000 --heldout 500 --out build/belle
      idata build belle --subset multiturn --from ~/belle-copy --out build/mt
      idata build belle --subset 3.5M --from ~/belle-copy --categories train_3.5M_CN_id2category.json --out build/3.5m
      idata build mine.jsonl answers.xlsx --heldout 0.05 --out build/mine
      idata build recipes/mix.yaml --out build/mix
      idata build belle --subset 2M --limit 50000 --against belle_eval.jsonl --out build/clean
      idata build big.jsonl --engine ray --ray-address head-node:6379 --out build/big
    """
    from instruct_data.cli.summary import missing_categories_hint, print_summary
    from instruct_data.executors import executor_for
    from instruct_data.pipeline import build, estimate_rows

    recipe = _recipe_from_arguments(targets, subset, limit, revision, from_path, fmt, mapping, categories)
    recipe = _with_options(recipe, template=template, seed=seed, heldout=heldout, near=near, against=against,
                           max_reject_rate=max_reject_rate)
    executor = executor_for(engine, workers=workers, address=ray_address)
    # The build swaps its folder in itself (pipeline.run); `target` is --out with links resolved.
    # Ray Data draws its own progress bars, one per stage.
    progress = nullcontext() if executor.draws_own_progress else row_progress("building",
                                                                              total=estimate_rows(recipe))
    with guard_output(out, recipe_inputs(recipe), command="build") as target, progress as advance:
        manifest = build(recipe, target, executor=executor, on_row=advance)
    if as_json:
        print_json(manifest)
        return
    print_summary(manifest, title=f"idata build -> {out}")
    hint = missing_categories_hint(manifest)
    if hint:
        console.print(hint, soft_wrap=True)
    console.print(f"[green]wrote[/green] {out}/: train.jsonl, heldout.jsonl, report.md (and the ledger)")
