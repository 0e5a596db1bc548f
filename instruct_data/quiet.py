"""Known third-party noise, filtered once before those libraries load (train, eval, merge).

Each filter names one message that says nothing to an idata user, and why; everything else
from those libraries still shows.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings


class _DropMessages(logging.Filter):
    def __init__(self, *starts: str):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def quiet_third_party() -> None:
    # bitsandbytes (the qlora extra), at import, even without --qlora: its optional CPU kernel
    # lives in a package idata does not use ("... pip install kernels").
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
        _DropMessages("Failed to load CPU gemm_4bit_forward"))
    # DeepSpeed (the deepspeed extra), when transformers or accelerate looks for it on a machine
    # without a GPU: idata already says which device and precision it trains with.
    logging.getLogger("DeepSpeed").addFilter(
        _DropMessages("Setting accelerator to CPU", "Setting ds_accelerator to"))
    # Hugging Face's own bars ("Loading weights", "Writing model shards") in a log file are lines
    # of carriage returns; idata prints its own progress there (every 30 s).
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # peft still reads the old name of a transformers property on every LoRA model.
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
