"""Token/tag column files: one token a line, a blank line between sentences.

Covers every English tagged benchmark in the shared data:

* ``token<TAB>BIO-tag`` (the default): CrossNER's five domains and its CoNLL-2003 copy, the GNER
  sets (``en/gner/<set>/{train,dev,test}.txt``), WNUT-17;
* ``BIO-tag<TAB>token`` (``tag_first=True``): SLIMER's MIT Movie and MIT Restaurant.

**English text is the tokens joined by single spaces** (as UniversalNER built its CrossNER and
MIT test files), so ``"Gaussian mixture model s"`` keeps CrossNER's tokenisation; Chinese text
joins characters with nothing. ``joiner`` overrides either.

Line rules:

* a line that is empty or only whitespace ends a sentence (WNUT-17's train file separates
  sentences with a lone ``<TAB>``); several in a row are one boundary;
* ``-DOCSTART-`` lines end a sentence and are skipped (counted in ``stats.skipped``);
* every other line must have exactly two fields split on ``separator`` (``None``: any run of
  whitespace), or with ``extra_columns`` at least two, the token first and the tag last (the
  original CoNLL-2003 layout ``token POS chunk tag``). The token is kept verbatim (GNER's
  TweetNER7 and Broad Twitter tokens contain spaces, even a token that *is* one space); only
  the tag is stripped, and ``\\r\\n`` line ends and a UTF-8 byte order mark are tolerated;
* tags are ``O``/``B-X``/``I-X`` (BIOES/BMES too); an ``I-X`` that does not continue an ``X``
  span opens a new one (``decode_tags``'s rule) and is counted in ``stats.repaired_tags``. Or
  IO, bare type names (Few-NERD's ``person-actor``), a run of one type being one mention: the
  first tag other than ``O`` fixes the file's scheme, and a tag of the other kind is an error
  (:class:`raitner.io.tags.TagScheme`). A file whose first tag is a word and whose token there
  is a tag (``O`` or ``B-X``), or an IO file with a token ``O`` tagged as a type, has its
  columns the other way round: an error that says so, not a type per word.

Anything else raises ``DataFormatError`` with the file, the 1-based line and what was expected.
Examples have raw labels and ``id = f"{id_prefix}{n}"`` with ``n`` the 0-based sentence index.

:func:`write_conll` writes examples the other way, ``token<TAB>BIO-tag``, for taggers to train
on (a model's predictions or a teacher's annotations distilled into a token classifier).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError
from raitner.io.files import binary_lines, text_lines
from raitner.io.stats import ReadStats
from raitner.io.tags import TagScheme, is_prefixed, tagged_text
from raitner.schema import Entity, Example

DOCSTART = "-DOCSTART-"


def read_conll(
    path: str | Path,
    *,
    lang: str = "en",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    tag_first: bool = False,
    separator: str | None = "\t",
    joiner: str | None = None,
    encoding: str = "utf-8",
    extra_columns: bool = False,
) -> Iterator[Example]:
    """Yield one ``Example`` per sentence of a two-column token/tag file.

    ``tag_first``: the columns are ``tag<sep>token`` (MIT) instead of ``token<sep>tag``.
    ``separator``: the column separator, ``None`` for any whitespace. ``joiner``: what joins
    tokens into the text; default ``" "`` for English, ``""`` for Chinese. ``extra_columns``:
    lines may have more than two fields, the token first and the tag last.
    """
    if extra_columns and tag_first:
        raise ValueError("extra_columns reads the token first and the tag last; not with tag_first")
    stats = stats if stats is not None else ReadStats()
    if joiner is None:
        joiner = "" if lang == "zh" else " "
    token_index, tag_index = (1, 0) if tag_first else (0, -1)
    sep_name = {"\t": "<TAB>", None: "<whitespace>"}.get(separator, repr(separator))
    expected = f"`tag{sep_name}token`" if tag_first else f"`token{sep_name}tag`"
    if extra_columns:
        expected = f"`token{sep_name}…{sep_name}tag` (two columns or more)"
    scheme = TagScheme()
    tokens: list[str] = []
    tags: list[str] = []
    count = 0

    def flush() -> Example:
        nonlocal count
        text, entities = tagged_text(tokens, scheme.bio(tags), joiner, stats)
        example = Example(id=f"{id_prefix}{count}", text=text, lang=lang, entities=entities)
        count += 1
        stats.examples += 1
        stats.entities += len(entities)
        tokens.clear()
        tags.clear()
        return example

    try:
        for number, line in enumerate(text_lines(path, encoding, newline="\n"), start=1):
            if number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            line = line.rstrip("\r\n")
            if not line or line.isspace():
                if tokens:
                    yield flush()
                continue
            fields = line.split(separator)
            if len(fields) != 2 and not (extra_columns and len(fields) > 2):
                if DOCSTART not in line.split():
                    raise DataFormatError(
                        path, number, f"expected {expected}, got {len(fields)} fields: {line!r}"
                    )
                fields = [DOCSTART, DOCSTART]  # "-DOCSTART- -X- -X- O" (CoNLL-2003 original)
            token, tag = fields[token_index], fields[tag_index].strip()
            if token == DOCSTART:
                if tokens:
                    yield flush()
                stats.skip("-DOCSTART- line")
                continue
            if not token:
                raise DataFormatError(path, number, f"expected {expected}, got an empty token")
            try:
                fixed = scheme.check(tag)
            except ValueError as err:
                raise DataFormatError(path, number, str(err)) from None
            if fixed and scheme.io and (token == "O" or is_prefixed(token)):
                raise _swapped(path, number, tag_first, token, tag)
            if scheme.io and token == "O" and tag != "O":
                raise _swapped(path, number, tag_first, token, tag)
            tokens.append(token)
            tags.append(tag)
    except UnicodeDecodeError as err:
        raise DataFormatError(
            path, _undecodable_line(path, encoding), f"expected {encoding} text ({err.reason})"
        ) from None
    if tokens:
        yield flush()


def _swapped(
    path: str | Path, number: int, tag_first: bool, token: str, tag: str
) -> DataFormatError:
    columns = "tag, token" if tag_first else "token, tag"
    other = "token first" if tag_first else "tag first (as MIT's files)"
    return DataFormatError(
        path,
        number,
        f"the columns look the other way round: read as {columns}, the token is {token!r}, a "
        f"tag, and the tag {tag!r}, a word; is this file {other}?",
    )


def _undecodable_line(path: str | Path, encoding: str) -> int | None:
    """1-based number of the first line that does not decode (only called after a failure)."""
    for number, raw in enumerate(binary_lines(path), start=1):
        try:
            raw.decode(encoding)
        except UnicodeDecodeError:
            return number
    return None


@dataclass
class ConllWriteStats:
    """What :func:`write_conll` wrote and what BIO could not hold."""

    sentences: int = 0
    #: mentions left out because they overlap a longer (or earlier) one: BIO tags one per token
    overlapping: int = 0
    #: texts with no token (empty or only whitespace), not written
    empty_texts: int = 0


def bio_tokens(example: Example) -> tuple[list[str], list[str], int]:
    """``(tokens, BIO tags, mentions left out)`` of one example.

    English text is cut at whitespace and, inside a word, at the edges of its mentions
    (``Rome.`` with the mention ``Rome`` becomes ``Rome`` and ``.``), so text already tokenised
    and joined by single spaces, as the benchmarks are, keeps its tokens; Chinese text gives one
    token per character. Nested or overlapping mentions cannot all be tagged: the longest (then
    the earliest) of each overlap is kept.
    """
    kept: list[Entity] = []
    for entity in sorted(example.entities, key=lambda e: (-(e.end - e.start), e.start)):
        if all(entity.end <= other.start or entity.start >= other.end for other in kept):
            kept.append(entity)
    boundaries = {position for e in kept for position in (e.start, e.end)}
    tokens: list[str] = []
    starts: list[int] = []
    token_start: int | None = None
    for position, character in enumerate(example.text + " "):
        cut = character.isspace() or position in boundaries or example.lang == "zh"
        if cut and token_start is not None:
            tokens.append(example.text[token_start:position])
            starts.append(token_start)
            token_start = None
        if not character.isspace() and token_start is None and position < len(example.text):
            token_start = position
    tags = ["O"] * len(tokens)
    for entity in kept:
        inside = [i for i, start in enumerate(starts) if entity.start <= start < entity.end]
        for order, index in enumerate(inside):
            tags[index] = f"{'B' if order == 0 else 'I'}-{entity.label}"
    return tokens, tags, len(example.entities) - len(kept)


def write_conll(path: str | Path, examples: Iterable[Example]) -> ConllWriteStats:
    """Write examples atomically as ``token<TAB>tag`` lines (BIO), a blank line after each
    sentence, as :func:`read_conll` and most taggers' training scripts read them (see
    :func:`bio_tokens` for the tokens). Ids and label sets have no place in the format."""
    stats = ConllWriteStats()
    with atomic_write(path) as handle:
        for example in examples:
            tokens, tags, left_out = bio_tokens(example)
            stats.overlapping += left_out
            if not tokens:
                stats.empty_texts += 1
                continue
            handle.writelines(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags, strict=True))
            handle.write("\n")
            stats.sentences += 1
    return stats
