"""LoRA fine-tuning (`idata train`). Heavy imports (torch, transformers, peft) live here only.

    from instruct_data.training import TrainConfig, train
    out_dir = train(TrainConfig(data="build/", model="Qwen/Qwen2.5-0.5B", out="runs/qwen"))
"""

from instruct_data.training.config import TrainConfig, make_config
from instruct_data.training.runner import train

__all__ = ["TrainConfig", "make_config", "train"]
