"""Annotated data in Parquet files, as the Hugging Face Hub serves every dataset.

Two layouts are read, told apart by the columns:

* **tokens and tags**: a list column of tokens (``tokens`` or ``words``) and one of tags
  (``ner_tags``, ``tags``, ``ner``, ``labels`` or ``ner_labels``), as CoNLL-2003, WikiANN,
  MultiNERD and most token-classification sets are published. Tags are strings (``B-PER``) or
  numbers with names in the file's Hugging Face features (a ``ClassLabel``, which
  ``Dataset.to_parquet`` and the Hub's conversion record), decoded as BIO/BIOES, or as IO when
  the tags are bare type names (Few-NERD's ``person-actor``; :mod:`raitner.io.tags`). Tokens
  are joined by single spaces, or by nothing when most of them are single CJK characters
  (Chinese), as for column files.
* **text and spans**: a ``text`` column with the mentions as character offsets in
  ``entities``, ``spans`` or ``label``, in the shapes :mod:`raitner.io.span_jsonl` reads.

A file with several tag columns (Few-NERD's ``ner_tags`` and ``fine_ner_tags``) is read from
the first of the list above unless the caller names another (``FILE:COLUMN`` on the command
line, :func:`raitner.io.user_files.split_tag_column`).

Ids are ``<file stem>:<row>``, counting rows from 0 (span rows keep an ``id`` as JSONL lines
do); errors name the row, counted from 1. Needs ``pyarrow`` and ``datasets`` (``pip install
'raitner[train]'``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from raitner.errors import DataFormatError, RaitnerError, RowNumber, SchemaError
from raitner.io.files import file_stem, is_gzipped
from raitner.io.stats import ReadStats
from raitner.schema import Example

TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("ner_tags", "tags", "ner", "labels", "ner_labels")


def require_table_libraries(path: Path) -> None:
    """:class:`RaitnerError` naming ``path`` and the extra to install when pyarrow or datasets
    is missing; a gzipped table refused (Parquet and Arrow compress their own columns)."""
    try:
        import datasets  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise RaitnerError(
            f"reading {path} needs pyarrow and datasets: pip install 'raitner[train]'"
        ) from err
    if is_gzipped(path):
        message = "a table compresses its own columns: give the file itself"
        raise DataFormatError(path, None, message)


def features_of_schema(schema: Any) -> Any:
    """The Hugging Face features an Arrow schema's metadata records (tag names), or None."""
    if b"huggingface" not in (schema.metadata or {}):
        return None
    from datasets import Features

    return Features.from_arrow_schema(schema)


def _open(path: Path):
    """``(pyarrow ParquetFile, Hugging Face features or None)``."""
    require_table_libraries(path)
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow's ArrowInvalid and the like
        raise DataFormatError(path, None, f"expected a Parquet file ({err})") from None
    return parquet, features_of_schema(parquet.schema_arrow)


def iter_parquet_rows(path: str | Path) -> Iterator[tuple[RowNumber, dict[str, Any]]]:
    """``(row, {column: value})`` for each row of a Parquet file, rows counted from 1 (errors
    given the row name it as such: :class:`RowNumber`); a null cell is left out of its row, as
    a field a JSON line does not have."""
    parquet, _ = _open(Path(path))
    return _rows(parquet)


def _rows(parquet: Any) -> Iterator[tuple[RowNumber, dict[str, Any]]]:
    return numbered_rows(parquet.iter_batches(batch_size=1024))


def numbered_rows(batches: Iterable[Any]) -> Iterator[tuple[RowNumber, dict[str, Any]]]:
    """``(row, {column: value})`` for each row of Arrow record batches or tables, counted from
    1; null cells left out of their row."""
    number = 0
    for batch in batches:
        for row in batch.to_pylist():
            number += 1
            yield RowNumber(number), {k: v for k, v in row.items() if v is not None}


def _tag_names(features: Any, column: str) -> list[str] | None:
    """The names of a ``ClassLabel`` list column's numbers, if the features give them."""
    feature = features[column] if features is not None and column in features else None
    while feature is not None and not hasattr(feature, "names"):
        feature = getattr(feature, "feature", None)
    return list(feature.names) if feature is not None else None


