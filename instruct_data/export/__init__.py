"""`idata export`: a build folder in the formats the ecosystem opens, plain text, no template.

    llama-factory   dataset_info.json + alpaca (single-turn) and sharegpt (dialogues, tools) files
    hf              a Hugging Face dataset: parquet splits, `messages`, and a dataset card README.md
    openai          OpenAI-style `messages` JSON lines (with `tools`): what TRL's SFTTrainer reads

Every export starts from the build's canonical records (`build.read_build`): the training
conversations of `conversations.jsonl` and the held-out ones, never from the rendered
`context`/`target` text, so no template is baked in.
"""

from instruct_data.export.build import BuildData, read_build
from instruct_data.export.run import TARGETS, export

__all__ = ["BuildData", "TARGETS", "export", "read_build"]
