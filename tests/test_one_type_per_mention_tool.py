"""tools/one_type_per_mention.py on saved answers, with the tiny model as the scorer."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from raitner.api import OpenNER
from raitner.evaluate.metrics import normalize_answer
from raitner.evaluate.runner import EvalSettings, run_evaluation, seeded_subset
from raitner.io.registry import get_benchmark, load_benchmark
from raitner.prompts import get_template
from raitner.schema import Entity, Example

TOOL = Path(__file__).resolve().parents[1] / "tools" / "one_type_per_mention.py"


def _tool():
    spec = importlib.util.spec_from_file_location("one_type_per_mention", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EveryMentionForEveryType:
    """Answers every question of a text with all of the text's gold mentions."""

    def __init__(self, examples, template):
        self.gold = {ex.text: ex for ex in examples}
        self.template = template

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            text = messages[-3]["content"][len("Text: ") :]
            assert re.fullmatch(r"What describes .* in the text\?", messages[-1]["content"])
            mentions = [entity.text for entity in self.gold[text].entities]
            answers.append(self.template.render_answer(list(dict.fromkeys(mentions))))
        return answers


def test_each_mention_answered_for_several_types_is_kept_for_one(
    tmp_path, data_root, tiny_model_dir
):
    pytest.importorskip("torch")
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    ner = OpenNER(EveryMentionForEveryType(gold, template), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=3, seed=5, model="all")
    table = run_evaluation(ner, settings, tmp_path / "eval", data_root=data_root)
    before = {row["name"]: row for row in table["rows"]}["all (UniNER F1)"]["scores"]

    output = tmp_path / "out.json"
    argv = [str(tmp_path / "eval"), "--model", str(tiny_model_dir)]
    assert _tool().main([*argv, "--data-root", str(data_root), "-o", str(output)]) == 0
    result = json.loads(output.read_text())
    row = result["benchmarks"]["crossner_ai"]
    assert round(row["f1_before"], 2) == before["crossner_ai"]

    n_types = len([t for t in get_benchmark("crossner_ai").types if t != "misc"])
    mentions = {
        (ex.text, normalize_answer(entity.text))
        for ex in seeded_subset(gold, 3, 5)
        for entity in ex.entities
    }
    assert row["mentions_in_conflict"] == len(mentions) > 0
    # every mention stays answered for exactly one of the types it was answered for
    assert row["answers_dropped"] == len(mentions) * (n_types - 1)
    assert row["recall_after"] <= row["recall_before"]  # answers only lose mentions
    assert "one_type_per_mention.py" in result["command"]
    average = result["average"]
    assert average["delta"] == pytest.approx(average["f1_after"] - average["f1_before"])
    low, high = average["delta_95_interval"]
    assert low <= high


def test_an_eval_folder_without_predictions_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        _tool().main([str(tmp_path), "-o", str(tmp_path / "out.json")])
    assert stopped.value.code == 2
    assert "no saved predictions" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def _training_set(path, answered):
    """A training set in the shape `raitner build` writes: each type asked ``answered[type]``
    times with a non-empty answer, and once more with an empty one (which must not count)."""
    template = get_template("ra-it-en-v1")
    with path.open("w", encoding="utf-8") as handle:
        for label, times in answered.items():
            with_answer = Example("a", "Ada wrote it.", "en", [Entity(0, 3, "Ada", label)])
            messages = template.training_messages(with_answer, [label])
            for _ in range(times):
                handle.write(json.dumps({"id": label, "messages": messages}) + "\n")
            empty = template.training_messages(Example("b", "It rained.", "en", []), [label])
            handle.write(json.dumps({"id": f"{label}-empty", "messages": empty}) + "\n")
    return path


@pytest.mark.parametrize("tied", [1, 2])
def test_rarest_keeps_the_type_least_asked_in_training(tmp_path, data_root, tied):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    ner = OpenNER(EveryMentionForEveryType(gold, template), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=3, seed=5, model="all")
    run_evaluation(ner, settings, tmp_path / "eval", data_root=data_root)
    types = [t for t in get_benchmark("crossner_ai").types if t != "misc"]
    # every type asked a different number of times, except `tied` of them never answered
    rare = ["product", "task"][:tied]  # types with gold mentions in the three texts
    answered = {label: (0 if label in rare else 3 + i) for i, label in enumerate(types)}
    train_set = _training_set(tmp_path / "train.jsonl", answered)
    assert _tool().answered_type_counts(train_set) == {
        label.lower(): count for label, count in answered.items() if count
    }

    output = tmp_path / "out.json"
    argv = [str(tmp_path / "eval"), "--choose", "rarest", "--train-set", str(train_set)]
    assert _tool().main([*argv, "--data-root", str(data_root), "-o", str(output)]) == 0
    row = json.loads(output.read_text())["benchmarks"]["crossner_ai"]
    subset = seeded_subset(gold, 3, 5)
    mentions = {(ex.text, normalize_answer(e.text)) for ex in subset for e in ex.entities}
    assert row["answers_dropped"] == len(mentions) * (len(types) - tied)
    # only the rare types' questions keep answers: every mention of a text answered for them
    gold_rare = {
        (ex.text, normalize_answer(e.text)) for ex in subset for e in ex.entities if e.label in rare
    }
    assert gold_rare
    assert row["precision_after"] == pytest.approx(100 * len(gold_rare) / (tied * len(mentions)))


def test_rarest_needs_a_training_set_and_names_a_bad_line(tmp_path, data_root, capsys):
    with pytest.raises(SystemExit) as stopped:
        _tool().main([str(tmp_path), "--choose", "rarest", "-o", str(tmp_path / "out.json")])
    assert stopped.value.code == 2 and "--train-set" in capsys.readouterr().err
    bad = tmp_path / "train.jsonl"
    bad.write_text(
        '{"messages": []}\n{"messages": [{"role": "user"}, {"role": "assistant"}]}\n',
        encoding="utf-8",
    )
    from raitner.errors import RaitnerError

    with pytest.raises(RaitnerError, match=f"{re.escape(str(bad))}:2: expected a conversation"):
        _tool().answered_type_counts(bad)
    # from the command line: a usage error naming the file and line, nothing written
    output = tmp_path / "out.json"
    predictions = tmp_path / "eval" / "predictions"
    predictions.mkdir(parents=True)
    (predictions / "crossner_ai.jsonl").write_text("{}\n", encoding="utf-8")
    argv = [str(tmp_path / "eval"), "--choose", "rarest", "--train-set", str(bad)]
    argv += ["-o", str(output)]
    with pytest.raises(SystemExit) as stopped:
        _tool().main(argv)
    assert (
        stopped.value.code == 2 and f"{bad}:2: expected a conversation" in capsys.readouterr().err
    )
    assert not output.exists()
