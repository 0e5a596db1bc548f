"""LoRA fine-tuning (`idata train`). Heavy imports (torch, transformers, peft) live here only.

    from instruct_data.training import TrainConfig, train
    out_dir = train(TrainConfig(data="build/", model="Qwen/Qwen2.5-0.5B", out="runs/qwen"))
"""

from instruct_data.quiet import quiet_third_party

quiet_third_party()  # before torch, transformers and peft load

from instruct_data.training.config import TrainConfig, make_config
from instruct_data.training.runner import train

__all__ = ["TrainConfig", "make_config", "train"]
