"""`raitner compare`: two evaluations of the same texts, their difference and its interval."""

from __future__ import annotations

import json
import re

import pytest

from raitner.api import OpenNER
from raitner.cli import main
from raitner.evaluate.compare import CompareError, compare_evaluations
from raitner.evaluate.runner import TEXT_COUNTS_FILE, EvalSettings, run_evaluation
from raitner.io.registry import load_benchmark
from raitner.prompts import get_template

EN = get_template("ra-it-en-v1")


class ScriptedBackend:
    """Answers every question with the gold mentions of its text (``right``) or with ``[]``."""

    def __init__(self, examples, right):
        self.gold = {ex.text: ex for ex in examples}
        self.right = right

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            text = messages[-3]["content"][len("Text: ") :]
            label = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])[1]
            example = self.gold[text]
            mentions = example.mentions(label) if self.right(example) else []
            answers.append(EN.render_answer(mentions))
        return answers


def _evaluate(tmp_path, data_root, name, right, benchmarks=("crossner_ai", "mit_movie"), seed=1):
    """`run_evaluation` of a scripted model on 12 seeded test texts per benchmark."""
    gold = [ex for b in benchmarks for ex in load_benchmark(b, "test", data_root)]
    ner = OpenNER(ScriptedBackend(gold, right), EN, max_text_tokens=None)
    ner.backend_name = "hf"
    settings = EvalSettings(benchmarks=list(benchmarks), limit=12, seed=seed, model=name)
    out = tmp_path / name
    run_evaluation(ner, settings, out, data_root=data_root, show_progress=False)
    return out


def _every_third(example):
    return int(example.id.rsplit(":", 1)[1]) % 3 == 0


def test_a_right_model_beats_a_silent_one_beyond_the_choice_of_texts(tmp_path, data_root):
    silent = _evaluate(tmp_path, data_root, "silent", lambda ex: False)
    oracle = _evaluate(tmp_path, data_root, "oracle", lambda ex: True)
    counts = json.loads((oracle / TEXT_COUNTS_FILE).read_text())
    assert counts["model"] == "oracle"
    assert len(counts["decodings"]["free"]["crossner_ai"]["texts"]) == 12
    result = compare_evaluations(silent, oracle, resamples=500)
    assert result["a_avg"] == 0.0 and result["b_avg"] == 100.0
    assert result["delta"] == pytest.approx(100.0) and result["significant"]
    assert result["benchmarks"]["mit_movie"] == {"texts": 12, "a": 0.0, "b": 100.0}
    # the same system twice: no difference, an interval that holds 0
    same = compare_evaluations(oracle, oracle, resamples=200)
    assert same["delta"] == 0.0 and same["interval"] == [0.0, 0.0] and not same["significant"]


def test_a_model_right_on_some_texts_gets_an_interval_around_its_difference(tmp_path, data_root):
    silent = _evaluate(tmp_path, data_root, "silent", lambda ex: False)
    partial = _evaluate(tmp_path, data_root, "partial", _every_third)
    result = compare_evaluations(silent, partial, resamples=1000)
    low, high = result["interval"]
    assert low <= result["delta"] <= high and high > low
    expected = sum(row["b"] - row["a"] for row in result["benchmarks"].values()) / 2
    assert result["delta"] == pytest.approx(expected)


def test_the_command_prints_the_table_and_refuses_what_cannot_be_compared(
    tmp_path, data_root, capsys
):
    silent = _evaluate(tmp_path, data_root, "silent", lambda ex: False)
    oracle = _evaluate(tmp_path, data_root, "oracle", lambda ex: True)
    written = tmp_path / "comparison.json"
    assert main(["compare", str(silent), str(oracle), "--json", str(written)]) == 0
    out = capsys.readouterr().out
    assert "| mit_movie | 12 | 0.00 | 100.00 | +100.00 |" in out
    assert "excludes 0" in out
    saved = json.loads(written.read_text())
    assert saved["delta"] == pytest.approx(100.0)
    # how much each side answered: the silent model nothing, the oracle every gold mention
    gold = saved["answers"]["b"]["gold"]
    assert gold > 0 and saved["answers"]["a"]["gold"] == gold
    assert saved["answers"]["a"] == {
        "mentions": 0,
        "correct": 0,
        "gold": gold,
        "precision": 0,
        "recall": 0,
    }
    assert saved["answers"]["b"] == {
        "mentions": gold,
        "correct": gold,
        "gold": gold,
        "precision": 100,
        "recall": 100,
    }
    assert "| A | 0 | 0 | 0.00 | 0.00 |" in out
    assert f"| B | {gold:.0f} | {gold:.0f} | 100.00 | 100.00 |" in out
    assert f"({gold:.0f} gold mentions)" in out

    other_texts = _evaluate(tmp_path / "x", data_root, "oracle", lambda ex: True, seed=2)
    assert main(["compare", str(oracle), str(other_texts)]) == 2
    assert "crossner_ai: the two evaluations asked different texts" in capsys.readouterr().err
    one = _evaluate(tmp_path, data_root, "one", lambda ex: True, benchmarks=("crossner_ai",))
    with pytest.raises(
        CompareError, match="different benchmarks.*with --benchmarks crossner_ai\\)"
    ):
        compare_evaluations(one, oracle)
    # a run that finished only some benchmarks, against a complete one, on what they share
    partial = compare_evaluations(one, silent, benchmarks=["crossner_ai"], resamples=200)
    assert list(partial["benchmarks"]) == ["crossner_ai"]
    assert (partial["a_avg"], partial["b_avg"]) == (100.0, 0.0)
    assert main(["compare", str(silent), str(one), "--benchmarks", "crossner_ai"]) == 0
    assert "| crossner_ai | 12 | 0.00 | 100.00 | +100.00 |" in capsys.readouterr().out
    assert main(["compare", str(silent), str(one), "--benchmarks", "crossner_ai,mit_movie"]) == 2
    assert "no mit_movie in this evaluation; it has crossner_ai" in capsys.readouterr().err
    assert main(["compare", str(oracle), str(tmp_path / "nowhere")]) == 2
    assert "is not a raitner eval output folder" in capsys.readouterr().err
    assert main(["compare", str(oracle), str(oracle), "--decoding", "constrained"]) == 2
    assert "no constrained decoding; it has free" in capsys.readouterr().err


