"""Span-annotated JSONL as raitner, doccano and Prodigy write it, read wherever a benchmark
split goes."""

from __future__ import annotations

import json

import pytest

from raitner.cli import main
from raitner.errors import DataFormatError
from raitner.io.jsonl import read_examples, write_examples
from raitner.io.stats import ReadStats
from raitner.io.user_files import read_user_file
from raitner.schema import Entity, Example
from raitner.sources import load_sources


def _write(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def test_doccano_export_reads_with_file_prefixed_ids_and_trimmed_spans(tmp_path):
    path = _write(
        tmp_path / "project.jsonl",
        [
            {
                "id": 7,
                "text": "EU rejects German call to boycott British lamb.",
                "label": [[0, 2, "ORG"], [11, 18, "MISC"]],  # the annotator took the space
                "Comments": [],
            },
            {"id": 8, "text": "Peter Blackburn", "labels": [[0, 15, "PER"]]},  # older export
            {"id": 9, "text": "Nothing here.", "label": []},
        ],
    )
    stats = ReadStats()
    first, second, third = read_user_file(path, stats)
    assert [ex.id for ex in (first, second, third)] == ["project:7", "project:8", "project:9"]
    assert first.lang == "en"
    assert first.entities == [Entity(0, 2, "EU", "ORG"), Entity(11, 17, "German", "MISC")]
    assert second.entities == [Entity(0, 15, "Peter Blackburn", "PER")]
    assert third.entities == []
    assert (stats.examples, stats.entities, stats.trimmed_spans) == (3, 3, 1)


def test_doccano_relation_export_and_chinese_texts(tmp_path):
    path = _write(
        tmp_path / "rel.jsonl",
        [
            {
                "id": 3,
                "text": "刘慈欣写了三体。",
                "entities": [
                    {"id": 11, "label": "作家", "start_offset": 0, "end_offset": 3},
                    {"id": 12, "label": "作品", "start_offset": 5, "end_offset": 7},
                ],
                "relations": [{"id": 1, "from_id": 11, "to_id": 12, "type": "写"}],
            },
            {"text": "北京很大。", "entities": []},
        ],
    )
    first, second = read_user_file(path)
    assert (first.id, first.lang) == ("rel:3", "zh")
    assert [(e.text, e.label) for e in first.entities] == [("刘慈欣", "作家"), ("三体", "作品")]
    assert (second.id, second.lang) == ("rel:1", "zh")


def test_prodigy_spans_leave_out_rejected_and_ignored_answers(tmp_path):
    span = {"start": 0, "end": 5, "label": "ORG", "token_start": 0, "token_end": 0}
    path = _write(
        tmp_path / "ner_manual.jsonl",
        [
            {"text": "Apple hired Tim Cook.", "spans": [span], "answer": "accept"},
            {"text": "Apple pie.", "spans": [span], "answer": "reject"},
            {"text": "Apple again.", "spans": [span], "answer": "ignore"},
            {"text": "Tim Cook spoke.", "spans": [{"start": 0, "end": 8, "label": "PERSON"}]},
        ],
    )
    stats = ReadStats()
    examples = read_user_file(path, stats)
    assert [ex.id for ex in examples] == ["ner_manual:0", "ner_manual:3"]
    assert examples[0].entities == [Entity(0, 5, "Apple", "ORG")]
    assert examples[1].entities == [Entity(0, 8, "Tim Cook", "PERSON")]
    assert stats.skipped == {"answer reject": 1, "answer ignore": 1}


def test_raitner_lines_keep_their_ids_and_may_leave_out_id_lang_and_mention_text(tmp_path):
    written = [
        Example("a", "Paris is big", "en", [Entity(0, 5, "Paris", "city")], ("city", "person")),
        Example("b", "北京很大", "zh", [Entity(0, 2, "北京", "地名")], meta={"source": "x"}),
    ]
    path = tmp_path / "own.jsonl"
    write_examples(path, written)
    assert read_user_file(path) == list(read_examples(path)) == written

    short = _write(
        tmp_path / "short.jsonl",
        [{"text": "Rome is old", "entities": [{"start": 0, "end": 4, "label": "city"}]}],
    )
    (example,) = read_user_file(short)
    assert (example.id, example.lang) == ("short:0", "en")
    assert example.entities == [Entity(0, 4, "Rome", "city")]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"label": [[0, 1, "X"]]}, r'found no "text"'),
        ({"text": "ab", "label": ["positive"]}, r'"label" item 0: expected \{start, end, label\}'),
        ({"text": "ab", "label": [[0, 5, "X"]]}, r"\[0, 5\) \(X\) lies outside the text's 2"),
        ({"text": "ab", "label": [[1, 1, "X"]]}, r"lies outside"),
        ({"text": "ab", "label": [[0, 1.5, "X"]]}, r"must be whole numbers, got 0 and 1.5"),
        ({"text": "ab", "label": [[0, 1, ""]]}, r"expected a type name as label"),
        ({"text": "ab", "label": [[0, 1]]}, r"expected \[start, end, label\]"),
        ({"text": "ab", "spans": [], "label": []}, r"mentions given twice, as label and spans"),
        ({"text": "ab", "spans": {"start": 0}}, r'"spans" must be a list'),
        ({"text": "ab", "lang": "de"}, r"lang must be 'en' or 'zh', got 'de'"),
        (
            {"text": "ab", "entities": [{"start": 0, "end": 1, "text": "b", "label": "x"}]},
            r"invalid example: mention 'b' \(x\) at \[0, 1\) does not match the text there \('a'\)",
        ),
    ],
)
def test_bad_lines_name_the_file_the_line_and_what_was_expected(tmp_path, record, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"text": "fine", "label": []}) + "\n\n" + json.dumps(record) + "\n")
    with pytest.raises(DataFormatError, match=message) as err:
        read_user_file(path)
    assert err.value.line == 3 and str(path) in str(err.value)


