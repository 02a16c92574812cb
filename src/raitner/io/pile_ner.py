"""SLIMER's sample of Pile-NER (``en/pile_ner_sample/*/validation.jsonl``).

Each line is one (passage, type) question::

    {"doc_question_pairID": "43340:0", "tagName": "month", "input": "<passage>",
     "instruction": "Extract the Named Entities of type MONTH ...", "output": "[\\"August\\", ...]"}

``doc_question_pairID`` is ``<passage id>:<question index>``; ``output`` is a *string* holding a
JSON list of mention strings (``"[]"`` for a negative type). A passage's rows are scattered over
the file (SLIMER sorted them by type), so the reader groups them and yields one ``Example`` per
passage, in order of first appearance, with:

* ``id``: ``id_prefix`` + the passage id (the source's own id);
* ``text``: the passage exactly as given (Pile-NER passages are raw text, not tokens);
* ``label_set``: the types asked about this passage, in question-index order, negatives
  included (also kept in ``meta["asked_types"]``, which survives ``Benchmark.load``);
* ``entities``: each row's mentions located with ``raitner.io.mentions.locate_mentions``, one
  call per row, because ChatGPT answered each type separately, so a mention of one type may lie
  inside a mention of another. Entity order is question order, then the listed order. Mentions
  that cannot be found are dropped and counted in ``stats.unfound_mentions``.

The ``instruction`` (with or without SLIMER's definition and guidelines) is not kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from raitner.errors import DataFormatError
from raitner.io.jsonl import iter_jsonl
from raitner.io.mentions import locate_mentions
from raitner.io.stats import ReadStats
from raitner.schema import Example

_KEYS = ("doc_question_pairID", "tagName", "input", "output")


def read_pile_ner(
    path: str | Path,
    *,
    lang: str = "en",
    id_prefix: str = "",
    stats: ReadStats | None = None,
) -> Iterator[Example]:
    """Yield one ``Example`` per passage of a SLIMER Pile-NER JSONL file."""
    stats = stats if stats is not None else ReadStats()
    # passage id -> (text, first line, [(question index, line, type, mentions)])
    passages: dict[str, tuple[str, int, list[tuple[int, int, str, list[str]]]]] = {}
    for number, record in iter_jsonl(path):
        missing = [key for key in _KEYS if key not in record]
        if missing:
            raise DataFormatError(
                path, number, f"expected keys {', '.join(_KEYS)}; missing {', '.join(missing)}"
            )
        pair_id = str(record["doc_question_pairID"])
        passage_id, sep, question = pair_id.rpartition(":")
        if not sep or not passage_id or not question.isdigit():
            raise DataFormatError(
                path, number, f"expected doc_question_pairID `<passage>:<index>`, got {pair_id!r}"
            )
        label, text = record["tagName"], record["input"]
        if not isinstance(label, str) or not label.strip():
            raise DataFormatError(path, number, f"expected a non-empty tagName, got {label!r}")
        if not isinstance(text, str):
            raise DataFormatError(path, number, f"expected input to be a string, got {text!r}")
        mentions = _parse_output(path, number, record["output"])
        if passage_id not in passages:
            passages[passage_id] = (text, number, [])
        elif passages[passage_id][0] != text:
            first = passages[passage_id][1]
            raise DataFormatError(
                path, number, f"passage {passage_id} has a different input than on line {first}"
            )
        passages[passage_id][2].append((int(question), number, label, mentions))

    for passage_id, (text, _, questions) in passages.items():
        questions.sort()
        seen: dict[str, int] = {}
        entities = []
        for _, number, label, mentions in questions:
            if label in seen:
                raise DataFormatError(
                    path,
                    number,
                    f"type {label!r} asked twice for passage {passage_id} "
                    f"(also on line {seen[label]})",
                )
            seen[label] = number
            found, unfound = locate_mentions(text, [(m, label) for m in mentions])
            entities.extend(found)
            stats.unfound_mentions += len(unfound)
        asked = tuple(seen)
        stats.examples += 1
        stats.entities += len(entities)
        yield Example(
            id=f"{id_prefix}{passage_id}",
            text=text,
            lang=lang,
            entities=entities,
            label_set=asked,
            meta={"asked_types": list(asked)},
        )


def _parse_output(path: str | Path, number: int, output: object) -> list[str]:
    """``output`` is a JSON list of strings serialised into a string (a bare list is accepted)."""
    value = output
    if isinstance(output, str):
        try:
            value = json.loads(output)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise DataFormatError(
            path, number, f"expected output to be a JSON list of strings, got {str(output)[:80]!r}"
        )
    return value
