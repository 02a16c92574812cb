"""Annotated data in a folder written by Hugging Face ``Dataset.save_to_disk``.

Such a folder holds ``dataset_info.json``, ``state.json`` and the Arrow files of one split; a
``DatasetDict`` saved the same way holds ``dataset_dict.json`` and one such folder per split,
and is named by its split's folder (``few-nerd/train``). The columns are read as in a Parquet
file (:mod:`raitner.io.parquet`): tokens with named or string tags, or texts with spans. Ids
are ``<folder name>:<row>``; errors name the row, counted from 1. Needs ``datasets``
(``pip install 'raitner[train]'``).
"""

from __future__ import annotations

from pathlib import Path

from raitner.errors import DataFormatError, RaitnerError
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
