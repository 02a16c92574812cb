"""The vLLM backend: engine options, prompts, request order, LoRA, structured outputs.

Most tests run without vLLM: a fake ``vllm`` package in ``sys.modules`` records what the backend
asks of the engine (its options, the sampling parameters, the prompts in the order sent) and
answers every prompt with tokens that name its text and question, followed by an end-of-turn
token and junk. The tests marked ``gpu`` run the real engine and skip unless vLLM is installed
and a CUDA device is visible.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from raitner.infer import vllm_backend
from raitner.infer.backends import HFBackend
from raitner.infer.parse import AnswerStatus, parse_mentions
from raitner.infer.predictor import Predictor
from raitner.infer.vllm_backend import (
    ANSWER_SCHEMA,
    VLLMBackend,
    VLLMNotAvailableError,
    adapter_rank,
    prefix_grouped_order,
    vllm_lora_rank,
)
from raitner.models import MODEL_CONFIG_FILE, MODEL_FORMAT
from raitner.prompts.templates import get_template

EN = get_template("ra-it-en-v1")
TEXTS = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。", "Paris is in France ."]
LABELS = ["person", "location", "city"]


# --------------------------------------------------------------------------- the fake vLLM


class FakeParams:
    """Stands for SamplingParams and the structured-output params: keeps its arguments."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class FakeLoRARequest:
    def __init__(self, *, lora_name: str, lora_int_id: int, lora_path: str) -> None:
        self.lora_name = lora_name
        self.lora_int_id = lora_int_id
        self.lora_path = lora_path


class FakeLLM:
    """Records its options and requests; answers ``["<label>@<text>"]<|im_end|> junk``."""

    engines: list[FakeLLM] = []

    def __init__(self, **kwargs: Any) -> None:
        from transformers import AutoTokenizer

        self.kwargs = kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(kwargs["tokenizer"])
        self.calls: list[tuple[list[dict[str, Any]], Any, dict[str, Any]]] = []
        FakeLLM.engines.append(self)

    def generate(self, prompts: list[dict[str, Any]], params: Any, **options: Any) -> list[Any]:
        self.calls.append((prompts, params, options))
        return [self._answer(prompt["prompt_token_ids"]) for prompt in prompts]

    def _answer(self, prompt_ids: list[int]) -> Any:
        prompt = self.tokenizer.decode(prompt_ids)
        text = re.findall(r"Text: (.*?)<\|im_end\|>", prompt)[-1]
        label = re.findall(r"What describes (.*?) in the text\?", prompt)[-1]
        answer = self.tokenizer.encode(json.dumps([f"{label}@{text}"], ensure_ascii=False))
        junk = self.tokenizer.encode(" more [] text")
        tokens = [*answer, self.tokenizer.convert_tokens_to_ids("<|im_end|>"), *junk]
        completion = types.SimpleNamespace(token_ids=tuple(tokens), text="(not read)")
        return types.SimpleNamespace(outputs=[completion])


