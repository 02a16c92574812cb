"""``TrainConfig``: every setting of a LoRA training run, with the paper's defaults.

The RA-IT paper (arXiv 2406.17305, appendix C.2) trains "for 3 epochs with a batch size of 8 and
a learning-rate of 5e-5. A cosine scheduler is adopted", with LoRA. What the paper leaves open
comes from the authors' published training script (``train_skyner_RA_IT.sh`` in
Emma1066/Retrieval-Augmented-IT-OpenNER: LLaMA-Factory with ``--lora_target all``,
``--cutoff_len 2048``, ``--per_device_train_batch_size 8``, ``--warmup_ratio 0.03``) and from the
LLaMA-Factory defaults that script relied on (LoRA rank 8, alpha = 2 × rank = 16, dropout 0).
Left out of theirs: the 10 % validation split with best-checkpoint selection (``--val_size 0.1
--load_best_model_at_end``); we train on the whole dataset.

Every field carries ``metadata["help"]`` (and ``"choices"`` where the values are closed), so a
command line can be generated from the dataclass (:func:`add_config_arguments`). Importing this
module does not import torch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from raitner.errors import RaitnerError

#: The effective batch size of the paper (per device × accumulation × devices).
PAPER_BATCH_SIZE = 8
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LONG_SAMPLE_POLICIES = ("truncate", "drop", "error")
SWITCHES = ("auto", "true", "false")


class TrainConfigError(RaitnerError, ValueError):
    """A training configuration (file, override or field value) is invalid."""


@dataclass
class TrainConfig:
    datasets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "training set(s) written by `raitner build` (messages JSONL, each with its "
            ".stats.json beside it); several are concatenated"
        },
    )
    output_dir: str = field(
        default="",
        metadata={"help": "folder for checkpoints and the trained adapter; a run in it is resumed"},
    )
    base_model: str = field(
        default="default",
        metadata={
            "help": "model to fine-tune: 'default' (the embedded SmolLM2-135M-Instruct), "
            "'gemma3-270m' (the embedded Gemma 3 270M base model, raitner[gemma]), a Hugging "
            "Face id or a local folder"
        },
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "epochs (paper: 3)"})
    max_steps: int = field(
        default=-1, metadata={"help": "stop after this many optimizer steps (-1: run all epochs)"}
    )
    per_device_train_batch_size: int = field(
        default=8,
        metadata={
            "help": "samples per device and step; effective batch = this × accumulation × "
            "devices (paper: 8)"
        },
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata={"help": "steps whose gradients are summed before an update"}
    )
    learning_rate: float = field(
        default=5e-5, metadata={"help": "peak learning rate (paper: 5e-5)"}
    )
    lr_scheduler_type: str = field(
        default="cosine", metadata={"help": "learning-rate schedule (paper: cosine)"}
    )
    warmup_ratio: float = field(
        default=0.03,
        metadata={"help": "share of the steps spent warming up (authors' script: 0.03)"},
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (authors' LLaMA-Factory: 8)"})
    lora_alpha: int = field(
        default=16, metadata={"help": "LoRA scaling alpha (authors' LLaMA-Factory: 2 × rank)"}
    )
    lora_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the LoRA input (authors' LLaMA-Factory: 0)"}
    )
    lora_target_modules: str = field(
        default="all-linear",
        metadata={
            "help": "modules that get LoRA: 'all-linear' (every linear layer but the output "
            "head, as the authors' 'all') or comma-separated names, e.g. 'q_proj,v_proj'"
        },
    )
    max_seq_length: int = field(
        default=2048,
        metadata={
            "help": "longest training sequence in tokens (authors' cutoff: 2048); how many "
            "samples are longer is always reported"
        },
    )
    long_samples: str = field(
        default="truncate",
        metadata={
            "help": "what happens to longer samples: 'truncate' (keep the start; answers past "
            "the limit are not trained), 'drop' them, or stop with an 'error'",
            "choices": list(LONG_SAMPLE_POLICIES),
        },
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "'auto' (bf16 on a GPU that supports it, else fp32), 'bf16', 'fp16' "
            "(mixed precision over fp32 weights) or 'fp32'",
            "choices": list(PRECISIONS),
        },
    )
    gradient_checkpointing: str = field(
        default="auto",
        metadata={
            "help": "recompute activations in the backward pass (less memory, ~20%% slower): "
            "'auto' (on when training on a GPU), 'true' or 'false'",
            "choices": list(SWITCHES),
        },
    )
    pad_to_multiple_of: int = field(
        default=64,
        metadata={
            "help": "pad each batch to a multiple of this many tokens (0: to its longest "
            "sample); fewer distinct shapes keeps CPU kernel caches and allocator use bounded"
        },
    )
    group_by_length: str = field(
        default="false",
        metadata={
            "help": "'true': batch samples of similar length together (less padding, faster on "
            "CPU; the order is still seeded) — the authors' set-up did not; 'false'",
            "choices": ["true", "false"],
        },
    )
    seed: int = field(default=42, metadata={"help": "seed of LoRA initialisation and data order"})
    save_steps: int = field(
        default=100, metadata={"help": "write a resumable checkpoint every this many steps"}
    )
    save_total_limit: int = field(
        default=2, metadata={"help": "checkpoints kept (older ones are deleted; 0 keeps all)"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log the loss every this many steps"})
    resume: str = field(
        default="auto",
        metadata={
            "help": "'auto': continue from the last checkpoint in output_dir if there is one; "
            "'never': start anew (refused if output_dir has checkpoints); or a checkpoint folder"
        },
    )
    report_to: str = field(
        default="none",
        metadata={"help": "experiment trackers for the trainer's logs: 'none', 'tensorboard', …"},
    )
    dataset_num_proc: int = field(
        default=0, metadata={"help": "processes that tokenize the data (0: in this process)"}
    )

    def __post_init__(self) -> None:
        for spec in fields(self):
            setattr(self, spec.name, _coerce(spec.name, spec.type, getattr(self, spec.name)))
            choices = spec.metadata.get("choices")
            value = getattr(self, spec.name)
            if choices and value not in choices:
                raise TrainConfigError(
                    f"{spec.name} must be one of {', '.join(choices)}; got {value!r}"
                )
        positive = (
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "lora_r",
            "max_seq_length",
            "save_steps",
            "logging_steps",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise TrainConfigError(f"{name} must be > 0; got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise TrainConfigError(f"learning_rate must be > 0; got {self.learning_rate}")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainConfigError(f"warmup_ratio must be in [0, 1); got {self.warmup_ratio}")
        if not 0 <= self.lora_dropout < 1:
            raise TrainConfigError(f"lora_dropout must be in [0, 1); got {self.lora_dropout}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise TrainConfigError(f"max_steps must be -1 or > 0; got {self.max_steps}")
        if self.max_steps == -1 and self.num_train_epochs <= 0:
            raise TrainConfigError(f"num_train_epochs must be > 0; got {self.num_train_epochs}")
        if self.save_total_limit < 0 or self.dataset_num_proc < 0:
            raise TrainConfigError("save_total_limit and dataset_num_proc must be >= 0")
        if self.pad_to_multiple_of < 0:
            raise TrainConfigError(
                f"pad_to_multiple_of must be >= 0 (0: no rounding); got {self.pad_to_multiple_of}"
            )

    def validate(self) -> None:
        """What a run needs beyond valid values: data to train on and a place to write."""
        if not self.datasets:
            raise TrainConfigError("no training dataset given (datasets)")
        if not self.output_dir:
            raise TrainConfigError("no output_dir given")

    @property
    def lora_targets(self) -> str | list[str]:
        """``lora_target_modules`` as PEFT takes it."""
        if self.lora_target_modules == "all-linear":
            return "all-linear"
        return [name.strip() for name in self.lora_target_modules.split(",") if name.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [spec.name for spec in fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str | None = None) -> TrainConfig:
        """Build from a mapping; ``-`` in keys is read as ``_``; unknown keys are an error."""
        normalised = {str(key).replace("-", "_"): value for key, value in data.items()}
        known = cls.field_names()
        unknown = sorted(set(normalised) - set(known))
        if unknown:
            where = f"{source}: " if source else ""
            raise TrainConfigError(
                f"{where}unknown training setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(known)}"
            )
        try:
            return cls(**normalised)
        except TrainConfigError as error:
            if source:
                raise TrainConfigError(f"{source}: {error}") from None
            raise

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a JSON or YAML mapping, then apply ``overrides`` (``None`` values are ignored,
        as a command line passes the flags that were not given)."""
        path = Path(path)
        data = read_config_file(path)
        data.update({k.replace("-", "_"): v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, source=str(path))


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TrainConfigError(f"cannot read the training config {path}: {error}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise TrainConfigError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write it as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise TrainConfigError(f"{path}: not valid YAML: {error}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise TrainConfigError(f"{path}: not valid JSON: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TrainConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


_SCALARS = {"int": int, "float": float, "str": str}


def _coerce(name: str, annotation: str, value: Any) -> Any:
    if annotation == "list[str]":
        if isinstance(value, str | Path):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str | Path) for v in value):
            raise TrainConfigError(f"{name} must be a list of paths; got {value!r}")
        return [str(v) for v in value]
    kind = _SCALARS[annotation]
    if kind is str:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, bool):  # a switch given as JSON/YAML true/false
            return str(value).lower()
        if not isinstance(value, str):
            raise TrainConfigError(f"{name} must be a string; got {value!r}")
        return value
    if isinstance(value, bool):
        raise TrainConfigError(f"{name} must be a number; got {value!r}")
    try:
        # YAML reads 5e-5 (no dot) as a string; numbers from a command line are strings too.
        converted = kind(float(value)) if kind is int and isinstance(value, str) else kind(value)
    except (TypeError, ValueError):
        raise TrainConfigError(f"{name} must be a number; got {value!r}") from None
    if kind is int and isinstance(value, float | str) and float(value) != converted:
        raise TrainConfigError(f"{name} must be a whole number; got {value!r}")
    return converted


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per ``TrainConfig`` field, with its help text; flags left out are absent
    from the parsed namespace, so they do not override a config file."""
    defaults = TrainConfig()
    for spec in fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        default = getattr(defaults, spec.name)
        help_text = f"{spec.metadata['help']} (default: {default!r})"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text}
        if spec.type == "list[str]":
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "PATH"
        else:
            kwargs["type"] = _SCALARS[spec.type]
        if "choices" in spec.metadata:
            kwargs["choices"] = spec.metadata["choices"]
        parser.add_argument(flag, dest=spec.name, **kwargs)


def config_from_namespace(
    namespace: argparse.Namespace, config_file: str | None = None
) -> TrainConfig:
    """The config file (if any) with every flag given on the command line applied over it."""
    overrides = {
        name: getattr(namespace, name)
        for name in TrainConfig.field_names()
        if hasattr(namespace, name)
    }
    if config_file:
        return TrainConfig.from_file(config_file, **overrides)
    return TrainConfig.from_dict(overrides)
