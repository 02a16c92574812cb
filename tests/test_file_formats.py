"""Gzip-compressed inputs and outputs (``train.jsonl.gz`` reads as ``train.jsonl`` does, a
``.gz`` output is written compressed, a broken ``.gz`` is named with its line), and CSV files
of texts for ``predict`` and ``distill``."""

from __future__ import annotations

import gzip
import json

import pytest

from raitner.atomic import atomic_write
from raitner.cli import _read_predict_input, main
from raitner.distill.pipeline import read_documents
from raitner.errors import DataFormatError
from raitner.io import registry
from raitner.io.files import file_stem, format_suffix, read_text
from raitner.io.label_studio import write_label_studio_tasks
from raitner.io.span_jsonl import write_span_jsonl
from raitner.io.uniner import write_uniner_conversations
from raitner.io.user_files import read_user_file
from raitner.schema import Entity, Example

EXAMPLES = [
    Example("a", "Alice flew to Rome.", "en", [Entity(0, 5, "Alice", "person")]),
    Example("b", "Bob stayed in Oslo.", "en", [Entity(14, 18, "Oslo", "city")]),
]


@pytest.fixture(autouse=True)
def _no_added_files(monkeypatch):
    monkeypatch.setattr(registry, "_FILES", {})


def _gzip(path):
    """``path`` compressed beside itself as ``<name>.gz`` under another folder, so that both
    have the same stem."""
    target = path.parent / "gz" / (path.name + ".gz")
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


def test_suffix_and_stem_look_past_gz():
    assert format_suffix("a/train.JSONL.gz") == ".jsonl"
    assert format_suffix("train.jsonl") == ".jsonl"
    assert format_suffix("archive.gz") == ""
    assert file_stem("a/train.jsonl.GZ") == "train"
    assert file_stem("train.conll") == "train"


def _write_every_format(folder):
    paths = []
    for shape in ("raitner", "doccano", "prodigy"):
        paths.append(folder / f"{shape}.jsonl")
        write_span_jsonl(paths[-1], EXAMPLES, shape)
    paths.append(folder / "conversations.json")
    write_uniner_conversations(paths[-1], EXAMPLES)
    paths.append(folder / "tasks.json")
    write_label_studio_tasks(paths[-1], EXAMPLES)
    tasks = json.loads(paths[-1].read_text())
    for task in tasks:  # reviewed: the predictions became the annotations
        task["annotations"] = task.pop("predictions")
    paths[-1].write_text(json.dumps(tasks))
    paths.append(folder / "columns.conll")
    paths[-1].write_text("Alice B-person\nflew O\nto O\nRome. O\n\nBob O\nin O\nOslo B-city\n")
    return paths


def test_every_annotated_format_reads_the_same_gzipped(tmp_path):
    for path in _write_every_format(tmp_path):
        plain = read_user_file(path)
        assert plain, path
        assert read_user_file(_gzip(path)) == plain, path


def test_an_exported_gz_is_compressed_and_reads_back(tmp_path, capsys):
    source = tmp_path / "news.jsonl"
    write_span_jsonl(source, EXAMPLES, "raitner")
    out = tmp_path / "out" / "copy.jsonl.gz"
    assert main(["data", "export", str(source), "-o", str(out), "--shape", "doccano"]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(out.read_bytes()).splitlines()[0])["label"] == [
        [0, 5, "person"]
    ]
    assert [(e.text, e.entities) for e in read_user_file(out)] == [
        (e.text, e.entities) for e in EXAMPLES
    ]
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["file"]["examples"] == 2


def test_an_interrupted_gz_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.jsonl.gz"
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as handle:
        handle.write("{}\n")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_write(target) as handle:
        handle.write("ö\n")
    assert read_text(target) == "ö\n"


