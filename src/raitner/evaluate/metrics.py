"""NER metrics as the RA-IT and UniversalNER papers compute them, plus strict span F1.

Two list metrics score one answer per (text, entity type) query. The gold is the list of
mention strings; the prediction is the model's answer text, from which a JSON list of
mentions is read. Both references (UniversalNER ``src/eval/evaluate.py``, the RA-IT authors'
``src/llm_tuning/evaluation/evaluate.py``) apply the same steps, and so does raitner:

1. Find the list with the pattern ``\\[.*?\\]``: a ``[`` then the shortest run of characters
   up to the first ``]``. ``.`` does not match a newline, so a list broken over several lines
   is never found.

   * ``uniner`` rule: the pattern must match at the very start of the answer (``re.match``).
     UniversalNER's inference first keeps the text after the last ``ASSISTANT:`` and strips
     surrounding whitespace; :func:`uniner_f1` does the same to predictions (``clean=True``).
   * ``ra_it`` rule: the first match anywhere in the answer (``re.search``), so prose before
     the list is fine; the answer is taken as it is.

   No match means an empty prediction (status ``no_list``): prose with no list, a truncated
   list such as ``["a", "b``, a non-list JSON value, an empty answer.
2. Decode the match with ``json.loads`` (double quotes only, no control characters such as a
   raw tab inside a string, no trailing comma). A mention containing ``]`` cuts the match short
   and fails to decode. Failure, or any item that is not a string (number, ``null``, object),
   discards the *whole* answer: empty prediction, status ``invalid``. (The references would
   turn a nested list into a tuple of normalised strings, but a match holds exactly one ``]``,
   so a nested list can never decode; raitner has no such branch.)
3. Normalise every mention with :func:`normalize_answer` and de-duplicate (first occurrence
   kept). Normalised strings are compared whole, never character by character.
4. Micro counts over all queries: ``tp = |pred ∩ gold|``, ``n_pred = |pred|``,
   ``n_gold = |gold|`` (both de-duplicated after normalisation); precision ``tp / n_pred``,
   recall ``tp / n_gold``, F1 their harmonic mean. A query with empty gold and empty prediction
   adds nothing; a prediction for an empty gold adds false positives only.

Where raitner deliberately differs:

* The references add ``1e-10`` to every denominator; raitner computes the exact ratios and
  defines ``x / 0 = 0``. The difference is below ``1e-9``, invisible at two decimals;
  :func:`reference_scores` reproduces the smoothed numbers when needed.
* Both references score a ``no_list`` answer as empty without counting it, and only the RA-IT
  copy counts ``invalid`` answers (its ``n_unparsed_pred``). raitner counts both, separately:
  ``n_no_list``, ``n_invalid`` (= RA-IT's ``n_unparsed_pred``) and their sum ``n_unparseable``.
* A gold given as a raw answer string is parsed with the same rule, as the references do
  (a gold that fails is scored as empty and counted in ``n_unparsed_gold``; RA-IT's Boson test
  file has one, with a raw tab inside a mention). A gold given as a list of strings is
  normalised directly, without the JSON round trip.

Chinese: normalisation is the references' SQuAD-style one applied unchanged. It lowercases
(Unicode ``str.lower``, so full-width Latin letters too), removes ASCII punctuation only
(``string.punctuation``: full-width ``，。、《》“”（）：`` and ``·`` stay, so ``《红楼梦》`` does
not match ``红楼梦`` while ``(红楼梦)`` does), removes the words ``a``/``an``/``the`` only
between Unicode word boundaries (CJK characters are word characters, so the ``a`` of ``A股``
stays), and collapses Unicode whitespace (including U+3000 and U+00A0) to single spaces.
"""

from __future__ import annotations

import enum
import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raitner.errors import UnknownNameError
from raitner.schema import Entity, Example

UNINER = "uniner"
RA_IT = "ra_it"
SPAN = "span"
RULES = (UNINER, RA_IT)

#: The references' 1e-10 denominator smoothing (see :func:`reference_scores`).
REFERENCE_EPSILON = 1e-10

