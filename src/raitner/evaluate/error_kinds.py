"""Where a model's list-metric errors come from: wrong type, not a gold mention, missed.

The papers' list F1 (:mod:`raitner.evaluate.metrics`) counts a predicted mention as a false
positive whatever the reason. Across the questions of one text two reasons differ a lot in
what they say about the model:

* **wrong type**: the mention is a gold mention of the text, but of another of the asked types
  (``"The Clash"`` answered for *musical instrument* when the gold has it as *band*). The model
  found the span and failed on the type.
* **not gold**: the mention is gold for none of the asked types of the text (a spurious span,
  a boundary error such as ``"the Clash's"``, a word the annotators did not mark).

Gold mentions of a type that the answer for that type lacks are **missed**. Mentions are read
and compared exactly as the list metric does (same answer rule, UniversalNER's cleaning for the
``uniner`` rule, :func:`~raitner.evaluate.metrics.normalize_answer`, de-duplicated per
question), so ``tp + wrong_type + not_gold`` is the metric's ``n_pred`` and ``tp + missed`` its
``n_gold``. Only the asked types count as gold: a mention whose only gold type was not asked
(CrossNER's ``misc`` in the zero-shot protocol) is "not gold".

For the wrong-type mentions, :func:`error_kinds` also counts each (gold type, answered type)
pair: a confusion list that names the types a model mixes up.

Imports nothing heavy: the standard library and raitner's own metrics and schema.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from raitner.evaluate.metrics import UNINER, clean_uniner_response, normalize_answer, parse_answer
from raitner.schema import Example

__all__ = ["ErrorKinds", "error_kinds"]


@dataclass(frozen=True)
class ErrorKinds:
    """One benchmark's predicted and gold mentions sorted by kind (see the module notes)."""

    tp: int
    #: predicted mentions that are gold for another asked type of the same text
    wrong_type: int
    #: predicted mentions that are gold for no asked type of the text
    not_gold: int
    #: gold mentions not predicted for their type
    missed: int
    #: ``(gold type, answered type) -> count`` over the wrong-type mentions; a mention gold
    #: for several other types counts once for each
    confusions: Mapping[tuple[str, str], int]

    @property
    def n_pred(self) -> int:
        return self.tp + self.wrong_type + self.not_gold

    @property
    def n_gold(self) -> int:
        return self.tp + self.missed

    def top_confusions(self, n: int | None = None) -> list[tuple[str, str, int]]:
        """``(gold type, answered type, count)``, most frequent first (ties by name)."""
        ranked = sorted(self.confusions.items(), key=lambda item: (-item[1], item[0]))
        return [(gold, answered, count) for (gold, answered), count in ranked[:n]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "wrong_type": self.wrong_type,
            "not_gold": self.not_gold,
            "missed": self.missed,
            "n_pred": self.n_pred,
            "n_gold": self.n_gold,
            "confusions": [
                {"gold": gold, "answered": answered, "count": count}
                for gold, answered, count in self.top_confusions()
            ],
        }


def error_kinds(
    golds: Sequence[Example],
    types: Sequence[str],
    answers: Sequence[Mapping[str, str]],
    *,
    rule: str = UNINER,
) -> ErrorKinds:
    """Sort the mentions of one benchmark's answers by kind.

    ``answers[i]`` maps each type in ``types`` to the model's answer for text ``golds[i]`` (a
    type missing from it counts as an empty answer, as in the list metric); ``rule`` is the
    metric's answer rule (``"uniner"``, with UniversalNER's cleaning, or ``"ra_it"``).
    """
    if len(golds) != len(answers):
        raise ValueError(f"{len(answers)} answer sets for {len(golds)} texts")
    tp = wrong_type = not_gold = missed = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for example, per_type in zip(golds, answers, strict=True):
        gold = {label: set(map(normalize_answer, example.mentions(label))) for label in types}
        gold_types: dict[str, list[str]] = {}
        for label in types:
            for mention in gold[label]:
                gold_types.setdefault(mention, []).append(label)
        for label in types:
            answer = per_type.get(label, "")
            if rule == UNINER:
                answer = clean_uniner_response(answer)
            predicted = parse_answer(answer, rule).mentions
            found = gold[label].intersection(predicted)
            tp += len(found)
            missed += len(gold[label]) - len(found)
            for mention in predicted:
                if mention in found:
                    continue
                elsewhere = gold_types.get(mention)
                if elsewhere:
                    wrong_type += 1
                    confusions.update((other, label) for other in elsewhere)
                else:
                    not_gold += 1
    return ErrorKinds(tp, wrong_type, not_gold, missed, dict(confusions))
