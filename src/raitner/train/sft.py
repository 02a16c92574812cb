"""LoRA instruction tuning on ``raitner build`` datasets with TRL's ``SFTTrainer``.

The loss is on every assistant turn and nowhere else (TRL ``assistant_only_loss=True`` over a
chat template with ``{% generation %}`` markers; see :mod:`raitner.train.chat_template`). What
the run writes into ``output_dir``:

* ``checkpoint-N/``: resumable checkpoints (adapter, optimizer, scheduler, RNG, trainer state);
  a run started again on the same folder continues from the last complete one;
* ``raitner-run.json``: the settings of the run in the folder, so a resume with different
  settings is refused instead of silently mixing two runs;
* at the end, renamed into place file by file with ``raitner.json`` last (its presence means the
  folder holds a finished model): the LoRA adapter (``adapter_model.safetensors``,
  ``adapter_config.json``), the tokenizer with the chat template it was trained with,
  ``trainer_state.json`` (the loss log), ``README.md`` (model card) and ``raitner.json``.

Several GPUs: ``accelerate launch`` (or ``torchrun``) runs the same module once per device and the
trainer wraps the model in DDP (tested with two CPU processes; FSDP/DeepSpeed set up through
``accelerate config`` are left to the trainer and untested here)::

    accelerate launch --num_processes 4 -m raitner.train --config train.json
    python -m raitner.train --config train.json --max-steps 20      # one device (or CPU)

The effective batch is ``per_device_train_batch_size × gradient_accumulation_steps × processes``;
keep it at the paper's 8 (e.g. 2 × 1 × 4 above) unless you mean to change it.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner.errors import DataFormatError, RaitnerError
from raitner.models import (
    MODEL_CONFIG_FILE,
    MODEL_FORMAT,
    embedded_llm,
    quiet_peft_wrapping,
    resolve_model,
)
from raitner.train.chat_template import (
    TrainingTemplate,
    end_of_turn_token,
    first_mismatch,
    render,
    training_chat_template,
)
from raitner.train.config import PAPER_BATCH_SIZE, TrainConfig, TrainConfigError
from raitner.train.lm_head import score_trained_positions_only

logger = logging.getLogger(__name__)

RUN_FORMAT = "raitner-run-v1"
MODEL_INFO = MODEL_CONFIG_FILE
RUN_INFO = "raitner-run.json"
#: Settings that may change when a run is resumed: they do not change what is learned.
RESUMABLE_CHANGES = frozenset(
    {
        "datasets",  # compared by content instead
        "output_dir",
        "resume",
        "logging_steps",
        "save_steps",
        "save_total_limit",
        "report_to",
        "dataset_num_proc",
        "gradient_checkpointing",
    }
)
_ROLES = ("system", "user", "assistant")
_FINAL_TMP = ".final.tmp"


class TrainingError(RaitnerError):
    """A training run cannot start or continue; the message says why and what to do."""


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class DatasetFile:
    path: Path
    sha256: str
    samples: int
    stats: dict[str, Any]

    @property
    def template(self) -> str:
        return self.stats["settings"]["template"]

    @property
    def retrieval(self) -> dict[str, Any] | None:
        settings = self.stats["settings"].get("retrieval")
        if settings is None:
            return None
        return {"embedder": self.stats.get("embedder"), **settings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "samples": self.samples,
            "mode": self.stats.get("mode"),
            "sources": self.stats.get("sources", []),
            "settings": self.stats.get("settings"),
            "statistics": self.stats.get("statistics"),
        }


@dataclass
class TrainingData:
    files: list[DatasetFile]
    conversations: list[list[dict[str, str]]]
    ids: list[str]
    #: Template id per language, e.g. ``{"en": "ra-it-en-v1"}``.
    templates: dict[str, str]
    retrieval: dict[str, Any] | None

    @property
    def languages(self) -> list[str]:
        return sorted(self.templates)


def load_training_data(paths: Sequence[str | Path]) -> TrainingData:
    """Read ``raitner build`` datasets and their statistics files; check they fit together."""
    from raitner.data.builder import DATASET_FORMAT, stats_path
    from raitner.prompts.templates import get_template

    files: list[DatasetFile] = []
    conversations: list[list[dict[str, str]]] = []
    ids: list[str] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise TrainingError(f"training dataset {path} does not exist")
        stats_file = stats_path(path)
        if not stats_file.is_file():
            raise TrainingError(
                f"{path} has no statistics file {stats_file.name} beside it; build training "
                "sets with `raitner build`, which records the template and retrieval settings"
            )
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
        if stats.get("format") != DATASET_FORMAT:
            raise DataFormatError(
                stats_file, None, f"expected format {DATASET_FORMAT!r}, got {stats.get('format')!r}"
            )
        digest = hashlib.sha256()
        count = 0
        with path.open("rb") as handle:
            for number, raw_line in enumerate(handle, start=1):
                digest.update(raw_line)
                if not raw_line.strip():
                    continue
                record_id, messages = _parse_record(path, number, raw_line)
                ids.append(record_id)
                conversations.append(messages)
                count += 1
        if count == 0:
            raise DataFormatError(path, None, "no training conversations")
        expected = stats.get("statistics", {}).get("samples")
        if expected is not None and expected != count:
            logger.warning(
                "%s holds %d conversations but its statistics file says %d", path, count, expected
            )
        files.append(DatasetFile(path, digest.hexdigest(), count, stats))

    templates: dict[str, str] = {}
    for item in files:
        lang = get_template(item.template).lang
        if templates.setdefault(lang, item.template) != item.template:
            raise TrainingError(
                f"datasets use two templates for {lang!r}: {templates[lang]} and "
                f"{item.template} ({item.path}); build them with the same template"
            )
    retrievals = {json.dumps(item.retrieval, sort_keys=True) for item in files}
    if len(retrievals) > 1:
        listing = "; ".join(f"{item.path}: {item.retrieval}" for item in files)
        raise TrainingError(
            "datasets were built with different retrieval settings, so the model could not "
            f"record one way to serve it ({listing}); build them with the same settings"
        )
    return TrainingData(files, conversations, ids, templates, files[0].retrieval)


def _parse_record(path: Path, number: int, raw_line: bytes) -> tuple[str, list[dict[str, str]]]:
    try:
        record = json.loads(raw_line)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, number, f"not valid JSON: {error}") from None
    messages = record.get("messages") if isinstance(record, dict) else None
    if not isinstance(messages, list) or not messages:
        raise DataFormatError(path, number, 'expected {"messages": [{"role", "content"}, ...]}')
    cleaned = []
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in _ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise DataFormatError(
                path, number, f"a message must have a role in {_ROLES} and string content"
            )
        cleaned.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in cleaned):
        raise DataFormatError(path, number, "no assistant turn: nothing to train on")
    return str(record.get("id", f"{path.name}:{number}")), cleaned


@dataclass
class LengthReport:
    """Token lengths of the rendered conversations against ``max_seq_length``."""

    max_seq_length: int
    policy: str
    samples: int
    max_tokens: int
    mean_tokens: float
    #: Indices of the conversations longer than ``max_seq_length``.
    over_length: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_seq_length": self.max_seq_length,
            "long_samples": self.policy,
            "samples": self.samples,
            "max_tokens": self.max_tokens,
            "mean_tokens": round(self.mean_tokens, 1),
            "over_length": len(self.over_length),
            "truncated": len(self.over_length) if self.policy == "truncate" else 0,
            "dropped": len(self.over_length) if self.policy == "drop" else 0,
        }


def measure_lengths(
    tokenizer: Any,
    template: TrainingTemplate,
    conversations: Sequence[Sequence[dict[str, str]]],
    max_seq_length: int,
    policy: str,
    *,
    batch_size: int = 256,
) -> LengthReport:
    """Render every conversation with the training template and count its tokens.

    When the template was rewritten, each rendering is also compared with the model's own
    template, so no conversation is trained in a form the original would not produce (the
    generation prompt, which training never renders, was compared on the probe conversations).
    """
    lengths: list[int] = []
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        texts = [render(tokenizer, template.template, messages) for messages in chunk]
        if template.rewritten:
            for offset, (messages, text) in enumerate(zip(chunk, texts, strict=True)):
                if render(tokenizer, template.original, messages) != text:
                    mismatch = first_mismatch(
                        tokenizer, template.original, template.template, [messages]
                    )
                    raise TrainingError(
                        f"the training chat template changes the text of conversation "
                        f"{start + offset}: {mismatch}"
                    )
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        lengths.extend(len(ids) for ids in encoded)
    over = [i for i, n in enumerate(lengths) if n > max_seq_length]
    return LengthReport(
        max_seq_length=max_seq_length,
        policy=policy,
        samples=len(lengths),
        max_tokens=max(lengths, default=0),
        mean_tokens=sum(lengths) / max(len(lengths), 1),
        over_length=over,
    )


# --------------------------------------------------------------------------------------------
# Resuming


def find_last_checkpoint(output_dir: Path) -> Path | None:
    """The highest ``checkpoint-N`` that was written completely (its trainer state exists)."""
    if not output_dir.is_dir():
        return None
    steps = []
    for child in output_dir.iterdir():
        name = child.name
        if child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            steps.append((int(name[11:]), child))
    for _, child in sorted(steps, reverse=True):
        if (child / "trainer_state.json").is_file():
            return child
        logger.warning("skipping %s: incomplete (interrupted while it was written)", child)
    return None


def _run_settings(config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    training = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_CHANGES}
    return {
        "format": RUN_FORMAT,
        "training": training,
        "datasets": [item.sha256 for item in data.files],
    }


def _resume_checkpoint(config: TrainConfig, data: TrainingData) -> str | None:
    output_dir = Path(config.output_dir)
    if config.resume not in ("auto", "never"):
        checkpoint = Path(config.resume)
        if not (checkpoint / "trainer_state.json").is_file():
            raise TrainConfigError(f"resume: {checkpoint} is not a complete checkpoint folder")
        return str(checkpoint)
    last = find_last_checkpoint(output_dir)
    if config.resume == "never":
        if last is not None:
            raise TrainingError(
                f"{output_dir} holds checkpoints of an earlier run ({last.name}); with "
                "resume='never' choose an empty output_dir (or resume='auto' to continue it)"
            )
        return None
    if last is None:
        if (output_dir / MODEL_INFO).is_file():
            raise TrainingError(
                f"{output_dir} already holds a trained model and no checkpoint to continue "
                "from; choose another output_dir"
            )
        return None
    run_file = output_dir / RUN_INFO
    if run_file.is_file():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        current = _run_settings(config, data)
        changed = sorted(
            key
            for key in set(previous.get("training", {})) | set(current["training"])
            if previous.get("training", {}).get(key) != current["training"].get(key)
        )
        if previous.get("datasets") != current["datasets"]:
            changed.append("datasets (content)")
        if changed:
            raise TrainingError(
                f"{output_dir} holds a run with other settings ({', '.join(changed)}); resuming "
                "would mix two runs. Use another output_dir, or the same settings"
            )
    else:
        logger.warning("%s has no %s; resuming without checking its settings", output_dir, RUN_INFO)
    return str(last)


# --------------------------------------------------------------------------------------------
# The run


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _precision(config: TrainConfig) -> str:
    import torch

    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def _gradient_checkpointing(config: TrainConfig) -> bool:
    import torch

    if config.gradient_checkpointing == "auto":
        # Memory is what a GPU lacks; on a CPU it would only cost time.
        return torch.cuda.is_available()
    return config.gradient_checkpointing == "true"


def mean_logged_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean training loss per optimizer step over every step in a trainer's log.

    Each logged ``loss`` is the mean over the steps since the previous one, so it is weighted by
    them; None when nothing was logged.
    """
    total = 0.0
    steps = previous = 0
    for entry in log_history:
        if "loss" in entry:
            span = int(entry["step"]) - previous
            previous = int(entry["step"])
            total += float(entry["loss"]) * span
            steps += span
    return total / steps if steps else None


