"""The six RA-IT retrieval strategies (paper section 3.5, appendix C.3 and E.2), and IF-WRANER's.

Each query gets up to ``k`` examples from a pool, by cosine similarity of sentence embeddings
(``word_nn``: of word embeddings):

``nn``
    the k nearest neighbours.
``nn_bm25``
    the k nearest neighbours, minus those whose BM25 score against the query is below the
    threshold (20); a query can keep fewer than k, or none (it then uses the vanilla template).
``diverse_nn``
    k drawn uniformly without replacement from the K = 128 nearest neighbours.
``diverse_nn_bm25``
    ``diverse_nn``, then the BM25 filter on the k drawn examples (the authors filter after
    drawing, so a query keeps at most k and often fewer).
``random``
    k drawn uniformly from the pool.
``mixed``
    ``nn`` for an exact fraction ``mixed_nn_ratio`` of the queries, ``random`` for the others
    (Table 12/13 ratios 0.2 ... 0.8); ``Retrieval.strategy_used`` records which.
``word_nn``
    the k nearest neighbours by word-level similarity (IF-WRANER; the two texts' words matched
    greedily both ways and the harmonic mean of the two averages, as BERTScore compares texts:
    :mod:`raitner.retrieval.word_level`); needs an embedder with ``encode_words``. Word
    vectors are not cached on disk.

Training retrieval passes the training set as both ``queries`` and ``pool``; a query never gets
itself back (self-exclusion by id, ``exclude_self``). Inference retrieval passes the benchmark
texts as queries and an in-domain or out-domain pool; turn ``exclude_self`` off there unless the
two share an id space on purpose, since an accidental id match would drop a real neighbour.

Randomness is per query: each draw uses a generator seeded from ``(seed, query id)``, and the
``mixed`` split ranks queries by a seeded hash of their ids. So results depend only on the seed and
the data, not on the order or batching of the queries, and nothing touches global random state.

Differences from the authors' scripts (``src/data_process/5.gen_rag_it_data.py``): their
``random.sample`` is unseeded and does not exclude the query itself; their ``diverse_nn`` keeps the
drawn examples in draw order, while here every similarity-based list follows ``order`` (most
similar first by default, as in their NN files); ``mixed`` is not in their published code.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from raitner.errors import UnknownNameError
from raitner.retrieval.bm25 import BM25Scorer
from raitner.retrieval.cache import EmbeddingCache, encode_texts
from raitner.retrieval.embedders import Embedder
from raitner.retrieval.index import exact_top_k
from raitner.schema import Example

STRATEGIES = ("nn", "nn_bm25", "diverse_nn", "diverse_nn_bm25", "random", "mixed", "word_nn")
ORDERS = ("most_similar_first", "most_similar_last")
_BM25_STRATEGIES = ("nn_bm25", "diverse_nn_bm25")
_DIVERSE_STRATEGIES = ("diverse_nn", "diverse_nn_bm25")


@dataclass(frozen=True)
class RetrievalConfig:
    """How examples are chosen; the defaults are the paper's (k=2, K=128, BM25 >= 20)."""

    strategy: str = field(
        default="nn", metadata={"help": f"retrieval strategy: one of {', '.join(STRATEGIES)}"}
    )
    k: int = field(default=2, metadata={"help": "examples per query (the paper uses 2)"})
    pool_k: int = field(
        default=128, metadata={"help": "K nearest neighbours that diverse NN draws from"}
    )
    bm25_threshold: float = field(
        default=20.0, metadata={"help": "BM25 filter: drop examples scoring below this"}
    )
    mixed_nn_ratio: float = field(
        default=0.8, metadata={"help": "mixed: fraction of queries that get NN (else random)"}
    )
    seed: int = field(default=42, metadata={"help": "seed of every random draw"})
    order: str = field(
        default="most_similar_first",
        metadata={"help": f"order of similarity-based examples: one of {', '.join(ORDERS)}"},
    )

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UnknownNameError("retrieval strategy", self.strategy, list(STRATEGIES))
        if self.order not in ORDERS:
            raise UnknownNameError("example order", self.order, list(ORDERS))
        if self.k < 0:
            raise ValueError(f"k must be >= 0, got {self.k}")
        if self.strategy in _DIVERSE_STRATEGIES and self.pool_k < self.k:
            raise ValueError(f"pool_k ({self.pool_k}) must be >= k ({self.k}) for diverse NN")
        if not 0.0 <= self.mixed_nn_ratio <= 1.0:
            raise ValueError(f"mixed_nn_ratio must be in [0, 1], got {self.mixed_nn_ratio}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RetrievalConfig:
        return cls(**dict(data))


def settings_read_by(strategy: str) -> tuple[str, ...]:
    """The ``RetrievalConfig`` fields that ``strategy`` reads; the others change nothing for it."""
    if strategy not in STRATEGIES:
        raise UnknownNameError("retrieval strategy", strategy, list(STRATEGIES))
    names = ["strategy", "k"]
    if strategy in _DIVERSE_STRATEGIES:
        names.append("pool_k")
    if strategy in _BM25_STRATEGIES:
        names.append("bm25_threshold")
    if strategy == "mixed":
        names.append("mixed_nn_ratio")
    if strategy in (*_DIVERSE_STRATEGIES, "random", "mixed"):
        names.append("seed")
    if strategy != "random":  # random examples come in draw order
        names.append("order")
    return tuple(names)


@dataclass
class Retrieval:
    """The examples retrieved for one query, in prompt order."""

    query_id: str
    #: ids of the chosen pool examples; empty means "use the vanilla template".
    example_ids: list[str]
    #: cosine similarity of each example to the query (NaN where no embedder was used).
    scores: list[float]
    #: the strategy that produced this list (``"nn"`` or ``"random"`` for ``mixed``).
    strategy_used: str
    #: examples the BM25 filter removed.
    n_dropped: int = 0
    #: BM25 score of each kept example (BM25 strategies only).
    bm25_scores: list[float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Retrieval:
        return cls(**dict(data))


def retrieve(
    queries: Sequence[Example],
    pool: Sequence[Example],
    config: RetrievalConfig | None = None,
    embedder: Embedder | None = None,
    *,
    cache: EmbeddingCache | None = None,
    exclude_self: bool = True,
    show_progress: bool = False,
    batch_size: int = 64,
    bm25: BM25Scorer | None = None,
) -> list[Retrieval]:
    """Examples from ``pool`` for every query, following ``config`` (one ``Retrieval`` each).

    Args:
        queries: the samples that need examples (the training set itself, or benchmark texts).
        pool: where examples come from.
        config: the strategy and its settings (default: ``RetrievalConfig()``, i.e. NN, k=2).
        embedder: needed by every strategy except ``random``.
        cache: an ``EmbeddingCache`` so that texts are encoded once across runs.
        exclude_self: never return a pool example whose id equals the query's id.
        show_progress: progress bar while encoding.
        batch_size: encoding batch size.
        bm25: a ``BM25Scorer`` built over ``pool`` to reuse (built here when needed and absent).
    """
    config = config or RetrievalConfig()
    if embedder is None and config.strategy != "random":
        raise ValueError(f"strategy {config.strategy!r} needs an embedder")
    if bm25 is not None and bm25.n_docs != len(pool):
        raise ValueError(
            f"the BM25 scorer indexes {bm25.n_docs} passages, the pool has {len(pool)}"
        )
    query_ids = [q.id for q in queries]
    pool_ids = [p.id for p in pool]
    if not pool or config.k == 0:
        strategy = "nn" if config.strategy == "mixed" else config.strategy
        return [Retrieval(qid, [], [], strategy) for qid in query_ids]

    if config.strategy == "word_nn":
        assert embedder is not None
        picks = _pick_by_words(
            queries, pool, embedder, config, exclude_self, batch_size, show_progress
        )
        return [
            _result(query_id, True, pick, pool_ids, config)
            for query_id, pick in zip(query_ids, picks, strict=True)
        ]
    vectors = None
    if embedder is not None:
        vectors = _embed(queries, pool, embedder, cache, batch_size, show_progress)
    uses_nn = _nn_mask(query_ids, config)
    picks = [_Picks() for _ in queries]
    if uses_nn.any():
        assert vectors is not None
        _pick_neighbours(
            picks, np.flatnonzero(uses_nn), vectors, query_ids, pool_ids, config, exclude_self
        )
    _pick_random(
        picks, np.flatnonzero(~uses_nn), vectors, query_ids, pool_ids, config, exclude_self
    )
    if config.strategy in _BM25_STRATEGIES:
        scorer = bm25 or BM25Scorer([p.text for p in pool], [p.lang for p in pool])
        _filter_by_bm25(picks, queries, scorer, config.bm25_threshold)

    return [
        _result(query_id, bool(nn), pick, pool_ids, config)
        for query_id, nn, pick in zip(query_ids, uses_nn, picks, strict=True)
    ]


def _result(
    query_id: str, nn: bool, pick: _Picks, pool_ids: Sequence[str], config: RetrievalConfig
) -> Retrieval:
    """One query's ``Retrieval``, in prompt order (``config.order``)."""
    strategy_used = config.strategy
    if config.strategy == "mixed":
        strategy_used = "nn" if nn else "random"
    ids = [pool_ids[i] for i in pick.positions]
    scores, bm25_scores = pick.similarity, pick.bm25
    if config.order == "most_similar_last" and strategy_used != "random":
        ids, scores = ids[::-1], scores[::-1]
        bm25_scores = None if bm25_scores is None else bm25_scores[::-1]
    return Retrieval(query_id, ids, scores, strategy_used, pick.dropped, bm25_scores)


@dataclass
class _Picks:
    """One query's chosen pool positions, most similar first, while strategies are applied."""

    positions: list[int] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)
    dropped: int = 0
    bm25: list[float] | None = None


def _embed(
    queries: Sequence[Example],
    pool: Sequence[Example],
    embedder: Embedder,
    cache: EmbeddingCache | None,
    batch_size: int,
    show_progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(query vectors, pool vectors); the pool's are reused when the queries are the pool."""

    def encode(examples: Sequence[Example]) -> np.ndarray:
        texts = [e.text for e in examples]
        return encode_texts(
            embedder, texts, cache=cache, batch_size=batch_size, show_progress=show_progress
        )

    pool_vectors = encode(pool)
    return (pool_vectors if _queries_are_pool(queries, pool) else encode(queries)), pool_vectors


def _queries_are_pool(queries: Sequence[Example], pool: Sequence[Example]) -> bool:
    """Whether the queries are the pool itself (training retrieval), so encoded once."""
    return queries is pool or (
        len(queries) == len(pool)
        and all(q.id == p.id and q.text == p.text for q, p in zip(queries, pool, strict=True))
    )


def _pick_neighbours(
    picks: list[_Picks],
    rows: np.ndarray,
    vectors: tuple[np.ndarray, np.ndarray],
    query_ids: Sequence[str],
    pool_ids: Sequence[str],
    config: RetrievalConfig,
    exclude_self: bool,
) -> None:
    """NN: the k nearest; diverse NN: k drawn from the pool_k nearest, kept in rank order."""
    query_vectors, pool_vectors = vectors
    diverse = config.strategy in _DIVERSE_STRATEGIES
    neighbours, scores = exact_top_k(
        query_vectors[rows],
        pool_vectors,
        config.pool_k if diverse else config.k,
        query_ids=[query_ids[i] for i in rows] if exclude_self else None,
        key_ids=pool_ids if exclude_self else None,
        rescore=True,
    )
    for row, found, found_scores in zip(rows, neighbours, scores, strict=True):
        valid = found >= 0
        chosen, chosen_scores = found[valid], found_scores[valid]
        if diverse:
            rng = _query_rng(config.seed, "diverse_nn", query_ids[row])
            drawn = np.sort(rng.choice(chosen.size, min(config.k, chosen.size), replace=False))
            chosen, chosen_scores = chosen[drawn], chosen_scores[drawn]
        picks[row].positions = [int(i) for i in chosen[: config.k]]
        picks[row].similarity = [float(s) for s in chosen_scores[: config.k]]


def _pick_by_words(
    queries: Sequence[Example],
    pool: Sequence[Example],
    embedder: Any,
    config: RetrievalConfig,
    exclude_self: bool,
    batch_size: int,
    show_progress: bool,
) -> list[_Picks]:
    """word_nn: the k pool examples with the highest word-level score for every query."""
    from raitner.retrieval.word_level import word_encoder, word_top_k

    encode_words = word_encoder(embedder)
    pool_words = encode_words(
        [p.text for p in pool], batch_size=batch_size, show_progress=show_progress
    )
    query_words = (
        pool_words
        if _queries_are_pool(queries, pool)
        else encode_words(
            [q.text for q in queries], batch_size=batch_size, show_progress=show_progress
        )
    )
    found, scores = word_top_k(
        query_words,
        pool_words,
        config.k,
        query_ids=[q.id for q in queries] if exclude_self else None,
        key_ids=[p.id for p in pool] if exclude_self else None,
        show_progress=show_progress,
    )
    picks = []
    for row, row_scores in zip(found, scores, strict=True):
        valid = row >= 0
        picks.append(
            _Picks(
                positions=[int(i) for i in row[valid]],
                similarity=[float(x) for x in row_scores[valid]],
            )
        )
    return picks


def _pick_random(
    picks: list[_Picks],
    rows: np.ndarray,
    vectors: tuple[np.ndarray, np.ndarray] | None,
    query_ids: Sequence[str],
    pool_ids: Sequence[str],
    config: RetrievalConfig,
    exclude_self: bool,
) -> None:
    """k distinct pool positions drawn uniformly (the query's own id excluded), in draw order."""
    excluded_by_id = _positions_by_id(pool_ids) if exclude_self else {}
    for row in rows:
        rng = _query_rng(config.seed, "random", query_ids[row])
        excluded = excluded_by_id.get(query_ids[row], [])
        positions = _draw_excluding(rng, len(pool_ids), config.k, excluded)
        picks[row].positions = positions
        if vectors is None:
            picks[row].similarity = [math.nan] * len(positions)
        else:
            query_vectors, pool_vectors = vectors
            dots = np.einsum("ij,j->i", pool_vectors[positions], query_vectors[row])
            picks[row].similarity = [float(s) for s in dots]


def _filter_by_bm25(
    picks: list[_Picks], queries: Sequence[Example], scorer: BM25Scorer, threshold: float
) -> None:
    """Keep the picks whose BM25 score against the query is >= threshold (as the authors)."""
    width = max(len(p.positions) for p in picks)
    candidates = np.full((len(picks), width), -1, dtype=np.int64)
    for row, pick in enumerate(picks):
        candidates[row, : len(pick.positions)] = pick.positions
    scores = scorer.score_candidates(
        [q.text for q in queries], [q.lang for q in queries], candidates
    )
    for row, pick in enumerate(picks):
        row_scores = scores[row, : len(pick.positions)]
        keep = row_scores >= threshold
        pick.dropped = int((~keep).sum())
        pick.positions = [i for i, k in zip(pick.positions, keep, strict=True) if k]
        pick.similarity = [x for x, k in zip(pick.similarity, keep, strict=True) if k]
        pick.bm25 = [float(x) for x in row_scores[keep]]


def mixed_nn_count(n_queries: int, ratio: float) -> int:
    """Queries that get NN under ``mixed``: ``ratio * n`` rounded half up."""
    return min(n_queries, math.floor(ratio * n_queries + 0.5))


def _nn_mask(query_ids: Sequence[str], config: RetrievalConfig) -> np.ndarray:
    n = len(query_ids)
    if config.strategy == "random":
        return np.zeros(n, dtype=bool)
    if config.strategy != "mixed":
        return np.ones(n, dtype=bool)
    # A seeded permutation of the queries, defined by hashing their ids so that it does not
    # depend on their order; the first ratio * n of it get NN.
    priority = [_stable_hash(config.seed, "mixed", qid) for qid in query_ids]
    order = sorted(range(n), key=lambda i: (priority[i], i))
    mask = np.zeros(n, dtype=bool)
    mask[order[: mixed_nn_count(n, config.mixed_nn_ratio)]] = True
    return mask


def _stable_hash(seed: int, purpose: str, query_id: str) -> int:
    digest = hashlib.sha256(f"{seed}\x00{purpose}\x00{query_id}".encode()).digest()
    return int.from_bytes(digest[:16], "big")


def _query_rng(seed: int, purpose: str, query_id: str) -> np.random.Generator:
    return np.random.default_rng(_stable_hash(seed, purpose, query_id))


def _positions_by_id(ids: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for position, example_id in enumerate(ids):
        positions.setdefault(example_id, []).append(position)
    return positions


def _draw_excluding(
    rng: np.random.Generator, n_pool: int, k: int, excluded: Sequence[int]
) -> list[int]:
    """``k`` distinct pool positions drawn uniformly from those not in ``excluded``."""
    available = n_pool - len(excluded)
    draws = rng.choice(available, min(k, available), replace=False)
    for position in sorted(excluded):
        draws = draws + (draws >= position)
    return [int(i) for i in draws]
