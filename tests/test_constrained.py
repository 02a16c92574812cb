"""Constrained answers (xgrammar): every answer is a JSON list of strings, or a prefix of one
when ``max_new_tokens`` cuts it. The lively random model answers garbage without the
constraint, which makes it a demanding generator to constrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raitner.infer.parse import AnswerStatus, parse_mentions
from raitner.prompts.templates import get_template

pytest.importorskip("torch")
pytest.importorskip("xgrammar")

EN = get_template("ra-it-en-v1")
TEXTS = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。", "Paris " * 12, "x"]
LABELS = ("person", "location", "date")

#: Ways to close a cut list: after ``[`` or an item; inside a string; after a backslash;
#: inside ``\\uXXXX``; after the separator's comma or space.
_CLOSINGS = ("]", '"]', 'n"]', '0"]', '00"]', '000"]', '0000"]', ' ""]', '""]')


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def conversations() -> list[list[dict[str, str]]]:
    return [EN.query_messages(text, label) for text in TEXTS for label in LABELS]


def is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def check_answer(answer: str) -> bool:
    """Assert that ``answer`` is a JSON list of strings (True) or a cut prefix of one (False),
    with the status and mentions the lenient parser must give."""
    parsed = parse_mentions(answer)
    try:
        value = json.loads(answer)
    except ValueError:
        value = None
    if value is not None:
        assert is_string_list(value), answer
        assert answer == answer.strip()
        assert parsed.status is AnswerStatus.OK
        assert parsed.mentions == tuple(dict.fromkeys(value))
        return True
    for closing in _CLOSINGS:
        try:
            completed = json.loads(answer + closing)
        except ValueError:
            continue
        assert is_string_list(completed), answer
        complete_items = completed if closing == "]" else completed[:-1]
        assert parsed.mentions == tuple(dict.fromkeys(complete_items)), answer
        expected = AnswerStatus.REPAIRED if complete_items else AnswerStatus.UNPARSEABLE
        assert parsed.status is expected, answer
        return False
    raise AssertionError(f"neither a JSON list of strings nor a prefix of one: {answer!r}")


@pytest.fixture(scope="module")
def lively(lively_model_dir: Path):
    return load(lively_model_dir)


def constraint_for(model, tokenizer, **kwargs):
    from raitner.infer.backends import HFBackend
    from raitner.infer.constrained import json_list_constraint

    stops = HFBackend(model, tokenizer).stop_token_ids()
    return json_list_constraint(tokenizer, stops, model=model, **kwargs)


def test_free_answers_of_the_lively_model_are_garbage(lively) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    answers = HFBackend(model, tokenizer, batch_size=6).generate(conversations(), 12)
    statuses = [parse_mentions(answer).status for answer in answers]
    assert statuses.count(AnswerStatus.UNPARSEABLE) > len(answers) // 2


@pytest.mark.parametrize("max_new_tokens", [3, 8, 40])
def test_constrained_answers_are_json_lists_or_cut_prefixes(lively, max_new_tokens: int) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    backend = HFBackend(
        model, tokenizer, batch_size=6, logits_processor_factory=constraint_for(model, tokenizer)
    )
    answers = backend.generate(conversations(), max_new_tokens)
    complete = [check_answer(answer) for answer in answers]
    assert any(complete)  # some lists closed (and generation then stopped) ...
    if max_new_tokens == 40:
        assert not all(complete)  # ... and the random model runs some strings past the limit
        assert any(json.loads(a) for a, done in zip(answers, complete, strict=True) if done)


def test_generation_stops_right_after_the_list(lively) -> None:
    import torch
    from transformers import LogitsProcessorList

    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    backend = HFBackend(model, tokenizer)
    stops = backend.stop_token_ids()
    constraint = constraint_for(model, tokenizer)
    stopped = 0
    for conversation in conversations():
        prompt = backend.render(conversation)
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            output = model.generate(
                ids,
                max_new_tokens=40,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList(constraint()),
            )
        new = output[0, ids.shape[1] :].tolist()
        assert not set(new[:-1]) & set(stops)
        if new[-1] in stops:  # it stopped on its own: right after a closed list
            stopped += 1
            assert is_string_list(json.loads(tokenizer.decode(new[:-1])))
        else:
            assert len(new) == 40 and not check_answer(tokenizer.decode(new))
    assert stopped >= len(conversations()) // 2


def test_each_call_gets_fresh_processors(lively) -> None:
    import torch

    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    constraint = constraint_for(model, tokenizer)
    first, second = constraint(), constraint()
    assert len(first) == 1 and first[0] is not second[0]
    backend = HFBackend(model, tokenizer, batch_size=4, logits_processor_factory=constraint)
    asked = conversations()
    assert backend.generate(asked, 10) == backend.generate(asked, 10)
    # a processor follows one generation: it refuses to be reused on another
    (processor,) = first
    scores = torch.zeros(2, constraint.vocab_size)
    processor(torch.ones((2, 5), dtype=torch.long), scores)
    with pytest.raises(RuntimeError, match="rows"):
        processor(torch.ones((3, 6), dtype=torch.long), torch.zeros(3, constraint.vocab_size))
    with pytest.raises(RuntimeError, match="shorter"):
        processor(torch.ones((2, 3), dtype=torch.long), torch.zeros(2, constraint.vocab_size))


def test_the_grammar_is_compiled_once_per_tokenizer(lively) -> None:
    model, tokenizer = lively
    one, two = constraint_for(model, tokenizer), constraint_for(model, tokenizer)
    assert one.compiled_grammar is two.compiled_grammar
    assert one.vocab_size == model.get_output_embeddings().weight.shape[0]


def test_batched_constrained_generation_equals_one_by_one(lively) -> None:
    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    constraint = constraint_for(model, tokenizer)
    asked = conversations()
    batched = HFBackend(model, tokenizer, batch_size=5, logits_processor_factory=constraint)
    single = HFBackend(model, tokenizer, batch_size=1, logits_processor_factory=constraint)
    assert batched.generate(asked, 12) == single.generate(asked, 12)


def test_prefix_reuse_backend_gives_the_same_constrained_answers(lively) -> None:
    prefix_backend = pytest.importorskip("raitner.infer.prefix_backend")
    from raitner.infer.backends import HFBackend

    model, tokenizer = lively
    constraint = constraint_for(model, tokenizer)
    asked = conversations()
    plain = HFBackend(model, tokenizer, batch_size=1, logits_processor_factory=constraint)
    fast = prefix_backend.PrefixReuseHFBackend(
        model, tokenizer, batch_size=5, logits_processor_factory=constraint
    )
    assert fast.generate(asked, 12) == plain.generate(asked, 12)


def test_padded_output_rows_are_never_chosen(lively_model_dir: Path) -> None:
    """A model whose output layer is wider than the tokenizer (padding rows), rigged so that
    free greedy decoding picks padding rows: constrained answers stay lists, whether the grammar
    knows the model's width or only the tokenizer's."""
    from raitner.infer.backends import HFBackend
    from raitner.infer.constrained import json_list_constraint, model_vocab_size

    model, tokenizer = load(lively_model_dir)
    real = len(tokenizer)
    model.resize_token_embeddings(real + 40, mean_resizing=False)
    assert model_vocab_size(model, tokenizer) == real + 40

    def favour_padding(module, inputs, output):
        output[..., real:] += 1000.0
        return output

    model.get_output_embeddings().register_forward_hook(favour_padding)
    asked = conversations()[:6]
    free = HFBackend(model, tokenizer, batch_size=3).generate(asked, 6)
    assert free == [""] * len(asked)  # padding rows decode to nothing
    stops = HFBackend(model, tokenizer).stop_token_ids()
    for vocab_size in (None, real):
        constraint = json_list_constraint(tokenizer, stops, model=model, vocab_size=vocab_size)
        assert constraint.vocab_size == (vocab_size or real + 40)
        backend = HFBackend(model, tokenizer, batch_size=3, logits_processor_factory=constraint)
        for answer in backend.generate(asked, 10):
            assert answer.startswith("[")
            check_answer(answer)


def test_constraint_needs_valid_stop_tokens(lively) -> None:
    from raitner.infer.constrained import json_list_constraint

    model, tokenizer = lively
    with pytest.raises(ValueError, match="stop token"):
        json_list_constraint(tokenizer, [], model=model)
    with pytest.raises(ValueError, match="outside"):
        json_list_constraint(tokenizer, [10**6], model=model)


def test_constraint_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, raitner.infer.constrained, raitner.infer.select; "
        "assert not {'torch', 'transformers', 'xgrammar', 'vllm'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
