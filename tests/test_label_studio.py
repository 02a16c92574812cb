"""Label Studio's JSON and JSON-MIN exports, read wherever a benchmark split goes."""

from __future__ import annotations

import json

import pytest

from raitner.cli import main
from raitner.errors import DataFormatError, RaitnerError
from raitner.io.stats import ReadStats
from raitner.io.user_files import read_user_file
from raitner.schema import Entity


def _region(start, end, text, *labels):
    return {
        "id": f"r{start}",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start, "end": end, "text": text, "labels": list(labels)},
    }


def _task(task_id, text, *annotations):
    return {
        "id": task_id,
        "data": {"text": text},
        "annotations": [
            {"id": 100 + i, "completed_by": 1, "result": result, "was_cancelled": cancelled}
            for i, (result, cancelled) in enumerate(annotations)
        ],
        "predictions": [{"result": [_region(0, 1, text[:1], "NOISE")]}],
    }


def test_json_export_reads_the_first_annotation_that_was_not_cancelled(tmp_path):
    tasks = [
        _task(
            1,
            "Alice met Bob in Paris .",
            ([_region(0, 5, "Alice", "PER")], True),  # cancelled: not read
            ([_region(0, 5, "Alice", "PER"), _region(17, 23, "Paris ", "LOC")], False),
            ([_region(10, 13, "Bob", "PER")], False),  # a second annotator's: not read
        ),
        _task(2, "Nobody annotated this."),
        _task(3, "Rome is old.", ([_region(0, 4, "Rome", "LOC", "GPE")], False)),
        {"id": 4, "data": {"sentence": "Oslo is cold."}, "annotations": [{"result": []}]},
    ]
    path = tmp_path / "project-1-at-2026.json"
    path.write_text(json.dumps(tasks, indent=2))
    stats = ReadStats()
    alice, rome, oslo = read_user_file(path, stats)
    assert [ex.id for ex in (alice, rome, oslo)] == [
        "project-1-at-2026:1",
        "project-1-at-2026:3",
        "project-1-at-2026:4",
    ]
    assert alice.entities == [Entity(0, 5, "Alice", "PER"), Entity(17, 22, "Paris", "LOC")]
    assert rome.entities == [Entity(0, 4, "Rome", "LOC"), Entity(0, 4, "Rome", "GPE")]
    assert (oslo.text, oslo.entities) == ("Oslo is cold.", [])
    assert stats.skipped == {"later annotation of a task": 1, "task without an annotation": 1}
    assert stats.trimmed_spans == 1 and alice.lang == "en"


def test_json_min_export_and_utf16_offsets_realigned(tmp_path):
    # Label Studio counts the emoji as two UTF-16 units, so the offsets after it are one too far
    tasks = [
        {
            "id": 7,
            "text": "我爱北京 😀 和上海",
            "label": [
                {"start": 2, "end": 4, "text": "北京", "labels": ["地点"]},
                {"start": 9, "end": 11, "text": "上海", "labels": ["地点"]},
            ],
            "annotator": 1,
            "annotation_id": 12,
        },
        {"id": 8, "text": "没有实体。", "annotator": 1, "annotation_id": 13},
    ]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False))
    stats = ReadStats()
    first, second = read_user_file(path, stats)
    assert first.lang == "zh" and first.id == "min:7"
    assert [(e.start, e.end, e.text) for e in first.entities] == [(2, 4, "北京"), (8, 10, "上海")]
    assert stats.realigned_spans == 1
    assert second.entities == []


def test_a_region_whose_text_is_nowhere_is_left_out_and_counted(tmp_path):
    tasks = [
        {
            "id": 1,
            "text": "Rome",
            "label": [{"start": 0, "end": 4, "text": "Oslo", "labels": ["x"]}],
        }
    ]
    path = tmp_path / "gone.json"
    path.write_text(json.dumps(tasks))
    stats = ReadStats()
    (example,) = read_user_file(path, stats)
    assert example.entities == [] and stats.unfound_mentions == 1


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            {"id": 1, "data": {"a": "x", "b": "y"}, "annotations": []},
            r"task 1: expected the text in data.text \(or one string field of data\)",
        ),
        (
            {"id": 1, "data": {"text": "ab"}, "annotations": [{"result": {"value": 1}}]},
            r"annotation's \"result\" to be a list",
        ),
        (
            {"id": 1, "text": "ab", "label": [{"start": "0", "end": 1, "labels": ["x"]}]},
            r"region 0: start and end must be whole numbers",
        ),
        (
            {"id": 1, "text": "ab", "label": [{"start": 0, "end": 1, "labels": "x"}]},
            r"region 0: expected labels to be a list of type names",
        ),
        (
            {"id": 1, "text": "ab", "label": [{"start": 0, "end": 9, "labels": ["x"]}]},
            r"lies outside the text's 2 characters",
        ),
        ({"id": 1, "body": "ab"}, r"expected a Label Studio task"),
    ],
)
def test_bad_tasks_name_the_file_the_line_and_what_was_expected(tmp_path, task, message):
    good = {"id": 0, "text": "fine", "annotation_id": 1}
    path = tmp_path / "bad.json"
    path.write_text("[\n" + json.dumps(good) + ",\n" + json.dumps(task) + "\n]\n")
    with pytest.raises(DataFormatError, match=message) as err:
        read_user_file(path)
    assert err.value.line == 3 and str(path) in str(err.value)


