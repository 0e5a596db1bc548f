"""Dedupe's decision as steps over partitions (instruct_data.steps.dedupe): however the items
are partitioned, the removals are the same, so both executors give the same answer."""

import random

import numpy as np
import pytest

from instruct_data.dedupe import DedupeSettings, Item, find_duplicate_positions
from instruct_data.dedupe import find
from instruct_data.dedupe.fingerprint import fingerprint
from instruct_data.dedupe.select import ranks
from instruct_data.steps import dedupe as steps
from tests.test_dedupe import OTHER, STUDY, edited


def near_corpus(n: int = 240, seed: int = 5) -> list[Item]:
    """Exact and near copies, records of one dialogue, protected (held-out) items."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        base = STUDY[i % len(STUDY)] + OTHER[(i // 3) % len(OTHER)]
        text = base if i % 7 == 0 else edited(base, seed=rng.randrange(40))
        items.append(Item(f"r{i}", "问题" + str(i % 4), text, order=i, protected=i % 31 == 0,
                          dialogue=f"d{i // 2}" if i % 5 == 0 else ""))
    return items


@pytest.mark.parametrize("policy", ["first", "longest-reply"])
@pytest.mark.parametrize("partition_rows", [9, 64])
def test_a_decision_over_hash_partitions_on_disk_is_the_one_in_memory(tmp_path, monkeypatch, policy,
                                                                       partition_rows):
    items = near_corpus()
    config = DedupeSettings(policy=policy)
    against = [items[3].prompt + items[3].reply[:20]]
    expected = find_duplicate_positions(items, config, against=against)
    assert {r.method for r in expected.values()} == {"exact", "near", "contamination"}
    monkeypatch.setattr(find, "PARTITION_ROWS", partition_rows)  # many partitions: a big build's case
    folder = tmp_path / "fp"
    assert find_duplicate_positions(items, config, against=against, spill=str(folder)) == expected
    assert not folder.exists()  # partitions and fingerprints removed once decided


def _fingerprints(items, config):
    batch = fingerprint(items, config)
    rank = ranks(config.policy, protected=batch.protected, order=batch.order, reply_len=batch.reply_len,
                 content=batch.content, ids=batch.ids)
    return batch, rank


def _split(n: int, parts: int, key: np.ndarray) -> list[np.ndarray]:
    """Rows of each hash partition of `key` (every row of a key in one partition)."""
    part = steps.partition_of(key, parts)
    return [np.flatnonzero(part == p) for p in range(parts)]


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_exact_partitions_remove_what_the_whole_removes(parts):
    items = near_corpus()
    config = DedupeSettings()
    batch, rank = _fingerprints(items, config)
    whole = steps.exact_partition(batch.exact, rank, batch.dialogue, batch.protected)
    found = set()
    for rows in _split(len(items), parts, batch.exact[:, 0]):
        # The partition ranks its own rows (as Ray does): only their order matters.
        local_rank = np.argsort(np.argsort(rank[rows]))
        removed, kept, method = steps.exact_partition(batch.exact[rows], local_rank, batch.dialogue[rows],
                                                      batch.protected[rows])
        found |= set(zip(rows[removed].tolist(), rows[kept].tolist(), method.tolist()))
    assert found == set(zip(*(column.tolist() for column in whole)))
    assert found and not any(batch.protected[r] for r, _, _ in found)  # a held-out item is never removed


@pytest.mark.parametrize("parts", [1, 3, 8])
def test_band_buckets_in_any_partitions_give_the_same_candidate_pairs(parts):
    items = near_corpus()
    config = DedupeSettings()
    batch, rank = _fingerprints(items, config)
    n, bands = batch.bands.shape
    band = np.repeat(np.arange(bands), n)  # entries band by band
    key = batch.bands.T.reshape(-1)
    item = np.tile(np.arange(n), bands)
    whole = {tuple(p) for p in item[steps.band_pairs(band, key, rank[item], batch.dialogue[item])].tolist()}
    found = set()
    for rows in _split(len(key), parts, key):
        pairs = steps.band_pairs(band[rows], key[rows], rank[item[rows]], batch.dialogue[item[rows]])
        found |= {tuple(sorted(p)) for p in item[rows][pairs].tolist()}
    assert found == whole and whole
    assert all(batch.dialogue[a] != batch.dialogue[b] for a, b in found)  # one dialogue's records never meet


def test_resolving_components_apart_gives_what_resolving_all_gives():
    items = near_corpus()
    config = DedupeSettings()
    batch, rank = _fingerprints(items, config)
    pairs = find._candidate_pairs(batch.bands, np.arange(len(items)), rank, batch.dialogue)
    pairs, sims = steps.check_pairs(batch.sig, pairs, config.threshold)
    whole = steps.resolve(pairs, sims, rank, batch.protected)
    # Connected components by a plain union-find, resolved one by one.
    root = list(range(len(items)))

    def find_root(i):
        while root[i] != i:
            i = root[i]
        return i
    for a, b in pairs.tolist():
        root[find_root(a)] = find_root(b)
    component = np.array([find_root(a) for a in pairs[:, 0].tolist()])
    found, clusters = set(), {}
    for c in np.unique(component).tolist():
        mine = pairs[component == c]
        nodes = np.unique(mine)
        part = steps.resolve(np.searchsorted(nodes, mine), sims[component == c], rank[nodes],
                             batch.protected[nodes])
        found |= set(zip(nodes[part.removed].tolist(), nodes[part.kept].tolist()))
        clusters.update(zip(nodes.tolist(), nodes[part.cluster_of(np.arange(len(nodes)))].tolist()))
    assert found == set(zip(whole.removed.tolist(), whole.kept.tolist())) and found
    assert clusters == {i: int(whole.cluster_of(np.array([i]))[0]) for i in clusters}
    # A cluster is named after its best-ranked member.
    assert all(rank[clusters[i]] <= rank[i] for i in clusters)


def test_an_exact_copy_takes_its_survivors_near_cluster():
    node, cluster = np.array([2, 5, 9]), np.array([2, 2, 9])
    assert steps.survivor_clusters(np.array([5, 4, 9, 2]), node, cluster).tolist() == [2, 4, 9, 2]
    names = steps.survivor_clusters(np.array([5, 4]), node, np.array(["a", "a", "c"], dtype=object),
                                    own=np.array(["x", "y"], dtype=object))
    assert names.tolist() == ["a", "y"]


def test_item_removals_answer_as_the_dict_does():
    items = near_corpus()
    config = DedupeSettings()
    batch = fingerprint(items, config)
    table = find._decide(batch, config)
    ids = [item.id for item in items]
    as_dict = table.as_dict(ids, [])
    lookup = steps.ItemRemovals(table, ids, [])
    assert [lookup.get(i) for i in range(len(items))] == [as_dict.get(i) for i in range(len(items))]
    assert lookup.clusters == len({r.cluster for r in as_dict.values()})
