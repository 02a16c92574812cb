"""Reading the mention list out of a generated answer, leniently, for prediction.

The model is trained to answer ``["mention", ...]`` (``Template.render_answer``), but a
prediction should not be lost to a cosmetic slip. :func:`parse_mentions` reads:

* a JSON list of strings: status ``ok`` when the whole answer (surrounding whitespace aside)
  is exactly that;
* everything else it can, with status ``repaired``: a list with prose or a code fence around
  it, Python-literal lists (single quotes), trailing or doubled commas, unquoted items
  (``[Paris, London]``), items that lost their opening double quote (``["Paris", London"]``:
  an unquoted item's only ``"``, at its end, is dropped), numbers (kept as their text), a list
  cut off by the token limit (the complete items are kept, the unfinished one dropped), nested
  lists (flattened), and entries in the examples' ``{mention: type}`` format (the mention is
  kept);
* nothing otherwise (no ``[`` at all, or a ``[`` followed by nothing readable): status
  ``unparseable`` and no mentions.

Mentions keep their exact characters (no stripping, no case change: the aligner decides what
matches the text) and duplicates are removed, first occurrence kept. ``null``/``None``/booleans
and empty containers contribute nothing.

Scoring does not use this module: the papers' metrics read answers with their strict rules
(:func:`raitner.evaluate.metrics.parse_answer`), so that scores stay comparable.
"""

from __future__ import annotations

import ast
import enum
import json
import re
import warnings
from dataclasses import dataclass

__all__ = ["AnswerStatus", "LenientAnswer", "parse_mentions"]


class AnswerStatus(enum.StrEnum):
    #: the answer is exactly a JSON list of strings
    OK = "ok"
    #: mentions were read, but the answer needed a repair (see the module notes)
    REPAIRED = "repaired"
    #: no list could be read: no mentions
    UNPARSEABLE = "unparseable"


@dataclass(frozen=True, slots=True)
class LenientAnswer:
    """De-duplicated mentions in answer order and how reading them went."""

    mentions: tuple[str, ...]
    status: AnswerStatus


_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?|```")
_LIST_START = re.compile(r"\[\s*(?=[\"'\]\[{])")
_BARE_STOP = ",]}:\n"
_NOTHING = ("", "null", "None", "none", "true", "false", "True", "False")


def parse_mentions(answer: str) -> LenientAnswer:
    """Mentions from a raw generated answer; see the module notes for what is repaired."""
    if not isinstance(answer, str):
        raise TypeError(f"an answer must be a string, got {type(answer).__name__}")
    stripped = answer.strip()
    try:
        value = json.loads(stripped)
    except ValueError:
        value = None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return LenientAnswer(tuple(dict.fromkeys(value)), AnswerStatus.OK)

    unfenced = _FENCE.sub("\n", stripped)
    start = _list_start(unfenced)
    if start is None:
        return LenientAnswer((), AnswerStatus.UNPARSEABLE)
    values, _, closed = _read_list(unfenced, start)
    mentions = list(dict.fromkeys(_flatten(values)))
    if not closed and not mentions:
        return LenientAnswer((), AnswerStatus.UNPARSEABLE)
    return LenientAnswer(tuple(mentions), AnswerStatus.REPAIRED)


def _list_start(text: str) -> int | None:
    """The first ``[`` that opens a quoted item, a nested list, a dict or an empty list;
    failing that, the first ``[`` at all (for unquoted items)."""
    found = _LIST_START.search(text)
    if found is not None:
        return found.start()
    position = text.find("[")
    return position if position >= 0 else None


def _skip(text: str, i: int, characters: str) -> int:
    while i < len(text) and (text[i].isspace() or text[i] in characters):
        i += 1
    return i


def _read_list(text: str, i: int) -> tuple[list[object], int, bool]:
    """Values of the list opening at ``text[i] == "["``: ``(values, next index, closed)``.

    An unfinished value at the end of the text is dropped (the list is then not closed).
    """
    values: list[object] = []
    i += 1
    while True:
        i = _skip(text, i, ",")
        if i >= len(text):
            return values, i, False
        if text[i] == "]":
            return values, i + 1, True
        value, i, complete = _read_value(text, i, _BARE_STOP)
        if value is not None:
            values.append(value)
        if not complete:
            return values, i, False


def _read_dict(text: str, i: int) -> tuple[list[object], int, bool]:
    """The keys of a ``{key: value, ...}`` entry whose values are strings (the examples'
    ``{mention: type}`` format), other entries dropped; the items of a ``{...}`` set."""
    keys: list[object] = []
    i += 1
    while True:
        i = _skip(text, i, ",")
        if i >= len(text):
            return keys, i, False
        if text[i] == "}":
            return keys, i + 1, True
        key, i, complete = _read_value(text, i, _BARE_STOP)
        if not complete:
            return keys, i, False
        i = _skip(text, i, "")
        if i < len(text) and text[i] == ":":
            value, i, complete = _read_value(text, _skip(text, i + 1, ""), ",}\n")
            if not complete:
                return keys, i, False
            if isinstance(key, str) and isinstance(value, str):
                keys.append(key)
        elif isinstance(key, str):
            keys.append(key)


def _read_value(text: str, i: int, stops: str) -> tuple[object, int, bool]:
    """One value starting at ``i``: ``(value or None, next index, complete)``."""
    if i >= len(text):
        return None, i, False
    first = text[i]
    if first in "\"'":
        return _read_string(text, i)
    if first == "[":
        values, i, closed = _read_list(text, i)
        return values, i, closed
    if first == "{":
        keys, i, closed = _read_dict(text, i)
        return keys, i, closed
    end = i
    while end < len(text) and text[end] not in stops:
        end += 1
    if end == i:
        return None, i + 1, True
    if end >= len(text):
        return None, end, False
    word = text[i:end].strip()
    if word.endswith('"') and word.count('"') == 1:
        word = word[:-1].rstrip()  # the item lost its opening quote: ``London"``
    return (None if word in _NOTHING else word), end, True


def _read_string(text: str, i: int) -> tuple[str | None, int, bool]:
    quote = text[i]
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return _decode(text[i + 1 : j], quote), j + 1, True
        j += 1
    return None, len(text), False


def _decode(raw: str, quote: str) -> str:
    """Resolve escapes as JSON does (double quotes) or as Python does; verbatim if neither
    accepts them."""
    if quote == '"':
        try:
            return json.loads(f'"{raw}"')
        except ValueError:
            pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoded = ast.literal_eval(quote + raw + quote)
    except (ValueError, SyntaxError):
        return raw
    return decoded if isinstance(decoded, str) else raw


def _flatten(values: list[object]) -> list[str]:
    flat: list[str] = []
    for value in values:
        if isinstance(value, str):
            flat.append(value)
        elif isinstance(value, list):
            flat.extend(_flatten(value))
    return flat
