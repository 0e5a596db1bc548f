"""`idata export`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console, print_json


@click.command("export")
@click.argument("build", type=click.Path(exists=True, file_okay=False))
@click.option("--to", "to", required=True, type=click.Choice(["llama-factory", "hf", "openai"]),
              help="llama-factory: dataset_info.json + alpaca/sharegpt files; hf: a Hugging Face dataset "
                   "(parquet splits + dataset card); openai: one JSON-lines file of `messages`.")
@click.option("--out", "-o", required=True, type=click.Path(),
              help="A new folder (llama-factory, hf), or a file (openai). An earlier export is replaced; "
                   "anything else is refused.")
@click.option("--name", default=None, help="Dataset name (default: the build folder's name).")
@click.option("--license", "license_id", default=None, metavar="SPDX",
              help="License for the hf dataset card (default: from the sources: gpl-3.0 for Belle, else 'other').")
@click.option("--split", default="train", show_default=True, type=click.Choice(["train", "heldout"]),
              help="openai: which split to write.")
@click.option("--overwrite", is_flag=True, help="openai: replace an --out file that no idata run wrote.")
@click.option("--push-to-hub", "push_to_hub", default=None, metavar="REPO",
              help="hf: upload the exported folder to this dataset repo (needs a token: `huggingface-cli login`).")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo private.")
@click.option("--json", "as_json", is_flag=True, help="Print the export's manifest as JSON.")
def export_command(build, to, out, name, license_id, split, overwrite, push_to_hub, private, as_json):
    """Export a build folder for other tools: LLaMA-Factory, Hugging Face datasets, OpenAI messages.

    The export is the build's canonical conversations as plain text (no template applied):
    the trainer renders them with the model's own chat template. Tool calls, tool results,
    reasoning traces and system texts are kept.

    \b
    Examples:
      idata export build/mine --to llama-factory --out lf-data     # then dataset_dir: lf-data
      idata export build/mine --to hf --out hf-mine                # datasets.load_dataset("hf-mine")
      idata export build/mine --to hf --out hf-mine --push-to-hub me/mine-zh --private
      idata export build/mine --to openai --out mine.messages.jsonl
    """
    from instruct_data.export import export

    if push_to_hub and to != "hf":
        raise click.UsageError("--push-to-hub goes with --to hf")
    manifest = export(build, to, out, name=name, license_id=license_id, split=split, overwrite=overwrite,
                      push_to_hub=push_to_hub, private=private)
    if as_json:
        print_json(manifest)
        return
    sizes = ", ".join(f"{split_name} {n:,}" for split_name, n in manifest["conversations"].items())
    console.print(f"exported {sizes} conversations as {to}")
    if manifest.get("unparsed_heldout"):
        console.print(f"[yellow]{manifest['unparsed_heldout']} held-out rows could not be read back into turns: "
                      "each holds its rendered prompt as one user message[/yellow]")
    if manifest["counts"].get("text_beside_call"):
        console.print(f"{manifest['counts']['text_beside_call']} replies hold text beside a tool call: "
                      "kept in the call turn's <think> block (LLaMA-Factory's only slot for it)")
    files = ", ".join(o["path"] for o in manifest["outputs"])
    console.print(f"[green]wrote[/green] {out}: {files}")
    if manifest.get("pushed_to"):
        console.print(f"[green]pushed[/green] {manifest['pushed_to']}")
