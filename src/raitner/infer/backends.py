"""Text generation behind one small protocol, and the reference Hugging Face backend.

A backend turns conversations (lists of ``{"role", "content"}`` messages ending on a user turn)
into the assistant's next reply, greedily. The predictor knows nothing else about it, so faster
backends (prefix reuse across the questions of one text, vLLM) plug in behind the same
``generate`` and are checked against :class:`HFBackend`, the plain reference path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from raitner.infer.list_ending import finish_reply
from raitner.prompts.templates import Message

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "END_OF_TURN_TOKENS", "GenerationBackend", "HFBackend"]

#: Room for the answer to one question: a JSON list of a few dozen mentions.
DEFAULT_MAX_NEW_TOKENS = 256

#: End-of-turn markers of common chat templates; those the tokenizer knows stop generation.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


@runtime_checkable
class GenerationBackend(Protocol):
    """Greedy replies to conversations, one string per conversation, in order."""

    def generate(
        self, conversations: Sequence[Sequence[Message]], max_new_tokens: int
    ) -> list[str]: ...


class HFBackend:
    """``model.generate`` over a transformers causal LM (optionally PEFT-wrapped).

    Each conversation is rendered with the tokenizer's chat template
    (``add_generation_prompt=True``) and tokenized without truncation. Conversations are
    generated ``batch_size`` at a time, longest first (less padding), left-padded, greedily;
    generation of a row stops at the model's end-of-sequence token(s), the tokenizer's, any
    end-of-turn marker in :data:`END_OF_TURN_TOKENS` the tokenizer has as a special token, and
    ``stop_tokens``. Only the new tokens are decoded, special tokens skipped.

    ``logits_processor_factory``, when given, is called once per batch and returns fresh
    HF-style logits processors ``(input_ids, scores) -> scores``, passed to ``model.generate``
    as ``logits_processor=LogitsProcessorList(...)`` (e.g. the JSON-list constraint of
    :mod:`raitner.infer.constrained`; fresh because such processors keep per-row state).

    ``reply_ending`` (a :class:`raitner.infer.list_ending.ReplyEnding`, e.g. the
    ``close_lists`` option's) stops a row once it decides the row's reply, through a
    ``model.generate`` stopping criterion, and finishes the replies generation ended.
    """

    #: the name :func:`raitner.infer.select.make_backend` knows this backend by
    name: ClassVar[str] = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 16,
        stop_tokens: Sequence[str] = (),
        logits_processor_factory: Callable[[], Sequence[Any]] | None = None,
        reply_ending: Any = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        #: further tokens that end a reply (e.g. the end-of-turn token a model was trained on)
        self.stop_tokens = tuple(stop_tokens)
        #: returns fresh logits processors for one ``model.generate`` call (None: unconstrained)
        self.logits_processor_factory = logits_processor_factory
        #: ends replies early or at the end (None: only stop tokens and the token limit)
        self.reply_ending = reply_ending

    def render(self, conversation: Sequence[Message]) -> str:
        """The prompt text of one conversation, ready for the assistant's reply."""
        return self.tokenizer.apply_chat_template(
            list(conversation), tokenize=False, add_generation_prompt=True
        )

    def stop_token_ids(self) -> list[int]:
        ids: list[int] = []
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(configured, int):
            ids.append(configured)
        elif configured is not None:
            ids.extend(configured)
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        special = set(self.tokenizer.all_special_tokens) | set(self.tokenizer.get_added_vocab())
        ids.extend(
            self.tokenizer.convert_tokens_to_ids(token)
            for token in END_OF_TURN_TOKENS
            if token in special
        )
        vocabulary = self.tokenizer.get_vocab()
        for token in self.stop_tokens:
            if token not in vocabulary:
                raise ValueError(f"stop token {token!r} is not in the tokenizer's vocabulary")
            ids.append(vocabulary[token])
        return list(dict.fromkeys(ids))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the tokens of ``text`` (for chunking)."""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [(int(start), int(end)) for start, end in encoded["offset_mapping"]]

    def generate(
        self, conversations: Sequence[Sequence[Message]], max_new_tokens: int
    ) -> list[str]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        if not conversations:
            return []
        prompts = [self.render(conversation) for conversation in conversations]
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        stops = self.stop_token_ids()
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = stops[0] if stops else 0
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=stops or None,
            pad_token_id=pad_id,
        )
        device = _model_device(self.model)
        replies: list[str] = [""] * len(prompts)
        was_training = getattr(self.model, "training", False)
        self.model.eval()
        try:
            for offset in range(0, len(order), self.batch_size):
                rows = order[offset : offset + self.batch_size]
                width = max(len(encoded[i]) for i in rows)
                input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
                for row, index in enumerate(rows):
                    ids = encoded[index]
                    input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                    attention_mask[row, width - len(ids) :] = 1
                extra = {}
                if self.logits_processor_factory is not None:
                    processors = self.logits_processor_factory()
                    extra["logits_processor"] = LogitsProcessorList(processors)
                if self.reply_ending is not None:
                    extra["stopping_criteria"] = StoppingCriteriaList(
                        [_EndingCriterion(self, width, stops)]
                    )
                with torch.inference_mode():
                    output = self.model.generate(
                        input_ids=input_ids.to(device),
                        attention_mask=attention_mask.to(device),
                        generation_config=config,
                        **extra,
                    )
                new_tokens = output[:, width:].tolist()
                for row, index in enumerate(rows):
                    replies[index] = finish_reply(
                        self.reply_ending,
                        self.tokenizer.decode(
                            _until_stop(new_tokens[row], stops), skip_special_tokens=True
                        ),
                    )
        finally:
            if was_training:
                self.model.train()
        return replies


class _EndingCriterion:
    """A ``model.generate`` stopping criterion: a row is done once the backend's
    ``reply_ending`` decides its reply from the tokens generated so far. (Rows done by it are
    padded by ``generate``; :func:`finish_reply` reads the reply back from the decided part.)"""

    def __init__(self, backend: HFBackend, prompt_width: int, stops: Sequence[int]) -> None:
        self.backend = backend
        self.prompt_width = prompt_width
        self.stops = stops

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        ending = self.backend.reply_ending
        decode = self.backend.tokenizer.decode
        done = [
            ending.early(decode(_until_stop(row, self.stops), skip_special_tokens=True)) is not None
            for row in input_ids[:, self.prompt_width :].tolist()
        ]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _until_stop(tokens: list[int], stops: Sequence[int]) -> list[int]:
    """The tokens before the first stop token (padding after it included)."""
    stop_set = set(stops)
    for position, token in enumerate(tokens):
        if token in stop_set:
            return tokens[:position]
    return tokens


def _model_device(model: Any) -> Any:
    device = getattr(model, "device", None)
    if device is not None:
        return device
    return next(model.parameters()).device