def test_a_mention_of_only_spaces_is_left_out_and_counted(tmp_path):
    path = _write(tmp_path / "s.jsonl", [{"text": "a  b", "label": [[1, 3, "X"], [3, 4, "Y"]]}])
    stats = ReadStats()
    (example,) = read_user_file(path, stats)
    assert example.entities == [Entity(3, 4, "b", "Y")]
    assert stats.skipped == {"mention of only spaces": 1}


def test_two_doccano_exports_mix_and_train_without_id_clashes(tmp_path, capsys):
    records = [
        {"id": 1, "text": "Alice met Bob in Paris.", "label": [[0, 5, "person"], [17, 22, "city"]]},
        {"id": 2, "text": "Carol stayed home.", "label": [[0, 5, "person"]]},
        {"id": 3, "text": "Rome is old.", "label": [[0, 4, "city"]]},
    ]
    first, second = _write(tmp_path / "a.jsonl", records), _write(tmp_path / "b.jsonl", records)
    mixed = load_sources([str(first), str(second)])
    assert [ex.id for ex in mixed] == ["a:1", "a:2", "a:3", "b:1", "b:2", "b:3"]

    out = tmp_path / "train.jsonl"
    arguments = ["build", str(first), "--mode", "ra-it", "--k", "1", "--embedder", "hashing"]
    assert main([*arguments, "-o", str(out), "--quiet"]) == 0
    conversations = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert len(conversations) == 3
    answers = {m["content"] for c in conversations for m in c if m["role"] == "assistant"}
    assert '["Alice"]' in answers and '["Paris"]' in answers and '["Rome"]' in answers

    assert main(["data", "stats", str(_write(tmp_path / "c.jsonl", [records[0]]))]) == 0
    assert "1 examples, 2 entities" in capsys.readouterr().out


@pytest.mark.parametrize("shape", ["doccano", "prodigy"])
def test_export_for_an_annotation_tool_reads_back_with_the_same_mentions(tmp_path, shape):
    source = _write(
        tmp_path / "gold.jsonl",
        [
            {
                "id": "n1",
                "text": "Alice met Bob in Paris.",
                "entities": [
                    {"start": 0, "end": 5, "label": "person"},
                    {"start": 17, "end": 22, "label": "city"},
                ],
                "label_set": ["person", "city", "date"],
            },
            {
                "id": "n2",
                "text": "北京很大。",
                "lang": "zh",
                "entities": [
                    {"start": 0, "end": 2, "label": "地名"},
                ],
            },
        ],
    )
    out = tmp_path / f"for-{shape}.jsonl"
    assert main(["data", "export", str(source), "-o", str(out), "--shape", shape]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["meta"]["id"] for r in records] == ["n1", "n2"]
    if shape == "doccano":
        assert records[0]["label"] == [[0, 5, "person"], [17, 22, "city"]]
    else:
        assert records[0]["spans"][1] == {"start": 17, "end": 22, "label": "city"}
    original, exported = read_user_file(source), read_user_file(out)
    assert [(ex.text, ex.entities) for ex in exported] == [
        (ex.text, ex.entities) for ex in original
    ]
    assert [ex.label_set for ex in exported] == [(), ()]  # the tools' shapes have no label set


def test_export_in_raitner_shape_keeps_everything(tmp_path):
    examples = [
        Example("a", "Paris is big", "en", [Entity(0, 5, "Paris", "city")], ("city", "person")),
    ]
    source = tmp_path / "in.jsonl"
    write_examples(source, examples)
    out = tmp_path / "out.jsonl"
    assert main(["data", "export", str(source), "-o", str(out)]) == 0
    assert list(read_examples(out)) == examples


def test_a_byte_order_mark_opening_the_file_is_skipped(tmp_path):
    path = tmp_path / "windows.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"text": "Rome", "label": [[0, 4, "city"]]}).encode()
    )
    (example,) = read_user_file(path)
    assert (example.text, example.entities) == ("Rome", [Entity(0, 4, "Rome", "city")])
