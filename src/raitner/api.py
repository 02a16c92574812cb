"""``OpenNER``: load a model, give it text and entity types, get entities with offsets.

::

    from raitner import OpenNER

    ner = OpenNER.from_pretrained("path/to/trained-model")     # or None: the embedded default
    ner.predict_entities("Barack Obama visited Paris.", ["person", "location"])
    # [{"start": 0, "end": 12, "text": "Barack Obama", "label": "person"},
    #  {"start": 21, "end": 26, "text": "Paris", "label": "location"}]

The output follows GLiNER's ``predict_entities`` (character offsets, ``end`` exclusive), without
a score: a generated answer has none.
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from raitner.errors import ModelLoadError, RaitnerError
from raitner.infer.backends import DEFAULT_MAX_NEW_TOKENS, GenerationBackend
from raitner.infer.chunking import DEFAULT_MAX_TOKENS, DEFAULT_OVERLAP_TOKENS
from raitner.infer.journal import AnswerJournal
from raitner.infer.predictor import (
    DEFAULT_BATCH_SIZE,
    ExamplesArg,
    Predictor,
    TextPrediction,
)
from raitner.models import MODEL_CONFIG_FILE, MODEL_FORMAT
from raitner.prompts.templates import Template, default_template_id, get_template
from raitner.schema import Example

__all__ = [
    "MODEL_CONFIG_FILE",
    "MODEL_FORMAT",
    "ModelFormatError",
    "OpenNER",
    "base_model_of",
    "inference_defaults_of",
    "read_model_config",
    "template_of",
]


class ModelFormatError(RaitnerError, ValueError):
    """A folder's ``raitner.json`` is not one this version can read."""


def read_model_config(folder: str | Path) -> dict[str, Any] | None:
    """The ``raitner.json`` of a model folder, or None when ``folder`` is not one."""
    path = Path(folder) / MODEL_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelFormatError(
            f"{path}:{err.lineno}: not valid JSON ({err.msg}); expected the model folder's "
            f"settings as one JSON object"
        ) from err
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ModelFormatError(f"{path}: expected format {MODEL_FORMAT!r}, got {found!r}")
    if "base_model" not in config:
        raise ModelFormatError(f"{path}: 'base_model' is missing")
    if not config.get("template") and not config.get("templates"):
        raise ModelFormatError(f"{path}: neither 'template' nor 'templates' is given")
    return config


#: Decoding settings a model folder may carry in ``raitner.json``'s ``inference`` section,
#: with the type each must have.
INFERENCE_SETTINGS: dict[str, tuple[type, ...]] = {
    "empty_bias": (int, float),
    "close_lists": (bool,),
    "vote_with": (list,),
    "min_votes": (int,),
}


def inference_defaults_of(config: dict[str, Any] | None) -> dict[str, Any]:
    """The decoding defaults of a model folder's ``raitner.json`` (``inference``: e.g.
    ``{"empty_bias": 1.0, "close_lists": true}``, chosen when the model was packaged); ``{}``
    for none. ``vote_with`` lists further model folders, relative to this one, that answer
    every question too (:mod:`raitner.infer.voting`), ``min_votes`` how many must agree.
    :class:`ModelFormatError` for an unknown setting or a value of the wrong type."""
    if config is None or config.get("inference") is None:
        return {}
    section = config["inference"]
    if not isinstance(section, dict):
        raise ModelFormatError(f"raitner.json: 'inference' must be an object, got {section!r}")
    for key, value in section.items():
        if key not in INFERENCE_SETTINGS:
            known = ", ".join(INFERENCE_SETTINGS)
            raise ModelFormatError(f"raitner.json: unknown inference setting {key!r} ({known})")
        kinds = INFERENCE_SETTINGS[key]
        if list in kinds:
            if not isinstance(value, list) or not all(
                isinstance(item, str) and item for item in value
            ):
                raise ModelFormatError(
                    f"raitner.json: inference.{key} must be a list of folder names, got {value!r}"
                )
        elif kinds == (int,):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelFormatError(
                    f"raitner.json: inference.{key} must be a positive whole number, got {value!r}"
                )
        elif bool in kinds:
            if not isinstance(value, bool):
                raise ModelFormatError(
                    f"raitner.json: inference.{key} must be true or false, got {value!r}"
                )
        elif isinstance(value, bool) or not isinstance(value, kinds):
            raise ModelFormatError(f"raitner.json: inference.{key} must be a number, got {value!r}")
    return dict(section)