class TwoDecodingsBackend(ScriptedBackend):
    """Silent when free, right when constrained: what `--constrained both` reports apart."""

    def __init__(self, examples, constrained=False):
        super().__init__(examples, lambda ex: constrained)
        self.examples = examples

    def with_constrained(self, constrained):
        return TwoDecodingsBackend(self.examples, constrained)


def test_the_two_decodings_of_one_run_compared(tmp_path, data_root, capsys):
    gold = [ex for b in ("crossner_ai", "mit_movie") for ex in load_benchmark(b, "test", data_root)]
    ner = OpenNER(TwoDecodingsBackend(gold), EN, max_text_tokens=None)
    ner.backend_name = "hf"
    settings = EvalSettings(
        benchmarks=["crossner_ai", "mit_movie"], limit=12, seed=1, model="two", constrained="both"
    )
    out = tmp_path / "both"
    run_evaluation(ner, settings, out, data_root=data_root, show_progress=False)
    result = compare_evaluations(out, out, decoding="free", decoding_b="constrained", resamples=200)
    assert (result["a_avg"], result["b_avg"]) == (0.0, 100.0) and result["significant"]
    assert compare_evaluations(out, out, decoding="constrained", resamples=200)["delta"] == 0.0
    assert main(["compare", str(out), str(out), "--decoding-b", "constrained"]) == 0
    printed = capsys.readouterr().out
    assert f"A: {out} (two, free decoding)" in printed
    assert f"B: {out} (two, constrained decoding)" in printed
    assert "| mit_movie | 12 | 0.00 | 100.00 | +100.00 |" in printed


def test_two_seeds_of_each_recipe_compared_as_means_over_the_pairs(tmp_path, data_root, capsys):
    # seed 1: silent against right on every third text; seed 2: silent against always right
    a1 = _evaluate(tmp_path / "a1", data_root, "a-seed1", lambda ex: False)
    b1 = _evaluate(tmp_path / "b1", data_root, "b-seed1", _every_third)
    a2 = _evaluate(tmp_path / "a2", data_root, "a-seed2", lambda ex: False)
    b2 = _evaluate(tmp_path / "b2", data_root, "b-seed2", lambda ex: True)
    first = compare_evaluations(a1, b1, resamples=300)
    both = compare_evaluations(a1, b1, more_pairs=[(a2, b2)], resamples=300)
    assert [run["delta"] for run in both["runs"]] == pytest.approx([first["delta"], 100.0])
    assert both["delta"] == pytest.approx((first["delta"] + 100.0) / 2)
    assert both["b_avg"] == pytest.approx((first["b_avg"] + 100.0) / 2)
    for name, row in both["benchmarks"].items():
        assert row["b"] == pytest.approx((first["benchmarks"][name]["b"] + 100.0) / 2)
    # the answer counts are means over the pairs too: B1 answers every third text, B2 all
    gold = first["answers"]["b"]["gold"]
    assert 0 < first["answers"]["b"]["mentions"] < gold
    assert first["answers"]["b"]["precision"] == 100
    assert both["answers"]["b"]["mentions"] == pytest.approx(
        (first["answers"]["b"]["mentions"] + gold) / 2
    )
    assert both["answers"]["b"]["recall"] == pytest.approx(
        (first["answers"]["b"]["recall"] + 100) / 2
    )
    assert both["answers"]["a"]["mentions"] == 0
    low, high = both["interval"]
    assert low <= both["delta"] <= high
    # the second pair shifts every draw by the same +100 / 2: the interval moves with it
    assert low == pytest.approx((first["interval"][0] + 100.0) / 2, abs=1e-9)

    assert main(["compare", str(a1), str(b1), "--pair", str(a2), str(b2)]) == 0
    printed = capsys.readouterr().out
    assert f"B2: {b2} (b-seed2)" in printed
    assert "| 2 | 0.00 | 100.00 | +100.00 |" in printed
    assert "A UniNER F1, mean of 2" in printed
    assert "| Evaluation, mean of 2 | Mentions answered |" in printed
    assert "| A | 0.0 | 0.0 | 0.00 | 0.00 |" in printed

    # a pair evaluated on other texts is refused, naming it
    other = _evaluate(tmp_path / "o", data_root, "b-seed2", lambda ex: True, seed=2)
    other_a = _evaluate(tmp_path / "oa", data_root, "a-seed2", lambda ex: False, seed=2)
    with pytest.raises(CompareError, match=f"asked other texts than {a1}"):
        compare_evaluations(a1, b1, more_pairs=[(other_a, other)])
    one_a = _evaluate(tmp_path / "1a", data_root, "a", lambda ex: False, benchmarks=("mit_movie",))
    one_b = _evaluate(tmp_path / "1b", data_root, "b", lambda ex: True, benchmarks=("mit_movie",))
    assert main(["compare", str(a1), str(b1), "--pair", str(one_a), str(one_b)]) == 2
    assert "every pair must cover the same benchmarks" in capsys.readouterr().err
