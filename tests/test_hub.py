"""Belle subsets through the real `datasets` streaming path, on local copies in the hub's layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from instruct_data import hub
from instruct_data.cli import cli
from instruct_data.errors import InputError

BELLE = Path(__file__).parent / "fixtures" / "belle"
CATEGORIES = BELLE / "BELLE-2" / "train_3.5M_CN_With_Category" / "train_3.5M_CN_id2category.json"


def run_build(*args):
    result = CliRunner().invoke(cli, ["build", *args], catch_exceptions=False, standalone_mode=False)
    return result


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_tests_cannot_reach_the_hub():
    assert os.environ.get("HF_DATASETS_OFFLINE") == "1"


@pytest.mark.parametrize("subset", ["0.5M", "1M", "2M", "3.5M", "multiturn", "math", "chat"])
def test_build_belle_from_a_local_copy(subset, tmp_path):
    out = tmp_path / "out"
    run_build("belle", "--subset", subset, "--from", str(BELLE), "--out", str(out), "--workers", "1")
    m = manifest(out)
    info = hub.SUBSETS[subset]
    rows = (BELLE / info.dataset / info.file).read_text(encoding="utf-8").count("\n")
    totals = m["counts"]["totals"]
    assert totals["read"] == rows
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
    assert m["inputs"][0]["dataset"] == info.dataset and m["inputs"][0]["file"] == info.file
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert train and all(r["context"].startswith("Instruction: ") and r["target"] for r in train)
    assert {r["source"] for r in train} == {f"belle-{subset}"}


def test_multiturn_transcripts_give_one_record_per_reply(tmp_path):
    out = tmp_path / "out"
    run_build("belle", "--subset", "multiturn", "--from", str(BELLE), "--out", str(out), "--workers", "1")
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    first = [r for r in train if r["id"].startswith("belle-multiturn:1#")]
    assert [r["id"] for r in first] == ["belle-multiturn:1#t1", "belle-multiturn:1#t2"]
    assert first[1]["context"] == ("Instruction: 请根据题材「健身房」，写一篇短文的开头。\nAnswer: 清晨六点，健身房里已经有人在跑步机上挥汗如雨。\n"
                                   "Instruction: 请从上文摘取一个句子进行打分。\nAnswer: ")
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    # a local copy is read like any file: its rejects name the file and line
    assert [(r["stage"], r["reason"], r["origin"]) for r in rejects] == [
        ("read", "bad_transcript", str(BELLE / "BelleGroup" / "multiturn_chat_0.8M" / "multiturn_chat_0.8M.json") + ":4")]


def test_3_5m_conversations_keep_their_own_ids_and_reject_a_dialogue_without_reply(tmp_path):
    out = tmp_path / "out"
    run_build("belle", "--subset", "3.5M", "--from", str(BELLE), "--out", str(out), "--workers", "1")
    conversations = [json.loads(line) for line in (out / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "77772" in {c.get("own_id") for c in conversations}
    rejects = map(json.loads, (out / "rejects.jsonl").read_text(encoding="utf-8").splitlines())
    reasons = {(r["raw"]["id"], r["reason"]) for r in rejects}
    assert ("77775", "bad_roles") in reasons
    # 77776's reply is AI boilerplate: kept, since ai_identity is off by default (0.91 on the test split)
    assert "77776" in {c.get("own_id") for c in conversations}


def test_3_5m_rows_take_their_categories_from_belle_2s_file_in_the_local_copy(tmp_path):
    """train_3.5M_CN has no category; BELLE-2 publishes them apart (id -> category). Found in the
    --from folder, joined by each row's own id; a row it does not name keeps none."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "belle", "--subset", "3.5M", "--from", str(BELLE), "--out", str(out),
                                      "--workers", "1", "--heldout", "0"])
    assert result.exit_code == 0, result.output
    conversations = [json.loads(line) for line in (out / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {c["own_id"]: c.get("category") for c in conversations} == {
        "77771": "generation", "77772": "brainstorming", "77773": "open qa", "77774": "open qa", "77776": None}
    train = [json.loads(line) for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r.get("category") for r in train if r["id"].startswith("belle-3.5M:2#")} == {"brainstorming"}
    [entry] = [i for i in manifest(out)["inputs"] if i.get("role") == "categories"]
    assert entry["path"].endswith("train_3.5M_CN_id2category.json") and entry["ids"] == 5
    assert "categories of belle-3.5M from" in " ".join(result.output.split())

    bare = tmp_path / "copy" / "BelleGroup" / "train_3.5M_CN"  # a copy without the categories file
    bare.mkdir(parents=True)
    (bare / "train_3.5M_CN.json").write_bytes((BELLE / "BelleGroup" / "train_3.5M_CN" / "train_3.5M_CN.json").read_bytes())
    result = CliRunner().invoke(cli, ["build", "belle", "--subset", "3.5M", "--from", str(tmp_path / "copy"),
                                      "--out", str(tmp_path / "bare"), "--workers", "1", "--heldout", "0"])
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and "have no categories" in said and "--categories train_3.5M_CN_id2category.json" in said


def test_a_categories_file_for_your_own_rows_and_its_errors(tmp_path):
    rows = tmp_path / "mine.jsonl"
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [
        {"id": 7, "instruction": "写一首关于秋天的短诗。", "output": "秋风起，落叶黄，雁南飞。"},
        {"id": "8", "instruction": "一加一等于几？", "output": "等于二。", "category": "数学题"},  # its own: kept
        {"id": "9", "instruction": "推荐一本入门的编程书。", "output": "可以读《Python编程：从入门到实践》。"},
    ]), encoding="utf-8")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,category\n7,写作\n8,数学\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(rows), "--categories", str(labels), "--out", str(out), "--heldout", "0"])
    assert result.exit_code == 0, result.output
    train = {r["id"]: r.get("category") for r in map(json.loads, (out / "train.jsonl").read_text(encoding="utf-8").splitlines())}
    assert train == {"mine:1": "写作", "mine:2": "数学题", "mine:3": None}

    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n7,写作\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(rows), "--categories", str(bad), "--out", str(tmp_path / "o2")])
    said = f"{result.output} {result.exception}"
    assert result.exit_code != 0 and "bad.csv:row 1" in said and "`id` and a `category`" in said
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"id": "7", "category": "写作"}\n{"id": "7", "category": "诗歌"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(rows), "--categories", str(clash), "--out", str(tmp_path / "o3")])
    said = f"{result.output} {result.exception}"  # the later row is named, as docs/building.md says
    assert result.exit_code != 0 and "clash.jsonl:2: id '7' is given a second category, '诗歌', after '写作'" in said
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


