"""Mapping generated mentions back to character offsets in the input text.

The model answers one question per entity type with mention *strings*; this module finds
them in the text. The rule, applied to the mentions of each type separately:

1. A mention is stripped of surrounding whitespace; an empty one is unaligned.
2. Its occurrences are looked for in tiers; the first tier with any occurrence wins and later
   tiers are not tried:

   1. exact;
   2. case-insensitive (the model changed case);
   3. case-insensitive, every whitespace run in the mention matching any whitespace run in the
      text (the model collapsed a line break or a double space);
   4. case-insensitive, whitespace ignored altogether (the model removed or added spaces, as
      in ``U.S.`` for a tokenised ``U.S .``, or ``张三`` for ``张 三``).

   Within a tier, occurrences that start and end on word boundaries (no ASCII letter or digit
   just outside) are preferred: if there are any, only they are taken, so ``R`` is not found
   inside ``Rserve``. Chinese characters are not ASCII letters, so a Chinese mention matches
   anywhere.
3. Every occurrence found is an entity (the question asks for all mentions of the type), except
   an occurrence lying inside an occurrence of a longer mention of the same type (``York``
   inside ``New York``, both answered for ``location``): longer mentions claim their spans
   first, ties go to the mention answered first. Such mentions are listed in ``subsumed``.
   Mentions of *different* types may nest or overlap (``New York`` location inside
   ``New York Times`` organisation); use :func:`flatten` for non-overlapping output.
4. A mention with no occurrence in any tier is listed in ``unaligned``, never invented.

Entity texts are the text's own characters (``text[start:end]``), which may differ in case or
spacing from the answer. Entities come back sorted by ``(start, end, label)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from raitner.schema import Entity

__all__ = ["Alignment", "align_mentions", "flatten", "remove_subsumed"]

_BOUNDED = r"(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"


@dataclass
class Alignment:
    """Entities found in a text, and the answered mentions that gave none."""

    entities: list[Entity] = field(default_factory=list)
    #: ``(mention, label)`` pairs not found in the text (as answered, before stripping)
    unaligned: list[tuple[str, str]] = field(default_factory=list)
    #: ``(mention, label)`` pairs found only inside longer mentions of the same type
    subsumed: list[tuple[str, str]] = field(default_factory=list)


def _tier_patterns(mention: str) -> list[tuple[str, int]]:
    words = mention.split()
    characters = "".join(words)
    return [
        (re.escape(mention), 0),
        (re.escape(mention), re.IGNORECASE),
        (r"\s+".join(map(re.escape, words)), re.IGNORECASE),
        (r"\s*".join(map(re.escape, characters)), re.IGNORECASE),
    ]


def _occurrences(text: str, mention: str) -> list[tuple[int, int]]:
    """Spans of the first tier that finds any, word-bounded ones preferred within a tier."""
    for pattern, flags in _tier_patterns(mention):
        bounded = [m.span() for m in re.finditer(_BOUNDED.format(pattern), text, flags)]
        if bounded:
            return bounded
        anywhere = [m.span() for m in re.finditer(pattern, text, flags)]
        if anywhere:
            return anywhere
    return []


def _inside(span: tuple[int, int], claimed: Iterable[tuple[int, int]]) -> bool:
    start, end = span
    return any(
        c_start <= start and end <= c_end and (c_start, c_end) != span for c_start, c_end in claimed
    )


def _align_one_type(text: str, mentions: Sequence[str], label: str, result: Alignment) -> None:
    unique = list(dict.fromkeys(mentions))
    stripped = [m.strip() for m in unique]
    order = sorted(range(len(unique)), key=lambda i: (-len(stripped[i]), i))
    claimed: list[tuple[int, int]] = []
    spans: set[tuple[int, int]] = set()
    missing: set[int] = set()
    subsumed: set[int] = set()
    for index in order:
        mention = stripped[index]
        found = _occurrences(text, mention) if mention else []
        if not found:
            missing.add(index)
            continue
        kept = [span for span in found if not _inside(span, claimed)]
        if not kept:
            subsumed.add(index)
        claimed.extend(kept)
        spans.update(kept)
    result.entities.extend(Entity(s, e, text[s:e], label) for s, e in spans)
    result.unaligned.extend((unique[i], label) for i in sorted(missing))
    result.subsumed.extend((unique[i], label) for i in sorted(subsumed))


def align_mentions(text: str, mentions: Iterable[tuple[str, str]]) -> Alignment:
    """Find ``(mention, label)`` pairs in ``text`` by the module's rule.

    ``unaligned`` and ``subsumed`` keep the order in which labels first appear in ``mentions``
    and, within a label, the answer order.
    """
    by_label: dict[str, list[str]] = {}
    for mention, label in mentions:
        by_label.setdefault(label, []).append(mention)
    result = Alignment()
    for label, label_mentions in by_label.items():
        _align_one_type(text, label_mentions, label, result)
    result.entities.sort()
    return result


def remove_subsumed(entities: Iterable[Entity]) -> list[Entity]:
    """Drop duplicates and every entity lying inside a longer entity of the same label; sorted.

    Used when merging the entities of overlapping windows, which applies rule 3 across them.
    """
    by_label: dict[str, list[Entity]] = {}
    for entity in set(entities):
        by_label.setdefault(entity.label, []).append(entity)
    kept: list[Entity] = []
    for group in by_label.values():
        spans = [(e.start, e.end) for e in group]
        kept.extend(e for e in group if not _inside((e.start, e.end), spans))
    return sorted(kept)


def flatten(entities: Iterable[Entity]) -> list[Entity]:
    """A non-overlapping subset: longer entities first, then earlier ones, then by label;
    an entity overlapping one already kept is dropped. Sorted by start."""
    kept: list[Entity] = []
    for entity in sorted(set(entities), key=lambda e: (e.start - e.end, e.start, e.label)):
        if all(entity.end <= other.start or other.end <= entity.start for other in kept):
            kept.append(entity)
    return sorted(kept)
