"""The model card (``README.md``) written beside every trained adapter.

It is rendered from the same dictionary as ``raitner.json``, so the two never disagree: the base
model, the data (files, sizes, how many conversations were truncated), the prompt template, the
retrieval settings to serve the model with, the training hyper-parameters and the result.
"""

from __future__ import annotations

import json
from typing import Any

_HYPER_PARAMETERS = (
    ("num_train_epochs", "epochs"),
    ("max_steps", "max steps"),
    ("per_device_train_batch_size", "batch size per device"),
    ("gradient_accumulation_steps", "gradient accumulation"),
    ("learning_rate", "learning rate"),
    ("lr_scheduler_type", "scheduler"),
    ("warmup_ratio", "warm-up ratio"),
    ("weight_decay", "weight decay"),
    ("lora_r", "LoRA rank"),
    ("lora_alpha", "LoRA alpha"),
    ("lora_dropout", "LoRA dropout"),
    ("lora_target_modules", "LoRA targets"),
    ("max_seq_length", "max sequence length"),
    ("long_samples", "longer samples"),
    ("seed", "seed"),
)


def _front_matter(info: dict[str, Any]) -> str:
    base = info["base_model"]
    lines = ["---", "library_name: peft"]
    origin = base.get("origin") or ""
    # Only a hub id belongs here; a local folder means nothing on another machine.
    if origin.count("/") == 1 and not origin.startswith((".", "/", "~")):
        lines.append(f"base_model: {origin}")
    lines += ["pipeline_tag: text-generation", "tags:"]
    tags = ["raitner", "named-entity-recognition", "lora", "trl", "sft"]
    tags.append("ra-it" if info.get("retrieval") else "instruction-tuning")
    lines += [f"- {tag}" for tag in tags]
    lines.append("language:")
    lines += [f"- {lang}" for lang in info["languages"]]
    lines.append("---")
    return "\n".join(lines)


def _base_model_line(base: dict[str, Any]) -> str:
    if base.get("embedded"):
        from raitner.models import EMBEDDED_LLMS

        model = EMBEDDED_LLMS.get(base["embedded"])
        if model is None:  # a name from another raitner version
            return f"raitner's embedded `{base['embedded']}` ({base['origin']})"
        what = "default" if model.name == next(iter(EMBEDDED_LLMS)) else "model"
        line = (
            f"raitner's embedded {what} `{model.name}` ({base['origin']}, dequantised from the "
            f"GGUF `{model.gguf}` of the `{model.distribution}` wheel)"
        )
        if model.licence.startswith("Gemma"):
            line += (
                ". Gemma is provided under and subject to the Gemma Terms of Use found at "
                "ai.google.dev/gemma/terms; they apply to this adapter too"
            )
        return line
    return f"`{base['name']}`"


def _retrieval_lines(retrieval: dict[str, Any] | None) -> list[str]:
    if retrieval is None:
        return [
            "Vanilla instruction tuning: no retrieved examples in the training conversations. "
            "Serve it without retrieval."
        ]
    lines = [
        "Retrieval augmented instruction tuning (RA-IT): each training conversation starts with "
        "examples retrieved for its text. Serve it with the same settings (or without "
        "retrieval, which RA-IT models also handle):",
        "",
    ]
    unread = _settings_not_read(retrieval)
    lines += [f"- {key}: `{value}`" for key, value in retrieval.items() if key not in unread]
    if unread:
        quoted = [f"`{key}`" for key in unread]
        names = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        lines += ["", f"The `{retrieval['strategy']}` strategy does not read {names}."]
    return lines


def _settings_not_read(retrieval: dict[str, Any]) -> list[str]:
    """Retrieval settings recorded for the run that its strategy never reads."""
    from dataclasses import fields

    from raitner.retrieval.strategies import STRATEGIES, RetrievalConfig, settings_read_by

    strategy = retrieval.get("strategy")
    if strategy not in STRATEGIES:  # a strategy from another raitner version: show everything
        return []
    read = settings_read_by(strategy)
    known = {f.name for f in fields(RetrievalConfig)}
    return [key for key in retrieval if key in known and key not in read]


