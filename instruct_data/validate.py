"""`idata validate`: check files against their format, row by row, without writing anything."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from instruct_data.errors import InputError
from instruct_data.formats import read_conversations
from instruct_data.io import expand_inputs
from instruct_data.table import Reject

MAX_LISTED_ERRORS = 20


@dataclass
class FileReport:
    path: str
    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)  # the column mapping used (--map or aliases)
    unused_columns: list[str] = field(default_factory=list)  # non-empty columns no field reads
    rows: int = 0
    valid: int = 0
    invalid_by_reason: Counter = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)  # first errors, with file:line
    file_error: str | None = None  # the whole file could not be read

    @property
    def invalid(self) -> int:
        return self.rows - self.valid

    @property
    def ok(self) -> bool:
        return self.file_error is None and self.invalid == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "format": self.format, "map": self.mapping, "unused_columns": self.unused_columns,
            "rows": self.rows, "valid": self.valid,
            "invalid": self.invalid, "invalid_by_reason": dict(sorted(self.invalid_by_reason.items())),
            "errors": self.errors, "file_error": self.file_error, "ok": self.ok,
        }


def validate_file(path: str, *, fmt: str | None = None, mapping: dict[str, str] | None = None,
                  encoding: str = "utf-8", max_errors: int = MAX_LISTED_ERRORS) -> FileReport:
    report = FileReport(path=path)
    info: dict[str, Any] = {}
    try:
        report.format, stream = read_conversations(path, fmt=fmt, source="validate", mapping=mapping,
                                                   encoding=encoding, info=info)
        report.mapping = info["map"]
        report.unused_columns = info["unused_columns"]
        for row, result in stream:
            report.rows += 1
            if isinstance(result, Reject):
                report.invalid_by_reason[result.reason] += 1
                if len(report.errors) < max_errors:
                    report.errors.append({"where": str(row.origin), "line": row.origin.line, "row": row.origin.row,
                                          "reason": result.reason, "detail": result.detail})
            else:
                report.valid += 1
    except InputError as exc:
        report.file_error = str(exc)
    return report


def validate(inputs: list[str], **options: Any) -> list[FileReport]:
    reports = []
    for item in inputs:
        try:
            files = expand_inputs([item])
        except InputError as exc:
            reports.append(FileReport(path=item, file_error=str(exc)))
            continue
        reports.extend(validate_file(str(path), **options) for path in files)
    return reports
