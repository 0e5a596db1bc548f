"""Build recipes: which sources, how much of each, cleaning, dedupe, split, template, seed.

    sources:
      - name: mine
        files: [data/mine.jsonl]          # any format the readers know
      - name: belle-1m
        belle: 1M                         # a Belle release (hub, or `from:` a local copy)
        cap: 20000                        # keep at most this many cleaned rows
    clean: {belle_blacklist: true, length: {min_instruction: 4}}
    dedupe: {near: true}
    split: {heldout: 200, by: category}
    template: seed
    seed: 0

A recipe is validated with pydantic: a wrong key is an error that names the key. YAML is
read with `yaml.safe_load`. Relative paths are resolved against the recipe's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from instruct_data.clean import CleanSettings
from instruct_data.dedupe import DedupeSettings
from instruct_data.errors import IdataError
from instruct_data.multiturn import MultiturnSettings
from instruct_data.split import SplitSettings
from instruct_data.templates import DEFAULT_TEMPLATE, TEMPLATES


class RecipeError(IdataError):
    """A recipe that cannot be used: bad YAML, a wrong key, a missing file, an unknown subset."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    """One input of a build: files you collected, or a Belle release."""

    name: str | None = Field(None, description="name in the ledger; defaults to the file name or belle-SUBSET")
    files: list[str] | None = Field(None, description="files, folders or globs, in any format the readers know")
    belle: str | None = Field(None, description="a Belle subset: 0.5M, 1M, 2M, 3.5M, multiturn, math, chat")
    from_: str | None = Field(None, alias="from", description="read a local copy of the Belle files (hub layout)")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit) of the Belle dataset")
    categories: str | None = Field(None, description="a file of row ids and their categories (`id`, `category`: "
                                   "BELLE-2's train_3.5M_CN_id2category.json), joined onto the rows by their own id")
    format: str | None = None
    map: dict[str, str] | None = None
    encoding: str = "utf-8"
    limit: int | None = Field(None, gt=0, description="read at most this many rows")
    cap: int | None = Field(None, gt=0, description="keep at most this many rows after cleaning (stops reading then)")
    weight: float | None = Field(None, gt=0, allow_inf_nan=False,
                                 description="share of the recipe's `total`, against the other weights")
    max_reject_rate: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        from instruct_data.io import check_encoding

        return check_encoding(value)

    @model_validator(mode="after")
    def _one_kind(self) -> "Source":
        if (self.files is None) == (self.belle is None):
            raise ValueError("a source names either `files` or `belle`")
        if self.files is not None and not self.files:
            raise ValueError("`files` is empty")
        if self.belle is None and (self.from_ or self.revision):
            raise ValueError("`from` and `revision` apply to a `belle` source")
        if self.cap is not None and self.weight is not None:
            raise ValueError("give a source a `cap` or a `weight`, not both")
        if self.belle is not None:
            from instruct_data.hub import SUBSETS

            if self.belle not in SUBSETS:
                raise ValueError(f"unknown Belle subset {self.belle!r} (known: {', '.join(SUBSETS)})")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.belle:
            return f"belle-{self.belle}"
        from instruct_data.ledger import source_name

        return source_name(Path(self.files[0]))


def weighted_shares(total: int, weights: dict[str, float]) -> dict[str, int]:
    """`total` shared out by weight so that the shares add up to it: largest remainders (ties
    by name), and a row at least for each. (Rounded one by one they missed it: two equal
    weights of `total: 3` made 4 rows, weights 1/2/1 of 1001 made 1000.)"""
    whole = sum(weights.values())
    exact = {name: total * weight / whole for name, weight in weights.items()}
    shares = {name: int(value) for name, value in exact.items()}
    leftover = total - sum(shares.values())
    for name in sorted(exact, key=lambda name: (-(exact[name] - shares[name]), name))[:leftover]:
        shares[name] += 1
    for name in sorted(name for name, share in shares.items() if share == 0):
        shares[max(shares, key=lambda other: (shares[other], other))] -= 1  # from the largest share
        shares[name] = 1
    return shares


class Recipe(_Strict):
    sources: list[Source] = Field(min_length=1)
    total: int | None = Field(None, gt=0, description="rows of the mix, shared out by the sources' weights")
    clean: CleanSettings = Field(default_factory=CleanSettings)
    dedupe: DedupeSettings = Field(default_factory=DedupeSettings)
    multiturn: MultiturnSettings = Field(default_factory=MultiturnSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    against: list[str] = Field(default_factory=list, description="benchmark files: training rows whose prompt "
                               "duplicates one of their questions are removed (contamination)")
    template: str = DEFAULT_TEMPLATE
    system: str | None = None
    seed: int = 0
    max_reject_rate: float = Field(0.5, ge=0, le=1, allow_inf_nan=False)
    strict: bool = False

    @field_validator("template")
    @classmethod
    def _known_template(cls, value: str) -> str:
        if value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r} (known: {', '.join(TEMPLATES)})")
        return value

    @model_validator(mode="after")
    def _names_and_weights(self) -> "Recipe":
        labels = [s.label for s in self.sources]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(f"two sources share the name {repeated[0]!r}: give them distinct `name`s")
        weighted = [s for s in self.sources if s.weight is not None]
        if weighted and self.total is None:
            raise ValueError("sources have a `weight` but the recipe has no `total` to share out")
        if self.total is not None and not weighted:
            raise ValueError("`total` needs at least one source with a `weight`")
        if self.total is not None and self.total < len(weighted):
            raise ValueError(f"`total` {self.total} is less than the {len(weighted)} sources with a `weight`: "
                             "each gets a row at least")
        return self

    def caps(self) -> dict[str, int | None]:
        """Source name -> the most rows it may keep: its cap, or its weighted share of `total`."""
        weighted = {s.label: s.weight for s in self.sources if s.weight is not None}
        shares = weighted_shares(self.total, weighted) if weighted else {}
        return {s.label: shares.get(s.label, s.cap) for s in self.sources}

    def resolved(self) -> dict[str, Any]:
        """The full recipe with every default filled in: recorded in the manifest."""
        return self.model_dump(mode="json", by_alias=True)


def _format_error(error: ValidationError, where: str, lines: dict[tuple, int] | None = None) -> str:
    """`where[:line]: key.path: what is wrong`, each error; the line of the first, where known
    (`lines`: the YAML line of each key path), and for an unknown key the known ones it is close to."""
    parts, first_line = [], None
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key {str(item['loc'][-1])!r}{_did_you_mean(item['loc'])}"
        parts.append(f"{loc}: {message}" if loc else message)
        if first_line is None and lines:
            first_line = _line_of(tuple(item["loc"]), lines)
    return f"{where}{'' if first_line is None else f':{first_line}'}: " + "; ".join(parts)


def _did_you_mean(loc: tuple) -> str:
    """' (did you mean 'garbled'?)': the keys the model at loc's parent knows that look alike,
    else where a key of that name belongs (' (it belongs under split:)')."""
    import difflib

    close = difflib.get_close_matches(str(loc[-1]), _keys_at(Recipe, loc[:-1]), n=2, cutoff=0.6)
    if close:
        return f" (did you mean {' or '.join(repr(k) for k in close)}?)"
    homes = _homes(Recipe, str(loc[-1]))
    return f" (it belongs under {' or '.join(f'{h}:' for h in homes)})" if homes else ""


def _keys_at(model: Any, loc: tuple) -> list[str]:
    """The keys (aliases where set) of the pydantic model found by following `loc` from `model`
    through fields, list items, dict values and optional types; [] where none is found."""
    annotation = model
    for part in loc:
        if isinstance(part, int):  # a list item: _unwrap took the list's item type with its field
            continue
        field = _field(annotation, str(part))
        if field is None:
            return []
        annotation = _unwrap(field.annotation)
    return _keys(annotation)


def _homes(model: Any, key: str, path: str = "", depth: int = 0) -> list[str]:
    """The dotted paths of the models under `model` that have a key `key`."""
    found = [path] if path and key in _keys(model) else []
    if depth < 3:
        for name, field in (model.model_fields.items() if _keys(model) else ()):
            inner = _unwrap(field.annotation)
            if _keys(inner):
                found += _homes(inner, key, f"{path}.{field.alias or name}".lstrip("."), depth + 1)
    return found


def _field(model: Any, key: str):
    if not _keys(model):
        return None
    return model.model_fields.get(key) or next((f for f in model.model_fields.values() if f.alias == key), None)


def _keys(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """list[X], dict[str, X] and X | None down to X (a model, where one is among a union's types)."""
    import typing

    for _ in range(3):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not args or typing.get_origin(annotation) is None:
            break
        models = [a for a in args if _keys(a)]
        annotation = models[0] if models else args[-1]
    return annotation


def _line_of(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The YAML line of the deepest part of `loc` that the file has (a missing key: its parent's)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _key_lines(node: Any, path: tuple = (), seen: frozenset = frozenset()) -> dict[tuple, int]:
    """{key path: 1-based line} of every mapping key and list item of a composed YAML node (a
    node an alias repeats inside itself is not followed again)."""
    import yaml

    lines: dict[tuple, int] = {}
    if id(node) in seen:
        return lines
    seen = seen | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            here = (*path, key.value)
            lines[here] = key.start_mark.line + 1
            lines.update(_key_lines(value, here, seen))
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            lines[(*path, index)] = value.start_mark.line + 1
            lines.update(_key_lines(value, (*path, index), seen))
    return lines


def parse_recipe(data: Any, where: str = "recipe") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(_format_error(exc, where)) from None


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and validate a YAML recipe; relative file paths are taken from its folder."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping with a `sources:` list")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:  # (composed again only now, for the lines of the keys at fault)
        raise RecipeError(_format_error(exc, str(path), _key_lines(yaml.compose(text, Loader=yaml.SafeLoader)))) from None
    base = path.resolve().parent

    def local(value: str, key: str) -> str:
        return value if os.path.isabs(value) else _inside(base, value, f"{path}: {key}")

    recipe.against = [local(f, "against") for f in recipe.against]
    for n, source in enumerate(recipe.sources):
        if source.files:
            source.files = [local(f, f"sources.{n}.files") for f in source.files]
        if source.from_:
            source.from_ = local(source.from_, f"sources.{n}.from")
        if source.categories:
            source.categories = local(source.categories, f"sources.{n}.categories")
    return recipe


def _inside(base: Path, relative: str, where: str) -> str:
    """A relative path of a recipe, taken from the recipe's folder and kept inside it: a recipe
    someone hands you reads its own files, not `../../` anything (an absolute path is explicit)."""
    joined = os.path.normpath(os.path.join(base, relative))
    if relative.startswith("~") or os.path.commonpath([str(base), joined]) != str(base):
        raise RecipeError(f"{where}: {relative} is outside the recipe's folder {base}; move the file under it, "
                          "or give its absolute path")
    return joined
