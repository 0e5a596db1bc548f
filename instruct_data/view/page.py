"""Write view.html for a build folder (manifest.json of `idata build`) or an evaluation folder
(results.json and predictions.jsonl of `idata eval` / `idata score`)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from instruct_data.errors import InputError
from instruct_data.io import atomic_path

# Chinese first, in the order systems have them: WenQuanYi (`make fonts`), Noto CJK, macOS, Windows.
FONT_STACK = ('"WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", '
              '"Microsoft YaHei", sans-serif')
MAX_ITEMS = 20_000  # rejects, pairs or items embedded per page; the files hold the rest


PAGE_MARK = "<title>idata view:"  # in the head of every page render() writes


def write_view(folder: str | Path, out: str | Path | None = None, max_items: int = MAX_ITEMS) -> Path:
    """view.html for `folder` (beside its report.md unless `out`); returns its path."""
    from instruct_data.outputs_guard import output_lock

    folder = Path(folder)
    target = Path(out) if out else folder / "view.html"
    _refuse_foreign(target)
    with output_lock(folder):  # the lock a build into FOLDER holds: never a page of a half-swapped build
        data = _page_data(folder, max_items)
        with atomic_path(target) as tmp:
            tmp.write_text(render(data), encoding="utf-8")
    return target


def _refuse_foreign(target: Path) -> None:
    """--out names a page, never a file of the build (train.jsonl) or of the user."""
    from instruct_data.outputs_guard import OutputError

    if target.suffix.lower() not in (".html", ".htm"):
        raise OutputError(f"--out {target}: give a .html path for the page")
    if target.is_dir():
        raise OutputError(f"--out {target} is a folder, not a file")
    if target.exists():
        with open(target, encoding="utf-8", errors="replace") as handle:
            head = handle.read(4096)
        if PAGE_MARK not in head:
            raise OutputError(f"--out {target} exists and was not written by idata view; give another path")


def _page_data(folder: Path, max_items: int) -> dict:
    if (folder / "manifest.json").is_file() and _json(folder / "manifest.json").get("command") == "build":
        from instruct_data.view.build_data import build_data

        return build_data(folder, _json(folder / "manifest.json"), max_items)
    if (folder / "predictions.jsonl").is_file() and (folder / "results.json").is_file():
        from instruct_data.view.eval_data import eval_data

        return eval_data(folder, _json(folder / "results.json"), max_items)
    raise InputError(str(folder), "neither a build folder (manifest.json of idata build) nor an evaluation "
                                  "folder (results.json and predictions.jsonl of idata eval)")


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(str(path), f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), "not a JSON object")
    return data


def render(data: dict) -> str:
    """The page: the template with the data embedded as JSON (every `<` written `\\u003c`, so no
    text can end the script element or, with `<!--<script>`, send the parser into the state
    where the data swallows the page's own script) and every other value escaped by jinja2."""
    import jinja2
    from markupsafe import Markup

    template = resources.files("instruct_data").joinpath("data/view/page.html").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True)
    data_json = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return env.from_string(template).render(title=data.get("title", ""), font_stack=Markup(FONT_STACK),
                                            data_json=Markup(data_json))
