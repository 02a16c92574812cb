"""Tag sequences (BIO, BIOES/BMES, IO) to character spans.

Rule for inconsistent BIO (an ``I-X`` that does not continue an ``X`` span, i.e. after ``O`` or
after a span of another type): it starts a new span of type ``X``, as conlleval and seqeval do.
Every such repair is counted in ``ReadStats.repaired_tags`` so that readers can report it.
BMES/BIOES: ``S-X`` is a one-token span, ``B-X`` opens, ``M-X``/``I-X`` continue, ``E-X``
closes; an ``M``/``E`` without an open span of its type is repaired the same way.
IO: the tag is the bare type (Few-NERD's ``person-actor``) and a run of tokens with one type is
one mention (two mentions of one type side by side cannot be told apart: the scheme's own limit).
A file keeps to one scheme, fixed by its first tag other than ``O`` (:class:`TagScheme`).
"""

from __future__ import annotations

from collections.abc import Sequence

from raitner.io.stats import ReadStats
from raitner.schema import Entity


def is_prefixed(tag: str) -> bool:
    """Whether ``tag`` carries a one-letter scheme prefix: ``B-PER``, ``I_LOC``, ``S-X``."""
    return len(tag) > 2 and tag[1] in "-_" and tag[0].upper() in "BIMESLU"


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", None)``. Accepts ``-`` or ``_``."""
    if tag in ("O", "o", ""):
        return "O", None
    if is_prefixed(tag):
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


def bio_from_io(tags: Sequence[str]) -> list[str]:
    """IO tags as BIO: a run of one bare type becomes ``B-type I-type …``; ``O`` stays."""
    bio = []
    previous = "O"
    for tag in tags:
        if tag in ("O", "o", ""):
            bio.append("O")
        else:
            bio.append(f"{'I' if tag == previous else 'B'}-{tag}")
        previous = tag
    return bio


class TagScheme:
    """The tag scheme of one file: prefixed (BIO, BIOES, BMES) or IO (bare type names).

    The first tag other than ``O`` fixes it; :meth:`check` then refuses a tag of the other kind,
    since a bare word among BIO tags is far likelier a slip than a mention, and :meth:`bio`
    gives a sentence's tags in BIO for :func:`tagged_text`. Each distinct tag is checked once.
    """

    def __init__(self) -> None:
        #: ``None`` until the first tag other than ``O``; then whether the file's tags are IO
        self.io: bool | None = None
        self.first: str | None = None
        self._checked: set[str] = set()

    def check(self, tag: object) -> bool:
        """Raise ``ValueError`` for a tag that breaks the file's scheme; return whether this
        tag fixed the scheme (the first tag other than ``O``)."""
        if not isinstance(tag, str):
            raise ValueError(f"expected a tag string (O, B-TYPE, …), got {tag!r}")
        if tag in self._checked:
            return False
        fixed = self._check_new(tag)
        self._checked.add(tag)
        return fixed

    def _check_new(self, tag: str) -> bool:
        if tag in ("O", "o", ""):
            return False
        prefixed = is_prefixed(tag)
        if not prefixed and len(tag) > 2 and tag[1] in "-_" and tag[0].isalpha():
            split_tag(tag)  # one letter and a dash, but no scheme's prefix: a slip; raises
        if self.io is None:
            self.io, self.first = not prefixed, tag
            return True
        if prefixed and self.io:
            raise ValueError(
                f"this file's tags are IO, bare type names ({self.first!r} first), and {tag!r} "
                "has a B-/I- prefix: a file keeps to one tag scheme"
            )
        if not prefixed and not self.io:
            raise ValueError(
                f"expected a tag like O, B-TYPE, I-TYPE, M-TYPE, E-TYPE or S-TYPE, as this "
                f"file's tags are ({self.first!r} first), got {tag!r}"
            )
        return False

    def bio(self, tags: Sequence[str]) -> Sequence[str]:
        """``tags`` in a scheme :func:`decode_tags` reads (IO converted to BIO)."""
        return bio_from_io(tags) if self.io else tags
