"""Property: for random dialogues, every-turn mode gives exactly one record per assistant turn,
each context holds the most recent earlier rounds in order (as many as the limits allow),
and the dialogue ledger adds up."""

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_data.multiturn import MultiturnSettings
from instruct_data.multiturn.run import to_multiturn
from instruct_data.schema import Turn
from instruct_data.templates import TEMPLATES, get_template, render_prompt

filler = st.text(alphabet="春夏秋冬山水风雨花鸟。，", max_size=30)
# A dialogue: its rounds' filler texts, and whether to break it (two user turns in a row).
dialogue = st.tuples(st.lists(st.tuples(filler, filler), min_size=1, max_size=5), st.booleans())
budget_settings = st.builds(
    MultiturnSettings, mode=st.just("every-turn"),
    max_history_turns=st.none() | st.integers(min_value=0, max_value=4),
    max_context_chars=st.none() | st.integers(min_value=30, max_value=400))


def texts(index, rounds):
    """Each turn starts with a tag (〔d3q2〕) so its place in a context can be found exactly."""
    return [(f"〔d{index}q{k}〕{q}", f"〔d{index}a{k}〕{a}") for k, (q, a) in enumerate(rounds, start=1)]


def message_row(pairs, broken):
    messages = [m for q, a in pairs for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    if broken:
        messages.insert(0, {"role": "user", "content": "多出来的问题"})
    return {"messages": messages}


def sample_length(template, pairs, start, k):
    """Characters of the record for round k (0-based) with history pairs[start:k]."""
    history = [(Turn(role="user", text=q), Turn(role="assistant", text=a)) for q, a in pairs[start:k]]
    return len(render_prompt(template, history, Turn(role="user", text=pairs[k][0]))) + len(pairs[k][1])


@settings(max_examples=60, deadline=None)
@given(st.lists(dialogue, min_size=1, max_size=6), budget_settings, st.sampled_from(sorted(TEMPLATES)))
def test_every_turn_records_hold_the_recent_history_in_order(dialogues, chosen, template_name):
    template = get_template(template_name)
    conversations = [(texts(i, rounds), broken) for i, (rounds, broken) in enumerate(dialogues)]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "random.jsonl"
        source.write_text("".join(json.dumps(message_row(p, b), ensure_ascii=False) + "\n"
                                  for p, b in conversations), encoding="utf-8")
        manifest = to_multiturn([source], Path(tmp) / "out", template=template_name, settings=chosen,
                                max_reject_rate=1.0)
        records = [json.loads(line) for line in (Path(tmp) / "out" / "train.jsonl").read_text("utf-8").splitlines()]
        rejects = [json.loads(line) for line in (Path(tmp) / "out" / "rejects.jsonl").read_text("utf-8").splitlines()]

    by_dialogue = {}
    for record in records:
        by_dialogue.setdefault(record["id"].split("#")[0], []).append(record)
    rejected = {r["id"]: r["reason"] for r in rejects}
    budget = chosen.max_context_chars
    for index, (pairs, broken) in enumerate(conversations):
        conv_id = f"random:{index + 1}"
        if broken:
            assert rejected[conv_id] == "bad_roles" and conv_id not in by_dialogue
            continue
        if budget is not None and any(sample_length(template, pairs, k, k) > budget for k in range(len(pairs))):
            assert rejected[conv_id] == "over_budget" and conv_id not in by_dialogue
            continue
        got = by_dialogue[conv_id]
        assert [r["id"] for r in got] == [f"{conv_id}#t{k}" for k in range(1, len(pairs) + 1)]  # one per reply
        for k, record in enumerate(got):
            assert record["target"] == pairs[k][1]
            context = record["context"]
            kept = [j for j in range(k) if f"〔d{index}q{j + 1}〕" in context]
            start = k - len(kept)
            assert kept == list(range(start, k))  # the most recent rounds, none skipped
            order = [context.index(f"〔d{index}{side}{j + 1}〕") for j in kept for side in "qa"]
            order.append(context.index(f"〔d{index}q{k + 1}〕"))
            assert order == sorted(order)  # earlier turns in order, the question last
            assert f"〔d{index}a{k + 1}〕" not in context
            if chosen.max_history_turns is not None:
                assert len(kept) <= chosen.max_history_turns
            if budget is not None:
                assert len(context) + len(record["target"]) <= budget
            limit = k if chosen.max_history_turns is None else min(k, chosen.max_history_turns)
            if len(kept) < limit:  # fewer rounds than allowed: only because one more would not fit
                assert budget is not None and sample_length(template, pairs, start - 1, k) > budget

    totals = manifest["counts"]["totals"]
    assert totals["read"] == len(dialogues) == totals["written"] + totals["rejected"]
    assert manifest["multiturn"]["records_written"] == len(records)
    assert sum(int(n) * c for n, c in manifest["multiturn"]["records_per_dialogue"].items()) == len(records)