def _inference_lines(inference: dict[str, Any] | None) -> list[str]:
    """The decoding defaults of ``raitner.json``'s ``inference`` section (none: nothing)."""
    if not inference:
        return []
    lines = ["## Decoding", ""]
    bias = inference.get("empty_bias")
    if bias is not None:
        lines += [
            f"`OpenNER.from_pretrained` decodes this model with an empty-answer bias of `{bias}` "
            "(`inference.empty_bias` in `raitner.json`): that much is added to the score of the "
            "empty answer `[]` where it parts from non-empty ones, so the model answers `[]` "
            "more often than plain greedy decoding would (precision for recall). Pass "
            "`empty_bias=0` (`--empty-bias 0`) for plain greedy answers.",
            "",
        ]
    if inference.get("close_lists"):
        lines += [
            "`OpenNER.from_pretrained` decodes this model with `close_lists` "
            "(`inference.close_lists` in `raitner.json`): a list answer ends at its first "
            "repeated item, where the model has started to loop, and a list the token limit cut "
            "is closed after its last complete item. Pass `close_lists=False` "
            "(`--no-close-lists`) for the answers as generated.",
            "",
        ]
    members = inference.get("vote_with") or []
    if members:
        folders = ", ".join(f"`{member}`" for member in members)
        from raitner.infer.voting import majority

        needed = inference.get("min_votes") or majority(len(members) + 1)
        agree = "both" if needed == 2 == len(members) + 1 else f"{needed} of the {len(members) + 1}"
        lines += [
            f"`OpenNER.from_pretrained` answers with a vote of this model and {len(members)} more "
            f"in this folder ({folders}; `inference.vote_with` in `raitner.json`): every model "
            f"answers every question, and a mention is kept when {agree} give it. It costs one "
            "pass of each model over the questions. "
            "Pass `vote_with=[]` (`--no-vote`) for this model alone.",
            "",
        ]
    return lines


def _question_counts(item: dict[str, Any]) -> str:
    """``questions (empty answers)`` from a training file's build statistics, ``-`` without."""
    statistics = item.get("statistics") or {}
    if "questions" not in statistics:
        return "-"
    return f"{statistics['questions']} ({statistics.get('empty_answers', '-')})"


def _negatives_line(item: dict[str, Any]) -> str:
    """How a training file asked about absent types (``raitner.data.negatives`` settings)."""
    negatives = (item.get("settings") or {}).get("negatives")
    if not negatives:
        return "-"
    sampled = (
        f"one per positive type with probability {negatives.get('probability')}, "
        "drawn by type frequency"
    )
    if negatives.get("use_label_set"):
        return f"every type of a closed label set; otherwise {sampled}"
    return sampled


def render_model_card(info: dict[str, Any]) -> str:
    """Markdown for ``README.md`` from the ``raitner.json`` dictionary."""
    dataset = info["dataset"]
    lengths = dataset["lengths"]
    training = info["training"]
    result = info.get("result", {})
    templates = ", ".join(f"`{tid}` ({lang})" for lang, tid in info["templates"].items())
    lines = [
        _front_matter(info),
        "",
        "# Open NER adapter trained with raitner",
        "",
        "A LoRA adapter for open named entity recognition: given a text and entity types, the "
        "model answers one question per type with a JSON list of mentions (UniversalNER "
        "conversation format; RA-IT, arXiv 2406.17305).",
        "",
        "## Usage",
        "",
        "```python",
        "from raitner import OpenNER",
        "",
        'ner = OpenNER.from_pretrained("path/to/this/folder")',
        'ner.predict_entities("Barack Obama visited Paris.", ["person", "location"])',
        "```",
        "",
        "## Base model",
        "",
        f"{_base_model_line(info['base_model'])}.",
        "",
        "## Prompt template",
        "",
        f"{templates}; languages: {', '.join(info['languages'])}. The tokenizer in this folder "
        f"holds the chat template the model was trained with ({info['chat_template']['source']}"
        f"; end of turn `{info['chat_template']['end_of_turn']}`): render prompts with it. "
        "The loss was on every assistant turn (answer and end-of-turn token) and nowhere else.",
        "",
        "## Retrieval",
        "",
        *_retrieval_lines(info.get("retrieval")),
        "",
        *_inference_lines(info.get("inference")),
        "## Training data",
        "",
        f"{dataset['samples']} conversations ({dataset['trained_samples']} trained); mean "
        f"{lengths['mean_tokens']} tokens, longest {lengths['max_tokens']}; "
        f"{lengths['over_length']} longer than {lengths['max_seq_length']} tokens "
        f"({lengths['long_samples']}).",
        "",
        "| file | conversations | questions (empty answer) | negative types | mode | sources "
        "| sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    for item in dataset["files"]:
        sources = ", ".join(item.get("sources") or []) or "-"
        lines.append(
            f"| `{item['path']}` | {item['samples']} | {_question_counts(item)} | "
            f"{_negatives_line(item)} | {item.get('mode') or '-'} | {sources} | "
            f"`{item['sha256'][:12]}` |"
        )
    lines += [
        "",
        "## Training hyper-parameters",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    lines += [f"| {label} | `{training[key]}` |" for key, label in _HYPER_PARAMETERS]
    lines.append(f"| precision | `{info.get('precision')}` |")
    lines += [
        "",
        "## Result",
        "",
        f"{result.get('global_step')} optimizer steps, mean training loss over the run "
        f"{result.get('train_loss', float('nan')):.4f}"
        + (f" (resumed from `{result['resumed_from']}`)" if result.get("resumed_from") else "")
        + ".",
        "",
        "## Software",
        "",
        "```json",
        json.dumps(info.get("software", {}), indent=2),
        "```",
        "",
        "All settings are in `raitner.json`.",
        "",
    ]
    return "\n".join(lines)
