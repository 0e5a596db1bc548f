"""`--engine ray`: the build and dedupe on Ray Data give the local engine's outputs, byte for byte.

One local Ray runtime (2 CPUs, a small object store, no dashboard) serves every test here:
Ray takes seconds to start. The inputs are generated Belle-like rows with planted exact and
near copies (benchmarks/corpus.py), Belle multi-turn dialogues, a CSV and a bad line; the
shuffles are cut into several partitions so that rows meet across blocks as on a cluster.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from instruct_data.dedupe import DedupeSettings
from instruct_data.dedupe.runner import dedupe_files
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe

HERE = Path(__file__).parent
BELLE = HERE / "fixtures" / "belle"
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import corpus  # noqa: E402  (benchmarks/corpus.py: Belle-like rows with planted copies)

BUILD_FILES = ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl", "rejects.jsonl",
               "duplicates.jsonl", "report.md")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    import ray
    import ray.data

    from instruct_data.ray_engine.runtime import configure_data, local_system_config

    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, configure_logging=False,
             log_to_driver=False, _temp_dir=str(tmp_path_factory.mktemp("ray")), _system_config=local_system_config(2))

    configure_data()
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> Path:
    """2,500 generated rows, 8% planted near copies and 5% exact ones, and one bad line."""
    folder = tmp_path_factory.mktemp("corpus")
    corpus.generate(2500, folder / "rows.jsonl", near_dups=0.08, exact_dups=0.05, seed=11)
    with open(folder / "rows.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    return folder / "rows.jsonl"


@pytest.fixture
def small_partitions(monkeypatch):
    """Several shuffle partitions on a few thousand rows, as a cluster has on millions."""
    from instruct_data.ray_engine import build as ray_build
    from instruct_data.ray_engine import dedupe as ray_dedupe

    from instruct_data.ray_engine import runtime

    monkeypatch.setattr(ray_build, "ROWS_PER_PARTITION", 500)
    monkeypatch.setattr(ray_dedupe, "ITEMS_PER_PARTITION", 500)
    monkeypatch.setattr(runtime, "MIN_BLOCK_BYTES", 64 << 10)  # a dozen blocks, not one or two


def build_on_ray(recipe, out: Path) -> dict:
    """pipeline.build with the Ray executor (the test session's Ray runtime)."""
    from instruct_data.executors import RayExecutor

    return build(recipe, out, executor=RayExecutor())


def dedupe_on_ray(inputs, out: Path, settings=None) -> dict:
    """dedupe_files with the Ray executor, as `idata dedupe --engine ray` runs it."""
    from instruct_data.executors import RayExecutor

    return dedupe_files(inputs, out, settings, executor=RayExecutor())


def _manifest_without_engine(folder: Path) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    engine = manifest.pop("engine")
    assert engine["name"] == "ray" and engine["nodes"] == 1 and engine["cpus"] == 2
    return manifest


def test_build_on_ray_is_byte_identical_to_the_local_build(ray_session, rows, small_partitions, tmp_path):

    recipe = {
        "sources": [{"name": "gen", "files": [str(rows)]},
                    {"belle": "0.5M", "from": str(BELLE), "cap": 4},
                    {"belle": "multiturn", "from": str(BELLE)},
                    {"belle": "3.5M", "from": str(BELLE)}],  # its categories joined by id, from BELLE-2's file
        "split": {"heldout": 60},
        "against": [str(HERE / "fixtures" / "eval" / "heldout.jsonl")],
        "seed": 5,
    }
    local = build(parse_recipe(recipe, "test"), tmp_path / "local", workers=1)
    on_ray = build_on_ray(parse_recipe(recipe, "test"), tmp_path / "ray")

    for name in BUILD_FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert _manifest_without_engine(tmp_path / "ray") == json.loads((tmp_path / "local" / "manifest.json").read_text())
    dialogues = [json.loads(line) for name in ("conversations.jsonl", "heldout_conversations.jsonl")
                 for line in (tmp_path / "ray" / name).read_text(encoding="utf-8").splitlines()]
    assert {d.get("category") for d in dialogues if d.get("own_id") == "77772"} == {"brainstorming"}  # joined by id
    # What was planted was found (not an empty comparison), and the ledger adds up.
    removed = on_ray["counts"]["duplicates_by_method"]
    assert removed.get("near", 0) > 100 and removed.get("exact", 0) > 50
    totals = on_ray["counts"]["totals"]
    assert totals["read"] == totals["written"] + totals["rejected"] + totals["removed"]
    assert on_ray["counts"]["balanced"] and on_ray["split"]["heldout"]
    assert local["split"] == on_ray["split"]


def test_dialogues_cut_and_weighted_on_ray_as_locally(ray_session, small_partitions, tmp_path):
    """One truth per dialogue (pipeline.dialogue) on both engines: records removed as copies
    stay as weight-0 history in conversations.jsonl, dialogues that ask a held-out question
    are cut there, records of one dialogue are never compared, numbers must agree."""
    from tests.test_dialogue_truth import FIXTURE, dialogues_with_heldout_rounds, glaive_dialogue

    singles, dialogues = dialogues_with_heldout_rounds(40)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for pair in zip(singles, dialogues)
                             for r in pair), encoding="utf-8")
    # Tool dialogues, each twice: a held-out one gives every reply, its copy loses them all.
    weather = tmp_path / "weather.json"
    weather.write_text(json.dumps([glaive_dialogue(city, 20 + n) for n, city in enumerate("北京 上海 广州 深圳 杭州 南京 成都 重庆".split())
                                   for _ in range(2)], ensure_ascii=False), encoding="utf-8")
    recipe = {"sources": [{"files": [str(FIXTURE), str(mixed), str(weather)]}], "split": {"heldout": 0.25}, "seed": 3,
              "system": "你是一个乐于助人的助手。"}  # carried by every dialogue, the cut ones too
    local = build(parse_recipe(recipe, "test"), tmp_path / "local", workers=1)
    on_ray = build_on_ray(parse_recipe(recipe, "test"), tmp_path / "ray")
    for name in BUILD_FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert local["split"] == on_ray["split"]
    conversations = (tmp_path / "ray" / "conversations.jsonl").read_text(encoding="utf-8")
    removed = [json.loads(line) for line in (tmp_path / "ray" / "duplicates.jsonl").read_text().splitlines()]
    assert '"weight":0' in conversations  # a copied reply kept as history
    assert all(json.loads(line)["system"] == recipe["system"] for line in conversations.splitlines())
    assert sum(d["method"] == "contamination" and d["id"].endswith("#t3") for d in removed) >= 2  # cut dialogues