@pytest.fixture
def hub_on_local_files(monkeypatch):
    """The hub's code paths with the fixture copy's file where the hub's would be: the download
    of a whole release (huggingface_hub.hf_hub_download, into the cache) and the stream of a
    --limit (datasets.load_dataset(DATASET_ID, data_files=FILE, streaming=True)). Returns the
    downloads asked for."""
    import datasets
    import huggingface_hub

    real = datasets.load_dataset
    downloads = []

    def from_fixtures(path, data_files=None, revision=None, **kwargs):
        if path == "json":
            return real(path, data_files=data_files, **kwargs)
        return real("json", data_files=str(BELLE / path / data_files), **kwargs)

    def download(repo_id, filename, **kwargs):
        downloads.append((repo_id, filename, kwargs))
        return str(BELLE / repo_id / filename)

    monkeypatch.setattr(datasets, "load_dataset", from_fixtures)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return downloads


def test_limit_stops_reading_the_hub_stream_early(tmp_path, monkeypatch, hub_on_local_files):
    pulled = []
    real = hub.open_stream

    def counting(*args, **kwargs):
        for row in real(*args, **kwargs):
            pulled.append(row)
            yield row

    monkeypatch.setattr(hub, "open_stream", counting)
    out = tmp_path / "out"
    run_build("belle", "--subset", "1M", "--limit", "2", "--out", str(out), "--workers", "1")
    assert len(pulled) == 2
    assert manifest(out)["counts"]["totals"]["read"] == 2