@dataclass
class TrainingRun:
    """A prepared run: the trainer and everything ``raitner.json`` will say about it."""

    config: TrainConfig
    trainer: Any
    tokenizer: Any
    template: TrainingTemplate
    data: TrainingData
    lengths: LengthReport
    base_model: dict[str, Any]
    precision: str
    resume_from: str | None

    def run(self) -> Path:
        """Train (continuing from ``resume_from``), then write the final model atomically."""
        started = time.perf_counter()
        result = self.trainer.train(resume_from_checkpoint=self.resume_from)
        outcome = {
            "global_step": int(result.global_step),
            "train_loss": float(result.training_loss),
            "seconds_this_session": round(time.perf_counter() - started, 1),
            "resumed_from": self.resume_from,
        }
        if self.resume_from:
            # The trainer's figure averages only the steps of this session; the log holds them all.
            whole_run = mean_logged_loss(self.trainer.state.log_history)
            outcome["train_loss_this_session"] = outcome["train_loss"]
            if whole_run is not None:
                outcome["train_loss"] = whole_run
        return self._save_final(outcome)

    def model_info(self, outcome: dict[str, Any]) -> dict[str, Any]:
        import peft
        import torch
        import transformers
        import trl

        from raitner import __version__

        return {
            "format": MODEL_FORMAT,
            "base_model": self.base_model,
            "template": self.data.templates[self.data.languages[0]]
            if len(self.data.templates) == 1
            else None,
            "templates": self.data.templates,
            "languages": self.data.languages,
            "retrieval": self.data.retrieval,
            "chat_template": {
                "source": self.template.source,
                "end_of_turn": end_of_turn_token(self.tokenizer, self.template.template),
            },
            "training": self.config.to_dict(),
            "precision": self.precision,
            "dataset": {
                "paths": [str(item.path) for item in self.data.files],
                "files": [item.to_dict() for item in self.data.files],
                "samples": len(self.data.conversations),
                "trained_samples": len(self.trainer.train_dataset),
                "lengths": self.lengths.to_dict(),
            },
            "result": outcome,
            "software": {
                "raitner": __version__,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "trl": trl.__version__,
                "peft": peft.__version__,
            },
        }

    def export(self, checkpoint: str | Path, destination: str | Path) -> Path:
        """Write the model as of ``checkpoint`` (a checkpoint folder of this run) as a model
        folder at ``destination``, without training; the run itself can go on afterwards.

        The model folder is what training writes at its end, with ``result.exported_from``
        naming the checkpoint and ``result.complete`` false when the run had steps left.
        """
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file
        from transformers import TrainerState

        checkpoint = Path(checkpoint)
        weights = checkpoint / "adapter_model.safetensors"
        state_file = checkpoint / "trainer_state.json"
        if not weights.is_file() or not state_file.is_file():
            raise TrainingError(
                f"{checkpoint} is not a checkpoint of a LoRA run (expected "
                "adapter_model.safetensors and trainer_state.json in it)"
            )
        destination = Path(destination)
        if destination.exists() and any(destination.iterdir()):
            raise TrainingError(f"{destination} exists and is not empty; export to a new folder")
        destination.mkdir(parents=True, exist_ok=True)
        result = set_peft_model_state_dict(self.trainer.model, load_file(str(weights)))
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise TrainingError(
                f"{weights} does not match this run's adapter (unexpected: {unexpected[:3]})"
            )
        self.trainer.state = TrainerState.load_from_json(str(state_file))
        state = self.trainer.state
        losses = [entry["loss"] for entry in state.log_history if "loss" in entry]
        outcome = {
            "global_step": int(state.global_step),
            "max_steps": int(state.max_steps),
            "complete": state.global_step >= state.max_steps,
            "last_logged_loss": float(losses[-1]) if losses else None,
            "exported_from": checkpoint.name,
        }
        return self._save_final(outcome, destination)

    def _save_final(self, outcome: dict[str, Any], output_dir: Path | None = None) -> Path:
        from raitner.train.model_card import render_model_card

        output_dir = Path(self.config.output_dir) if output_dir is None else output_dir
        staging = output_dir / _FINAL_TMP
        trainer = self.trainer
        if trainer.is_world_process_zero():
            shutil.rmtree(staging, ignore_errors=True)
        trainer.accelerator.wait_for_everyone()
        # Every process takes part (sharded weights are gathered); process zero writes.
        trainer.save_model(str(staging))
        if trainer.is_world_process_zero():
            info = self.model_info(outcome)
            trainer.state.save_to_json(str(staging / "trainer_state.json"))
            (staging / "README.md").write_text(render_model_card(info), encoding="utf-8")
            (staging / MODEL_INFO).write_text(
                json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
            umask = os.umask(0)
            os.umask(umask)
            for entry in sorted(staging.iterdir()):
                if entry.name in (MODEL_INFO, "training_args.bin"):
                    continue
                # safetensors writes owner-only files; give them what open() would have.
                os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~umask)
                os.replace(entry, output_dir / entry.name)
            os.replace(staging / MODEL_INFO, output_dir / MODEL_INFO)
            shutil.rmtree(staging, ignore_errors=True)
            logger.info("trained model written to %s", output_dir)
        trainer.accelerator.wait_for_everyone()
        return output_dir


