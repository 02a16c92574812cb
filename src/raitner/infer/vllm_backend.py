"""Generation on a GPU with vLLM's offline engine, behind the same protocol as :class:`HFBackend`.

Inference asks one question per entity type, so the T prompts of one text share everything up
to the last question. vLLM's automatic prefix caching keeps the KV blocks of a prompt and reuses
them for any later prompt that starts with the same tokens; :class:`VLLMBackend` therefore
submits the prompts of one text one after another (grouped by everything before the last
message) and puts the answers back in input order.

What stays exactly as in :class:`~raitner.infer.backends.HFBackend` (it is used for it): the
prompt is the tokenizer's chat template with ``add_generation_prompt=True`` (for a trained
raitner folder, the template saved there, which is the one the model was trained with),
tokenized without special tokens; generation is greedy and stops at the same tokens (the model's
end-of-sequence tokens, the tokenizer's, known end-of-turn markers and ``stop_tokens``); only the
new tokens before the first stop are decoded, special tokens skipped. vLLM receives token ids,
never text, so its own tokenizer cannot add a BOS token or render a different template.

A trained raitner folder (LoRA adapter + ``raitner.json``) is served as its base model with the
adapter applied per request (``enable_lora=True`` and a ``LoRARequest``), or, with
``merge_lora=True``, as one model with the adapter merged into the weights (written to a
temporary folder first). ``constrained=True`` restricts every answer to a JSON list of strings
with vLLM's structured outputs.

The vLLM API targeted is the current one (vLLM 0.33: ``LLM(enable_prefix_caching=...,
enable_lora=..., max_lora_rank=...)``, ``LLM.generate`` on ``{"prompt_token_ids": ...}``
prompts, ``SamplingParams(structured_outputs=StructuredOutputsParams(json=...))``, present since
0.11); vLLM 0.10's ``guided_decoding=GuidedDecodingParams(json=...)`` is used when that is all
the installed version has. Importing this module imports neither vLLM nor torch.
"""

from __future__ import annotations

import gc
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from raitner.errors import RaitnerError
from raitner.infer.backends import HFBackend, _until_stop
from raitner.infer.list_ending import finish_reply
from raitner.prompts.templates import Message

