"""Opening the files users name, gzip-compressed or not.

A name ending in ``.gz`` (``train.jsonl.gz``, ``corpus.txt.gz``) is read through gzip and
otherwise as the file inside it: :func:`format_suffix` and :func:`file_stem` look past the
``.gz``, so readers choose their format and name their ids as for the uncompressed file. A
file so named that is not gzip data, or whose compressed stream is cut off (an interrupted
download) or corrupt, raises :class:`DataFormatError` naming the file and the line reached,
not the decompressor's bare ``EOFError``.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

from raitner.errors import DataFormatError

GZIP_SUFFIX = ".gz"
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzipped(path: str | Path) -> bool:
    """Whether the file's name ends in ``.gz`` (any case)."""
    return str(path).lower().endswith(GZIP_SUFFIX)


def format_suffix(path: str | Path) -> str:
    """The lower-case suffix that names the format: ``.jsonl`` for ``a.JSONL`` and
    ``a.jsonl.gz``; ``""`` for ``a.gz`` or a name without one."""
    path = Path(path)
    if is_gzipped(path):
        path = Path(path.name[: -len(GZIP_SUFFIX)])
    return path.suffix.lower()


def content_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (each one's path inside the folder and
    its bytes, in sorted order), so that a changed dataset gets a new fingerprint."""
    import hashlib

    path = Path(path)
    if not path.is_dir():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(member.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(member.read_bytes()).digest())
    return digest.hexdigest()


def file_stem(path: str | Path) -> str:
    """The name without its format suffix or ``.gz``: ``train`` for ``train.jsonl.gz``; a
    folder's whole name."""
    path = Path(path)
    if path.is_dir():
        return path.name
    if is_gzipped(path):
        path = Path(path.name[: -len(GZIP_SUFFIX)])
    return path.stem


def _reported(path: str | Path, lines: Iterator) -> Iterator:
    """``lines``, with a decompression error turned into one naming the file and the first
    line not read whole."""
    number = 0
    try:
        for line in lines:
            yield line
            number += 1
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataFormatError(
            path,
            number + 1,
            f"the gzip stream is cut off or corrupt here ({err}); is the file complete?",
        ) from None


def _open_checked(path: str | Path):
    if not is_gzipped(path):
        return open(path, "rb")
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != _GZIP_MAGIC:
        raise DataFormatError(path, None, "named .gz but not gzip-compressed data")
    return gzip.open(path, "rb")


def binary_lines(path: str | Path) -> Iterator[bytes]:
    """The file's lines as bytes, each with its line terminator; ``.gz`` decompressed."""
    with _open_checked(path) as handle:
        yield from _reported(path, handle)


def text_lines(
    path: str | Path,
    encoding: str = "utf-8-sig",
    newline: str | None = None,
    errors: str = "strict",
) -> Iterator[str]:
    """The file's lines decoded, each with its line terminator (``newline`` as for
    :func:`open`: by default ``"\\r\\n"`` and ``"\\r"`` read as ``"\\n"``); ``.gz``
    decompressed. The default encoding drops a byte-order mark opening the file."""
    if not is_gzipped(path):
        with open(path, encoding=encoding, newline=newline, errors=errors) as handle:
            yield from handle
        return
    with (
        _open_checked(path) as raw,
        io.TextIOWrapper(raw, encoding, errors, newline=newline) as handle,
    ):
        yield from _reported(path, handle)


def read_text(path: str | Path, encoding: str = "utf-8-sig") -> str:
    """The whole file decoded (line terminators as in :func:`text_lines`); ``.gz``
    decompressed."""
    return "".join(text_lines(path, encoding))