def prepare(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainingRun:
    """Load data and model, choose the training template, and build the ``SFTTrainer``."""
    config.validate()
    data = load_training_data(config.datasets)
    resume_from = _resume_checkpoint(config, data)

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    from raitner.models import load_causal_lm

    precision = _precision(config)
    if precision == "bf16" and not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        raise TrainConfigError("precision 'bf16' needs a GPU with bfloat16 support")
    if precision == "fp16" and not torch.cuda.is_available():
        raise TrainConfigError("precision 'fp16' needs a GPU; use 'fp32' on CPU")
    resolved = resolve_model(config.base_model)
    embedded = embedded_llm(config.base_model)
    base_model = {
        "name": config.base_model,
        "path": resolved,
        "origin": embedded.origin if embedded is not None else config.base_model,
        "embedded": embedded.name if embedded is not None else None,
    }
    # Loaded on the CPU: the trainer moves it to this process's device (one per process).
    model, tokenizer = load_causal_lm(
        resolved, device="cpu", dtype=torch.bfloat16 if precision == "bf16" else torch.float32
    )
    template = training_chat_template(tokenizer)
    tokenizer.chat_template = template.template
    lengths = measure_lengths(
        tokenizer, template, data.conversations, config.max_seq_length, config.long_samples
    )
    _report(config, data, template, lengths)
    keep = range(len(data.conversations))
    if lengths.over_length and config.long_samples == "error":
        first = lengths.over_length[0]
        raise TrainingError(
            f"{len(lengths.over_length)} of {lengths.samples} conversations are longer than "
            f"max_seq_length={config.max_seq_length} tokens (the longest has {lengths.max_tokens}"
            f"; first: {data.ids[first]}); raise max_seq_length or set long_samples to "
            "'truncate' or 'drop'"
        )
    if config.long_samples == "drop":
        dropped = set(lengths.over_length)
        keep = [i for i in keep if i not in dropped]
    if not keep:
        raise TrainingError("every conversation is longer than max_seq_length; nothing to train")
    dataset = Dataset.from_list([{"messages": data.conversations[i]} for i in keep])

    output_dir = Path(config.output_dir)
    if _is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        run_file = output_dir / RUN_INFO
        run_file.write_text(
            json.dumps(_run_settings(config, data), ensure_ascii=False, indent=2) + "\n",
            encoding="utf-8",
        )
    # transformers 5 renamed gradient checkpointing; older releases only know the old name.
    checkpointing = (
        "activation_checkpointing"
        if "activation_checkpointing" in {spec.name for spec in dataclasses.fields(SFTConfig)}
        else "gradient_checkpointing"
    )
    args = SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=config.warmup_ratio,  # below 1: a share of the steps (transformers 5)
        weight_decay=config.weight_decay,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        **{checkpointing: _gradient_checkpointing(config)},
        seed=config.seed,
        # Several CPU processes (torchrun on a machine without GPU) train with DDP only so.
        use_cpu=not torch.cuda.is_available(),
        # Every LoRA matrix takes part in every forward pass: no search for unused ones.
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit or None,
        logging_steps=config.logging_steps,
        report_to=config.report_to,
        max_length=config.max_seq_length,
        truncation_mode="keep_start",
        assistant_only_loss=True,
        packing=False,
        pad_to_multiple_of=config.pad_to_multiple_of or None,
        train_sampling_strategy=(
            "group_by_length" if config.group_by_length == "true" else "random"
        ),
        dataset_num_proc=config.dataset_num_proc or None,
    )
    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    # Off CUDA, TRL would push every position (prompt, examples, padding) through the LM head.
    score_trained_positions_only()
    # The LoRA matrices are initialised inside SFTTrainer, before Trainer seeds anything.
    set_seed(config.seed)
    with quiet_peft_wrapping():
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=list(callbacks),
        )
    left_out = len(keep) - len(trainer.train_dataset)
    if left_out and _is_main_process():
        logger.warning(
            "%d conversations have no answer token within max_seq_length=%d and are not trained",
            left_out,
            config.max_seq_length,
        )
    return TrainingRun(
        config=config,
        trainer=trainer,
        tokenizer=tokenizer,
        template=template,
        data=data,
        lengths=lengths,
        base_model=base_model,
        precision=precision,
        resume_from=resume_from,
    )


