from __future__ import annotations

import json
import subprocess
import sys

import pytest

from raitner.cli import main
from raitner.io.user_files import read_user_file


def _records(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_data_list_names_every_benchmark(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {row["name"] for row in rows}
    for name in [
        "crossner_ai",
        "mit_movie",
        "mit_restaurant",
        "conll2003",
        "wnut17",
        "boson",
        "msra",
        "weibo",
        "cluener",
        "cmeee",
        "yidu",
    ]:
        assert name in names
    assert next(r for r in rows if r["name"] == "crossner_ai")["splits"] == {
        "train": 100,
        "dev": 350,
        "test": 431,
    }


def test_data_stats_reads_a_benchmark(capsys, data_root):
    assert (
        main(
            [
                "data",
                "stats",
                "crossner_ai",
                "--split",
                "train",
                "--json",
                "--data-root",
                str(data_root),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["examples"] == 100 == report["splits"]["train"]["expected"]
    assert report["splits"]["train"]["entities"] > 0


def test_unknown_benchmark_lists_known_ones(capsys, data_root):
    assert main(["data", "stats", "crossner_a", "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'crossner_a'" in err and "crossner_ai" in err


def test_missing_data_root_says_where_it_looked(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("RAITNER_DATA", raising=False)
    assert main(["data", "stats", "crossner_ai"]) == 2
    assert "RAITNER_DATA" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert main(["data", "stats", "crossner_ai", "--data-root", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert main(["data", "stats", "crossner_ai", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "en/crossner/ai/train.txt" in err and str(tmp_path) in err


def test_build_vanilla_from_packaged_sample(tmp_path, capsys):
    output = tmp_path / "vanilla.jsonl"
    assert (
        main(["build", "sample:pile_ner_150", "--mode", "vanilla", "-o", str(output), "--quiet"])
        == 0
    )
    records = _records(output)
    assert len(records) == 150
    for record in records:
        assert record["example_ids"] == [] and record["strategy"] is None
        roles = [m["role"] for m in record["messages"]]
        assert roles[:3] == ["system", "user", "assistant"]
        assert roles[3:] == ["user", "assistant"] * ((len(roles) - 3) // 2)
    stats = json.loads((tmp_path / "vanilla.stats.json").read_text())
    assert stats["mode"] == "vanilla" and stats["statistics"]["samples"] == 150
    assert stats["settings"]["template"] == "ra-it-en-v1"
    # deterministic under a seed
    again = tmp_path / "again.jsonl"
    assert (
        main(["build", "sample:pile_ner_150", "--mode", "vanilla", "-o", str(again), "--quiet"])
        == 0
    )
    assert again.read_bytes() == output.read_bytes()


def test_build_bad_input_file_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "ab", "lang": "en"}\n{"id": 2\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    assert main(["build", str(bad), "--mode", "vanilla", "-o", str(output), "--quiet"]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    assert not output.exists()


def test_data_export_round_trips_a_split(tmp_path, capsys, data_root):
    from raitner.sources import load_source

    output = tmp_path / "ai-train.jsonl"
    args = ["data", "export", "crossner_ai:train", "-o", str(output)]
    assert main([*args, "--data-root", str(data_root)]) == 0
    assert f"wrote 100 examples to {output}" in capsys.readouterr().out
    records = _records(output)
    assert len(records) == 100 and len({r["id"] for r in records}) == 100
    for record in records:
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["text"]
    # the exported file reads back as the same examples, so it can stand in for the benchmark
    exported = [e.to_dict() for e in load_source(str(output), data_root)]
    original = [e.to_dict() for e in load_source("crossner_ai:train", data_root)]
    assert exported == original


def test_data_export_of_an_unknown_split_writes_nothing(tmp_path, capsys, data_root):
    output = tmp_path / "x.jsonl"
    args = ["data", "export", "crossner_ai:nosplit", "-o", str(output)]
    assert main([*args, "--data-root", str(data_root)]) == 2
    assert "unknown split of crossner_ai 'nosplit'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_data_stats_text_report_counts_types(capsys, data_root):
    assert (
        main(["data", "stats", "crossner_ai", "--split", "train", "--data-root", str(data_root)])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("crossner_ai (en): ")
    assert out[1].startswith("types (") and "researcher" in out[1]
    assert out[2].startswith("  train: 100 examples (expected 100), ")
    counts = [int(line.split()[0]) for line in out[3:]]
    # one line per type seen, most frequent first, summing to the entity count of the split
    assert counts == sorted(counts, reverse=True) and counts
    entities = int(out[2].split(", ")[1].split()[0])
    assert sum(counts) == entities


def test_build_ra_it_retrieves_from_the_pool_it_is_given(tmp_path, capsys, data_root):
    common = ["--mode", "ra-it", "--embedder", "hashing", "--k", "2", "--quiet"]
    common += ["--cache-dir", str(tmp_path / "cache"), "--data-root", str(data_root)]
    own = tmp_path / "own.jsonl"
    assert main(["build", "sample:pile_ner_150", "-o", str(own), *common]) == 0
    records = _records(own)
    assert len(records) == 150
    for record in records:
        # two neighbours from the inputs themselves, never the sample itself
        assert len(record["example_ids"]) == 2 and record["id"] not in record["example_ids"]
        assert record["strategy"] == "nn"
        examples_turn = record["messages"][1]["content"]
        assert examples_turn.startswith("Here are some examples")
        assert examples_turn.count("\nEntity: ") == 2
    pooled = tmp_path / "pooled.jsonl"
    assert (
        main(
            [
                "build",
                "sample:pile_ner_150",
                "-o",
                str(pooled),
                "--pool",
                "crossner_ai:train",
                *common,
            ]
        )
        == 0
    )
    for record in _records(pooled):
        assert len(record["example_ids"]) == 2
        assert all(i.startswith("crossner_ai.train:") for i in record["example_ids"])
    settings = json.loads((tmp_path / "pooled.stats.json").read_text())
    assert "pool=crossner_ai:train" in settings["sources"]


def test_help_starts_without_heavy_imports():
    code = (
        "import sys, raitner.cli\n"
        "try:\n    raitner.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'sentence_transformers', 'transformers', 'trl', 'peft', 'jieba',\n"
        "         'fastapi', 'uvicorn', 'openai', 'ray')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_build_source_subsets_and_sampled_negatives(tmp_path, capsys, data_root):
    output = tmp_path / "mix.jsonl"
    args = ["build", "conll2003:train@40", "wnut17:train@30", "--mode", "vanilla"]
    args += ["--sampled-negatives", "-o", str(output), "--quiet", "--data-root", str(data_root)]
    assert main(args) == 0
    stats = json.loads((tmp_path / "mix.stats.json").read_text())["statistics"]
    records = _records(output)
    # 70 texts drawn; the ones without entities have no question and are left out
    assert (
        stats["samples"] + stats["skipped_no_questions"]
        == 70
        == len(records) + (stats["skipped_no_questions"])
    )
    assert stats["skipped_no_questions"] > 0
    ids = [r["id"] for r in records]
    assert sum(i.startswith("conll2003") for i in ids) <= 40
    assert sum(i.startswith("wnut17") for i in ids) <= 30
    for record in records:
        questions = [m["content"] for m in record["messages"] if m["content"].startswith("What")]
        answers = [m["content"] for m in record["messages"][4::2]]
        # every text has at least one positive type; negatives are sampled, not the label set
        assert questions and any(json.loads(a) for a in answers)
    # the same seed draws the same subsets
    again = tmp_path / "again.jsonl"
    assert (
        main(
            [
                *args[:-5],
                "--sampled-negatives",
                "-o",
                str(again),
                "--quiet",
                "--data-root",
                str(data_root),
            ]
        )
        == 0
    )
    assert again.read_bytes() == output.read_bytes()


def test_source_subset_larger_than_source_is_refused(tmp_path, capsys, data_root):
    args = ["build", "crossner_ai:train@101", "--mode", "vanilla", "-o", str(tmp_path / "x.jsonl")]
    assert main([*args, "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err
    assert "crossner_ai:train@101" in err and "has 100" in err


@pytest.mark.parametrize("args", [["--k", "0"], ["--sample", "0"], ["--pool-k", "-1"]])
def test_build_rejects_bad_numbers(tmp_path, capsys, args):
    with pytest.raises(SystemExit) as stop:
        main(["build", "sample:pile_ner_150", "-o", str(tmp_path / "x.jsonl"), *args])
    assert stop.value.code == 2
    assert f"argument {args[0]}: must be at least" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(
    ("option", "value", "minimum"),
    [
        ("--limit", "0", 1),  # once read as "a report over no text"
        ("--limit", "-3", 1),  # once numpy's "negative dimensions are not allowed"
        ("--batch-size", "0", 1),
        ("--max-new-tokens", "0", 1),  # once an evaluation of empty answers
        ("--k", "0", 1),
        ("--pool-size", "0", 1),
        ("--max-text-tokens", "-1", 0),
        ("--limit", "ten", None),
    ],
)
def test_eval_rejects_bad_numbers_before_loading_a_model(tmp_path, capsys, option, value, minimum):
    with pytest.raises(SystemExit) as stop:
        main(["eval", "--benchmarks", "crossner_ai", "-o", str(tmp_path / "e"), option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    if minimum is None:
        assert f"argument {option}: invalid int value: '{value}'" in err
    else:
        assert f"argument {option}: must be at least {minimum}, got {value}" in err
    assert not (tmp_path / "e").exists()


def test_predict_writes_one_record_per_line(tmp_path, tiny_model_dir, capsys):
    source = tmp_path / "texts.jsonl"
    lines = [
        {"id": "a", "text": "Barack Obama visited Paris .", "labels": ["person", "location"]},
        {"text": "张三在北京工作。"},
    ]
    source.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    output = tmp_path / "predictions.jsonl"
    args = [
        "predict",
        str(source),
        "-o",
        str(output),
        "--labels",
        "person",
        "--model",
        str(tiny_model_dir),
    ]
    assert main([*args, "--max-new-tokens", "8", "--device", "cpu"]) == 0
    records = _records(output)
    assert [r["id"] for r in records] == ["a", "1"]
    assert set(records[0]["answers"]) == {"person", "location"}
    assert set(records[1]["answers"]) == {"person"}
    for record, line in zip(records, lines, strict=True):
        for entity in record["entities"]:
            assert line["text"][entity["start"] : entity["end"]] == entity["text"]
    # the predictions read back as an annotated file (to correct, train on or evaluate)
    examples = read_user_file(output)
    assert [(ex.id, ex.text) for ex in examples] == [
        ("a", lines[0]["text"]),
        ("1", lines[1]["text"]),
    ]
    assert [ex.label_set for ex in examples] == [("person", "location"), ("person",)]
    for example, record in zip(examples, records, strict=True):
        assert [e.to_dict() for e in example.entities] == record["entities"]


def test_predict_writes_csv_rows_that_match_its_jsonl_and_read_back_as_input(
    tmp_path, tiny_model_dir, capsys
):
    from raitner.cli import _read_predict_input
    from raitner.io.csv_rows import iter_csv_rows

    source = tmp_path / "texts.csv"
    source.write_text(
        'id,text,labels\nq1,"Obama, in Paris, said ""hi""\non Monday","person, location"\n'
        ",张三在北京工作。,person\n"
    )
    common = ["--model", str(tiny_model_dir), "--max-new-tokens", "8", "--device", "cpu"]
    as_lines, as_csv = tmp_path / "p.jsonl", tmp_path / "p.csv.gz"
    assert main(["predict", str(source), "-o", str(as_lines), *common]) == 0
    assert main(["predict", str(source), "-o", str(as_csv), *common]) == 0
    records = _records(as_lines)
    rows = [row for _, row in iter_csv_rows(as_csv)]
    assert list(rows[0]) == ["id", "text", "labels", "mentions", "entities"]
    assert [r["id"] for r in rows] == [r["id"] for r in records] == ["q1", "1"]
    assert rows[0]["text"] == 'Obama, in Paris, said "hi"\non Monday'
    for row, record in zip(rows, records, strict=True):
        assert row["text"] == record["text"]
        assert json.loads(row["entities"]) == record["entities"]
        assert row["labels"] == ", ".join(record["label_set"])
    # the CSV is predict's input again: the same ids, texts and types
    again = _read_predict_input(as_csv, [])
    assert [(r["id"], r["text"], r["labels"]) for r in again] == [
        (r["id"], r["text"], r["label_set"]) for r in records
    ]


def test_prediction_csv_lists_mentions_for_a_spreadsheet(tmp_path):
    from raitner.io.csv_rows import iter_csv_rows, write_prediction_csv

    entities = [
        {"start": 0, "end": 5, "text": "Obama", "label": "person"},
        {"start": 10, "end": 15, "text": "Paris", "label": "location"},
    ]
    path = tmp_path / "out.csv"
    record = {"id": "a", "text": "Obama in  Paris", "entities": entities}
    empty = {"id": "b", "text": "nothing", "entities": []}
    count = write_prediction_csv(
        path, [{**record, "label_set": ["person", "location"]}, {**empty, "label_set": ["person"]}]
    )
    assert count == 2
    (_, first), (_, second) = iter_csv_rows(path)
    assert first["mentions"] == "person: Obama; location: Paris"
    assert (second["mentions"], second["entities"], second["labels"]) == ("", "[]", "person")


def test_predict_reads_plain_text_one_text_a_line(tmp_path, tiny_model_dir, capsys):
    source = tmp_path / "notes.txt"
    source.write_text("Barack Obama visited Paris .\n\n张三在北京工作。\n")
    output = tmp_path / "predictions.jsonl"
    args = ["predict", str(source), "-o", str(output), "--model", str(tiny_model_dir)]
    assert main([*args, "--max-new-tokens", "4", "--device", "cpu"]) == 2
    assert "notes.txt is plain text, one text a line: give its types with --labels" in (
        capsys.readouterr().err
    )
    assert main([*args, "--labels", "person", "--max-new-tokens", "4", "--device", "cpu"]) == 0
    records = _records(output)
    assert [r["id"] for r in records] == ["notes:1", "notes:3"]  # blank lines skipped
    assert all(set(r["answers"]) == {"person"} for r in records)


def test_interrupted_predict_resumes_from_its_journal(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    from raitner.infer.journal import AnswerJournal

    source = tmp_path / "texts.jsonl"
    texts = [f"Text number {i} mentions Paris and Obama ." for i in range(5)]
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    common = ["--labels", "person,location", "--model", str(tiny_model_dir)]
    common += ["--max-new-tokens", "6", "--device", "cpu", "--batch-size", "3"]
    whole = tmp_path / "whole.jsonl"
    assert main(["predict", str(source), "-o", str(whole), *common]) == 0

    saved = AnswerJournal.append
    blocks = []

    def append_then_die(self, answers):
        saved(self, answers)
        blocks.append(len(answers))
        if len(blocks) == 2:
            raise KeyboardInterrupt  # killed right after the second block was saved

    output = tmp_path / "out.jsonl"
    monkeypatch.setattr(AnswerJournal, "append", append_then_die)
    assert main(["predict", str(source), "-o", str(output), *common]) == 130
    assert "answers so far are journalled in <output>.journal: the same command resumes" in (
        capsys.readouterr().err
    )
    assert not output.exists()
    journal = tmp_path / "out.jsonl.journal"
    assert journal.is_file()

    monkeypatch.setattr(AnswerJournal, "append", saved)
    capsys.readouterr()
    assert main(["predict", str(source), "-o", str(output), *common]) == 0
    assert "(6 answers reused from" in capsys.readouterr().out
    assert output.read_text() == whole.read_text()  # the same answers as an uninterrupted run
    assert not journal.exists()


def test_predict_bad_line_names_file_and_line(tmp_path, tiny_model_dir, capsys):
    source = tmp_path / "texts.jsonl"
    source.write_text('{"text": "ok"}\n{"id": 3}\n')
    output = tmp_path / "out.jsonl"
    assert (
        main(
            [
                "predict",
                str(source),
                "-o",
                str(output),
                "--labels",
                "x",
                "--model",
                str(tiny_model_dir),
            ]
        )
        == 2
    )
    assert f"{source}:2: expected a string field 'text'" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "ok", "labels": [[0, 2, "LOC"]]}, "'labels' must be a list of type names"),
        ({"text": "ok", "label_set": ["person", 3]}, "'label_set' must be a list of type names"),
        ({"text": "ok", "labels": {"person": 1}}, "'labels' must be a list of type names"),
    ],
)
def test_predict_checks_the_types_of_each_line_before_loading_a_model(
    tmp_path, capsys, line, message
):
    source = tmp_path / "texts.jsonl"
    source.write_text(json.dumps({"text": "fine", "labels": ["person"]}) + "\n" + json.dumps(line))
    output = tmp_path / "out.jsonl"
    args = ["predict", str(source), "-o", str(output), "--model", str(tmp_path / "none")]
    assert main(args) == 2
    assert f"{source}:2: {message}" in capsys.readouterr().err
    assert not output.exists()


@pytest.mark.parametrize(("name", "content"), [("empty.jsonl", ""), ("blank.txt", "\n  \n")])
def test_predict_refuses_a_file_without_texts_before_loading_a_model(
    tmp_path, capsys, name, content
):
    source = tmp_path / name
    source.write_text(content)
    output = tmp_path / "out.jsonl"
    args = ["predict", str(source), "-o", str(output), "--labels", "person"]
    assert main([*args, "--model", str(tmp_path / "none")]) == 2
    assert f"no text in {source}: nothing to predict" in capsys.readouterr().err
    assert not output.exists()


def test_predict_takes_a_lines_types_as_a_list_or_a_comma_separated_string(tmp_path):
    from raitner.cli import _read_predict_input

    source = tmp_path / "texts.jsonl"
    lines = [
        {"id": "a", "text": "x", "labels": "person, location"},
        {"text": "y", "label_set": ["city"]},
        {"text": "z"},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = _read_predict_input(source, ["organization"])
    assert [(r["id"], r["labels"]) for r in rows] == [
        ("a", ["person", "location"]),
        ("1", ["city"]),
        ("2", ["organization"]),
    ]


def test_predict_reads_a_json_array_of_records_or_of_label_studio_tasks(tmp_path, capsys):
    from raitner.cli import _read_predict_input

    records = tmp_path / "texts.json"
    records.write_text(json.dumps([{"id": "a", "text": "x", "labels": ["city"]}, {"text": "y"}]))
    rows = _read_predict_input(records, ["person"])
    assert [(r["id"], r["text"], r["labels"]) for r in rows] == [
        ("a", "x", ["city"]),
        ("1", "y", ["person"]),
    ]

    source = tmp_path / "mine.conll"
    source.write_text("Alice\tB-person\nmet\tO\nBob\tB-person\n\nRome\tB-city\n")
    tasks = tmp_path / "tasks.json"
    assert main(["data", "export", str(source), "-o", str(tasks), "--shape", "label-studio"]) == 0
    imported = json.loads(tasks.read_text()) + [{"id": 9, "data": {"text": "Oslo"}}]
    tasks.write_text(json.dumps(imported))
    rows = _read_predict_input(tasks, ["person", "city"])
    assert [(r["id"], r["text"]) for r in rows] == [
        ("mine:0", "Alice met Bob"),
        ("mine:1", "Rome"),
        ("9", "Oslo"),
    ]

    broken = tmp_path / "broken.json"
    broken.write_text('[{"text": "ok"},\n {"data": {"title": "which", "body": "is the text?"}}]')
    args = ["predict", str(broken), "-o", str(tmp_path / "o.jsonl"), "--labels", "x"]
    assert main([*args, "--model", str(tmp_path / "none")]) == 2
    assert (
        f"{broken}:2: expected data.text in this Label Studio task (or one string field of data); "
        "its fields: 'title', 'body' (name the one holding the text with --text-field)"
    ) in capsys.readouterr().err
    # --text-field names the task's field that holds the text
    titled = tmp_path / "titled.json"
    titled.write_text('[{"id": 4, "data": {"title": "which", "body": "is the text?"}}]')
    assert _read_predict_input(titled, ["x"], "body") == [
        {"id": "4", "text": "is the text?", "labels": ["x"]}
    ]


def test_extract_prints_entities_as_json_lines(tiny_model_dir, capsys):
    text = "Barack Obama visited Paris ."
    args = ["extract", text, "--labels", "person,location", "--model", str(tiny_model_dir)]
    assert main([*args, "--max-new-tokens", "8", "--show-answers"]) == 0
    captured = capsys.readouterr()
    for line in captured.out.splitlines():
        entity = json.loads(line)
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert "the model's answers:" in captured.err
    assert "  person: " in captured.err and "  location: " in captured.err


def test_extract_reads_the_text_from_standard_input_with_dash(
    lively_model_dir, capsys, monkeypatch
):
    import io

    def answers(captured) -> tuple[str, str]:
        return captured.out, captured.err.split("the model's answers:")[1]

    text = "Barack Obama visited Paris ."
    options = ["--labels", "person,location", "--max-new-tokens", "8", "--show-answers"]
    options += ["--model", str(lively_model_dir)]
    assert main(["extract", text, *options]) == 0
    from_argument = answers(capsys.readouterr())
    assert from_argument[1].strip()  # the model said something for the input to change
    monkeypatch.setattr("sys.stdin", io.StringIO(text + "\n"))  # as `echo text |` gives it
    assert main(["extract", "-", *options]) == 0
    assert answers(capsys.readouterr()) == from_argument

    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["extract", "-", "--labels", "person", "--model", "/nonexistent"]) == 2
    assert "no text to extract entities from: standard input is empty" in capsys.readouterr().err


def test_a_model_that_cannot_be_loaded_is_an_error_not_a_traceback(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    assert main(["extract", "Alice", "--labels", "person", "--model", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raitner: error:") and "Traceback" not in err
    assert str(missing) in err and "no such folder" in err

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    settings = {"format": "raitner-model-v1", "base_model": str(missing), "template": "ra-it-en-v1"}
    (adapter / "raitner.json").write_text(json.dumps(settings), encoding="utf-8")
    assert main(["extract", "Alice", "--labels", "person", "--model", str(adapter)]) == 2
    err = capsys.readouterr().err
    assert "LoRA adapter on the base model" in err and "no such folder" in err

    (adapter / "raitner.json").write_text('{"format": ', encoding="utf-8")
    assert main(["extract", "Alice", "--labels", "person", "--model", str(adapter)]) == 2
    assert f"{adapter / 'raitner.json'}:1: not valid JSON" in capsys.readouterr().err


def test_eval_rejects_unknown_benchmark_before_loading_a_model(capsys):
    assert main(["eval", "--benchmarks", "crossner_ai,nope", "--model", "/nonexistent"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_eval_checks_its_data_before_loading_a_model(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAITNER_DATA", raising=False)
    arguments = ["eval", "--benchmarks", "crossner_ai", "--model", "/nonexistent"]
    assert main(arguments) == 2
    assert "no data root given" in capsys.readouterr().err
    assert main([*arguments, "--data-root", str(tmp_path / "missing")]) == 2
    assert "missing (from --data-root) is not a folder" in capsys.readouterr().err

    test_split = tmp_path / "en" / "crossner" / "ai" / "test.txt"
    test_split.parent.mkdir(parents=True)
    test_split.write_text("Alice\tB-person\n")
    arguments += ["--data-root", str(tmp_path)]
    assert main([*arguments, "--examples", "pool"]) == 2  # the pool's split is missing
    assert "crossner_ai/train: file en/crossner/ai/train.txt not found" in capsys.readouterr().err
    # the model is the first thing missing once the data is all there
    assert main(arguments) == 2
    assert "model '/nonexistent': no such folder" in capsys.readouterr().err


def test_sigterm_stops_a_command_like_ctrl_c(capsys, monkeypatch):
    import os
    import signal
    import time

    def killed_while_running(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler interrupts this
        raise AssertionError("SIGTERM did not stop the command")

    monkeypatch.setattr("raitner.cli._data_list", killed_while_running)
    before = signal.getsignal(signal.SIGTERM)
    started = time.perf_counter()
    assert main(["data", "list"]) == 143
    assert time.perf_counter() - started < 5
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """`raitner … | head`: the pipe closes while the command still prints."""
    import subprocess
    import sys

    code = (
        "import sys, raitner.cli as cli\n"
        "def chatty(args):\n"
        "    for _ in range(100000):\n"
        "        print('x' * 100, flush=True)\n"
        "    return 0\n"
        "cli._data_list = chatty\n"
        "sys.exit(cli.main(['data', 'list']))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout.read(100) == b"x" * 100
    child.stdout.close()  # the reader goes away, as `head` does
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