def test_a_label_studio_export_trains_and_a_universalner_file_still_reads(tmp_path):
    tasks = [
        _task(1, "Alice met Bob.", ([_region(0, 5, "Alice", "person")], False)),
        _task(2, "Carol stayed.", ([_region(0, 5, "Carol", "person")], False)),
    ]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks))
    out = tmp_path / "train.jsonl"
    args = ["build", str(path), "--mode", "ra-it", "--k", "1", "--embedder", "hashing"]
    assert main([*args, "-o", str(out), "--quiet"]) == 0
    answers = {
        m["content"]
        for line in out.read_text().splitlines()
        for m in json.loads(line)["messages"]
        if m["role"] == "assistant"
    }
    assert '["Alice"]' in answers and '["Carol"]' in answers

    conversation = {
        "conversations": [
            {"from": "human", "value": "Text: Rome is old."},
            {"from": "gpt", "value": "I've read this text."},
            {"from": "human", "value": "What describes city in the text?"},
            {"from": "gpt", "value": '["Rome"]'},
        ]
    }
    uniner = tmp_path / "uniner.json"
    uniner.write_text(json.dumps([conversation]))
    (example,) = read_user_file(uniner)
    assert example.entities == [Entity(0, 4, "Rome", "city")]


def test_export_as_tasks_to_review_reads_back_once_accepted(tmp_path, capsys):
    source = tmp_path / "mine.conll"
    source.write_text("Alice\tB-person\nmet\tO\nBob\tB-person\n\nRome\tB-city\nis\tO\nold\tO\n")
    out = tmp_path / "to_review.json"
    args = ["data", "export", str(source), "--shape", "label-studio"]
    assert main([*args, "-o", str(tmp_path / "tasks.jsonl")]) == 2
    assert "--shape label-studio writes a JSON array: name the output .json" in (
        capsys.readouterr().err
    )
    assert main([*args, "-o", str(out)]) == 0
    tasks = json.loads(out.read_text())
    assert [t["data"] for t in tasks] == [
        {"text": "Alice met Bob", "raitner_id": "mine:0"},
        {"text": "Rome is old", "raitner_id": "mine:1"},
    ]
    (prediction,) = tasks[0]["predictions"]
    assert [r["value"] for r in prediction["result"]] == [
        {"start": 0, "end": 5, "text": "Alice", "labels": ["person"]},
        {"start": 10, "end": 13, "text": "Bob", "labels": ["person"]},
    ]
    with pytest.raises(RaitnerError, match=r"none of its 2 Label Studio tasks has an annotation"):
        read_user_file(out)  # predictions are not annotations

    for task in tasks:  # a reviewer accepts every prediction as it is
        task["annotations"] = [{"result": task.pop("predictions")[0]["result"]}]
    out.write_text(json.dumps(tasks))
    reviewed, original = read_user_file(out), read_user_file(source)
    assert [(ex.id, ex.text, ex.entities) for ex in reviewed] == [
        (ex.id, ex.text, ex.entities) for ex in original
    ]


def test_a_project_reading_another_data_field_keeps_its_raitner_id(tmp_path):
    # a labelling config with value="$sentence": the exported text is data.sentence, beside
    # the raitner_id a task raitner exported carries
    from raitner.cli import _read_predict_input

    tasks = [
        {
            "id": 7,
            "data": {"sentence": "Alice met Bob", "raitner_id": "mine:0"},
            "annotations": [
                {
                    "result": [
                        {"value": {"start": 0, "end": 5, "text": "Alice", "labels": ["person"]}}
                    ]
                }
            ],
        }
    ]
    path = tmp_path / "sentences.json"
    path.write_text(json.dumps(tasks))
    (example,) = read_user_file(path)
    assert (example.id, example.text) == ("mine:0", "Alice met Bob")
    assert example.entities == [Entity(0, 5, "Alice", "person")]
    assert _read_predict_input(path, ["person"]) == [
        {"id": "mine:0", "text": "Alice met Bob", "labels": ["person"]}
    ]
