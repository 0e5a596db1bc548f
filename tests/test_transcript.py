"""Belle `Human:`/`Assistant:` transcripts: the edge cases of the multiturn_chat release."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_data.formats.transcript import TranscriptError, looks_like_transcript, parse_transcript


def test_belle_shape_no_space_after_colon_and_a_trailing_assistant():
    text = "Human:请根据题材「健身房」写一句话。\nAssistant:汗水是最好的装饰。\nHuman:再来一句。\nAssistant:"
    assert parse_transcript(text) == [("user", "请根据题材「健身房」写一句话。"), ("assistant", "汗水是最好的装饰。"),
                                      ("user", "再来一句。"), ("assistant", "")]


@pytest.mark.parametrize("text", [
    "Human: 你好\nAssistant: 你好！\nHuman: 在吗？\nAssistant: ",  # a space after the colon
    "Human：你好\nAssistant：你好！\nHuman：在吗？\nAssistant：",  # full-width colons
    "Human ：你好\nAssistant :你好！\nHuman:在吗？\nAssistant:",  # a space before the colon
    "  \n\t Human:  你好  \n  Assistant:你好！   \nHuman:在吗？\t\nAssistant:  \n\n",  # whitespace around
    "Human:你好\r\nAssistant:你好！\r\nHuman:在吗？\r\nAssistant:",  # Windows line ends
    "human:你好\nASSISTANT:你好！\nHuman:在吗？\nAssistant:",  # any letter case
])
def test_tolerated_marker_spellings_give_the_same_turns(text):
    assert parse_transcript(text) == [("user", "你好"), ("assistant", "你好！"), ("user", "在吗？"), ("assistant", "")]


def test_markers_in_running_prose_stay_part_of_the_turn():
    text = "Human:剧本里 Human: 和 Assistant: 是什么意思？\nAssistant:Human: 指用户，Assistant：指助手。\nHuman:懂了\nAssistant:"
    assert parse_transcript(text) == [
        ("user", "剧本里 Human: 和 Assistant: 是什么意思？"), ("assistant", "Human: 指用户，Assistant：指助手。"),
        ("user", "懂了"), ("assistant", "")]


def test_multiline_turns_keep_their_inner_lines():
    text = "Human:列出两种水果。\nAssistant:1. 苹果\n2. 香蕉\nHuman:再加一种\nAssistant:"
    assert parse_transcript(text)[1] == ("assistant", "1. 苹果\n2. 香蕉")


@pytest.mark.parametrize("text, message", [
    ("Human:你好\nHuman:在吗？\nAssistant:", "turns 1 and 2 are both 'Human:'"),
    ("Human:你好\nAssistant:你好！\nAssistant:还有事吗？", "turns 2 and 3 are both 'Assistant:'"),
    ("Assistant:你好\nHuman:你好", "the first turn is 'Assistant:'"),
    ("下面是一段对话。\nHuman:你好\nAssistant:", "text before the first 'Human:' marker"),
    ("Human:你好\nAssistant:\nHuman:在吗？\nAssistant:", "turn 2 is empty"),
    ("Human:\nAssistant:你好\nHuman:在吗\nAssistant:", "turn 1 is empty"),
    ("只是一句话，没有说话人。", "no 'Human:' or 'Assistant:' marker"),
])
def test_unparseable_transcripts_raise_with_the_reason(text, message):
    with pytest.raises(TranscriptError, match=message):
        parse_transcript(text)


def test_a_quoted_line_starting_with_human_inside_a_reply_counts_as_a_marker():
    # The documented choice: a line-start marker is a marker. Here the quote breaks the
    # alternation, so the row is refused rather than split into a wrong dialogue.
    text = "Human:举一个客服对话的例子。\nAssistant:例如：\nHuman:我的快递到哪了？\nHuman:不错。\nAssistant:"
    with pytest.raises(TranscriptError, match="turns 3 and 4 are both 'Human:'"):
        parse_transcript(text)


@pytest.mark.parametrize("text, expected", [
    ("Human:你好\nAssistant:", True),
    ("  Human：你好\nAssistant：", True),
    ("下面是一段对话。\nHuman:你好\nAssistant:", True),  # stray text in front: parsed, then rejected
    ("把这句话翻译成英文：Human: hello", False),
    ("写一段对话，用 Human: 和 Assistant: 标出说话人。", False),
    ("请续写：\nHuman: 你好\nAssistant: 你好，请问有什么事？", False),  # ends with a reply, not a bare marker
])
def test_looks_like_transcript(text, expected):
    assert looks_like_transcript(text) is expected


# Turn texts with no marker-like line start: what Belle's own transcripts hold.
turn_text = st.text(alphabet="你好世界春夏秋冬一二三。，？！abc 12:：\n", min_size=1, max_size=30).filter(
    lambda s: s.strip() and not any(line.strip().lower().startswith(("human", "assistant")) for line in s.split("\n")))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(turn_text, turn_text), min_size=1, max_size=6), st.sampled_from([":", "：", ": "]))
def test_a_rendered_transcript_parses_back_to_its_turns(rounds, colon):
    text = "".join(f"Human{colon}{q}\nAssistant{colon}{a}\n" for q, a in rounds[:-1])
    text += f"Human{colon}{rounds[-1][0]}\nAssistant{colon}"
    expected = [(role, t.strip()) for q, a in rounds for role, t in (("user", q), ("assistant", a))]
    expected[-1] = ("assistant", "")
    assert parse_transcript(text) == expected