def read_parquet(
    path: str | Path, stats: ReadStats | None = None, tag_column: str | None = None
) -> list[Example]:
    """The examples of an annotated Parquet file (see the module docstring); ``tag_column``
    names the column of tags to read instead of the first known one."""
    path = Path(path)
    parquet, features = _open(path)
    names = parquet.schema_arrow.names
    return examples_of_table(path, names, features, _rows(parquet), stats, tag_column)


def examples_of_table(
    path: Path,
    names: list[str],
    features: Any,
    rows: Iterator[tuple[RowNumber, dict[str, Any]]],
    stats: ReadStats | None = None,
    tag_column: str | None = None,
) -> list[Example]:
    """The examples of a table with columns ``names`` (Hugging Face ``features`` or ``None``),
    read from ``rows`` in either layout of the module docstring, the tags from ``tag_column``
    if given; ``path`` names it in errors and ids. Shared by Parquet files, Arrow files and
    datasets saved with ``save_to_disk``."""
    stats = stats if stats is not None else ReadStats()
    tokens = next((c for c in TOKEN_COLUMNS if c in names), None)
    tags = next((c for c in TAG_COLUMNS if c in names), None)
    if tag_column is not None:
        if tag_column not in names:
            columns = ", ".join(names)
            raise DataFormatError(
                path, None, f"no column {tag_column!r} to read tags from; columns: {columns}"
            )
        if tokens is None:
            raise DataFormatError(
                path,
                None,
                f"tags in {tag_column!r} need a tokens column ({' or '.join(TOKEN_COLUMNS)}); "
                f"columns: {', '.join(names)}",
            )
        tags = tag_column
    if tokens and tags:
        stats.tag_column = tags
        stats.other_tag_columns = [
            c for c in names if c not in (tokens, tags) and (c in TAG_COLUMNS or c.endswith("tags"))
        ]
        return _read_tagged(path, rows, tokens, tags, _tag_names(features, tags), stats)
    if "text" in names:
        from raitner.io.span_jsonl import read_span_records

        return read_span_records(path, rows, stats)
    raise DataFormatError(
        path,
        None,
        f"expected a tokens column ({' or '.join(TOKEN_COLUMNS)}) with a tags column "
        f"({', '.join(TAG_COLUMNS)}), or a text column with spans; found columns "
        f"{', '.join(names)}",
    )


def _read_tagged(
    path: Path,
    rows: Iterator[tuple[RowNumber, dict[str, Any]]],
    token_column: str,
    tag_column: str,
    tag_names: list[str] | None,
    stats: ReadStats,
) -> list[Example]:
    from raitner.io.tags import TagScheme, tagged_text
    from raitner.io.user_files import tokens_lang

    scheme = TagScheme()
    sentences: list[tuple[RowNumber, list[str], list[str]]] = []
    for number, row in rows:
        words, tags = row.get(token_column), row.get(tag_column)
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise DataFormatError(path, number, f"expected a list of strings in {token_column!r}")
        if not isinstance(tags, list) or len(tags) != len(words):
            raise DataFormatError(
                path,
                number,
                f"expected as many tags in {tag_column!r} as tokens ({len(words)}), "
                f"got {len(tags) if isinstance(tags, list) else type(tags).__name__}",
            )
        if any(isinstance(tag, int) for tag in tags):
            if tag_names is None:
                raise DataFormatError(
                    path,
                    number,
                    f"the tags in {tag_column!r} are numbers and the file does not name them "
                    "(no Hugging Face ClassLabel in its features)",
                )
            try:
                tags = [tag_names[tag] for tag in tags]
            except (IndexError, TypeError):
                raise DataFormatError(
                    path, number, f"a tag outside the {len(tag_names)} named ones: {tags}"
                ) from None
        try:
            for tag in tags:
                scheme.check(tag)
        except ValueError as err:
            raise DataFormatError(path, number, f"in {tag_column!r}: {err}") from None
        sentences.append((number, words, tags))
    lang = tokens_lang(w for _, words, _ in sentences for w in words)
    joiner = "" if lang == "zh" else " "
    stem = file_stem(path)
    examples = []
    for number, words, tags in sentences:
        try:
            text, entities = tagged_text(words, scheme.bio(tags), joiner, stats)
            example = Example(f"{stem}:{number - 1}", text, lang, entities)
        except (ValueError, SchemaError) as err:
            raise DataFormatError(path, number, str(err)) from None
        stats.examples += 1
        stats.entities += len(entities)
        examples.append(example)
    return examples
