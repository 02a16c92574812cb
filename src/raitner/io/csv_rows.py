"""Texts in a spreadsheet's CSV export, for ``raitner predict`` and ``raitner distill``; and
``raitner predict``'s answers written back as CSV (:func:`write_prediction_csv`).

The first row names the columns (``text``, and optionally ``id`` and ``labels``); each later
row is one record. The delimiter is the one the header row uses: a comma, or the
semicolon (Excel's export where the decimal mark is a comma) or tab. Quoted fields may hold
the delimiter and line breaks, so a record may span lines; errors name the line its row
starts on. Empty rows are skipped. ``.csv.gz`` reads the same (:mod:`raitner.io.files`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError
from raitner.io.files import text_lines

DELIMITERS = ",;\t"


def _delimiter(path: str | Path) -> str:
    """The most frequent of :data:`DELIMITERS` in the header row (a comma when none is there:
    one column)."""
    with closing(text_lines(path)) as lines:
        header = next(lines, "")
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def iter_csv_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line the row starts on, {column: value})`` for each non-empty row after the header."""
    reader = csv.reader(text_lines(path, newline=""), delimiter=_delimiter(path))
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        if len(set(names)) != len(names) or not all(names):
            raise DataFormatError(
                path, 1, f"expected a header row of distinct column names, got {header}"
            )
        start = reader.line_num + 1
        for row in reader:
            if any(field.strip() for field in row):
                if len(row) > len(names):
                    raise DataFormatError(
                        path,
                        start,
                        f"expected at most {len(names)} fields (the header's), got {len(row)}; "
                        "is a field with the delimiter in it not quoted?",
                    )
                yield start, dict(zip(names, row, strict=False))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataFormatError(path, reader.line_num, f"expected CSV ({err})") from None


#: the columns of :func:`write_prediction_csv`, in order
PREDICTION_COLUMNS = ("id", "text", "labels", "mentions", "entities")


def write_prediction_csv(path: str | Path, records: Iterable[dict]) -> int:
    """Write ``raitner predict``'s records atomically as CSV, one row per text: ``id``,
    ``text``, ``labels`` (the types asked, comma-separated, as predict reads them, so the file
    is predict's input again), ``mentions`` (``type: mention`` items joined by ``; ``, to read
    in a spreadsheet) and ``entities`` (the JSON list of ``{start, end, text, label}``, for
    programs). Raw answers and parse statuses are left to the JSONL output. Returns the rows."""
    count = 0
    with atomic_write(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PREDICTION_COLUMNS)
        for record in records:
            entities = record["entities"]
            writer.writerow(
                [
                    record["id"],
                    record["text"],
                    ", ".join(record["label_set"]),
                    "; ".join(f"{e['label']}: {e['text']}" for e in entities),
                    json.dumps(entities, ensure_ascii=False),
                ]
            )
            count += 1
    return count
