"""Which entity types to ask about for one training text.

Open-type data (Pile-NER, teacher-distilled data) only lists the types present in a text. As
UniversalNER and RA-IT do, questions about absent types ("negative types", answer ``[]``) are
added by sampling types with probability proportional to their frequency in the whole dataset
(frequency = number of mentions, as the RA-IT script counts it). The number of negatives
follows the RA-IT script: for each positive type, one negative is added with probability
``probability`` (0.5 in their Sky-NER build). The positive and negative types are then
shuffled. Unlike that script, which calls ``random.sample(..., counts=...)`` and can draw the
same type twice (then silently collapses it), negatives here are drawn without replacement.

Data with a closed label set (benchmarks, Pile-NER rows with explicit negative questions)
carries ``Example.label_set``: every type in it is asked (its absent types are true
negatives) and nothing is sampled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from raitner.schema import Example


@dataclass(frozen=True)
class NegativeSampling:
    #: per positive type, the chance of adding one sampled negative type.
    probability: float = 0.5
    #: shuffle the order of questions (positives and negatives mixed).
    shuffle: bool = True
    #: ask every type of ``Example.label_set`` when it has one (no sampling).
    use_label_set: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(
                f"negative sampling probability must be in [0, 1], got {self.probability}"
            )


def mention_frequencies(examples: Iterable[Example]) -> dict[str, int]:
    """Number of unique (mention, type) pairs per type over a dataset."""
    counts: dict[str, int] = {}
    for example in examples:
        for _mention, label in example.mention_label_pairs():
            counts[label] = counts.get(label, 0) + 1
    return counts


class NegativeTypeSampler:
    """Chooses the questions for each text; deterministic given the generator it is handed."""

    def __init__(self, type_frequencies: Mapping[str, int], config: NegativeSampling | None = None):
        self.config = config or NegativeSampling()
        self._types = [t for t, n in type_frequencies.items() if n > 0]
        self._weights = np.array([type_frequencies[t] for t in self._types], dtype=np.float64)
        self._index = {t: i for i, t in enumerate(self._types)}

    def negatives(self, positives: Iterable[str], rng: np.random.Generator) -> list[str]:
        positive_list = list(dict.fromkeys(positives))
        wanted = int((rng.random(len(positive_list)) < self.config.probability).sum())
        weights = self._weights.copy()
        for label in positive_list:
            if label in self._index:
                weights[self._index[label]] = 0.0
        available = int((weights > 0).sum())
        wanted = min(wanted, available)
        if wanted == 0:
            return []
        chosen = rng.choice(len(self._types), size=wanted, replace=False, p=weights / weights.sum())
        return [self._types[i] for i in chosen]

    def types_for(self, example: Example, rng: np.random.Generator) -> list[str]:
        """The types to ask about for ``example``, in question order."""
        if self.config.use_label_set and example.label_set:
            types = example.labels
        else:
            positives = list(dict.fromkeys(e.label for e in example.entities))
            types = positives + self.negatives(positives, rng)
        if self.config.shuffle:
            order = rng.permutation(len(types))
            types = [types[i] for i in order]
        return types
