"""On-disk embedding cache: each text is encoded once per embedder, ever.

Encoding a 50K-passage pool with a large model takes far longer than retrieving from it, and the
same pool is retrieved from again and again (training data, every inference setting, every
strategy), so vectors are kept on disk keyed by ``(embedder.name, sha256(text))``.

Layout, under ``<root>/<embedder folder>/``:

* ``meta.json``: the embedder name and the vector dimension;
* ``shard-<stamp>.vectors.npy``: float32 ``(n, d)`` vectors of one write;
* ``shard-<stamp>.keys.npy``: the ``(n, 32)`` uint8 SHA-256 digests of their texts, row by row.

A write adds one shard and never modifies an existing file: the vectors are written (atomically)
before their keys, and a shard counts only once its keys file exists, so a crash or a concurrent
writer can at worst leave an unreferenced vectors file. Shards are read in name order and the
first occurrence of a digest wins, so every reader sees the same vector for a text.

The root is the ``root`` argument, else ``$RAITNER_CACHE/embeddings``, else
``~/.cache/raitner/embeddings``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from raitner.atomic import atomic_write
from raitner.errors import RaitnerError
from raitner.retrieval.embedders import Embedder

CACHE_ENV = "RAITNER_CACHE"


class EmbeddingCacheError(RaitnerError):
    """The cache folder holds vectors that do not fit the embedder (e.g. another dimension)."""


def default_cache_root() -> Path:
    """``$RAITNER_CACHE/embeddings`` if that variable is set, else ``~/.cache/raitner/...``."""
    configured = os.environ.get(CACHE_ENV)
    base = Path(configured).expanduser() if configured else Path.home() / ".cache" / "raitner"
    return base / "embeddings"


def text_digest(text: str) -> bytes:
    """SHA-256 of the UTF-8 text: the per-text part of the cache key."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _folder_name(embedder_name: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_name).strip("._")[:80] or "embedder"
    tag = hashlib.sha256(embedder_name.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{tag}"


class EmbeddingCache:
    """Vectors by (embedder name, text digest) in ``.npy`` shards; see the module notes."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self._stores: dict[str, _Store] = {}

    def encode(
        self,
        embedder: Embedder,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Vectors for ``texts`` in order; only texts not cached yet are encoded (once each)."""
        store = self._store(embedder.name)
        digests = [text_digest(text) for text in texts]
        found = store.lookup(digests)
        missing: dict[bytes, str] = {}
        for digest, text, hit in zip(digests, texts, found, strict=True):
            if hit is None and digest not in missing:
                missing[digest] = text
        if missing:
            new_vectors = np.asarray(
                embedder.encode(
                    list(missing.values()), batch_size=batch_size, show_progress=show_progress
                ),
                dtype=np.float32,
            )
            if new_vectors.shape[0] != len(missing):
                raise EmbeddingCacheError(
                    f"embedder {embedder.name!r} returned {new_vectors.shape[0]} vectors "
                    f"for {len(missing)} texts"
                )
            store.add(list(missing), new_vectors)
            found = store.lookup(digests)
        return store.gather(found)

    def count(self, embedder_name: str) -> int:
        """Distinct texts cached for the embedder."""
        return self._store(embedder_name).count()

    def _store(self, embedder_name: str) -> _Store:
        if embedder_name not in self._stores:
            folder = self.root / _folder_name(embedder_name)
            self._stores[embedder_name] = _Store(folder, embedder_name)
        return self._stores[embedder_name]


class _Store:
    """The shards of one embedder, with an in-memory digest index refreshed from disk."""

    def __init__(self, folder: Path, embedder_name: str) -> None:
        self.folder = folder
        self.embedder_name = embedder_name
        self.dimension: int | None = None
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._shard_names: set[str] = set()

    def refresh(self) -> None:
        """Load shards written since the last look (by this or another process)."""
        if not self.folder.is_dir():
            return
        self._read_meta()
        for keys_path in sorted(self.folder.glob("shard-*.keys.npy")):
            stem = keys_path.name[: -len(".keys.npy")]
            if stem in self._shard_names:
                continue
            vectors = np.load(self.folder / f"{stem}.vectors.npy", mmap_mode="r")
            keys = np.load(keys_path)
            if vectors.ndim != 2 or keys.shape != (vectors.shape[0], 32):
                raise EmbeddingCacheError(f"{keys_path}: keys do not match their vectors file")
            self._check_dimension(vectors.shape[1], keys_path)
            shard = len(self._shards)
            self._shards.append(vectors)
            self._shard_names.add(stem)
            for row, key in enumerate(keys):
                self._index.setdefault(key.tobytes(), (shard, row))

    def lookup(self, digests: Sequence[bytes]) -> list[tuple[int, int] | None]:
        self.refresh()
        return [self._index.get(digest) for digest in digests]

    def gather(self, locations: Sequence[tuple[int, int] | None]) -> np.ndarray:
        if any(location is None for location in locations):
            raise EmbeddingCacheError("internal error: gathering vectors that are not cached")
        dimension = self.dimension or 0
        out = np.empty((len(locations), dimension), dtype=np.float32)
        by_shard: dict[int, tuple[list[int], list[int]]] = {}
        for position, location in enumerate(locations):
            assert location is not None
            shard, row = location
            targets, rows = by_shard.setdefault(shard, ([], []))
            targets.append(position)
            rows.append(row)
        for shard, (targets, rows) in by_shard.items():
            out[targets] = self._shards[shard][rows]
        return out

    def add(self, digests: Sequence[bytes], vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(digests):
            raise EmbeddingCacheError(f"need one row per text, got shape {vectors.shape}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.refresh()
        self._check_dimension(vectors.shape[1], self.folder)
        if not (self.folder / "meta.json").exists():
            with atomic_write(self.folder / "meta.json") as handle:
                json.dump({"embedder": self.embedder_name, "dimension": vectors.shape[1]}, handle)
        stem = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        with atomic_write(self.folder / f"{stem}.vectors.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32))
        keys = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32)
        with atomic_write(self.folder / f"{stem}.keys.npy", "wb") as handle:
            np.save(handle, keys)
        self.refresh()

    def count(self) -> int:
        self.refresh()
        return len(self._index)

    def _read_meta(self) -> None:
        meta_path = self.folder / "meta.json"
        if self.dimension is None and meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("embedder") != self.embedder_name:
                raise EmbeddingCacheError(
                    f"{meta_path}: cache of embedder {meta.get('embedder')!r}, "
                    f"expected {self.embedder_name!r}"
                )
            self.dimension = int(meta["dimension"])

    def _check_dimension(self, dimension: int, where: Path) -> None:
        if self.dimension is None:
            self.dimension = dimension
        elif dimension != self.dimension:
            raise EmbeddingCacheError(
                f"{where}: vectors of dimension {dimension}, but the cache of "
                f"{self.embedder_name!r} holds dimension {self.dimension}"
            )


def encode_texts(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    show_progress: bool = False,
) -> np.ndarray:
    """Vectors for ``texts`` in order, each distinct text encoded once (via ``cache`` if given)."""
    if cache is not None:
        return cache.encode(embedder, texts, batch_size=batch_size, show_progress=show_progress)
    rows: dict[str, int] = {}
    positions = [rows.setdefault(text, len(rows)) for text in texts]
    vectors = embedder.encode(list(rows), batch_size=batch_size, show_progress=show_progress)
    return np.asarray(vectors, dtype=np.float32)[positions]
