"""`idata merge`: fold a LoRA adapter into its base model and write a normal model folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from instruct_data.errors import IdataError

# Files of a training run that describe how to prompt the model: they travel with it.
CARRIED = ("template.json", "generation_config.json")


def adapter_base(adapter: Path) -> str:
    import json

    config_file = adapter / "adapter_config.json"
    if not config_file.is_file():
        raise IdataError(f"{adapter}: no adapter_config.json (is this the output folder of `idata train`?)")
    base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise IdataError(f"{config_file} names no base model; pass --base")
    return base


def merge(adapter: str | Path, out: str | Path, *, base: str | None = None, dtype: str = "fp32",
          trust_remote_code: bool = False, overwrite: bool = False) -> Path:
    """Write base + adapter, merged, with the tokenizer and template, to `out`; return `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter, out = Path(adapter), Path(out)
    base = base or adapter_base(adapter)
    if out.resolve() == adapter.resolve():
        raise IdataError("--out must differ from --adapter")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise IdataError(f"{out} exists and is not empty; pass --overwrite to replace it")
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise IdataError(f"cannot load the base model {base}: {exc}") from None
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    tokenizer_from = adapter if (adapter / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from), trust_remote_code=trust_remote_code)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    for name in CARRIED:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, tmp / name)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
