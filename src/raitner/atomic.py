"""Atomic file and folder writes: readers never see a half-written artifact.

Content goes to a temporary file (or folder) beside the target and is renamed over it only when
the ``with`` block finishes without an exception; an interrupted run leaves the old file (or
none). A text file whose name ends in ``.gz`` is written gzip-compressed.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if "b" in mode:
        encoding = None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    # mkstemp creates 0600; give the file the permissions open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    try:
        if "b" not in mode and target.name.lower().endswith(".gz"):
            with os.fdopen(fd, "wb") as raw:
                compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                with io.TextIOWrapper(compressed, encoding=encoding) as handle:
                    yield handle
                raw.flush()
                os.fsync(raw.fileno())
        else:
            with os.fdopen(fd, mode, encoding=encoding) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def give_default_permissions(folder: str | Path) -> None:
    """The permissions an ordinary mkdir/open would have given ``folder`` and all it holds.

    mkdtemp (and safetensors' own temporary files) create owner-only entries; a shared cache or
    a package folder must stay readable by others.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in Path(folder).iterdir():
        if path.is_dir() and not path.is_symlink():
            give_default_permissions(path)
        else:
            os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """A staging folder beside ``path``, renamed to ``path`` when the block succeeds.

    The staged files get default permissions. ``replace=False`` refuses an existing ``path``
    (:class:`FileExistsError`, before anything is written); ``replace=True`` removes it just
    before the rename. On an exception the staging folder is removed and ``path`` is untouched.
    """
    target = Path(path)
    if target.exists() and not replace:
        raise FileExistsError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        give_default_permissions(staging)
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
