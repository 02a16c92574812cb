"""LoRA training: config, chat template, loss mask, LoRA updates, output folder, resuming.

Everything runs on the tiny random Qwen2 of ``tiny_models`` (a few training steps take well under
a second), on datasets written by ``raitner build``'s own builder.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import warnings
from dataclasses import fields
from pathlib import Path

import pytest

from raitner.data.builder import BuildConfig, build_dataset, stats_path
from raitner.errors import DataFormatError
from raitner.schema import Entity, Example
from raitner.train.chat_template import (
    PROBE_CONVERSATIONS,
    ChatTemplateError,
    has_generation_markers,
    render,
    training_chat_template,
)
from raitner.train.config import (
    TrainConfig,
    TrainConfigError,
    add_config_arguments,
    config_from_namespace,
)
from raitner.train.sft import (
    MODEL_INFO,
    TrainingError,
    find_last_checkpoint,
    main,
    measure_lengths,
    prepare,
    train,
)

_STACK = ("torch", "transformers", "trl", "peft", "datasets")
needs_training_stack = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in _STACK),
    reason="training needs torch, transformers, trl, peft and datasets",
)

# SmolLM2-135M-Instruct's chat template, as its GGUF carries it (ChatML + a default system turn).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The tiny model's matrices are far too small for threads; with other jobs on the machine,
    # thread contention makes each step ~30x slower.
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _example(i: int, text: str, mentions: list[tuple[str, str]], lang: str = "en") -> Example:
    entities = []
    for mention, label in mentions:
        start = text.index(mention)
        entities.append(Entity(start, start + len(mention), mention, label))
    return Example(id=f"{lang}{i}", text=text, lang=lang, entities=entities)


ENGLISH = [
    _example(
        0, "Barack Obama visited Paris in 2009 .", [("Barack Obama", "person"), ("Paris", "city")]
    ),
    _example(1, "Angela Merkel met Macron in Berlin .", [("Macron", "person"), ("Berlin", "city")]),
    _example(2, "Apple opened a store in Tokyo .", [("Apple", "company"), ("Tokyo", "city")]),
    _example(3, "The Nile flows through Egypt .", [("Nile", "river"), ("Egypt", "country")]),
]
CHINESE = [
    _example(0, "张三在北京工作。", [("张三", "人名"), ("北京", "地名")], "zh"),
    _example(1, "李四去了上海。", [("李四", "人名"), ("上海", "地名")], "zh"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from raitner.retrieval.embedders import HashingEmbedder
    from raitner.retrieval.strategies import RetrievalConfig

    folder = tmp_path_factory.mktemp("train-data")
    build_dataset(ENGLISH, folder / "vanilla.jsonl", BuildConfig())
    build_dataset(
        ENGLISH,
        folder / "ra_it.jsonl",
        BuildConfig(retrieval=RetrievalConfig(k=1)),
        embedder=HashingEmbedder(dimension=64),
    )
    build_dataset(CHINESE, folder / "zh.jsonl", BuildConfig())
    build_dataset(
        CHINESE,
        folder / "zh_ra_it.jsonl",
        BuildConfig(retrieval=RetrievalConfig(k=1)),
        embedder=HashingEmbedder(dimension=64),
    )
    return folder


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _config(model_dir: Path, datasets: list[Path], output_dir: Path, **overrides) -> TrainConfig:
    settings = dict(
        datasets=[str(p) for p in datasets],
        output_dir=str(output_dir),
        base_model=str(model_dir),
        max_steps=3,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=100,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def _lora_state(model) -> dict:
    return {
        name: param.detach().clone() for name, param in model.named_parameters() if "lora_" in name
    }


# ------------------------------------------------------------------------------ config


def test_config_defaults_are_the_papers():
    config = TrainConfig()
    assert config.num_train_epochs == 3
    assert config.learning_rate == 5e-5
    assert config.lr_scheduler_type == "cosine"
    assert config.per_device_train_batch_size * config.gradient_accumulation_steps == 8
    assert (config.warmup_ratio, config.max_seq_length) == (0.03, 2048)
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (8, 16, 0.0)
    assert config.lora_target_modules == "all-linear" and config.base_model == "default"
    assert config.max_steps == -1 and config.resume == "auto"
    for spec in fields(TrainConfig):
        assert spec.metadata.get("help"), f"{spec.name} has no help text"


def test_importing_the_config_does_not_import_torch():
    code = (
        "import sys, raitner.train, raitner.train.config, raitner.models; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_config_file_with_overrides(tmp_path):
    json_file = tmp_path / "train.json"
    json_file.write_text(
        json.dumps(
            {"datasets": "a.jsonl", "output-dir": "out", "learning_rate": 1e-4, "lora_r": 16}
        )
    )
    config = TrainConfig.from_file(json_file, lora_r=4, max_steps=None, num_train_epochs=1)
    assert config.datasets == ["a.jsonl"] and config.output_dir == "out"
    assert (config.learning_rate, config.lora_r, config.num_train_epochs) == (1e-4, 4, 1.0)
    assert config.max_steps == -1  # None means "not given"
    assert TrainConfig(gradient_checkpointing=True).gradient_checkpointing == "true"

    yaml_file = tmp_path / "train.yaml"
    # YAML 1.1 reads 5e-5 without a dot as a string: it must still become a float.
    yaml_file.write_text("datasets: [a.jsonl, b.jsonl]\nlearning_rate: 5e-5\nmax_steps: '20'\n")
    config = TrainConfig.from_file(yaml_file)
    assert config.datasets == ["a.jsonl", "b.jsonl"]
    assert config.learning_rate == 5e-5 and config.max_steps == 20


def test_config_unknown_keys_name_the_known_ones(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"learning_rate": 1e-4, "lr": 1, "epochs": 2}))
    with pytest.raises(TrainConfigError) as caught:
        TrainConfig.from_file(path)
    message = str(caught.value)
    assert str(path) in message and "epochs, lr" in message
    assert "known:" in message and "learning_rate" in message and "num_train_epochs" in message
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(TrainConfigError, match="unknown training setting\\(s\\) bogus"):
        TrainConfig.from_file(empty, bogus=1)


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"precision": "int8"}', "precision must be one of auto, bf16, fp16, fp32"),
        ('{"long_samples": "cut"}', "long_samples must be one of"),
        ('{"per_device_train_batch_size": 0}', "per_device_train_batch_size must be > 0"),
        ('{"learning_rate": "fast"}', "learning_rate must be a number"),
        ('{"max_steps": 2.5}', "max_steps must be a whole number"),
        ('{"gradient_checkpointing": "maybe"}', "gradient_checkpointing must be one of auto, true"),
        ('{"warmup_ratio": 1.5}', "warmup_ratio must be in"),
        ('{"datasets": [1, 2]}', "datasets must be a list of paths"),
        ("[1, 2]", "expected a mapping"),
        ("{not json", "not valid JSON"),
    ],
)
def test_config_bad_values_are_clear_errors(tmp_path, content, match):
    path = tmp_path / "train.json"
    path.write_text(content)
    with pytest.raises(TrainConfigError, match=match):
        TrainConfig.from_file(path)


def test_config_needs_data_and_output_to_run():
    with pytest.raises(TrainConfigError, match="no training dataset"):
        TrainConfig(output_dir="out").validate()
    with pytest.raises(TrainConfigError, match="no output_dir"):
        TrainConfig(datasets=["a.jsonl"]).validate()


def test_command_line_flags_come_from_the_fields(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    add_config_arguments(parser)
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"datasets": ["a.jsonl"], "output_dir": "out", "lora_r": 32}))
    args = parser.parse_args(
        ["--config", str(path), "--learning-rate", "1e-4", "--gradient-checkpointing", "false"]
    )
    config = config_from_namespace(args, args.config)
    assert config.learning_rate == 1e-4 and config.gradient_checkpointing == "false"
    assert config.lora_r == 32 and config.datasets == ["a.jsonl"]
    args = parser.parse_args(["--datasets", "x.jsonl", "y.jsonl", "--output-dir", "o"])
    assert config_from_namespace(args).datasets == ["x.jsonl", "y.jsonl"]
    assert "--long-samples" in parser.format_help()


# ------------------------------------------------------------------------ chat template


@pytest.fixture
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _conversations(data_dir: Path) -> list[list[dict[str, str]]]:
    names = ("vanilla.jsonl", "ra_it.jsonl", "zh.jsonl", "zh_ra_it.jsonl")
    return [r["messages"] for name in names for r in _records(data_dir / name)]


def _trl_template(name: str) -> str:
    chat_template_utils = pytest.importorskip("trl.chat_template_utils")

    return getattr(chat_template_utils, name)


@pytest.mark.parametrize("original", ["tiny", "smollm2", "qwen2_5"])
def test_training_template_renders_the_same_text(tiny_tokenizer, data_dir, original):
    templates = {
        "tiny": tiny_tokenizer.chat_template,
        "smollm2": SMOLLM2_TEMPLATE,
        "qwen2_5": _trl_template("qwen2_5_chat_template"),
    }
    tiny_tokenizer.chat_template = templates[original]
    chosen = training_chat_template(tiny_tokenizer)
    assert chosen.source == "chatml" and chosen.original == templates[original]
    assert has_generation_markers(chosen.template)
    assert not has_generation_markers(chosen.original)
    conversations = _conversations(data_dir) + [list(c) for c in PROBE_CONVERSATIONS]
    for messages in conversations:
        for add_generation_prompt in (False, True):
            expected = render(
                tiny_tokenizer,
                chosen.original,
                messages,
                add_generation_prompt=add_generation_prompt,
            )
            actual = render(
                tiny_tokenizer,
                chosen.template,
                messages,
                add_generation_prompt=add_generation_prompt,
            )
            assert actual.encode("utf-8") == expected.encode("utf-8")
    if original == "smollm2":
        assert "named SmolLM" in render(tiny_tokenizer, chosen.template, conversations[-1][1:])


def test_a_template_with_generation_markers_is_kept(tiny_tokenizer):
    marked = _trl_template("qwen2_5_training_chat_template")
    tiny_tokenizer.chat_template = marked
    chosen = training_chat_template(tiny_tokenizer)
    assert chosen.source == "original" and chosen.template == marked


def test_an_unknown_template_family_is_a_clear_error(tiny_tokenizer):
    tiny_tokenizer.chat_template = (
        "{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    with pytest.raises(ChatTemplateError) as caught:
        training_chat_template(tiny_tokenizer)
    message = str(caught.value)
    assert "{% generation %}" in message and "not ChatML" in message and "### user" in message
    tiny_tokenizer.chat_template = None
    with pytest.raises(ChatTemplateError, match="no chat template"):
        training_chat_template(tiny_tokenizer)


def test_a_rewrite_that_changes_a_training_conversation_is_refused(tiny_tokenizer):
    # Trims contents: the probes (no outer spaces) render alike, this conversation does not.
    tiny_tokenizer.chat_template = tiny_tokenizer.chat_template.replace(
        "message['content']", "(message['content'] | trim)"
    )
    chosen = training_chat_template(tiny_tokenizer)
    assert chosen.source == "chatml"
    fine = [{"role": "user", "content": "Text: a"}, {"role": "assistant", "content": "ok"}]
    spaced = [{"role": "user", "content": "Text: b "}, {"role": "assistant", "content": "ok"}]
    assert measure_lengths(tiny_tokenizer, chosen, [fine], 100, "truncate").samples == 1
    with pytest.raises(TrainingError, match="changes the text of conversation 1"):
        measure_lengths(tiny_tokenizer, chosen, [fine, spaced], 100, "truncate")


# ---------------------------------------------------------------------------- loss mask


def _trained_spans(tokenizer, input_ids, labels) -> list[str]:
    spans, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label != -100:
            assert label == token  # labels are the input ids; the model shifts them itself
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    if current:
        spans.append(tokenizer.decode(current))
    return spans


@needs_training_stack
def test_labels_are_exactly_the_assistant_turns(tiny_model_dir, data_dir, tmp_path):
    datasets = [data_dir / "ra_it.jsonl", data_dir / "zh_ra_it.jsonl"]
    run = prepare(_config(tiny_model_dir, datasets, tmp_path / "out"))
    conversations = [r["messages"] for path in datasets for r in _records(path)]
    dataset = run.trainer.train_dataset
    assert len(dataset) == len(conversations) == 6
    batch = run.trainer.data_collator([dataset[i] for i in range(len(dataset))])
    tokenizer = run.tokenizer
    for row, messages in enumerate(conversations):
        input_ids = batch["input_ids"][row].tolist()
        labels = batch["labels"][row].tolist()
        attention = batch["attention_mask"][row].tolist()
        assert any(label != -100 for label in labels)
        # Padding is never trained, and the real tokens are the original template's text.
        assert all(label == -100 for label, seen in zip(labels, attention, strict=True) if not seen)
        real = [t for t, seen in zip(input_ids, attention, strict=True) if seen]
        assert tokenizer.decode(real) == render(tokenizer, run.template.original, messages)
        expected = [m["content"] + "<|im_end|>" for m in messages if m["role"] == "assistant"]
        assert _trained_spans(tokenizer, input_ids, labels) == expected
    # The RA-IT samples start with the examples turn, whose acknowledgement is trained too.
    assert conversations[0][1]["content"].startswith("Here are some examples")


@needs_training_stack
def test_starting_a_run_raises_no_deprecation_noise_from_peft(tiny_model_dir, data_dir, tmp_path):
    # peft reads transformers' deprecated `is_gradient_checkpointing` while wrapping the model;
    # a user cannot act on that warning, so it is not shown on every training start.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare(_config(tiny_model_dir, [data_dir / "vanilla.jsonl"], tmp_path / "out"))
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]


# ------------------------------------------------------------------------- training


@needs_training_stack
def test_the_lm_head_scores_only_trained_positions_with_the_same_loss_and_gradients(
    tiny_model_dir, data_dir, tmp_path, monkeypatch
):
    import torch
    from trl.trainer import utils as trl_utils

    from raitner.train.lm_head import score_every_position, score_trained_positions_only

    run = prepare(_config(tiny_model_dir, [data_dir / "ra_it.jsonl"], tmp_path / "out"))
    trainer, model = run.trainer, run.trainer.model
    dataset = trainer.train_dataset
    inputs = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    trained = int((inputs["labels"][:, 1:] != -100).sum())
    every = inputs["labels"][:, 1:].numel()
    assert 0 < trained < every  # prompts and padding are not trained

    scored_rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        scored_rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_apply)

    def loss_and_gradients():
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(inputs))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return loss.detach(), grads

    try:
        score_every_position()
        full_loss, full_grads = loss_and_gradients()
        assert scored_rows[-1] == every
        assert score_trained_positions_only()
        assert score_trained_positions_only()  # a second call changes nothing
        compact_loss, compact_grads = loss_and_gradients()
        assert scored_rows[-1] == trained
    finally:
        score_trained_positions_only()  # what prepare() leaves in effect
    assert torch.allclose(full_loss, compact_loss, rtol=1e-5, atol=1e-6)
    assert full_grads.keys() == compact_grads.keys() and full_grads
    for name, grad in full_grads.items():
        assert torch.allclose(grad, compact_grads[name], rtol=1e-4, atol=1e-6), name


@needs_training_stack
def test_every_lora_tensor_changes(tiny_model_dir, data_dir, tmp_path):
    import torch

    run = prepare(_config(tiny_model_dir, [data_dir / "vanilla.jsonl"], tmp_path / "out"))
    model = run.trainer.model
    before = _lora_state(model)
    frozen = {
        name: param.detach().clone()
        for name, param in model.named_parameters()
        if "lora_" not in name
    }
    # "all-linear": attention and MLP projections of both layers, A and B each.
    assert len(before) == 2 * 7 * 2
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    run.trainer.train()
    after = _lora_state(model)
    for name, tensor in before.items():
        assert not torch.allclose(tensor, after[name]), f"{name} did not change"
    for name, param in model.named_parameters():
        if name in frozen:
            assert torch.equal(frozen[name], param.detach()), f"frozen {name} changed"


@needs_training_stack
def test_output_folder_holds_the_model_and_what_made_it(tiny_model_dir, data_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output = tmp_path / "out"
    dataset = data_dir / "ra_it.jsonl"
    result = train(_config(tiny_model_dir, [dataset], output))
    assert result == output
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer.json",
        "README.md",
        MODEL_INFO,
        "trainer_state.json",
    ):
        assert (output / name).is_file(), name
    assert not (output / ".final.tmp").exists() and not (output / "training_args.bin").exists()

    info = json.loads((output / MODEL_INFO).read_text())
    stats = json.loads(stats_path(dataset).read_text())
    assert info["format"] == "raitner-model-v1"
    assert info["base_model"]["name"] == str(tiny_model_dir) == info["base_model"]["path"]
    assert info["template"] == "ra-it-en-v1" and info["languages"] == ["en"]
    assert info["retrieval"] == {"embedder": stats["embedder"], **stats["settings"]["retrieval"]}
    assert info["retrieval"]["k"] == 1 and info["retrieval"]["strategy"] == "nn"
    assert info["chat_template"] == {"source": "chatml", "end_of_turn": "<|im_end|>"}
    assert info["training"]["learning_rate"] == 1e-3 and info["training"]["max_steps"] == 3
    assert info["dataset"]["paths"] == [str(dataset)]
    assert info["dataset"]["files"][0]["statistics"] == stats["statistics"]
    assert info["dataset"]["lengths"]["over_length"] == 0
    assert info["result"]["global_step"] == 3 and info["result"]["resumed_from"] is None

    card = (output / "README.md").read_text()
    for needle in (
        "ra-it-en-v1",
        "OpenNER.from_pretrained",
        "strategy: `nn`",
        "| LoRA rank | `8` |",
        "does not read `pool_k`",
    ):
        assert needle in card, needle
    assert "- pool_k:" not in card  # nn never reads it

    tokenizer = AutoTokenizer.from_pretrained(output)
    assert has_generation_markers(tokenizer.chat_template)
    messages = _records(dataset)[0]["messages"]
    original = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.apply_chat_template(
        messages[:3], tokenize=False, add_generation_prompt=True
    ) == original.apply_chat_template(messages[:3], tokenize=False, add_generation_prompt=True)

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, output)
    assert any(
        "lora_B" in name and param.abs().sum() > 0 for name, param in model.named_parameters()
    )


@needs_training_stack
def test_vanilla_model_records_no_retrieval_and_both_languages(tiny_model_dir, data_dir, tmp_path):
    output = train(
        _config(
            tiny_model_dir,
            [data_dir / "vanilla.jsonl", data_dir / "zh.jsonl"],
            tmp_path / "o",
            max_steps=1,
        )
    )
    info = json.loads((output / MODEL_INFO).read_text())
    assert info["retrieval"] is None and info["languages"] == ["en", "zh"]
    assert info["templates"] == {"en": "ra-it-en-v1", "zh": "ra-it-zh-v1"}
    assert info["template"] is None and info["dataset"]["samples"] == 6


class _Interrupt(Exception):
    pass


def _interrupt_at(step: int):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise _Interrupt

    return Interrupt()


@needs_training_stack
def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_model_dir, data_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    dataset = [data_dir / "vanilla.jsonl"]
    settings = dict(max_steps=6, save_steps=2)
    output = tmp_path / "interrupted"
    with pytest.raises(_Interrupt):
        train(_config(tiny_model_dir, dataset, output, **settings), callbacks=[_interrupt_at(3)])
    assert find_last_checkpoint(output) == output / "checkpoint-2"
    assert not (output / MODEL_INFO).exists()

    train(_config(tiny_model_dir, dataset, output, **settings))
    info = json.loads((output / MODEL_INFO).read_text())
    assert info["result"]["global_step"] == 6
    assert info["result"]["resumed_from"] == str(output / "checkpoint-2")
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 6 == state["max_steps"]
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == [1, 2, 3, 4, 5, 6]

    # The resumed run ends where an uninterrupted one does, and reports the loss over all six
    # steps (the trainer's own figure covers only the four after the checkpoint).
    straight = train(_config(tiny_model_dir, dataset, tmp_path / "straight", **settings))
    straight_info = json.loads((straight / MODEL_INFO).read_text())
    assert info["result"]["train_loss"] == pytest.approx(
        straight_info["result"]["train_loss"], rel=1e-3
    )
    assert "train_loss_this_session" not in straight_info["result"]
    later_steps = [e["loss"] for e in state["log_history"] if "loss" in e and e["step"] > 2]
    assert info["result"]["train_loss_this_session"] == pytest.approx(
        sum(later_steps) / len(later_steps), rel=1e-3
    )
    resumed = load_file(output / "adapter_model.safetensors")
    uninterrupted = load_file(straight / "adapter_model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for name, tensor in resumed.items():
        torch.testing.assert_close(tensor, uninterrupted[name], rtol=1e-4, atol=1e-6)


@needs_training_stack
def test_a_checkpoint_is_exported_as_a_model_folder(tiny_model_dir, data_dir, tmp_path):
    from safetensors.torch import load_file

    from raitner.api import OpenNER
    from raitner.train.sft import TrainingError, export_checkpoint

    dataset = [data_dir / "vanilla.jsonl"]
    settings = dict(max_steps=4, save_steps=2)
    output = tmp_path / "run"
    with pytest.raises(_Interrupt):
        train(_config(tiny_model_dir, dataset, output, **settings), callbacks=[_interrupt_at(3)])
    checkpoint = output / "checkpoint-2"
    exported = export_checkpoint(
        _config(tiny_model_dir, dataset, output, **settings), checkpoint, tmp_path / "at-2"
    )
    info = json.loads((exported / MODEL_INFO).read_text())
    assert info["result"]["global_step"] == 2 and info["result"]["max_steps"] == 4
    assert info["result"]["complete"] is False
    assert info["result"]["exported_from"] == "checkpoint-2"
    # the exported adapter is the checkpoint's, and the folder loads like a trained one
    saved = load_file(checkpoint / "adapter_model.safetensors")
    written = load_file(exported / "adapter_model.safetensors")
    assert saved.keys() == written.keys()
    assert all(saved[name].equal(written[name]) for name in saved)
    ner = OpenNER.from_pretrained(exported)
    assert ner.predict_entities("Barack Obama visited Paris .", ["person"]) is not None
    # the run itself is untouched and still resumes
    assert not (output / MODEL_INFO).exists()
    assert find_last_checkpoint(output) == checkpoint
    with pytest.raises(TrainingError, match="not empty"):
        export_checkpoint(
            _config(tiny_model_dir, dataset, output, **settings), checkpoint, tmp_path / "at-2"
        )
    with pytest.raises(TrainingError, match="not a checkpoint"):
        export_checkpoint(
            _config(tiny_model_dir, dataset, output, **settings), output, tmp_path / "other"
        )


@needs_training_stack
def test_resuming_with_other_settings_is_refused(tiny_model_dir, data_dir, tmp_path):
    dataset = [data_dir / "vanilla.jsonl"]
    output = tmp_path / "out"
    with pytest.raises(_Interrupt):
        train(
            _config(tiny_model_dir, dataset, output, max_steps=4, save_steps=1),
            callbacks=[_interrupt_at(2)],  # after checkpoint-1, before checkpoint-2
        )
    with pytest.raises(TrainingError, match="other settings \\(learning_rate\\)"):
        prepare(_config(tiny_model_dir, dataset, output, max_steps=4, learning_rate=1e-4))
    with pytest.raises(TrainingError, match="datasets \\(content\\)"):
        prepare(_config(tiny_model_dir, [data_dir / "ra_it.jsonl"], output, max_steps=4))
    with pytest.raises(TrainingError, match="resume='never'"):
        prepare(_config(tiny_model_dir, dataset, output, max_steps=4, resume="never"))
    finished = train(_config(tiny_model_dir, dataset, tmp_path / "done", max_steps=1))
    for checkpoint in finished.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    with pytest.raises(TrainingError, match="already holds a trained model"):
        prepare(_config(tiny_model_dir, dataset, finished, max_steps=1))
    # Logging and checkpoint cadence may change.
    run = prepare(_config(tiny_model_dir, dataset, output, max_steps=4, logging_steps=2))
    assert run.resume_from == str(output / "checkpoint-1")


@needs_training_stack
def test_long_samples_are_counted_and_handled_as_configured(tiny_model_dir, data_dir, tmp_path):
    dataset = data_dir / "ra_it.jsonl"
    tokenizer_run = prepare(_config(tiny_model_dir, [dataset], tmp_path / "a"))
    tokenizer = tokenizer_run.tokenizer
    lengths = [
        len(
            tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for r in _records(dataset)
    ]
    limit = sorted(lengths)[1]  # two or more samples are longer
    longer = sum(n > limit for n in lengths)
    assert 0 < longer < len(lengths)

    truncated = prepare(_config(tiny_model_dir, [dataset], tmp_path / "b", max_seq_length=limit))
    report = truncated.lengths.to_dict()
    assert report["over_length"] == report["truncated"] == longer and report["dropped"] == 0
    assert report["max_tokens"] == max(lengths)
    assert max(len(row["input_ids"]) for row in truncated.trainer.train_dataset) == limit

    dropped = prepare(
        _config(
            tiny_model_dir, [dataset], tmp_path / "c", max_seq_length=limit, long_samples="drop"
        )
    )
    assert dropped.lengths.to_dict()["dropped"] == longer
    assert len(dropped.trainer.train_dataset) == len(lengths) - longer

    with pytest.raises(TrainingError, match=f"{longer} of {len(lengths)} conversations are longer"):
        prepare(
            _config(
                tiny_model_dir,
                [dataset],
                tmp_path / "d",
                max_seq_length=limit,
                long_samples="error",
            )
        )


def test_dataset_problems_are_clear_errors(tiny_model_dir, data_dir, tmp_path):
    bare = tmp_path / "bare.jsonl"
    bare.write_text((data_dir / "vanilla.jsonl").read_text())
    with pytest.raises(TrainingError, match="no statistics file"):
        prepare(_config(tiny_model_dir, [bare], tmp_path / "o"))

    broken = tmp_path / "broken.jsonl"
    lines = (data_dir / "vanilla.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"id": "x", "messages": [{"role": "user", "content": "hi"}]})
    broken.write_text("\n".join(lines) + "\n")
    stats_path(broken).write_text(stats_path(data_dir / "vanilla.jsonl").read_text())
    with pytest.raises(DataFormatError, match="broken.jsonl:3: no assistant turn"):
        prepare(_config(tiny_model_dir, [broken], tmp_path / "o"))

    with pytest.raises(TrainingError, match="different retrieval settings"):
        prepare(
            _config(
                tiny_model_dir,
                [data_dir / "vanilla.jsonl", data_dir / "ra_it.jsonl"],
                tmp_path / "o",
            )
        )
    with pytest.raises(TrainingError, match="does not exist"):
        prepare(_config(tiny_model_dir, [tmp_path / "missing.jsonl"], tmp_path / "o"))


@needs_training_stack
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_needs_a_gpu(tiny_model_dir, data_dir, tmp_path, precision):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only refusal")
    config = _config(
        tiny_model_dir, [data_dir / "vanilla.jsonl"], tmp_path / "o", precision=precision
    )
    with pytest.raises(TrainConfigError, match=f"precision '{precision}' needs a GPU"):
        prepare(config)


@needs_training_stack
def test_python_m_raitner_train(tiny_model_dir, data_dir, tmp_path, capsys):
    config_file = tmp_path / "train.json"
    config = _config(tiny_model_dir, [data_dir / "vanilla.jsonl"], tmp_path / "out", max_steps=50)
    config_file.write_text(json.dumps(config.to_dict()))
    assert main(["--config", str(config_file), "--max-steps", "2"]) == 0
    info = json.loads((tmp_path / "out" / MODEL_INFO).read_text())
    assert info["result"]["global_step"] == 2 and info["training"]["max_steps"] == 2
    assert "trained model written to" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        main(["--config", str(config_file), "--lora-dropout", "2"])
    assert caught.value.code == 2
    assert "lora_dropout must be in [0, 1)" in capsys.readouterr().err


@pytest.mark.slow
@needs_training_stack
def test_two_processes_train_one_model_with_ddp(tiny_model_dir, data_dir, tmp_path):
    """``torchrun`` (what ``accelerate launch`` starts) with two CPU processes: the batches are
    split between them, and one finished model is written. About 12 s."""
    import os

    output = tmp_path / "ddp"
    config = _config(
        tiny_model_dir,
        [data_dir / "vanilla.jsonl"],
        output,
        max_steps=2,
        per_device_train_batch_size=1,
    )
    config_file = tmp_path / "train.json"
    config_file.write_text(json.dumps(config.to_dict()))
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["-m", "raitner.train", "--config", str(config_file)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("trained model written to") == 1
    state = json.loads((output / "trainer_state.json").read_text())
    # 4 conversations, 1 per process and step, 2 processes: half an epoch per step.
    assert [entry["epoch"] for entry in state["log_history"] if "loss" in entry] == [0.5, 1.0]
    assert (output / MODEL_INFO).is_file() and not (output / ".final.tmp").exists()


def test_the_mean_logged_loss_weights_each_log_by_the_steps_it_covers():
    from raitner.train.sft import mean_logged_loss

    history = [
        {"loss": 2.0, "step": 10},
        {"eval_loss": 9.0, "step": 10},
        {"loss": 1.0, "step": 20},
        {"loss": 0.5, "step": 25},  # the last log covers only five steps
        {"train_loss": 7.0, "step": 25},
    ]
    assert mean_logged_loss(history) == pytest.approx((2.0 * 10 + 1.0 * 10 + 0.5 * 5) / 25)
    assert mean_logged_loss([{"train_loss": 1.0, "step": 3}]) is None
