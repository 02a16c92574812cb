"""Plumbing shared by the Chinese readers (``zh_*`` modules).

* :func:`iter_lines` yields ``(1-based line number, line)`` with the line terminator (LF or
  CRLF) removed, a leading UTF-8 BOM dropped, ``.gz`` files opened transparently, and every
  line decoded on its own so that a bad byte is reported with its exact line.
  CESU-8 (UTF-16 surrogates encoded one by one, as in Weibo NER v1) is accepted: a pair on
  one line becomes the real character; lone surrogate halves are kept (the char-per-line
  reader pairs them across lines) or replaced by U+FFFD.
* :func:`iter_json_records` yields ``(line, record)`` from a JSON Lines file or from a file
  holding one top-level JSON array, whichever the file is, so that every record error can
  name the line the record starts on (also what the Label Studio reader, ``predict`` and
  ``distill`` read ``.json`` files with).
* :func:`build_example` turns schema violations into :class:`DataFormatError` with the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raitner.errors import DataFormatError, SchemaError
from raitner.io.files import binary_lines
from raitner.io.stats import ReadStats
from raitner.schema import Entity, Example

_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_WS = re.compile(r"[ \t\n\r]*")
REPLACEMENT = "\ufffd"


def merge_surrogates(text: str) -> str:
    """Join UTF-16 surrogate pairs into the characters they encode; lone halves stay."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def replace_lone_surrogates(text: str) -> str:
    return _SURROGATE.sub(REPLACEMENT, text)


def decode_line(path: str | Path, number: int, raw: bytes, *, keep_lone_surrogates: bool) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, number, f"expected UTF-8 text, got undecodable byte(s) at byte {err.start + 1}"
        ) from None
    text = merge_surrogates(text)
    return text if keep_lone_surrogates else replace_lone_surrogates(text)


def iter_lines(
    path: str | Path, *, keep_lone_surrogates: bool = False
) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for every line of a UTF-8 (optionally gzipped) text file."""
    for number, raw in enumerate(binary_lines(path), start=1):
        line = decode_line(path, number, raw, keep_lone_surrogates=keep_lone_surrogates)
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield number, line.rstrip("\r\n")


def _first_significant_char(path: str | Path) -> str:
    for _, line in iter_lines(path):
        stripped = line.strip()
        if stripped:
            return stripped[0]
    return ""


def iter_json_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` for each record of a JSON Lines file or of a top-level JSON array."""
    if _first_significant_char(path) == "[":
        yield from _iter_json_array(path)
        return
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, strict=False)
        except json.JSONDecodeError as err:
            raise DataFormatError(
                path,
                number,
                f"expected one JSON value per line (JSON Lines), got invalid JSON ({err.msg})",
            ) from None


def _iter_json_array(path: str | Path) -> Iterator[tuple[int, Any]]:
    data = b"".join(binary_lines(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataFormatError(path, line, "expected UTF-8 text, got undecodable byte(s)") from None
    decoder = json.JSONDecoder(strict=False)
    line = 1
    counted = 0

    def line_at(index: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, index)
        counted = index
        return line

    index = _JSON_WS.match(text, 0).end()
    if not text.startswith("[", index):
        raise DataFormatError(path, line_at(index), "expected a JSON array '['")
    index = _JSON_WS.match(text, index + 1).end()
    if text.startswith("]", index):
        index += 1
    else:
        while True:
            start_line = line_at(index)
            try:
                value, end = decoder.raw_decode(text, index)
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    path,
                    err.lineno,
                    f"expected a JSON value in the array, got invalid JSON ({err.msg})",
                ) from None
            yield start_line, value
            index = _JSON_WS.match(text, end).end()
            if text.startswith(",", index):
                index = _JSON_WS.match(text, index + 1).end()
                continue
            if text.startswith("]", index):
                index += 1
                break
            raise DataFormatError(
                path, line_at(index), "expected ',' or ']' after an array element"
            )
    index = _JSON_WS.match(text, index).end()
    if index != len(text):
        raise DataFormatError(path, line_at(index), "expected nothing after the closing ']'")


def require(path: str | Path, line: int, record: Any, key: str, kind: type, what: str) -> Any:
    """``record[key]`` if ``record`` is an object holding a ``kind`` there, else a format error."""
    if not isinstance(record, dict):
        raise DataFormatError(
            path, line, f"expected a JSON object ({what}), got {type(record).__name__}"
        )
    if key not in record:
        raise DataFormatError(
            path, line, f"expected key {key!r} ({what}); keys are {sorted(record)}"
        )
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataFormatError(
            path,
            line,
            f"expected {key!r} to be {kind.__name__} ({what}), got {type(value).__name__}",
        )
    return value


def build_example(
    path: str | Path,
    line: int,
    *,
    id: str,
    text: str,
    lang: str,
    entities: list[Entity] | list[tuple[int, int, str]],
    stats: ReadStats | None,
    meta: dict[str, Any] | None = None,
) -> Example:
    """An Example (entities as Entity or ``(start, end, label)``); bad spans → DataFormatError."""
    try:
        built = [
            e if isinstance(e, Entity) else Entity(e[0], e[1], text[e[0] : e[1]], e[2])
            for e in entities
        ]
        example = Example(id=id, text=text, lang=lang, entities=built, meta=meta or {})
    except SchemaError as err:
        raise DataFormatError(path, line, f"expected entity spans inside the text: {err}") from None
    if stats is not None:
        stats.examples += 1
        stats.entities += len(example.entities)
    return example
