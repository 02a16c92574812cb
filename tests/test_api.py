"""``OpenNER``: loading (base model, trained model folder, embedded default) and the GLiNER-style
calls. Tiny random models answer gibberish, so the checks are on shapes, offsets, equality
between equivalent paths (batch vs single, saved vs in memory) and on what was loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raitner.api import (
    ModelFormatError,
    OpenNER,
    base_model_of,
    read_model_config,
    template_of,
)
from raitner.prompts.templates import get_template
from raitner.schema import Entity, Example

EN = get_template("ra-it-en-v1")
TEXTS = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。", "Paris Paris and Rome"]
LABELS = ["person", "location"]


class Scripted:
    """Answers from a dict keyed by label; records the conversations."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.seen: list[list[dict[str, str]]] = []

    def generate(self, conversations, max_new_tokens):
        self.seen.extend(conversations)
        labels = [
            c[-1]["content"].split("What describes ")[1][: -len(" in the text?")]
            for c in conversations
        ]
        return [self.answers.get(label, "[]") for label in labels]


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def check_entities(text: str, entities: list[dict]) -> None:
    assert [(e["start"], e["end"]) for e in entities] == sorted(
        (e["start"], e["end"]) for e in entities
    )
    for entity in entities:
        assert set(entity) == {"start", "end", "text", "label"}
        assert text[entity["start"] : entity["end"]] == entity["text"]


def test_import_is_lazy_and_exported() -> None:
    import raitner

    assert raitner.OpenNER is OpenNER
    from raitner import OpenNER as exported

    assert exported is OpenNER
    with pytest.raises(AttributeError):
        raitner.NoSuchThing  # noqa: B018


def test_predict_entities_gliner_shape() -> None:
    backend = Scripted({"person": '["Barack Obama"]', "location": '["Paris", "Berlin"]'})
    ner = OpenNER(backend, "ra-it-en-v1")
    text = "Barack Obama visited Paris. Paris!"
    assert ner.predict_entities(text, LABELS) == [
        {"start": 0, "end": 12, "text": "Barack Obama", "label": "person"},
        {"start": 21, "end": 26, "text": "Paris", "label": "location"},
        {"start": 28, "end": 33, "text": "Paris", "label": "location"},
    ]
    assert backend.seen == [EN.query_messages(text, label) for label in LABELS]
    [prediction] = ner.predict([text], LABELS)
    assert prediction.unaligned == [("Berlin", "location")]
    assert ner.raw_answers([text], LABELS) == [backend.answers]


def test_flat_ner_threshold_and_examples() -> None:
    backend = Scripted({"organization": '["New York Times"]', "location": '["New York"]'})
    ner = OpenNER(backend, EN)
    text = "The New York Times"
    nested = ner.predict_entities(text, ["organization", "location"])
    assert [e["label"] for e in nested] == ["location", "organization"]
    flat = ner.predict_entities(text, ["organization", "location"], flat_ner=True)
    assert flat == [{"start": 4, "end": 18, "text": "New York Times", "label": "organization"}]
    with pytest.warns(UserWarning, match="threshold"):
        ner.predict_entities(text, ["location"], threshold=0.5)
    shot = Example("s", "Rome is old.", "en", [Entity(0, 4, "Rome", "location")])
    backend.seen.clear()
    ner.predict_entities(text, ["location"], examples=[shot])
    assert backend.seen == [EN.query_messages(text, "location", [shot])]


def test_examples_from_a_pool() -> None:
    from raitner.retrieval import HashingEmbedder

    pool = [
        Example("a", "Rome is the capital of Italy.", "en", [Entity(0, 4, "Rome", "city")]),
        Example("b", "Anna sings in the choir.", "en", [Entity(0, 4, "Anna", "person")]),
    ]
    backend = Scripted({})
    ner = OpenNER(backend, EN, pool=pool, retrieval={"k": 1}, embedder=HashingEmbedder())
    ner.predict_entities("Paris is the capital of France.", ["city"], examples="pool")
    assert backend.seen == [EN.query_messages("Paris is the capital of France.", "city", [pool[0]])]
    backend.seen.clear()
    ner.predict_entities("Paris is the capital of France.", ["city"])
    assert backend.seen == [EN.query_messages("Paris is the capital of France.", "city")]


