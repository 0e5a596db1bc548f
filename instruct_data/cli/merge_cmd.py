"""`idata merge`."""

from __future__ import annotations

import click

from instruct_data.cli.common import console


@click.command("merge")
@click.option("--adapter", required=True, type=click.Path(exists=True, file_okay=False),
              help="The output folder of `idata train` (adapter + tokenizer + template).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Folder for the merged model.")
@click.option("--base", default=None, help="Base model (default: the one named in adapter_config.json).")
@click.option("--dtype", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Precision of the merged weights.")
@click.option("--trust-remote-code", is_flag=True, help="Allow the base model's own code (only for models you trust).")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier merge at --out (the new model is swapped in once complete; a folder "
                   "idata did not write, the adapter or the base model is never replaced).")
def merge_command(adapter, out, base, dtype, trust_remote_code, overwrite):
    """Merge a LoRA adapter into its base model: a normal model folder with its tokenizer.

    The template.json and generation_config.json of the run are copied along, so the merged
    model is prompted and stopped the way it was trained.

    \b
    Example:
      idata merge --adapter runs/qwen-0.5b --out models/qwen-0.5b-tuned
    """
    from instruct_data.training.merge import merge

    path = merge(adapter, out, base=base, dtype=dtype, trust_remote_code=trust_remote_code, overwrite=overwrite)
    console.print(f"[green]wrote[/green] {path}: merged model ({dtype}) with its tokenizer")
