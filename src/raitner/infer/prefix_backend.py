"""Fast greedy inference for one-question-per-type prompts: shared-prefix KV-cache reuse.

The predictor asks every entity type of a text in its own conversation, and those
conversations differ only in their last user message (``What describes <type> in the text?``).
:class:`HFBackend` runs each of them from the first token; :class:`PrefixReuseHFBackend` runs
the part they share once:

1. Every conversation is rendered and tokenized exactly as :class:`HFBackend` does it.
   Identical prompts are generated once (their answers are copies).
2. Prompts whose conversations agree on all messages but the last form a *group*; the group's
   *prefix* is the longest common prefix of its prompts' token ids (so it may reach into the
   question, e.g. ``What describes``), shortened where needed so that every prompt keeps at
   least one token of its own. A group of one prompt has all its tokens but the last as prefix.
3. Groups are taken longest prefix first and their prompts packed into batches of at most
   ``batch_size`` rows (several texts per batch when they fit; a group larger than a batch is
   continued in the next one). The prefixes of a batch that are not yet computed are prefilled
   together in one forward (left-padded); a group continued in the next batch keeps its prefix
   keys/values, so **each prefix is prefilled exactly once per** :meth:`generate` **call**.
4. Each row's cache is its group's prefix keys/values (left-padded with zeros to the batch's
   longest prefix, masked). Only each row's own suffix tokens are then fed (left-padded, masked),
   with explicit position ids, so that every real token sits at the position it has in the
   plain prompt. The rows are then decoded together greedily by a loop over ``model(...)``
   with a transformers ``DynamicCache``; a row leaves the batch (and the cache) at its first
   stop token or after ``max_new_tokens`` tokens.

Identity with the plain path: every real token attends to exactly the tokens before it in its
own prompt, at the same positions, so the logits are those of the plain path up to
floating-point summation order, and the greedy argmax is the same token unless two logits tie
to within rounding. ``tests/test_prefix_backend.py`` checks equal strings against
``HFBackend(batch_size=1)`` (one ``generate`` per prompt) on a tiny random model and on the
real SmolLM2 weights (slow test).

Memory (all bounded by ``batch_size``): a prefill forward holds at most ``batch_size``
prefixes (one per group in the batch); the decoding cache holds ``rows x (longest prefix +
longest suffix + max_new_tokens)`` key/value positions per layer, about what
:class:`HFBackend` holds for the same rows; one group's prefix keys/values are kept from one
batch to the next when the group straddles them. A prompt that, with ``max_new_tokens``, would
run past the model's ``max_position_embeddings`` is refused with ``ValueError`` before anything
runs (never truncated); split long texts with the predictor's ``max_text_tokens``. Models
whose cache is not a plain full-attention ``DynamicCache`` (sliding-window or recurrent
layers) are refused with ``NotImplementedError``: use :class:`HFBackend` for them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from raitner.infer.backends import HFBackend, _model_device
from raitner.prompts.templates import Message

__all__ = ["LogitsProcessorFactory", "PrefixReuseHFBackend", "PrefixReuseStats"]

#: Returns a fresh list of HF-style logits processors ``(input_ids, scores) -> scores``.
LogitsProcessorFactory = Callable[[], Sequence[Callable[[Any, Any], Any]]]


@dataclass
class PrefixReuseStats:
    """Work counters, summed over all :meth:`PrefixReuseHFBackend.generate` calls."""

    #: conversations asked
    conversations: int = 0
    #: distinct prompts among them (each generated once)
    unique_prompts: int = 0
    #: prefix groups (each prefilled once)
    groups: int = 0
    #: tokens of all the prompts asked, duplicates included (what the plain path prefills)
    prompt_tokens: int = 0
    #: real (unpadded) prefix tokens run through the model
    prefix_tokens: int = 0
    #: real suffix tokens run through the model
    suffix_tokens: int = 0
    #: generated tokens fed back through the model
    decode_tokens: int = 0
    #: batch rows x sequence length of every forward, padding included
    padded_tokens: int = 0
    #: forwards that prefill prefixes / feed suffixes / decode one token per row
    prefill_forwards: int = 0
    suffix_forwards: int = 0
    decode_forwards: int = 0


@dataclass
class _Group:
    #: the shared prefix's token ids
    prefix: list[int]
    #: indices of the unique prompts of the group
    rows: list[int]


class PrefixReuseHFBackend(HFBackend):
    """:class:`HFBackend` with the shared prefix of each text's questions computed once.

    Same prompts, stop tokens and decoding as :class:`HFBackend` (see the module docstring for
    the design, the identity guarantee and the memory limits).

    Args:
        model: a transformers causal LM, optionally PEFT-wrapped.
        tokenizer: its tokenizer (with a chat template).
        batch_size: rows (distinct prompts) decoded together.
        stop_tokens: further tokens that end a reply.
        logits_processor_factory: optional callable returning a fresh list of HF-style logits
            processors. It is called once per distinct prompt, and that prompt's processors
            are applied, in order, to that prompt's scores at every step before the argmax:
            ``processor(input_ids, scores)`` with ``input_ids`` a ``LongTensor`` of shape
            ``(1, n)`` holding the prompt's own tokens followed by the tokens generated for it
            so far (no padding, no other row), and ``scores`` the float32 next-token logits of
            shape ``(1, vocab)``; the processor returns the scores to use. This is what the
            processors would see in ``model.generate`` with one prompt per call.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 16,
        stop_tokens: Sequence[str] = (),
        logits_processor_factory: LogitsProcessorFactory | None = None,
    ) -> None:
        super().__init__(model, tokenizer, batch_size=batch_size, stop_tokens=stop_tokens)
        self.logits_processor_factory = logits_processor_factory
        self.stats = PrefixReuseStats()

    # ------------------------------------------------------------------ planning

    def plan(
        self, conversations: Sequence[Sequence[Message]]
    ) -> tuple[list[list[int]], list[int], list[_Group]]:
        """``(unique prompts' token ids, prompt index of each conversation, groups)``."""
        unique: list[list[int]] = []
        index_of: dict[tuple[int, ...], int] = {}
        which: list[int] = []
        group_of: dict[Any, int] = {}
        groups: list[_Group] = []
        for conversation in conversations:
            messages = list(conversation)
            if not messages:
                raise ValueError("a conversation needs at least one message")
            ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError("a conversation rendered to an empty prompt")
            key = tuple(ids)
            if key not in index_of:
                index_of[key] = len(unique)
                unique.append(list(ids))
                context = _context_key(messages[:-1])
                if context not in group_of:
                    group_of[context] = len(groups)
                    groups.append(_Group(prefix=[], rows=[]))
                groups[group_of[context]].rows.append(index_of[key])
            which.append(index_of[key])
        for group in groups:
            members = [unique[row] for row in group.rows]
            length = min(_common_prefix_length(members), min(len(m) for m in members) - 1)
            group.prefix = members[0][:length]
        return unique, which, groups

    # ------------------------------------------------------------------ generation

    def generate(
        self, conversations: Sequence[Sequence[Message]], max_new_tokens: int
    ) -> list[str]:
        import torch

        if not conversations:
            return []
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        unique, which, groups = self.plan(conversations)
        self._check_lengths(unique, max_new_tokens)
        stats = self.stats
        stats.conversations += len(conversations)
        stats.unique_prompts += len(unique)
        stats.groups += len(groups)
        stats.prompt_tokens += sum(len(unique[i]) for i in which)
        if max_new_tokens == 0:
            return [""] * len(conversations)

        stops = set(self.stop_token_ids())
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = min(stops) if stops else 0
        device = _model_device(self.model)
        replies: list[str] = [""] * len(unique)
        was_training = getattr(self.model, "training", False)
        self.model.eval()
        try:
            with torch.inference_mode():
                run = _Run(self, unique, groups, stops, pad_id, device, max_new_tokens)
                for rows, tokens in run.batches():
                    for row, generated in zip(rows, tokens, strict=True):
                        replies[row] = self.tokenizer.decode(generated, skip_special_tokens=True)
        finally:
            if was_training:
                self.model.train()
        return [replies[i] for i in which]

    def _check_lengths(self, prompts: list[list[int]], max_new_tokens: int) -> None:
        config = _text_config(self.model)
        limit = getattr(config, "max_position_embeddings", None)
        if not isinstance(limit, int):
            return
        longest = max(len(ids) for ids in prompts)
        if longest + max_new_tokens > limit:
            raise ValueError(
                f"a prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds the "
                f"model's {limit} positions; split long texts (the predictor's max_text_tokens), "
                "use fewer in-context examples or lower max_new_tokens"
            )

    @staticmethod
    def supports(model: Any) -> bool:
        """Whether every layer of ``model`` keeps a plain full-attention key/value cache."""
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=_text_config(model))
        return all(type(layer) is DynamicLayer for layer in cache.layers)


