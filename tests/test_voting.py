"""Voting: several models answer every question; a mention is kept when enough of them give it.

The vote itself is checked on strings, the backend with scripted members (through the real
predictor, so the kept mentions get their offsets), and the loaders with tiny saved adapters:
a vote loaded from folders answers what voting the folders' own answers gives.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from raitner.api import ModelFormatError, OpenNER, inference_defaults_of
from raitner.errors import ModelLoadError, RaitnerError
from raitner.infer.predictor import Predictor
from raitner.infer.voting import VotingBackend, majority, vote_answers
from raitner.prompts.templates import get_template

TEMPLATE = get_template("ra-it-en-v1")


class Scripted:
    """Answers each question with a fixed reply per entity type (read from the prompt)."""

    def __init__(self, replies: dict[str, str], **attributes) -> None:
        self.replies = replies
        self.calls = 0
        for key, value in attributes.items():
            setattr(self, key, value)

    def generate(self, conversations, max_new_tokens):
        self.calls += 1
        answers = []
        for conversation in conversations:
            question = conversation[-1]["content"]
            label = next(label for label in self.replies if f"describes {label} " in question)
            answers.append(self.replies[label])
        return answers


# --------------------------------------------------------------------------- the vote


def test_a_mention_needs_the_votes() -> None:
    first = '["The Beatles", "Paris", "Paris"]'
    second = '["beatles", "London"]'
    # one mention, said twice by one model and differently cased by the other: two votes
    assert json.loads(vote_answers([first, second], 2)) == ["The Beatles"]
    # one vote is enough: the union, in the order the models gave the mentions
    assert json.loads(vote_answers([first, second], 1)) == ["The Beatles", "Paris", "London"]
    third = '["London", "Paris"]'
    assert json.loads(vote_answers([first, second, third], majority(3))) == [
        "The Beatles",
        "Paris",
        "London",
    ]
    assert json.loads(vote_answers([first, second, third], 3)) == []


def test_answers_are_read_leniently_and_unreadable_ones_vote_for_nothing() -> None:
    cut = '["Ada Lovelace", "Charles Bab'  # cut by the token limit: the lenient reader keeps Ada
    assert json.loads(vote_answers([cut, '["Ada Lovelace"]'], 2)) == ["Ada Lovelace"]
    assert json.loads(vote_answers(["I do not know.", '["Ada Lovelace"]'], 2)) == []
    assert vote_answers(["[]", "[]"], 2) == "[]"
    assert vote_answers(['["Zürich"]', '["zürich"]'], 2) == '["Zürich"]'  # not escaped


def test_majority_and_bounds() -> None:
    assert [majority(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="between 1 and 2"):
        vote_answers(["[]", "[]"], 3)
    with pytest.raises(ValueError, match="between 1 and 2"):
        vote_answers(["[]", "[]"], 0)


# --------------------------------------------------------------------------- the backend


def test_the_predictor_keeps_what_both_members_answer() -> None:
    text = "Ada Lovelace met Charles Babbage in London."
    one = Scripted({"person": '["Ada Lovelace", "Charles Babbage"]', "location": '["London"]'})
    two = Scripted({"person": '["ada lovelace"]', "location": '["London", "Babbage"]'})
    backend = VotingBackend([one, two], render_answer=TEMPLATE.render_answer)
    assert backend.min_votes == 2
    (prediction,) = Predictor(backend, TEMPLATE, show_progress=False).predict(
        [text], ["person", "location"]
    )
    assert prediction.raw_answers() == {"person": '["Ada Lovelace"]', "location": '["London"]'}
    assert [(e.start, e.end, e.label) for e in prediction.entities] == [
        (0, 12, "person"),
        (text.index("London"), text.index("London") + 6, "location"),
    ]
    assert one.calls == two.calls == 1
    assert backend.last_member_replies[1] == ['["ada lovelace"]', '["London", "Babbage"]']

    union = VotingBackend([one, two], min_votes=1)
    (prediction,) = Predictor(union, TEMPLATE, show_progress=False).predict([text], ["location"])
    assert [entity.text for entity in prediction.entities] == ["Babbage", "London"]


def test_the_backend_checks_its_members() -> None:
    one = Scripted({"person": "[]"}, empty_bias=0.5, token_spans="spans", reply_ending="end")
    with pytest.raises(ValueError, match="at least two members"):
        VotingBackend([one])
    with pytest.raises(ValueError, match="between 1 and 2"):
        VotingBackend([one, one], min_votes=3)
    with pytest.raises(ValueError, match="between 1 and 2"):
        VotingBackend([one, one], min_votes=True)
    voting = VotingBackend([one, Scripted({"person": "[]"})])
    # what the predictor and OpenNER read from a backend is the first member's
    assert (voting.empty_bias, voting.token_spans, voting.reply_ending) == (0.5, "spans", "end")

    class Short(Scripted):
        def generate(self, conversations, max_new_tokens):
            return super().generate(conversations, max_new_tokens)[:-1]

    broken = VotingBackend([one, Short({"person": "[]"})])
    with pytest.raises(RuntimeError, match="vote member 1 returned 0 answers for 1 questions"):
        broken.generate([TEMPLATE.query_messages("A text.", "person", ())], 8)


# --------------------------------------------------------------------------- the loaders


def _two_adapters(
    base_dir: Path, tmp_path: Path, overrides: dict[int, dict] | None = None
) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from test_api import write_model_folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    folders = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(base_dir)
        config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        tuned = get_peft_model(base, config)
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        write_model_folder(folder, base_dir, tuned, tokenizer, **(overrides or {}).get(seed, {}))
        folders.append(folder)
    return folders[0], folders[1]


TEXTS = ["Ada Lovelace met Charles Babbage in London.", "Paris is in France."]
LABELS = ["person", "location"]


def test_a_loaded_vote_answers_the_vote_of_its_models(
    lively_model_dir: Path, tmp_path: Path
) -> None:
    first, second = _two_adapters(lively_model_dir, tmp_path)
    alone = [
        OpenNER.from_pretrained(folder, max_new_tokens=12).raw_answers(TEXTS, LABELS)
        for folder in (first, second)
    ]
    assert alone[0] != alone[1], "the two adapters must answer differently"
    for min_votes in (1, 2):
        ner = OpenNER.from_pretrained(
            first, vote_with=[second], min_votes=min_votes, max_new_tokens=12
        )
        assert isinstance(ner.backend, VotingBackend)
        assert (ner.vote_with, ner.min_votes) == ([str(second)], min_votes)
        voted = ner.raw_answers(TEXTS, LABELS)
        expected = [
            {label: vote_answers([a[label], b[label]], min_votes) for label in LABELS}
            for a, b in zip(*alone, strict=True)
        ]
        assert voted == expected
        # each member answered as its model alone does (these random adapters answer no list,
        # so the vote itself is checked on the members' replies, question by question)
        assert ner.backend.last_member_replies == [
            [answers[label] for answers in run for label in LABELS] for run in alone
        ]


def test_a_model_folder_can_carry_its_vote(lively_model_dir: Path, tmp_path: Path) -> None:
    first, second = _two_adapters(
        lively_model_dir,
        tmp_path,
        {3: {"inference": {"vote_with": ["../seed4"], "min_votes": 1}}},
    )
    ner = OpenNER.from_pretrained(first, max_new_tokens=8)
    assert isinstance(ner.backend, VotingBackend)
    assert ner.vote_with == [str(first / "../seed4")] and ner.min_votes == 1
    alone = OpenNER.from_pretrained(first, vote_with=[], max_new_tokens=8)
    assert not isinstance(alone.backend, VotingBackend)
    assert (alone.vote_with, alone.min_votes) == ([], None)
    with pytest.raises(ValueError, match="min_votes applies to a vote"):
        OpenNER.from_pretrained(first, vote_with=[], min_votes=1)
    with pytest.raises(TypeError, match="use \\[path\\] for one"):
        OpenNER.from_pretrained(first, vote_with=str(second))
    with pytest.raises(ModelLoadError, match="the vote member '.*missing'"):
        OpenNER.from_pretrained(first, vote_with=[tmp_path / "missing"])
    with pytest.raises(RaitnerError, match="vllm backend serves one model"):
        OpenNER.from_pretrained(first, backend="vllm")


def test_vote_members_must_share_the_template(lively_model_dir: Path, tmp_path: Path) -> None:
    first, second = _two_adapters(
        lively_model_dir, tmp_path, {4: {"template": "ra-it-zh-v1", "templates": {}}}
    )
    with pytest.raises(ModelFormatError, match="trained with the template 'ra-it-zh-v1'"):
        OpenNER.from_pretrained(first, vote_with=[second])


def test_inference_section_checks_the_vote() -> None:
    section = {"inference": {"vote_with": ["seed1"], "min_votes": 2}}
    assert inference_defaults_of(section) == {"vote_with": ["seed1"], "min_votes": 2}
    for bad in ("seed1", [""], [3]):
        with pytest.raises(ModelFormatError, match="vote_with must be a list of folder names"):
            inference_defaults_of({"inference": {"vote_with": bad}})
    for bad in (0, True, 1.5):
        with pytest.raises(ModelFormatError, match="min_votes must be a positive whole number"):
            inference_defaults_of({"inference": {"min_votes": bad}})


def test_cli_flags_and_evaluation_keys() -> None:
    from raitner.cli import _build_parser, _loader_options
    from raitner.evaluate.runner import EvalSettings

    parser = _build_parser()
    for flags, vote_with, min_votes in (
        ([], None, None),
        (["--vote-with", "a", "--vote-with", "b", "--min-votes", "1"], ["a", "b"], 1),
        (["--no-vote"], [], None),
    ):
        args = parser.parse_args(["extract", "a text", "--labels", "person", *flags])
        assert isinstance(args, argparse.Namespace)
        options = _loader_options(args)
        assert (options["vote_with"], options["min_votes"]) == (vote_with, min_votes)
    args = parser.parse_args(
        ["extract", "a text", "--labels", "x", "--no-vote", "--vote-with", "a"]
    )
    with pytest.raises(RaitnerError, match="--no-vote cannot be given with --vote-with"):
        _loader_options(args)

    plain = EvalSettings(benchmarks=["crossner_ai"]).key("crossner_ai")
    assert "vote_with" not in plain and "min_votes" not in plain  # earlier answers stay valid
    voted = EvalSettings(benchmarks=["crossner_ai"], vote_with=["b"], min_votes=2)
    assert voted.key("crossner_ai")["vote_with"] == ["b"] != plain
