"""Chinese JSON corpora (JSON Lines or one JSON array; both are accepted by every reader).

* CLUENER 2020 (:func:`read_cluener`): ``{"text", "label": {type: {mention: [[s, e], …]}}}``
  with an **inclusive** end ``e``; converted to end-exclusive. Entities in the file's order
  (type, then mention, then span).
* CMeEE v1/v2 (:func:`read_cmeee`): a JSON array of ``{"text", "entities": [{"start_idx",
  "end_idx", "type", "entity"}]}`` with an **inclusive** ``end_idx``; nested and overlapping
  entities are kept, in the file's order.
* Yidu-S4K (:func:`read_yidu`): ``{"originalText", "entities": [{"label_type", "start_pos",
  "end_pos"}]}`` with an **exclusive** ``end_pos``; training files start with a BOM and part 2
  has CRLF line ends and a trailing blank line. Spans are kept as annotated, including the
  stray edge spaces of a few mentions (``"替吉奥 "``).
* The RA-IT Boson benchmark (:func:`read_boson`): ``{"id", "sentence", "label": {mention:
  type}}``, types already in Chinese (``产品名称``). Entities are found with
  :func:`raitner.io.mentions.locate_mentions`, in the order of the ``label`` dict (the order
  the authors' answers list them). ``sentence`` is kept byte for byte, including its final
  ``"\\n"``, literal ``\\n`` escapes and, in three documents, left-over inner ``{{type:…}}``
  markup: the authors' instruction data embed exactly this text.

Where a record has its own ``id`` (Boson, CLUENER test) the example id is ``id_prefix`` +
that id; otherwise ``id_prefix`` + the 0-based record index. Test files without gold labels
(CLUENER test, CMeEE test) raise :class:`DataFormatError` unless ``allow_unlabelled=True``,
which yields them with no entities and ``meta["unlabelled"] = True``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from raitner.errors import DataFormatError
from raitner.io.mentions import locate_mentions
from raitner.io.stats import ReadStats
from raitner.io.zh_common import build_example, iter_json_records, require
from raitner.schema import Entity, Example


def _record_id(record: dict, id_prefix: str, index: int) -> str:
    own = record.get("id")
    return (
        f"{id_prefix}{own if isinstance(own, int | str) and not isinstance(own, bool) else index}"
    )


def _int(path: str | Path, line: int, value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DataFormatError(path, line, f"expected an integer {what}, got {value!r}")
    return value


def _unlabelled(path: str | Path, line: int, key: str, allow: bool) -> None:
    if not allow:
        raise DataFormatError(
            path,
            line,
            f"expected gold labels under {key!r}; this record has none (an unlabelled test file? "
            "pass allow_unlabelled=True to read it without entities)",
        )


def _check_inclusive_span(
    path: str | Path, line: int, text: str, start: int, end: int, mention: str
) -> None:
    """``end`` is already exclusive; the message shows the file's inclusive ``end - 1``."""
    if text[start:end] != mention:
        raise DataFormatError(
            path,
            line,
            f"expected inclusive span [{start}, {end - 1}] to spell {mention!r}, "
            f"text there is {text[start:end]!r}",
        )


def read_cluener(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    allow_unlabelled: bool = False,
) -> Iterator[Example]:
    """CLUENER JSONL; ``[s, e]`` spans are inclusive and must spell their mention."""
    for index, (line, record) in enumerate(iter_json_records(path)):
        what = "a CLUENER record {text, label}"
        text = require(path, line, record, "text", str, what)
        meta: dict[str, Any] = {}
        spans: list[tuple[int, int, str]] = []
        if "label" not in record:
            _unlabelled(path, line, "label", allow_unlabelled)
            meta["unlabelled"] = True
        else:
            label = require(path, line, record, "label", dict, what)
            for entity_type, mentions in label.items():
                if not isinstance(mentions, dict):
                    raise DataFormatError(
                        path,
                        line,
                        f"expected label[{entity_type!r}] to map mention -> [[start, end], …]",
                    )
                for mention, positions in mentions.items():
                    if not isinstance(positions, list) or not all(
                        isinstance(p, list) and len(p) == 2 for p in positions
                    ):
                        raise DataFormatError(
                            path,
                            line,
                            f"expected [[start, end], …] for {mention!r}, got {positions!r}",
                        )
                    for start, end in positions:
                        start = _int(path, line, start, "start")
                        end = _int(path, line, end, "end (inclusive)") + 1
                        _check_inclusive_span(path, line, text, start, end, mention)
                        spans.append((start, end, entity_type))
        yield build_example(
            path,
            line,
            id=_record_id(record, id_prefix, index),
            text=text,
            lang=lang,
            entities=spans,
            stats=stats,
            meta=meta,
        )


