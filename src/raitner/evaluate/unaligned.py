"""Scoring only the answered mentions that occur in the text.

The papers' list metrics (:mod:`raitner.evaluate.metrics`) score every string a model answers.
A mention that occurs nowhere in the text can never be a gold mention, and the predictor never
returns one as an entity: :mod:`raitner.infer.align` lists it under ``unaligned``. So scored the
papers' way, a model pays in precision for mentions a user of ``raitner extract`` or
``raitner predict`` never sees.

:func:`drop_unaligned` rewrites the answers of one text without those mentions, so that a list
metric scores what the predictor returns. "Occurs in the text" is the aligner's rule, tried on
the whole text: exact, then ignoring case, then ignoring whitespace. A mention found only inside
a longer mention of the same type (``York`` beside ``New York``) occurs in the text and is kept.

Only an answer that is exactly a JSON list of strings is rewritten (``json.dumps`` of the mentions
kept, in answer order). A repaired or unparseable answer is kept verbatim: the metric's strict
reading of it could change by more than the dropped mentions if it were rewritten.

Imports nothing heavy: the standard library and raitner's own parser and aligner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from raitner.infer.align import align_mentions
from raitner.infer.parse import AnswerStatus, parse_mentions

__all__ = ["drop_unaligned"]


def drop_unaligned(text: str, answers: Mapping[str, str]) -> tuple[dict[str, str], int]:
    """``answers`` (label → raw answer) without the mentions not found in ``text``.

    Returns the rewritten answers (same labels, same order; untouched answers are the same
    strings) and the number of mentions dropped.
    """
    parsed = {label: parse_mentions(answer) for label, answer in answers.items()}
    pairs = [
        (mention, label)
        for label, answer in parsed.items()
        if answer.status is AnswerStatus.OK
        for mention in answer.mentions
    ]
    missing = set(align_mentions(text, pairs).unaligned)
    if not missing:
        return dict(answers), 0
    rewritten: dict[str, str] = {}
    dropped = 0
    for label, answer in answers.items():
        mentions = parsed[label].mentions
        kept = [mention for mention in mentions if (mention, label) not in missing]
        if parsed[label].status is not AnswerStatus.OK or len(kept) == len(mentions):
            rewritten[label] = answer
            continue
        dropped += len(mentions) - len(kept)
        rewritten[label] = json.dumps(kept, ensure_ascii=False)
    return rewritten, dropped