@pytest.fixture
def rows_with_ids(rows, tmp_path) -> Path:
    """2,000 rows with their own `id` field: rows 1501-2000 repeat the ids of rows 1-500 (7 and
    1500 share no factor), spread over a dozen blocks."""
    with_ids = tmp_path / "with_ids.jsonl"
    lines = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()[:2000]]
    with open(with_ids, "w", encoding="utf-8") as fh:
        for n, row in enumerate(lines):
            fh.write(json.dumps({"id": f"belle-{(n * 7) % 1500}", **row}, ensure_ascii=False) + "\n")
    return with_ids


def _check_own_ids(own: dict) -> None:
    assert own["rows_with_own_id"] > 1900 and 450 < own["rows_repeating_an_earlier_own_id"] <= 500  # less rejects
    assert own["examples"][0]["own_id"] == "belle-0" and len(own["examples"]) == 5


def test_rows_own_ids_are_counted_on_ray_as_locally(ray_session, rows_with_ids, small_partitions, tmp_path):
    """The manifest's own_ids (counts, and the first repeats in input order) come from a
    shuffle on Ray, the same as the local engine's set gives."""

    recipe = {"sources": [{"name": "ids", "files": [str(rows_with_ids)]}], "split": {"heldout": 20}, "seed": 1}
    local = build(parse_recipe(recipe, "test"), tmp_path / "local", workers=1)
    on_ray = build_on_ray(parse_recipe(recipe, "test"), tmp_path / "ray")
    assert on_ray["counts"]["own_ids"] == local["counts"]["own_ids"]
    _check_own_ids(on_ray["counts"]["own_ids"])
    for name in BUILD_FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name

    local = dedupe_files([str(rows_with_ids)], tmp_path / "dedupe-local", workers=1)
    on_ray = dedupe_on_ray([str(rows_with_ids)], tmp_path / "dedupe-ray")
    assert on_ray["counts"]["own_ids"] == local["counts"]["own_ids"]
    _check_own_ids(on_ray["counts"]["own_ids"])


