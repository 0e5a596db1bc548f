"""Loading the base model (full precision, half precision, or 4-bit QLoRA) and wrapping it in LoRA."""

from __future__ import annotations

from dataclasses import dataclass

from instruct_data.errors import IdataError

# Attention projections per architecture (`--lora-target preset`), as the original LoRA
# recipes used them: alpaca-lora (q/v, Llama), ChatGLM-Tuning (query_key_value).
PRESETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "glm4": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "glm": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "chatglm": ["query_key_value"],
    "gpt2": ["c_attn"],
    "baichuan": ["W_pack"],
}


class PrecisionError(IdataError):
    """A precision or quantisation the machine cannot run."""


@dataclass(frozen=True)
class Precision:
    name: str  # bf16 | fp16 | fp32
    why: str

    @property
    def load_dtype(self):
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]


def choose_precision(requested: str) -> Precision:
    """bf16 where the GPU supports it, fp16 (with loss scaling) on older GPUs, fp32 on a CPU."""
    import torch

    cuda = torch.cuda.is_available()
    bf16_ok = cuda and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if bf16_ok:
            return Precision("bf16", "the GPU supports bf16")
        if cuda:
            return Precision("fp16", "the GPU has no bf16: fp16 with loss scaling")
        return Precision("fp32", "no GPU: fp32 on the CPU")
    if requested == "fp16" and not cuda:
        raise PrecisionError("--precision fp16 needs a CUDA GPU (loss scaling runs there); use fp32 on a CPU")
    if requested == "bf16" and cuda and not bf16_ok:
        raise PrecisionError(f"this GPU ({torch.cuda.get_device_name()}) has no bf16; use --precision fp16")
    return Precision(requested, "--precision")


def quantization_config(precision: Precision):
    """4-bit NF4 with double quantisation (the QLoRA paper's settings), or a clear error."""
    import torch

    if not torch.cuda.is_available():
        raise PrecisionError("--qlora (4-bit) needs a CUDA GPU and bitsandbytes; this machine has no GPU. "
                             "Train without --qlora (LoRA on the full-precision model) or on a GPU machine.")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise PrecisionError("--qlora needs bitsandbytes: pip install 'instruct-data[qlora]'") from None
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if precision.name == "bf16" else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def load_base(name: str, precision: Precision, *, qlora: bool, trust_remote_code: bool,
              attn_implementation: str | None, device_map=None):
    """The base model, with a clear message when it needs remote code or cannot load."""
    from transformers import AutoModelForCausalLM

    kwargs = dict(dtype=precision.load_dtype, trust_remote_code=trust_remote_code)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if qlora:
        kwargs["quantization_config"] = quantization_config(precision)
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    except ValueError as exc:
        text = str(exc)
        if "trust_remote_code" in text:
            raise IdataError(f"{name} ships its own model code; pass --trust-remote-code if you trust it") from None
        if attn_implementation and "attn" in text.lower():
            kwargs.pop("attn_implementation")
            model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        else:
            raise IdataError(f"cannot load model {name}: {text}") from None
    except OSError as exc:
        raise IdataError(f"cannot load model {name}: {exc}") from None
    model.config.use_cache = False  # no KV cache in training (and packed batches need none)
    return model


def linear_layer_names(model) -> list[str]:
    """Short names of every linear layer but the output head: `--lora-target all`."""
    import torch
    from transformers.pytorch_utils import Conv1D

    kinds = (torch.nn.Linear, Conv1D)
    try:
        import bitsandbytes as bnb

        kinds = kinds + (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except ImportError:
        pass
    head = model.get_output_embeddings()
    names = set()
    for full_name, module in model.named_modules():
        if isinstance(module, kinds) and module is not head:
            names.add(full_name.rsplit(".", 1)[-1])
    head_name = next((n for n, m in model.named_modules() if m is head), "")
    names.discard(head_name.rsplit(".", 1)[-1])
    if not names:
        raise IdataError("found no linear layer to put LoRA on; name them with --lora-target")
    return sorted(names)


def lora_targets(model, target: str) -> list[str]:
    if target == "all":
        return linear_layer_names(model)
    if target == "preset":
        model_type = model.config.model_type
        if model_type not in PRESETS:
            raise IdataError(f"no LoRA preset for {model_type!r}; use --lora-target all or name the layers")
        return PRESETS[model_type]
    names = [n.strip() for n in target.split(",") if n.strip()]
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [n for n in names if n not in present]
    if missing:
        raise IdataError(f"--lora-target {', '.join(missing)}: no such layer in this model "
                         f"(linear layers: {', '.join(linear_layer_names(model))})")
    return names


def wrap_lora(model, config, *, gradient_checkpointing: bool, precision: Precision | None = None):
    """The model with LoRA adapters; the base is frozen. Returns (peft_model, target names).

    Under fp16 every trainable parameter is made fp32 (LoRA layers and `--modules-to-save`
    copies alike): the loss scaler cannot unscale fp16 gradients, and fp16 weights lose small
    updates. The frozen base stays fp16; autocast runs the matmuls in half precision.
    """
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    targets = lora_targets(model, config.lora_target)
    if config.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, use_rslora=config.rslora, use_dora=config.dora,
                      modules_to_save=config.modules_to_save, task_type="CAUSAL_LM", bias="none")
    model = get_peft_model(model, lora)
    if precision is not None and precision.name == "fp16":
        trainable_in_fp32(model)
    return model, targets


def trainable_in_fp32(model) -> None:
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
