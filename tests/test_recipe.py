"""Recipes: validated with pydantic, a wrong key named, paths taken from the recipe's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruct_data.recipe import RecipeError, load_recipe, parse_recipe

RECIPES = Path(__file__).parent.parent / "recipes"
BELLE = Path(__file__).parent / "fixtures" / "belle"


@pytest.mark.parametrize("name", ["belle.yaml", "mine.yaml", "mix.yaml"])
def test_shipped_recipes_are_valid(name):
    recipe = load_recipe(RECIPES / name)
    assert recipe.sources
    for source in recipe.sources:
        for file in source.files or []:
            assert Path(file).is_absolute() and Path(file).exists()


def test_a_wrong_key_is_an_error_naming_it(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("sources:\n  - files: [a.jsonl]\n    capp: 3\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"sources\.0\.capp: unknown key 'capp'"):
        load_recipe(path)
    with pytest.raises(RecipeError, match=r"clean\.length\.min_chars: unknown key"):
        parse_recipe({"sources": [{"files": ["a"]}], "clean": {"length": {"min_chars": 2}}})
    with pytest.raises(RecipeError, match=r"dedupe\.treshold: unknown key"):
        parse_recipe({"sources": [{"files": ["a"]}], "dedupe": {"treshold": 0.5}})
    with pytest.raises(RecipeError, match="splt"):
        parse_recipe({"sources": [{"files": ["a"]}], "splt": {}})


def test_a_wrong_key_is_found_by_its_line_with_the_key_meant(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("sources:\n  - files: [a.jsonl]\ntemplate: seed\nclean:\n  garbeld: true\nheldout: 0.1\n"
                    "dedupe:\n  thresold: 0.8\n", encoding="utf-8")
    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    assert str(caught.value) == (
        f"{path}:5: clean.garbeld: unknown key 'garbeld' (did you mean 'garbled'?); "
        "dedupe.thresold: unknown key 'thresold' (did you mean 'threshold'?); "
        "heldout: unknown key 'heldout' (it belongs under split:)")
    path.write_text("sources: &s\n  - files: [a.jsonl]\n    more: *s\n", encoding="utf-8")  # an alias inside itself
    with pytest.raises(RecipeError, match=rf"^{path}:3: sources\.0\.more: unknown key 'more'"):
        load_recipe(path)
    path.write_text("sources:\n  - files: a.jsonl\n", encoding="utf-8")  # a value: the line of its key
    with pytest.raises(RecipeError, match=rf"^{path}:2: sources\.0\.files: Input should be a valid list$"):
        load_recipe(path)


def test_bad_yaml_and_bad_values_are_clear(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("sources: [\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(path)
    with pytest.raises(RecipeError, match="unknown Belle subset '4M'"):
        parse_recipe({"sources": [{"belle": "4M"}]})
    with pytest.raises(RecipeError, match="unknown template 'gpt'"):
        parse_recipe({"sources": [{"files": ["a"]}], "template": "gpt"})
    with pytest.raises(RecipeError, match="either `files` or `belle`"):
        parse_recipe({"sources": [{"files": ["a"], "belle": "1M"}]})
    with pytest.raises(RecipeError, match="share the name 'a'"):
        parse_recipe({"sources": [{"files": ["x/a.jsonl"]}, {"files": ["y/a.jsonl"]}]})
    with pytest.raises(RecipeError, match="no such recipe"):
        load_recipe(tmp_path / "missing.yaml")


def test_weights_share_out_the_total():
    recipe = parse_recipe({"total": 1000, "sources": [{"files": ["a.jsonl"], "weight": 1},
                                                      {"belle": "1M", "weight": 3}, {"files": ["b.jsonl"], "cap": 7}]})
    assert recipe.caps() == {"a": 250, "belle-1M": 750, "b": 7}
    with pytest.raises(RecipeError, match="no `total`"):
        parse_recipe({"sources": [{"files": ["a.jsonl"], "weight": 1}]})


@pytest.mark.parametrize("total, weights, caps", [
    (3, [1, 1], [2, 1]), (1001, [1, 2, 1], [250, 501, 250]), (5, [1, 1, 1], [2, 2, 1]),
    (777, [2, 1, 1, 1, 1], [259, 130, 130, 129, 129]), (10, [1e-320, 1], [1, 9])])
def test_weighted_shares_add_up_to_the_total(total, weights, caps):
    """Rounded one by one, two equal weights of `total: 3` made 4 rows and 1/2/1 of 1001 made 1000."""
    recipe = parse_recipe({"total": total, "sources": [{"files": [f"s{i}.jsonl"], "weight": w}
                                                       for i, w in enumerate(weights)]})
    assert list(recipe.caps().values()) == caps and sum(caps) == total


def test_a_weight_that_cannot_share_a_total_is_refused():
    with pytest.raises(RecipeError, match="finite number"):
        parse_recipe({"total": 10, "sources": [{"files": ["a.jsonl"], "weight": float("inf")}]})
    with pytest.raises(RecipeError, match="less than the 3 sources"):
        parse_recipe({"total": 2, "sources": [{"files": [f"s{i}.jsonl"], "weight": 1} for i in range(3)]})


def test_relative_paths_are_taken_from_the_recipe_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "r.yaml").write_text(f"sources:\n  - files: [data/x.jsonl]\n  - belle: math\n    from: {BELLE}\n",
                                     encoding="utf-8")
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.sources[0].files == [str(tmp_path / "data" / "x.jsonl")]
    assert recipe.sources[1].from_ == str(BELLE)
    resolved = recipe.resolved()
    assert resolved["sources"][1]["from"] == str(BELLE) and resolved["clean"]["length"]["enabled"] is True
