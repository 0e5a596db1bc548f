"""`idata merge`: fold a LoRA adapter into its base model and write a normal model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from instruct_data.errors import IdataError
from instruct_data.faults import reached
from instruct_data.model_path import ADAPTER_CONFIG, check_adapter

# Files of a training run that describe how to prompt the model: they travel with it.
CARRIED = ("template.json", "generation_config.json")


def adapter_base(adapter: Path, base: str | None) -> str:
    """The base model to merge into: `base`, else the one the adapter names. The adapter folder
    is checked first, before minutes of loading the base (which then failed in peft's words,
    blamed on --out)."""
    settings = check_adapter(adapter)
    base = base or settings.get("base_model_name_or_path")
    if not base:
        raise IdataError(f"{adapter / ADAPTER_CONFIG} names no base model; pass --base")
    return base


def merge(adapter: str | Path, out: str | Path, *, base: str | None = None, dtype: str = "fp32",
          trust_remote_code: bool = False, overwrite: bool = False) -> Path:
    """Write base + adapter, merged, with the tokenizer and template, to `out`; return `out`.

    `out` is guarded like every command's (outputs_guard): never the adapter, the base model's
    folder, a folder holding either, or a folder of the user's; an earlier merge is replaced
    only with `overwrite`, in one swap once the new model is complete."""
    from instruct_data.outputs_guard import guard_output

    adapter = Path(adapter)
    base = adapter_base(adapter, base)
    with guard_output(out, [], command="merge", overwrite=overwrite, models=[adapter, base], staged=True) as work:
        _write_merged(adapter, work, base, dtype, trust_remote_code)
    return Path(out)


def _write_merged(adapter: Path, work: Path, base: str, dtype: str, trust_remote_code: bool) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise IdataError(f"cannot load the base model {base}: {exc}") from None
    reached("merge", 0.1)
    try:
        merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (OSError, ValueError, RuntimeError) as exc:  # damaged weights, another base's shapes: not --out's fault
        raise IdataError(f"cannot load the adapter {adapter} on {base}: {str(exc).splitlines()[0]}") from None
    reached("merge", 0.35)
    tokenizer_from = adapter if (adapter / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from), trust_remote_code=trust_remote_code)
    merged.save_pretrained(str(work), safe_serialization=True)
    reached("merge", 0.6)
    tokenizer.save_pretrained(str(work))
    for name in CARRIED:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, work / name)
    reached("merge", 0.99)
