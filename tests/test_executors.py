"""The build owns its flow; an executor (instruct_data.executors) only runs the passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from instruct_data.executors import LocalExecutor, RayExecutor, executor_for
from instruct_data.pipeline import build
from instruct_data.recipe import parse_recipe

ROWS = [{"instruction": f"第{n}个问题：请写一句关于春天的话。", "input": "", "output": f"春天来了，花开了，这是第{n}句。"}
        for n in range(40)]
OUTPUTS = ("train.jsonl", "heldout.jsonl", "conversations.jsonl", "heldout_conversations.jsonl", "rejects.jsonl",
           "duplicates.jsonl")


@pytest.fixture
def recipe(tmp_path):
    rows = tmp_path / "rows.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in ROWS]
    rows.write_text("\n".join([*lines, lines[3], "{not json"]) + "\n", encoding="utf-8")  # a copy and a bad line
    return parse_recipe({"sources": [{"files": [str(rows)]}], "split": {"heldout": 5}})


class Watched(LocalExecutor):
    """The local executor, noting what the build asks of it and when."""

    def __init__(self):
        super().__init__(workers=1)
        self.calls: list[str] = []

    def __enter__(self):
        self.calls.append("enter")
        return super().__enter__()

    def __exit__(self, *exc):
        self.calls.append("exit")
        return super().__exit__(*exc)

    def manifest_entry(self):
        self.calls.append("manifest_entry")
        return {"name": "watched"}

    def map_chunks(self, job):
        self.calls.append("map_chunks")
        assert not (job.work / "manifest.json").exists()  # the build finishes the ledger after the passes
        return super().map_chunks(job)

    def partition_by_key(self, table, key, fn, columns):
        self.calls.append(f"partition_by_key {key}")
        return super().partition_by_key(table, key, fn, columns)

    def map_blocks(self, table, fn, columns):
        self.calls.append("map_blocks")
        return super().map_blocks(table, fn, columns)

    def removals(self, job, first, held, repeated):
        self.calls.append("removals")
        return super().removals(job, first, held, repeated)

    def iterate_in_order(self, table):
        self.calls.append("iterate_in_order")
        return super().iterate_in_order(table)


def test_the_build_enters_its_executor_around_the_passes_and_records_it(recipe, tmp_path):
    executor = Watched()
    manifest = build(recipe, tmp_path / "watched", executor=executor)
    # The flow (pipeline.flow) asks for each step in turn: own ids by their hash, ids by rank.
    # The split: the blocks' group sizes, then their candidates.
    assert executor.calls == ["enter", "manifest_entry", "map_chunks", "partition_by_key hash", "partition_by_key rank",
                              "map_blocks", "map_blocks", "removals", "iterate_in_order", "exit"]
    assert manifest["engine"] == {"name": "watched"}
    plain = build(recipe, tmp_path / "plain", workers=1)
    assert "engine" not in plain  # the local executor records none: its manifest is as it was
    for name in OUTPUTS:
        assert (tmp_path / "watched" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name
    assert plain["counts"]["totals"]["read"] == 42 and plain["counts"]["balanced"]


def test_an_executor_that_fails_leaves_no_output_and_is_exited(recipe, tmp_path):
    class Failing(Watched):
        def map_chunks(self, job):
            self.calls.append("map_chunks")
            raise KeyboardInterrupt

    executor = Failing()
    with pytest.raises(KeyboardInterrupt):
        build(recipe, tmp_path / "out", executor=executor)
    assert executor.calls[-1] == "exit" and not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_workers_is_the_local_executors_shorthand(recipe, tmp_path):
    build(recipe, tmp_path / "a", executor=LocalExecutor(workers=2))
    build(recipe, tmp_path / "b", workers=2)
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with pytest.raises(TypeError, match="not both"):
        build(recipe, tmp_path / "c", executor=LocalExecutor(), workers=2)


def test_the_engine_option_names_an_executor_in_one_place():
    local = executor_for("local", workers=3, address="ignored:1")
    assert isinstance(local, LocalExecutor) and local.workers == 3 and not local.draws_own_progress
    ray = executor_for("ray", workers=3, address="head:6379")
    assert isinstance(ray, RayExecutor) and ray.address == "head:6379" and ray.draws_own_progress
    assert ray.num_cpus is None  # a cluster's CPUs are its own
    assert executor_for("ray", workers=1).num_cpus == 1  # a local Ray runtime takes --workers
    assert executor_for("ray").num_cpus is None  # (all cores)
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        executor_for("spark")


def test_the_ray_executor_starts_nothing_until_entered(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    executor = RayExecutor()  # made by the command line before any work: must not need Ray
    with pytest.raises(RuntimeError, match="outside"):
        executor.manifest_entry()
    from instruct_data.ray_engine import EngineError

    with pytest.raises(EngineError, match=r"pip install 'instruct-data\[ray\]'"):
        with executor:
            pass


def test_nothing_below_the_build_calls_back_up_into_it():
    """The Ray side runs the passes it is given: it imports neither the build nor dedupe's
    runner, and no private name of the local side."""
    import ast

    package = Path(__file__).parent.parent / "instruct_data"
    for path in sorted((package / "ray_engine").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("instruct_data"):
                continue
            names = [alias.name for alias in node.names]
            assert node.module not in ("instruct_data.pipeline.run", "instruct_data.dedupe.runner"), path.name
            assert not (node.module == "instruct_data.pipeline" and "build" in names), path.name
            if not node.module.startswith("instruct_data.ray_engine"):
                assert not [name for name in names if name.startswith("_")], (path.name, node.module, names)


class Repartitioned(LocalExecutor):
    """The local executor, but partitioning by key and into blocks its own way: every row (alone
    with its key or not) in `parts` partitions by the key modulo `parts`, the partitions in
    reverse; blocks of `parts` shuffles of the rows, their rows in any order, in reverse."""

    def __init__(self, parts: int):
        super().__init__(workers=2)
        self.parts = parts

    def partition_by_key(self, table, key, fn, columns):
        import numpy as np

        keys = table.key(key)
        for part in reversed(range(self.parts)):
            rows = np.flatnonzero(keys % np.uint64(self.parts) == part)
            yield fn(table.take(rows, columns))

    def map_blocks(self, table, fn, columns):
        import numpy as np

        rows = np.random.default_rng(self.parts).permutation(len(table))
        for block in reversed(np.array_split(rows, self.parts)):
            yield fn(table.take(block, columns))


def test_any_partitioning_by_key_gives_the_same_outputs(tmp_path):
    """The build's ids steps and its split are the flow's, over whatever partitions and blocks
    the executor forms: one partition of every row, or several in any order, give the bytes the
    local executor's give. Rows here repeat an id (two sources whose ids meet) and an own id, and
    some have a category; the split is by category (a source for rows without), then by source."""
    rows = [{"id": f"own{n % 7}", "instruction": f"问题{n}：介绍一种水果。", "output": f"第{n}种水果很好吃，富含维生素。",
             **({"category": ["水果", "问答"][n % 2]} if n % 3 else {})} for n in range(60)]
    for name, part in (("b.jsonl", rows[:20]), ("c.jsonl", rows[20:40]), ("one.jsonl", rows[40:])):
        (tmp_path / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part), encoding="utf-8")
    (tmp_path / "d").mkdir()
    (tmp_path / "b.jsonl").rename(tmp_path / "d" / "b.jsonl")
    (tmp_path / "c.jsonl").rename(tmp_path / "d" / "c.jsonl")
    recipe = parse_recipe({"sources": [{"name": "a/b", "files": [str(tmp_path / "one.jsonl")]},
                                       {"name": "a", "files": [str(tmp_path / "d" / "b.jsonl"),
                                                               str(tmp_path / "d" / "c.jsonl")]}],
                           "split": {"heldout": 12}})
    by_source = recipe.model_copy(update={"split": recipe.split.model_copy(update={"heldout": 0.3, "by": "source"})})
    for name, recipe in (("category", recipe), ("source", by_source)):
        plain = build(recipe, tmp_path / name / "plain", workers=2)
        assert plain["counts"]["rejects_by_reason"] == {"read/duplicate_id": {"a": 20}}
        assert plain["counts"]["own_ids"]["rows_repeating_an_earlier_own_id"] > 0
        assert len(plain["split"]["heldout"]) >= 2
        for parts in (1, 3):
            other = build(recipe, tmp_path / name / f"parts{parts}", executor=Repartitioned(parts))
            for output in OUTPUTS:
                assert (tmp_path / name / f"parts{parts}" / output).read_bytes() == \
                    (tmp_path / name / "plain" / output).read_bytes(), (name, output)
            assert other["counts"] == plain["counts"] and other["split"] == plain["split"]


def test_dedupe_runs_on_the_executor_it_is_given(tmp_path):
    """dedupe_files enters the executor it is given and runs on its engine; workers= is the
    local executor's shorthand, as for the build."""
    from instruct_data.dedupe.runner import dedupe_files

    rows = tmp_path / "rows.jsonl"
    lines = [json.dumps(row, ensure_ascii=False) for row in ROWS]
    rows.write_text("\n".join([*lines, lines[3], lines[7]]) + "\n", encoding="utf-8")

    class WatchedDedupe(Watched):
        def dedupe_engine(self):
            self.calls.append("dedupe_engine")
            return super().dedupe_engine()

    executor = WatchedDedupe()  # one worker, against the plain run's two: the same bytes
    watched = dedupe_files([str(rows)], tmp_path / "a", executor=executor)
    assert executor.calls == ["enter", "dedupe_engine", "exit"]
    plain = dedupe_files([str(rows)], tmp_path / "b", workers=2)
    assert watched["counts"] == plain["counts"] and plain["counts"]["totals"]["removed"] == 2
    for name in ("rows.jsonl", "duplicates.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with pytest.raises(TypeError, match="not both"):
        dedupe_files([str(rows)], tmp_path / "c", executor=LocalExecutor(), workers=2)
