"""Chinese char-per-line tagged corpora: one ``CHAR TAG`` line per character, a blank line
between sentences (BIO, BIOES or BMES; the scheme is read from the tags themselves).

* MSRA test ``test.char.bmes`` (``中 B-NT``, space separated, BMES),
* People's Daily 1998 ``example.dev`` / ``example.test`` (``北 B-LOC``, space separated, BIO),
* Weibo NER (``read_weibo``): tab separated BIO; in v2 (``weiboNER_2nd_conll.*``) every
  character carries its position in its word segment (``科0``, ``技1`` … ``e12``; multi-digit
  positions exist), which is stripped. v1 (``weiboNER.conll.*``) has no positions, and writes
  emoji in CESU-8: the two UTF-16 surrogate halves of one emoji on two consecutive lines. They
  are joined back into the one character (its tag is the first half's, or the second's if the
  first is ``O``); an unpaired half becomes U+FFFD. In v2 the same emoji were already lost
  upstream and appear as the two characters ``\\ufffd\\ufffd``, kept as they are.

Text is the characters (tokens) concatenated with no separator. Columns are separated by
ASCII spaces/tabs only, so that a full-width space U+3000 can itself be a character; the
token is the first column and the tag the last. Inconsistent tags are repaired by
:func:`raitner.io.tags.decode_tags`'s rule and counted in ``ReadStats.repaired_tags``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError
from raitner.io.stats import ReadStats
from raitner.io.tags import decode_tags, split_tag, token_offsets
from raitner.io.zh_common import REPLACEMENT, build_example, iter_lines
from raitner.schema import Example

_COLUMNS = re.compile(r"[ \t]+")
_SEGMENT_POSITION = re.compile(r"(.+?)(\d+)")


def _is_high(token: str) -> bool:
    return len(token) == 1 and "\ud800" <= token <= "\udbff"


def _is_low(token: str) -> bool:
    return len(token) == 1 and "\udc00" <= token <= "\udfff"


def _join_surrogate_tokens(tokens: list[str], tags: list[str]) -> tuple[list[str], list[str]]:
    if not any("\ud800" <= ch <= "\udfff" for token in tokens for ch in token):
        return tokens, tags
    out_tokens: list[str] = []
    out_tags: list[str] = []
    index = 0
    while index < len(tokens):
        token, tag = tokens[index], tags[index]
        if _is_high(token) and index + 1 < len(tokens) and _is_low(tokens[index + 1]):
            pair = token + tokens[index + 1]
            token = pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
            if tag == "O":
                tag = tags[index + 1]
            index += 1
        out_tokens.append(re.sub("[\ud800-\udfff]", REPLACEMENT, token))
        out_tags.append(tag)
        index += 1
    return out_tokens, out_tags


def read_char_tags(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    segment_positions: bool = False,
) -> Iterator[Example]:
    """Read a char-per-line ``CHAR TAG`` file (BIO/BIOES/BMES), one Example per sentence.

    ``segment_positions=True``: each token is a character followed by its position digits
    in its word (Weibo v2's ``科0``), which are removed.
    """
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    count = 0

    def flush() -> Example:
        nonlocal tokens, tags
        chars, labels = _join_surrogate_tokens(tokens, tags)
        text = "".join(chars)
        offsets = token_offsets(chars, "")
        spans = [
            (offsets[s][0], offsets[e - 1][1], label) for s, e, label in decode_tags(labels, stats)
        ]
        example = build_example(
            path,
            first_line,
            id=f"{id_prefix}{count}",
            text=text,
            lang=lang,
            entities=spans,
            stats=stats,
        )
        tokens, tags = [], []
        return example

    for number, line in iter_lines(path, keep_lone_surrogates=True):
        if not line.strip(" \t"):
            if tokens:
                yield flush()
                count += 1
            continue
        columns = _COLUMNS.split(line.strip(" \t"))
        if len(columns) < 2 or not columns[0]:
            raise DataFormatError(
                path,
                number,
                f"expected 'CHAR TAG' (two columns separated by a space or tab), got {line!r}",
            )
        token, tag = columns[0], columns[-1]
        if segment_positions:
            match = _SEGMENT_POSITION.fullmatch(token)
            if match is None:
                raise DataFormatError(
                    path,
                    number,
                    f"expected a character followed by its segment position digits (e.g. '科0'), "
                    f"got {token!r} (Weibo v1 files have no positions: segment_positions=False)",
                )
            token = match.group(1)
        try:
            split_tag(tag)
        except ValueError as err:
            raise DataFormatError(path, number, str(err)) from None
        if not tokens:
            first_line = number
        tokens.append(token)
        tags.append(tag)
    if tokens:
        yield flush()


def read_weibo(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    segment_positions: bool = True,
) -> Iterator[Example]:
    """Weibo NER (``char[pos]<TAB>BIO``): v2 files by default; pass ``segment_positions=False``
    for v1. Raw labels are kept (``PER.NAM``, ``PER.NOM`` …); the registry maps NAM and NOM
    of one type to the same natural-language type, as the RA-IT authors' 4-type Weibo does."""
    return read_char_tags(
        path, lang=lang, id_prefix=id_prefix, stats=stats, segment_positions=segment_positions
    )


def char_tags(example: Example, scheme: str = "BIO") -> list[str]:
    """One tag per character of ``example.text`` (``scheme`` ``"BIO"`` or ``"BMES"``).

    Entities must not overlap (nested corpora such as CMeEE cannot be written as tags)."""
    scheme = scheme.upper()
    if scheme not in ("BIO", "BMES"):
        raise ValueError(f"scheme must be 'BIO' or 'BMES', got {scheme!r}")
    tags = ["O"] * len(example.text)
    for entity in sorted(example.entities):
        if any(tag != "O" for tag in tags[entity.start : entity.end]):
            raise ValueError(f"example {example.id!r}: entity {entity.text!r} overlaps another")
        length = entity.end - entity.start
        if scheme == "BIO":
            inside = ["I-" + entity.label] * (length - 1)
            tags[entity.start : entity.end] = ["B-" + entity.label, *inside]
        elif length == 1:
            tags[entity.start] = "S-" + entity.label
        else:
            middle = ["M-" + entity.label] * (length - 2)
            tags[entity.start : entity.end] = ["B-" + entity.label, *middle, "E-" + entity.label]
    return tags


def format_char_tags(example: Example, scheme: str = "BIO", separator: str = " ") -> list[str]:
    """The ``CHAR TAG`` lines of one sentence (without the blank line that ends it)."""
    return [
        f"{char}{separator}{tag}"
        for char, tag in zip(example.text, char_tags(example, scheme), strict=True)
    ]


def write_char_tags(
    path: str | Path, examples: Iterable[Example], scheme: str = "BIO", separator: str = " "
) -> int:
    """Write examples as a char-per-line file, atomically; returns how many were written."""
    count = 0
    with atomic_write(path) as handle:
        for example in examples:
            lines: Sequence[str] = format_char_tags(example, scheme, separator)
            handle.write("".join(line + "\n" for line in lines) + "\n")
            count += 1
    return count