_BRACKETED = re.compile(r"\[.*?\]")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_DROP_ASCII_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace.

    The steps run in that order, so ``"The U.S."`` and ``"U.S"`` both become ``"us"``, and a
    mention that is only an article (``"A"``) becomes the empty string, which still counts as a
    mention.
    """
    lowered = text.lower()
    without_punctuation = lowered.translate(_DROP_ASCII_PUNCTUATION)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return " ".join(without_articles.split())


def clean_uniner_response(text: str) -> str:
    """UniversalNER's post-processing of a generation: text after the last ``ASSISTANT:``,
    stripped."""
    return text.rsplit("ASSISTANT:", 1)[-1].strip()


class ParseStatus(enum.StrEnum):
    OK = "ok"
    #: no ``[...]`` where the rule looks (prose only, truncated list, non-list JSON, empty)
    NO_LIST = "no_list"
    #: a ``[...]`` was found but is not a JSON list of strings
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """Normalised, de-duplicated mentions (in answer order) and how reading the list went."""

    mentions: tuple[str, ...]
    status: ParseStatus

    @property
    def ok(self) -> bool:
        return self.status is ParseStatus.OK


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise UnknownNameError("answer parsing rule", rule, list(RULES))


def parse_answer(text: str, rule: str = UNINER) -> ParsedAnswer:
    """Read the mention list from an answer by ``rule`` (``"uniner"`` or ``"ra_it"``).

    No cleaning is applied here: for the ``uniner`` rule the answer must already start with
    ``[`` (see :func:`clean_uniner_response`).
    """
    _check_rule(rule)
    if not isinstance(text, str):
        raise TypeError(f"an answer must be a string, got {type(text).__name__}")
    found = _BRACKETED.match(text) if rule == UNINER else _BRACKETED.search(text)
    if found is None:
        return ParsedAnswer((), ParseStatus.NO_LIST)
    try:
        items = json.loads(found.group())
    except ValueError:
        return ParsedAnswer((), ParseStatus.INVALID)
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        return ParsedAnswer((), ParseStatus.INVALID)
    return ParsedAnswer(tuple(dict.fromkeys(map(normalize_answer, items))), ParseStatus.OK)


@dataclass(frozen=True, slots=True)
class Counts:
    """Micro counts with precision, recall and F1 as fractions in [0, 1] (``x / 0 = 0``)."""

    tp: int = 0
    n_pred: int = 0
    n_gold: int = 0

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_gold if self.n_gold else 0.0

    @property
    def f1(self) -> float:
        total = self.n_pred + self.n_gold
        return 2 * self.tp / total if total else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.n_pred + other.n_pred, self.n_gold + other.n_gold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "n_pred": self.n_pred,
            "n_gold": self.n_gold,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counts:
        return cls(int(data["tp"]), int(data["n_pred"]), int(data["n_gold"]))


def reference_scores(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """(precision, recall, F1) exactly as the references compute them, with 1e-10 smoothing."""
    precision = tp / (n_pred + REFERENCE_EPSILON)
    recall = tp / (n_gold + REFERENCE_EPSILON)
    f1 = 2 * precision * recall / (precision + recall + REFERENCE_EPSILON)
    return precision, recall, f1


@dataclass(frozen=True)
class NERResult:
    """One benchmark's score: micro counts, answer-reading counters, per-type counts.

    ``n_queries`` is the number of (text, type) queries for the list metrics and the number of
    examples for span F1. ``n_no_list`` and ``n_invalid`` count predictions scored as empty
    because no list could be read (:class:`ParseStatus`); ``n_unparseable`` is their sum.
    ``n_empty_pred`` counts queries whose scored prediction is empty for any reason (an answer
    ``[]`` included); ``n_empty_gold`` likewise for the gold.

    ``item_counts`` holds the counts of every query (list metrics) or example (span F1), in
    input order, for resampling (:mod:`raitner.evaluate.significance`); it is not part of
    :meth:`to_dict`, so a result read back from JSON has none.
    """

    metric: str
    tp: int
    n_pred: int
    n_gold: int
    n_queries: int
    n_no_list: int = 0
    n_invalid: int = 0
    n_empty_pred: int = 0
    n_empty_gold: int = 0
    n_unparsed_gold: int = 0
    per_type: Mapping[str, Counts] = field(default_factory=dict)
    item_counts: tuple[Counts, ...] = field(default=(), repr=False, compare=False)

    @property
    def counts(self) -> Counts:
        return Counts(self.tp, self.n_pred, self.n_gold)

    @property
    def precision(self) -> float:
        return self.counts.precision

    @property
    def recall(self) -> float:
        return self.counts.recall

    @property
    def f1(self) -> float:
        return self.counts.f1

    @property
    def n_unparseable(self) -> int:
        return self.n_no_list + self.n_invalid

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "tp": self.tp,
            "n_pred": self.n_pred,
            "n_gold": self.n_gold,
            "n_queries": self.n_queries,
            "n_unparseable": self.n_unparseable,
            "n_no_list": self.n_no_list,
            "n_invalid": self.n_invalid,
            "n_empty_pred": self.n_empty_pred,
            "n_empty_gold": self.n_empty_gold,
            "n_unparsed_gold": self.n_unparsed_gold,
            "per_type": {name: counts.to_dict() for name, counts in self.per_type.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NERResult:
        """Rebuild from :meth:`to_dict` output (scores are recomputed from the counts)."""
        return cls(
            metric=str(data["metric"]),
            tp=int(data["tp"]),
            n_pred=int(data["n_pred"]),
            n_gold=int(data["n_gold"]),
            n_queries=int(data["n_queries"]),
            n_no_list=int(data.get("n_no_list", 0)),
            n_invalid=int(data.get("n_invalid", 0)),
            n_empty_pred=int(data.get("n_empty_pred", 0)),
            n_empty_gold=int(data.get("n_empty_gold", 0)),
            n_unparsed_gold=int(data.get("n_unparsed_gold", 0)),
            per_type={
                name: Counts.from_dict(counts)
                for name, counts in dict(data.get("per_type", {})).items()
            },
        )


def _gold_mentions(gold: str | Sequence[str], rule: str) -> tuple[tuple[str, ...], bool]:
    """Normalised gold mentions and whether the gold could be read."""
    if isinstance(gold, str):
        parsed = parse_answer(gold, rule)
        return parsed.mentions, parsed.ok
    mentions = list(gold)
    for mention in mentions:
        if not isinstance(mention, str):
            raise TypeError(f"gold mentions must be strings, got {mention!r}")
    return tuple(dict.fromkeys(map(normalize_answer, mentions))), True


def _check_lengths(predictions: Sequence[Any], golds: Sequence[Any], types: Any) -> None:
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} golds")
    if types is not None and len(types) != len(golds):
        raise ValueError(f"{len(types)} types for {len(golds)} golds")


def list_f1(
    predictions: Sequence[str],
    golds: Sequence[str | Sequence[str]],
    types: Sequence[str] | None = None,
    *,
    rule: str = UNINER,
    clean: bool | None = None,
) -> NERResult:
    """Micro F1 over (text, type) queries by ``rule``; see the module docstring.

    ``predictions[i]`` is the model's answer text for query ``i``; ``golds[i]`` its gold, a
    list of mention strings or a raw gold answer string (parsed by the same rule). ``types[i]``
    (optional) names the query's entity type, for the per-type breakdown. ``clean`` applies
    :func:`clean_uniner_response` to predictions; by default it does for the ``uniner`` rule
    only, as in each reference pipeline.
    """
    _check_rule(rule)
    _check_lengths(predictions, golds, types)
    if clean is None:
        clean = rule == UNINER
    total = Counts()
    per_type: dict[str, Counts] = {}
    items: list[Counts] = []
    statuses = dict.fromkeys(ParseStatus, 0)
    empty_pred = empty_gold = unparsed_gold = 0
    for index, (prediction, gold) in enumerate(zip(predictions, golds, strict=True)):
        if not isinstance(prediction, str):
            raise TypeError(f"prediction {index} must be a string, got {prediction!r}")
        parsed = parse_answer(clean_uniner_response(prediction) if clean else prediction, rule)
        gold_mentions, gold_ok = _gold_mentions(gold, rule)
        statuses[parsed.status] += 1
        empty_pred += not parsed.mentions
        empty_gold += not gold_mentions
        unparsed_gold += not gold_ok
        gold_set = set(gold_mentions)
        counts = Counts(
            sum(mention in gold_set for mention in parsed.mentions),
            len(parsed.mentions),
            len(gold_mentions),
        )
        total += counts
        items.append(counts)
        if types is not None:
            per_type[types[index]] = per_type.get(types[index], Counts()) + counts
    return NERResult(
        metric=rule,
        tp=total.tp,
        n_pred=total.n_pred,
        n_gold=total.n_gold,
        n_queries=len(golds),
        n_no_list=statuses[ParseStatus.NO_LIST],
        n_invalid=statuses[ParseStatus.INVALID],
        n_empty_pred=empty_pred,
        n_empty_gold=empty_gold,
        n_unparsed_gold=unparsed_gold,
        per_type=per_type,
        item_counts=tuple(items),
    )


def uniner_f1(
    predictions: Sequence[str],
    golds: Sequence[str | Sequence[str]],
    types: Sequence[str] | None = None,
    *,
    clean: bool = True,
) -> NERResult:
    """UniversalNER's micro F1: the answer (cleaned as their inference does) must start with
    its list."""
    return list_f1(predictions, golds, types, rule=UNINER, clean=clean)


def ra_it_f1(
    predictions: Sequence[str],
    golds: Sequence[str | Sequence[str]],
    types: Sequence[str] | None = None,
) -> NERResult:
    """The RA-IT authors' micro F1: the first one-line ``[...]`` anywhere in the answer."""
    return list_f1(predictions, golds, types, rule=RA_IT, clean=False)


Span = tuple[int, int, str]
_TP, _PRED, _GOLD = Counts(1, 0, 0), Counts(0, 1, 0), Counts(0, 0, 1)
SpanLike = Entity | Sequence[Any] | Mapping[str, Any]


def _spans(item: Example | Iterable[SpanLike], where: str) -> set[Span]:
    entities = item.entities if isinstance(item, Example) else item
    spans: set[Span] = set()
    for entity in entities:
        if isinstance(entity, Entity):
            span = (entity.start, entity.end, entity.label)
        elif isinstance(entity, Mapping):
            span = (int(entity["start"]), int(entity["end"]), str(entity["label"]))
        elif isinstance(entity, Sequence) and not isinstance(entity, str) and len(entity) == 3:
            start, end, label = entity
            span = (int(start), int(end), str(label))
        else:
            raise TypeError(
                f"{where}: expected an Entity, a (start, end, label) triple or a mapping with "
                f"start/end/label, got {entity!r}"
            )
        spans.add(span)
    return spans


def span_f1(
    predictions: Sequence[Example | Iterable[SpanLike]],
    golds: Sequence[Example | Iterable[SpanLike]],
) -> NERResult:
    """Strict span F1: a predicted (start, end, label) is right only if the gold has it exactly.

    One item per example on each side: an :class:`Example` (its entities), or an iterable of
    Entities, ``(start, end, label)`` triples or mappings with those keys. Offsets are character
    offsets with ``end`` exclusive. Spans are sets per example (duplicates count once);
    overlapping or nested spans are scored independently. A right span with the wrong label is
    a false positive for the predicted label and a false negative for the gold one.
    """
    _check_lengths(predictions, golds, None)
    total = Counts()
    per_type: dict[str, Counts] = {}
    items: list[Counts] = []
    empty_pred = empty_gold = 0
    for index, (prediction, gold) in enumerate(zip(predictions, golds, strict=True)):
        pred_spans = _spans(prediction, f"prediction {index}")
        gold_spans = _spans(gold, f"gold {index}")
        empty_pred += not pred_spans
        empty_gold += not gold_spans
        correct = pred_spans & gold_spans
        items.append(Counts(len(correct), len(pred_spans), len(gold_spans)))
        total += items[-1]
        for spans, one in ((correct, _TP), (pred_spans, _PRED), (gold_spans, _GOLD)):
            for _, _, label in spans:
                per_type[label] = per_type.get(label, Counts()) + one
    return NERResult(
        metric=SPAN,
        tp=total.tp,
        n_pred=total.n_pred,
        n_gold=total.n_gold,
        n_queries=len(golds),
        n_empty_pred=empty_pred,
        n_empty_gold=empty_gold,
        per_type=dict(sorted(per_type.items())),
        item_counts=tuple(items),
    )


def conversation_golds(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The gold answer (last turn's ``value``) of each sharegpt-style conversation record, as
    both references read it from their test files."""
    return [str(record["conversations"][-1]["value"]) for record in records]