@pytest.mark.parametrize("subset", ["1M", "multiturn", "3.5M"])
def test_the_hub_download_the_hub_stream_and_a_local_copy_build_the_same_rows(subset, tmp_path, hub_on_local_files):
    """A whole release from the hub is downloaded into the cache and read as a file, like a local
    copy (byte ranges the workers parse); a --limit streams it through datasets. All three give
    the same rows the same ids; only the origins differ (a file's file:line, the stream's
    dataset:row)."""
    # (the copy's folder holds 3.5M's categories, joined by id; from the hub they are named)
    categories = ["--categories", str(CATEGORIES)] if subset == "3.5M" else []
    info = hub.SUBSETS[subset]
    run_build("belle", "--subset", subset, *categories, "--out", str(tmp_path / "hub"), "--workers", "1")
    assert hub_on_local_files == [(info.dataset, info.file, {"repo_type": "dataset", "revision": None})]
    run_build("belle", "--subset", subset, *categories, "--limit", "1000", "--out", str(tmp_path / "stream"),
              "--workers", "1")
    run_build("belle", "--subset", subset, "--from", str(BELLE), "--out", str(tmp_path / "copy"), "--workers", "1")
    builds = ("hub", "stream", "copy")
    for name in ("train.jsonl", "heldout.jsonl", "duplicates.jsonl"):
        assert len({(tmp_path / where / name).read_bytes() for where in builds}) == 1, name
    dialogues = [[{k: v for k, v in json.loads(line).items() if k != "origin"} for line in
                  (tmp_path / where / "conversations.jsonl").read_text(encoding="utf-8").splitlines()]
                 for where in builds]
    assert dialogues[0] == dialogues[1] == dialogues[2] and dialogues[0]
    rejects = [[(r["id"], r["reason"]) for r in map(json.loads, (tmp_path / where / "rejects.jsonl").read_text(
        encoding="utf-8").splitlines())] for where in builds]
    assert rejects[0] == rejects[1] == rejects[2]
    [source] = [i for i in manifest(tmp_path / "hub")["inputs"] if i.get("dataset")]
    assert source["dataset"] == info.dataset and source["sha256"] == hub_sha(BELLE / info.dataset / info.file)


def test_a_cluster_streams_a_whole_release_its_nodes_could_not_read_from_this_machines_cache(hub_on_local_files):
    from instruct_data.executors import LocalExecutor, RayExecutor
    from instruct_data.pipeline.sources import plan_sources
    from instruct_data.recipe import parse_recipe

    assert LocalExecutor().reads_this_machines_files and RayExecutor().reads_this_machines_files
    cluster = RayExecutor("head:6379")  # (not entered: nothing is started)
    recipe = parse_recipe({"sources": [{"belle": "1M"}]}, "test")
    [streamed] = plan_sources(recipe, download=cluster.reads_this_machines_files)
    assert streamed.files == [] and hub_on_local_files == []
    [downloaded] = plan_sources(recipe, download=True)
    assert downloaded.files and len(hub_on_local_files) == 1


def test_a_capped_release_is_streamed_not_downloaded(tmp_path, hub_on_local_files):
    from instruct_data.pipeline import build
    from instruct_data.recipe import parse_recipe

    recipe = parse_recipe({"sources": [{"belle": "1M", "cap": 2}], "split": {"heldout": 0}}, "test")
    build(recipe, tmp_path / "out", workers=1)
    assert hub_on_local_files == []  # a cap stops reading early: the release is not fetched whole
    assert manifest(tmp_path / "out")["counts"]["totals"]["written"] == 2


