"""raitner's own JSONL format: one ``Example.to_dict()`` per line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError, SchemaError
from raitner.io.files import text_lines
from raitner.schema import Example


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; a line that is not a JSON object
    raises ``DataFormatError`` naming the file and line. A byte-order mark opening the file (as
    some Windows tools write) is skipped; a ``.gz`` file is decompressed."""
    for number, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(
                path, number, f"expected a JSON object, got invalid JSON ({err.msg})"
            ) from None
        if not isinstance(record, dict):
            raise DataFormatError(
                path, number, f"expected a JSON object, got {type(record).__name__}"
            )
        yield number, record


def read_examples(path: str | Path) -> Iterator[Example]:
    """Read raitner JSONL (``{"id", "text", "lang", "entities": [{start,end,text,label}]}``)."""
    for number, record in iter_jsonl(path):
        missing = [key for key in ("id", "text", "lang") if key not in record]
        if missing:
            raise DataFormatError(
                path, number, f"expected keys id, text, lang; missing {', '.join(missing)}"
            )
        try:
            yield Example.from_dict(record)
        except (SchemaError, KeyError, TypeError, ValueError) as err:
            raise DataFormatError(path, number, f"invalid example: {err}") from None


def write_examples(path: str | Path, examples: Iterable[Example]) -> int:
    """Write examples atomically; returns how many were written."""
    count = 0
    with atomic_write(path) as handle:
        for example in examples:
            handle.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def complete_lines(path: str | Path) -> list[bytes]:
    """The complete lines (without their newline) of an append-only file such as a cache or a
    journal; a last line without its newline, cut off by a crash, is removed from the file."""
    path = Path(path)
    with path.open("rb") as handle:
        data = handle.read()
    *lines, torn = data.split(b"\n")
    if torn:
        with path.open("rb+") as handle:
            handle.truncate(len(data) - len(torn))
    return lines
