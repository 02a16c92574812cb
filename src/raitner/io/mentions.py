"""Locating mention strings in a text, for sources that list mentions without offsets
(Boson's ``{mention: type}``, Pile-NER and UniversalNER answers, teacher outputs).

Rule: every occurrence of a mention is an entity, except occurrences that fall inside an
occurrence already claimed by a longer mention (so Boson's ``美`` is not found again inside
``美国``). Longer mentions claim first; ties go to the earlier-listed mention. Candidates are
tried in this order, the first kind that yields an unclaimed occurrence wins: exact
occurrences that start and end on word boundaries (no Latin letter or digit just before or
just after, so ``R`` is not found inside ``Rserve``), then any exact occurrence (needed for
Chinese, which has no spaces, and for mentions that are parts of tokens), then the same two
case-insensitively. A mention still not found is returned in ``unfound``.

Entities come back in the order the mentions were listed, and within one mention in text order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from raitner.schema import Entity


def _candidate_starts(text: str, mention: str) -> Iterator[list[int]]:
    """Occurrence start lists, most preferred kind first."""
    escaped = re.escape(mention)
    bounded = rf"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])"
    for flags in (0, re.IGNORECASE):
        yield [m.start() for m in re.finditer(bounded, text, flags)]
        yield [m.start() for m in re.finditer(escaped, text, flags)]


def locate_mentions(
    text: str, mentions: Sequence[tuple[str, str]]
) -> tuple[list[Entity], list[tuple[str, str]]]:
    """Find ``(mention, label)`` pairs in ``text``; returns ``(entities, unfound pairs)``."""
    claimed = [False] * len(text)
    found: dict[int, list[Entity]] = {}
    unfound: list[tuple[str, str]] = []
    pairs = list(dict.fromkeys((m, lab) for m, lab in mentions if m.strip()))
    order = sorted(range(len(pairs)), key=lambda i: (-len(pairs[i][0]), i))
    for index in order:
        mention, label = pairs[index]
        entities: list[Entity] = []
        for starts in _candidate_starts(text, mention):
            for start in starts:
                end = start + len(mention)
                if any(claimed[start:end]) and not _same_span_claimed(found, start, end):
                    continue
                entities.append(Entity(start, end, text[start:end], label))
            if entities:
                break
        for entity in entities:
            for position in range(entity.start, entity.end):
                claimed[position] = True
        if entities:
            found[index] = entities
        else:
            unfound.append((mention, label))
    ordered = [entity for index in range(len(pairs)) for entity in found.get(index, [])]
    unfound.sort(key=pairs.index)
    return ordered, unfound


def _same_span_claimed(found: dict[int, list[Entity]], start: int, end: int) -> bool:
    """The same mention string listed under a second label claims the same spans again."""
    return any(e.start == start and e.end == end for entities in found.values() for e in entities)