__all__ = [
    "ANSWER_SCHEMA",
    "LORA_RANKS",
    "VLLMBackend",
    "VLLMNotAvailableError",
    "adapter_rank",
    "import_vllm",
    "merge_adapter",
    "prefix_grouped_order",
    "structured_output_kwargs",
    "vllm_lora_rank",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'raitner[vllm]'"

#: What every answer is when ``constrained=True``: a JSON list of mentions.
ANSWER_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

#: The values vLLM accepts for ``max_lora_rank`` (its ``LoRAConfig.max_lora_rank`` literal).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)

#: Name and id of the one adapter a backend serves (ids only need to be unique per engine).
_LORA_NAME = "raitner"
_LORA_ID = 1


class VLLMNotAvailableError(RaitnerError, RuntimeError):
    """vLLM, or the CUDA GPU it needs, is not there; the message says what to do."""


class _GenerationConfigOnly:
    """Stands in for a model where :class:`HFBackend` only reads ``generation_config``."""

    def __init__(self, generation_config: Any) -> None:
        self.generation_config = generation_config


class VLLMBackend:
    """Greedy replies from a ``vllm.LLM`` engine, prompts grouped by text for prefix caching.

    Build it with :meth:`from_pretrained`; the constructor wraps an engine that exists already.

    Args:
        llm: a ``vllm.LLM``.
        tokenizer: the Hugging Face tokenizer whose chat template renders the prompts (a
            trained folder's own) and which decodes the answers.
        lora_request: the ``vllm.lora.request.LoRARequest`` sent with every prompt, if any.
        generation_config: the model's ``transformers.GenerationConfig`` (its end-of-sequence
            tokens stop a reply, as in :class:`HFBackend`); None when it has none.
        stop_tokens: further tokens that end a reply (e.g. a trained folder's end-of-turn).
        constrained: restrict answers to a JSON list of strings (:data:`ANSWER_SCHEMA`).
        use_tqdm: vLLM's own progress bar.
        reply_ending: a :class:`raitner.infer.list_ending.ReplyEnding` applied to each reply
            once generated (e.g. ``close_lists``); None: replies as generated.
    """

    #: the name :func:`raitner.infer.select.make_backend` knows this backend by
    name: ClassVar[str] = "vllm"

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        *,
        lora_request: Any = None,
        generation_config: Any = None,
        stop_tokens: Sequence[str] = (),
        constrained: bool = False,
        use_tqdm: bool = False,
        reply_ending: Any = None,
    ) -> None:
        self.llm = llm
        self.tokenizer = tokenizer
        self.lora_request = lora_request
        self.constrained = constrained
        self.use_tqdm = use_tqdm
        #: finishes every reply after generation (vLLM decodes the rows to their end: the
        #: replies are those of the Hugging Face backends, without their early stop)
        self.reply_ending = reply_ending
        # Rendering, stop tokens and token spans are HFBackend's own code, so the two backends
        # cannot drift apart; it never generates here, so it needs no model.
        self._reference = HFBackend(
            _GenerationConfigOnly(generation_config), tokenizer, stop_tokens=stop_tokens
        )
        self._stops = self._reference.stop_token_ids()
        self._structured = structured_output_kwargs(ANSWER_SCHEMA) if constrained else {}
        #: the temporary folder of a merged model, removed by :meth:`close`
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path | None = None,
        *,
        constrained: bool = False,
        enable_prefix_caching: bool = True,
        merge_lora: bool = False,
        stop_tokens: Sequence[str] = (),
        use_tqdm: bool = False,
        **engine_kwargs: Any,
    ) -> VLLMBackend:
        """Start a vLLM engine for a model, as ``OpenNER.from_pretrained`` finds it.

        * ``None``: the fine-tuned default shipped in the package when there is one, else the
          embedded base model (its converted safetensors folder).
        * a folder with ``raitner.json``: its base model (``base_model_of``) with the folder's
          LoRA adapter, per request (``max_lora_rank`` from the adapter's rank) or merged into
          the weights with ``merge_lora=True``; the folder's tokenizer renders the prompts and
          its end-of-turn token stops replies.
        * anything else: a model id or folder vLLM can load, rendered with its own tokenizer.

        ``enable_prefix_caching`` switches vLLM's automatic prefix caching (on by default; off
        only to measure what it gains). ``engine_kwargs`` go to ``vllm.LLM`` (``dtype``,
        ``gpu_memory_utilization``, ``max_model_len``, ``enforce_eager``, ``tokenizer`` …).
        Raises :class:`VLLMNotAvailableError` without vLLM or without a CUDA GPU.
        """
        from raitner.api import base_model_of, read_model_config
        from raitner.models import packaged_default_model, resolve_model

        vllm = import_vllm()
        if not _cuda_available():
            raise VLLMNotAvailableError(
                "the vLLM backend needs a CUDA GPU and none is visible "
                "(torch.cuda.is_available() is False); use the default Hugging Face backend "
                "on this machine"
            )
        if path_or_id is None:
            path_or_id = packaged_default_model()
        config = read_model_config(path_or_id) if path_or_id is not None else None
        engine_kwargs["enable_prefix_caching"] = enable_prefix_caching
        tokenizer_kwargs = {}
        if "trust_remote_code" in engine_kwargs:
            tokenizer_kwargs["trust_remote_code"] = engine_kwargs["trust_remote_code"]
        stops = list(stop_tokens)
        lora_request = None
        workdir = None
        if config is None:
            model_path = resolve_model(path_or_id)
            tokenizer_path = model_path
        else:
            folder = Path(path_or_id)
            base = resolve_model(base_model_of(config))
            tokenizer_path = str(folder)
            end_of_turn = (config.get("chat_template") or {}).get("end_of_turn")
            if end_of_turn and end_of_turn not in stops:
                stops.append(end_of_turn)
            if merge_lora:
                workdir = tempfile.TemporaryDirectory(prefix="raitner-merged-")
                model_path = str(merge_adapter(folder, base, workdir.name))
            else:
                from vllm.lora.request import LoRARequest

                model_path = base
                engine_kwargs.setdefault("enable_lora", True)
                engine_kwargs.setdefault("max_loras", 1)
                engine_kwargs.setdefault("max_lora_rank", vllm_lora_rank(adapter_rank(folder)))
                lora_request = LoRARequest(
                    lora_name=_LORA_NAME, lora_int_id=_LORA_ID, lora_path=str(folder)
                )
        engine_kwargs.setdefault("tokenizer", tokenizer_path)
        tokenizer = _load_tokenizer(tokenizer_path, **tokenizer_kwargs)
        generation_config = _load_generation_config(model_path)
        logger.info(
            "starting vLLM %s on %s (prefix caching %s, %s)",
            getattr(vllm, "__version__", "?"),
            model_path,
            "on" if enable_prefix_caching else "off",
            "LoRA per request" if lora_request is not None else "no adapter or merged",
        )
        try:
            llm = vllm.LLM(model=model_path, **engine_kwargs)
        except BaseException:
            if workdir is not None:
                workdir.cleanup()
            raise
        backend = cls(
            llm,
            tokenizer,
            lora_request=lora_request,
            generation_config=generation_config,
            stop_tokens=stops,
            constrained=constrained,
            use_tqdm=use_tqdm,
        )
        backend._workdir = workdir
        return backend

    def render(self, conversation: Sequence[Message]) -> str:
        """The prompt text of one conversation, exactly as :meth:`HFBackend.render` makes it."""
        return self._reference.render(conversation)

    def stop_token_ids(self) -> list[int]:
        return list(self._stops)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the tokens of ``text`` (for chunking)."""
        return self._reference.token_spans(text)

    def sampling_params(self, max_new_tokens: int) -> Any:
        """Greedy ``vllm.SamplingParams`` for one answer."""
        from vllm import SamplingParams

        return SamplingParams(
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop_token_ids=list(self._stops),
            **self._structured,
        )

    def generate(
        self, conversations: Sequence[Sequence[Message]], max_new_tokens: int
    ) -> list[str]:
        if not conversations:
            return []
        if self.llm is None:
            raise RuntimeError("this VLLMBackend has been closed")
        order = prefix_grouped_order(conversations)
        prompts = [self.render(conversations[index]) for index in order]
        encoded = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        options: dict[str, Any] = {"use_tqdm": self.use_tqdm}
        if self.lora_request is not None:
            options["lora_request"] = self.lora_request
        outputs = self.llm.generate(
            [{"prompt_token_ids": list(ids)} for ids in encoded],
            self.sampling_params(max_new_tokens),
            **options,
        )
        if len(outputs) != len(order):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(order)} prompts")
        replies = [""] * len(conversations)
        for index, output in zip(order, outputs, strict=True):
            tokens = list(output.outputs[0].token_ids)
            replies[index] = finish_reply(
                self.reply_ending,
                self.tokenizer.decode(_until_stop(tokens, self._stops), skip_special_tokens=True),
            )
        return replies

    def close(self) -> None:
        """Shut the engine down and free its GPU memory (and a merged model's folder)."""
        llm, self.llm = self.llm, None
        if llm is not None:
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            shutdown = getattr(core, "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
            gc.collect()
            if _cuda_available():
                import torch

                torch.cuda.empty_cache()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None


def import_vllm() -> Any:
    """The ``vllm`` module, or a :class:`VLLMNotAvailableError` that says how to install it."""
    try:
        import vllm
    except ImportError as error:
        raise VLLMNotAvailableError(
            f"the vLLM backend needs vLLM on a machine with a CUDA GPU: {INSTALL_HINT} ({error})"
        ) from error
    return vllm


def structured_output_kwargs(schema: dict[str, Any]) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments that constrain an answer to the JSON ``schema``.

    vLLM 0.11 and later: ``structured_outputs=StructuredOutputsParams(json=schema, ...)``; vLLM
    0.10 (removed in 0.12): ``guided_decoding=GuidedDecodingParams(json=schema, ...)``. Both with
    ``disable_any_whitespace=True``: the grammar then allows only the compact layout
    ``["a", "b"]`` that ``Template.render_answer`` writes and the model was trained on (as the
    Hugging Face backends' constraint, :mod:`raitner.infer.constrained`, does).
    """
    import vllm.sampling_params as sampling

    current = getattr(sampling, "StructuredOutputsParams", None)
    if current is not None:
        return {"structured_outputs": current(json=schema, disable_any_whitespace=True)}
    legacy = getattr(sampling, "GuidedDecodingParams", None)
    if legacy is not None:
        logger.info("this vLLM predates StructuredOutputsParams; using GuidedDecodingParams")
        return {"guided_decoding": legacy(json=schema, disable_any_whitespace=True)}
    raise VLLMNotAvailableError(
        "this vLLM has neither StructuredOutputsParams nor GuidedDecodingParams, so "
        f"constrained=True cannot be served: upgrade vLLM ({INSTALL_HINT}) or pass "
        "constrained=False"
    )


def prefix_grouped_order(conversations: Sequence[Sequence[Message]]) -> list[int]:
    """Indices of ``conversations`` with those that differ only in their last message together.

    Groups follow the order of their first member and keep their members' order, so the
    questions of one text (which share the system, text and example turns) reach vLLM one after
    another and all but the first find the shared prefix in its cache.
    """
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for index, conversation in enumerate(conversations):
        key = tuple((message["role"], message["content"]) for message in conversation[:-1])
        groups.setdefault(key, []).append(index)
    return [index for members in groups.values() for index in members]


def adapter_rank(folder: str | Path) -> int:
    """The largest LoRA rank in a PEFT adapter folder (``r`` and any ``rank_pattern``)."""
    path = Path(folder) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no adapter_config.json: not a LoRA adapter folder")
    config = json.loads(path.read_text(encoding="utf-8"))
    pattern = config.get("rank_pattern") or {}
    return max([int(config.get("r") or 0), *(int(rank) for rank in pattern.values())])


def vllm_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of rank ``rank``."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ValueError(
        f"LoRA rank {rank} is above vLLM's largest max_lora_rank ({LORA_RANKS[-1]}); "
        "serve it with merge_lora=True"
    )


def merge_adapter(folder: str | Path, base: str, output_dir: str | Path) -> Path:
    """Write ``base`` with the LoRA adapter of ``folder`` merged in, and the folder's tokenizer,
    to ``output_dir`` (on the CPU, in float32); return ``output_dir``."""
    from peft import PeftModel

    from raitner.models import load_causal_lm

    model, _ = load_causal_lm(base, device="cpu", dtype="float32")
    merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    output = Path(output_dir)
    merged.save_pretrained(output)
    _load_tokenizer(str(folder)).save_pretrained(output)
    return output


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _load_tokenizer(path: str, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, **kwargs)


def _load_generation_config(path: str) -> Any:
    """The generation config transformers would give the model: its file, else one derived from
    the model config (as ``from_pretrained`` does), else None."""
    from transformers import AutoConfig, GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path)
    except OSError:
        pass
    try:
        return GenerationConfig.from_model_config(AutoConfig.from_pretrained(path))
    except (OSError, ValueError):
        return None
