"""The ledger: every row read is written, rejected with a reason, or removed as a duplicate.

    ledger = Ledger(out_dir, command="convert", parameters={...})
    ledger.add_input(path, fmt="alpaca", source="mine")
    ledger.read("mine")
    ledger.outcome("mine", Reject("read", "empty_reply", "the reply is empty", origin, raw), strict=strict)
    ledger.outcome("mine", Written())
    ledger.finish(outputs=[...])   # rejects.jsonl, duplicates.jsonl, manifest.json

`outcome` is the one step every command takes for what became of a row: written, rejected
(with its reason) or removed (a duplicate); `--strict` means the same in each command there.

Rejects and duplicates stream to temporary files that appear only when the run finishes.
"""

from __future__ import annotations

import platform
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from instruct_data import __version__
from instruct_data.errors import RejectRateError, StrictModeError
from instruct_data.io import SUPPORTED_SUFFIXES, JsonlWriter, file_sha256, write_json
from instruct_data.redact import redact_argv
from instruct_data.schema import Origin
from instruct_data.table import Reject  # the one reject type (table.py), also imported from here

REPORTED_PACKAGES = ("pydantic", "pandas", "datasets", "opencc-python-reimplemented", "rensa", "datasketch",
                     "transformers", "peft", "torch", "accelerate", "tokenizers")


def package_versions(names=REPORTED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version(), "instruct-data": __version__}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


DEDUPING_COMMANDS = {"build", "dedupe", "to-multiturn"}
# The stages whose rejects --strict turns into an error: a row that cannot be read as a record
# (or rows that cannot form one dialogue). Cleaning and budget rejects are decisions about
# good rows, not errors in the file, in every command alike.
STRICT_STAGES = frozenset({"read", "group"})


@dataclass(frozen=True)
class Written:
    """n rows written."""

    n: int = 1


@dataclass(frozen=True)
class Removed:
    """A record removed by dedupe (a dedupe.Removal) with the row it came from. `whole_row`:
    the row counts as removed (False for a further record of the same row, or one of several
    records of a row that still writes others)."""

    removal: Any
    origin: Any = None
    raw: Any = None
    whole_row: bool = True


