"""tools/vote_runs.py: several eval runs of the same texts scored as one by a vote over mentions."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from raitner.api import OpenNER
from raitner.evaluate.compare import compare_evaluations
from raitner.evaluate.runner import EvalSettings, run_evaluation
from raitner.io.registry import load_benchmark
from raitner.prompts.templates import get_template

TOOL_PATH = Path(__file__).resolve().parents[1] / "tools" / "vote_runs.py"


def _tool():
    spec = importlib.util.spec_from_file_location("vote_runs", TOOL_PATH)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


class GoldPlusBackend:
    """Each question's gold mentions (in a changed case) plus this backend's own wrong ones."""

    def __init__(self, gold: dict, extra: list[str], template) -> None:
        self.gold, self.extra, self.template = gold, extra, template

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            text = messages[-3]["content"][len("Text: ") :]
            asked = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])
            mentions = [m.upper() for m in dict.fromkeys(self.gold[text].mentions(asked[1]))]
            answers.append(self.template.render_answer(mentions + self.extra))
        return answers


def _run(tmp_path: Path, data_root: Path, name: str, extra: list[str], limit: int = 12) -> Path:
    template = get_template("ra-it-en-v1")
    gold = {ex.text: ex for ex in load_benchmark("crossner_ai", "test", data_root)}
    ner = OpenNER(GoldPlusBackend(gold, extra, template), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=limit, seed=3, model=name)
    run = tmp_path / name
    run_evaluation(ner, settings, run, data_root=data_root, show_progress=False)
    return run


def test_a_vote_keeps_what_enough_runs_answer(data_root: Path, tmp_path: Path) -> None:
    """Three runs share the gold mentions and disagree on wrong ones: the majority keeps only
    the gold (F1 100, read by raitner compare); one vote keeps everything any run said."""
    tool = _tool()
    runs = [
        _run(tmp_path, data_root, "a", ["alpha", "both"]),
        _run(tmp_path, data_root, "b", ["beta"]),
        _run(tmp_path, data_root, "c", ["gamma"]),
    ]
    majority = tmp_path / "majority"
    args = [*map(str, runs), "-o", str(majority), "--data-root", str(data_root)]
    assert tool.main(args) == 0
    compared = compare_evaluations(runs[0], majority, resamples=200)
    row = compared["benchmarks"]["crossner_ai"]
    assert row["a"] < 100.0 and row["b"] == 100.0
    report = (majority / "report.md").read_text()
    assert "at least 2 answer it" in report and "| 100.00 (100.0 / 100.0) |" in report

    # "both" and "The Both" are one mention to the metric: with two runs, two votes, kept
    two_runs = tmp_path / "two"
    the_both = _run(tmp_path, data_root, "d", ["The Both"])
    args = [str(runs[0]), str(the_both), "-o", str(two_runs), "--data-root", str(data_root)]
    assert tool.main(args) == 0
    counts = json.loads((two_runs / "text_counts.json").read_text())["decodings"]["free"]
    per_text = counts["crossner_ai"]["uniner"]
    first_record = (runs[0] / "predictions" / "crossner_ai.jsonl").read_text().split("\n")[1]
    types = len(json.loads(first_record)["answers"])
    assert all(n_pred - tp == types for tp, n_pred, _ in per_text)  # one wrong mention per question

    anyone = tmp_path / "anyone"
    args = [*map(str, runs), "-o", str(anyone), "--min-votes", "1", "--data-root", str(data_root)]
    assert tool.main(args) == 0
    per_text = json.loads((anyone / "text_counts.json").read_text())["decodings"]["free"]
    assert all(n - tp == 4 * types for tp, n, _ in per_text["crossner_ai"]["uniner"])


def test_runs_of_other_texts_are_refused(data_root: Path, tmp_path: Path) -> None:
    tool = _tool()
    first = _run(tmp_path, data_root, "a", [])
    other = _run(tmp_path, data_root, "b", [], limit=8)
    with pytest.raises(SystemExit, match="limit is 8, but .*has 12"):
        tool.main(
            [str(first), str(other), "-o", str(tmp_path / "v"), "--data-root", str(data_root)]
        )
    assert not (tmp_path / "v").exists()
    with pytest.raises(SystemExit):
        tool.main([str(first), "-o", str(tmp_path / "v")])  # one run is no vote
