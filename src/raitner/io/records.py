"""The records of a file of texts, whatever its format, for ``raitner predict`` and
``raitner distill``: ``(line or row, record)`` pairs.

* ``.jsonl``: one JSON object a line (:func:`raitner.io.jsonl.iter_jsonl`);
* ``.json``: a top-level array of them (:func:`raitner.io.zh_common.iter_json_records`);
* ``.csv``: rows under a header row naming the columns (:mod:`raitner.io.csv_rows`);
* ``.parquet``: rows of a table, numbered as rows (:mod:`raitner.io.parquet`);
* ``.arrow``: the same, of an Arrow file as ``datasets`` writes them (:mod:`raitner.io.hf_saved`).

Each but Parquet and Arrow may be gzip-compressed (:mod:`raitner.io.files`). Files of other
names are plain text, one text a line, which the commands read themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raitner.io.files import format_suffix

RECORD_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".arrow")
#: the formats whose records are rows of named columns rather than JSON objects
TABLE_SUFFIXES = (".csv", ".parquet", ".arrow")


def iter_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line, record)`` for each record of a file whose format is one of
    :data:`RECORD_SUFFIXES` (a Parquet row's number is a :class:`raitner.errors.RowNumber`)."""
    suffix = format_suffix(path)
    if suffix == ".jsonl":
        from raitner.io.jsonl import iter_jsonl

        return iter_jsonl(path)
    if suffix == ".json":
        from raitner.io.zh_common import iter_json_records

        return iter_json_records(path)
    if suffix == ".csv":
        from raitner.io.csv_rows import iter_csv_rows

        return iter_csv_rows(path)
    if suffix == ".parquet":
        from raitner.io.parquet import iter_parquet_rows

        return iter_parquet_rows(path)
    if suffix == ".arrow":
        from raitner.io.hf_saved import iter_arrow_rows

        return iter_arrow_rows(path)
    raise ValueError(f"{path}: not one of {', '.join(RECORD_SUFFIXES)}")


def missing_text_message(record: Any, field: str, suffix: str) -> str:
    """What is wrong with a record that has no string ``field``, naming what it has instead."""
    what = "column" if suffix in TABLE_SUFFIXES else "string field"
    if not isinstance(record, dict):
        return f"expected a JSON object with a {what} {field!r}, got {type(record).__name__}"
    if record.get(field) is not None:
        shown = json.dumps(record[field], ensure_ascii=False, default=str)
        return f"expected a {what} {field!r}, got {_shortened(shown)}"
    return f"expected a {what} {field!r}; {fields_hint(record, table=suffix in TABLE_SUFFIXES)}"


def fields_hint(record: dict[str, Any], *, table: bool = False) -> str:
    """``its fields: 'title', 'body' (name the one holding the text with --text-field)``."""
    kind = "columns" if table else "fields"
    named = ", ".join(repr(key) for key in record) or "none"
    return f"its {kind}: {_shortened(named)} (name the one holding the text with --text-field)"


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
