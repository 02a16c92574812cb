"""Retrieval by word-level embeddings (IF-WRANER, arXiv 2411.00451, November 2024).

IF-WRANER retrieves its in-prompt examples by word-level embeddings instead of one sentence
embedding per text, and reports that this helps few-shot cross-domain NER on CrossNER. The
materials at hand give only its abstract, not its scoring rule, so raitner scores a pair of
texts by greedy matching of their contextual word vectors, the way BERTScore compares two
texts (Zhang et al., ICLR 2020): every word of the query is matched with its most similar word
of the example (*recall*: how much of the query the example covers), every word of the
example with its most similar word of the query (*precision*: how much of the example is like
the query), and the score is their harmonic mean::

    recall    = mean over query words w   of  max over example words v  of  cos(w, v)
    precision = mean over example words v of  max over query words w    of  cos(w, v)
    score     = 2 · precision · recall / (precision + recall)

(the smaller of the two when either is not positive). Recall alone (late-interaction
retrieval's MaxSim, sentence-transformers' ``meanmaxsim``) favours long examples, which hold a
close match for more of the query's words whatever else they say: on the 3200-conversation
English training mix it picked examples of 693 characters on average from texts of 289
(median 652 against 134; session 43, ``docs/RESULTS.md``), so prompts grew and training slowed.
The harmonic mean asks the example to be like the query as a whole.

A sentence embedding averages a text into one point, so two texts about the same topic are
close even when they name different kinds of things; the word-level score rewards examples
that hold words like the query's own (names of the same kind, the same context words).

Word vectors come from :meth:`encode_words` of the embedder: contextual token vectors of the
sentence-transformers model for :class:`~raitner.retrieval.embedders.SentenceTransformerEmbedder`,
hashed character n-grams per word for the test embedder. The scoring is numpy only; the pool's
words are compared in blocks so that memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["word_encoder", "word_scores", "word_top_k"]

#: Scores held at once: query words × pool words of one block (64 MB of float32).
_BLOCK_CELLS = 16 * 1024 * 1024


def word_encoder(embedder: Any) -> Callable[..., list[np.ndarray]]:
    """The embedder's ``encode_words``; a clear error for an embedder that has none."""
    encode_words = getattr(embedder, "encode_words", None)
    if not callable(encode_words):
        raise ValueError(
            f"strategy 'word_nn' needs an embedder with word vectors (encode_words); "
            f"{type(embedder).__name__} has none"
        )
    return encode_words


