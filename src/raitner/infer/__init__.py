"""Inference: generation backends, lenient answer parsing, alignment to character offsets,
chunking of long texts, and the predictor that ties them together.

Importing this package does not import torch or transformers; :class:`HFBackend` imports them
when it generates.
"""

from __future__ import annotations

from raitner.infer.align import Alignment, align_mentions, flatten, remove_subsumed
from raitner.infer.backends import (
    DEFAULT_MAX_NEW_TOKENS,
    END_OF_TURN_TOKENS,
    GenerationBackend,
    HFBackend,
)
from raitner.infer.chunking import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    Window,
    approximate_token_spans,
    merge_window_entities,
    split_text,
)
from raitner.infer.parse import AnswerStatus, LenientAnswer, parse_mentions
from raitner.infer.predictor import Predictor, QueryAnswer, TextPrediction, load_pool
from raitner.infer.select import BACKENDS, DEFAULT_BACKEND, make_backend

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_MAX_NEW_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP_TOKENS",
    "END_OF_TURN_TOKENS",
    "Alignment",
    "AnswerStatus",
    "GenerationBackend",
    "HFBackend",
    "LenientAnswer",
    "Predictor",
    "QueryAnswer",
    "TextPrediction",
    "Window",
    "align_mentions",
    "approximate_token_spans",
    "flatten",
    "load_pool",
    "make_backend",
    "merge_window_entities",
    "parse_mentions",
    "remove_subsumed",
    "split_text",
]
