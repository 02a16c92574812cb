"""Open NER by asking one question per entity type, as the model was trained (RA-IT, Fig. 1).

For every text: split it into windows when it is longer than the token budget
(:mod:`raitner.infer.chunking`), choose the in-context examples of each window (none, given
ones, or retrieved on demand from a pool), ask ``template.query_messages(window, label,
examples)`` for every label, read each answer leniently (:mod:`raitner.infer.parse`), find the
mentions in the window (:mod:`raitner.infer.align`) and merge the windows' entities.

On-demand retrieval (the paper's recommendation, section 3.5): with in-domain examples at hand
retrieve the nearest neighbours (``strategy="nn"``); with only out-domain examples filter them
by BM25 (``nn_bm25``) or use none. Each window is its own retrieval query; a window whose
examples were all filtered out is asked with the vanilla prompt, as in training.

Every raw answer is kept (:class:`QueryAnswer`), so that the papers' list metrics can score
exactly what the model said (:meth:`TextPrediction.raw_answers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raitner.infer.align import align_mentions, flatten
from raitner.infer.backends import DEFAULT_MAX_NEW_TOKENS, GenerationBackend
from raitner.infer.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    TokenSpans,
    Window,
    check_budget,
    merge_window_entities,
    split_text,
)
from raitner.infer.journal import AnswerJournal
from raitner.infer.parse import AnswerStatus, parse_mentions
from raitner.prompts.templates import Message, Template
from raitner.schema import Entity, Example

__all__ = [
    "ExamplesArg",
    "Predictor",
    "QueryAnswer",
    "TextPrediction",
    "load_pool",
]

#: ``None`` (no examples), ``"pool"`` (retrieve from the predictor's pool), one list of
#: examples for every text, or one list per text.
ExamplesArg = None | str | Sequence[Example] | Sequence[Sequence[Example]]

DEFAULT_BATCH_SIZE = 16


@dataclass(frozen=True)
class QueryAnswer:
    """One question asked about one window of one text, and what came back."""

    label: str
    #: index of the window in ``TextPrediction.windows``
    window: int
    #: the generated answer, verbatim
    answer: str
    status: AnswerStatus
    #: mentions read from the answer (lenient parser)
    mentions: tuple[str, ...]
    #: ids of the in-context examples of the prompt (empty: vanilla prompt)
    example_ids: tuple[str, ...] = ()


@dataclass
class TextPrediction:
    """Everything predicted for one text."""

    text: str
    labels: tuple[str, ...]
    #: entities with character offsets into ``text``, sorted by (start, end, label)
    entities: list[Entity]
    windows: list[Window]
    answers: list[QueryAnswer]
    #: (mention, label) pairs answered but not found in their window
    unaligned: list[tuple[str, str]] = field(default_factory=list)
    #: (mention, label) pairs found only inside longer mentions of the same label
    subsumed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def chunked(self) -> bool:
        return len(self.windows) > 1

    def to_dicts(self, *, flat_ner: bool = False) -> list[dict[str, Any]]:
        """``[{"start", "end", "text", "label"}]`` sorted by start (GLiNER's shape, no score).

        ``flat_ner`` keeps a non-overlapping subset (:func:`raitner.infer.align.flatten`).
        """
        entities = flatten(self.entities) if flat_ner else self.entities
        return [entity.to_dict() for entity in entities]

    def raw_answers(self, template: Template | None = None) -> dict[str, str]:
        """The answer to each label's question, for the papers' list metrics.

        For a text asked in one window this is the model's answer verbatim. A chunked text has
        one answer per window; its answer here is ``template.render_answer`` of the union of
        the mentions read from them (window order, de-duplicated), which needs ``template``.
        Evaluate with ``max_text_tokens=None`` to always score verbatim answers.
        """
        if not self.chunked:
            return {answer.label: answer.answer for answer in self.answers}
        if template is None:
            raise ValueError("a chunked text's answers are combined by a template: pass one")
        mentions: dict[str, dict[str, None]] = {label: {} for label in self.labels}
        for answer in self.answers:
            mentions[answer.label].update(dict.fromkeys(answer.mentions))
        return {label: template.render_answer(list(found)) for label, found in mentions.items()}

    def to_record(self, template: Template | None = None) -> dict[str, Any]:
        """A JSON-ready summary: entities, the types asked (``label_set``, so that a type
        without entities reads back as a true negative), raw answers, unaligned mentions, parse
        statuses."""
        return {
            "text": self.text,
            "entities": self.to_dicts(),
            "label_set": list(self.labels),
            "answers": self.raw_answers(template),
            "unaligned": [list(pair) for pair in self.unaligned],
            "statuses": [str(answer.status) for answer in self.answers],
            "windows": [[w.start, w.end] for w in self.windows],
            "example_ids": [list(answer.example_ids) for answer in self.answers],
        }


def load_pool(pool: Sequence[Example] | str | Path) -> list[Example]:
    """Examples from a list, or from an annotated file (span JSONL, UniversalNER or Label
    Studio JSON, token/tag columns: :mod:`raitner.io.user_files`); ids must be unique
    (retrieval returns ids)."""
    if isinstance(pool, (str, Path)):
        from raitner.io.user_files import read_user_file

        examples = read_user_file(pool)
    else:
        examples = list(pool)
    for example in examples:
        if not isinstance(example, Example):
            raise TypeError(f"a pool holds Examples, got {type(example).__name__}")
    seen: set[str] = set()
    for example in examples:
        if example.id in seen:
            raise ValueError(f"pool example ids must be unique; {example.id!r} repeats")
        seen.add(example.id)
    return examples


class _PoolEmbedder:
    """Keeps the vectors of the pool's texts, so that a pool is encoded once per predictor
    rather than on every call; query texts are encoded each time and not kept."""

    def __init__(self, embedder: Any, pool_texts: Sequence[str]) -> None:
        self.inner = embedder
        self.name = embedder.name
        self._pool_texts = set(pool_texts)
        self._vectors: dict[str, np.ndarray] = {}
        self._word_vectors: dict[str, np.ndarray] = {}

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        new = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        found: dict[str, np.ndarray] = {}
        if new:
            vectors = self.inner.encode(new, batch_size=batch_size, show_progress=show_progress)
            found = dict(zip(new, np.asarray(vectors, dtype=np.float32), strict=True))
            self._vectors.update((t, v) for t, v in found.items() if t in self._pool_texts)
        return np.stack([self._vectors.get(text, found.get(text)) for text in texts])

    def encode_words(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> list[np.ndarray]:
        """Word vectors (word-level retrieval), the pool's kept like its sentence vectors."""
        from raitner.retrieval.word_level import word_encoder

        encode_words = word_encoder(self.inner)
        new = [text for text in dict.fromkeys(texts) if text not in self._word_vectors]
        found: dict[str, np.ndarray] = {}
        if new:
            vectors = encode_words(new, batch_size=batch_size, show_progress=show_progress)
            found = dict(zip(new, vectors, strict=True))
            self._word_vectors.update((t, v) for t, v in found.items() if t in self._pool_texts)
        return [self._word_vectors.get(text, found.get(text)) for text in texts]


@dataclass
class _Query:
    text_index: int
    window: int
    label: str
    examples: tuple[Example, ...]


class Predictor:
    """Runs a :class:`GenerationBackend` over (text, label) questions and returns entities.

    Args:
        backend: generates the answers (e.g. :class:`raitner.infer.backends.HFBackend`).
        template: the conversation the model was trained with.
        pool: examples to retrieve from with ``examples="pool"`` (a list or a JSONL path).
        retrieval: how to retrieve (default ``RetrievalConfig()``: NN, k=2).
        embedder: sentence embedder for retrieval (default: the embedded
            ``SentenceTransformerEmbedder()``, loaded only when first needed).
        max_new_tokens: generation limit per answer.
        max_text_tokens: token budget per window (``None``: never split); see chunking.
        overlap_tokens: overlap between consecutive windows.
        token_spans: token character spans for chunking; default: the backend's
            ``token_spans`` if it has one, else :func:`approximate_token_spans`.
        batch_size: questions handed to the backend per call (the progress bar's step).
        show_progress: tqdm progress bar over questions.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        template: Template,
        *,
        pool: Sequence[Example] | str | Path | None = None,
        retrieval: Any = None,
        embedder: Any = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_text_tokens: int | None = DEFAULT_MAX_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
        token_spans: TokenSpans | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool = True,
    ) -> None:
        check_budget(max_text_tokens, overlap_tokens)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = backend
        self.template = template
        self.pool = load_pool(pool) if pool is not None else None
        self.retrieval = _retrieval_config(retrieval)
        self._embedder = self._pool_embedder(embedder) if embedder is not None else None
        self._bm25: Any = None
        self.max_new_tokens = max_new_tokens
        self.max_text_tokens = max_text_tokens
        self.overlap_tokens = overlap_tokens
        self.token_spans = token_spans or getattr(backend, "token_spans", None)
        self.batch_size = batch_size
        self.show_progress = show_progress

    @property
    def embedder(self) -> Any:
        """The sentence embedder for retrieval (None while not given and not needed yet)."""
        return None if self._embedder is None else self._embedder.inner

    def split(self, text: str) -> list[Window]:
        return split_text(
            text,
            max_tokens=self.max_text_tokens,
            overlap_tokens=self.overlap_tokens,
            token_spans=self.token_spans,
        )

    def conversations(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        examples: ExamplesArg = None,
    ) -> list[list[Message]]:
        """The conversations :meth:`predict` hands to the backend, in the same order."""
        windows = [self.split(text) for text in texts]
        queries = self._queries(windows, _labels_per_text(labels, len(texts)), examples)
        return [self._messages(windows, query) for query in queries]

    def predict(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        examples: ExamplesArg = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        journal: AnswerJournal | None = None,
    ) -> list[TextPrediction]:
        """Entities for every text.

        Args:
            texts: the input texts.
            labels: entity types asked about every text, or one list per text.
            examples: ``None`` (no in-context examples), ``"pool"`` (retrieve from the pool),
                a list of Examples used for every text, or one list of Examples per text.
            batch_size: questions per backend call (default: the predictor's).
            show_progress: override the predictor's setting.
            journal: keeps each block's answers as they come (:mod:`raitner.infer.journal`);
                a rerun with the same journal and questions asks only what it lacks.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; use [text] for one text")
        per_text_labels = _labels_per_text(labels, len(texts))
        windows = [self.split(text) for text in texts]
        queries = self._queries(windows, per_text_labels, examples)
        answers = self._generate(
            [self._messages(windows, query) for query in queries],
            batch_size or self.batch_size,
            self.show_progress if show_progress is None else show_progress,
            journal,
        )
        by_text: list[list[tuple[_Query, str]]] = [[] for _ in texts]
        for query, answer in zip(queries, answers, strict=True):
            by_text[query.text_index].append((query, answer))
        return [
            self._assemble(text, tuple(text_labels), text_windows, answered)
            for text, text_labels, text_windows, answered in zip(
                texts, per_text_labels, windows, by_text, strict=True
            )
        ]

    def _messages(self, windows: list[list[Window]], query: _Query) -> list[Message]:
        window = windows[query.text_index][query.window]
        return self.template.query_messages(window.text, query.label, query.examples)

    def _generate(
        self,
        conversations: list[list[Message]],
        batch_size: int,
        show_progress: bool,
        journal: AnswerJournal | None = None,
    ) -> list[str]:
        from tqdm.auto import tqdm

        answers: list[str] = []
        if journal is not None:
            answers = journal.start(conversations, self.max_new_tokens)
        with tqdm(
            total=len(conversations),
            initial=len(answers),
            desc="questions",
            unit="q",
            disable=not show_progress,
        ) as bar:
            for offset in range(len(answers), len(conversations), batch_size):
                block = conversations[offset : offset + batch_size]
                replies = self.backend.generate(block, self.max_new_tokens)
                if len(replies) != len(block):
                    raise RuntimeError(
                        f"the backend returned {len(replies)} answers for {len(block)} questions"
                    )
                answers.extend(replies)
                if journal is not None:
                    journal.append(replies)
                bar.update(len(block))
        return answers

    def _queries(
        self,
        windows: list[list[Window]],
        labels: list[list[str]],
        examples: ExamplesArg,
    ) -> list[_Query]:
        window_examples = self._examples(windows, examples)
        return [
            _Query(text_index, window_index, label, window_examples[text_index][window_index])
            for text_index, text_windows in enumerate(windows)
            for window_index in range(len(text_windows))
            for label in labels[text_index]
        ]

    def _examples(
        self, windows: list[list[Window]], examples: ExamplesArg
    ) -> list[list[tuple[Example, ...]]]:
        """In-context examples of every window of every text."""
        if examples is None:
            return [[()] * len(text_windows) for text_windows in windows]
        if isinstance(examples, str):
            if examples != "pool":
                raise ValueError(f"examples must be None, 'pool' or Examples, got {examples!r}")
            return self._retrieve(windows)
        given = list(examples)
        if all(isinstance(item, Example) for item in given):
            shared = tuple(given)
            return [[shared] * len(text_windows) for text_windows in windows]
        if len(given) != len(windows):
            raise ValueError(f"{len(given)} example lists for {len(windows)} texts")
        per_text = []
        for text_windows, text_examples in zip(windows, given, strict=True):
            chosen = tuple(text_examples)
            if not all(isinstance(item, Example) for item in chosen):
                raise TypeError("examples must be Examples (or lists of them, one per text)")
            per_text.append([chosen] * len(text_windows))
        return per_text

    def _retrieve(self, windows: list[list[Window]]) -> list[list[tuple[Example, ...]]]:
        from raitner.retrieval import BM25Scorer, retrieve

        if self.pool is None:
            raise ValueError("examples='pool' needs a pool (pass pool= to the predictor)")
        lang = self.template.lang
        if not any(windows):
            return [[] for _ in windows]
        queries = [
            Example(id=f"query:{t}:{w}", text=window.text, lang=lang)
            for t, text_windows in enumerate(windows)
            for w, window in enumerate(text_windows)
        ]
        config = self.retrieval
        embedder = self._embedder_for(config)
        bm25 = None
        if config.strategy in ("nn_bm25", "diverse_nn_bm25") and self.pool:
            if self._bm25 is None:
                self._bm25 = BM25Scorer([p.text for p in self.pool], [p.lang for p in self.pool])
            bm25 = self._bm25
        found = retrieve(queries, self.pool, config, embedder, exclude_self=False, bm25=bm25)
        by_id = {example.id: example for example in self.pool}
        chosen = iter(tuple(by_id[i] for i in result.example_ids) for result in found)
        return [[next(chosen) for _ in text_windows] for text_windows in windows]

    def _pool_embedder(self, embedder: Any) -> _PoolEmbedder:
        return _PoolEmbedder(embedder, [example.text for example in self.pool or ()])

    def _embedder_for(self, config: Any) -> Any:
        if config.strategy == "random":
            return None
        if self._embedder is None:
            from raitner.retrieval import SentenceTransformerEmbedder

            self._embedder = self._pool_embedder(SentenceTransformerEmbedder())
        return self._embedder

    def _assemble(
        self,
        text: str,
        labels: tuple[str, ...],
        windows: list[Window],
        answered: list[tuple[_Query, str]],
    ) -> TextPrediction:
        per_window: list[list[tuple[str, str]]] = [[] for _ in windows]
        answers = []
        for query, answer in answered:
            parsed = parse_mentions(answer)
            per_window[query.window].extend((mention, query.label) for mention in parsed.mentions)
            answers.append(
                QueryAnswer(
                    label=query.label,
                    window=query.window,
                    answer=answer,
                    status=parsed.status,
                    mentions=parsed.mentions,
                    example_ids=tuple(example.id for example in query.examples),
                )
            )
        alignments = [
            align_mentions(window.text, pairs)
            for window, pairs in zip(windows, per_window, strict=True)
        ]
        return TextPrediction(
            text=text,
            labels=labels,
            entities=merge_window_entities(windows, (a.entities for a in alignments)),
            windows=windows,
            answers=answers,
            unaligned=list(dict.fromkeys(p for a in alignments for p in a.unaligned)),
            subsumed=list(dict.fromkeys(p for a in alignments for p in a.subsumed)),
        )


def _retrieval_config(retrieval: Any) -> Any:
    from raitner.retrieval import RetrievalConfig

    if retrieval is None:
        return RetrievalConfig()
    if isinstance(retrieval, RetrievalConfig):
        return retrieval
    return RetrievalConfig.from_dict(retrieval)


def _labels_per_text(
    labels: str | Sequence[str] | Sequence[Sequence[str]], n_texts: int
) -> list[list[str]]:
    """One de-duplicated label list per text."""
    if isinstance(labels, str):
        labels = [labels]
    items = list(labels)
    if all(isinstance(label, str) for label in items):
        shared = _checked_labels(items)
        return [list(shared) for _ in range(n_texts)]
    if len(items) != n_texts:
        raise ValueError(f"{len(items)} label lists for {n_texts} texts")
    return [_checked_labels([item] if isinstance(item, str) else list(item)) for item in items]


def _checked_labels(labels: list[Any]) -> list[str]:
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"labels must be non-empty strings, got {label!r}")
    return list(dict.fromkeys(labels))
