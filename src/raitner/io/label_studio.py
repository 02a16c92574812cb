"""Label Studio's JSON exports of a text-span (NER) project, read as annotated data.

Two of its export formats carry character offsets:

* **JSON**: an array of tasks, ``{"id", "data": {"text": …}, "annotations": [{"result":
  [{"type": "labels", "value": {"start", "end", "text", "labels": [TYPE, …]}}, …],
  "was_cancelled"}], "predictions": […]}``. A task's first annotation that was not cancelled
  is read; tasks with none are left out, and later annotations of a task are not read (both
  counted in ``ReadStats.skipped``), and a file of tasks none of which has one (tasks to import,
  or raitner's own export of predictions) is an error; predictions are never read. The text is
  ``data.text``, or the one string field of ``data``.
* **JSON-MIN**: an array of ``{"id", "text", "label": [{"start", "end", "text", "labels"}]}``,
  one a task, the list under the name of the project's labels control (``label`` in Label
  Studio's NER template, any name here).

A region with several labels is one mention per label. Label Studio counts offsets in the
browser's UTF-16 units, so a text with characters outside the basic plane (most emoji) shifts
them: a region whose offsets miss its stated text is moved to that text's nearest occurrence
(``ReadStats.realigned_spans``). Spaces at a region's ends are trimmed, as for span JSONL.

Ids are ``<file stem>:<task id>`` (or ``:<n>``, the task's position, without one), or the
``data.raitner_id`` of a task raitner exported; the language is read from the texts as for
the other annotated files.

:func:`write_label_studio_tasks` writes texts the other way, as tasks to import with their
mentions as predictions (pre-annotations to review), for Label Studio's NER template (a
``Labels`` control named ``label`` on a ``Text`` named ``text``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.errors import DataFormatError, RaitnerError, SchemaError
from raitner.io.files import file_stem
from raitner.io.span_jsonl import entity_at, is_offset
from raitner.io.stats import ReadStats
from raitner.io.zh_common import iter_json_records
from raitner.schema import Entity, Example


def is_label_studio_task(record: Any) -> bool:
    """Whether a JSON record looks like a Label Studio task (JSON or JSON-MIN export)."""
    if not isinstance(record, dict):
        return False
    if has_task_data(record):  # annotated or not (a file of tasks to import)
        return True
    if not isinstance(record.get("text"), str):
        return False
    # JSON-MIN: a list of regions, or none at all in a task annotated as having no mention
    return _regions_key(record) is not None or "annotation_id" in record


def read_label_studio(path: str | Path, stats: ReadStats | None = None) -> list[Example]:
    """The annotated texts of a Label Studio JSON or JSON-MIN export (see the module
    docstring)."""
    from raitner.io.user_files import text_lang

    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    read: list[tuple[str, str, list[Entity]]] = []
    tasks = 0
    for index, (number, task) in enumerate(iter_json_records(path)):
        tasks += 1
        try:
            found = _read_task(path, number, index, task, stats)
        except SchemaError as err:
            raise DataFormatError(path, number, f"task {index}: {err}") from None
        if found is not None:
            read.append(found)
    if tasks and not read:
        which = (
            "its one Label Studio task has no annotation"
            if tasks == 1
            else f"none of its {tasks} Label Studio tasks has an annotation"
        )
        raise RaitnerError(
            f"{path}: {which}; annotate in Label Studio first (or predict the texts: raitner "
            "predict takes this file)"
        )
    lang = text_lang(text for _, text, _ in read)
    examples = []
    for example_id, text, entities in read:
        examples.append(Example(id=example_id, text=text, lang=lang, entities=entities))
        stats.examples += 1
        stats.entities += len(entities)
    return examples


def _read_task(
    path: Path, number: int, index: int, task: Any, stats: ReadStats
) -> tuple[str, str, list[Entity]] | None:
    def fail(message: str) -> DataFormatError:
        return DataFormatError(path, number, f"task {index}: {message}")

    if not is_label_studio_task(task):
        raise fail(
            'expected a Label Studio task: {"data": {"text"}, "annotations": [{"result"}]} '
            '(JSON export) or {"text", "label": [{"start", "end", "labels"}]} (JSON-MIN export)'
        )
    example_id = f"{file_stem(path)}:{task.get('id', index)}"
    if isinstance(task.get("data"), dict):
        if isinstance(task["data"].get("raitner_id"), str):  # a task raitner exported
            example_id = task["data"]["raitner_id"]
        text = _task_text(task["data"], fail)
        annotations = [
            a
            for a in task.get("annotations") or []
            if isinstance(a, dict) and not a.get("was_cancelled")
        ]
        if not annotations:
            stats.skip("task without an annotation")
            return None
        for _ in annotations[1:]:
            stats.skip("later annotation of a task")
        regions = annotations[0].get("result")
        if not isinstance(regions, list):
            raise fail('expected the annotation\'s "result" to be a list')
        values = [
            r.get("value")
            for r in regions
            if isinstance(r, dict) and isinstance(r.get("value"), dict) and "labels" in r["value"]
        ]
    else:
        text = task["text"]
        key = _regions_key(task)
        values = task[key] if key is not None else []
    entities = []
    for position, value in enumerate(values):
        start, end, labels = value.get("start"), value.get("end"), value.get("labels")
        if not (is_offset(start) and is_offset(end)):
            raise fail(f"region {position}: start and end must be whole numbers")
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise fail(f"region {position}: expected labels to be a list of type names")
        given = value.get("text")
        for label in labels:
            entity = entity_at(
                text,
                start,
                end,
                label,
                stats,
                given=given if isinstance(given, str) else None,
                realign=True,
            )
            if entity is not None:
                entities.append(entity)
    return example_id, text, entities


def has_task_data(record: Any) -> bool:
    """Whether a JSON record is a task with its fields under ``data`` (not JSON-MIN)."""
    return isinstance(record, dict) and isinstance(record.get("data"), dict)


def task_as_text_record(record: Any, text_field: str = "text") -> Any:
    """A task (``{"id", "data": {"text", "raitner_id"?}}``) as a text to predict, ``{"id",
    text_field}`` (its id: the raitner id it was exported with, else the task's; its text:
    ``data[text_field]``, else the one string field of ``data``); any other record as it is."""
    if not has_task_data(record):
        return record
    data = record["data"]
    task_id = data.get("raitner_id", record.get("id"))
    return {
        text_field: _text_of(data, text_field),
        **({"id": task_id} if task_id is not None else {}),
    }


def _text_of(data: dict[str, Any], field: str = "text") -> str | None:
    """``data[field]``, else the one string field of ``data`` besides ``raitner_id`` (a project
    whose labelling config reads another field, ``value="$sentence"``), else None."""
    if isinstance(data.get(field), str):
        return data[field]
    strings = [k for k, v in data.items() if isinstance(v, str) and k != "raitner_id"]
    return data[strings[0]] if len(strings) == 1 else None


def _task_text(data: dict[str, Any], fail) -> str:
    text = _text_of(data)
    if text is None:
        strings = [key for key, value in data.items() if isinstance(value, str)]
        raise fail(f"expected the text in data.text (or one string field of data), found {strings}")
    return text


def _regions_key(record: dict[str, Any]) -> str | None:
    """The key of a JSON-MIN task's list of labelled regions, if it has one."""
    for key, value in record.items():
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and "labels" in v and "start" in v for v in value)
        ):
            return key
    return None


def write_label_studio_tasks(
    path: str | Path,
    examples: Iterable[Example],
    from_name: str = "label",
    to_name: str = "text",
    model_version: str = "raitner",
) -> int:
    """Write examples atomically as a JSON array of Label Studio tasks, each text in
    ``data.text`` (its raitner id in ``data.raitner_id``) and its mentions as one prediction;
    returns how many were written. ``from_name`` and ``to_name`` must name the project's
    ``Labels`` and ``Text`` controls."""
    count = 0
    with atomic_write(path) as handle:
        handle.write("[")
        for example in examples:
            regions = [
                {
                    "id": f"r{position}",
                    "from_name": from_name,
                    "to_name": to_name,
                    "type": "labels",
                    "value": {
                        "start": e.start,
                        "end": e.end,
                        "text": e.text,
                        "labels": [e.label],
                    },
                }
                for position, e in enumerate(example.entities)
            ]
            task = {
                "data": {"text": example.text, "raitner_id": example.id},
                "predictions": [{"model_version": model_version, "result": regions}],
            }
            handle.write(("," if count else "") + "\n" + json.dumps(task, ensure_ascii=False))
            count += 1
        handle.write("\n]\n")
    return count
