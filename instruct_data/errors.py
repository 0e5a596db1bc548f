"""Errors a user sees: each one names the file and line and says what is wrong."""

from __future__ import annotations


class IdataError(Exception):
    """An error the CLI reports as one line (no traceback) with a non-zero exit."""

    exit_code = 2


class InputError(IdataError):
    """A file that cannot be read at all: missing, wrong format, undecodable, nothing parses."""

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # pickled by a worker process: rebuilt from its own three arguments
        return type(self), (self.path, self.message, self.line), self.__dict__


class RejectRateError(IdataError):
    """Too many rows rejected: almost always a wrong --format or --map."""

    exit_code = 3


class StrictModeError(IdataError):
    """--strict and a bad row."""

    exit_code = 3
