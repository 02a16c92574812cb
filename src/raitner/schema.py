"""The one record every reader yields and every later stage consumes.

Offsets are character offsets into ``Example.text`` with ``end`` exclusive, so that
``example.text[entity.start:entity.end] == entity.text`` always holds; it is checked when an
``Example`` is constructed.

``Example.entities`` keeps the order in which the source listed the mentions (text order for
tagged corpora, the annotator's order for mention lists such as Boson's or Pile-NER's).
Templates render answers in that order, which is what lets raitner reproduce the authors'
published conversations; use ``sorted(example.entities)`` for text order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from raitner.errors import SchemaError


@dataclass(frozen=True, slots=True, order=True)
class Entity:
    """A typed mention: ``text`` is the exact substring ``[start, end)`` of its example's text."""

    start: int
    end: int
    text: str
    label: str

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end):
            raise SchemaError(
                f"entity {self.text!r}: need 0 <= start < end, got [{self.start}, {self.end})"
            )
        if self.end - self.start != len(self.text):
            raise SchemaError(
                f"entity {self.text!r}: span [{self.start}, {self.end}) has length "
                f"{self.end - self.start}, mention has length {len(self.text)}"
            )
        if not self.label:
            raise SchemaError(
                f"entity {self.text!r} at [{self.start}, {self.end}) has an empty label"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        return cls(int(data["start"]), int(data["end"]), str(data["text"]), str(data["label"]))


@dataclass(slots=True)
class Example:
    """One text with its typed mentions.

    ``label_set`` lists the types that were annotated (asked about) for this text: a type in it
    with no entity is a true negative. Benchmarks set it to their full label set; open-type data
    such as Pile-NER sets it to the types its annotator was asked about. Empty means "only the
    types of its entities are known".
    """

    id: str
    text: str
    lang: str
    entities: list[Entity] = field(default_factory=list)
    label_set: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise SchemaError(f"example {self.id!r}: text must be a string")
        if self.lang not in ("en", "zh"):
            raise SchemaError(f"example {self.id!r}: lang must be 'en' or 'zh', got {self.lang!r}")
        self.entities = list(self.entities)
        self.label_set = tuple(self.label_set)
        for entity in self.entities:
            if entity.end > len(self.text) or self.text[entity.start : entity.end] != entity.text:
                found = self.text[entity.start : entity.end]
                raise SchemaError(
                    f"example {self.id!r}: entity {entity.text!r} ({entity.label}) at "
                    f"[{entity.start}, {entity.end}) does not match the text there ({found!r})"
                )

    @property
    def labels(self) -> list[str]:
        """Every type this example knows of: its label set, then entity labels, de-duplicated."""
        seen = dict.fromkeys(self.label_set)
        seen.update(dict.fromkeys(entity.label for entity in self.entities))
        return list(seen)

    def mentions(self, label: str) -> list[str]:
        """Unique mention strings of ``label`` in entity order (the answer to one question)."""
        return list(dict.fromkeys(e.text for e in self.entities if e.label == label))

    def mention_label_pairs(self) -> list[tuple[str, str]]:
        """Unique (mention, label) pairs in entity order."""
        return list(dict.fromkeys((e.text, e.label) for e in self.entities))

    def relabel(self, mapping: Mapping[str, str]) -> Example:
        """A copy with labels renamed through ``mapping``; labels not in it are kept."""
        return replace(
            self,
            entities=[replace(e, label=mapping.get(e.label, e.label)) for e in self.entities],
            label_set=tuple(dict.fromkeys(mapping.get(x, x) for x in self.label_set)),
            meta=dict(self.meta),
        )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "entities": [e.to_dict() for e in self.entities],
        }
        if self.label_set:
            record["label_set"] = list(self.label_set)
        if self.meta:
            record["meta"] = self.meta
        return record

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Example:
        return cls(
            id=str(data["id"]),
            text=data["text"],
            lang=data["lang"],
            entities=[Entity.from_dict(e) for e in data.get("entities", [])],
            label_set=tuple(data.get("label_set", ())),
            meta=dict(data.get("meta", {})),
        )


def label_frequencies(examples: Iterable[Example]) -> dict[str, int]:
    """How many examples mention each label at least once."""
    counts: dict[str, int] = {}
    for example in examples:
        for label in dict.fromkeys(e.label for e in example.entities):
            counts[label] = counts.get(label, 0) + 1
    return counts
