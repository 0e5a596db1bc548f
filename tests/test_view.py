"""`idata view`: the page a person opens, rendered in a real headless Chromium (Debian's
`chromium`, which `make setup` installs where it can): the DOM the script builds holds the
ledger's counts, a known duplicate pair and the eval verdicts; the screenshot shows Chinese
glyphs, not boxes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from entrypoint import assert_one_line_error, idata

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium (make setup does as root)")


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120)


def dom(page: Path) -> str:
    """The document after the page's script ran."""
    result = chromium("--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(page: Path, png: Path, size: str = "1280,1600") -> "numpy.ndarray":
    from matplotlib.image import imread

    chromium(f"--window-size={size}", f"--screenshot={png}", page.as_uri())
    assert png.is_file()
    return imread(png)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    from instruct_data.demo import demo_build

    folder = tmp_path_factory.mktemp("view") / "build"
    demo_build(folder)
    return folder


def test_view_is_written_beside_the_report(build):
    result = idata("view", build)
    assert result.returncode == 0, result.stderr
    page = (build / "view.html").read_text(encoding="utf-8")
    # nothing is fetched from anywhere: no linked file, no request from the script
    assert not re.search(r"""(src|href)=["']?https?:""", page) and "<link" not in page
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    assert '<script id="data" type="application/json">' in page


@needs_browser
def test_build_view_shows_the_ledger_rejects_and_a_known_pair(build, tmp_path):
    assert idata("view", build).returncode == 0
    html = dom(build / "view.html")
    manifest = json.loads((build / "manifest.json").read_text())
    for name, value in manifest["counts"]["totals"].items():
        assert f'data-count="{name}">{value:,}<' in html
    first_reject = json.loads((build / "rejects.jsonl").read_text().splitlines()[0])
    assert first_reject["id"] in html and first_reject["reason"] in html
    pair = json.loads((build / "duplicates.jsonl").read_text().splitlines()[0])
    assert f'data-id="{pair["id"]}"' in html and f"kept {pair['duplicate_of']}" in html
    near = [json.loads(line) for line in (build / "duplicates.jsonl").read_text().splitlines()
            if json.loads(line)["method"] == "near"]
    assert near and f'similarity {near[0]["similarity"]}' in html
    assert '<span class="diff">' in html  # a near pair's differences are marked
    assert 'id="lengths"' in html and "<svg" in html


def _glyphs(tmp_path: Path, text: str, name: str):
    from instruct_data.view.page import FONT_STACK

    page = tmp_path / f"{name}.html"
    page.write_text(f'<html><body style="margin:0;font-family:{FONT_STACK};font-size:64px">{text}</body></html>',
                    encoding="utf-8")
    return screenshot(page, tmp_path / f"{name}.png", "400,100")


@needs_browser
def test_the_page_font_draws_chinese_not_boxes(build, tmp_path):
    """Missing glyphs all draw the same box (or nothing): two different Chinese words that
    render alike, or render blank, are not shown as text."""
    import numpy as np

    one, other = _glyphs(tmp_path, "数据清洗", "one"), _glyphs(tmp_path, "模型评测", "other")
    assert one[..., :3].std() > 0.05 and other[..., :3].std() > 0.05, "Chinese text renders blank"
    assert not np.array_equal(one, other), "different Chinese words render alike: boxes"
    assert idata("view", build).returncode == 0
    shot = screenshot(build / "view.html", tmp_path / "view.png")
    assert shot[..., :3].std() > 0.05  # a page with text on it, not a blank one


@needs_browser
def test_eval_view_filters_items_by_verdict(tmp_path):
    rows = [
        {"id": "q1", "category": "数学", "prompt": "1+1=?", "reference": "2", "prediction": "2", "base_prediction": "3"},
        {"id": "q2", "category": "数学", "prompt": "2+2=?", "reference": "4", "prediction": "5", "base_prediction": "4"},
        {"id": "q3", "category": "常识", "prompt": "天空是什么颜色？", "reference": "蓝色", "prediction": "蓝色",
         "base_prediction": "蓝色"},
    ]
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert idata("score", predictions, "--out", tmp_path / "scored").returncode == 0
    result = idata("view", tmp_path / "scored")
    assert result.returncode == 0, result.stderr
    html = dom(tmp_path / "scored" / "view.html")
    for verdict, n in (("better", 1), ("worse", 1), ("same", 1)):
        assert f'data-count="{verdict}">{verdict} {n}<' in html
    assert 'data-id="q2"' in html and "天空是什么颜色？" in html
    assert '<option value="常识">常识</option>' in html


@needs_browser
def test_markup_in_the_data_never_breaks_the_page(tmp_path):
    """A text holding `<!--<script>` sent the parser into the state where the embedded data
    swallowed the page's own script: the page showed its title and nothing else."""
    rows = [{"instruction": "把这段代码注释掉 <!--<script>", "input": "", "output": ""},
            {"instruction": "请写一句关于秋天的诗句", "input": "", "output": "秋风萧瑟天气凉，草木摇落露为霜。"},
            {"instruction": "什么是HTML的粗体标签？", "input": "", "output": "用 </script><b>粗体</b> 这样的标签。"}]
    data = tmp_path / "v.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert idata("build", data, "--heldout", "0", "--max-reject-rate", "1", "--out", tmp_path / "b").returncode == 0
    assert idata("view", tmp_path / "b").returncode == 0
    html = dom(tmp_path / "b" / "view.html")
    totals = json.loads((tmp_path / "b" / "manifest.json").read_text())["counts"]["totals"]
    assert f'data-count="read">{totals["read"]:,}<' in html and "<b>粗体</b>" not in html


@needs_browser
def test_eval_view_names_the_model_and_adapter(tmp_path):
    """results.json records them as objects (path and hashes): the page said `[object Object]`."""
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(json.dumps({"id": "q1", "prompt": "1+1=?", "reference": "2", "prediction": "2"}) + "\n",
                           encoding="utf-8")
    assert idata("score", predictions, "--out", tmp_path / "scored").returncode == 0
    results = tmp_path / "scored" / "results.json"
    data = json.loads(results.read_text())
    data.update(model={"name_or_path": "/models/tiny-llama", "architecture": "LlamaForCausalLM"},
                adapter={"path": "/runs/adapter", "adapter_config.json_sha256": "0" * 64})
    results.write_text(json.dumps(data))
    assert idata("view", tmp_path / "scored").returncode == 0
    html = dom(tmp_path / "scored" / "view.html")
    assert "[object Object]" not in html and "/models/tiny-llama" in html and "/runs/adapter" in html


def test_a_build_folder_with_its_view_is_still_idatas(build, tmp_path):
    """view.html is idata's: a new build into the folder replaces it with the rest."""
    folder = tmp_path / "b"
    sample = Path(__file__).resolve().parent.parent / "instruct_data" / "data" / "sample" / "collected.jsonl"
    assert idata("build", sample, "--out", folder).returncode == 0
    assert idata("view", folder).returncode == 0
    result = idata("build", sample, "--out", folder)
    assert result.returncode == 0, result.stderr
    assert not (folder / "view.html").exists()  # it showed the old build


def test_view_of_a_folder_it_cannot_show(tmp_path):
    result = idata("view", tmp_path)
    assert_one_line_error(result, 2, "neither a build folder")


def test_view_never_writes_over_a_file_it_did_not_write(build, tmp_path):
    """`--out` names a page: not a build file (train.jsonl), not a page of the user's."""
    train = build / "train.jsonl"
    before = train.read_bytes()
    assert_one_line_error(idata("view", build, "--out", train), 1, "give a .html path")
    assert train.read_bytes() == before
    mine = tmp_path / "notes.html"
    mine.write_text("<html><title>my notes</title></html>", encoding="utf-8")
    assert_one_line_error(idata("view", build, "--out", mine), 1, "was not written by idata view")
    assert mine.read_text(encoding="utf-8") == "<html><title>my notes</title></html>"
    page = tmp_path / "page.html"
    assert idata("view", build, "--out", page).returncode == 0
    again = idata("view", build, "--out", page)  # its own page is replaced
    assert again.returncode == 0, again.stderr
