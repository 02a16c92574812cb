"""Constrained answers: decoding that can only produce a JSON list of strings.

Every question asks for the mentions of one entity type, and the model is trained to answer
``["mention", ...]`` (``Template.render_answer``: ``json.dumps`` with its default separators).
With constrained decoding the answer cannot be anything else: at every step the tokens that
would leave the grammar of that list get a score of ``-inf`` before the next token is chosen.

The grammar is compiled by `xgrammar <https://github.com/mlc-ai/xgrammar>`_ from the JSON schema
:data:`ANSWER_SCHEMA`, in the compact layout the model was trained on (``["a", "b"]``: no
newlines, ``", "`` between items), once per tokenizer and vocabulary size
(:func:`json_list_constraint` keeps it). Compiling needs the ``constrained`` extra
(``pip install raitner[constrained]``); importing this module does not import xgrammar, torch or
transformers.

What is guaranteed (greedy or sampled alike):

* Generation ends only on a stop token (the backend's end-of-sequence / end-of-turn tokens), and
  a stop token is allowed only once the list is closed. An answer that stopped on its own is
  therefore exactly a JSON list of strings: ``json.loads`` gives a ``list`` of ``str``, and the
  lenient parser (:func:`raitner.infer.parse.parse_mentions`) reports status ``ok``. Strings may
  be empty and may contain any character JSON allows (escaped where JSON requires it).
* The ``max_new_tokens`` limit still applies. A list it cuts short is a *prefix* of a valid
  list (for example ``["Barack Obama", "Par``), never anything else. The lenient parser keeps the
  items that were complete and reports ``repaired``, or ``unparseable`` when none was (``[``,
  ``["Bar``); the papers' metrics find no list in it at all (status ``no_list``). Raise
  ``max_new_tokens`` when such answers show up.
* Special tokens other than the stop tokens are never produced, nor are rows of the model's
  output layer beyond the tokenizer's vocabulary (padding rows, see below).

The constraint fixes the *form* of an answer, not its content: mentions are still whatever the
model finds most likely within the form, and can still be absent from the text (the aligner
reports those as unaligned).

Vocabulary sizes: many models pad their output layer beyond the tokenizer's vocabulary (to a
multiple of 64 or 128); the grammar is compiled for the model's size (``config.vocab_size``) and
the extra rows are masked. When the scores a processor receives are wider still, the columns
beyond the grammar's vocabulary are masked too; when they are narrower, only the columns that
exist are used.

Logits processors: xgrammar's matchers follow one sequence each and cannot be rewound to a new
prompt, so a processor serves exactly one generation call. The constraint is a factory: calling
it returns a list with one fresh :class:`JsonListLogitsProcessor`, to be handed to
``model.generate(..., logits_processor=LogitsProcessorList(factory()))`` (``HFBackend`` and
the prefix-reuse backend do this when given ``logits_processor_factory=``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = [
    "ANSWER_SCHEMA",
    "ANSWER_SEPARATORS",
    "JsonListConstraint",
    "JsonListLogitsProcessor",
    "json_list_constraint",
    "model_vocab_size",
    "xgrammar_version",
]

#: The answer's JSON schema: a list of strings (empty allowed).
ANSWER_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
#: Item and key separators, as ``json.dumps`` writes them by default (``render_answer``).
ANSWER_SEPARATORS = (", ", ": ")


def xgrammar_version() -> str | None:
    """The installed xgrammar version, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xgrammar")
    except PackageNotFoundError:
        return None


def _import_xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as err:
        from raitner.errors import RaitnerError

        raise RaitnerError(
            "constrained decoding needs xgrammar: pip install 'raitner[constrained]'"
        ) from err
    return xgrammar


def model_vocab_size(model: Any, tokenizer: Any) -> int:
    """Rows of the model's output layer (its logits' width), falling back to the tokenizer's
    size when the model does not say."""
    size = None
    get_output = getattr(model, "get_output_embeddings", None)
    if callable(get_output):
        try:
            layer = get_output()
        except (AttributeError, NotImplementedError):
            layer = None
        weight = getattr(layer, "weight", None)
        if weight is not None:
            size = int(weight.shape[0])
    if size is None:
        size = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(size) if size else len(tokenizer)


