"""Chinese ``word/tag`` corpora: one sentence a line, tokens separated by spaces.

* :func:`read_word_tags`: MSRA as distributed by hugbert (``当/o 希望工程/o … 北京/ns``):
  every token whose tag is not ``o`` is one entity of that raw tag (``nr``, ``ns``, ``nt``).
  Its ``test.txt`` is the bare text; the gold test labels are in ``test_label.txt``, whose
  entities agree exactly with ``test.char.bmes``.
* :func:`read_pd1998_pos`: the raw People's Daily January 1998 corpus (PKU POS-tagged,
  ``19980101-01-001-001/m  迈向/v … [中央/n 人民/n 广播/vn 电台/n]nt``). It has no NER
  annotation; entities are derived from the POS tags: ``ns`` place, ``nt`` organisation,
  ``nr`` person, and a bracketed compound ``[…]ns`` / ``[…]nt`` is one entity (the words
  inside it are not entities of their own). Chinese person names are split into surname and
  given name (``江/nr 泽民/nr``); consecutive ``nr`` tokens are paired greedily – a token of
  at most two characters followed by another of at most two characters is one name – so
  that bylines such as ``杜/nr 中武/nr 孙/nr 传刚/nr`` give two persons. This is a heuristic,
  not gold annotation. The first token (the sentence id) is used as the example id.

Tokens are split on ASCII spaces/tabs only; the tag is what follows the last ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from raitner.errors import DataFormatError
from raitner.io.stats import ReadStats
from raitner.io.zh_common import build_example, iter_lines
from raitner.schema import Example

_TOKENS = re.compile(r"[ \t]+")
_PD_ID = re.compile(r"\d{8}-\d{2}-\d{3}-\d{3}")
_OPEN = re.compile(r"\[(.+/[A-Za-z]+(?:\][A-Za-z]+)?)")
_CLOSE = re.compile(r"(.+/[A-Za-z]+)\]([A-Za-z]+)")


def _split_token(path: str | Path, number: int, token: str) -> tuple[str, str]:
    word, slash, tag = token.rpartition("/")
    if not slash or not word or not tag:
        raise DataFormatError(
            path, number, f"expected WORD/TAG tokens separated by spaces, got {token!r}"
        )
    return word, tag


def read_word_tags(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    outside: Sequence[str] = ("o", "O"),
) -> Iterator[Example]:
    """One Example per non-blank line of ``word/tag`` tokens; each non-``outside`` word is an
    entity labelled with its raw tag. Blank lines are skipped and counted as ``empty line``."""
    count = 0
    outside = frozenset(outside)
    for number, line in iter_lines(path):
        stripped = line.strip(" \t")
        if not stripped:
            if stats is not None:
                stats.skip("empty line")
            continue
        pieces: list[str] = []
        spans: list[tuple[int, int, str]] = []
        position = 0
        for token in _TOKENS.split(stripped):
            word, tag = _split_token(path, number, token)
            if tag not in outside:
                spans.append((position, position + len(word), tag))
            pieces.append(word)
            position += len(word)
        yield build_example(
            path,
            number,
            id=f"{id_prefix}{count}",
            text="".join(pieces),
            lang=lang,
            entities=spans,
            stats=stats,
        )
        count += 1


def _pair_person_tokens(run: list[tuple[int, int]], words: list[str]) -> list[tuple[int, int]]:
    """Greedy surname + given-name pairing of a run of consecutive ``nr`` word indices."""
    spans = []
    index = 0
    while index < len(run):
        first = run[index][0]
        if index + 1 < len(run) and len(words[first]) <= 2 and len(words[run[index + 1][0]]) <= 2:
            spans.append((run[index][1], run[index + 1][1] + len(words[run[index + 1][0]])))
            index += 2
        else:
            spans.append((run[index][1], run[index][1] + len(words[first])))
            index += 1
    return spans


def _pd_entities(
    path: str | Path,
    number: int,
    tokens: list[str],
    entity_tags: frozenset[str],
    pair_person_names: bool,
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Words and derived entity spans of one POS-tagged People's Daily sentence."""
    words: list[str] = []
    spans: list[tuple[int, int, str]] = []
    person_run: list[tuple[int, int]] = []  # (word index, char offset)
    bracket_start: tuple[int, int] | None = None  # (char offset, number of spans before it)
    position = 0

    def close_persons() -> None:
        if person_run:
            if pair_person_names:
                pairs = _pair_person_tokens(person_run, words)
            else:
                pairs = [(o, o + len(words[i])) for i, o in person_run]
            spans.extend((start, end, "nr") for start, end in pairs)
            person_run.clear()

    for token in tokens:
        opening = _OPEN.fullmatch(token)
        if opening is not None:
            if bracket_start is not None:
                raise DataFormatError(
                    path, number, f"expected ']TAG' before a new '[' at {token!r}"
                )
            close_persons()
            token = opening.group(1)
            bracket_start = (position, len(spans))
        compound_tag = None
        closing = _CLOSE.fullmatch(token)
        if closing is not None:
            if bracket_start is None:
                raise DataFormatError(
                    path, number, f"expected '[' to open the compound closed by {token!r}"
                )
            token, compound_tag = closing.group(1), closing.group(2)
        word, tag = _split_token(path, number, token)
        if tag == "nr" and "nr" in entity_tags:
            person_run.append((len(words), position))
        else:
            close_persons()
            if tag in entity_tags:
                spans.append((position, position + len(word), tag))
        words.append(word)
        position += len(word)
        if compound_tag is not None and bracket_start is not None:
            close_persons()
            start, first_span = bracket_start
            if compound_tag in entity_tags:
                del spans[first_span:]  # the compound replaces the entities inside it
                spans.append((start, position, compound_tag))
            bracket_start = None
    close_persons()
    if bracket_start is not None:
        raise DataFormatError(
            path, number, "expected ']TAG' to close the '[' compound on this line"
        )
    return words, spans


def read_pd1998_pos(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    labels: Sequence[str] = ("nr", "ns", "nt"),
    pair_person_names: bool = True,
) -> Iterator[Example]:
    """People's Daily 1998 POS-tagged text (optionally ``.gz``) with entities derived from the
    tags ``labels`` (raw labels ``nr``/``ns``/``nt``). Blank lines separate nothing and are
    skipped silently. Ids are ``id_prefix`` + the corpus's own sentence id; a repeated id (the
    corpus has one: ``19980127-09-001-032``) gets ``.2`` appended, the original in
    ``meta["source_id"]``."""
    entity_tags = frozenset(labels)
    count = 0
    seen: dict[str, int] = {}
    for number, line in iter_lines(path):
        stripped = line.strip(" \t")
        if not stripped:
            continue
        tokens = _TOKENS.split(stripped)
        own_id, _ = _split_token(path, number, tokens[0])
        meta = {}
        if _PD_ID.fullmatch(own_id) is None:
            own_id = str(count)
        else:
            tokens = tokens[1:]
            seen[own_id] = seen.get(own_id, 0) + 1
            if seen[own_id] > 1:  # the corpus repeats 19980127-09-001-032 for two sentences
                meta["source_id"] = own_id
                own_id = f"{own_id}.{seen[own_id]}"
        words, spans = _pd_entities(path, number, tokens, entity_tags, pair_person_names)
        yield build_example(
            path,
            number,
            id=f"{id_prefix}{own_id}",
            text="".join(words),
            lang=lang,
            entities=spans,
            stats=stats,
            meta=meta,
        )
        count += 1