def _report(
    config: TrainConfig, data: TrainingData, template: TrainingTemplate, lengths: LengthReport
) -> None:
    if not _is_main_process():
        return
    world = int(os.environ.get("WORLD_SIZE", "1"))
    effective = config.per_device_train_batch_size * config.gradient_accumulation_steps * world
    logger.info(
        "%d conversations from %d file(s); templates %s; retrieval %s",
        len(data.conversations),
        len(data.files),
        data.templates,
        data.retrieval,
    )
    logger.info(
        "chat template: %s; tokens per conversation: mean %.0f, max %d",
        {
            "original": "the model's own",
            "chatml": "ChatML rewritten with generation markers",
            "trl": "TRL's training variant",
        }[template.source],
        lengths.mean_tokens,
        lengths.max_tokens,
    )
    log = logger.info if effective == PAPER_BATCH_SIZE else logger.warning
    log(
        "effective batch size %d (= %d per device × %d accumulation × %d processes; paper: %d)",
        effective,
        config.per_device_train_batch_size,
        config.gradient_accumulation_steps,
        world,
        PAPER_BATCH_SIZE,
    )
    if lengths.over_length:
        action = {
            "truncate": "truncated (answers past the limit are not trained)",
            "drop": "dropped",
            "error": "refused",
        }[config.long_samples]
        logger.warning(
            "%d of %d conversations are longer than max_seq_length=%d tokens (longest %d): %s",
            len(lengths.over_length),
            lengths.samples,
            config.max_seq_length,
            lengths.max_tokens,
            action,
        )


def train(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """Train a LoRA adapter as ``config`` says; return the output folder (see module notes)."""
    return prepare(config, callbacks=callbacks).run()


def export_checkpoint(config: TrainConfig, checkpoint: str | Path, destination: str | Path) -> Path:
    """The model of ``config``'s run as of ``checkpoint``, written as a model folder at
    ``destination`` (e.g. to use or evaluate a long run before it ends)."""
    return prepare(config).export(checkpoint, destination)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m raitner.train --config cfg.json [--flag value ...]``."""
    from raitner.train.config import add_config_arguments, config_from_namespace

    parser = argparse.ArgumentParser(
        prog="python -m raitner.train",
        description="LoRA instruction tuning on raitner datasets (RA-IT or vanilla).",
    )
    parser.add_argument("--config", help="JSON or YAML file of training settings")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if _is_main_process() else logging.WARNING)
    try:
        config = config_from_namespace(args, args.config)
        output = train(config)
    except RaitnerError as error:
        parser.exit(2, f"error: {error}\n")
    if _is_main_process():
        print(f"trained model written to {output}")
    return 0