class JsonListLogitsProcessor:
    """Masks the scores of every row to the tokens that keep it inside the answer grammar.

    HF-style: ``processor(input_ids, scores) -> scores`` with ``input_ids`` of shape
    ``(rows, length)`` (prompt plus what was generated so far) and ``scores`` of shape
    ``(rows, vocabulary)``. The first call records the prompt length; each later call feeds the
    tokens that appeared since the previous call to the row's matcher, so any number of new
    tokens per call works. A row whose matcher has accepted a stop token is finished: its
    scores are left unmasked (the generation loop pads it), and nothing more is fed to it.
    (``model.generate`` ends without showing the processor the last stop token, which is why
    a processor cannot tell a finished generation from one still running.)

    One processor serves one generation call (create it through :class:`JsonListConstraint`).
    """

    def __init__(self, compiled_grammar: Any, stop_token_ids: Sequence[int]) -> None:
        self._xgr = _import_xgrammar()
        self._grammar = compiled_grammar
        self._stops = [int(token) for token in stop_token_ids]
        self._vocab_size = int(compiled_grammar.tokenizer_info.vocab_size)
        self._matchers: list[Any] = []
        self._bitmask: Any = None
        self._seen = -1

    def _start(self, rows: int, length: int) -> None:
        xgr = self._xgr
        self._matchers = [
            xgr.GrammarMatcher(self._grammar, override_stop_tokens=self._stops) for _ in range(rows)
        ]
        self._bitmask = xgr.allocate_token_bitmask(rows, self._vocab_size)
        self._seen = length

    def _feed(self, input_ids: Any) -> None:
        length = input_ids.shape[1]
        if length < self._seen:
            raise RuntimeError(
                "a constrained logits processor serves one generation: the sequences got "
                f"shorter ({self._seen} → {length} tokens); create a fresh processor per call"
            )
        if length == self._seen:
            return
        new_tokens = input_ids[:, self._seen :].tolist()
        for row, (matcher, tokens) in enumerate(zip(self._matchers, new_tokens, strict=True)):
            for token in tokens:
                if matcher.is_terminated():
                    break  # the row stopped; what follows is padding
                if not matcher.accept_token(int(token)):
                    raise RuntimeError(
                        f"row {row} produced token {token}, which the answer grammar does not "
                        "allow there (do the stop tokens of the processor and of the "
                        "generation agree?)"
                    )
        self._seen = length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        rows = input_ids.shape[0]
        if not self._matchers:
            self._start(rows, input_ids.shape[1])
        elif rows != len(self._matchers):
            raise RuntimeError(
                f"a constrained logits processor follows {len(self._matchers)} rows, got {rows}"
            )
        else:
            self._feed(input_ids)
        xgr = self._xgr
        bitmask = self._bitmask
        bitmask.fill_(-1)  # every bit set: everything allowed (finished rows stay unmasked)
        for row, matcher in enumerate(self._matchers):
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(bitmask, row)
        width = scores.shape[-1]
        common = min(width, self._vocab_size)
        target = scores if scores.device.type in ("cpu", "cuda") else scores.cpu()
        xgr.apply_token_bitmask_inplace(target, bitmask.to(target.device), vocab_size=common)
        if width > common:
            active = torch.tensor(
                [not matcher.is_terminated() for matcher in self._matchers],
                device=target.device,
            )
            target[active, common:] = float("-inf")
        if target is not scores:
            scores.copy_(target.to(scores.device))
        return scores


class JsonListConstraint:
    """The answer grammar compiled for one tokenizer; a factory of fresh logits processors.

    ``constraint()`` returns ``[JsonListLogitsProcessor]`` for one generation call, ready for
    ``LogitsProcessorList``. ``stop_token_ids`` are the tokens that end a reply: they must be
    the same ones the generation stops on (``HFBackend.stop_token_ids()``), since a stop token
    is the only way out of a closed list. Build it with :func:`json_list_constraint`, which
    reuses compiled grammars.
    """

    def __init__(self, compiled_grammar: Any, stop_token_ids: Sequence[int]) -> None:
        stops = list(dict.fromkeys(int(token) for token in stop_token_ids))
        if not stops:
            raise ValueError("constrained decoding needs at least one stop token to end a list")
        vocab_size = int(compiled_grammar.tokenizer_info.vocab_size)
        outside = [token for token in stops if not 0 <= token < vocab_size]
        if outside:
            raise ValueError(f"stop tokens {outside} are outside the vocabulary of {vocab_size}")
        self.compiled_grammar = compiled_grammar
        self.stop_token_ids = tuple(stops)
        self.vocab_size = vocab_size

    def processor(self) -> JsonListLogitsProcessor:
        return JsonListLogitsProcessor(self.compiled_grammar, self.stop_token_ids)

    def __call__(self) -> list[JsonListLogitsProcessor]:
        return [self.processor()]


_lock = threading.Lock()
#: tokenizer → {vocabulary size: compiled grammar}; entries go with their tokenizer.
_compiled: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def _compile(tokenizer: Any, vocab_size: int) -> Any:
    xgr = _import_xgrammar()
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
    compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
    return compiler.compile_json_schema(
        ANSWER_SCHEMA, any_whitespace=False, indent=None, separators=ANSWER_SEPARATORS
    )


def json_list_constraint(
    tokenizer: Any,
    stop_token_ids: Sequence[int],
    *,
    vocab_size: int | None = None,
    model: Any = None,
) -> JsonListConstraint:
    """The answer constraint for a Hugging Face tokenizer.

    ``vocab_size`` is the width of the model's logits; default: taken from ``model``
    (:func:`model_vocab_size`), else the tokenizer's size. The compiled grammar is kept per
    tokenizer object and vocabulary size, so asking again is cheap.
    """
    if vocab_size is None:
        vocab_size = model_vocab_size(model, tokenizer) if model is not None else len(tokenizer)
    vocab_size = int(vocab_size)
    with _lock:
        try:
            per_size = _compiled.setdefault(tokenizer, {})
        except TypeError:  # a tokenizer that cannot be weakly referenced: no cache
            per_size = {}
        compiled = per_size.get(vocab_size)
        if compiled is None:
            compiled = per_size[vocab_size] = _compile(tokenizer, vocab_size)
    return JsonListConstraint(compiled, stop_token_ids)
