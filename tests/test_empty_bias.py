"""The empty-answer bias: where the empty answer parts from non-empty ones, a logits processor
that biases that one choice and nothing else, and the option through OpenNER, a model folder's
``raitner.json``, the CLI and the evaluation cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from raitner.api import ModelFormatError, OpenNER, inference_defaults_of
from raitner.infer.empty_bias import EmptyAnswerBias, EmptyAnswerSplit, empty_answer_split
from raitner.prompts import get_template

EN = get_template("ra-it-en-v1")
TEXTS = ["Barack Obama visited Paris in 2009 .", "The Louvre is a museum in France ."]
LABELS = ["person", "location", "date", "organization"]


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


class CharTokenizer:
    """One token per character, or the listed multi-character tokens first (longest first)."""

    def __init__(self, merges=()):
        self.merges = sorted(merges, key=len, reverse=True)
        self.vocab: dict[str, int] = {}

    def __call__(self, text, add_special_tokens=False):
        ids, position = [], 0
        while position < len(text):
            piece = next((m for m in self.merges if text.startswith(m, position)), text[position])
            ids.append(self.vocab.setdefault(piece, len(self.vocab)))
            position += len(piece)
        return {"input_ids": ids}


def test_split_where_the_empty_answer_parts_from_the_others() -> None:
    # '["' merged (as in SmolLM2's tokenizer): the answers part at the first token
    merged = CharTokenizer(merges=['["'])
    split = empty_answer_split(merged, EN.render_answer)
    assert split == EmptyAnswerSplit(prefix=(), token=merged("[")["input_ids"][0])
    # no merge: '[' is shared, the choice is ']' against what opens a mention
    plain = CharTokenizer()
    split = empty_answer_split(plain, EN.render_answer)
    assert split.prefix == tuple(plain("[")["input_ids"])
    assert split.token == plain("]")["input_ids"][0]


def test_split_needs_a_token_of_its_own() -> None:
    # an empty answer that is a prefix of a non-empty one cannot be biased alone
    with pytest.raises(ValueError, match="prefix of a non-empty one"):
        empty_answer_split(CharTokenizer(), lambda mentions: "[" + ",".join(mentions))


def test_split_with_a_trained_tokenizer(lively_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lively_model_dir)
    split = empty_answer_split(tokenizer, EN.render_answer)
    empty = tokenizer(EN.render_answer([]), add_special_tokens=False)["input_ids"]
    at = len(split.prefix)
    assert list(split.prefix) == empty[:at] and split.token == empty[at]
    for mention in ("Paris", "a", "2009"):
        other = tokenizer(EN.render_answer([mention]), add_special_tokens=False)["input_ids"]
        assert other[:at] == empty[:at] and other[at] != split.token


def test_processor_biases_one_token_at_one_step() -> None:
    torch = pytest.importorskip("torch")
    split = EmptyAnswerSplit(prefix=(5,), token=2)
    processor = EmptyAnswerBias(split, 3.0)
    prompt = torch.tensor([[9, 9, 9], [8, 8, 8]])
    scores = torch.zeros(2, 6)
    # step 0 (the prompt only): the prefix is not there yet
    assert torch.equal(processor(prompt, scores), scores)
    # step 1: row 0 generated the prefix, row 1 did not
    step1 = torch.cat([prompt, torch.tensor([[5], [4]])], dim=1)
    biased = processor(step1, scores)
    assert biased[0, 2] == 3.0 and biased[0].sum() == 3.0 and biased[1].sum() == 0.0
    assert scores.sum() == 0.0, "the scores passed in are left as they were"
    # later steps: nothing
    step2 = torch.cat([step1, torch.tensor([[2], [2]])], dim=1)
    assert torch.equal(processor(step2, scores), scores)
    # no prefix: every row at the first step
    first = EmptyAnswerBias(EmptyAnswerSplit(prefix=(), token=1), -2.5)
    assert first(prompt, scores)[:, 1].tolist() == [-2.5, -2.5]


def first_step_margins(ner: OpenNER, token: int) -> list[float]:
    """Per question of (TEXTS, LABELS), in answer order: the first-step margin of ``token``."""
    from raitner.infer.empty_bias import first_step_margins as margins_of

    return margins_of(ner.backend, ner.predictor.conversations(TEXTS, LABELS), token)


@pytest.mark.parametrize("backend", ["hf", "hf-prefix"])
def test_the_bias_decides_exactly_where_the_margin_says(
    lively_model_dir: Path, backend: str
) -> None:
    """A question's answer starts empty exactly when its first-step margin plus the bias is
    above 0; with a bias between two questions' margins, some answers flip and some do not."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lively_model_dir)
    split = empty_answer_split(tokenizer, EN.render_answer)
    assert split.prefix == (), "the tiny tokenizer has '[]' as one token"

    def flat(ner: OpenNER) -> list[str]:
        return [ner.raw_answers(TEXTS, LABELS)[i][label] for i in range(2) for label in LABELS]

    plain = OpenNER.from_pretrained(lively_model_dir, backend=backend, max_new_tokens=6)
    margins = sorted(set(first_step_margins(plain, split.token)))
    middle = len(margins) // 2
    bias = -(margins[middle - 1] + margins[middle]) / 2
    ner = OpenNER.from_pretrained(
        lively_model_dir, backend=backend, empty_bias=bias, max_new_tokens=6
    )
    assert ner.empty_bias == bias
    answers = flat(ner)
    expected = [m + bias > 0 for m in first_step_margins(plain, split.token)]
    assert 0 < sum(expected) < len(expected)
    starts_empty = [tokenizer(a)["input_ids"][:1] == [split.token] for a in answers]
    assert starts_empty == expected
    # the questions left alone get the plain answers
    for answer, before, flipped in zip(answers, flat(plain), expected, strict=True):
        if not flipped:
            assert answer == before
    # a bias of 0 is plain greedy decoding
    assert flat(
        OpenNER.from_pretrained(lively_model_dir, backend=backend, empty_bias=0.0, max_new_tokens=6)
    ) == flat(plain)


