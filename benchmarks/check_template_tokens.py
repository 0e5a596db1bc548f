"""Do the ids `idata train` makes equal the model's own `apply_chat_template` ids, on real rows?

Not a speed benchmark: a check of issue 24 items 1-2 on the public files in ../shared/data, with
the real chat templates in tests/fixtures/templates and a byte-level BPE trained here on the
rendered rows with Qwen2's pre-tokenizer (the real vocabularies are not reachable offline).
For each row it compares three id lists with `apply_chat_template(messages, tools=…)`:

- idata: `training_examples` + the Encoder (one string per example);
- apart: the same text with the prompt and the final reply tokenized apart (idata before
  issue 24), to show what the one-string rule changes;

and counts the dialogues the template trains one example per reply.

    python benchmarks/check_template_tokens.py                # school maths (raw) + glaive tools
    python benchmarks/check_template_tokens.py --rows 200 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SHARED = ROOT.parent / "shared" / "data"


def school_maths(rows: int) -> list:
    """Raw rows (no build: their whitespace as published), as conversations."""
    from instruct_data.schema import Conversation

    found = []
    with open(SHARED / "belle_school_math_dev1K.jsonl", encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if len(found) == rows:
                break
            row = json.loads(line)
            user = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
            if not user.strip() or not row["output"].strip():
                continue
            found.append(Conversation.model_validate({"id": f"m:{index}", "source": "m", "turns": [
                {"role": "user", "text": user}, {"role": "assistant", "text": row["output"]}]}))
    return found


def glaive(rows: int) -> list:
    """glaive_toolcall_zh_demo read by idata's own reader (tools, calls, results)."""
    from instruct_data.formats import read_conversations
    from instruct_data.table import Reject

    _, stream = read_conversations(str(SHARED / "glaive_toolcall_zh_demo.json"), source="glaive")
    return [c for _, c in stream if not isinstance(c, Reject)][:rows]


def messages_of(conversation) -> list[dict]:
    """The dialogue as OpenAI messages, written out here (not through idata's renderer)."""
    found = [{"role": "system", "content": conversation.system}] if conversation.system else []
    for turn in conversation.turns:
        if turn.role == "tool":
            found.append({"role": "tool", "content": turn.text})
            continue
        message = {"role": turn.role, "content": turn.full_text}
        if turn.tool_calls:
            message["tool_calls"] = [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                     for c in turn.tool_calls]
        if turn.reasoning:
            message["reasoning_content"] = turn.reasoning
        found.append(message)
    return found


def check(name: str, conversations: list, family: str) -> dict:
    from test_chat_templates import FAMILIES

    from instruct_data.templates import NativeTemplate, prompt_layout, training_examples
    from instruct_data.tool_format import openai_tool
    from instruct_data.training.tokenize import IGNORE, Encoder, resolve_eos

    spec = FAMILIES[family]
    tok = tokenizer_for(spec, conversations)
    template = NativeTemplate.from_tokenizer(tok)
    eos = resolve_eos(tok, tok.eos_token_id, template)
    encoder = Encoder(tok, eos, 100_000, "truncate", layout=prompt_layout(template), native=True)
    counts = {"rows": 0, "examples": 0, "per_reply_rows": 0, "refused": 0, "idata_equal": 0, "apart_equal": 0}
    for conversation in conversations:
        tools = [openai_tool(t) for t in conversation.tools] if conversation.tools else None
        try:
            examples = training_examples(conversation, template)
        except ValueError:
            counts["refused"] += 1
            continue
        counts["rows"] += 1
        counts["examples"] += len(examples)
        counts["per_reply_rows"] += len(examples) > 1
        messages = messages_of(conversation)
        ends = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        if len(examples) == 1:
            ends = ends[-1:]
        equal = apart = True
        for example, end in zip(examples, ends):
            expected = tok.apply_chat_template(messages[:end + 1], tools=tools, tokenize=True, return_dict=False)
            out = encoder({"texts": [[t for t, _ in example]], "supervised": [[s for _, s in example]]})
            ids = out["input_ids"][0]
            ids = ids if ids[-1] != eos.id or expected[-1] == eos.id else ids[:-1]
            equal &= ids == expected
            prompt = "".join(t for t, _ in example[:-1])
            split = tok(prompt, add_special_tokens=False)["input_ids"] + \
                tok(example[-1][0], add_special_tokens=False)["input_ids"]
            apart &= split == expected
            assert IGNORE in out["labels"][0]
        counts["idata_equal"] += equal
        counts["apart_equal"] += apart
    return {"data": name, "template": family, **counts}


def tokenizer_for(spec: dict, conversations: list):
    """The template test's tiny tokenizer recipe, trained on these rows as the template renders them."""
    from test_chat_templates import family_tokenizer

    return family_tokenizer(spec, [(messages_of(c), None) for c in conversations[:300]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} is not here: this check reads the real public files")
    results = [check("school maths (raw)", school_maths(args.rows), family) for family in ("qwen2.5", "llama3.1")]
    tools = glaive(args.rows)
    results += [check("glaive tools", tools, family) for family in ("qwen2.5", "qwen3", "llama3.1")]
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=1))
        return
    for r in results:
        print(f"{r['data']:>20} {r['template']:>9}: {r['rows']} rows -> {r['examples']} examples "
              f"({r['per_reply_rows']} one per reply, {r['refused']} refused); ids equal to apply_chat_template: "
              f"idata {r['idata_equal']}/{r['rows']}, prompt and reply apart {r['apart_equal']}/{r['rows']}")


if __name__ == "__main__":
    main()
