"""Dedupe as a library: exact and near duplicates in Chinese, survivors, decontamination."""

import random

import pytest

from instruct_data.dedupe import DedupeSettings, Item, exact_key, find_duplicates, normalize

# Different replies on one topic (how to study well): they share words, not text.
STUDY = [
    "提高学习效率的关键在于制定合理的计划。每天早上先列出当天要完成的三件事，按照重要程度排序，"
    "完成一件划掉一件。遇到难题时不要死磕，可以先标记下来，等状态好的时候再集中解决。",
    "学习效率和睡眠关系很大。熬夜看书看似多学了两个小时，第二天却整天昏昏沉沉，得不偿失。"
    "建议固定作息时间，午饭后小睡二十分钟，晚上十一点前上床，大脑才有精力记住新知识。",
    "想让学习更有效，可以试试费曼学习法：学完一个概念后，假装给一个完全不懂的朋友讲解。"
    "讲不清楚的地方就是自己没真正理解的地方，回头再看书，直到能用最简单的话说明白为止。",
    "手机是学习效率最大的敌人之一。每次看消息都会打断思路，重新进入专注状态要花十几分钟。"
    "学习时把手机放到另一个房间，或者打开专注模式，只在休息时间统一回复消息。",
]
OTHER = [
    "红烧肉的做法：五花肉切块后冷水下锅焯水，捞出沥干。锅里放少许油和冰糖，小火炒出糖色，"
    "再放入肉块翻炒上色，加入生抽、老抽、料酒和热水，大火烧开后转小火炖一个小时，最后大火收汁。",
    "长江是中国第一长河，全长约六千三百公里，发源于青藏高原的唐古拉山脉，流经十一个省级行政区，"
    "最后在上海注入东海。长江流域人口众多，经济发达，是中华文明的重要发源地之一。",
    "春天来了，公园里的桃花和樱花都开了，粉红色的花瓣随风飘落，像下了一场花瓣雨。"
    "孩子们在草地上放风筝，老人们坐在长椅上晒太阳，到处都是一片生机勃勃的景象。",
]


def edited(text: str, rate: float = 0.05, seed: int = 0) -> str:
    """`text` with about `rate` of its characters replaced, as in a lightly reworded copy."""
    rng = random.Random(seed)
    chars = list(text)
    for pos in rng.sample(range(len(chars)), max(1, round(len(chars) * rate))):
        chars[pos] = rng.choice("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动")
    return "".join(chars)


def corpus() -> list[Item]:
    items = [Item(f"study-{i}", "怎样才能提高学习效率？", text, order=i) for i, text in enumerate(STUDY)]
    items += [Item(f"other-{i}", f"请写一段话（{i}）。", text, order=10 + i) for i, text in enumerate(OTHER)]
    # Planted: an exact copy with cosmetic changes only, and a copy with 5% of characters edited.
    items.append(Item("exact-copy", "怎样才能提高学习效率?  ", STUDY[0].replace("，", ", "), order=20))
    items.append(Item("near-copy", "怎样才能提高学习效率？", edited(STUDY[1]), order=21))
    items.append(Item("near-copy-2", "请写一段话（1）。", edited(OTHER[1], seed=3), order=22))
    return items


def by_id(removals):
    return {r.id: r for r in removals}


def test_planted_exact_and_near_duplicates_are_found_and_nothing_else():
    removals = by_id(find_duplicates(corpus(), DedupeSettings()))
    assert set(removals) == {"exact-copy", "near-copy", "near-copy-2"}
    assert removals["exact-copy"].duplicate_of == "study-0"
    assert removals["exact-copy"].method == "exact" and removals["exact-copy"].similarity == 1.0
    assert removals["near-copy"].duplicate_of == "study-1" and removals["near-copy"].method == "near"
    assert removals["near-copy-2"].duplicate_of == "other-1"
    assert DedupeSettings().threshold <= removals["near-copy"].similarity < 1.0


def test_different_replies_on_one_topic_are_kept_under_every_key():
    items = [Item(f"s{i}", "怎样才能提高学习效率？", text, order=i) for i, text in enumerate(STUDY)]
    assert find_duplicates(items, DedupeSettings(key="reply")) == []
    assert find_duplicates(items, DedupeSettings(key="both")) == []
    # By prompt alone they are one question asked four times: the first is kept.
    removals = find_duplicates(items, DedupeSettings(key="prompt"))
    assert {r.id for r in removals} == {"s1", "s2", "s3"} and {r.duplicate_of for r in removals} == {"s0"}