def read_cmeee(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    allow_unlabelled: bool = False,
) -> Iterator[Example]:
    """CMeEE JSON array; ``end_idx`` is inclusive; ``entity`` (when given) must match."""
    for index, (line, record) in enumerate(iter_json_records(path)):
        what = "a CMeEE record {text, entities}"
        text = require(path, line, record, "text", str, what)
        meta: dict[str, Any] = {}
        spans: list[tuple[int, int, str]] = []
        if "entities" not in record:
            _unlabelled(path, line, "entities", allow_unlabelled)
            meta["unlabelled"] = True
        else:
            for item in require(path, line, record, "entities", list, what):
                entity_what = "an entity {start_idx, end_idx, type, entity}"
                start = require(path, line, item, "start_idx", int, entity_what)
                end = require(path, line, item, "end_idx", int, entity_what) + 1
                label = require(path, line, item, "type", str, entity_what)
                mention = item.get("entity")
                if mention is not None:
                    _check_inclusive_span(path, line, text, start, end, mention)
                spans.append((start, end, label))
        yield build_example(
            path,
            line,
            id=_record_id(record, id_prefix, index),
            text=text,
            lang=lang,
            entities=spans,
            stats=stats,
            meta=meta,
        )


def read_yidu(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    id_offsets: Mapping[str, int] | None = None,
) -> Iterator[Example]:
    """Yidu-S4K JSONL; ``end_pos`` is exclusive.

    ``id_offsets`` maps a file name to the index of its first record, so that a split read
    from several files (train = part 1 + part 2) gets one run of ids: ``{"…part2.txt": 400}``.
    """
    first = (id_offsets or {}).get(Path(path).name, 0)
    for index, (line, record) in enumerate(iter_json_records(path)):
        what = "a Yidu-S4K record {originalText, entities}"
        text = require(path, line, record, "originalText", str, what)
        spans = []
        for item in require(path, line, record, "entities", list, what):
            entity_what = "an entity {label_type, start_pos, end_pos}"
            start = require(path, line, item, "start_pos", int, entity_what)
            end = require(path, line, item, "end_pos", int, entity_what)
            spans.append((start, end, require(path, line, item, "label_type", str, entity_what)))
        yield build_example(
            path,
            line,
            id=f"{id_prefix}{first + index}",
            text=text,
            lang=lang,
            entities=spans,
            stats=stats,
        )


def read_boson(
    path: str | Path,
    *,
    lang: str = "zh",
    id_prefix: str = "",
    stats: ReadStats | None = None,
    nested_fallback: bool = True,
) -> Iterator[Example]:
    """The RA-IT Boson JSONL; ids are the records' own ``id``.

    ``locate_mentions`` drops a listed mention whose candidate occurrences all lie inside
    longer listed mentions (e.g. ``金隅`` only inside ``金隅股份``; 31 in the three files under
    the plain longer-claims-first rule), yet the authors' answers list it. With
    ``nested_fallback`` (default) such a mention is kept: at its occurrences that overlap no
    other entity if there are any, else at all of them, nested; at its place in the dict
    order; and listed in ``meta["nested_recovered"]``. So ``example.mentions(type)`` equals
    the authors' answer for every (document, type). Mentions not in the text at all are dropped,
    counted in ``stats.unfound_mentions`` and listed in ``meta["unfound"]``."""
    for index, (line, record) in enumerate(iter_json_records(path)):
        what = "a Boson record {id, sentence, label}"
        text = require(path, line, record, "sentence", str, what)
        label = require(path, line, record, "label", dict, what)
        pairs = []
        for mention, entity_type in label.items():
            if not isinstance(entity_type, str) or not entity_type:
                raise DataFormatError(
                    path, line, f"expected label to map mention -> type, got {entity_type!r}"
                )
            pairs.append((mention, entity_type))
        entities, unfound = locate_mentions(text, pairs)
        meta: dict[str, Any] = {}
        if unfound and nested_fallback:
            entities, unfound, recovered = _recover_nested(text, pairs, entities, unfound)
            if recovered:
                meta["nested_recovered"] = [list(pair) for pair in recovered]
        if unfound:
            meta["unfound"] = [list(pair) for pair in unfound]
            if stats is not None:
                stats.unfound_mentions += len(unfound)
        yield build_example(
            path,
            line,
            id=_record_id(record, id_prefix, index),
            text=text,
            lang=lang,
            entities=entities,
            stats=stats,
            meta=meta,
        )