def _stack(word_vectors: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All word vectors in one ``(words, d)`` matrix, and each text's word count."""
    lengths = np.array([len(vectors) for vectors in word_vectors], dtype=np.int64)
    dims = {np.asarray(v).shape[1] for v in word_vectors if len(v)}
    if len(dims) > 1:
        raise ValueError(f"word vectors of different dimensions: {sorted(dims)}")
    dim = dims.pop() if dims else 1
    rows = [np.asarray(v, dtype=np.float32).reshape(-1, dim) for v in word_vectors]
    matrix = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
    return matrix, lengths


def word_scores(
    query_words: Sequence[np.ndarray],
    pool_words: Sequence[np.ndarray],
    *,
    show_progress: bool = False,
) -> np.ndarray:
    """``(n_queries, n_pool)`` word-level similarities (the module's score), float32.

    Every text is a ``(words, d)`` array of L2-normalised word vectors. A query without words
    scores 0 against everything; an example without words scores -1 (below any match).
    Scores lie in [-1, 1]: recall, precision and their harmonic mean are all means of cosines.
    ``show_progress``: a progress bar over the queries (a training set's retrieval takes
    minutes).
    """
    from tqdm.auto import tqdm

    queries, query_lengths = _stack(query_words)
    pool, pool_lengths = _stack(pool_words)
    n_queries, n_pool = len(query_lengths), len(pool_lengths)
    scores = np.full((n_queries, n_pool), -1.0, dtype=np.float32)
    if n_pool == 0 or n_queries == 0:
        return scores
    if len(queries) and len(pool) and queries.shape[1] != pool.shape[1]:
        raise ValueError(
            f"query words have dimension {queries.shape[1]}, pool words {pool.shape[1]}"
        )
    has_words = pool_lengths > 0
    starts = np.concatenate([[0], np.cumsum(pool_lengths)[:-1]])[has_words]
    worded_pool_lengths = pool_lengths[has_words].astype(np.float64)
    query_starts = np.concatenate([[0], np.cumsum(query_lengths)])
    per_block = max(1, _BLOCK_CELLS // max(1, len(pool)))
    bar = tqdm(total=n_queries, desc="word-level retrieval", unit="q", disable=not show_progress)
    first = 0
    while first < n_queries:
        last = first + 1  # queries whose words fit in one block (at least one query)
        while last < n_queries and query_starts[last + 1] - query_starts[first] <= per_block:
            last += 1
        lengths = query_lengths[first:last]
        worded = np.flatnonzero(lengths > 0)
        scores[first:last][lengths == 0] = 0.0
        if worded.size and len(pool):
            block = queries[query_starts[first] : query_starts[last]]
            similarity = block @ pool.T  # (block words, pool words)
            # the rows of one query and the columns of one example are contiguous
            row_starts = (query_starts[first:last] - query_starts[first])[worded]
            best_for_query_words = np.maximum.reduceat(similarity, starts, axis=1)
            recall = np.add.reduceat(best_for_query_words, row_starts, axis=0, dtype=np.float64)
            recall /= lengths[worded][:, None]
            row_ends = [*row_starts[1:], len(similarity)]
            best_for_example_words = np.stack(  # (queries, pool words); slices beat reduceat
                [similarity[a:b].max(axis=0) for a, b in zip(row_starts, row_ends, strict=True)]
            )
            precision = np.add.reduceat(best_for_example_words, starts, axis=1, dtype=np.float64)
            precision /= worded_pool_lengths[None, :]
            scores[first + worded[:, None], np.flatnonzero(has_words)[None, :]] = _harmonic(
                precision, recall
            )
        bar.update(last - first)
        first = last
    bar.close()
    return scores


def _harmonic(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """The harmonic mean where both are positive, else the smaller of the two (float32)."""
    positive = (precision > 0) & (recall > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = 2 * precision * recall / (precision + recall)
    return np.where(positive, mean, np.minimum(precision, recall)).astype(np.float32)


def word_top_k(
    query_words: Sequence[np.ndarray],
    pool_words: Sequence[np.ndarray],
    k: int,
    *,
    query_ids: Sequence[object] | None = None,
    key_ids: Sequence[object] | None = None,
    show_progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` pool texts with the highest word-level score for every query.

    Returns ``(indices, scores)`` as :func:`raitner.retrieval.index.exact_top_k` does: int64
    and float32 arrays of shape ``(n_queries, k)``, best first, ties broken by lower pool
    index, padded with ``-1`` / ``-inf``; with ``query_ids`` and ``key_ids`` a query never gets
    a pool text of its own id.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if (query_ids is None) != (key_ids is None):
        raise ValueError("give both query_ids and key_ids, or neither")
    scores = word_scores(query_words, pool_words, show_progress=show_progress)
    if query_ids is not None and key_ids is not None:
        positions: dict[object, list[int]] = {}
        for position, key in enumerate(key_ids):
            positions.setdefault(key, []).append(position)
        for row, query_id in enumerate(query_ids):
            scores[row, positions.get(query_id, [])] = -np.inf
    n_queries, n_pool = scores.shape
    indices = np.full((n_queries, k), -1, dtype=np.int64)
    top = np.full((n_queries, k), -np.inf, dtype=np.float32)
    for row in range(n_queries):
        # best first, lower index first among equal scores
        order = np.lexsort((np.arange(n_pool), -scores[row].astype(np.float64)))
        order = order[np.isfinite(scores[row, order])][:k]
        indices[row, : len(order)] = order
        top[row, : len(order)] = scores[row, order]
    return indices, top