def _expected_answer(text: str, label: str) -> str:
    return json.dumps([f"{label}@{text}"], ensure_ascii=False)


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A fake ``vllm`` (current API) in ``sys.modules``, and a CUDA device that is 'there'."""
    package = types.ModuleType("vllm")
    package.__version__ = "0.0.0+fake"
    sampling = types.ModuleType("vllm.sampling_params")
    lora = types.ModuleType("vllm.lora")
    lora_request = types.ModuleType("vllm.lora.request")
    package.LLM = FakeLLM
    package.SamplingParams = sampling.SamplingParams = FakeParams
    sampling.StructuredOutputsParams = type("StructuredOutputsParams", (FakeParams,), {})
    lora_request.LoRARequest = FakeLoRARequest
    package.sampling_params, package.lora, lora.request = sampling, lora, lora_request
    for module in (package, sampling, lora, lora_request):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(FakeLLM, "engines", [])
    monkeypatch.setattr(vllm_backend, "_cuda_available", lambda: True)
    return types.SimpleNamespace(package=package, sampling=sampling, engines=FakeLLM.engines)


# --------------------------------------------------------------------------- model folders


def _tokenizer(training_template: bool = False) -> Any:
    from tiny_models import build_tokenizer

    tokenizer = build_tokenizer()
    if training_template:
        from raitner.train.chat_template import training_chat_template

        tokenizer.chat_template = training_chat_template(tokenizer).template
    return tokenizer


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    """A base model folder as far as the fake engine needs: tokenizer and generation config
    (whose end-of-sequence token, ``<|endoftext|>``, differs from the tokenizer's)."""
    from transformers import GenerationConfig

    folder = tmp_path / "base"
    tokenizer = _tokenizer()
    tokenizer.save_pretrained(folder)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    GenerationConfig(eos_token_id=eos).save_pretrained(folder)
    return folder


def _trained_folder(folder: Path, base: Path, rank: int = 8, **rank_pattern: int) -> Path:
    """A raitner model folder pointing at ``base``: tokenizer with the training template,
    adapter config (no weights: the fake engine never reads them) and ``raitner.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    _tokenizer(training_template=True).save_pretrained(folder)
    adapter = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "rank_pattern": rank_pattern}
    (folder / "adapter_config.json").write_text(json.dumps(adapter), encoding="utf-8")
    config = {
        "format": MODEL_FORMAT,
        "base_model": {"name": "tiny", "path": str(base)},
        "template": EN.id,
        "chat_template": {"source": "chatml", "end_of_turn": "<|im_end|>"},
    }
    (folder / MODEL_CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    return folder


def _conversations(texts=TEXTS, labels=LABELS) -> list[list[dict[str, str]]]:
    """Label-major, so that the questions of one text are *not* next to each other."""
    return [EN.query_messages(text, label) for label in labels for text in texts]


# --------------------------------------------------------------------------- availability


def test_without_vllm_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(VLLMNotAvailableError, match=re.escape("pip install 'raitner[vllm]'")):
        VLLMBackend.from_pretrained("any/model")


def test_without_a_gpu_the_error_says_so(fake_vllm, monkeypatch, base_dir) -> None:
    monkeypatch.setattr(vllm_backend, "_cuda_available", lambda: False)
    with pytest.raises(VLLMNotAvailableError, match="CUDA GPU"):
        VLLMBackend.from_pretrained(base_dir)
    assert fake_vllm.engines == []


# --------------------------------------------------------------------------- engine options


@pytest.mark.parametrize("caching", [True, False])
def test_prefix_caching_is_passed_to_the_engine(fake_vllm, base_dir, caching) -> None:
    backend = VLLMBackend.from_pretrained(
        base_dir, enable_prefix_caching=caching, gpu_memory_utilization=0.5, dtype="float32"
    )
    (engine,) = fake_vllm.engines
    assert engine.kwargs == {
        "model": str(base_dir),
        "tokenizer": str(base_dir),
        "enable_prefix_caching": caching,
        "gpu_memory_utilization": 0.5,
        "dtype": "float32",
    }
    assert backend.lora_request is None
    backend.generate(_conversations(), 32)
    assert "lora_request" not in engine.calls[0][2]


def test_prefix_caching_is_on_by_default(fake_vllm, base_dir) -> None:
    VLLMBackend.from_pretrained(base_dir)
    assert fake_vllm.engines[0].kwargs["enable_prefix_caching"] is True


def test_adapter_folder_is_served_as_base_plus_lora_request(fake_vllm, base_dir, tmp_path):
    folder = _trained_folder(tmp_path / "trained", base_dir, rank=8)
    backend = VLLMBackend.from_pretrained(folder)
    (engine,) = fake_vllm.engines
    assert engine.kwargs["model"] == str(base_dir)
    assert engine.kwargs["tokenizer"] == str(folder)
    assert engine.kwargs["enable_lora"] is True
    assert engine.kwargs["max_lora_rank"] == 8
    assert engine.kwargs["max_loras"] == 1
    conversations = _conversations()
    backend.generate(conversations, 32)
    (_, _, options) = engine.calls[0]
    request = options["lora_request"]
    assert isinstance(request, FakeLoRARequest)
    assert request.lora_path == str(folder)
    # The folder's end-of-turn token and the base's generation config both stop a reply.
    tokenizer = backend.tokenizer
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in backend.stop_token_ids()
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in backend.stop_token_ids()


def test_max_lora_rank_holds_the_largest_rank_of_the_adapter(fake_vllm, base_dir, tmp_path):
    folder = _trained_folder(tmp_path / "trained", base_dir, rank=8, **{"q_proj": 24})
    assert adapter_rank(folder) == 24
    VLLMBackend.from_pretrained(folder)
    assert fake_vllm.engines[0].kwargs["max_lora_rank"] == 32
    assert [vllm_lora_rank(r) for r in (1, 2, 8, 9, 64, 300, 512)] == [1, 8, 8, 16, 64, 320, 512]
    with pytest.raises(ValueError, match="merge_lora=True"):
        vllm_lora_rank(513)


# --------------------------------------------------------------------------- prompts and order


def test_prompts_are_rendered_exactly_as_the_hf_backend_renders_them(fake_vllm, base_dir, tmp_path):
    folder = _trained_folder(tmp_path / "trained", base_dir)
    backend = VLLMBackend.from_pretrained(folder)
    reference = HFBackend(None, _tokenizer(training_template=True))
    conversations = _conversations()
    backend.generate(conversations, 32)
    (prompts, _, _) = fake_vllm.engines[0].calls[0]
    sent = [prompt["prompt_token_ids"] for prompt in prompts]
    expected = [
        reference.tokenizer(reference.render(conversations[i]), add_special_tokens=False)[
            "input_ids"
        ]
        for i in prefix_grouped_order(conversations)
    ]
    assert sent == expected
    assert backend.render(conversations[0]) == reference.render(conversations[0])
    assert backend.tokenizer.decode(sent[0]).endswith("<|im_start|>assistant\n")


def test_requests_are_grouped_by_text_and_answers_come_back_in_input_order(fake_vllm, base_dir):
    backend = VLLMBackend.from_pretrained(base_dir)
    conversations = _conversations()
    answers = backend.generate(conversations, 32)
    # Each answer is the fake's answer to its own question, cut at the end-of-turn token.
    expected = [_expected_answer(text, label) for label in LABELS for text in TEXTS]
    assert answers == expected
    (prompts, _, _) = fake_vllm.engines[0].calls[0]
    texts_sent = [
        re.findall(r"Text: (.*?)<\|im_end\|>", backend.tokenizer.decode(p["prompt_token_ids"]))[0]
        for p in prompts
    ]
    assert texts_sent == [text for text in TEXTS for _ in LABELS]


def test_grouping_keeps_first_appearance_and_member_order() -> None:
    conversations = _conversations(texts=["a", "b"], labels=["x", "y", "z"])
    assert prefix_grouped_order(conversations) == [0, 2, 4, 1, 3, 5]
    # Different in-context examples make a different prefix, hence another group.
    single = [[{"role": "user", "content": "q1"}], [{"role": "user", "content": "q2"}]]
    assert prefix_grouped_order(single) == [0, 1]
    assert prefix_grouped_order([]) == []


def test_the_predictor_gets_entities_through_the_vllm_backend(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir)
    predictor = Predictor(backend, EN, show_progress=False)
    text = "Barack Obama visited Paris in 2009 ."
    (prediction,) = predictor.predict([text], ["person", "location"])
    assert [answer.answer for answer in prediction.answers] == [
        _expected_answer(text, "person"),
        _expected_answer(text, "location"),
    ]
    assert predictor.token_spans == backend.token_spans


def test_token_spans_are_the_hf_tokenizers(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir)
    text = "Barack Obama visited 北京 ."
    assert backend.token_spans(text) == HFBackend(None, _tokenizer()).token_spans(text)


def test_no_conversations_no_request(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir)
    assert backend.generate([], 32) == []
    assert fake_vllm.engines[0].calls == []


def test_close_ends_the_backend(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir)
    backend.close()
    with pytest.raises(RuntimeError, match="closed"):
        backend.generate(_conversations(), 8)


# --------------------------------------------------------------------------- sampling params


def test_sampling_is_greedy_with_the_stop_tokens(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir)
    backend.generate(_conversations(), 77)
    (_, params, options) = fake_vllm.engines[0].calls[0]
    assert params.kwargs == {
        "temperature": 0.0,
        "max_tokens": 77,
        "stop_token_ids": backend.stop_token_ids(),
    }
    assert options == {"use_tqdm": False}


def test_constrained_answers_use_structured_outputs(fake_vllm, base_dir) -> None:
    backend = VLLMBackend.from_pretrained(base_dir, constrained=True)
    backend.generate(_conversations(), 16)
    (_, params, _) = fake_vllm.engines[0].calls[0]
    structured = params.kwargs["structured_outputs"]
    assert type(structured).__name__ == "StructuredOutputsParams"
    assert structured.kwargs == {"json": ANSWER_SCHEMA, "disable_any_whitespace": True}
    assert "guided_decoding" not in params.kwargs


def test_constrained_falls_back_to_guided_decoding_on_old_vllm(fake_vllm, base_dir) -> None:
    del fake_vllm.sampling.StructuredOutputsParams
    fake_vllm.sampling.GuidedDecodingParams = type("GuidedDecodingParams", (FakeParams,), {})
    backend = VLLMBackend.from_pretrained(base_dir, constrained=True)
    backend.generate(_conversations(), 16)
    (_, params, _) = fake_vllm.engines[0].calls[0]
    assert params.kwargs["guided_decoding"].kwargs == {
        "json": ANSWER_SCHEMA,
        "disable_any_whitespace": True,
    }
    assert "structured_outputs" not in params.kwargs


def test_constrained_without_any_structured_output_api_is_a_clear_error(fake_vllm, base_dir):
    del fake_vllm.sampling.StructuredOutputsParams
    with pytest.raises(VLLMNotAvailableError, match="constrained=False"):
        VLLMBackend.from_pretrained(base_dir, constrained=True)
    assert VLLMBackend.from_pretrained(base_dir).constrained is False


def test_the_schema_accepts_what_the_template_writes() -> None:
    answer = EN.render_answer(["Barack Obama", 'a "quoted" one'])
    value = json.loads(answer)
    assert ANSWER_SCHEMA == {"type": "array", "items": {"type": "string"}}
    assert isinstance(value, list) and all(isinstance(item, str) for item in value)
    assert parse_mentions(answer).status is AnswerStatus.OK


# --------------------------------------------------------------------------- merged adapters


def _lora_folder(tiny_model_dir: Path, folder: Path) -> Path:
    """A real raitner folder: a random (non-zero) LoRA adapter over the tiny model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape) * 0.5)
    _trained_folder(folder, tiny_model_dir)
    peft_model.save_pretrained(folder)
    return folder


