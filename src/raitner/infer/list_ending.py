"""Ending list answers that loop or run out of tokens (the ``close_lists`` decoding option).

A small model sometimes falls into a loop inside its list answer
(``["Poland", "Latvian", "Lithuanian", "Czech Republic", "Lithuanian", "Czech Republic", …``)
and keeps going until ``max_new_tokens`` cuts it. The papers' UniNER rule reads such an answer
as no list at all, so the complete items before the loop are lost, and every looping row keeps
its batch decoding until the limit. With ``close_lists`` a backend ends such answers itself:

* **at the first repeated item**: once an item equal to an earlier one is complete (its closing
  quote generated), the row stops, and the answer is the list up to the end of the item before
  the repeat, closed with ``]``. Decided while decoding, so the row leaves its batch early;
* **at the token limit**: an answer whose list is still open when generation ends (the limit,
  or a stop token) is closed after its last complete item (``["A", "B", "C`` →
  ``["A", "B"]``). An answer with no complete item is left as it is.

Only answers that are JSON lists of double-quoted strings, as the RA-IT templates render them,
are touched; an answer that closes its list before any repeat, or strays from that shape
first, is kept verbatim. A closed list with a repeat inside (``["A", "B", "A"]``) ends at the
repeat like any other, since the row stops as the repeated item completes. Items compare as
decoded strings, exactly (``"Beach"`` repeats ``"Beach"``, not ``"beach"``).

Greedy decoding makes the early stop lossless to reason about: the answer generated with it is
exactly :func:`end_list` of the answer generated without it, since the tokens before the stop
are the same. So saved answers can be rescored as if decoded with the option, and the backends'
tests check that identity.

Imports nothing heavy: the standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ListEnding",
    "ReplyEnding",
    "close_cut_list",
    "end_at_repeated_item",
    "end_list",
    "finish_reply",
]

_SPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class _ListScan:
    #: index just after the closing quote of the last complete, not repeated item (None: none)
    last_item_end: int | None
    #: True when an item repeated an earlier one (the scan stopped there)
    repeated: bool
    #: True when the list was closed by ``]`` (before any repeat)
    closed: bool
    #: True when the text left the list-of-strings shape (before any repeat or ``]``)
    strayed: bool


def _read_string(text: str, start: int) -> tuple[str | None, int]:
    """The decoded string whose opening quote is at ``start``, and the index after its closing
    quote; ``(None, len(text))`` when it is not closed yet."""
    i = start + 1
    while i < len(text):
        character = text[i]
        if character == "\\":
            i += 2
            continue
        if character == '"':
            raw = text[start : i + 1]
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw[1:-1]  # an escape JSON does not know: compare the raw content
            return value, i + 1
        i += 1
    return None, len(text)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _scan(text: str) -> _ListScan | None:
    """How the list answer ``text`` stands; None when it does not start with ``[``."""
    i = _skip_space(text, 0)
    if i >= len(text) or text[i] != "[":
        return None
    i += 1
    seen: set[str] = set()
    last_end: int | None = None
    first = True
    while True:
        i = _skip_space(text, i)
        if i >= len(text):
            return _ListScan(last_end, repeated=False, closed=False, strayed=False)
        if text[i] == "]" and first:
            return _ListScan(last_end, repeated=False, closed=True, strayed=False)
        if text[i] != '"':
            return _ListScan(last_end, repeated=False, closed=False, strayed=True)
        item, after = _read_string(text, i)
        if item is None:  # the item is still being generated
            return _ListScan(last_end, repeated=False, closed=False, strayed=False)
        if item in seen:
            return _ListScan(last_end, repeated=True, closed=False, strayed=False)
        seen.add(item)
        last_end = after
        first = False
        i = _skip_space(text, after)
        if i >= len(text):
            return _ListScan(last_end, repeated=False, closed=False, strayed=False)
        if text[i] == "]":
            return _ListScan(last_end, repeated=False, closed=True, strayed=False)
        if text[i] != ",":
            return _ListScan(last_end, repeated=False, closed=False, strayed=True)
        i += 1


def end_at_repeated_item(text: str) -> str | None:
    """``text`` ended before its first repeated item and closed with ``]``; None when no item
    has repeated yet (or ``text`` is not a list of strings up to there)."""
    scan = _scan(text)
    if scan is None or not scan.repeated:
        return None
    return _closed_after_last_item(text, scan)  # a repeat always has an item before it


def close_cut_list(text: str) -> str:
    """``text`` closed after its last complete item when its list is still open at the end;
    ``text`` itself otherwise (a closed list, another shape, a repeated item, or no complete
    item)."""
    scan = _scan(text)
    if scan is None or scan.repeated or scan.closed or scan.strayed:
        return text
    return _closed_after_last_item(text, scan)


def _closed_after_last_item(text: str, scan: _ListScan) -> str:
    if scan.last_item_end is None:
        return text
    return text[: scan.last_item_end] + "]"


def end_list(text: str) -> str:
    """What a backend with ``close_lists`` answers when it would have generated ``text``
    without it: ended at the first repeated item, else closed if the list was cut."""
    scan = _scan(text)  # one scan: a repeat ends the list where a cut would close it
    if scan is None or scan.closed or scan.strayed:
        return text
    return _closed_after_last_item(text, scan)


class ReplyEnding(Protocol):
    """How a backend ends replies besides its stop tokens and token limit (``reply_ending``).

    ``early(reply_so_far)`` is asked after every generated token: the final reply once it is
    decided (the row then stops decoding), else None. ``final(reply)`` finishes a reply that
    generation ended (stop token or token limit) without an early decision. For a reply that
    stopped early, ``early`` of the text decoded at the stop gives it back, so a backend may
    stop a row and decide its reply later from its tokens.
    """

    def early(self, reply: str) -> str | None: ...

    def final(self, reply: str) -> str: ...


def finish_reply(ending: ReplyEnding | None, reply: str) -> str:
    """The reply a backend returns for the decoded ``reply`` under ``ending`` (None: as is)."""
    if ending is None:
        return reply
    decided = ending.early(reply)
    return decided if decided is not None else ending.final(reply)


class ListEnding:
    """The :class:`ReplyEnding` of ``close_lists``: a reply is decided early at its first
    repeated item (:func:`end_at_repeated_item`) and closed at the end if its list was cut
    (:func:`close_cut_list`); :func:`finish_reply` with it is :func:`end_list`."""

    name = "close_lists"

    def early(self, reply: str) -> str | None:
        return end_at_repeated_item(reply)

    def final(self, reply: str) -> str:
        return close_cut_list(reply)

    def __repr__(self) -> str:
        return "ListEnding()"
