"""render()'s one-round path (a single question and reply, a built-in template) gives the
context and target the general path gives: the history-free render_prompt and the reply's
text. train.jsonl must not change by a byte."""

from __future__ import annotations

import random

from instruct_data.formats.plainrow import PlainConversation, PlainTurn
from instruct_data.schema import Conversation, Origin, Turn
from instruct_data.templates import TEMPLATES, render, render_prompt, rounds, training_record

TEXTS = ["你好", "", " ", "{text}", "{}", "Input: x", "\n", "回答：", "a\nb"]


def _general(conversation, template, system=None):
    *history, (question, answer) = rounds(conversation)
    return render_prompt(template, history, question, system or conversation.system), answer.text


def test_one_round_renders_as_the_general_path():
    rng = random.Random(0)
    for n in range(600):
        question = "".join(rng.choice(TEXTS) for _ in range(3)).strip() or "q"
        extra = rng.choice([None, "补充", "{input}"])
        reply = rng.choice(TEXTS).strip() or "a"
        system = rng.choice([None, "你是助手", ""])
        override = rng.choice([None, "系统", ""])
        if n % 2:
            conversation = PlainConversation(f"s:{n}", None, "s", [PlainTurn("user", question, extra),
                                                                  PlainTurn("assistant", reply)], None, Origin(file="f", line=n))
            conversation.system = system or None
        else:
            conversation = Conversation(id=f"s:{n}", source="s", system=system,
                                        turns=[Turn(role="user", text=question, input=extra), Turn(role="assistant", text=reply)])
        for template in TEMPLATES.values():
            assert render(conversation, template, system=override) == _general(conversation, template, override)
            assert training_record(conversation, template.name, override)["context"] == \
                _general(conversation, template, override)[0]


def test_a_held_out_dialogue_takes_its_last_record_as_training_record_renders_it():
    """pipeline.worker._held_records reuses multiturn.expand's last record for a dialogue's
    held-out line: the same dict (keys, order, texts) as templates.training_record, but the id."""
    from instruct_data.multiturn import expand
    from instruct_data.multiturn.expansion import MultiturnSettings
    from instruct_data.pipeline.worker import WorkerState, _held_records

    rng = random.Random(1)
    for n in range(300):
        turns = []
        for _ in range(rng.randint(2, 4)):
            turns += [Turn(role="user", text=rng.choice(TEXTS).strip() or "q", input=rng.choice([None, "补充"])),
                      Turn(role="assistant", text=rng.choice(TEXTS).strip() or "a")]
        conversation = Conversation(id=f"s:{n}", source="s", system=rng.choice([None, "你是助手"]), turns=turns,
                                    category=rng.choice([None, "闲聊"]))
        for template in TEMPLATES.values():
            for mode in ("every-turn", "last-turn"):
                settings = MultiturnSettings(mode=mode)
                system = rng.choice([None, "系统"])
                state = WorkerState(cleaner=None, template=template, multiturn=settings, system=system, seed=0,
                                    spool="", sources=["s"])
                records = expand(conversation, template, settings, system=system)
                held = _held_records(conversation, records, state)
                assert held == [training_record(conversation, template, system)]
                assert list(held[0]) == list(training_record(conversation, template, system))
