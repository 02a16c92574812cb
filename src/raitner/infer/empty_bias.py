"""A bias for (or against) the empty answer: trading recall for precision at decoding time.

Every question asks for the mentions of one type, and most types are absent from most texts
(on the seven English zero-shot benchmarks, about four questions in five have an empty gold
list). A small model that answers ``["…"]`` where it should answer ``[]`` loses precision, and
generation gives no per-mention score to threshold on afterwards. What it does give is the
choice between the two answers at the step where they part: for SmolLM2's tokenizer, the
first answer token is ``[`` (then ``]``) for an empty list and ``["`` for a non-empty one.

:class:`EmptyAnswerBias` adds ``bias`` to the score of the empty answer's token at that step,
and only there: a positive bias makes the model answer ``[]`` more often (fewer, surer
mentions), a negative one less often; 0 leaves greedy decoding as it is. Everything after that
step is plain greedy decoding. It is the decoding-time analogue of the confidence threshold of
span-scoring NER models (GLiNER's ``threshold``), and like any threshold it should be chosen
on data other than the test set (``tools/tune_empty_bias.py``; ``docs/RESULTS.md`` has such a
choice for the shipped default, and what it did on the test benchmarks).

:func:`empty_answer_split` finds where the empty answer parts from non-empty ones for a
tokenizer and template. Nothing here imports torch until a processor is called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EmptyAnswerBias",
    "EmptyAnswerSplit",
    "empty_answer_split",
    "empty_bias_factory",
    "first_step_margins",
]

#: Non-empty answers whose tokens the empty answer's are compared with: mentions that start
#: with a letter (either case), a digit, a space or punctuation.
_PROBE_MENTIONS = ("x", "A", "1", " a", "(", "'s")


@dataclass(frozen=True)
class EmptyAnswerSplit:
    """Where the empty answer parts from every non-empty one: after the answer tokens
    ``prefix`` (shared by both), the empty answer continues with ``token``."""

    prefix: tuple[int, ...]
    token: int


def empty_answer_split(
    tokenizer: Any, render_answer: Callable[[Sequence[str]], str]
) -> EmptyAnswerSplit:
    """The step at which ``render_answer([])`` and non-empty answers first differ.

    ``render_answer`` is the template's (``Template.render_answer``); the answers are tokenized
    on their own, as they follow the assistant header of the chat template. ValueError when the
    empty answer's tokens are a prefix of a non-empty answer's (no token to bias).
    """

    def tokens(answer: str) -> list[int]:
        return list(tokenizer(answer, add_special_tokens=False)["input_ids"])

    empty = tokens(render_answer([]))
    if not empty:
        raise ValueError("the empty answer renders to no tokens")
    parting = len(empty)
    for mention in _PROBE_MENTIONS:
        other = tokens(render_answer([mention]))
        common = 0
        while common < min(len(empty), len(other)) and empty[common] == other[common]:
            common += 1
        parting = min(parting, common)
    if parting == len(empty):
        raise ValueError(
            f"the empty answer {render_answer([])!r} is a prefix of a non-empty one under this "
            "tokenizer: no single token tells them apart"
        )
    return EmptyAnswerSplit(prefix=tuple(empty[:parting]), token=empty[parting])


class EmptyAnswerBias:
    """HF-style logits processor ``(input_ids, scores) -> scores`` that adds ``bias`` to the
    score of ``split.token`` at the step where the answer so far equals ``split.prefix``.

    The first call records the prompt length (every row of a call shares it: the backends pad
    on the left); later calls count the generated tokens from there. One processor serves one
    generation call, like the constrained-decoding processors (create them through
    :func:`empty_bias_factory`).
    """

    def __init__(self, split: EmptyAnswerSplit, bias: float) -> None:
        self.split = split
        self.bias = float(bias)
        self._prompt_length: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        length = int(input_ids.shape[1])
        if self._prompt_length is None:
            self._prompt_length = length
        step = length - self._prompt_length
        prefix = self.split.prefix
        if step != len(prefix) or self.bias == 0.0:
            return scores
        scores = scores.clone()
        if not prefix:
            scores[:, self.split.token] += self.bias
            return scores
        import torch

        expected = torch.tensor(prefix, dtype=input_ids.dtype, device=input_ids.device)
        rows = (input_ids[:, self._prompt_length :] == expected).all(dim=1)
        scores[rows, self.split.token] += self.bias
        return scores


def empty_bias_factory(
    tokenizer: Any, render_answer: Callable[[Sequence[str]], str], bias: float
) -> Callable[[], list[EmptyAnswerBias]]:
    """A factory of fresh ``[EmptyAnswerBias]`` lists for the HF backends'
    ``logits_processor_factory`` (the split is computed once, here)."""
    split = empty_answer_split(tokenizer, render_answer)
    return lambda: [EmptyAnswerBias(split, bias)]


def first_step_margins(backend: Any, conversations: Sequence[Any], token: int) -> list[float]:
    """Per conversation: at the first answer step, the score of ``token`` minus the best other
    score, from one forward pass over the prompt (``backend``: an HF backend, whose ``render``,
    ``tokenizer`` and ``model`` are used). Decoding with a bias ``b`` on ``token`` at that step
    picks it exactly where margin + b > 0."""
    import torch

    margins = []
    with torch.inference_mode():
        for conversation in conversations:
            prompt = backend.render(conversation)
            ids = backend.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
            logits = backend.model(input_ids=ids["input_ids"]).logits[0, -1].float()
            chosen = logits[token].item()
            logits[token] = -float("inf")
            margins.append(chosen - logits.max().item())
    return margins