def base_model_of(config: dict[str, Any]) -> str | None:
    """What to load as the base model of a model folder (None: the embedded default).

    ``base_model`` is a name (Hub id, folder, or None for the embedded default) or a record
    ``{"name", "path", ...}``; its ``path`` is used when that folder exists here (the exact
    weights trained on), else its ``name``.
    """
    base = config["base_model"]
    if isinstance(base, dict):
        path = base.get("path")
        if path and Path(path).is_dir():
            return str(path)
        return base.get("name")
    return base


def template_of(config: dict[str, Any], lang: str | None) -> str:
    """The template id a model folder was trained with, for ``lang`` when it has several."""
    templates = config.get("templates") or {}
    if lang is not None and lang in templates:
        return templates[lang]
    if config.get("template"):
        return config["template"]
    languages = config.get("languages") or sorted(templates)
    if lang is not None:
        raise ModelFormatError(f"the model was trained on {languages}, not on {lang!r}")
    return templates[languages[0]]


class OpenNER:
    """Open NER with an instruction-tuned LLM: one question per entity type.

    Build it with :meth:`from_pretrained` (a trained raitner model folder, a base model, or the
    embedded default) or :meth:`from_model` (a model already in memory); the constructor takes
    any :class:`~raitner.infer.backends.GenerationBackend`.

    ``pool`` (Examples or the path of an annotated file) enables ``examples="pool"``: on-demand
    retrieval of in-context examples with ``retrieval`` (a ``RetrievalConfig`` or its dict;
    default: the model's training settings from ``raitner.json``, else NN with k=2).

    The loaders take ``backend`` (``"hf"``, ``"hf-prefix"``, ``"vllm"``; default
    :data:`raitner.infer.select.DEFAULT_BACKEND`) and ``constrained`` (answers restricted to a
    JSON list of strings, :mod:`raitner.infer.constrained`); :attr:`backend_name` and
    :attr:`constrained` record them (None / False for a backend given to the constructor).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        template: Template | str,
        *,
        pool: Sequence[Example] | str | Path | None = None,
        retrieval: Any = None,
        embedder: Any = None,
        config: dict[str, Any] | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_text_tokens: int | None = DEFAULT_MAX_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.template = _as_template(template)
        self.backend = backend
        #: the backend's name when a loader chose it (:data:`raitner.infer.select.BACKENDS`)
        self.backend_name: str | None = None
        #: whether answers are constrained to a JSON list of strings (set by the loaders)
        self.constrained = False
        #: the bias for the empty answer the backend decodes with (:mod:`raitner.infer.empty_bias`)
        self.empty_bias = float(getattr(backend, "empty_bias", 0.0))
        #: whether list answers end at a repeated item and are closed when cut
        #: (:mod:`raitner.infer.list_ending`)
        self.close_lists = getattr(getattr(backend, "reply_ending", None), "name", None) == (
            "close_lists"
        )
        #: the model folder's ``raitner.json`` (None for a base model)
        self.config = config
        #: the further models whose answers are voted with this one's (set by the loaders)
        self.vote_with: list[str] = []
        #: how many of the voting models must give a mention (None: no vote)
        self.min_votes: int | None = getattr(backend, "min_votes", None)
        self.predictor = Predictor(
            backend,
            self.template,
            pool=pool,
            retrieval=retrieval,
            embedder=embedder,
            max_new_tokens=max_new_tokens,
            max_text_tokens=max_text_tokens,
            overlap_tokens=overlap_tokens,
            batch_size=batch_size,
            show_progress=False,
        )

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        template: Template | str | None = None,
        lang: str = "en",
        batch_size: int = DEFAULT_BATCH_SIZE,
        stop_tokens: Sequence[str] = (),
        backend: str | None = None,
        constrained: bool = False,
        empty_bias: float = 0.0,
        close_lists: bool = False,
        **options: Any,
    ) -> OpenNER:
        """Wrap a transformers model (optionally PEFT) and its tokenizer in a backend.

        ``template`` defaults to the RA-IT template of ``lang``; ``stop_tokens`` end a reply
        besides the usual end-of-turn tokens; ``backend`` is ``"hf"`` or ``"hf-prefix"``
        (default :data:`~raitner.infer.select.DEFAULT_BACKEND`); ``constrained`` restricts
        answers to a JSON list of strings; ``empty_bias`` biases the choice of the empty
        answer ``[]`` (:mod:`raitner.infer.empty_bias`; 0: plain greedy); ``close_lists`` ends
        list answers at their first repeated item and closes those the token limit cut
        (:mod:`raitner.infer.list_ending`); ``options`` go to the constructor.
        """
        from raitner.infer.select import backend_name, check_backend, make_backend

        name = check_backend(backend)
        if name == "vllm":
            raise ValueError("from_model wraps a transformers model; load vLLM by from_pretrained")
        chosen = template if template is not None else default_template_id(lang)
        chosen_template = _as_template(chosen)
        generator = make_backend(
            name,
            model,
            tokenizer,
            batch_size=batch_size,
            stop_tokens=stop_tokens,
            constrained=constrained,
            empty_bias=empty_bias,
            render_answer=chosen_template.render_answer,
            close_lists=close_lists,
        )
        ner = cls(generator, chosen, batch_size=batch_size, **options)
        ner.backend_name, ner.constrained = backend_name(generator, name), bool(constrained)
        return ner

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path | None = None,
        *,
        lang: str | None = None,
        template: Template | str | None = None,
        device: str | None = None,
        dtype: Any = None,
        pool: Sequence[Example] | str | Path | None = None,
        retrieval: Any = None,
        embedder: Any = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: str | None = None,
        constrained: bool = False,
        empty_bias: float | None = None,
        close_lists: bool | None = None,
        vote_with: Sequence[str | Path] | None = None,
        min_votes: int | None = None,
        merge_lora: bool = True,
        **options: Any,
    ) -> OpenNER:
        """Load a model for inference.

        * ``None``: the fine-tuned default shipped in the package when there is one
          (``raitner.models.packaged_default_model``), else the embedded base model
          (``"smollm2-135m-instruct"`` always names the untuned base).
        * a folder with ``raitner.json``: its base model (:func:`base_model_of`), the LoRA
          adapter and tokenizer in the folder, its template (:func:`template_of`), its
          end-of-turn token, and (unless given) its retrieval settings and embedder.
        * anything else: a base model (Hub id or folder) with the RA-IT template of ``lang``.

        ``lang`` defaults to the model folder's first language, else ``"en"``; ``template``
        overrides the template. Nothing is downloaded when ``HF_HUB_OFFLINE=1``.

        ``backend`` picks the generation backend by name (:mod:`raitner.infer.select`; default
        :data:`~raitner.infer.select.DEFAULT_BACKEND`); ``"vllm"`` starts a vLLM engine on the
        model instead of loading it with transformers (``device`` is then not used).
        ``constrained=True`` restricts every answer to a JSON list of strings
        (:mod:`raitner.infer.constrained`; the HF backends need
        ``pip install 'raitner[constrained]'``).

        ``empty_bias`` is added to the score of the empty answer ``[]`` where it parts from
        non-empty answers (:mod:`raitner.infer.empty_bias`): above 0 the model answers ``[]``
        more often (precision for recall). None: the model folder's own
        (``raitner.json``'s ``inference.empty_bias``, :func:`inference_defaults_of`), else 0.

        ``close_lists=True`` ends a list answer at its first repeated item (the row stops
        decoding there) and closes one the token limit cut after its last complete item
        (:mod:`raitner.infer.list_ending`). None: the model folder's own
        (``inference.close_lists``), else False.

        ``vote_with`` names further models (folders or ids, loaded as ``path_or_id`` is) that
        answer every question too; each answer is then the vote of all of them, the mentions
        at least ``min_votes`` of them give (default: more than half; with two models, both):
        :mod:`raitner.infer.voting`. They decode as this model does and must have been trained
        with its template; the prompts (and retrieval settings) are this model's. Each costs
        one more pass over the questions. None: the model folder's own
        (``inference.vote_with``, folders relative to it, and ``inference.min_votes``), else
        no vote; ``[]``: no vote.

        ``merge_lora`` (hf backends) adds a folder's LoRA update into the base weights once at
        load (peft's ``merge_and_unload``), so no forward pass computes it apart: faster, and
        the answers are the same up to float rounding (``benchmarks/lora_merge_inference.py``
        counts those that differ). False keeps the adapter apart, as raitner did before.
        """
        from raitner.infer.select import backend_name, check_backend
        from raitner.models import packaged_default_model

        name = check_backend(backend)
        if path_or_id is None:
            path_or_id = packaged_default_model()
        config = read_model_config(path_or_id) if path_or_id is not None else None
        defaults = inference_defaults_of(config)
        if empty_bias is None:
            empty_bias = defaults.get("empty_bias", 0.0)
        if close_lists is None:
            close_lists = defaults.get("close_lists", False)
        if vote_with is None:
            vote_with = [Path(path_or_id) / folder for folder in defaults.get("vote_with", [])]
            if min_votes is None and vote_with:
                min_votes = defaults.get("min_votes")
        if isinstance(vote_with, (str, Path)):
            raise TypeError("vote_with is a list of models; use [path] for one")
        vote_with = [str(member) for member in vote_with]
        if min_votes is not None and not vote_with:
            raise ValueError("min_votes applies to a vote: give the other models in vote_with")
        if vote_with and name == "vllm":
            raise RaitnerError(
                "a vote of several models runs on the hf and hf-prefix backends; the vllm "
                "backend serves one model (vote_with=[], --no-vote: the model alone)"
            )
        chosen = template if template is not None else _template_for(config, lang)
        if config is not None:
            settings = config.get("retrieval")
            if retrieval is None and isinstance(settings, dict):
                retrieval = _training_retrieval(settings)
            if embedder is None and isinstance(settings, dict):
                embedder = _training_embedder(settings)
        chosen_template = _as_template(chosen)
        decoding = {
            "batch_size": batch_size,
            "constrained": constrained,
            "empty_bias": empty_bias,
            "render_answer": chosen_template.render_answer,
            "close_lists": close_lists,
        }
        if name == "vllm" and dtype is not None:
            decoding["dtype"] = dtype
        generator = _load_backend(
            name, path_or_id, config, device, dtype, decoding, merge_lora=merge_lora
        )
        ran = backend_name(generator, name)
        if vote_with:
            from raitner.infer.voting import VotingBackend

            members = [generator]
            for member in vote_with:
                member_config = read_model_config(member)
                if template is None:
                    _check_member_template(member, member_config, chosen_template, lang)
                try:
                    loaded = _load_backend(
                        name, member, member_config, device, dtype, decoding, merge_lora=merge_lora
                    )
                except ModelLoadError as err:
                    raise ModelLoadError(f"the vote member {member!r}: {err}") from err
                members.append(loaded)
            generator = VotingBackend(
                members, min_votes=min_votes, render_answer=chosen_template.render_answer
            )
        ner = cls(
            generator,
            chosen_template,
            pool=pool,
            retrieval=retrieval,
            embedder=embedder,
            config=config,
            batch_size=batch_size,
            **options,
        )
        ner.backend_name, ner.constrained = ran, bool(constrained)
        ner.vote_with = vote_with
        return ner

    def with_constrained(self, constrained: bool) -> OpenNER:
        """This OpenNER with answers constrained to a JSON list of strings, or not.

        The copy shares the model (or vLLM engine), template, pool and embedder; only the
        decoding differs. ``self`` when it already decodes that way. Works for the backends a
        loader built (:mod:`raitner.infer.select`).
        """
        from raitner.infer.select import with_constrained

        if bool(constrained) == self.constrained:
            return self
        variant = copy.copy(self)
        variant.backend = with_constrained(self.backend, bool(constrained))
        variant.predictor = copy.copy(self.predictor)
        variant.predictor.backend = variant.backend
        variant.constrained = bool(constrained)
        return variant

    def predict(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        examples: ExamplesArg = None,
        batch_size: int | None = None,
        show_progress: bool = False,
        journal: AnswerJournal | None = None,
    ) -> list[TextPrediction]:
        """Full predictions: entities, raw answers, parse statuses, unaligned mentions.
        ``journal`` (:class:`raitner.infer.journal.AnswerJournal`) makes a long run
        resumable: answers are kept as they come, and a rerun asks only the rest."""
        return self.predictor.predict(
            texts,
            labels,
            examples=examples,
            batch_size=batch_size,
            show_progress=show_progress,
            journal=journal,
        )

    def predict_entities(
        self,
        text: str,
        labels: Sequence[str],
        examples: ExamplesArg = None,
        threshold: float | None = None,
        flat_ner: bool = False,
    ) -> list[dict[str, Any]]:
        """``[{"start", "end", "text", "label"}]`` of one text, sorted by start.

        ``examples``: ``None`` (no in-context examples), ``"pool"`` (retrieved from the pool)
        or a list of Examples. ``threshold`` is accepted for GLiNER compatibility and has no
        effect (generation gives no per-entity score; the model-level knob between precision
        and recall is ``empty_bias``, set when loading). ``flat_ner`` drops overlapping
        entities, longer first.
        """
        return self.inference(
            [text], labels, examples=examples, threshold=threshold, flat_ner=flat_ner
        )[0]

    def inference(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        examples: ExamplesArg = None,
        batch_size: int | None = None,
        threshold: float | None = None,
        flat_ner: bool = False,
        show_progress: bool = False,
    ) -> list[list[dict[str, Any]]]:
        """:meth:`predict_entities` for many texts; ``batch_size`` questions per backend call
        (a backend may cap it with its own batch size)."""
        if threshold is not None:
            warnings.warn(
                "threshold has no effect: generated entities carry no score (to trade recall "
                "for precision, load the model with empty_bias above 0)",
                UserWarning,
                stacklevel=2,
            )
        predictions = self.predict(
            texts, labels, examples=examples, batch_size=batch_size, show_progress=show_progress
        )
        return [prediction.to_dicts(flat_ner=flat_ner) for prediction in predictions]

    def raw_answers(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Sequence[Sequence[str]],
        *,
        examples: ExamplesArg = None,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> list[dict[str, str]]:
        """Per text, the answer to each label's question (for the papers' list metrics);
        see :meth:`TextPrediction.raw_answers` for chunked texts."""
        predictions = self.predict(
            texts, labels, examples=examples, batch_size=batch_size, show_progress=show_progress
        )
        return [prediction.raw_answers(self.template) for prediction in predictions]


def _as_template(template: Template | str) -> Template:
    """A template id looked up, a Template as it is."""
    return get_template(template) if isinstance(template, str) else template


def _template_for(config: dict[str, Any] | None, lang: str | None) -> str:
    """The template id of a model folder (:func:`template_of`), else RA-IT's for ``lang``."""
    return default_template_id(lang or "en") if config is None else template_of(config, lang)


def _load_backend(
    name: str,
    path_or_id: str | Path | None,
    config: dict[str, Any] | None,
    device: str | None,
    dtype: Any,
    decoding: dict[str, Any],
    *,
    merge_lora: bool = True,
) -> Any:
    """The generation backend ``name`` of one model (a raitner folder when ``config`` is its
    ``raitner.json``, else a base model) with the ``decoding`` options of ``make_backend``,
    stopping also at the end-of-turn token the folder was trained with; a folder's LoRA
    update merged into the base weights unless ``merge_lora`` is False."""
    from raitner.infer.select import make_backend
    from raitner.models import load_causal_lm

    if name == "vllm":
        model, tokenizer = path_or_id, None  # vLLM loads the model (and adapter) itself
    elif config is None:
        model, tokenizer = load_causal_lm(path_or_id, device=device, dtype=dtype)
    else:
        model, tokenizer = _load_adapter_model(
            Path(path_or_id), config, device, dtype, merge=merge_lora
        )
    end_of_turn = ((config or {}).get("chat_template") or {}).get("end_of_turn")
    stop_tokens = [end_of_turn] if end_of_turn else []
    return make_backend(name, model, tokenizer, stop_tokens=stop_tokens, **decoding)


def _check_member_template(
    member: str, config: dict[str, Any] | None, template: Template, lang: str | None
) -> None:
    """A vote member must have been trained with the template the questions are asked in."""
    own = _template_for(config, lang or template.lang)
    if own != template.id:
        raise ModelFormatError(
            f"the vote member {member!r} was trained with the template {own!r}, the questions "
            f"are asked with {template.id!r}; vote models trained alike (or pass template=)"
        )


def _load_adapter_model(
    folder: Path, config: dict[str, Any], device: str | None, dtype: Any, *, merge: bool = True
) -> tuple[Any, Any]:
    from peft import PeftModel
    from transformers import AutoTokenizer

    from raitner.models import load_causal_lm, quiet_peft_wrapping

    base_name = base_model_of(config)
    try:
        base, _ = load_causal_lm(base_name, device=device, dtype=dtype)
    except ModelLoadError as err:
        base_said = "the embedded default" if base_name is None else repr(base_name)
        raise ModelLoadError(
            f"the model folder {str(folder)!r} is a LoRA adapter on the base model {base_said} "
            f"(its {MODEL_CONFIG_FILE}), which cannot be loaded: {err}"
        ) from err
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with quiet_peft_wrapping():
        model = PeftModel.from_pretrained(base, folder)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return model, tokenizer


def _training_retrieval(settings: dict[str, Any]) -> Any:
    from raitner.retrieval import RetrievalConfig

    known = {f.name for f in fields(RetrievalConfig)}
    return RetrievalConfig.from_dict({k: v for k, v in settings.items() if k in known})


def _training_embedder(settings: dict[str, Any]) -> Any:
    """The embedder named in the training retrieval settings (key ``embedder``), if any."""
    from raitner.retrieval import HashingEmbedder, SentenceTransformerEmbedder
    from raitner.retrieval.embedders import DEFAULT_MODEL_NAME

    name = settings.get("embedder")
    if not isinstance(name, str) or not name:
        return None
    if name == DEFAULT_MODEL_NAME:
        return SentenceTransformerEmbedder()
    if name == HashingEmbedder().name:
        return HashingEmbedder()
    return SentenceTransformerEmbedder(name)
