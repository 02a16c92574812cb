"""Retrieval for RA-IT: embed texts, find exact nearest neighbours, apply a strategy.

``retrieve(queries, pool, RetrievalConfig(...), embedder)`` is the entry point; the pieces
(``exact_top_k``, ``word_top_k``, ``BM25Scorer``, ``EmbeddingCache``, the embedders) are usable
on their own.
Importing this package does not import torch or sentence-transformers.
"""

from __future__ import annotations

from raitner.retrieval.bm25 import BM25Scorer, tokenize
from raitner.retrieval.cache import EmbeddingCache, default_cache_root, encode_texts
from raitner.retrieval.embedders import (
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    WordEmbedder,
    default_model_path,
)
from raitner.retrieval.index import MissingDependencyError, exact_top_k
from raitner.retrieval.strategies import (
    STRATEGIES,
    Retrieval,
    RetrievalConfig,
    mixed_nn_count,
    retrieve,
    settings_read_by,
)
from raitner.retrieval.word_level import word_scores, word_top_k

__all__ = [
    "STRATEGIES",
    "BM25Scorer",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "MissingDependencyError",
    "Retrieval",
    "RetrievalConfig",
    "SentenceTransformerEmbedder",
    "WordEmbedder",
    "default_cache_root",
    "default_model_path",
    "encode_texts",
    "exact_top_k",
    "mixed_nn_count",
    "retrieve",
    "settings_read_by",
    "tokenize",
    "word_scores",
    "word_top_k",
]
