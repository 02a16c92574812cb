"""Choosing a generation backend by name, with or without constrained answers.

=============  ==========================================================================
``hf``         :class:`~raitner.infer.backends.HFBackend`: plain ``model.generate``, the
               reference path.
``hf-prefix``  :class:`~raitner.infer.prefix_backend.PrefixReuseHFBackend`: the same greedy
               answers, with the prompt prefix that a text's questions share computed once
               (the default).
``vllm``       :class:`~raitner.infer.vllm_backend.VLLMBackend`: vLLM's engine on a CUDA GPU
               (``pip install 'raitner[vllm]'``); it loads the model itself, from a path.
=============  ==========================================================================

``constrained=True`` restricts every answer to a JSON list of strings: the Hugging Face
backends get the xgrammar logits processors of :mod:`raitner.infer.constrained`, vLLM its own
structured outputs with the same schema. ``empty_bias`` (the Hugging Face backends only) adds
a bias to the empty answer ``[]`` where it parts from non-empty ones
(:mod:`raitner.infer.empty_bias`); with both, the bias comes before the constraint's mask.

Nothing here imports torch, transformers, xgrammar or vLLM until a backend is built.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "FALLBACKS",
    "backend_name",
    "make_backend",
    "with_constrained",
]

logger = logging.getLogger(__name__)

#: Backend names, as ``OpenNER.from_pretrained(backend=...)`` and ``--backend`` take them.
BACKENDS = ("hf", "hf-prefix", "vllm")
#: The backend used when none is named.
DEFAULT_BACKEND = "hf-prefix"
#: Backend asked for → the one :func:`make_backend` builds instead for a model it cannot
#: serve (``hf-prefix`` on a model with recurrent or chunked-attention layers).
FALLBACKS = {"hf-prefix": "hf"}


def check_backend(name: str | None) -> str:
    """``name``, or :data:`DEFAULT_BACKEND` for None; ValueError for an unknown name."""
    if name is None:
        return DEFAULT_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return name


def backend_name(backend: Any, requested: str | None = None) -> str | None:
    """The name (one of :data:`BACKENDS`) of the backend object ``backend``: its class's
    ``name``; ``requested`` for a backend of another kind (one given to ``OpenNER``).

    This is what ran, which differs from the name asked for when :func:`make_backend` fell
    back (:data:`FALLBACKS`).
    """
    name = getattr(type(backend), "name", None)
    return name if isinstance(name, str) and name in BACKENDS else requested


def make_backend(
    name: str | None,
    model: Any,
    tokenizer: Any,
    *,
    batch_size: int = 16,
    stop_tokens: Sequence[str] = (),
    constrained: bool = False,
    empty_bias: float = 0.0,
    render_answer: Callable[[Sequence[str]], str] | None = None,
    close_lists: bool = False,
    **vllm_options: Any,
) -> Any:
    """A :class:`~raitner.infer.backends.GenerationBackend` called ``name`` (None: default).

    For ``hf`` and ``hf-prefix``, ``model`` and ``tokenizer`` are a loaded transformers model
    (optionally PEFT-wrapped) and its tokenizer. For ``vllm``, ``model`` is what
    ``VLLMBackend.from_pretrained`` loads (a raitner model folder, a model id or folder, None
    for the default), or an engine already started (a ``vllm.LLM``, used with ``tokenizer``);
    ``vllm_options`` go to vLLM (``dtype``, ``gpu_memory_utilization`` …) and ``batch_size``
    does not apply (vLLM schedules its own batches).

    ``empty_bias`` is added to the score of the empty answer's token where it parts from
    non-empty answers rendered by ``render_answer`` (default: the RA-IT templates'
    ``Template.render_answer``); see :mod:`raitner.infer.empty_bias`. vLLM cannot apply it:
    a non-zero bias with ``name="vllm"`` is an error.

    ``close_lists`` ends a list answer at its first repeated item and closes one the token
    limit cut after its last complete item (:mod:`raitner.infer.list_ending`); the Hugging
    Face backends stop such a row early, vLLM finishes its replies the same way afterwards.
    """
    name = check_backend(name)
    ending = _list_ending(close_lists)
    empty_bias = _checked_bias(empty_bias)
    if name == "vllm":
        if empty_bias:
            from raitner.errors import RaitnerError

            raise RaitnerError(
                f"an empty-answer bias ({empty_bias:g}) is applied by the hf and hf-prefix "
                "backends only; use one of them, or set the bias to 0 to run on vLLM without it"
            )
        from raitner.infer.vllm_backend import VLLMBackend

        if model is None or isinstance(model, (str, os.PathLike)):
            engine = VLLMBackend.from_pretrained(
                model, constrained=constrained, stop_tokens=stop_tokens, **vllm_options
            )
            engine.reply_ending = ending
            return engine
        return VLLMBackend(
            model,
            tokenizer,
            stop_tokens=stop_tokens,
            constrained=constrained,
            reply_ending=ending,
        )
    if vllm_options:
        raise TypeError(f"options for vLLM given to backend {name!r}: {sorted(vllm_options)}")
    from raitner.infer.backends import HFBackend
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    if name == "hf-prefix" and not PrefixReuseHFBackend.supports(model):
        # recurrent or chunked-attention layers: their caches cannot be shared by prefix
        name = FALLBACKS[name]
        logger.info("the model has layers without a key/value cache: using backend %r", name)
    backend_class: type = PrefixReuseHFBackend if name == "hf-prefix" else HFBackend
    answer = render_answer or _template_answer
    backend = backend_class(
        model,
        tokenizer,
        batch_size=batch_size,
        stop_tokens=stop_tokens,
        logits_processor_factory=_processors(
            model, tokenizer, stop_tokens, constrained, empty_bias, answer
        ),
        reply_ending=ending,
    )
    # what with_constrained needs to rebuild the factory for the other decoding
    backend.constrained, backend.empty_bias, backend.answer_renderer = (
        bool(constrained),
        empty_bias,
        answer,
    )
    return backend


def _list_ending(close_lists: bool) -> Any:
    if not isinstance(close_lists, bool):
        raise ValueError(f"close_lists must be True or False, got {close_lists!r}")
    if not close_lists:
        return None
    from raitner.infer.list_ending import ListEnding

    return ListEnding()


def _checked_bias(bias: float) -> float:
    import math

    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
        raise ValueError(f"empty_bias must be a finite number, got {bias!r}")
    return float(bias)


def _template_answer(mentions: Sequence[str]) -> str:
    from raitner.prompts.templates import default_template_id, get_template

    return get_template(default_template_id("en")).render_answer(mentions)


def _processors(
    model: Any,
    tokenizer: Any,
    stop_tokens: Sequence[str],
    constrained: bool,
    empty_bias: float,
    render_answer: Callable[[Sequence[str]], str],
) -> Callable[[], list[Any]] | None:
    """The HF backends' ``logits_processor_factory`` for these decoding settings (None: plain
    greedy decoding). The bias comes first, so the constraint's mask has the last word."""
    factories = []
    if empty_bias:
        from raitner.infer.empty_bias import empty_bias_factory

        factories.append(empty_bias_factory(tokenizer, render_answer, empty_bias))
    if constrained:
        factories.append(_constraint(model, tokenizer, stop_tokens))
    if not factories:
        return None
    if len(factories) == 1:
        return factories[0]
    return lambda: [processor for factory in factories for processor in factory()]


