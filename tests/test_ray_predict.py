"""`raitner predict --ray-workers`: texts spread over Ray workers give the records of a
one-process run, in input order; the journal resumes an interrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raitner.infer.ray_predict import RecordJournal, predict_with_ray, settings_fingerprint

TEXTS = [
    "Barack Obama visited Paris in 2009 .",
    "Acme Corp hired Jane Doe in Berlin .",
    "Paris Paris and Rome",
    "Nothing to see here .",
    "Angela Merkel met NATO leaders .",
]


def test_journal_keeps_records_drops_a_cut_line_and_refuses_another_run(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal = RecordJournal(path, "fp-1")
    journal.add([0, 2], [{"entities": []}, {"entities": [1]}])
    with path.open("a") as handle:
        handle.write('{"index": 3, "rec')  # a crash in the middle of a line
    again = RecordJournal(path, "fp-1")
    assert again.records == {0: {"entities": []}, 2: {"entities": [1]}}
    assert path.read_text().endswith('"entities": [1]}}\n')
    again.add([3], [{"entities": [3]}])
    assert RecordJournal(path, "fp-1").records[3] == {"entities": [3]}
    assert RecordJournal(path, "fp-2").records == {}  # other texts or settings: started afresh
    assert RecordJournal(path, "fp-1").records == {}


def test_fingerprint_covers_texts_labels_model_and_options() -> None:
    rows = [{"text": "a", "labels": ["x"]}]
    base = settings_fingerprint(rows, "m", {"batch_size": 4}, None)
    assert base == settings_fingerprint(rows, "m", {"batch_size": 4}, None)
    assert base != settings_fingerprint(
        [{"text": "a", "labels": ["y"]}], "m", {"batch_size": 4}, None
    )
    assert base != settings_fingerprint(rows, "m2", {"batch_size": 4}, None)
    assert base != settings_fingerprint(rows, "m", {"batch_size": 8}, None)
    assert base != settings_fingerprint(rows, "m", {"batch_size": 4}, "pool")


def test_settings_are_checked_before_ray_starts() -> None:
    with pytest.raises(ValueError, match="workers"):
        predict_with_ray([], model=None, options={}, workers=0)
    with pytest.raises(ValueError, match="block_texts"):
        predict_with_ray([], model=None, options={}, block_texts=0)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        logging_level="error",
    )
    yield ray
    ray.shutdown()


def test_cli_predict_with_ray_matches_one_process_and_resumes(
    local_ray, lively_model_dir: Path, tmp_path: Path
) -> None:
    from raitner.cli import main

    source = tmp_path / "texts.jsonl"
    lines = [{"id": f"t{i}", "text": text} for i, text in enumerate(TEXTS)]
    lines[1]["labels"] = ["organization", "person"]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    common = ["--model", str(lively_model_dir), "--labels", "person,location"]
    common += ["--max-new-tokens", "12", "--batch-size", "4"]

    single = tmp_path / "single.jsonl"
    assert main(["predict", str(source), "-o", str(single), *common]) == 0
    spread = tmp_path / "ray.jsonl"
    ray_args = ["--ray-workers", "2", "--ray-block-texts", "2"]
    assert main(["predict", str(source), "-o", str(spread), *common, *ray_args]) == 0
    expected = single.read_text().splitlines()
    assert spread.read_text().splitlines() == expected
    assert [json.loads(line)["id"] for line in expected] == [f"t{i}" for i in range(5)]
    assert not (tmp_path / "ray.jsonl.ray-journal.jsonl").exists()

    # an interrupted run: its journal holds two texts; the rerun answers the other three
    rows = [
        {"text": line["text"], "labels": line.get("labels", ["person", "location"])}
        for line in lines
    ]
    options = {"max_new_tokens": 12, "batch_size": 4, "max_text_tokens": 256}
    journal = tmp_path / "partial.ray-journal.jsonl"
    first, _ = predict_with_ray(
        rows, model=str(lively_model_dir), options=options, workers=2, journal_path=journal
    )
    kept = journal.read_text().splitlines()[:3]  # header + two texts
    journal.write_text("\n".join(kept) + "\n")
    seen = []
    again, resumed = predict_with_ray(
        rows,
        model=str(lively_model_dir),
        options=options,
        workers=2,
        journal_path=journal,
        on_texts=seen.append,
    )
    assert resumed == 2 and seen[0] == 2 and sum(seen) == 5
    assert again == first
    assert [{"id": f"t{i}", **record} for i, record in enumerate(first)] == [
        json.loads(line) for line in expected
    ]


def test_an_interrupted_ray_run_says_where_its_answers_are(tmp_path, monkeypatch, capsys) -> None:
    import raitner.infer.ray_predict as ray_predict
    from raitner.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ray_predict, "predict_with_ray", interrupted)
    source = tmp_path / "texts.jsonl"
    source.write_text('{"text": "Paris"}\n', encoding="utf-8")
    argv = ["predict", str(source), "-o", str(tmp_path / "out.jsonl"), "--labels", "city"]
    assert main([*argv, "--ray-workers", "2"]) == 130
    err = capsys.readouterr().err
    assert "texts answered so far are journalled in <output>.ray-journal.jsonl" in err
    assert not (tmp_path / "out.jsonl").exists()
