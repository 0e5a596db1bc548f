"""A Hugging Face dataset folder: parquet splits under data/, a dataset card, the build's manifest.

`datasets.load_dataset(FOLDER)` reads it through the card's `configs` (one split per file
pattern). Every message has the same fields, null where a message has none, so the column has
one Arrow type across rows and splits; tool-call arguments and the tool list are JSON strings,
since their keys differ from tool to tool.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from instruct_data.export.build import BuildData
from instruct_data.export.card import dataset_card
from instruct_data.export.messages import openai_messages, openai_tools
from instruct_data.io import file_sha256
from instruct_data.schema import Conversation


def _schema():
    import pyarrow as pa

    call = pa.struct([("id", pa.string()), ("type", pa.string()),
                      ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
    message = pa.struct([("role", pa.string()), ("content", pa.string()), ("reasoning_content", pa.string()),
                         ("tool_calls", pa.list_(call)), ("tool_call_id", pa.string()), ("name", pa.string()),
                         ("weight", pa.int8())])
    return pa.schema([("id", pa.string()), ("source", pa.string()), ("category", pa.string()),
                      ("messages", pa.list_(message)), ("tools", pa.string())])


MESSAGE_FIELDS = ("role", "content", "reasoning_content", "tool_calls", "tool_call_id", "name", "weight")


def hf_row(conversation: Conversation) -> dict[str, Any]:
    messages = [{key: message.get(key) for key in MESSAGE_FIELDS} for message in openai_messages(conversation)]
    tools = openai_tools(conversation)
    return {"id": conversation.id, "source": conversation.source, "category": conversation.category,
            "messages": messages, "tools": json.dumps(tools, ensure_ascii=False) if tools else None}


def write_hf(data: BuildData, work: Path, name: str, license_id: str | None) -> dict[str, int]:
    """Parquet splits, README.md (the card) and idata_manifest.json into `work`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (work / "data").mkdir()
    sizes, files = {}, {}
    for split, conversations in data.splits.items():
        table = pa.Table.from_pylist([hf_row(c) for c in conversations], schema=_schema())
        sizes[split] = table.num_rows
        if not table.num_rows:  # `datasets` cannot load a parquet file of no rows: the split is left out
            continue
        staged = work / "data" / f"{split}.parquet"
        pq.write_table(table, staged)
        # The content's hash in the name: `datasets` caches a local folder under a key made from the
        # card's data_files, not their content, so a re-export under a fixed name loads stale rows.
        files[split] = f"data/{split}-{file_sha256(staged)[:12]}.parquet"
        staged.rename(work / files[split])
    (work / "README.md").write_text(dataset_card(data, name, license_id, sizes, files), encoding="utf-8")
    shutil.copyfile(data.folder / "manifest.json", work / "idata_manifest.json")
    return sizes


def push_to_hub(folder: Path, repo: str, private: bool) -> str:
    """Upload the exported folder as it is (card included) to a dataset repo on the hub."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="dataset",
                      commit_message="idata export --to hf")
    return f"https://huggingface.co/datasets/{repo}"
