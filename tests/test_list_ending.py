"""close_lists: list answers end at their first repeated item and are closed when cut.

The string rules are checked directly; the backends are checked for the identity the option
rests on: with a reply ending, each greedy reply is the ending applied to the reply generated
without it (rows stop early, nothing else changes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from raitner.api import ModelFormatError, OpenNER, inference_defaults_of
from raitner.evaluate.metrics import parse_answer
from raitner.infer.list_ending import (
    ListEnding,
    close_cut_list,
    end_at_repeated_item,
    end_list,
    finish_reply,
)
from raitner.prompts.templates import get_template

LOOP = '["Poland", "Latvian", "Lithuanian", "Czech Republic", "Lithuanian", "Czech Republic", "Lith'


# --------------------------------------------------------------------------- the string rules


def test_a_loop_ends_before_its_first_repeated_item() -> None:
    assert end_at_repeated_item(LOOP) == '["Poland", "Latvian", "Lithuanian", "Czech Republic"]'
    assert end_list(LOOP) == '["Poland", "Latvian", "Lithuanian", "Czech Republic"]'
    assert parse_answer(end_list(LOOP)).mentions == (
        "poland",
        "latvian",
        "lithuanian",
        "czech republic",
    )
    assert not parse_answer(LOOP).ok  # the papers' rule reads nothing in the loop itself


def test_a_repeat_counts_once_the_item_is_complete() -> None:
    assert end_at_repeated_item('["A", "B", "A') is None  # "A..." may still become "AB"
    assert end_at_repeated_item('["A", "B", "AB"') is None
    assert end_at_repeated_item('["A", "B", "A"') == '["A", "B"]'
    # a closed list with a repeat inside ends at the repeat like any other
    assert end_at_repeated_item('["A", "B", "A", "C"]') == '["A", "B"]'
    # exact comparison of the decoded strings
    assert end_at_repeated_item('["Beach", "beach", "Beach "]') is None
    assert end_at_repeated_item('["caf\\u00e9", "café"') == '["caf\\u00e9"]'
    assert end_at_repeated_item('["say \\"hi\\"", "x", "say \\"hi\\""') == '["say \\"hi\\"", "x"]'


def test_lists_that_close_or_stray_first_are_kept() -> None:
    for answer in ("[]", '["A", "B"]', ' [ "A" ,\n "B" ] trailing', "no list", "", '"A", "A"'):
        assert end_list(answer) == answer
    # another shape before the repeat: not ours to end
    assert end_list('["A", \'B\', "A", "A"') == '["A", \'B\', "A", "A"'
    assert end_list('["A" "B", "A"') == '["A" "B", "A"'
    assert end_list('[{"x": 1}, "A", "A"') == '[{"x": 1}, "A", "A"'


def test_a_cut_list_is_closed_after_its_last_complete_item() -> None:
    assert close_cut_list('["A", "B", "C') == '["A", "B"]'
    assert close_cut_list('["A", "B",') == '["A", "B"]'
    assert close_cut_list('["A", "B"') == '["A", "B"]'
    assert close_cut_list('  ["A",\n  ') == '  ["A"]'
    assert close_cut_list('["A') == '["A'  # nothing complete: left as it is
    assert close_cut_list("[") == "["
    assert parse_answer(close_cut_list('["Xi", "Yo", "Z')).mentions == ("xi", "yo")


def test_the_early_decision_is_the_one_the_whole_answer_gets() -> None:
    """Stopping at the first prefix that decides gives what ending the whole answer gives:
    whatever follows the repeat never matters (why the backends may stop the row there)."""
    answers = [
        LOOP,
        '["A", "B", "A", "C"]',
        '["x", "y", "z", "y", "x", "q"]',
        '["a\\"b", "c", "a\\"b"',
        '["A", "B", "C',
        '["A", "B"]',
    ]
    for answer in answers:
        at = next((n for n in range(len(answer) + 1) if end_at_repeated_item(answer[:n])), None)
        assert finish_reply(ListEnding(), answer) == end_list(answer)
        if at is not None:
            decided = end_at_repeated_item(answer[:at])
            assert decided == end_list(answer)
            assert end_list(answer[:at] + ', "junk", "more"]') == decided
        else:
            assert end_list(answer) == close_cut_list(answer)


def test_the_template_renders_what_the_rules_read() -> None:
    """The answers the models are trained on are the shape the rules handle."""
    template = get_template("ra-it-en-v1")
    rendered = template.render_answer(["New York", 'the "Big" Apple', "Zoë"])
    assert end_list(rendered) == rendered
    looped = rendered[:-1] + ", " + json.dumps("New York", ensure_ascii=False) + ', "Zo'
    assert end_list(looped) == rendered


# --------------------------------------------------------------------------- the backends


class FirstCharacters:
    """A reply ending decided once a reply has ``n`` characters (cut there), and marked when
    generation ended it first: any ending that decides on a prefix behaves like this one."""

    def __init__(self, n: int) -> None:
        self.n = n

    def early(self, reply: str) -> str | None:
        return reply[: self.n] if len(reply) >= self.n else None

    def final(self, reply: str) -> str:
        return reply + "|"


def _conversations():
    template = get_template("ra-it-en-v1")
    texts = ["Barack Obama visited Paris in 2009 .", "x", "The EU met in Brussels on Monday ."]
    return [template.query_messages(t, label) for t in texts for label in ("person", "date")]


@pytest.fixture(scope="module")
def lively(lively_model_dir: Path):
    pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return (
        AutoModelForCausalLM.from_pretrained(lively_model_dir),
        AutoTokenizer.from_pretrained(lively_model_dir),
    )


@pytest.mark.parametrize("kind", ["hf", "hf-prefix"])
def test_backends_stop_rows_early_and_change_nothing_else(lively, kind: str) -> None:
    from raitner.infer.backends import HFBackend
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    backend_class = PrefixReuseHFBackend if kind == "hf-prefix" else HFBackend
    conversations = _conversations()
    free = backend_class(model, tokenizer, batch_size=4).generate(conversations, 12)
    lengths = sorted(len(reply) for reply in free)
    n = lengths[len(lengths) // 2]  # some replies reach it, some do not
    assert lengths[0] < n <= lengths[-1]
    ending = FirstCharacters(n)
    ended = backend_class(model, tokenizer, batch_size=4, reply_ending=ending)
    replies = ended.generate(conversations, 12)
    assert replies == [finish_reply(ending, reply) for reply in free]
    assert any(reply.endswith("|") for reply in replies)
    assert any(len(reply) == n and not reply.endswith("|") for reply in replies)
    if kind == "hf-prefix":
        assert ended.stats.ended_early > 0
    # an ending of one's own is not the close_lists option (evaluations record that one)
    assert not OpenNER(ended, "ra-it-en-v1").close_lists


def test_make_backend_and_the_loaders_carry_the_option(lively) -> None:
    from raitner.infer.select import make_backend, with_constrained

    model, tokenizer = lively
    for name in ("hf", "hf-prefix"):
        assert make_backend(name, model, tokenizer).reply_ending is None
        backend = make_backend(name, model, tokenizer, close_lists=True)
        assert isinstance(backend.reply_ending, ListEnding)
    with pytest.raises(ValueError, match="close_lists must be True or False"):
        make_backend("hf", model, tokenizer, close_lists="yes")
    ner = OpenNER.from_model(model, tokenizer, close_lists=True)
    assert ner.close_lists and isinstance(ner.backend.reply_ending, ListEnding)
    assert not OpenNER.from_model(model, tokenizer).close_lists
    copy = with_constrained(ner.backend, True)
    assert isinstance(copy.reply_ending, ListEnding)


def test_the_model_folder_carries_the_option(lively_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from test_api import write_model_folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(lively_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(lively_model_dir)
    torch.manual_seed(3)
    tuned = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"]))
    write_model_folder(
        tmp_path, lively_model_dir, tuned, tokenizer, inference={"close_lists": True}
    )
    assert OpenNER.from_pretrained(tmp_path).close_lists
    assert not OpenNER.from_pretrained(tmp_path, close_lists=False).close_lists
    assert not OpenNER.from_pretrained(lively_model_dir).close_lists


def test_inference_section_checks_the_option() -> None:
    section = {"inference": {"close_lists": True, "empty_bias": 1}}
    assert inference_defaults_of(section) == {"close_lists": True, "empty_bias": 1}
    with pytest.raises(ModelFormatError, match="close_lists must be true or false"):
        inference_defaults_of({"inference": {"close_lists": 1}})
    with pytest.raises(ModelFormatError, match="empty_bias must be a number"):
        inference_defaults_of({"inference": {"empty_bias": True}})


def test_evaluation_keys_and_cli_flags() -> None:
    from raitner.cli import _build_parser, _loader_options
    from raitner.evaluate.runner import EvalSettings

    plain = EvalSettings(benchmarks=["crossner_ai"]).key("crossner_ai")
    assert "close_lists" not in plain  # answers saved before the option stay valid
    closed = EvalSettings(benchmarks=["crossner_ai"], close_lists=True).key("crossner_ai")
    assert closed["close_lists"] is True and closed != plain

    parser = _build_parser()
    for flags, expected in (([], None), (["--close-lists"], True), (["--no-close-lists"], False)):
        args = parser.parse_args(["extract", "a text", "--labels", "person", *flags])
        assert isinstance(args, argparse.Namespace)
        assert _loader_options(args)["close_lists"] is expected


# --------------------------------------------------------------------------- tools/end_lists.py


def test_the_rescoring_tool_scores_the_ended_answers(data_root: Path, tmp_path: Path) -> None:
    """A free run's saved answers, some of them loops cut by the limit: the tool's counts are
    those of the ended answers, and raitner compare reads them."""
    import importlib.util
    import re

    from raitner.evaluate.compare import compare_evaluations
    from raitner.evaluate.runner import EvalSettings, run_evaluation
    from raitner.io.registry import load_benchmark

    tool_path = Path(__file__).resolve().parents[1] / "tools" / "end_lists.py"
    spec = importlib.util.spec_from_file_location("end_lists", tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    template = get_template("ra-it-en-v1")
    gold = {ex.text: ex for ex in load_benchmark("crossner_ai", "test", data_root)}

    class LoopingBackend:
        """The gold mentions of each question; with two or more, a loop over them, cut."""

        def generate(self, conversations, max_new_tokens):
            answers = []
            for messages in conversations:
                text = messages[-3]["content"][len("Text: ") :]
                asked = re.fullmatch(r"What describes (.*) in the text\?", messages[-1]["content"])
                mentions = list(dict.fromkeys(gold[text].mentions(asked[1])))
                answer = template.render_answer(mentions)
                if len(mentions) >= 2:
                    answer = answer[:-1] + ", " + template.render_answer(mentions)[1:-3]
                answers.append(answer)
            return answers

    ner = OpenNER(LoopingBackend(), template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["crossner_ai"], limit=15, seed=5, model="looping")
    run = tmp_path / "run"
    run_evaluation(ner, settings, run, data_root=data_root, show_progress=False)
    out = tmp_path / "ended"
    assert tool.main([str(run), "-o", str(out), "--data-root", str(data_root)]) == 0

    _, records = tool._read_predictions(run / "predictions" / "crossner_ai.jsonl")
    answers = [answer for record in records for answer in record["answers"].values()]
    looped = [answer for answer in answers if not parse_answer(answer).ok]
    assert looped and all(parse_answer(end_list(answer)).ok for answer in looped)
    compared = compare_evaluations(run, out, resamples=200)
    row = compared["benchmarks"]["crossner_ai"]
    assert row["b"] == 100.0  # every ended answer is the gold list
    assert row["a"] < 100.0  # the cut loops scored nothing as saved
    report = (out / "report.md").read_text()
    assert f"| crossner_ai | {len(answers)} | {len(looped)} |" in report
