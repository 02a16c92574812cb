"""BM25 scores of a query against chosen pool passages, for the RA-IT example filter.

The paper's "NN, BM" strategies drop a retrieved example whose BM25 score against the query is
below 20 (appendix C.3). That threshold only means something on the scale of the BM25 the authors
used, so this module reproduces it. Their ``src/data_process/gen_bm25.py`` builds
``gensim.summarization.bm25.BM25`` over the retrieval pool and calls ``get_score(query, index)``
for each retrieved example, which is Okapi BM25 with

* ``k1 = 1.5``, ``b = 0.75``;
* ``idf = log(N - df + 0.5) - log(df + 0.5)``; a term in more than half of the passages (negative
  idf) gets ``epsilon * mean(idf)`` with ``epsilon = 0.25``, the mean taken over the raw idf of
  the whole vocabulary;
* term weight ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``;
* a query term counted once per occurrence in the query (gensim loops over the query's tokens).

``bm25s`` builds the index: its ATIRE term-frequency part with Robertson's idf is exactly the
formula above, except that it clamps negative idf to 0; the few such terms are then given
gensim's ``epsilon * mean(idf)`` weight here. ``epsilon=None`` keeps bm25s's clamp.

Tokenisation: Chinese with ``jieba.lcut`` (as the authors), English with a lower-case ``\\w+``
tokenizer (the authors split on single spaces without lower-casing; their English BM25 scores
were never published). The authors removed stop words with a list they did not publish; here the
``bm25s`` English and Chinese lists are used, and tokens without a letter or digit (punctuation,
spaces, which jieba returns as tokens) are dropped.

Scoring K candidates of a query reads only those K passages' rows of a doc-major copy of the
index, for all queries at once, with no pass over the whole pool per query.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from functools import cache

import numpy as np

from raitner.errors import UnknownNameError

LANGUAGES = ("en", "zh")
_WORD = re.compile(r"\w+")


@cache
def default_stopwords(lang: str) -> frozenset[str]:
    """The ``bm25s`` stop-word list for ``lang`` (English words are also dropped from Chinese)."""
    from bm25s import stopwords

    english = frozenset(stopwords.STOPWORDS_EN)
    if lang == "en":
        return english
    if lang == "zh":
        return english | frozenset(stopwords.STOPWORDS_CHINESE)
    raise UnknownNameError("language", lang, list(LANGUAGES))


@cache
def _jieba_cut():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def tokenize(text: str, lang: str, *, stopwords: Collection[str] | None = None) -> list[str]:
    """BM25 tokens of ``text``: jieba words for ``zh``, lower-cased ``\\w+`` words for ``en``.

    ``stopwords=None`` uses ``default_stopwords(lang)``; pass an empty set to keep every token.
    """
    if lang == "zh":
        tokens = _jieba_cut()(text)
    elif lang == "en":
        tokens = _WORD.findall(text.lower())
    else:
        raise UnknownNameError("language", lang, list(LANGUAGES))
    drop = default_stopwords(lang) if stopwords is None else stopwords
    return [t for t in tokens if any(c.isalnum() for c in t) and t.lower() not in drop]


class BM25Scorer:
    """BM25 (gensim's variant, see the module notes) over a fixed pool of passages."""

    def __init__(
        self,
        texts: Sequence[str],
        langs: Sequence[str] | str,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        epsilon: float | None = 0.25,
        stopwords: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """Index ``texts``; ``langs`` is one language for all or one per text.

        ``stopwords`` maps a language to its stop words (default: ``default_stopwords``).
        """
        import bm25s

        self.k1, self.b, self.epsilon = k1, b, epsilon
        self._stopwords = dict(stopwords) if stopwords is not None else None
        lang_of = [langs] * len(texts) if isinstance(langs, str) else list(langs)
        if len(lang_of) != len(texts):
            raise ValueError(f"got {len(lang_of)} languages for {len(texts)} texts")
        self.vocab: dict[str, int] = {}
        corpus_ids = [
            [self.vocab.setdefault(t, len(self.vocab)) for t in self.tokenize(text, lang)]
            for text, lang in zip(texts, lang_of, strict=True)
        ]
        self.n_docs = len(texts)
        self.doc_lengths = np.array([len(ids) for ids in corpus_ids], dtype=np.int64)
        n_vocab = len(self.vocab)
        if n_vocab == 0:
            self._data = np.zeros(0)
            self._indptr = np.zeros(1, dtype=np.int64)
            self._docs = np.zeros(0, dtype=np.int64)
        else:
            model = bm25s.BM25(k1=k1, b=b, method="atire", idf_method="robertson", dtype="float64")
            model.index((corpus_ids, self.vocab), create_empty_token=False, show_progress=False)
            self._data = np.asarray(model.scores["data"], dtype=np.float64).copy()
            self._indptr = np.asarray(model.scores["indptr"], dtype=np.int64)
            self._docs = np.asarray(model.scores["indices"], dtype=np.int64)
            if epsilon is not None:
                self._apply_idf_floor(corpus_ids, epsilon)
        self._build_doc_major(n_vocab)

    def tokenize(self, text: str, lang: str) -> list[str]:
        stop = None if self._stopwords is None else self._stopwords.get(lang, ())
        return tokenize(text, lang, stopwords=stop)

    def _apply_idf_floor(self, corpus_ids: list[list[int]], epsilon: float) -> None:
        """Give negative-idf terms gensim's ``epsilon * mean(idf)`` instead of bm25s's 0."""
        df = np.diff(self._indptr)
        idf = np.log(self.n_docs - df + 0.5) - np.log(df + 0.5)
        negative = idf < 0
        if not negative.any():
            return
        floor = epsilon * float(idf.mean())
        n_vocab = idf.size
        total = int(self.doc_lengths.sum())
        tokens = np.fromiter((t for ids in corpus_ids for t in ids), dtype=np.int64, count=total)
        token_docs = np.repeat(np.arange(self.n_docs, dtype=np.int64), self.doc_lengths)
        chosen = negative[tokens]
        pair_codes, tf = np.unique(
            token_docs[chosen] * n_vocab + tokens[chosen], return_counts=True
        )
        avg_len = float(self.doc_lengths.mean())
        for term in np.flatnonzero(negative):
            start, stop = self._indptr[term], self._indptr[term + 1]
            docs = self._docs[start:stop]
            term_tf = tf[np.searchsorted(pair_codes, docs * n_vocab + term)].astype(np.float64)
            norm = self.k1 * (1 - self.b + self.b * self.doc_lengths[docs] / avg_len)
            self._data[start:stop] = floor * term_tf * (self.k1 + 1) / (term_tf + norm)

    def _build_doc_major(self, n_vocab: int) -> None:
        terms = np.repeat(np.arange(n_vocab, dtype=np.int64), np.diff(self._indptr))
        order = np.argsort(self._docs, kind="stable")
        self._row_terms = terms[order]
        self._row_weights = self._data[order]
        self._row_ptr = np.zeros(self.n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(self._docs, minlength=self.n_docs), out=self._row_ptr[1:])
        self._n_vocab = n_vocab

    def query_terms(self, text: str, lang: str) -> Counter[int]:
        """Term id -> occurrences in the query (terms unknown to the pool score nothing)."""
        return Counter(self.vocab[t] for t in self.tokenize(text, lang) if t in self.vocab)

    def score_candidates(
        self, queries: Sequence[str], langs: Sequence[str] | str, candidates: np.ndarray
    ) -> np.ndarray:
        """BM25 of query ``i`` against pool passages ``candidates[i]`` (``-1`` = none: NaN)."""
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(queries):
            raise ValueError(f"candidates must have shape ({len(queries)}, m), got {cand.shape}")
        lang_of = [langs] * len(queries) if isinstance(langs, str) else list(langs)
        out = np.full(cand.shape, np.nan, dtype=np.float64)
        valid = cand >= 0
        if not valid.any():
            return out
        if cand[valid].max() >= self.n_docs:
            raise IndexError(f"candidate index out of range for a pool of {self.n_docs}")

        query_keys: list[int] = []
        query_counts: list[int] = []
        for i, (text, lang) in enumerate(zip(queries, lang_of, strict=True)):
            for term, count in sorted(self.query_terms(text, lang).items()):
                query_keys.append(i * self._n_vocab + term)
                query_counts.append(count)
        keys = np.asarray(query_keys, dtype=np.int64)
        counts = np.asarray(query_counts, dtype=np.float64)

        pair_query, pair_slot = np.nonzero(valid)
        pair_doc = cand[pair_query, pair_slot]
        starts = self._row_ptr[pair_doc]
        lengths = self._row_ptr[pair_doc + 1] - starts
        entry_pair = np.repeat(np.arange(pair_doc.size), lengths)
        offsets = np.arange(entry_pair.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        entries = np.repeat(starts, lengths) + offsets
        entry_keys = pair_query[entry_pair] * self._n_vocab + self._row_terms[entries]
        scores = np.zeros(pair_doc.size, dtype=np.float64)
        if keys.size and entry_keys.size:
            where = np.minimum(np.searchsorted(keys, entry_keys), keys.size - 1)
            hit = keys[where] == entry_keys
            contributions = self._row_weights[entries[hit]] * counts[where[hit]]
            scores = np.bincount(entry_pair[hit], weights=contributions, minlength=pair_doc.size)
        out[pair_query, pair_slot] = scores
        return out

    def score(self, query: str, lang: str, candidates: Sequence[int] | np.ndarray) -> np.ndarray:
        """BM25 of one query against the given pool passages."""
        cand = np.asarray(candidates, dtype=np.int64).reshape(1, -1)
        return self.score_candidates([query], [lang], cand)[0]

    def score_all(self, query: str, lang: str) -> np.ndarray:
        """BM25 of one query against every pool passage (a full pass: for checks, not filtering)."""
        scores = np.zeros(self.n_docs, dtype=np.float64)
        for term, count in self.query_terms(query, lang).items():
            start, stop = self._indptr[term], self._indptr[term + 1]
            np.add.at(scores, self._docs[start:stop], count * self._data[start:stop])
        return scores
