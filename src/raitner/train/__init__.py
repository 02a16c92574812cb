"""LoRA instruction tuning (vanilla IT or RA-IT) of any causal LM with TRL.

``from raitner.train import TrainConfig, train``; ``python -m raitner.train --config cfg.json``
(see :mod:`raitner.train.sft` for multi-GPU). Importing this package does not import torch.
"""

from __future__ import annotations

from raitner.train.config import TrainConfig, TrainConfigError
from raitner.train.sft import TrainingError, TrainingRun, prepare, train

__all__ = ["TrainConfig", "TrainConfigError", "TrainingError", "TrainingRun", "prepare", "train"]