class _Run:
    """The batches of one :meth:`PrefixReuseHFBackend.generate` call."""

    def __init__(
        self,
        backend: PrefixReuseHFBackend,
        prompts: list[list[int]],
        groups: list[_Group],
        stops: set[int],
        pad_id: int,
        device: Any,
        max_new_tokens: int,
    ) -> None:
        self.backend = backend
        self.model = backend.model
        self.prompts = prompts
        self.groups = groups
        self.stops = stops
        self.pad_id = pad_id
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.stats = backend.stats
        self.config = _text_config(self.model)
        self.logits_kwargs = {"logits_to_keep": 1} if _takes_logits_to_keep(self.model) else {}
        #: prefix keys/values [(keys, values) per layer], each (1, heads, prefix, dim), of the
        #: groups computed and still needed by a later batch
        self.kept: dict[int, list[tuple[Any, Any]]] = {}

    def batches(self):
        """Yield ``(prompt indices, generated tokens without the stop token)`` per batch."""
        order = sorted(range(len(self.groups)), key=lambda g: -len(self.groups[g].prefix))
        slots = [(g, row) for g in order for row in self.groups[g].rows]
        size = self.backend.batch_size
        last_batch = {g: position // size for position, (g, _) in enumerate(slots)}
        for offset in range(0, len(slots), size):
            batch = slots[offset : offset + size]
            later = {g for g, _ in batch if last_batch[g] > offset // size}
            rows = [row for _, row in batch]
            yield rows, self._decode(batch, later)

    # -------------------------------------------------------------- one batch

    def _decode(self, batch: list[tuple[int, int]], later: set[int]) -> list[list[int]]:
        import torch

        row_groups = [g for g, _ in batch]
        batch_groups = list(dict.fromkeys(row_groups))
        self._prefill([g for g in batch_groups if g not in self.kept and self._prefix_len(g)])
        width = max(self._prefix_len(g) for g in batch_groups)
        cache, prefix_mask = self._row_cache(row_groups, batch_groups, width)
        for g in batch_groups:
            if g not in later:
                self.kept.pop(g, None)

        # Each row's own tokens after its group's prefix, left-padded.
        suffixes = [self.prompts[row][self._prefix_len(g) :] for g, row in batch]
        suffix_width = max(len(s) for s in suffixes)
        n = len(batch)
        input_ids = torch.full((n, suffix_width), self.pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((n, suffix_width), dtype=torch.long)
        positions = torch.zeros((n, suffix_width), dtype=torch.long)
        for i, (g, suffix) in enumerate(zip(row_groups, suffixes, strict=True)):
            start = suffix_width - len(suffix)
            input_ids[i, start:] = torch.tensor(suffix, dtype=torch.long)
            suffix_mask[i, start:] = 1
            begin = self._prefix_len(g)
            positions[i, start:] = torch.arange(begin, begin + len(suffix))
        mask = torch.cat([prefix_mask, suffix_mask], dim=1)
        self.stats.suffix_tokens += sum(len(s) for s in suffixes)
        self.stats.suffix_forwards += 1
        self.stats.padded_tokens += n * suffix_width
        logits = self._forward(input_ids, mask, positions, cache)
        next_position = torch.tensor([len(self.prompts[row]) for _, row in batch])

        processors = self._processors(len(batch))
        generated: list[list[int]] = [[] for _ in batch]
        active = list(range(n))  # batch positions of the rows still decoding
        while True:
            tokens = self._choose(logits, active, batch, generated, processors)
            still: list[int] = []
            for position, (slot, token) in enumerate(zip(active, tokens, strict=True)):
                if token in self.stops:
                    continue
                generated[slot].append(token)
                if len(generated[slot]) < self.max_new_tokens:
                    still.append(position)
            if not still:
                return generated
            fed = torch.tensor([[tokens[p]] for p in still], dtype=torch.long)
            if len(still) < len(active):
                keep = torch.tensor(still, dtype=torch.long)
                cache.batch_select_indices(keep.to(self.device))
                mask = mask[keep]
                next_position = next_position[keep]
                active = [active[p] for p in still]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            self.stats.decode_tokens += len(active)
            self.stats.decode_forwards += 1
            self.stats.padded_tokens += len(active)
            logits = self._forward(fed, mask, next_position[:, None], cache)
            next_position = next_position + 1

    def _prefix_len(self, group: int) -> int:
        return len(self.groups[group].prefix)

    def _prefill(self, groups: list[int]) -> None:
        """Compute the prefixes of ``groups`` in one left-padded forward and keep them."""
        import torch

        if not groups:
            return
        width = max(self._prefix_len(g) for g in groups)
        input_ids = torch.full((len(groups), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(groups), width), dtype=torch.long)
        positions = torch.zeros((len(groups), width), dtype=torch.long)
        for i, g in enumerate(groups):
            prefix = self.groups[g].prefix
            start = width - len(prefix)
            input_ids[i, start:] = torch.tensor(prefix, dtype=torch.long)
            mask[i, start:] = 1
            positions[i, start:] = torch.arange(len(prefix))
        cache = self._new_cache()
        self.stats.prefix_tokens += sum(self._prefix_len(g) for g in groups)
        self.stats.prefill_forwards += 1
        self.stats.padded_tokens += len(groups) * width
        self._forward(input_ids, mask, positions, cache)
        layers = _layer_tensors(cache)
        for i, g in enumerate(groups):
            start = width - self._prefix_len(g)
            self.kept[g] = [
                (keys[i : i + 1, :, start:].clone(), values[i : i + 1, :, start:].clone())
                for keys, values in layers
            ]

    def _row_cache(
        self, row_groups: list[int], batch_groups: list[int], width: int
    ) -> tuple[Any, Any]:
        """A cache holding each row's prefix, right-aligned at ``width``, and its mask."""
        import torch
        from transformers import DynamicCache

        n = len(row_groups)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, g in enumerate(row_groups):
            mask[i, width - self._prefix_len(g) :] = 1
        if width == 0:
            return self._new_cache(), mask
        local = {g: i for i, g in enumerate(batch_groups)}
        select = torch.tensor([local[g] for g in row_groups], dtype=torch.long, device=self.device)
        reference = next(self.kept[g] for g in batch_groups if self._prefix_len(g))
        layers = []
        for layer, (ref_keys, ref_values) in enumerate(reference):
            padded = []
            for reference_tensor, which in ((ref_keys, 0), (ref_values, 1)):
                shape = list(reference_tensor.shape)
                shape[0], shape[2] = len(batch_groups), width
                tensor = reference_tensor.new_zeros(shape)
                for g in batch_groups:
                    length = self._prefix_len(g)
                    if length:
                        tensor[local[g], :, width - length :] = self.kept[g][layer][which][0]
                padded.append(tensor.index_select(0, select))
            layers.append((padded[0], padded[1]))
        cache = DynamicCache(ddp_cache_data=layers)
        return cache, mask

    def _new_cache(self) -> Any:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.config)
        if any(type(layer) is not DynamicLayer for layer in cache.layers):
            raise NotImplementedError(
                "PrefixReuseHFBackend needs a model whose every layer keeps a full-attention "
                "key/value cache (no sliding-window or recurrent layers); use HFBackend"
            )
        return cache

    def _forward(self, input_ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        output = self.model(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=cache,
            use_cache=True,
            **self.logits_kwargs,
        )
        return output.logits[:, -1, :].float()

    def _processors(self, n: int) -> list[list[Any]] | None:
        factory = self.backend.logits_processor_factory
        if factory is None:
            return None
        return [list(factory()) for _ in range(n)]

    def _choose(
        self,
        logits: Any,
        active: list[int],
        batch: list[tuple[int, int]],
        generated: list[list[int]],
        processors: list[list[Any]] | None,
    ) -> list[int]:
        """The greedy next token of every active row (after its logits processors)."""
        import torch

        if processors is not None:
            rows = []
            for position, slot in enumerate(active):
                sequence = self.prompts[batch[slot][1]] + generated[slot]
                input_ids = torch.tensor([sequence], dtype=torch.long, device=logits.device)
                scores = logits[position : position + 1]
                for processor in processors[slot]:
                    scores = processor(input_ids, scores)
                rows.append(scores)
            logits = torch.cat(rows, dim=0)
        return logits.argmax(dim=-1).tolist()


def _context_key(messages: Sequence[Message]) -> tuple[Any, ...]:
    return tuple(tuple(sorted((k, str(v)) for k, v in m.items())) for m in messages)


def _common_prefix_length(sequences: list[list[int]]) -> int:
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for other in sequences[1:]:
        k = 0
        while k < length and other[k] == first[k]:
            k += 1
        length = k
    return length


def _layer_tensors(cache: Any) -> list[tuple[Any, Any]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _text_config(model: Any) -> Any:
    config = model.config
    getter = getattr(config, "get_text_config", None)
    return getter(decoder=True) if getter is not None else config


def _takes_logits_to_keep(model: Any) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False