def test_from_model_batch_equals_one_by_one(lively_model_dir: Path) -> None:
    model, tokenizer = load(lively_model_dir)
    ner = OpenNER.from_model(model, tokenizer, max_new_tokens=12)
    together = ner.inference(TEXTS, LABELS, batch_size=8)
    alone = [ner.predict_entities(text, LABELS) for text in TEXTS]
    assert together == alone
    for text, entities in zip(TEXTS, together, strict=True):
        check_entities(text, entities)
    answers = ner.raw_answers(TEXTS, LABELS, batch_size=1)
    assert [set(a) for a in answers] == [set(LABELS)] * len(TEXTS)
    assert len({a for text_answers in answers for a in text_answers.values()}) > 1


def test_from_pretrained_base_model(lively_model_dir: Path) -> None:
    ner = OpenNER.from_pretrained(str(lively_model_dir), max_new_tokens=12)
    assert ner.template.id == "ra-it-en-v1" and ner.config is None
    model, tokenizer = load(lively_model_dir)
    reference = OpenNER.from_model(model, tokenizer, max_new_tokens=12)
    assert ner.raw_answers(TEXTS, LABELS) == reference.raw_answers(TEXTS, LABELS)
    assert OpenNER.from_pretrained(lively_model_dir, lang="zh").template.id == "ra-it-zh-v1"


def test_from_pretrained_none_is_the_embedded_default(monkeypatch, lively_model_dir: Path) -> None:
    import raitner.models

    calls = []

    def fake_load(name_or_path=None, *, device=None, dtype=None, **kwargs):
        calls.append((name_or_path, device, dtype))
        return load(lively_model_dir)

    monkeypatch.setattr(raitner.models, "load_causal_lm", fake_load)
    # a package without a trained default model falls back to the embedded base model
    monkeypatch.setattr(raitner.models, "packaged_default_model", lambda: None)
    ner = OpenNER.from_pretrained(device="cpu")
    assert calls == [(None, "cpu", None)]
    assert ner.template.id == "ra-it-en-v1"


