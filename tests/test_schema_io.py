from __future__ import annotations

import json

import pytest

from raitner.atomic import atomic_directory, atomic_write
from raitner.errors import DataFormatError, SchemaError
from raitner.io.jsonl import read_examples, write_examples
from raitner.io.mentions import locate_mentions
from raitner.io.stats import ReadStats
from raitner.io.tags import decode_tags, split_tag, token_offsets
from raitner.schema import Entity, Example


def test_entity_offsets_are_checked_against_the_text():
    Example("a", "Paris is big", "en", [Entity(0, 5, "Paris", "city")])
    with pytest.raises(SchemaError, match="does not match"):
        Example("a", "Paris is big", "en", [Entity(1, 6, "Paris", "city")])
    with pytest.raises(SchemaError, match="length"):
        Entity(0, 4, "Paris", "city")
    with pytest.raises(SchemaError):
        Entity(3, 3, "", "city")
    with pytest.raises(SchemaError, match="lang"):
        Example("a", "x", "fr")


def test_jsonl_round_trip(tmp_path):
    examples = [
        Example("1", "Paris is big", "en", [Entity(0, 5, "Paris", "city")], ("city", "person")),
        Example("2", "北京很大", "zh", [Entity(0, 2, "北京", "地名")], meta={"source": "x"}),
    ]
    path = tmp_path / "out.jsonl"
    assert write_examples(path, examples) == 2
    assert list(read_examples(path)) == examples


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "1", "text": "ab", "lang": "en", "entities": []})
    path.write_text(good + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        list(read_examples(path))
    assert err.value.line == 3 and str(path) in str(err.value)
    wrong_span = {
        "id": "1",
        "text": "ab",
        "lang": "en",
        "entities": [{"start": 0, "end": 1, "text": "b", "label": "x"}],
    }
    path.write_text(json.dumps(wrong_span) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad.jsonl:1: invalid example"):
        list(read_examples(path))
    path.write_text(json.dumps({"text": "ab"}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="missing id, lang"):
        list(read_examples(path))


def test_bio_decoding_and_repair_rule():
    stats = ReadStats()
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-ORG", "I-PER", "O"]
    assert decode_tags(tags, stats) == [(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "ORG"), (6, 7, "PER")]
    assert stats.repaired_tags == 2  # I-LOC after O, I-PER after ORG


def test_bmes_decoding():
    stats = ReadStats()
    tags = ["B-NT", "M-NT", "E-NT", "S-NR", "O", "E-NS", "B-NS", "E-NS"]
    assert decode_tags(tags, stats) == [(0, 3, "NT"), (3, 4, "NR"), (5, 6, "NS"), (6, 8, "NS")]
    assert stats.repaired_tags == 1


def test_split_tag_rejects_garbage():
    assert split_tag("B-programming_language") == ("B", "programming_language")
    with pytest.raises(ValueError, match="expected a tag"):
        split_tag("PER")


def test_token_offsets():
    assert token_offsets(["New", "York", "."], " ") == [(0, 3), (4, 8), (9, 10)]
    assert token_offsets(["北", "京"], "") == [(0, 1), (1, 2)]


def test_locate_mentions_prefers_longer_mentions_and_keeps_list_order():
    text = "美国和美的美国人"
    entities, unfound = locate_mentions(text, [("美", "地点"), ("美国", "地点"), ("德国", "地点")])
    assert [(e.start, e.text) for e in entities] == [(3, "美"), (0, "美国"), (5, "美国")]
    assert unfound == [("德国", "地点")]


def test_locate_mentions_case_fallback_and_same_string_two_labels():
    entities, unfound = locate_mentions(
        "apple makes the iPhone", [("Apple", "company"), ("iPhone", "product"), ("iPhone", "brand")]
    )
    assert [(e.text, e.label) for e in entities] == [
        ("apple", "company"),
        ("iPhone", "product"),
        ("iPhone", "brand"),
    ]
    assert unfound == []


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "data.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]
    with atomic_write(target) as handle:
        handle.write("new\n")
    assert target.read_text() == "new\n"


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    import os
    import stat

    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_directory(target) as staging:
        assert staging.parent == tmp_path and not target.exists()
        (staging / "weights").write_text("v1")
        os.chmod(staging / "weights", 0o600)  # as safetensors and mkdtemp leave them
        (staging / "member").mkdir(mode=0o700)
        (staging / "member" / "weights").write_text("v1")
        os.chmod(staging / "member" / "weights", 0o600)
    assert (target / "weights").read_text() == "v1"
    umask = os.umask(0)
    os.umask(umask)
    for file in (target / "weights", target / "member" / "weights"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask
    for folder in (target, target / "member"):  # folders stay folders one can enter
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask
    with pytest.raises(FileExistsError), atomic_directory(target):
        pass
    with atomic_directory(target, replace=True) as staging:
        (staging / "other").write_text("v2")
    assert sorted(p.name for p in target.iterdir()) == ["other"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
