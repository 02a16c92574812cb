"""Word-level retrieval (``word_nn``, IF-WRANER): the score against its definition, the top-k
rules shared with the sentence-level index, and the strategy through ``retrieve`` and the
predictor's on-demand retrieval."""

from __future__ import annotations

import numpy as np
import pytest
from test_retrieval import needs_minilm

from raitner.infer.predictor import Predictor
from raitner.prompts.templates import get_template
from raitner.retrieval import HashingEmbedder, RetrievalConfig, retrieve, word_level
from raitner.retrieval.embedders import l2_normalise, words_of
from raitner.retrieval.word_level import word_scores, word_top_k
from raitner.schema import Example


def _texts(rng: np.random.Generator, n: int, dim: int = 8) -> list[np.ndarray]:
    return [l2_normalise(rng.normal(size=(int(rng.integers(1, 6)), dim))) for _ in range(n)]


def _by_definition(query: np.ndarray, example: np.ndarray) -> float:
    if len(query) == 0:
        return 0.0
    if len(example) == 0:
        return -1.0
    recall = float(np.mean([max(float(w @ v) for v in example) for w in query]))
    precision = float(np.mean([max(float(w @ v) for w in query) for v in example]))
    if precision > 0 and recall > 0:
        return 2 * precision * recall / (precision + recall)
    return min(precision, recall)


@pytest.mark.parametrize("block_cells", [1, 7, 1 << 24])
def test_scores_follow_the_definition_in_any_block_size(block_cells, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    empty = np.zeros((0, 8), np.float32)
    queries = [*_texts(rng, 4), empty, *_texts(rng, 4), empty]
    pool = [*_texts(rng, 6), empty, *_texts(rng, 6)]
    monkeypatch.setattr(word_level, "_BLOCK_CELLS", block_cells)
    scores = word_scores(queries, pool)
    expected = [[_by_definition(q, p) for p in pool] for q in queries]
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


def test_top_k_ranks_excludes_and_pads() -> None:
    rng = np.random.default_rng(1)
    queries, pool = _texts(rng, 6), _texts(rng, 5)
    scores = word_scores(queries, pool)
    ids = ["a", "b", "c", "d", "e"]
    found, top = word_top_k(queries, pool, 7, query_ids=ids + ["f"], key_ids=ids)
    for row in range(6):
        allowed = [j for j in range(5) if j != row]  # query i shares its id with pool text i
        expected = sorted(allowed, key=lambda j: (-scores[row, j], j))
        kept = found[row][found[row] >= 0].tolist()
        assert kept == expected
        np.testing.assert_allclose(top[row, : len(kept)], scores[row, kept])
        assert np.all(np.isneginf(top[row, len(kept) :]))
    # equal scores: the lower pool index first
    twins = [np.eye(3, dtype=np.float32)[:1]] * 3
    assert word_top_k(twins[:1], twins, 3)[0].tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="both query_ids and key_ids"):
        word_top_k(queries, pool, 1, query_ids=ids)


def test_words_are_split_as_documented() -> None:
    assert words_of("Dr. Ada Lovelace's note_1") == [
        "Dr",
        ".",
        "Ada",
        "Lovelace",
        "'",
        "s",
        "note",
        "_",
        "1",
    ]
    assert words_of("张三在北京") == ["张", "三", "在", "北", "京"]
    vectors = HashingEmbedder(dimension=32).encode_words(["Paris and paris", ""])
    assert vectors[0].shape == (3, 32) and vectors[1].shape == (0, 32)
    np.testing.assert_allclose(vectors[0][0], vectors[0][2])  # case-folded like encode


def test_word_nn_asks_the_example_to_be_like_the_query_as_a_whole() -> None:
    long_text = (
        "In spring Paris, after long debates among delegations from dozens of nations, "
        "finally hosted the closing summit"
    )
    pool = [
        Example(lang="en", id="all-words", text=long_text),
        Example(lang="en", id="three-words", text="Berlin hosted the summit"),
        Example(lang="en", id="look-alike", text="Parish posted the summary"),
        Example(lang="en", id="one-word", text="Paris is big"),
    ]
    query = [Example(lang="en", id="q", text="Paris hosted the summit")]
    embedder = HashingEmbedder(dimension=512)
    (found,) = retrieve(query, pool, RetrievalConfig(strategy="word_nn", k=4), embedder)
    assert found.strategy_used == "word_nn"
    # every query word is in the long text (recall 1), but most of its words match nothing in
    # the query: it ranks below the short texts that share the query's words or look like them
    assert found.example_ids == ["three-words", "look-alike", "all-words", "one-word"]
    words = embedder.encode_words([query[0].text, long_text])
    recall = np.mean((words[0] @ words[1].T).max(axis=1))
    assert recall == pytest.approx(1.0)
    assert found.scores[2] < 0.7


