"""The evaluation runner end to end with a scripted backend that answers with the gold."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

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
    kinds = report["errors"]["free"]["crossner_ai"]
    uniner = rows["gold (UniNER F1)"]["results"]["crossner_ai"]
    assert kinds["tp"] == uniner["tp"] == kinds["n_pred"] == kinds["n_gold"] > 0
    assert (kinds["wrong_type"], kinds["not_gold"], kinds["missed"]) == (0, 0, 0)
    assert "## Errors by kind" in (tmp_path / "report.md").read_text()

    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == asked  # predictions reused, nothing asked again

    changed = EvalSettings(benchmarks=["crossner_ai"], limit=20, seed=4, model="gold")
    run_evaluation(ner, changed, tmp_path, data_root=data_root, show_progress=False)
    assert backend.calls == 2 * asked  # other settings: predicted anew


class StopsAfterBlocks(GoldBackend):
    """A gold backend whose process 'dies' (KeyboardInterrupt) at its ``blocks + 1``-th call."""

    def __init__(self, examples, template, blocks):
        super().__init__(examples, template)
        self.blocks_left = blocks

    def generate(self, conversations, max_new_tokens):
        if self.blocks_left == 0:
            raise KeyboardInterrupt
        self.blocks_left -= 1
        return super().generate(conversations, max_new_tokens)


def _evaluate(backend, settings, out_dir, data_root):
    template = get_template("ra-it-en-v1")
    ner = OpenNER(backend, template, max_text_tokens=None)
    return run_evaluation(ner, settings, out_dir, data_root=data_root, show_progress=False)


def test_an_interrupted_benchmark_resumes_at_the_block_where_it_stopped(tmp_path, data_root):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    settings = EvalSettings(
        benchmarks=["crossner_ai"], limit=12, seed=5, model="gold", batch_size=8
    )
    asked = 12 * len([t for t in get_benchmark("crossner_ai").types if t != "misc"])
    predictions = tmp_path / "run" / "predictions"

    dying = StopsAfterBlocks(gold, template, blocks=5)
    with pytest.raises(KeyboardInterrupt):
        _evaluate(dying, settings, tmp_path / "run", data_root)
    assert dying.calls == 5 * 8
    assert not (predictions / "crossner_ai.jsonl").exists()  # nothing half-written
    assert (predictions / "crossner_ai.journal.jsonl").is_file()

    rest = GoldBackend(gold, template)
    _evaluate(rest, settings, tmp_path / "run", data_root)
    assert rest.calls == asked - 5 * 8  # only the questions without a saved answer
    assert not (predictions / "crossner_ai.journal.jsonl").exists()

    whole = GoldBackend(gold, template)
    _evaluate(whole, settings, tmp_path / "whole", data_root)
    assert whole.calls == asked
    uninterrupted = tmp_path / "whole" / "predictions" / "crossner_ai.jsonl"
    assert (predictions / "crossner_ai.jsonl").read_text() == uninterrupted.read_text()
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert {row["name"]: row for row in report["rows"]}["gold (UniNER F1)"]["scores"] == {
        "crossner_ai": 100.0
    }


def test_a_journal_from_other_settings_is_not_mixed_in(tmp_path, data_root):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    first = EvalSettings(benchmarks=["crossner_ai"], limit=6, seed=5, model="gold", batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        _evaluate(StopsAfterBlocks(gold, template, blocks=2), first, tmp_path, data_root)
    other = EvalSettings(benchmarks=["crossner_ai"], limit=6, seed=5, model="other", batch_size=4)
    backend = GoldBackend(gold, template)
    _evaluate(backend, other, tmp_path, data_root)
    assert backend.calls == 6 * len([t for t in get_benchmark("crossner_ai").types if t != "misc"])


def test_progress_names_each_benchmark(tmp_path, data_root, capsys):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    ner = OpenNER(GoldBackend(gold, template), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=3, seed=5, model="gold")
    n_types = len([t for t in get_benchmark("crossner_ai").types if t != "misc"])
    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=True)
    assert f"crossner_ai: 3 texts x {n_types} types (test split)" in capsys.readouterr().err
    run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=True)
    assert "crossner_ai: saved predictions reused" in capsys.readouterr().err


def test_predictions_are_not_reused_under_other_generation_limits(tmp_path, data_root):
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=2, seed=5, model="gold")
    asked = 2 * len([t for t in get_benchmark("crossner_ai").types if t != "misc"])
    backend = GoldBackend(gold, template)

    def evaluate(**limits):
        ner = OpenNER(backend, template, **limits)
        return run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)

    table = evaluate(max_new_tokens=64, max_text_tokens=None)
    assert table["settings"]["generation_limits"]["max_new_tokens"] == 64
    evaluate(max_new_tokens=64, max_text_tokens=None)
    assert backend.calls == asked  # same limits: reused
    evaluate(max_new_tokens=256, max_text_tokens=None)
    assert backend.calls == 2 * asked  # answers cut at 64 tokens are not those of 256
    evaluate(max_new_tokens=256, max_text_tokens=512)
    assert backend.calls == 3 * asked

    # a file written before the limits were recorded (header without them) is reused
    saved = tmp_path / "predictions" / "crossner_ai.jsonl"
    lines = saved.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["limits"]["max_text_tokens"] == 512
    del header["limits"]
    saved.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", encoding="utf-8")
    evaluate(max_new_tokens=32, max_text_tokens=None)
    assert backend.calls == 3 * asked


class NextTypeBackend(GoldBackend):
    """Answers each type with the gold mentions of the next type of the benchmark (cyclic)."""

    def __init__(self, examples, template, types):
        super().__init__(examples, template)
        self.next_type = dict(zip(types, types[1:] + types[:1], strict=True))

    def generate(self, conversations, max_new_tokens):
        answers = []
        for messages in conversations:
            text = messages[-3]["content"][len("Text: ") :]
            label = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])[1]
            mentions = self.gold[text].mentions(self.next_type[label])
            answers.append(self.template.render_answer(mentions))
        return answers


def test_the_report_sorts_errors_by_kind(tmp_path, data_root):
    """Gold mentions answered for the wrong type are counted as such, with their confusions."""
    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    types = [t for t in get_benchmark("crossner_ai").types if t != "misc"]
    ner = OpenNER(NextTypeBackend(gold, template, types), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=20, seed=3, model="shifted")
    table = run_evaluation(ner, settings, tmp_path, data_root=data_root, show_progress=False)
    kinds = table["errors"]["free"]["crossner_ai"]
    uniner = {row["name"]: row for row in table["rows"]}["shifted (UniNER F1)"]["results"]
    assert kinds["n_pred"] == uniner["crossner_ai"]["n_pred"] > 0
    assert kinds["n_gold"] == uniner["crossner_ai"]["n_gold"]
    assert kinds["wrong_type"] > 0 and kinds["not_gold"] == 0
    next_type = dict(zip(types, types[1:] + types[:1], strict=True))
    # every wrong-type mention is gold for the next type of the one it was answered for (it
    # may also be gold for a third type, which adds a pair of its own)
    from_next = [c for c in kinds["confusions"] if next_type[c["answered"]] == c["gold"]]
    assert sum(c["count"] for c in from_next) == kinds["wrong_type"]
    shown = kinds["confusions"][0]
    assert f"{shown['gold']} → {shown['answered']} ({shown['count']})" in table["markdown"]


class InventsOneBackend(GoldBackend):
    """Answers each question with its gold mentions and one mention the text does not have."""

    def generate(self, conversations, max_new_tokens):
        answers = super().generate(conversations, max_new_tokens)
        return [json.dumps([*json.loads(answer), "Zzyzx Qwerty"]) for answer in answers]


def test_drop_unaligned_scores_only_mentions_in_the_text(tmp_path, data_root):
    gold = load_benchmark("crossner_ai", "test", data_root)
    backend = InventsOneBackend(gold, get_template("ra-it-en-v1"))
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=10, seed=3, model="inventive")
    papers = _evaluate(backend, settings, tmp_path, data_root)
    asked = backend.calls
    uniner = {row["name"]: row for row in papers["rows"]}["inventive (UniNER F1)"]["results"]
    counts = uniner["crossner_ai"]
    assert counts["n_pred"] == counts["tp"] + asked  # one invented mention per question
    assert "dropped_unaligned" not in papers

    table = _evaluate(backend, replace(settings, drop_unaligned=True), tmp_path, data_root)
    assert backend.calls == asked  # scoring only: the saved predictions are reused
    rows = {row["name"]: row for row in table["rows"]}
    assert rows["inventive (UniNER F1)"]["scores"]["crossner_ai"] == 100.0
    assert rows["inventive (RA-IT F1)"]["scores"]["crossner_ai"] == 100.0
    assert table["dropped_unaligned"] == {"free": {"crossner_ai": asked}}
    assert table["errors"]["free"]["crossner_ai"]["not_gold"] == 0
    report = (tmp_path / "report.md").read_text()
    assert "mentions not in the text dropped" in report
    assert "## Mentions not in the text" in report
    lines = (tmp_path / "predictions" / "crossner_ai.jsonl").read_text().splitlines()
    saved = [json.loads(line) for line in lines[1:]]
    kept = sum("Zzyzx Qwerty" in answer for r in saved for answer in r["answers"].values())
    assert kept == asked  # the answers as generated are kept


class GoldPlusNoise(GoldBackend):
    """The gold mentions and one made-up mention per question."""

    def generate(self, conversations, max_new_tokens):
        answers = super().generate(conversations, max_new_tokens)
        return [json.dumps([*json.loads(answer), "made up"]) for answer in answers]


def test_a_vote_is_scored_and_kept_apart(tmp_path, data_root):
    from raitner.infer.voting import VotingBackend

    template = get_template("ra-it-en-v1")
    gold = load_benchmark("crossner_ai", "test", data_root)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=5, seed=3, model="gold")
    noisy = OpenNER(GoldPlusNoise(gold, template), template, max_text_tokens=None)
    run_evaluation(noisy, settings, tmp_path, data_root=data_root, show_progress=False)
    alone = json.loads((tmp_path / "report.json").read_text())["rows"]
    assert alone[0]["scores"]["crossner_ai"] < 100.0

    members = [GoldPlusNoise(gold, template), GoldBackend(gold, template)]
    voted = OpenNER(VotingBackend(members), template, max_text_tokens=None)
    voted.vote_with = ["gold-only"]  # as the loaders record it
    run_evaluation(voted, settings, tmp_path, data_root=data_root, show_progress=False)
    assert members[0].calls > 0  # not the noisy run's saved answers: the vote is asked anew
    rows = {row["name"]: row for row in json.loads((tmp_path / "report.json").read_text())["rows"]}
    name = "gold voted with gold-only (at least 2) (UniNER F1)"
    assert rows[name]["scores"]["crossner_ai"] == 100.0  # the made-up mention has one vote
