"""Span-annotated JSONL files: one text a line with its mentions as character offsets, in the
shapes that raitner and the common annotation tools write. The shape is recognised line by line:

* raitner's own (:mod:`raitner.io.jsonl`): ``{"id", "text", "lang", "entities": [{"start",
  "end", "text", "label"}], "label_set"}``, where ``id``, ``lang``, ``label_set`` and a
  mention's ``text`` may be left out (a mention's text, when given, must be the text there);
* doccano's sequence-labelling export: ``{"text", "label": [[start, end, "TYPE"], …]}``
  (``"labels"`` in older releases), or with relation labelling switched on
  ``{"text", "entities": [{"start_offset", "end_offset", "label"}], "relations": […]}``;
* Prodigy's and spaCy's span records: ``{"text", "spans": [{"start", "end", "label"}],
  "answer"}``; lines answered ``reject`` or ``ignore`` are left out and counted
  (``ReadStats.skipped``).

Offsets are Python string indices with ``end`` exclusive. Spaces an annotator selected at
either end of a mention are trimmed off it and counted (``ReadStats.trimmed_spans``); a mention
of nothing but spaces is left out and counted in ``ReadStats.skipped``.

Ids: a raitner-shaped line keeps its ``id``; a line in a tool's shape gets ``<file stem>:<its
id>`` (tools number their own records, so two exports would clash); a line without one gets
``<file stem>:<n>``, n counting the file's non-blank lines from 0. A line without ``lang`` takes
the file's language, read from its texts as for the other annotated files (mostly CJK
characters: ``zh``, else ``en``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError, SchemaError
from raitner.io.files import file_stem
from raitner.io.jsonl import iter_jsonl
from raitner.io.stats import ReadStats
from raitner.schema import Entity, Example

#: what one line must look like, for error messages
EXPECTED_SHAPES = (
    'expected "text" and mentions as "entities": [{start, end, label}] (raitner), '
    '"label": [[start, end, label]] (doccano) or "spans": [{start, end, label}] (Prodigy)'
)
#: the shapes :func:`write_span_jsonl` writes
SHAPES = ("raitner", "doccano", "prodigy")
#: Prodigy answers whose lines are not annotations
_NOT_ACCEPTED = ("reject", "ignore")


@dataclass
class _Line:
    number: int
    id: str
    text: str
    lang: str | None
    spans: list[tuple[int, int, str | None, str]]  # start, end, mention text if given, label
    label_set: tuple[str, ...]
    meta: dict[str, Any]


def read_span_jsonl(path: str | Path, stats: ReadStats | None = None) -> list[Example]:
    """The examples of a span-annotated JSONL file (see the module docstring); a line that
    fits none of the shapes raises ``DataFormatError`` naming the file, line and what was
    expected."""
    return read_span_records(path, iter_jsonl(path), stats)


def read_span_records(
    path: str | Path,
    records: Iterable[tuple[int, dict[str, Any]]],
    stats: ReadStats | None = None,
) -> list[Example]:
    """The examples of ``(line, record)`` pairs of ``path``, each record in one of the shapes
    of the module docstring (JSONL lines, or rows of a table as :mod:`raitner.io.parquet`
    gives them)."""
    from raitner.io.user_files import text_lang

    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    lines: list[_Line] = []
    for index, (number, record) in enumerate(records):
        line = _read_line(path, number, index, record, stats)
        if line is not None:
            lines.append(line)
    file_lang = text_lang(line.text for line in lines if line.lang is None)
    examples = []
    for line in lines:
        try:
            entities = [
                entity_at(line.text, start, end, label, stats, given=given)
                for start, end, given, label in line.spans
            ]
            example = Example(
                id=line.id,
                text=line.text,
                lang=line.lang or file_lang,
                entities=[entity for entity in entities if entity is not None],
                label_set=line.label_set,
                meta=line.meta,
            )
        except SchemaError as err:
            raise DataFormatError(path, line.number, f"invalid example: {err}") from None
        stats.examples += 1
        stats.entities += len(example.entities)
        examples.append(example)
    return examples


def _read_line(
    path: Path, number: int, index: int, record: dict[str, Any], stats: ReadStats
) -> _Line | None:
    def fail(message: str) -> DataFormatError:
        return DataFormatError(path, number, message)

    text = record.get("text")
    if not isinstance(text, str):
        found = "no" if text is None else f"a {type(text).__name__} as"
        raise fail(f'{EXPECTED_SHAPES}; found {found} "text"')
    answer = record.get("answer")
    if answer in _NOT_ACCEPTED:
        stats.skip(f"answer {answer}")
        return None
    lang = record.get("lang")
    if lang is not None and lang not in ("en", "zh"):
        raise fail(f"lang must be 'en' or 'zh', got {lang!r}")
    keys = [key for key in ("entities", "label", "labels", "spans") if key in record]
    if len(keys) > 1:
        raise fail(f"mentions given twice, as {' and '.join(keys)}; {EXPECTED_SHAPES}")
    key = keys[0] if keys else None
    mentions = record.get(key, []) if key else []
    if not isinstance(mentions, list):
        raise fail(f'"{key}" must be a list; {EXPECTED_SHAPES}')
    spans = [_span(fail, key, position, mention) for position, mention in enumerate(mentions)]
    tool_shaped = key in ("label", "labels", "spans") or any(
        isinstance(m, dict) and "start_offset" in m for m in mentions
    )
    if "id" in record and not tool_shaped:
        example_id = str(record["id"])
    elif "id" in record:
        example_id = f"{file_stem(path)}:{record['id']}"
    else:
        example_id = f"{file_stem(path)}:{index}"
    label_set = record.get("label_set", ())
    if not isinstance(label_set, list | tuple) or not all(
        isinstance(label, str) and label for label in label_set
    ):
        raise fail('"label_set" must be a list of type names')
    meta = record.get("meta", {})
    return _Line(
        number=number,
        id=example_id,
        text=text,
        lang=lang,
        spans=spans,
        label_set=tuple(label_set),
        meta=dict(meta) if isinstance(meta, dict) else {"meta": meta},
    )


def _span(fail, key: str, position: int, mention: Any) -> tuple[int, int, str | None, str]:
    """(start, end, mention text or None, label) of one listed mention."""
    where = f'"{key}" item {position}'
    if isinstance(mention, list):
        if len(mention) != 3:
            raise fail(f"{where}: expected [start, end, label], got {mention!r}")
        start, end, label = mention
        given = None
    elif isinstance(mention, dict):
        if "start_offset" in mention:
            start, end = mention.get("start_offset"), mention.get("end_offset")
        else:
            start, end = mention.get("start"), mention.get("end")
        label, given = mention.get("label"), mention.get("text")
    else:
        shapes = "{start, end, label} or [start, end, label]"
        raise fail(f"{where}: expected {shapes}, got {mention!r}")
    if not (is_offset(start) and is_offset(end)):
        raise fail(f"{where}: start and end must be whole numbers, got {start!r} and {end!r}")
    if not isinstance(label, str) or not label:
        raise fail(f"{where}: expected a type name as label, got {label!r}")
    if given is not None and not isinstance(given, str):
        raise fail(f"{where}: the mention's text must be a string, got {given!r}")
    return int(start), int(end), given, label


def is_offset(value: Any) -> bool:
    """A whole number that is not a bool (JSON true/false would pass ``isinstance(int)``)."""
    return isinstance(value, int) and not isinstance(value, bool)


def entity_at(
    text: str,
    start: int,
    end: int,
    label: str,
    stats: ReadStats,
    given: str | None = None,
    realign: bool = False,
) -> Entity | None:
    """The mention of ``label`` at ``[start, end)`` of ``text``, its surrounding spaces trimmed;
    None when it is only spaces.

    ``given`` is the mention's text as the file states it: it must be the text there, or with
    ``realign`` (for tools that count offsets in UTF-16 units, where a character outside the
    basic plane counts twice) the occurrence of ``given`` nearest to ``start`` is taken
    (``ReadStats.realigned_spans``), and a mention found nowhere is left out
    (``ReadStats.unfound_mentions``).
    """
    found = text[start:end] if 0 <= start < end <= len(text) else None
    if given is not None and given != found and realign and given:
        starts = [m.start() for m in re.finditer(re.escape(given), text)]
        if not starts:
            stats.unfound_mentions += 1
            return None
        start = min(starts, key=lambda position: abs(position - start))
        end = start + len(given)
        found = given
        stats.realigned_spans += 1
    if found is None:
        raise SchemaError(
            f"mention [{start}, {end}) ({label}) lies outside the text's {len(text)} characters"
        )
    if given is not None and given != found:
        raise SchemaError(
            f"mention {given!r} ({label}) at [{start}, {end}) does not match the text there "
            f"({found!r})"
        )
    stripped = found.strip()
    if not stripped:
        stats.skip("mention of only spaces")
        return None
    if stripped != found:
        stats.trimmed_spans += 1
        start += len(found) - len(found.lstrip())
        end = start + len(stripped)
    return Entity(start, end, stripped, label)


def write_span_jsonl(path: str | Path, examples: Iterable[Example], shape: str = "raitner") -> int:
    """Write examples atomically in one of :data:`SHAPES`, for an annotation tool to import
    (to correct a model's predictions, say); returns how many were written.

    doccano's and Prodigy's shapes carry the id in ``meta`` and have no place for a label set
    (the types annotated but absent): raitner's keeps everything.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    count = 0
    with atomic_write(path) as handle:
        for example in examples:
            handle.write(json.dumps(_shaped(example, shape), ensure_ascii=False) + "\n")
            count += 1
    return count


def _shaped(example: Example, shape: str) -> dict[str, Any]:
    if shape == "raitner":
        return example.to_dict()
    meta = {"id": example.id, **example.meta}
    if shape == "doccano":
        label = [[e.start, e.end, e.label] for e in example.entities]
        return {"text": example.text, "label": label, "meta": meta}
    spans = [{"start": e.start, "end": e.end, "label": e.label} for e in example.entities]
    return {"text": example.text, "spans": spans, "meta": meta}