def test_blocks_grow_with_the_input_so_their_number_stays_bounded():
    """The driver's memory follows the number of blocks: 1M rows and 5M rows get as many."""
    from instruct_data.ray_engine.runtime import BLOCKS_PER_JOB, MAX_BLOCK_BYTES, MIN_BLOCK_BYTES, block_bytes

    assert block_bytes(10 << 20, cpus=2) == MIN_BLOCK_BYTES  # a small input keeps small tasks
    for size in (600 << 20, 3 << 30):  # about 1M and 5M Belle-like rows
        assert -(-size // block_bytes(size, cpus=2)) == BLOCKS_PER_JOB
    assert -(-(3 << 30) // block_bytes(3 << 30, cpus=512)) == 4 * 512  # a large cluster: 4 per CPU
    assert block_bytes(1 << 40, cpus=2) == MAX_BLOCK_BYTES


def test_dedupe_on_ray_is_byte_identical_to_local_dedupe(ray_session, rows, small_partitions, tmp_path):
    import pandas as pd


    table = tmp_path / "more.csv"
    pd.read_json(rows, lines=True, nrows=600).to_csv(table, index=False)  # every row an exact copy
    inputs = [str(rows), str(table)]
    settings = DedupeSettings(policy="longest-reply")
    local = dedupe_files(inputs, tmp_path / "local", settings, workers=1)
    on_ray = dedupe_on_ray(inputs, tmp_path / "ray", settings)

    names = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert names == sorted(path.name for path in (tmp_path / "ray").iterdir())
    for name in names:
        if name != "manifest.json":
            assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert _manifest_without_engine(tmp_path / "ray") == json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert on_ray["counts"]["duplicates_by_method"]["exact"] >= 600
    assert on_ray["counts"]["balanced"] and local["dedupe"]["clusters"] == on_ray["dedupe"]["clusters"] > 0


def _idata(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI as a user does (errors as one line, exit codes); (exit code, what it printed)."""
    from instruct_data.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(list(args))
    printed = capsys.readouterr()
    return done.value.code, printed.out + printed.err


def test_cli_engine_ray_and_its_one_line_errors(ray_session, tmp_path, monkeypatch, capsys):
    source = tmp_path / "mine.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"第{i}个问题是什么？", "output": f"这是第{i}个回答。"},
                                         ensure_ascii=False) + "\n" for i in range(30)), encoding="utf-8")
    code, _ = _idata(capsys, "build", str(source), "--engine", "ray", "--out", str(tmp_path / "out"), "--json")
    assert code == 0
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["engine"]["name"] == "ray"

    # A damaged .gz fails with file:line, as with the local engine, and writes nothing.
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(gzip.compress(source.read_bytes() * 50)[:-300])
    local = _idata(capsys, "dedupe", str(damaged), "--out", str(tmp_path / "d1"))
    on_ray = _idata(capsys, "dedupe", str(damaged), "--engine", "ray", "--out", str(tmp_path / "d1"))
    assert on_ray == local and local[0] != 0 and f"{damaged}:" in on_ray[1]
    assert not (tmp_path / "d1").exists() or not any((tmp_path / "d1").iterdir())

    code, printed = _idata(capsys, "build", str(source), "--engine", "ray", "--ray-address", "127.0.0.1:9",
                           "--out", str(tmp_path / "x"))
    assert code != 0 and len(printed.strip().splitlines()) == 1
    assert "--ray-address 127.0.0.1:9: no Ray cluster can be reached there" in printed

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code, printed = _idata(capsys, "dedupe", str(source), "--engine", "ray", "--out", str(tmp_path / "y"))
    assert code != 0 and len(printed.strip().splitlines()) == 1
    assert "pip install 'instruct-data[ray]'" in printed


def test_a_chunk_that_fails_on_ray_fails_with_file_and_line(ray_session):
    from instruct_data.errors import InputError
    from instruct_data.ray_engine.dedupe import RayDedupe, _RayPool
    from instruct_data.ray_engine.runtime import Cluster

    def chunk(task):  # a chunk function that meets a file it cannot read, on a Ray worker
        if task == 2:
            raise InputError("data/big.jsonl", "cannot read past this line", line=1234)
        return [None], __import__("instruct_data.dedupe.fingerprint", fromlist=["x"]).fingerprint([], settings)

    settings = DedupeSettings()
    pool = _RayPool(RayDedupe(Cluster(None, 1, 2)), settings, None)
    outcomes = pool.map(chunk, [0, 1, 2, 3])
    assert next(outcomes) == ([None], None) and next(outcomes) == ([None], None)
    with pytest.raises(InputError, match=r"^data/big.jsonl:1234: cannot read past this line$"):
        next(outcomes)


def test_connected_components_match_a_union_find(ray_session):
    import ray.data

    from instruct_data.ray_engine.components import components

    rng = np.random.default_rng(3)
    edges = rng.integers(0, 400, size=(300, 2))  # many small components and a few chains
    edges = edges[edges[:, 0] != edges[:, 1]]  # pairs of two different items, as dedupe's are
    edges = np.concatenate([edges, [[1000 + i, 1001 + i] for i in range(40)]])  # one long chain
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    dataset = ray.data.from_items([{"a": int(a), "b": int(b)} for a, b in edges])
    labels = {row["node"]: row["root"] for row in components(dataset, parts=3).take_all()}
    assert labels == {node: find(node) for node in parent}


@pytest.fixture(scope="module")
def tables(rows, tmp_path_factory) -> dict[str, Path]:
    """Generated rows as a JSON array, a CSV whose cells hold newlines, quotes and commas, a
    parquet file of several row groups and a small workbook (different rows in each)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("tables")
    records = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()[:1540]]
    for n, record in enumerate(records):
        if n % 3 == 0:  # cells a CSV must quote, and a newline right where a cut might fall
            record["output"] += f'\n第二段，"引号"{n}\n'
    paths = {"array": folder / "rows.json", "csv": folder / "rows.csv", "parquet": folder / "rows.parquet",
             "xlsx": folder / "rows.xlsx"}
    paths["array"].write_text(json.dumps(records[:600], ensure_ascii=False, indent=1), encoding="utf-8")
    frame = pd.DataFrame(records)
    frame.iloc[600:1200].to_csv(paths["csv"], index=False)
    pq.write_table(pa.Table.from_pandas(frame.iloc[1200:1500], preserve_index=False), paths["parquet"],
                   row_group_size=50)
    frame.iloc[1500:1540].to_excel(paths["xlsx"], index=False)
    return paths


def test_arrays_and_tables_are_read_in_ray_tasks_not_on_the_driver(tables, small_partitions):
    """With --engine ray the driver sends pieces (a byte range, a row range, a whole workbook),
    never rows: it parses no array or table."""
    from instruct_data.pipeline.sources import plan_sources, tasks

    recipe = parse_recipe({"sources": [{"files": [str(path) for path in tables.values()]}]}, "test")
    chunks = [task[3] for task in tasks(plan_sources(recipe), block_bytes=16 << 10, batch_rows=100, in_pieces=True)]
    assert all(chunk.rows is None for chunk in chunks)
    kinds = [Path(chunk.spec.path).suffix for chunk in chunks]
    assert kinds.count(".json") > 5 and kinds.count(".csv") > 5 and kinds.count(".parquet") == 3  # 2 groups each
    assert [chunk.whole for chunk in chunks if chunk.spec.path.endswith(".xlsx")] == [True]


@pytest.fixture(scope="module")
def belle_shards(rows, tmp_path_factory) -> Path:
    """A local copy of a Belle release in three shard files, as the hub names them (a blank
    line in the second: datasets skips it, and so must the row numbers)."""
    folder = tmp_path_factory.mktemp("hub")
    shard_dir = folder / "BelleGroup" / "train_1M_CN"
    shard_dir.mkdir(parents=True)
    lines = rows.read_text(encoding="utf-8").splitlines()[1700:2300]  # rows the tables do not hold
    for k in range(3):
        part = lines[k * 200:(k + 1) * 200]
        if k == 1:
            part.insert(100, "")
        (shard_dir / f"Belle_open_source_1M-{k:05d}-of-00003.json").write_text("\n".join(part) + "\n",
                                                                               encoding="utf-8")
    return folder


def test_arrays_tables_and_shards_read_in_tasks_build_as_locally(ray_session, tables, belle_shards, small_partitions,
                                                                  tmp_path):
    """One Ray build (they take long) of every kind of piece: an array, a CSV with quoted
    newlines, parquet row groups, a workbook, a Belle copy in three shards."""
    from instruct_data.pipeline.sources import plan_sources, tasks

    recipe = {"sources": [{"name": "array", "files": [str(tables["array"])]},
                          {"name": "csv", "files": [str(tables["csv"])]},
                          {"name": "tables", "files": [str(tables["parquet"]), str(tables["xlsx"])]},
                          {"belle": "1M", "from": str(belle_shards)}],
              "split": {"heldout": 40}, "seed": 2}
    shards = [task[3].shard for task in tasks(plan_sources(parse_recipe(recipe, "test")), in_pieces=True)
              if task[3].shard is not None]
    assert [(shard.first_row, shard.rows) for shard in shards] == [(1, 200), (201, 200), (401, 200)]
    local = build(parse_recipe(recipe, "test"), tmp_path / "local", workers=1)
    on_ray = build_on_ray(parse_recipe(recipe, "test"), tmp_path / "ray")
    for name in BUILD_FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert _manifest_without_engine(tmp_path / "ray") == json.loads((tmp_path / "local" / "manifest.json").read_text())
    read = {source["name"]: source["read"] for source in on_ray["sources"]}
    assert read == {"array": 600, "csv": 600, "tables": 340, "belle-1M": 600}
    assert len(on_ray["inputs"][-1]["shards"]) == 3
    conversations = (tmp_path / "ray" / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["id"] for line in conversations]
    for source in ("array", "csv", "belle-1M"):  # rows numbered across pieces and shards
        assert max(int(i.split(":")[1]) for i in ids if i.startswith(source + ":")) > 550, source


def test_caps_inside_a_chunk_and_repeated_ids_on_ray_as_locally(ray_session, small_partitions, tmp_path):
    """steps.caps and steps.ids on both executors, whose chunks differ in size (1 MiB locally,
    64 KiB blocks here): a cap reached inside a chunk (its rows and rejects after the cap-th kept
    row not counted, the chunks read ahead dropped), ids that two sources' names make meet
    (read/duplicate_id), own ids repeated across chunks."""
    rows = [json.dumps({"id": f"q{n % 400}", "instruction": f"第{n}个问题：请解释这个词语的意思。",
                        "output": f"第{n}个回答：这个词语的意思是这样的。"}, ensure_ascii=False)
            if n % 7 != 3 else '{"instruction": "坏行", ' for n in range(3000)]
    (tmp_path / "big.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    same = [json.dumps({"instruction": f"同名{n}", "output": f"回答{n}"}, ensure_ascii=False) + "\n" for n in range(9)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_text("".join(same[:3]), encoding="utf-8")
    (tmp_path / "d" / "c.jsonl").write_text("".join(same[3:6]), encoding="utf-8")
    (tmp_path / "one.jsonl").write_text("".join(same[6:]), encoding="utf-8")
    recipe = {"sources": [{"name": "big", "files": [str(tmp_path / "big.jsonl")], "cap": 1234},
                          {"name": "a/b", "files": [str(tmp_path / "one.jsonl")]},
                          {"name": "a", "files": [str(tmp_path / "d" / "b.jsonl"), str(tmp_path / "d" / "c.jsonl")]}],
              "split": {"heldout": 20}, "dedupe": {"near": False}, "seed": 3}
    local = build(parse_recipe(recipe, "test"), tmp_path / "local", workers=1)
    on_ray = build_on_ray(parse_recipe(recipe, "test"), tmp_path / "ray")
    for name in BUILD_FILES:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert _manifest_without_engine(tmp_path / "ray") == json.loads((tmp_path / "local" / "manifest.json").read_text())
    big = next(source for source in on_ray["sources"] if source["name"] == "big")
    # every 7th row from the 4th is bad: the 1,234th good row is the 1,440th read
    assert big["kept_after_cleaning"] == 1234 and big["stopped_at_cap"] and big["read"] == 1440
    counts = on_ray["counts"]
    assert counts["rejects_by_reason"]["read/duplicate_id"] == {"a": 3}
    assert counts["own_ids"]["rows_with_own_id"] == 1234 and counts["own_ids"]["rows_repeating_an_earlier_own_id"] > 800