def test_merged_adapter_is_served_as_one_model(fake_vllm, tiny_model_dir, tmp_path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = _lora_folder(tiny_model_dir, tmp_path / "trained")
    backend = VLLMBackend.from_pretrained(folder, merge_lora=True)
    (engine,) = fake_vllm.engines
    merged_dir = Path(engine.kwargs["model"])
    assert merged_dir.is_dir() and merged_dir != tiny_model_dir
    assert engine.kwargs["tokenizer"] == str(folder)
    assert "enable_lora" not in engine.kwargs
    assert backend.lora_request is None
    # The merged weights compute what base + adapter compute.
    ids = torch.tensor([backend.tokenizer.encode("Text: Paris is in France .")])
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    adapted = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), folder
    )
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        expected = adapted(ids).logits
        assert not torch.allclose(plain(ids).logits, expected, atol=1e-4)
        torch.testing.assert_close(merged(ids).logits, expected, atol=1e-4, rtol=1e-4)
    backend.close()
    assert not merged_dir.exists()


# --------------------------------------------------------------------------- real vLLM, GPU
#
# Exact equality with the HF backend is asserted in float32, where vLLM computes what
# transformers computes up to summation order: a plain model, and an adapter merged into it.
# vLLM's LoRA kernels run in half precision only, so the per-request adapter is compared in
# float16, answer by answer, allowing for the odd near-tie that the two libraries break apart.

