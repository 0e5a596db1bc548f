"""A tiny local model folder for tests and the offline demo, with no download.

`make_tiny_model(out_dir, arch="llama")` writes a normal model folder (config, safetensors
weights, tokenizer files, generation config) that `AutoModelForCausalLM.from_pretrained`
and `AutoTokenizer.from_pretrained` load exactly as they would a real model: a byte-level
BPE tokenizer trained on the given text with the `tokenizers` library, and a randomly
initialised small model of the Llama, Qwen2 or GPT-2 architecture.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

ARCHITECTURES = ("llama", "qwen2", "gpt2")
SPECIAL_TOKENS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}
# Enough Chinese and template text that the tokenizer learns pieces for both.
DEFAULT_TEXT = [
    "Instruction: 把下面的句子翻译成英文。\nInput: 今天天气很好。\nAnswer: The weather is nice today.",
    "Instruction: 用一句话解释什么是光合作用。\nAnswer: 光合作用是植物利用光能制造有机物并释放氧气的过程。",
    "[Round 1]\n问：你好\n答：你好！有什么可以帮你的吗？",
    "Human: \n给我讲一个笑话。\n\nAssistant: \n从前有一只小猫，它每天都在学习数学。",
    "<|im_start|>user\n北京是哪个国家的首都？<|im_end|>\n<|im_start|>assistant\n北京是中国的首都。<|im_end|>",
    "春天来了，花儿开了，小鸟在树上唱歌。我们一起去公园散步吧。",
    "请写一首关于秋天的诗。秋风吹落叶，明月照山川。",
    "1. 每天固定时间上床和起床。2. 睡前少看手机。3. 下午少喝咖啡。",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 800):
    """A byte-level BPE fast tokenizer trained on `texts`, with <s>, </s>, <pad>, <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=SPECIAL_TOKENS["bos"],
        eos_token=SPECIAL_TOKENS["eos"],
        pad_token=SPECIAL_TOKENS["pad"],
        unk_token=SPECIAL_TOKENS["unk"],
    )


def tiny_config(arch: str, vocab_size: int, *, bos_id: int, eos_id: int, pad_id: int,
                hidden: int = 64, layers: int = 2, heads: int = 4, max_positions: int = 1024,
                init_std: float | None = None):
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    ids = dict(bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    if init_std is not None:
        ids["initializer_range"] = init_std
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_embd=hidden, n_layer=layers, n_head=heads,
                          n_positions=max_positions, **ids)
    common = dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
                  num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                  max_position_embeddings=max_positions, tie_word_embeddings=False, **ids)
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")


def make_tiny_model(out_dir: str | Path, arch: str = "llama", texts: Iterable[str] | None = None, *,
                    seed: int = 0, vocab_size: int = 800, hidden: int = 64, layers: int = 2,
                    init_std: float | None = None, chat_template: str | None = None,
                    extra_special_tokens: list[str] | None = None) -> Path:
    """Write a tiny model folder to `out_dir` and return its path.

    `init_std` overrides the architecture's initializer range: with the default 0.02 a model
    this small has logits too flat for a LoRA adapter to move far in a few steps (the demo
    uses a larger one so that its loss curve visibly falls). `chat_template` and
    `extra_special_tokens` (`<|im_start|>`, `<|im_end|>`) make it a chat model.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(list(texts) if texts is not None else DEFAULT_TEXT, vocab_size=vocab_size)
    if extra_special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(extra_special_tokens)})
    if chat_template:
        tokenizer.chat_template = chat_template
    config = tiny_config(arch, len(tokenizer), bos_id=tokenizer.bos_token_id, eos_id=tokenizer.eos_token_id,
                         pad_id=tokenizer.pad_token_id, hidden=hidden, layers=layers, init_std=init_std)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
