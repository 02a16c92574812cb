"""Score only the trained positions through the LM head when training on a CPU.

TRL's ``SFTTrainer`` computes the loss with a fused LM head that never builds the whole
``(batch, length, vocabulary)`` logits. On CUDA/XPU it projects only the positions whose label
is trained; on every other device it projects *every* position and masks the result, because
on compiler back-ends (Neuron) a varying number of positions would recompile the kernel on
each batch. A CPU has no such compiler, so there the full projection is pure waste: prompts,
retrieved examples and padding go through the vocabulary matrix and are thrown away. With a
large vocabulary that matrix dominates the step (Gemma 3: 262K entries × 640, more multiply-adds
per token than the rest of the model), and RA-IT conversations are mostly prompt.

:func:`score_trained_positions_only` makes TRL take its own compact path on a CPU too. The loss,
the gradients and TRL's logged metrics are the same numbers (positions that are not trained
contribute exact zeros either way); ``benchmarks/train_head_positions.py`` measures the time.
It changes one decision of TRL's, looked up by name: when a TRL release no longer has that
name, nothing is changed, a debug line says so, and training runs as TRL does it.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: The function of ``trl.trainer.utils`` whose answer decides compact scoring (TRL ≥ 1.x).
_DECISION = "_use_triton"


def score_trained_positions_only() -> bool:
    """Let TRL's fused LM head score only trained positions on CPU tensors as well.

    Idempotent and process-wide (it only widens TRL's choice for ``cpu`` tensors; other
    devices keep TRL's own answer). Returns whether compact scoring is now in effect.
    """
    try:
        from trl.trainer import utils as trl_utils
    except ImportError:  # pragma: no cover - the train extra is missing
        return False
    decide = getattr(trl_utils, _DECISION, None)
    if decide is None or not callable(decide):
        logger.debug("trl.trainer.utils.%s not found: LM head scores every position", _DECISION)
        return False
    if getattr(decide, "compact_on_cpu", False):
        return True

    def compact_scoring(device: Any) -> bool:
        return getattr(device, "type", None) == "cpu" or bool(decide(device))

    compact_scoring.compact_on_cpu = True  # type: ignore[attr-defined]
    compact_scoring.trl_decision = decide  # type: ignore[attr-defined]
    setattr(trl_utils, _DECISION, compact_scoring)
    return True


def score_every_position() -> None:
    """Undo :func:`score_trained_positions_only` (TRL's own behaviour again)."""
    from trl.trainer import utils as trl_utils

    decide = getattr(trl_utils, _DECISION, None)
    original = getattr(decide, "trl_decision", None)
    if original is not None:
        setattr(trl_utils, _DECISION, original)