def hub_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_download_the_hub_refuses_is_one_clear_error(tmp_path):
    # HF_HUB_OFFLINE=1: huggingface_hub refuses to go online, which stands in for no network.
    result = CliRunner().invoke(cli, ["build", "belle", "--subset", "2M", "--out", str(tmp_path / "out")])
    said = f"{result.output} {result.exception}"
    assert result.exit_code != 0 and "BelleGroup/train_2M_CN" in said and "--from" in said
    assert not (tmp_path / "out").exists()


def test_the_hub_file_can_be_named_directly_or_found_in_a_snapshot_folder(tmp_path):
    subset = hub.SUBSETS["math"]
    direct = BELLE / subset.dataset / subset.file
    assert hub.local_file(subset, direct) == direct
    assert hub.local_file(subset, BELLE / subset.dataset) == direct
    assert hub.local_file(subset, BELLE) == direct
    with pytest.raises(InputError, match="school_math_0.25M.json"):
        hub.local_file(subset, tmp_path)


def test_the_real_download_asks_datasets_for_the_hub_file(monkeypatch):
    calls = []

    def fake_load_dataset(path, **kwargs):
        calls.append((path, kwargs))
        return iter([{"instruction": "问", "input": "", "output": "答"}])

    import datasets

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    rows = list(hub.stream_rows(hub.SUBSETS["2M"], revision="abc123", limit=5))
    assert calls == [("BelleGroup/train_2M_CN", {"data_files": "train_2M_CN.json", "revision": "abc123",
                                                   "split": "train", "streaming": True})]
    assert str(rows[0][0]) == "BelleGroup/train_2M_CN@abc123:row 1"


def test_an_unreachable_hub_is_one_clear_error():
    # HF_DATASETS_OFFLINE=1: datasets refuses to go online, which stands in for no network.
    with pytest.raises(InputError, match="BelleGroup/train_1M_CN") as caught:
        list(hub.stream_rows(hub.SUBSETS["1M"], limit=1))
    # ... and says what to do without the hub: the file to download, a mirror, --from.
    assert str(caught.value).endswith(
        "without the hub, download Belle_open_source_1M.json from https://huggingface.co/datasets/BelleGroup/"
        "train_1M_CN (or through a mirror: HF_ENDPOINT=https://hf-mirror.com) and pass --from FOLDER")


def test_a_local_copy_in_shards_reads_as_one_dataset(tmp_path):
    """A copy whose file is in shards named as the hub names them (STEM-00000-of-00002.json) is
    read in order, rows numbered across the shards; hub.shards says where each one starts."""
    subset = hub.SUBSETS["0.5M"]
    lines = (BELLE / subset.dataset / subset.file).read_text(encoding="utf-8").splitlines()
    folder = tmp_path / subset.dataset
    folder.mkdir(parents=True)
    (folder / "Belle_open_source_0.5M-00000-of-00002.json").write_text("\n".join(lines[:5]) + "\n\n", encoding="utf-8")
    (folder / "Belle_open_source_0.5M-00001-of-00002.json").write_text("\n".join(lines[5:]) + "\n", encoding="utf-8")
    assert [p.name for p in hub.local_files(subset, tmp_path)] == ["Belle_open_source_0.5M-00000-of-00002.json",
                                                                   "Belle_open_source_0.5M-00001-of-00002.json"]
    assert [(s.first_row, s.rows) for s in hub.shards(subset, tmp_path)] == [(1, 5), (6, len(lines) - 5)]
    whole = [(str(o), row) for o, row in hub.stream_rows(subset, from_path=str(BELLE))]
    assert [(str(o), row) for o, row in hub.stream_rows(subset, from_path=str(tmp_path))] == whole
    by_shard = [(str(o), row) for s in hub.shards(subset, tmp_path) for o, row in hub.shard_rows(s)]
    assert by_shard == whole
    out = tmp_path / "out"
    run_build("belle", "--subset", "0.5M", "--from", str(tmp_path), "--out", str(out), "--workers", "1")
    shards = manifest(out)["inputs"][0]["shards"]
    assert [Path(s["path"]).name for s in shards] == [p.name for p in hub.local_files(subset, tmp_path)]
