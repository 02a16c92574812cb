"""Tag sequences (BIO, BIOES/BMES) to character spans.

Rule for inconsistent BIO (an ``I-X`` that does not continue an ``X`` span, i.e. after ``O`` or
after a span of another type): it starts a new span of type ``X``, as conlleval and seqeval do.
Every such repair is counted in ``ReadStats.repaired_tags`` so that readers can report it.
BMES/BIOES: ``S-X`` is a one-token span, ``B-X`` opens, ``M-X``/``I-X`` continue, ``E-X``
closes; an ``M``/``E`` without an open span of its type is repaired the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from raitner.io.stats import ReadStats
from raitner.schema import Entity


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", None)``. Accepts ``-`` or ``_``."""
    if tag in ("O", "o", ""):
        return "O", None
    if len(tag) > 2 and tag[1] in "-_" and tag[0].upper() in "BIMESLU":
        return tag[0].upper(), tag[2:]
    raise ValueError(
        f"expected a tag like O, B-TYPE, I-TYPE, M-TYPE, E-TYPE or S-TYPE, got {tag!r}"
    )


def decode_tags(tags: Sequence[str], stats: ReadStats | None = None) -> list[tuple[int, int, str]]:
    """Token-index spans ``(start, end_exclusive, type)`` from BIO / BIOES / BMES tags."""
    spans: list[tuple[int, int, str]] = []
    open_start: int | None = None
    open_type: str | None = None

    def close(end: int) -> None:
        nonlocal open_start, open_type
        if open_start is not None and open_type is not None:
            spans.append((open_start, end, open_type))
        open_start, open_type = None, None

    for index, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix == "O":
            close(index)
            continue
        if prefix in ("B", "S", "U"):
            close(index)
            open_start, open_type = index, label
        elif open_type != label:  # I/M/E/L that does not continue its own type
            close(index)
            if stats is not None:
                stats.repaired_tags += 1
            open_start, open_type = index, label
        if prefix in ("S", "U", "E", "L"):
            close(index + 1)
    close(len(tags))
    return spans


def token_offsets(tokens: Sequence[str], separator: str) -> list[tuple[int, int]]:
    """Character offsets of each token in ``separator.join(tokens)``."""
    offsets = []
    position = 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + len(separator)
    return offsets


def tagged_text(
    tokens: Sequence[str], tags: Sequence[str], joiner: str, stats: ReadStats | None = None
) -> tuple[str, list[Entity]]:
    """The text of a tagged sentence (``joiner`` between tokens) and its entities."""
    text = joiner.join(tokens)
    spans = decode_tags(tags, stats)
    if not spans:
        return text, []
    offsets = token_offsets(tokens, joiner)
    entities = []
    for start, end, label in spans:
        char_start, char_end = offsets[start][0], offsets[end - 1][1]
        entities.append(Entity(char_start, char_end, text[char_start:char_end], label))
    return text, entities