def source_name(path: Path) -> str:
    """`data/mine.jsonl.gz` -> `mine`; `train_3.5M_CN.json` -> `train_3.5M_CN` (only the file
    type is taken off, not every dot)."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    stem, dot, suffix = name.rpartition(".")
    return (stem if dot and f".{suffix.lower()}" in SUPPORTED_SUFFIXES else name) or path.name


LEDGER_NAMES = ("rejects.jsonl", "duplicates.jsonl", "manifest.json")


def ledger_prefix(out: Path) -> str:
    """What the ledger files beside an output file start with: `train.zh.jsonl` -> `train.zh.`
    (source_name: only the file type is taken off, so `a.v1.jsonl` and `a.v2.jsonl` keep apart)."""
    return f"{source_name(out)}."


def ledger_paths(out: Path) -> list[Path]:
    """The ledger files `idata convert` (and `idata export --to openai`) write beside the output
    file `out`: OUT-STEM.rejects.jsonl, OUT-STEM.duplicates.jsonl, OUT-STEM.manifest.json. Every
    reader of them (the output guard, training's recorded template) asks here."""
    return [out.with_name(ledger_prefix(out) + name) for name in LEDGER_NAMES]


def source_names(files: list[Path]) -> list[str]:
    """One source name per file; files that share a name get their folder too (`a/x`, `b/x`),
    so row ids (`source:line`) stay unique and stable."""
    names = [source_name(path) for path in files]
    clashes = {name for name in names if names.count(name) > 1}
    result = []
    for path, name in zip(files, names):
        if name in clashes:
            parent = path.parent.name or "."
            name = f"{parent}/{name}"
        result.append(name)
    # A name still shared (the same file given twice, or a/x and c/a/x) gets a counter.
    seen: dict[str, int] = {}
    unique = []
    for name in result:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


class LedgerImbalance(AssertionError):
    """read != written + rejected + removed: a bug, never a user error."""


class OwnIds:
    """Rows' own `id` fields: ids are positions (never collide), so a repeated own id drops
    nothing; it is counted and shown, since it often means a file was concatenated twice."""

    EXAMPLES = 5

    def __init__(self) -> None:
        self.rows = 0
        self.repeated = 0
        self.examples: list[dict[str, str]] = []
        self._seen: set[int] = set()  # 64-bit hashes: a set of the texts would cost far more

    def add(self, own_id: str, row_id: str) -> None:
        import xxhash

        key = xxhash.xxh64_intdigest(own_id.encode("utf-8"))
        self.rows += 1
        if key not in self._seen:
            self._seen.add(key)
            return
        self.repeated += 1
        if len(self.examples) < self.EXAMPLES:
            self.examples.append({"own_id": own_id, "row": row_id})

    def add_counted(self, rows: int, repeated: int, examples: list[dict[str, str]]) -> None:
        """Counts taken elsewhere (the Ray engine's shuffle on the own id): `examples`, the
        first repeats in input order."""
        self.rows += rows
        self.repeated += repeated
        self.examples = (self.examples + examples)[:self.EXAMPLES]

    def summary(self) -> dict[str, Any] | None:
        if not self.rows:
            return None
        return {"rows_with_own_id": self.rows, "rows_repeating_an_earlier_own_id": self.repeated,
                "examples": self.examples}


class Ledger:
    def __init__(self, out_dir: str | Path, *, command: str, parameters: dict[str, Any] | None = None,
                 timestamp: bool = False, prefix: str = ""):
        """`prefix` names the ledger files after one output file (`train.` -> train.manifest.json)."""
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.command = command
        self.parameters = parameters or {}
        # A timestamp would break byte-identical rebuilds, so it is opt-in.
        self.timestamp = timestamp
        self.inputs: list[dict[str, Any]] = []
        self.counts: dict[str, Counter] = defaultdict(Counter)  # source -> read/written/rejected/removed
        self.reasons: dict[str, Counter] = defaultdict(Counter)  # "stage/reason" -> per source
        self.duplicate_methods: Counter = Counter()
        self.changed: Counter = Counter()  # normalizer -> rows changed
        self.own_ids = OwnIds()
        self.first_reject: dict[str, str] = {}  # source -> its first reject, `file:line: reason: detail`
        self.extra: dict[str, Any] = {}
        self._rejects = JsonlWriter(self.out_dir / f"{prefix}rejects.jsonl")
        self._duplicates = JsonlWriter(self.out_dir / f"{prefix}duplicates.jsonl")

    # -------------------------------------------------------------- counting
    def add_input(self, path: str | Path, **info: Any) -> None:
        path = Path(path)
        entry = {"path": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size}
        entry.update(info)
        self.inputs.append(entry)

    def add_remote_input(self, **info: Any) -> None:
        self.inputs.append(info)

    def outcome(self, source: str, outcome: Written | Reject | Removed, *, strict: bool = False) -> None:
        """What became of a row of `source` (it was counted by `read`). With `strict`, a reject at
        a STRICT_STAGES stage is an error naming the row (`file:line: reason: detail (--strict)`)."""
        if isinstance(outcome, Written):
            self.written(source, outcome.n)
        elif isinstance(outcome, Reject):
            if strict and outcome.stage in STRICT_STAGES:
                raise StrictModeError(f"{outcome} (--strict)")
            self.reject(outcome.stage, outcome.reason, outcome.detail, outcome.origin, outcome.raw, source=source,
                        row_id=outcome.row_id)
            self.first_reject.setdefault(source, str(outcome))
        else:
            r = outcome.removal
            self.duplicate(row_id=r.id, duplicate_of=r.duplicate_of, method=r.method, similarity=r.similarity,
                           source=source, origin=outcome.origin, cluster=r.cluster, raw=outcome.raw,
                           whole_row=outcome.whole_row)

    def check_reject_rate(self, source: str, limit: float) -> None:
        """Fail when too many of a source's rows were rejected: almost always a wrong format or
        map. The message leads with the first rejected row, so the user sees a real one, and
        names the commonest reasons."""
        rate = self.reject_rate(source)
        if rate <= limit:
            return
        counts = self.counts[source]
        first = self.first_reject.get(source)
        lead = f"{first}; " if first else f"{source}: "
        reasons = sorted(((per.get(source, 0), reason) for reason, per in self.reasons.items()), reverse=True)
        top = ", ".join(f"{reason} {n:,}" for n, reason in reasons[:3] if n)
        # A tool dialogue's checks (formats/tools.py) fail on the data, not on a wrong format.
        from instruct_data.formats.tools import TOOL_REJECTS

        tool_checks = reasons and reasons[0][1].rpartition("/")[2] in TOOL_REJECTS
        advice = ("the rows were read; their tool calls fail the checks (docs/tools.md)" if tool_checks
                  else "check --format and --map")
        raise RejectRateError(
            f"{lead}{counts['rejected']} of {counts['read']} rows of {source} rejected "
            f"({rate:.0%} > {limit:.0%}); {advice}, or raise --max-reject-rate (most rejected: {top})"
        )

    def read(self, source: str, n: int = 1) -> None:
        self.counts[source]["read"] += n

    def written(self, source: str, n: int = 1) -> None:
        self.counts[source]["written"] += n

    def reject(self, stage: str, reason: str, detail: str, origin: Origin | None, raw: Any, *, source: str,
               row_id: str | None = None) -> None:
        self.counts[source]["rejected"] += 1
        self.reasons[f"{stage}/{reason}"][source] += 1
        self._rejects.write({
            "stage": stage,
            "reason": reason,
            "detail": detail,
            "origin": str(origin) if origin is not None else None,
            "source": source,
            "id": row_id,
            "raw": raw,
        })

    def duplicate(self, *, row_id: str, duplicate_of: str, method: str, similarity: float, source: str,
                  origin: Origin | None = None, cluster: str | None = None, raw: Any = None,
                  whole_row: bool = True) -> None:
        """A removed record. `whole_row=False`: one of several records of a row (a dialogue's
        reply in every-turn mode) that is still written, or that is counted removed once."""
        if whole_row:
            self.counts[source]["removed"] += 1
        self.duplicate_methods[method] += 1
        self._duplicates.write({
            "id": row_id,
            "duplicate_of": duplicate_of,
            "cluster": cluster or duplicate_of,
            "method": method,
            "similarity": round(float(similarity), 4),
            "source": source,
            "origin": str(origin) if origin is not None else None,
            "raw": raw,
        })

    def note_own_id(self, own_id: str | None, row_id: str) -> None:
        """A row's own `id` field (see OwnIds)."""
        if own_id is not None:
            self.own_ids.add(own_id, row_id)

    def note_changed(self, rule: str, n: int = 1) -> None:
        self.changed[rule] += n

    # -------------------------------------------------------------- totals
    def totals(self) -> dict[str, int]:
        total = Counter()
        for counts in self.counts.values():
            total.update(counts)
        return {key: total.get(key, 0) for key in ("read", "written", "rejected", "removed")}

    def balanced(self) -> bool:
        for counts in list(self.counts.values()) + [Counter(self.totals())]:
            if counts["read"] != counts["written"] + counts["rejected"] + counts["removed"]:
                return False
        return True

    def reject_rate(self, source: str | None = None) -> float:
        counts = self.counts[source] if source else Counter(self.totals())
        return counts["rejected"] / counts["read"] if counts["read"] else 0.0

    def summary(self) -> dict[str, Any]:
        per_source = {
            source: {key: counts.get(key, 0) for key in ("read", "written", "rejected", "removed")}
            for source, counts in sorted(self.counts.items())
        }
        own_ids = self.own_ids.summary()
        return {
            "totals": self.totals(),
            "balanced": self.balanced(),
            **({"own_ids": own_ids} if own_ids else {}),
            "per_source": per_source,
            "rejects_by_stage": self._rejects_by_stage(),
            "rejects_by_reason": {k: dict(sorted(v.items())) for k, v in sorted(self.reasons.items())},
            "duplicates_by_method": dict(sorted(self.duplicate_methods.items())),
            **self._changes(),
        }

    def _changes(self) -> dict[str, dict[str, int]]:
        """The cleaner's notes, apart: rows changed per rule, rounds cut from dialogues per rule
        (`turns_cut.RULE`), and masks made per kind (`pii.KIND`)."""
        plain, cut, masks = {}, {}, {}
        for name, n in sorted(self.changed.items()):
            if name.startswith("turns_cut."):
                cut[name.split(".", 1)[1]] = n
            elif name.startswith("pii."):
                masks[name.split(".", 1)[1]] = n
            else:
                plain[name] = n
        return {"rows_changed_by_normalizer": plain, "turns_cut_by_rule": cut, "pii_masks_by_kind": masks}

    def _rejects_by_stage(self) -> dict[str, dict[str, int]]:
        """{"read": {"mine": 3}, "clean": {...}}: the reasons' counts summed per stage."""
        stages: dict[str, Counter] = defaultdict(Counter)
        for key, per_source in self.reasons.items():
            stages[key.split("/", 1)[0]].update(per_source)
        return {stage: dict(sorted(counts.items())) for stage, counts in sorted(stages.items())}

    # -------------------------------------------------------------- closing
    def finish(self, outputs: list[str | Path] = ()) -> dict[str, Any]:
        """Write rejects.jsonl, duplicates.jsonl and manifest.json; return the manifest."""
        if not self.balanced():
            self.abort()
            raise LedgerImbalance(f"ledger does not add up: {self.summary()}")
        written = [self._rejects.commit()]
        # duplicates.jsonl only where the command removes duplicates (or removed some).
        if self.duplicate_methods or self.command in DEDUPING_COMMANDS:
            written.append(self._duplicates.commit())
        else:
            self._duplicates.abort()
        manifest = {
            "command": self.command,
            "idata_version": __version__,
            "argv": redact_argv(sys.argv[1:]) if self.timestamp else None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds") if self.timestamp else None,
            "parameters": self.parameters,
            "versions": package_versions(),
            "inputs": self.inputs,
            "counts": self.summary(),
            "check": "read = written + rejected + removed",
            **self.extra,
            "outputs": [
                {"path": Path(p).name, "sha256": file_sha256(p), "bytes": Path(p).stat().st_size}
                for p in [*outputs, *written]
            ],
        }
        manifest = {k: v for k, v in manifest.items() if v is not None}
        write_json(self.out_dir / f"{self.prefix}manifest.json", manifest)
        return manifest

    def abort(self) -> None:
        self._rejects.abort()
        self._duplicates.abort()