def _constraint(model: Any, tokenizer: Any, stop_tokens: Sequence[str]) -> Any:
    from raitner.infer.backends import HFBackend
    from raitner.infer.constrained import json_list_constraint

    # The same stop tokens the backend stops on: a closed list may end on any of them.
    stops = HFBackend(model, tokenizer, stop_tokens=stop_tokens).stop_token_ids()
    return json_list_constraint(tokenizer, stops, model=model)


def with_constrained(backend: Any, constrained: bool) -> Any:
    """A copy of ``backend`` (one made by :func:`make_backend`) that answers with or without
    the constraint, sharing its model (or vLLM engine); ``backend`` itself when it already
    does. Used to compare free and constrained decoding without loading a model twice.

    A backend of another kind can take part by having a ``with_constrained(bool)`` method.
    """
    own = getattr(backend, "with_constrained", None)
    if callable(own):
        return own(constrained)
    if hasattr(backend, "logits_processor_factory"):  # the Hugging Face backends
        if getattr(backend, "constrained", backend.logits_processor_factory is not None) == (
            constrained
        ):
            return backend
        variant = copy.copy(backend)
        variant.constrained = constrained
        variant.logits_processor_factory = _processors(
            backend.model,
            backend.tokenizer,
            backend.stop_tokens,
            constrained,
            getattr(backend, "empty_bias", 0.0),
            getattr(backend, "answer_renderer", _template_answer),
        )
        if hasattr(variant, "stats"):  # work counters belong to one backend object
            variant.stats = type(backend.stats)()
        return variant
    if hasattr(backend, "llm") and hasattr(backend, "constrained"):  # VLLMBackend
        if backend.constrained == constrained:
            return backend
        from raitner.infer import vllm_backend

        variant = copy.copy(backend)
        variant.constrained = constrained
        variant._structured = (
            vllm_backend.structured_output_kwargs(vllm_backend.ANSWER_SCHEMA) if constrained else {}
        )
        variant._workdir = None  # the original owns (and removes) a merged model's folder
        return variant
    raise TypeError(f"cannot switch constrained decoding on a {type(backend).__name__}")
