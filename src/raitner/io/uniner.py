"""UniversalNER conversation JSON (``en/uniner_eval/*.json``): reader and writer.

A file is a JSON array of records, one per (text, type) query::

    {"id": "CrossNER_AI_0", "conversations": [
        {"from": "human", "value": "Text: Typical generative model approaches include ..."},
        {"from": "gpt", "value": "I've read this text."},
        {"from": "human", "value": "What describes organization in the text?"},
        {"from": "gpt", "value": "[]"}]}

The answer is a JSON list of mention strings. UniversalNER built these files from the tagged
test sets: the text is the tokens joined by single spaces, the answer lists the mentions of one
type in text order, once per occurrence (``["blues", "blues"]``), and the order of the types is
shuffled per text. A record may also hold several question/answer pairs after the
acknowledgement (UniversalNER's training format); both are read.

Reading groups the queries of one text into one ``Example``: consecutive records with the same
text, until a type is asked a second time (the CrossNER test sets hold repeated sentences, some
back to back, which must stay separate examples). ``id`` is ``id_prefix`` + the 0-based example
index; ``label_set`` (and ``meta["asked_types"]``, which survives ``Benchmark.load``) is the
types asked, in the order asked; labels are UniversalNER's natural-language types.

Locating answers (the files have no offsets): since an answer lists one type's mentions in text
order, each mention is looked for *after* the previous one, preferring occurrences on token
boundaries (so ``R`` is not found inside ``Rserve``); failing that, anywhere not yet used for that
type; failing that, case-insensitively. Types are located independently (a ``country`` may lie
inside an ``election``, as UniversalNER's answers allow). Mentions still not found are dropped
and counted in ``stats.unfound_mentions``. Entities are in source order: question order, then
answer order.

Writing (``write_uniner_conversations``) produces the same one-record-per-(text, type) array:
``Text: <text>`` / ``I've read this text.`` / ``What describes <type> in the text?`` / the JSON
list of that type's entity texts in entity order, one per entity, serialised like UniversalNER's
``json.dump`` (default separators, ASCII escapes, no final newline). Reading
``en/uniner_eval/CrossNER_AI.json`` and writing it back with ``id_prefix="CrossNER_AI_"``
reproduces the file byte for byte (checked by the tests, for all six files). Differences can only
come from mentions that cannot be located (dropped) or were matched case-insensitively (written
with the text's casing); the shared files have none. Examples read from tagged files (entities
in text order) give UniversalNER's construction, e.g. to rebuild the missing ``mit-movie.json``.

Writing the tagged CrossNER/MIT Restaurant test sets (``exclude_types=["misc"]``) reproduces
UniversalNER's queries except where its conversion lost data: a mention that ends its sentence
(no final token after it) is missing from 10 of its answers over the six files, and the last
sentence of the politics and MIT Restaurant test sets is missing (tests/test_readers_en.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError
from raitner.io.files import read_text
from raitner.io.stats import ReadStats
from raitner.schema import Entity, Example

TEXT_PREFIX = "Text: "
ACKNOWLEDGEMENT = "I've read this text."
QUESTION = "What describes {} in the text?"
# UniversalNER's question, and the RA-IT data-generation variant with the type in quotes.
_QUESTION = re.compile(r'What describes (?:"(?P<quoted>.+)"|(?P<plain>.+)) in the text\?')


def read_uniner_conversations(
    path: str | Path,
    *,
    lang: str = "en",
    id_prefix: str = "",
    stats: ReadStats | None = None,
) -> Iterator[Example]:
    """Yield one ``Example`` per text of a UniversalNER conversation file."""
    stats = stats if stats is not None else ReadStats()
    count = 0
    text: str | None = None
    queries: list[tuple[str, list[str]]] = []

    def flush() -> Example:
        nonlocal count
        assert text is not None
        entities: list[Entity] = []
        for label, mentions in queries:
            found, unfound = _locate_in_order(text, mentions, label)
            entities.extend(found)
            stats.unfound_mentions += unfound
        asked = [label for label, _ in queries]
        example = Example(
            id=f"{id_prefix}{count}",
            text=text,
            lang=lang,
            entities=entities,
            label_set=tuple(asked),
            meta={"asked_types": asked},
        )
        count += 1
        stats.examples += 1
        stats.entities += len(entities)
        return example

    for number, index, record in _iter_records(path):
        record_text, pairs = _parse_record(path, number, index, record)
        asked = {label for label, _ in queries}
        if text is not None and (record_text != text or any(label in asked for label, _ in pairs)):
            yield flush()
            queries = []
        text = record_text
        queries.extend(pairs)
    if text is not None:
        yield flush()


def write_uniner_conversations(
    path: str | Path,
    examples: Iterable[Example],
    *,
    id_prefix: str = "",
    types: Sequence[str] | None = None,
    exclude_types: Iterable[str] = (),
    unique: bool = False,
    ensure_ascii: bool = True,
) -> int:
    """Write one record per (example, type) atomically; returns how many records were written.

    Types asked for each example: ``types`` if given, else its ``label_set``, else its entity
    labels; minus ``exclude_types`` (UniversalNER dropped CrossNER's ``misc``). Record ids are
    ``f"{id_prefix}{k}"`` with ``k`` counting records. The answer lists the type's entity texts
    in entity order, one per entity; ``unique=True`` lists each mention string once.
    """
    excluded = set(exclude_types)
    count = 0
    with atomic_write(path) as handle:
        handle.write("[")
        for example in examples:
            asked = types if types is not None else (example.label_set or example.labels)
            for label in asked:
                if label in excluded:
                    continue
                answer = [e.text for e in example.entities if e.label == label]
                if unique:
                    answer = list(dict.fromkeys(answer))
                record = {
                    "id": f"{id_prefix}{count}",
                    "conversations": [
                        {"from": "human", "value": TEXT_PREFIX + example.text},
                        {"from": "gpt", "value": ACKNOWLEDGEMENT},
                        {"from": "human", "value": QUESTION.format(label)},
                        {"from": "gpt", "value": json.dumps(answer, ensure_ascii=ensure_ascii)},
                    ],
                }
                if count:
                    handle.write(", ")
                handle.write(json.dumps(record, ensure_ascii=ensure_ascii))
                count += 1
        handle.write("]")
    return count


def _iter_records(path: str | Path) -> Iterator[tuple[int, int, Any]]:
    """(1-based line, 0-based index, record) for a JSON array, or for JSONL (one a line)."""
    content = read_text(path, "utf-8")
    decoder = json.JSONDecoder()
    position = _skip_space(content, 0)
    if content.startswith("\ufeff"):
        position = _skip_space(content, 1)
    if position == len(content):
        return
    array = content[position] == "["
    if array:
        position = _skip_space(content, position + 1)
    line, counted = 1, 0
    index = 0
    while position < len(content):
        if array and content[position] == "]":
            if _skip_space(content, position + 1) != len(content):
                line += content.count("\n", counted, position)
                raise DataFormatError(path, line, "expected the end of the file after `]`")
            return
        line += content.count("\n", counted, position)
        counted = position
        try:
            record, position = decoder.raw_decode(content, position)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, err.lineno, f"invalid JSON ({err.msg})") from None
        yield line, index, record
        index += 1
        position = _skip_space(content, position)
        if array:
            if position < len(content) and content[position] == ",":
                position = _skip_space(content, position + 1)
            elif position >= len(content) or content[position] != "]":
                line += content.count("\n", counted, position)
                raise DataFormatError(path, line, f"expected `,` or `]` after record {index - 1}")
    if array:
        raise DataFormatError(path, line, "expected `]` at the end of the JSON array")


def _skip_space(content: str, position: int) -> int:
    while position < len(content) and content[position] in " \t\r\n":
        position += 1
    return position


def _parse_record(
    path: str | Path, number: int, index: int, record: Any
) -> tuple[str, list[tuple[str, list[str]]]]:
    """(text, [(type, answer mentions)]) of one record, or ``DataFormatError``."""
    where = f"record {index}"
    if isinstance(record, dict) and "id" in record:
        where += f" (id {record['id']!r})"

    def fail(message: str) -> DataFormatError:
        return DataFormatError(path, number, f"{where}: {message}")

    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        raise fail("expected an object with a `conversations` list")
    turns = record["conversations"]
    if len(turns) < 4 or len(turns) % 2:
        raise fail(
            "expected turns text, acknowledgement, then question/answer pairs; "
            f"got {len(turns)} turns"
        )
    values = []
    for position, turn in enumerate(turns):
        speaker = "human" if position % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != speaker:
            raise fail(f"expected turn {position} to be from {speaker!r}")
        value = turn.get("value")
        if not isinstance(value, str):
            raise fail(f"expected turn {position} to have a string value")
        values.append(value)
    if not values[0].startswith(TEXT_PREFIX):
        raise fail(f"expected the first turn to start with {TEXT_PREFIX!r}, got {values[0][:40]!r}")
    text = values[0][len(TEXT_PREFIX) :]
    pairs = []
    for position in range(2, len(values), 2):
        question, answer = values[position], values[position + 1]
        match = _QUESTION.fullmatch(question)
        if match is None:
            raise fail(f"expected {QUESTION.format('<type>')!r}, got {question[:60]!r}")
        label = match["quoted"] or match["plain"]
        if any(label == asked for asked, _ in pairs):
            raise fail(f"expected each type once per record, {label!r} is asked twice")
        try:
            mentions = json.loads(answer)
        except json.JSONDecodeError:
            mentions = None
        if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
            raise fail(f"expected the answer to be a JSON list of strings, got {answer[:60]!r}")
        pairs.append((label, mentions))
    return text, pairs


def _locate_in_order(text: str, mentions: Sequence[str], label: str) -> tuple[list[Entity], int]:
    """Entities for one type's answer (see the module docstring); returns (entities, unfound)."""
    entities: list[Entity] = []
    used: set[tuple[int, int]] = set()
    unfound = 0
    cursor = 0
    for mention in mentions:
        start = _find(text, mention, cursor, used)
        if start is None:
            unfound += 1
            continue
        end = start + len(mention)
        used.add((start, end))
        entities.append(Entity(start, end, text[start:end], label))
        cursor = end
    return entities, unfound


def _find(text: str, mention: str, cursor: int, used: set[tuple[int, int]]) -> int | None:
    if not mention:
        return None
    starts = []
    position = text.find(mention)
    while position != -1:
        starts.append(position)
        position = text.find(mention, position + 1)
    if not starts:
        lowered = mention.lower()
        starts = [m.start() for m in re.finditer(re.escape(lowered), text.lower())]
        if len(text.lower()) != len(text):  # lower() changed lengths: offsets are unreliable
            starts = [s for s in starts if text[s : s + len(mention)].lower() == lowered]
    size = len(mention)
    starts = [s for s in starts if (s, s + size) not in used]
    if not starts:
        return None

    def on_boundary(start: int) -> bool:
        end = start + size
        return (start == 0 or text[start - 1] == " ") and (end == len(text) or text[end] == " ")

    for candidates in (
        [s for s in starts if s >= cursor and on_boundary(s)],
        [s for s in starts if on_boundary(s)],
        [s for s in starts if s >= cursor],
        starts,
    ):
        if candidates:
            return candidates[0]
    return None
