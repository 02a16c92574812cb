"""One real RA-IT cycle on the embedded SmolLM2 weights: build → train → predict → eval.

A few optimisation steps only: it checks that every stage accepts the previous one's output
and that the trained folder loads back, not that the model learns.
"""

from __future__ import annotations

import json

import pytest

from raitner.cli import main

pytestmark = pytest.mark.slow


def test_build_train_predict_eval_cycle(tmp_path, data_root, monkeypatch, capsys):
    pytest.importorskip("trl")
    from raitner.models import ModelNotAvailableError, embedded_llm_path

    try:
        embedded_llm_path()
    except ModelNotAvailableError as err:
        pytest.skip(str(err))
    dataset = tmp_path / "train.jsonl"
    model = tmp_path / "model"
    assert (
        main(
            [
                "build",
                "sample:pile_ner_150",
                "--sample",
                "8",
                "--k",
                "1",
                "-o",
                str(dataset),
                "--quiet",
            ]
        )
        == 0
    )
    train_args = [
        "train",
        "--datasets",
        str(dataset),
        "--output-dir",
        str(model),
        "--max-steps",
        "2",
    ]
    train_args += ["--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1"]
    assert main([*train_args, "--max-seq-length", "768", "--long-samples", "drop"]) == 0
    config = json.loads((model / "raitner.json").read_text())
    assert config["template"] == "ra-it-en-v1" and config["retrieval"]["k"] == 1

    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"id": "t", "text": "Angela Merkel visited Paris ."}) + "\n")
    predictions = tmp_path / "predictions.jsonl"
    common = ["--model", str(model), "--max-new-tokens", "16"]
    assert main(["predict", str(texts), "-o", str(predictions), "--labels", "person", *common]) == 0
    record = json.loads(predictions.read_text())
    assert set(record["answers"]) == {"person"}

    report = tmp_path / "eval"
    eval_args = ["eval", "--benchmarks", "crossner_ai", "--limit", "2", "-o", str(report)]
    assert main([*eval_args, "--data-root", str(data_root), *common]) == 0
    table = json.loads((report / "report.json").read_text())
    assert {row["name"].split(" (")[1] for row in table["rows"]} == {
        "UniNER F1)",
        "RA-IT F1)",
        "span F1)",
    }