def test_the_score_is_symmetric_and_a_text_scores_1_with_itself() -> None:
    rng = np.random.default_rng(4)
    texts = _texts(rng, 7)
    scores = word_scores(texts, texts)
    np.testing.assert_allclose(scores, scores.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.diag(scores), 1.0, rtol=1e-5)
    # a longer example holding the query's words and others: recall 1, the score below 1
    query = texts[0]
    longer = np.concatenate([query, *texts[1:4]])
    assert word_scores([query], [longer])[0, 0] < 0.999


class _CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dimension=64)
        self.word_texts = 0

    def encode_words(self, texts, *, batch_size=64, show_progress=False):
        self.word_texts += len(texts)
        return super().encode_words(texts, batch_size=batch_size)


def test_the_predictor_retrieves_by_words_and_keeps_the_pool_words() -> None:
    pool = [
        Example(lang="en", id=f"p{i}", text=text)
        for i, text in enumerate(
            ["Berlin hosted the summit", "A film by Ridley Scott", "Stock prices fell", "Paris"]
        )
    ]
    embedder = _CountingEmbedder()
    predictor = Predictor(
        _EchoBackend(),
        get_template("ra-it-en-v1"),
        pool=pool,
        retrieval=RetrievalConfig(strategy="word_nn", k=1),
        embedder=embedder,
        show_progress=False,
    )
    texts = ["Rome hosted the summit", "Ridley Scott shot a film"]
    for _ in range(2):
        predictions = predictor.predict(texts, ["location"], examples="pool")
        assert [p.answers[0].example_ids for p in predictions] == [("p0",), ("p1",)]
    assert embedder.word_texts == len(pool) + 2 * len(texts)  # the pool's words encoded once
    direct = retrieve(
        [Example(lang="en", id="q", text=texts[0])],
        pool,
        RetrievalConfig(strategy="word_nn", k=1),
        embedder,
    )
    assert direct[0].example_ids == ["p0"]


def test_an_embedder_without_word_vectors_is_refused() -> None:
    class SentencesOnly:
        name = "sentences-only"

        def encode(self, texts, *, batch_size=64, show_progress=False):
            return HashingEmbedder(dimension=8).encode(texts)

    pool = [Example(lang="en", id="a", text="x"), Example(lang="en", id="b", text="y")]
    with pytest.raises(ValueError, match="needs an embedder with word vectors"):
        retrieve(pool, pool, RetrievalConfig(strategy="word_nn"), SentencesOnly())


class _EchoBackend:
    def generate(self, conversations, max_new_tokens):
        return ["[]" for _ in conversations]


@needs_minilm
def test_the_default_embedder_gives_token_vectors() -> None:
    from raitner.retrieval import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    first, second = embedder.encode_words(["Barack Obama visited Paris.", "A cat."])
    # [CLS] barack obama visited paris . [SEP] and [CLS] a cat . [SEP]
    assert first.shape == (7, 384) and second.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    again = embedder.encode_words(["Barack Obama visited Paris."])[0]
    np.testing.assert_allclose(again, first, atol=1e-5)  # no random projection in between
    pool = [
        Example(lang="en", id="film", text="Ridley Scott directed the film Alien."),
        Example(lang="en", id="city", text="Angela Merkel met ministers in Berlin."),
    ]
    query = [Example(lang="en", id="q", text="Barack Obama visited Paris.")]
    (found,) = retrieve(query, pool, RetrievalConfig(strategy="word_nn", k=1), embedder)
    assert found.example_ids == ["city"]


def test_word_vectors_need_sentence_transformers_6(monkeypatch) -> None:
    import sys
    import types

    from raitner.retrieval import MissingDependencyError, SentenceTransformerEmbedder

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.ModuleType("old_release"))
    embedder = SentenceTransformerEmbedder("any/model")
    with pytest.raises(MissingDependencyError, match="sentence-transformers>=6.0"):
        embedder.encode_words(["A text."])
