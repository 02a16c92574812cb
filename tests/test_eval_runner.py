"""The evaluation runner end to end with a scripted backend that answers with the gold."""

from __future__ import annotations

import json
import re

from raitner.api import OpenNER
from raitner.evaluate.runner import EvalSettings, run_evaluation, seeded_subset
from raitner.io.registry import get_benchmark, load_benchmark
from raitner.prompts import get_template


class GoldBackend:
    """Answers each question with the gold mentions of its (text, type)."""

    def __init__(self, examples, template):
        self.gold = {ex.text: ex for ex in examples}
        self.template = template
        self.calls = 0

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            self.calls += 1
            text = messages[-3]["content"][len("Text: ") :]
            label = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])[1]
            answers.append(self.template.render_answer(self.gold[text].mentions(label)))
        return answers


def test_gold_answers_score_100_and_rerun_resumes(tmp_path, data_root):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    backend = GoldBackend(gold, template)
    ner = OpenNER(backend, template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=20, seed=3, model="gold")
    table = run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    chosen = seeded_subset(gold, 20, 3)
    types = [t for t in get_benchmark("crossner_ai").types if t != "misc"]
    asked = len(chosen) * len(types)
    assert backend.calls == asked  # every type but misc, for every chosen text
    report = json.loads((tmp_path / "report.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert rows["gold (UniNER F1)"]["scores"]["crossner_ai"] == 100.0
    assert rows["gold (RA-IT F1)"]["scores"]["crossner_ai"] == 100.0
    span = rows["gold (span F1)"]["results"]["crossner_ai"]
    assert span["tp"] == span["n_gold"] > 0  # every gold span found (extra occurrences may add)
    assert "crossner_ai" in (tmp_path / "report.md").read_text()
    assert table["settings"]["limit"] == 20

    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == asked  # predictions reused, nothing asked again

    changed = EvalSettings(benchmarks=["crossner_ai"], limit=20, seed=4, model="gold")
    run_evaluation(ner, changed, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == 2 * asked  # other settings: predicted anew
