"""Errors that name what went wrong, where, and what was expected."""

from __future__ import annotations

from pathlib import Path


class RaitnerError(Exception):
    """Base class for every error raitner raises on purpose."""


class RowNumber(int):
    """The 1-based row of a table (a Parquet file), for errors to name instead of a line."""


class DataFormatError(RaitnerError, ValueError):
    """A data file does not have the format its reader expects.

    The message names the file, the 1-based line (when there is one; a :class:`RowNumber`
    reads as ``file, row n``) and what was expected.
    """

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.detail = message
        where = self.path or "<input>"
        if isinstance(line, RowNumber):
            where = f"{where}, row {line}"
        elif line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class SchemaError(RaitnerError, ValueError):
    """An Example or Entity violates the record's invariants."""


class UnknownNameError(RaitnerError, KeyError):
    """A name (benchmark, template, strategy ...) is not among the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:
        return self.args[0]


class ModelLoadError(RaitnerError, OSError):
    """A model (or its tokenizer) named by the user cannot be loaded.

    The message names the model as given and says whether it was taken for a local folder or a
    Hugging Face model id; the loader's own error is chained as the cause.
    """