def test_corpora_and_predict_inputs_read_gzipped(tmp_path):
    plain = tmp_path / "corpus.txt"
    plain.write_text("First doc.\n\nSecond doc.\n")
    lines = tmp_path / "corpus.jsonl"
    lines.write_text(json.dumps({"id": "x", "text": "One."}) + "\n" + json.dumps({"text": "Two."}))
    for path in (plain, lines):
        assert list(read_documents(_gzip(path))) == list(read_documents(path))
    assert list(read_documents(_gzip(plain)))[0] == ("corpus:1", "First doc.")

    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"text": "Alice", "labels": ["person"]}) + "\n")
    assert _read_predict_input(_gzip(texts), []) == _read_predict_input(texts, [])
    array = tmp_path / "texts.json"
    array.write_text(json.dumps([{"id": "t", "text": "Bob"}]))
    assert _read_predict_input(_gzip(array), ["person"])[0]["text"] == "Bob"


def test_an_annotated_gz_is_a_benchmark_named_without_its_suffixes(tmp_path):
    path = tmp_path / "news.conll"
    path.write_text("Alice B-person\nflew O\n")
    spec = registry.add_file_benchmark(_gzip(path), "test", {})
    assert spec.name == "news"
    assert [ex.text for ex in spec.load("test", None)] == ["Alice flew"]


def test_a_broken_gz_is_named_with_the_line_reached(tmp_path, capsys):
    path = tmp_path / "big.jsonl"
    write_span_jsonl(path, EXAMPLES * 2000, "raitner")
    whole = gzip.compress(path.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    with pytest.raises(DataFormatError) as caught:
        read_user_file(cut)
    assert caught.value.path == str(cut) and caught.value.line and caught.value.line > 1
    assert "cut off or corrupt" in str(caught.value)

    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text('{"text": "not compressed"}\n')
    assert main(["data", "stats", str(fake)]) == 2
    assert f"{fake}: named .gz but not gzip-compressed data" in capsys.readouterr().err


def test_a_csv_of_texts_is_read_by_predict_and_distill(tmp_path, capsys):
    comma = tmp_path / "texts.csv"
    comma.write_text(
        'id,text,labels\r\nq1,"Alice, from Rome, said:\r\n""hello""",person\r\n\r\n'
        ',Bob,"person, city"\r\n'
    )
    rows = _read_predict_input(comma, ["city"])
    assert rows == [
        {"id": "q1", "text": 'Alice, from Rome, said:\r\n"hello"', "labels": ["person"]},
        {"id": "1", "text": "Bob", "labels": ["person", "city"]},
    ]
    semicolon = tmp_path / "excel.csv"  # Excel's export where the decimal mark is a comma
    semicolon.write_text("text;labels\nAlice, from Rome;person,city\n")
    assert _read_predict_input(_gzip(semicolon), [])[0] == {
        "id": "0",
        "text": "Alice, from Rome",
        "labels": ["person", "city"],
    }
    assert list(read_documents(comma)) == [
        ("q1", 'Alice, from Rome, said:\r\n"hello"'),
        ("texts:5", "Bob"),  # the line its row starts on
    ]
    body = tmp_path / "body.csv"
    body.write_text("title,body\nA,First text.\n")
    assert list(read_documents(body, "body")) == [("body:2", "First text.")]

    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,body\n1,x\n")
    args = ["predict", str(wrong), "-o", str(tmp_path / "o.jsonl"), "--labels", "x"]
    assert main([*args, "--model", str(tmp_path / "none")]) == 2
    assert (
        f"{wrong}:2: expected a column 'text'; its columns: 'id', 'body' (name the one holding "
        "the text with --text-field)"
    ) in capsys.readouterr().err
    # which predict reads with --text-field, as distill does
    assert main([*args, "--model", str(tmp_path / "none"), "--text-field", "body"]) == 2
    assert "no such folder" in capsys.readouterr().err  # past the input, to the missing model
    assert _read_predict_input(wrong, ["x"], "body") == [{"id": "1", "text": "x", "labels": ["x"]}]
    unquoted = tmp_path / "unquoted.csv"
    unquoted.write_text("text\nfine\nAlice, from Rome\n")
    with pytest.raises(DataFormatError, match=r"unquoted.csv:3: expected at most 1 fields"):
        list(read_documents(unquoted))
