"""idata: Chinese instruction data, from raw files to a tuned and evaluated LoRA adapter."""

__version__ = "0.1.0"
