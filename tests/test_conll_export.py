"""BIO columns written from any annotated set (`raitner data export --shape conll`), for a token
classifier to train on: benchmarks come back exactly, raw text is cut at mention edges."""

from __future__ import annotations

import pytest

from raitner.cli import main
from raitner.io.conll import bio_tokens, write_conll
from raitner.io.user_files import read_user_file
from raitner.schema import Entity, Example
from raitner.sources import load_source


def test_raw_text_is_cut_at_whitespace_and_at_mention_edges():
    text = "Alice flew to New York City, via Rome."
    example = Example(
        "a",
        text,
        "en",
        [
            Entity(0, 5, "Alice", "person"),
            Entity(14, 27, "New York City", "city"),
            Entity(18, 22, "York", "city"),
            Entity(33, 37, "Rome", "city"),
        ],
    )
    tokens, tags, left_out = bio_tokens(example)
    assert tokens == ["Alice", "flew", "to", "New", "York", "City", ",", "via", "Rome", "."]
    assert tags == ["B-person", "O", "O", "B-city", "I-city", "I-city", "O", "O", "B-city", "O"]
    assert left_out == 1  # "York" inside the longer "New York City"


def test_chinese_gives_one_token_per_character():
    example = Example("z", "我在 北京", "zh", [Entity(3, 5, "北京", "地点")])
    assert bio_tokens(example)[:2] == (["我", "在", "北", "京"], ["O", "O", "B-地点", "I-地点"])


@pytest.mark.parametrize("source", ["wnut17:test", "crossner_music:test", "weibo:test"])
def test_benchmarks_come_back_exactly(tmp_path, data_root, source):
    examples = load_source(source, data_root)
    path = tmp_path / "out.conll"
    stats = write_conll(path, examples)
    assert (stats.sentences, stats.overlapping, stats.empty_texts) == (len(examples), 0, 0)
    again = read_user_file(path)
    assert [(ex.text, ex.lang) for ex in again] == [(ex.text, ex.lang) for ex in examples]
    assert [ex.entities for ex in again] == [ex.entities for ex in examples]


def test_the_command_checks_the_output_name_and_counts_what_bio_cannot_hold(tmp_path, capsys):
    source = tmp_path / "predictions.jsonl"
    source.write_text(
        '{"text": "New York City is big.", "entities": [{"start": 0, "end": 13, "label": "city"},'
        ' {"start": 4, "end": 8, "label": "city"}]}\n{"text": "   "}\n'
    )
    args = ["data", "export", str(source), "--shape", "conll"]
    assert main([*args, "-o", str(tmp_path / "out.jsonl")]) == 2
    assert "--shape conll writes token/tag columns" in capsys.readouterr().err
    out = tmp_path / "out.bio"
    assert main([*args, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 1 sentences" in printed
    assert (
        "overlapping a longer one: 1" in printed
        and "texts without a token, not written: 1" in printed
    )
    assert out.read_text().splitlines()[:3] == ["New\tB-city", "York\tI-city", "City\tI-city"]