def test_key_reply_finds_one_answer_under_different_instructions():
    items = [Item("a", "介绍一下长江。", OTHER[1], order=0), Item("b", "长江有多长？发源于哪里？", OTHER[1], order=1)]
    assert [r.id for r in find_duplicates(items, DedupeSettings(key="reply"))] == ["b"]
    assert find_duplicates(items, DedupeSettings(key="prompt")) == []


def test_exact_key_ignores_width_case_spacing_and_punctuation_but_not_words():
    settings = DedupeSettings()
    assert exact_key("ＧＰＵ显存不够怎么办？", settings) == exact_key("gpu 显存不够怎么办?", settings)
    assert exact_key("好的，谢谢！", settings) == exact_key("好的 谢谢", settings)
    assert exact_key("好的，谢谢！", settings) != exact_key("好的，再见！", settings)
    # Traditional and Simplified match only when asked.
    assert exact_key("學習效率", settings) != exact_key("学习效率", settings)
    t2s = DedupeSettings(traditional_to_simplified=True)
    assert exact_key("學習效率", t2s) == exact_key("学习效率", t2s)
    assert normalize("！！！") == "!!!"  # nothing but punctuation: NFKC, spaces gone, still a key of its own


def test_the_fast_punctuation_strip_drops_exactly_what_the_regex_drops():
    from instruct_data.dedupe.keys import _NOT_WORD, strip_non_word

    rng = random.Random(0)
    for start in range(0, 0x110000, 1000):  # every code point, in order and shuffled
        text = "".join(chr(c) for c in range(start, min(start + 1000, 0x110000)) if not 0xD800 <= c < 0xE000)
        for sample in (text, "".join(rng.sample(text, len(text))) + "_好_"):
            assert strip_non_word(sample) == _NOT_WORD.sub("", sample)


@pytest.mark.parametrize("policy", ["first", "longest-reply"])
def test_survivor_is_the_same_when_shuffled_or_split_over_workers(policy):
    items = corpus()
    # One more copy of STUDY[0], longer, so the policies disagree on the survivor.
    items.append(Item("longer-copy", "怎样才能提高学习效率？", STUDY[0] + "只要坚持下去，就一定能看到进步。", order=30))
    settings = DedupeSettings(policy=policy)
    expected = find_duplicates(items, settings)
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)  # `order` travels with each item, as a caller gives it
    assert find_duplicates(shuffled, settings) == expected
    # Several workers with tiny batches: the work is split in many ways.
    from instruct_data.dedupe import fingerprint as fp

    original = fp.BATCH
    try:
        fp.BATCH = 2
        assert find_duplicates(shuffled, settings, workers=2) == expected
    finally:
        fp.BATCH = original
    kept = {i.id for i in items} - {r.id for r in expected}
    if policy == "first":
        assert "study-0" in kept and "longer-copy" not in kept
    else:
        assert "longer-copy" in kept and "study-0" not in kept


def test_ties_are_broken_by_content_not_by_input_order():
    a = Item("x-1", "问题", STUDY[0])
    b = Item("x-2", "问题", STUDY[0] + "。")  # same key, different stored text
    first = find_duplicates([a, b], DedupeSettings())
    assert find_duplicates([b, a], DedupeSettings()) == first
    assert len(first) == 1


def test_rephrased_benchmark_question_is_removed_as_contamination():
    question = "请根据下面的材料回答：长江发源于哪里，全长大约多少公里，最后在哪里注入大海？"
    rephrased = "请根据下面的材料回答：长江发源于哪里，全长约多少公里，最终在哪里注入大海呢？"
    items = [Item("leak", rephrased, "发源于唐古拉山脉，全长约六千三百公里，在上海注入东海。"),
             Item("exact-leak", question.replace("，", ","), "答案"),
             Item("fine", "长江流域有哪些重要的城市？", "上海、南京、武汉、重庆等。")]
    removals = by_id(find_duplicates(items, DedupeSettings(), against=[question]))
    assert set(removals) == {"leak", "exact-leak"}
    assert all(r.method == "contamination" and r.duplicate_of == "against:1" for r in removals.values())
    assert removals["exact-leak"].similarity == 1.0
    assert DedupeSettings().threshold <= removals["leak"].similarity < 1.0


