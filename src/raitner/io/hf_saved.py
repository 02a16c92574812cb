"""Annotated data in a folder written by Hugging Face ``Dataset.save_to_disk``, or in one of
the Arrow files such a folder (or the ``datasets`` cache) holds.

Such a folder holds ``dataset_info.json``, ``state.json`` and the Arrow files of one split; a
``DatasetDict`` saved the same way holds ``dataset_dict.json`` and one such folder per split,
and is named by its split's folder (``few-nerd/train``). The columns are read as in a Parquet
file (:mod:`raitner.io.parquet`): tokens with named or string tags, or texts with spans. Ids
are ``<folder name>:<row>``; errors name the row, counted from 1. A lone ``.arrow`` file (the
stream format ``datasets`` writes, or the Arrow IPC file format that Feather v2 and
``pyarrow.ipc`` write) reads the same way, its ids ``<file stem>:<row>``. Needs ``datasets``
(``pip install 'raitner[train]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raitner.errors import DataFormatError, RaitnerError, RowNumber
from raitner.io.stats import ReadStats
from raitner.schema import Example

#: the files ``save_to_disk`` writes beside a split's Arrow files
SPLIT_MARKERS = ("dataset_info.json", "state.json")
DICT_MARKER = "dataset_dict.json"


def is_saved_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a folder ``save_to_disk`` wrote (one split, or a ``DatasetDict``)."""
    path = Path(path)
    return path.is_dir() and (
        all((path / marker).is_file() for marker in SPLIT_MARKERS) or (path / DICT_MARKER).is_file()
    )


def read_saved_dataset(
    path: str | Path, stats: ReadStats | None = None, tag_column: str | None = None
) -> list[Example]:
    """The examples of one split saved with ``save_to_disk``; ``tag_column`` as for
    :func:`raitner.io.parquet.read_parquet`."""
    from raitner.io.parquet import examples_of_table, numbered_rows

    path = Path(path)
    if (path / DICT_MARKER).is_file():
        splits = sorted(child.name for child in path.iterdir() if is_saved_dataset(child))
        named = ", ".join(str(path / split) for split in splits) or "none found"
        raise RaitnerError(f"{path} holds a DatasetDict: name one split's folder ({named})")
    try:
        from datasets import load_from_disk
    except ImportError as err:
        raise RaitnerError(f"reading {path} needs datasets: pip install 'raitner[train]'") from err
    try:
        dataset = load_from_disk(str(path))
    except Exception as err:  # a missing or damaged Arrow file, a newer format
        raise DataFormatError(
            path, None, f"expected a dataset saved with save_to_disk ({err})"
        ) from None
    rows = numbered_rows(dataset.with_format("arrow").iter(batch_size=1024))
    names = list(dataset.column_names)
    return examples_of_table(path, names, dataset.features, rows, stats, tag_column)


def read_arrow_file(
    path: str | Path, stats: ReadStats | None = None, tag_column: str | None = None
) -> list[Example]:
    """The examples of one Arrow file: a stream as ``datasets`` writes its shards and cache
    files, or an Arrow IPC file; its columns as in a Parquet file, its Hugging Face features
    (tag names) from the schema's metadata when there."""
    from raitner.io.parquet import examples_of_table, features_of_schema, numbered_rows

    path = Path(path)
    table = read_arrow_table(path)
    rows = numbered_rows(table.to_batches(max_chunksize=1024))
    features = features_of_schema(table.schema)
    return examples_of_table(path, table.column_names, features, rows, stats, tag_column)


def iter_arrow_rows(path: str | Path) -> Iterator[tuple[RowNumber, dict[str, Any]]]:
    """``(row, {column: value})`` for each row of an Arrow file, counted from 1, null cells
    left out (as :func:`raitner.io.parquet.iter_parquet_rows`)."""
    from raitner.io.parquet import numbered_rows

    return numbered_rows(read_arrow_table(Path(path)).to_batches(max_chunksize=1024))


def read_arrow_table(path: Path) -> Any:
    """The pyarrow table of an Arrow stream (as ``datasets`` writes) or IPC file."""
    from raitner.io.parquet import require_table_libraries

    require_table_libraries(path)
    import pyarrow as pa

    table = None
    errors = []
    for open_reader in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(path)) as source:
                table = open_reader(source).read_all()
            break
        except Exception as err:  # ArrowInvalid: not this one of the two formats
            errors.append(str(err))
    if table is None:
        raise DataFormatError(
            path, None, f"expected an Arrow stream or IPC file ({errors[-1]})"
        ) from None
    return table
