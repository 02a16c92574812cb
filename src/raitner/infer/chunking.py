"""Splitting long texts into overlapping windows, and merging what was found in them.

A text is never truncated. One whose tokens fit the budget is a single window; a longer one is
cut into windows of at most ``max_tokens`` tokens each, every window starting inside the
previous one, so that the windows cover the text completely, in order:

* **Budget** (``DEFAULT_MAX_TOKENS = 256``): tokens of the *text* in a window, counted on the
  whole text's tokenization; the prompt around it (system line, retrieved examples, question)
  comes on top. 256 is the passage length of the RA-IT and UniversalNER training data
  (passages were chunked to at most 256 tokens), so windows look like what the model was
  trained on. Only a single character split into more tokens than the budget can exceed it.
* **Overlap** (``DEFAULT_OVERLAP_TOKENS = 32``): the next window starts at most this many
  tokens before the previous one ends, moved forward to the start of a word when there is one
  in that stretch. A mention cut by a window's end is therefore seen whole by the next window
  when fewer than ``overlap_tokens`` of its tokens lie before the cut.
* **Where a window ends**: at the last sentence end (``. ! ? …`` followed by whitespace, CJK
  ``。！？；``, or a line break) in the second half of the window (and after the previous
  window's end); failing that, at the last whitespace there; failing that (long Chinese runs,
  a very long token) between two tokens.

Tokens come from ``token_spans(text) -> [(start, end), ...]``, character spans of the model's
tokens (a fast tokenizer's ``offset_mapping``); without one, :func:`approximate_token_spans`
counts words, punctuation marks and CJK characters as tokens.

Merging (:func:`merge_window_entities`) shifts each window's entities back by the window's
start, removes the duplicates that overlaps produce, and drops an entity lying inside a longer
one of the same label found in another window (a window that saw only ``New`` of
``New York``), the same rule as alignment within one answer.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from raitner.infer.align import remove_subsumed
from raitner.schema import Entity

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP_TOKENS",
    "TokenSpans",
    "Window",
    "approximate_token_spans",
    "check_budget",
    "merge_window_entities",
    "split_text",
]

DEFAULT_MAX_TOKENS = 256
DEFAULT_OVERLAP_TOKENS = 32

TokenSpans = Callable[[str], Sequence[tuple[int, int]]]

_APPROXIMATE_TOKEN = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+|[^\w\s]|_+"
)
_SENTENCE_END = re.compile(r"(?:[.!?…][\"')\]”’]*)(?=\s)|[。！？；]|\n")


@dataclass(frozen=True, slots=True)
class Window:
    """``text[start:end]`` of the full text."""

    start: int
    end: int
    text: str


def approximate_token_spans(text: str) -> list[tuple[int, int]]:
    """Words, single punctuation marks and single CJK characters, as character spans."""
    return [m.span() for m in _APPROXIMATE_TOKEN.finditer(text)]


def check_budget(max_tokens: int | None, overlap_tokens: int) -> None:
    """Raise ``ValueError`` unless ``max_tokens >= 1`` (or None) and ``0 <= overlap < max``."""
    if max_tokens is None:
        return
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 (or None), got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be in [0, max_tokens), got {overlap_tokens} for {max_tokens}"
        )


def split_text(
    text: str,
    *,
    max_tokens: int | None = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    token_spans: TokenSpans | None = None,
) -> list[Window]:
    """Windows covering ``text``; see the module notes. ``max_tokens=None``: one window."""
    check_budget(max_tokens, overlap_tokens)
    if max_tokens is None:
        return [Window(0, len(text), text)]
    spans = list((token_spans or approximate_token_spans)(text))
    if len(spans) <= max_tokens:
        return [Window(0, len(text), text)]
    starts = sorted(start for start, _ in spans)
    windows: list[Window] = []
    window_start, previous_cut = 0, 0
    while True:
        # Each window starts and ends after the previous one.
        floor = max(window_start, previous_cut)
        first_token = bisect.bisect_left(starts, window_start)
        limit = first_token + max_tokens
        while limit < len(starts) and starts[limit] <= floor:
            # Tokens sharing one start (bytes of one character) filled the overlap: start later.
            first_token = bisect.bisect_right(starts, starts[first_token])
            limit = first_token + max_tokens
            window_start = min(starts[first_token], floor)
        if limit >= len(starts):
            windows.append(Window(window_start, len(text), text[window_start:]))
            return windows
        low = max(starts[first_token + max_tokens // 2], floor)
        cut = _cut(text, low=low, high=starts[limit])
        windows.append(Window(window_start, cut, text[window_start:cut]))
        cut_token = bisect.bisect_left(starts, cut)
        next_token = max(first_token + 1, cut_token - overlap_tokens)
        while starts[next_token] <= window_start:
            next_token += 1
        next_start = _word_start(text, starts[next_token], cut)
        if next_start <= window_start:
            next_start = starts[next_token]
        window_start, previous_cut = min(next_start, cut), cut


def _cut(text: str, *, low: int, high: int) -> int:
    """Where a window whose text may end anywhere in ``(low, high]`` ends."""
    # One character past ``high`` so that the look-ahead sees what follows a final stop.
    sentence_ends = [m.end() for m in _SENTENCE_END.finditer(text, low, high + 1)]
    sentence_ends = [end for end in sentence_ends if low < end <= high]
    if sentence_ends:
        return sentence_ends[-1]
    for position in range(high - 1, low, -1):
        if text[position].isspace():
            return position
    return high


def _word_start(text: str, position: int, limit: int) -> int:
    """``position`` if a word starts there, else the next word start before ``limit``."""
    if position == 0 or text[position - 1].isspace() or not text[position : position + 1].strip():
        return position
    for index in range(position, limit):
        if text[index].isspace():
            following = index + 1
            while following < limit and text[following].isspace():
                following += 1
            return following if following < limit else position
    return position


def merge_window_entities(
    windows: Sequence[Window], entities_per_window: Iterable[Iterable[Entity]]
) -> list[Entity]:
    """Entities found in each window (offsets relative to it) as entities of the full text."""
    shifted = [
        Entity(entity.start + window.start, entity.end + window.start, entity.text, entity.label)
        for window, entities in zip(windows, entities_per_window, strict=True)
        for entity in entities
    ]
    return remove_subsumed(shifted)