def test_hf_and_prefix_backends_agree_under_a_bias(lively_model_dir: Path) -> None:
    def run(backend: str, bias: float) -> list[dict[str, str]]:
        ner = OpenNER.from_pretrained(
            lively_model_dir, backend=backend, empty_bias=bias, max_new_tokens=10
        )
        return ner.raw_answers(TEXTS, LABELS)

    for bias in (0.7, 1e4):
        assert run("hf", bias) == run("hf-prefix", bias)


def test_bias_and_constraint_together(lively_model_dir: Path) -> None:
    pytest.importorskip("xgrammar")
    from test_constrained import check_answer

    ner = OpenNER.from_pretrained(
        lively_model_dir, backend="hf", constrained=True, empty_bias=1e4, max_new_tokens=30
    )
    answers = [a for row in ner.raw_answers(TEXTS, LABELS) for a in row.values()]
    for answer in answers:
        check_answer(answer)
    assert all(answer == "[]" for answer in answers), answers
    free = ner.with_constrained(False)
    assert free.empty_bias == 1e4 and free.backend.empty_bias == 1e4
    assert free.with_constrained(True).raw_answers(TEXTS, LABELS) == ner.raw_answers(TEXTS, LABELS)


def test_the_model_folder_carries_a_bias(lively_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from test_api import write_model_folder

    base, tokenizer = load(lively_model_dir)
    torch.manual_seed(3)
    tuned = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj"]))
    write_model_folder(tmp_path, lively_model_dir, tuned, tokenizer, inference={"empty_bias": 2})
    assert OpenNER.from_pretrained(tmp_path).empty_bias == 2.0
    assert OpenNER.from_pretrained(tmp_path, empty_bias=0.0).empty_bias == 0.0
    assert OpenNER.from_pretrained(lively_model_dir).empty_bias == 0.0


def test_inference_section_is_checked() -> None:
    assert inference_defaults_of(None) == {} and inference_defaults_of({"format": "x"}) == {}
    assert inference_defaults_of({"inference": {"empty_bias": 1.5}}) == {"empty_bias": 1.5}
    with pytest.raises(ModelFormatError, match="unknown inference setting 'temperature'"):
        inference_defaults_of({"inference": {"temperature": 0.3}})
    with pytest.raises(ModelFormatError, match="must be a number"):
        inference_defaults_of({"inference": {"empty_bias": "high"}})
    with pytest.raises(ModelFormatError, match="must be an object"):
        inference_defaults_of({"inference": [1]})


def test_vllm_refuses_a_bias_before_starting() -> None:
    from raitner.errors import RaitnerError
    from raitner.infer.select import make_backend

    with pytest.raises(RaitnerError, match="hf and hf-prefix backends only"):
        make_backend("vllm", "some/model", None, empty_bias=1.0)
    with pytest.raises(ValueError, match="finite number"):
        make_backend("hf", None, None, empty_bias=float("nan"))


def test_eval_caches_per_bias(lively_model_dir: Path, data_root: Path, tmp_path: Path) -> None:
    from raitner.evaluate.runner import EvalSettings, run_evaluation

    settings = EvalSettings(benchmarks=["crossner_ai"], limit=2, model="lively")
    out = tmp_path / "eval"
    plain = OpenNER.from_pretrained(lively_model_dir, max_new_tokens=6)
    run_evaluation(plain, settings, out, data_root=data_root, show_progress=False)
    cached = (out / "predictions" / "crossner_ai.jsonl").read_text(encoding="utf-8")
    assert "empty_bias" not in json.loads(cached.splitlines()[0])["settings"]

    biased = OpenNER.from_pretrained(lively_model_dir, empty_bias=1e4, max_new_tokens=6)
    report = run_evaluation(biased, settings, out, data_root=data_root, show_progress=False)
    lines = (out / "predictions" / "crossner_ai.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["settings"]["empty_bias"] == 1e4
    assert report["settings"]["empty_bias"] == 1e4
    assert lines != cached.splitlines(), "predictions of another bias are not reused"


def test_cli_takes_the_flag(lively_model_dir: Path, capsys) -> None:
    from raitner.cli import main

    model = ["--model", str(lively_model_dir), "--max-new-tokens", "4", "--show-answers"]
    args = ["extract", TEXTS[0], "--labels", "person,location", "--backend", "hf"]
    assert main([*args, *model, "--empty-bias", "10000"]) == 0
    answers = re.findall(r"^  (?:person|location): (.*)$", capsys.readouterr().err, re.M)
    assert len(answers) == 2 and all(answer.startswith("[") for answer in answers)
    with pytest.raises(SystemExit):
        main([*args, "--empty-bias", "lots"])
    assert "invalid float value: 'lots'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--empty-bias", "inf"])
    assert "expected a finite number, got 'inf'" in capsys.readouterr().err