ENGINE_OPTIONS = {"enforce_eager": True, "gpu_memory_utilization": 0.3, "max_model_len": 1024}


def _vllm_on_cuda() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


needs_vllm_gpu = pytest.mark.skipif(
    not _vllm_on_cuda(), reason="needs vLLM and a CUDA device (pip install 'raitner[vllm]')"
)


@pytest.fixture(scope="module")
def gpu_model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny raitner folder whose attention heads (64 dims) every vLLM kernel supports:
    a random Qwen2 with large weights (so greedy answers differ by prompt) and a LoRA
    adapter with non-zero weights."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    tokenizer = _tokenizer()
    base = tmp_path_factory.mktemp("gpu-base")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    generator = torch.Generator().manual_seed(1)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    return _lora_folder(base, tmp_path_factory.mktemp("gpu-trained") / "model")


def _base_of(folder: Path) -> str:
    from raitner.api import base_model_of, read_model_config

    return base_model_of(read_model_config(folder))


def _hf_answers(model_dir: Path | str, conversations, dtype: str, adapter: Path | None = None):
    """The reference: HFBackend on the GPU, as OpenNER.from_pretrained builds it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype))
    model = model.to("cuda")
    stop_tokens: list[str] = []
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, adapter)
        tokenizer = AutoTokenizer.from_pretrained(adapter)
        stop_tokens.append("<|im_end|>")
    try:
        return HFBackend(model, tokenizer, stop_tokens=stop_tokens).generate(conversations, 16)
    finally:
        del model
        torch.cuda.empty_cache()


def _vllm_answers(model: Path | str, conversations, **options: Any) -> list[str]:
    backend = VLLMBackend.from_pretrained(model, **ENGINE_OPTIONS, **options)
    try:
        return backend.generate(conversations, 16)
    finally:
        backend.close()


@pytest.mark.gpu
@needs_vllm_gpu
def test_vllm_greedy_answers_equal_the_hf_backends_for_a_plain_model(gpu_model_folder) -> None:
    conversations = _conversations()
    base = _base_of(gpu_model_folder)
    expected = _hf_answers(base, conversations, "float32")
    assert len(set(expected)) > 1, "the tiny model should answer different prompts differently"
    assert _vllm_answers(base, conversations, dtype="float32") == expected


@pytest.mark.gpu
@needs_vllm_gpu
def test_vllm_greedy_answers_equal_the_hf_backends_for_a_merged_adapter(gpu_model_folder):
    conversations = _conversations()
    expected = _hf_answers(
        _base_of(gpu_model_folder), conversations, "float32", adapter=gpu_model_folder
    )
    found = _vllm_answers(gpu_model_folder, conversations, merge_lora=True, dtype="float32")
    assert found == expected


@pytest.mark.gpu
@needs_vllm_gpu
def test_vllm_serves_the_adapter_per_request(gpu_model_folder) -> None:
    conversations = _conversations()
    base = _base_of(gpu_model_folder)
    expected = _hf_answers(base, conversations, "float16", adapter=gpu_model_folder)
    without_adapter = _hf_answers(base, conversations, "float16")
    assert expected != without_adapter, "the adapter should change the tiny model's answers"
    found = _vllm_answers(gpu_model_folder, conversations, dtype="float16")
    same = sum(a == b for a, b in zip(found, expected, strict=True))
    assert same >= 0.8 * len(expected), (found, expected)


@pytest.mark.gpu
@needs_vllm_gpu
def test_vllm_answers_do_not_depend_on_prefix_caching(gpu_model_folder) -> None:
    conversations = _conversations()
    base = _base_of(gpu_model_folder)
    cached = _vllm_answers(base, conversations, dtype="float32")
    assert _vllm_answers(base, conversations, dtype="float32", enable_prefix_caching=False) == (
        cached
    )


@pytest.mark.gpu
@needs_vllm_gpu
def test_vllm_constrained_answers_are_json_lists(gpu_model_folder) -> None:
    answers = _vllm_answers(
        _base_of(gpu_model_folder), _conversations(), dtype="float32", constrained=True
    )
    assert answers
    for answer in answers:
        # An answer cut by max_tokens is the start of a list; one that closed is exact JSON.
        assert answer.lstrip().startswith("["), answer
        if answer.rstrip().endswith("]"):
            value = json.loads(answer)
            assert isinstance(value, list) and all(isinstance(item, str) for item in value)
