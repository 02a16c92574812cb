"""Inline entity markup ``{{type:mention}}``: the raw Boson corpus (hugbert ``origindata.txt``,
one document a line, 2000 documents; the same documents as the RA-IT Boson split).

The markup is removed and entities are given offsets into the clean text. The type is the
ASCII identifier before the first ``:`` (mentions may themselves contain ``:``). Markup can
nest; three documents mark every mention twice (``{{time:{{time:本周}}}}``): an inner entity
with the same span and type as its outer one is dropped and counted in
``ReadStats.skipped["duplicate nested markup"]``, while inner entities of another span or type
are kept (outer first). Empty mentions (``{{time:}}``) are dropped and counted as
``"empty mention"``. A ``{{`` that is not followed by ``type:`` and a ``}}`` with nothing
open are ordinary text. Spaces inside the markup belong to the mention (``{{person_name:
施宇翔}}``), as in the authors' data.

Documents contain literal ``\\n`` (backslash, n) escapes; they are kept as they are, like the
RA-IT jsonl keeps them, unless ``unescape_newlines=True`` turns each into a real newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from raitner.errors import DataFormatError
from raitner.io.stats import ReadStats
from raitner.io.zh_common import build_example, iter_lines
from raitner.schema import Entity, Example

_MARK = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*):|\}\}")


def parse_markup(
    line: str, *, unescape_newlines: bool = False
) -> tuple[str, list[tuple[int, int, str]], dict[str, int], int | None]:
    """``(clean text, spans in opening order, skip counts, column of an unclosed '{{')``."""
    pieces: list[str] = []
    length = 0
    opened: list[tuple[int, str, int, int]] = []  # (clean start, type, column, order)
    closed: list[tuple[int, int, int, str]] = []  # (order, start, end, type)
    skipped: dict[str, int] = {}
    cursor = 0
    order = 0

    def emit(fragment: str) -> None:
        nonlocal length
        if unescape_newlines:
            fragment = fragment.replace("\\n", "\n")
        pieces.append(fragment)
        length += len(fragment)

    for match in _MARK.finditer(line):
        if match.group(1) is None and not opened:
            continue  # a stray '}}' is text
        emit(line[cursor : match.start()])
        cursor = match.end()
        if match.group(1) is not None:
            opened.append((length, match.group(1), match.start() + 1, order))
            order += 1
            continue
        start, label, _, rank = opened.pop()
        if start == length:
            skipped["empty mention"] = skipped.get("empty mention", 0) + 1
        elif closed and closed[-1][1:] == (start, length, label):
            skipped["duplicate nested markup"] = skipped.get("duplicate nested markup", 0) + 1
            closed[-1] = (rank, start, length, label)  # keep one, at the outer one's rank
        else:
            closed.append((rank, start, length, label))
    emit(line[cursor:])
    unclosed = opened[0][2] if opened else None
    spans = [(start, end, label) for _, start, end, label in sorted(closed)]
    return "".join(pieces), spans, skipped, unclosed


def read_boson_markup(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    unescape_newlines: bool = False,
) -> Iterator[Example]:
    """One Example per non-blank line; ids ``id_prefix`` + 0-based document index."""
    count = 0
    for number, line in iter_lines(path):
        if not line.strip():
            if stats is not None:
                stats.skip("empty line")
            continue
        text, spans, skipped, unclosed = parse_markup(line, unescape_newlines=unescape_newlines)
        if unclosed is not None:
            raise DataFormatError(
                path,
                number,
                f"expected '}}}}' to close the '{{{{type:' markup opened at column {unclosed}",
            )
        if stats is not None:
            for reason, times in skipped.items():
                stats.skipped[reason] = stats.skipped.get(reason, 0) + times
        yield build_example(
            path,
            number,
            id=f"{id_prefix}{count}",
            text=text,
            lang=lang,
            entities=spans,
            stats=stats,
        )
        count += 1


def format_markup(example: Example, *, escape_newlines: bool = False) -> str:
    """The inverse of :func:`parse_markup`: the text with ``{{type:mention}}`` inserted.

    Nested entities nest; partially overlapping ones cannot be written and raise ValueError."""
    entities = sorted(example.entities, key=lambda e: (e.start, -e.end))
    out: list[str] = []
    stack: list[Entity] = []
    cursor = 0

    def text_until(position: int) -> None:
        nonlocal cursor
        fragment = example.text[cursor:position]
        out.append(fragment.replace("\n", "\\n") if escape_newlines else fragment)
        cursor = position

    for entity in entities:
        while stack and stack[-1].end <= entity.start:
            text_until(stack.pop().end)
            out.append("}}")
        if stack and entity.end > stack[-1].end:
            raise ValueError(
                f"example {example.id!r}: entity {entity.text!r} crosses {stack[-1].text!r}"
            )
        text_until(entity.start)
        out.append("{{" + entity.label + ":")
        stack.append(entity)
    while stack:
        text_until(stack.pop().end)
        out.append("}}")
    text_until(len(example.text))
    return "".join(out)
