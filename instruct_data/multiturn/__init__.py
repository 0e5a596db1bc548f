"""Multi-turn training data from dialogues: expansion modes, a history budget, and dialogues
assembled from single-turn rows.

Library use (what `idata build` calls for dialogue sources):

    from instruct_data.multiturn import MultiturnSettings, expand
    records = expand(conversation, "seed", MultiturnSettings(mode="every-turn", max_context_chars=2048))
    # a list of train.jsonl records, or a Reject (stage "multiturn") for rejects.jsonl

The `idata to-multiturn` command is `run.to_multiturn`.
"""

from instruct_data.multiturn.expansion import OVER_BUDGET, MultiturnSettings, expand, length_function, load_tokenizer

__all__ = ["OVER_BUDGET", "MultiturnSettings", "expand", "length_function", "load_tokenizer"]