def test_the_packaged_default_model_is_a_complete_model_folder() -> None:
    from raitner.models import EMBEDDED_LLM, MODEL_FORMAT, packaged_default_model

    folder = packaged_default_model()
    assert folder is not None, "the package ships a trained default model"
    info = json.loads((folder / "raitner.json").read_text(encoding="utf-8"))
    assert info["format"] == MODEL_FORMAT
    assert info["base_model"]["embedded"] == EMBEDDED_LLM and info["base_model"]["path"] is None
    assert info["template"] == "ra-it-en-v1" and info["languages"] == ["en"]
    adapter = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    assert adapter["peft_type"] == "LORA"
    for name in ("adapter_model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (folder / name).is_file()


@pytest.mark.slow
def test_the_packaged_default_model_finds_entities() -> None:
    from raitner.models import ModelNotAvailableError

    try:
        ner = OpenNER.from_pretrained(device="cpu")
    except ModelNotAvailableError as error:
        pytest.skip(str(error))
    text = "Barack Obama met Angela Merkel in Berlin on Tuesday to discuss NATO."
    entities = ner.predict_entities(text, ["person", "location"])
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert {"text": "Barack Obama", "label": "person"} in [
        {"text": e["text"], "label": e["label"]} for e in entities
    ]
    assert {"text": "Berlin", "label": "location"} in [
        {"text": e["text"], "label": e["label"]} for e in entities
    ]


def write_model_folder(folder: Path, base: Path, peft_model, tokenizer, **overrides) -> None:
    from raitner.retrieval import HashingEmbedder

    peft_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    info = {
        "format": "raitner-model-v1",
        "base_model": {"name": "someone/gone", "path": str(base), "origin": "x", "embedded": None},
        "template": "ra-it-en-v1",
        "templates": {"en": "ra-it-en-v1"},
        "languages": ["en"],
        "retrieval": {"embedder": HashingEmbedder().name, "strategy": "nn", "k": 1, "seed": 7},
        "chat_template": {"source": "model", "end_of_turn": "<|im_end|>"},
        **overrides,
    }
    (folder / "raitner.json").write_text(json.dumps(info), encoding="utf-8")


def test_saved_adapter_predicts_like_the_model_in_memory(
    lively_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from raitner.retrieval import HashingEmbedder, RetrievalConfig

    base, tokenizer = load(lively_model_dir)
    torch.manual_seed(3)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    tuned = get_peft_model(base, config)
    in_memory = OpenNER.from_model(tuned, tokenizer, max_new_tokens=12).raw_answers(TEXTS, LABELS)
    write_model_folder(tmp_path, lively_model_dir, tuned, tokenizer)

    loaded = OpenNER.from_pretrained(tmp_path, max_new_tokens=12)
    assert loaded.raw_answers(TEXTS, LABELS) == in_memory
    # the LoRA update is merged into the base weights at load; kept apart on request
    from peft import PeftModel

    assert not isinstance(loaded.backend.model, PeftModel)
    apart = OpenNER.from_pretrained(tmp_path, max_new_tokens=12, merge_lora=False)
    assert isinstance(apart.backend.model, PeftModel)
    assert apart.raw_answers(TEXTS, LABELS) == in_memory
    from raitner.cli import _build_parser, _loader_options

    for flags, merged in (([], True), (["--no-merge-lora"], False)):
        args = _build_parser().parse_args(["eval", "--model", str(tmp_path), *flags])
        assert _loader_options(args)["merge_lora"] is merged
    plain = OpenNER.from_pretrained(lively_model_dir, max_new_tokens=12).raw_answers(TEXTS, LABELS)
    assert plain != in_memory, "the adapter must change the answers"
    assert loaded.template.id == "ra-it-en-v1"
    assert loaded.config["languages"] == ["en"]
    assert loaded.predictor.retrieval == RetrievalConfig(strategy="nn", k=1, seed=7)
    assert loaded.predictor.embedder.name == HashingEmbedder().name
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in loaded.backend.stop_token_ids()
    override = OpenNER.from_pretrained(tmp_path, retrieval={"strategy": "random", "k": 3})
    assert override.predictor.retrieval == RetrievalConfig(strategy="random", k=3)


def test_model_config_reading(tmp_path: Path) -> None:
    assert read_model_config(tmp_path) is None
    (tmp_path / "raitner.json").write_text('{"format": "raitner-model-v0"}', encoding="utf-8")
    with pytest.raises(ModelFormatError, match="raitner-model-v1"):
        read_model_config(tmp_path)
    (tmp_path / "raitner.json").write_text('{"format": "raitner-model-v1"}', encoding="utf-8")
    with pytest.raises(ModelFormatError, match="base_model"):
        read_model_config(tmp_path)
    with pytest.raises(ModelFormatError):
        OpenNER.from_pretrained(tmp_path)

    assert base_model_of({"base_model": "org/model"}) == "org/model"
    assert base_model_of({"base_model": None}) is None
    gone = {"name": "org/model", "path": str(tmp_path / "missing")}
    assert base_model_of({"base_model": gone}) == "org/model"
    here = {"name": None, "path": str(tmp_path)}
    assert base_model_of({"base_model": here}) == str(tmp_path)

    both = {
        "template": None,
        "templates": {"en": "ra-it-en-v1", "zh": "ra-it-zh-v1"},
        "languages": ["en", "zh"],
    }
    assert template_of(both, None) == "ra-it-en-v1"
    assert template_of(both, "zh") == "ra-it-zh-v1"
    only_zh = {"template": "ra-it-zh-v1", "templates": {"zh": "ra-it-zh-v1"}, "languages": ["zh"]}
    assert template_of(only_zh, None) == "ra-it-zh-v1"
