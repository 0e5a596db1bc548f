"""LoRA fine-tuning (`idata train`). Heavy imports (torch, transformers, peft) live here only."""