def test_protected_items_stay_and_their_training_copies_go_as_contamination():
    held = Item("heldout-1", "怎样才能提高学习效率？", STUDY[2], order=50, protected=True)
    held_twin = Item("heldout-2", "怎样才能提高学习效率？", STUDY[2], order=51, protected=True)
    train = [Item("train-1", "怎样才能提高学习效率？", STUDY[2], order=0),
             Item("train-2", "怎样才能提高学习效率？", edited(STUDY[2], seed=5), order=1),
             Item("train-3", "怎样才能提高学习效率？", STUDY[3], order=2)]
    removals = by_id(find_duplicates(train + [held, held_twin], DedupeSettings()))
    assert set(removals) == {"train-1", "train-2"}
    assert {r.method for r in removals.values()} == {"contamination"}
    assert removals["train-1"].duplicate_of == "heldout-1"


@pytest.mark.parametrize("key", ["prompt", "reply", "both"])
@pytest.mark.parametrize("policy", ["first", "longest-reply"])
def test_exact_keys_computed_apart_decide_as_find_duplicates_does(key, policy):
    """A build computes exact keys in its workers and decides in one place: same removals."""
    from instruct_data.dedupe import ExactKeys, decide, exact_batch, exact_keys

    question = "长江发源于哪里？"
    held = [Item("held-1", "怎样才能提高学习效率？", STUDY[2], order=40, protected=True),
            Item("held-2", "介绍一下长江。", OTHER[1], order=41, protected=True)]
    items = corpus() + held + [Item("leak", "长江发源于哪里?", "唐古拉山脉。", order=42),
                               Item("train-twin", "怎样才能提高学习效率？", STUDY[2], order=43),
                               Item("same-reply", "长江有多长？", OTHER[1], order=44)]
    random.Random(2).shuffle(items)
    settings = DedupeSettings(key=key, policy=policy, near=False)
    expected = find_duplicates(items, settings, against=[question, *held])
    assert {"leak", "train-twin"} <= {r.id for r in expected}  # the test covers contamination and exact
    halves = [items[:5], items[5:]]  # as two workers' chunks
    keys = ExactKeys.join([exact_keys([i.prompt for i in part], [i.reply for i in part], settings) for part in halves])
    order = [i.order for i in items]
    protected = [i.protected for i in items]
    rows = [n for n, i in enumerate(items) if i.protected]
    question_keys = [exact_key(question, settings)] + [keys.prompt[n].tobytes() for n in rows]
    questions = [("against:1", question)] + [(items[n].id, items[n].prompt) for n in rows]
    batch = exact_batch(keys, [i.id for i in items], order, protected, question_keys, settings)
    found = decide([batch], settings, questions)
    assert sorted(found.values(), key=lambda r: r.id) == expected
    assert all(items[n].id == r.id for n, r in found.items())


def test_rows_too_short_to_shingle_are_still_compared_exactly():
    items = [Item("a", "好", "嗯", 0), Item("b", "好！", "嗯。", 1), Item("c", "好", "不", 2), Item("d", "？", "？", 3)]
    settings = DedupeSettings(key="reply", ngram=3)
    removals = find_duplicates(items, settings)
    assert [(r.id, r.duplicate_of, r.method) for r in removals] == [("b", "a", "exact")]
    # And with near off altogether, exact still works.
    assert [r.id for r in find_duplicates(items, DedupeSettings(key="reply", near=False))] == ["b"]


def test_settings_reject_unknown_keys_and_bad_banding():
    with pytest.raises(ValueError):
        DedupeSettings(thresold=0.5)
    with pytest.raises(ValueError):
        DedupeSettings(num_perm=100, bands=32)


def test_lsh_buckets_give_every_pair_when_small_and_a_chain_when_large():
    import numpy as np

    from instruct_data.dedupe.near import candidate_pairs

    keys = np.array([[1], [1], [1], [2], [3], [3], [3], [3], [4]], dtype=np.uint64)
    pairs = sorted(map(tuple, candidate_pairs(keys, np.arange(9)).tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 2), (4, 5), (4, 6), (4, 7), (5, 6), (5, 7), (6, 7)]
    big = np.zeros((100, 1), dtype=np.uint64)  # one bucket of 100: each against the best and its neighbour
    rank = np.arange(100)[::-1].copy()  # item 99 ranks best
    pairs = set(map(tuple, candidate_pairs(big, rank).tolist()))
    assert all((i, 99) in pairs for i in range(99)) and (97, 98) in pairs and len(pairs) < 200