def _recover_nested(
    text: str,
    pairs: list[tuple[str, str]],
    entities: list[Entity],
    unfound: list[tuple[str, str]],
) -> tuple[list[Entity], list[tuple[str, str]], list[tuple[str, str]]]:
    """Add unfound mentions that do occur in the text; keep the listed order.

    Occurrences that overlap no entity are preferred; only when every occurrence lies inside
    (or across) other entities are they all kept, nested."""
    still_unfound: list[tuple[str, str]] = []
    recovered: list[tuple[str, str]] = []
    extra: list[Entity] = []
    taken = [(e.start, e.end) for e in entities]
    for mention, label in unfound:
        starts: list[int] = []
        for flags in (0, re.IGNORECASE):
            starts = [m.start() for m in re.finditer(re.escape(mention), text, flags)]
            if starts:
                break
        if not starts:
            still_unfound.append((mention, label))
            continue
        free = [s for s in starts if all(s + len(mention) <= a or b <= s for a, b in taken)]
        recovered.append((mention, label))
        for start in free or starts:
            extra.append(
                Entity(start, start + len(mention), text[start : start + len(mention)], label)
            )
        taken.extend((start, start + len(mention)) for start in free)
    if not recovered:
        return entities, unfound, []
    listed = list(dict.fromkeys(pairs))

    def rank(entity: Entity) -> int:
        for index, (mention, label) in enumerate(listed):
            if label == entity.label and mention == entity.text:
                return index
        for index, (mention, label) in enumerate(listed):
            if label == entity.label and mention.lower() == entity.text.lower():
                return index
        return len(listed)

    return sorted([*entities, *extra], key=rank), still_unfound, recovered


# ----------------------------------------------------------------------------- writers
# Inverses of the readers for one record (raw labels), used for round trips and exports.


def _own_id(example: Example) -> str:
    return example.id.rsplit(":", 1)[-1]


def cluener_record(example: Example) -> dict[str, Any]:
    """``{"text", "label": {type: {mention: [[s, e_inclusive], …]}}}`` in entity order."""
    label: dict[str, dict[str, list[list[int]]]] = {}
    for entity in example.entities:
        label.setdefault(entity.label, {}).setdefault(entity.text, []).append(
            [entity.start, entity.end - 1]
        )
    return {"text": example.text, "label": label}


def cmeee_record(example: Example) -> dict[str, Any]:
    entities = [
        {"start_idx": e.start, "end_idx": e.end - 1, "type": e.label, "entity": e.text}
        for e in example.entities
    ]
    return {"text": example.text, "entities": entities}


def yidu_record(example: Example) -> dict[str, Any]:
    entities = [
        {"label_type": e.label, "start_pos": e.start, "end_pos": e.end} for e in example.entities
    ]
    return {"originalText": example.text, "entities": entities}


def boson_record(example: Example) -> dict[str, Any]:
    """``{"id", "sentence", "label": {mention: type}}``; the id is the part after the last ``:``
    (an int when it is one). A mention listed under several types keeps the first."""
    own = _own_id(example)
    label: dict[str, str] = {}
    for entity in example.entities:
        label.setdefault(entity.text, entity.label)
    return {"id": int(own) if own.isdigit() else own, "sentence": example.text, "label": label}
