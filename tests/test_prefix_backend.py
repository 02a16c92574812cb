"""PrefixReuseHFBackend: the same greedy answers as one ``generate`` per prompt, less work.

The reference is ``HFBackend(batch_size=1)``: each prompt alone, no padding, plain
``model.generate`` (how UniversalNER's HF script serves one question at a time). The tiny
"lively" random model makes greedy answers differ from prompt to prompt, so equal strings mean
the prefix/suffix split, padding, positions, stopping and logits processors are all right.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from raitner.prompts.templates import get_template

EN = get_template("ra-it-en-v1")
ZH = get_template("ra-it-zh-v1")

TEXTS = [
    "Barack Obama visited Paris in 2009 .",
    "张三在北京工作。",
    "Paris " * 12,
    "x",
    "The European Union met in Brussels on Monday to discuss trade with China and Japan .",
]
LABELS = ("person", "location", "organisation", "date")


def load(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def mixed_conversations() -> list[list[dict[str, str]]]:
    """Several texts x labels, a text asked one question only, Chinese prompts, duplicates,
    interleaved (the backend must group them itself)."""
    conversations = [EN.query_messages(text, label) for text in TEXTS for label in LABELS]
    conversations.append(EN.query_messages("Only one question about Berlin .", "location"))
    conversations += [ZH.query_messages("李四在上海。", label) for label in ("人名", "地名")]
    conversations += [conversations[0], conversations[5], conversations[0]]
    order = list(range(len(conversations)))
    order = order[::3] + order[1::3] + order[2::3]
    return [conversations[i] for i in order]


@pytest.fixture(scope="module")
def lively(lively_model_dir: Path):
    return load(lively_model_dir)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine they cost."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def reference(model, tokenizer, conversations, max_new_tokens, **kwargs) -> list[str]:
    from raitner.infer.backends import HFBackend

    return HFBackend(model, tokenizer, batch_size=1, **kwargs).generate(
        conversations, max_new_tokens
    )


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("batch_size", [1, 3, 5, 64])
def test_same_answers_as_one_generate_per_prompt(lively, batch_size: int) -> None:
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    conversations = mixed_conversations()
    expected = reference(model, tokenizer, conversations, 10)
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=batch_size)
    assert backend.generate(conversations, 10) == expected
    assert len(set(expected)) > len(expected) // 2  # the answers really depend on the prompt


def free_runs(model, tokenizer, conversations, max_new_tokens: int) -> list[list[int]]:
    """Greedy tokens of each prompt with no stop token at all."""
    import torch

    from raitner.infer.backends import HFBackend

    backend = HFBackend(model, tokenizer)
    runs = []
    for conversation in conversations:
        ids = tokenizer(backend.render(conversation), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            output = model.generate(
                torch.tensor([ids]),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        runs.append(output[0, len(ids) :].tolist())
    return runs


def test_rows_stop_at_their_own_stop_token_at_different_steps(lively) -> None:
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    conversations = mixed_conversations()[:14]
    runs = free_runs(model, tokenizer, conversations, 12)
    # Tokens whose first appearance in some run lies in the middle of it.
    firsts = Counter(
        token for run in runs for k, token in enumerate(run) if 0 < k < 10 and token not in run[:k]
    )
    chosen = [token for token, _ in firsts.most_common(3)]
    stop_tokens = tuple(tokenizer.convert_ids_to_tokens(chosen))
    stop_steps = {
        next((k for k, t in enumerate(run) if t in chosen), None) for run in runs
    }  # where each row stops (None: runs to max_new_tokens)
    assert len(stop_steps) >= 3 and None in stop_steps

    expected = reference(model, tokenizer, conversations, 12, stop_tokens=stop_tokens)
    for batch_size in (4, 32):
        backend = PrefixReuseHFBackend(
            model, tokenizer, batch_size=batch_size, stop_tokens=stop_tokens
        )
        assert backend.generate(conversations, 12) == expected
    lengths = {len(answer) for answer in expected}
    assert len(lengths) >= 3


class BanToken:
    """Bans one token; records what it was shown."""

    def __init__(self, token: int, seen: list[list[int]]) -> None:
        self.token = token
        self.seen = seen

    def __call__(self, input_ids, scores):
        assert input_ids.shape[0] == 1 and scores.shape[0] == 1
        self.seen.append(input_ids[0].tolist())
        scores = scores.clone()
        scores[:, self.token] = float("-inf")
        return scores


def test_logits_processors_see_each_rows_own_sequence(lively) -> None:
    import torch
    from transformers import LogitsProcessorList

    from raitner.infer.backends import HFBackend
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    conversations = mixed_conversations()[:9]
    unconstrained = free_runs(model, tokenizer, conversations, 8)
    banned = Counter(token for run in unconstrained for token in run).most_common(1)[0][0]

    plain = HFBackend(model, tokenizer)
    expected, expected_seen = [], []
    for conversation in conversations:
        seen: list[list[int]] = []
        ids = tokenizer(plain.render(conversation), add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            output = model.generate(
                torch.tensor([ids]),
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=plain.stop_token_ids(),
                pad_token_id=tokenizer.pad_token_id,
                logits_processor=LogitsProcessorList([BanToken(banned, seen)]),
            )
        new = output[0, len(ids) :].tolist()
        assert banned not in new
        expected.append(tokenizer.decode(new, skip_special_tokens=True))
        expected_seen.append(seen)

    made: list[list[list[int]]] = []

    def factory():
        made.append([])
        return [BanToken(banned, made[-1])]

    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=4, logits_processor_factory=factory)
    answers = backend.generate(conversations, 8)
    assert answers == expected
    assert answers != [tokenizer.decode(run, skip_special_tokens=True) for run in unconstrained]
    # one fresh processor list per prompt, shown exactly what plain generate shows it
    assert sorted(made) == sorted(expected_seen)


def test_peft_wrapped_model(lively_model_dir: Path) -> None:
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model

    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = load(lively_model_dir)
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    wrapped = get_peft_model(model, config)
    conversations = mixed_conversations()[:12]
    expected = reference(wrapped, tokenizer, conversations, 8)
    assert (
        PrefixReuseHFBackend(wrapped, tokenizer, batch_size=6).generate(conversations, 8)
        == expected
    )
    with wrapped.disable_adapter():
        assert reference(wrapped, tokenizer, conversations, 8) != expected


def test_cache_passed_under_the_name_the_model_takes(lively) -> None:
    """transformers renamed forward's ``past_key_values`` to ``cache``; the old name still
    works there but warns. The backend passes whichever name the model's forward declares."""
    import warnings

    from raitner.infer.prefix_backend import PrefixReuseHFBackend, _cache_keyword

    model, tokenizer = lively
    conversations = mixed_conversations()[:8]
    expected = reference(model, tokenizer, conversations, 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = PrefixReuseHFBackend(model, tokenizer, batch_size=4).generate(conversations, 6)
    assert answers == expected
    assert not [w for w in caught if "past_key_values" in str(w.message)]

    class OldForward:
        def forward(self, input_ids=None, past_key_values=None, use_cache=None): ...

    class NewForward:
        def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs): ...

    class Wrapped:  # a PEFT model: forward(*args, **kwargs), the base model behind it
        def __init__(self, base) -> None:
            self.base = base

        def get_base_model(self):
            return self.base

        def forward(self, *args, **kwargs): ...

    assert _cache_keyword(OldForward()) == "past_key_values"
    assert _cache_keyword(NewForward()) == "cache"
    assert _cache_keyword(Wrapped(OldForward())) == "past_key_values"
    assert _cache_keyword(Wrapped(NewForward())) == "cache"


def test_predictor_answers_unchanged(lively) -> None:
    from raitner.infer.backends import HFBackend
    from raitner.infer.predictor import Predictor
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    texts = [TEXTS[0], TEXTS[4] * 3, TEXTS[1]]

    def run(backend):
        predictor = Predictor(
            backend,
            EN,
            max_new_tokens=8,
            max_text_tokens=40,
            overlap_tokens=8,
            show_progress=False,
        )
        return predictor.predict(texts, list(LABELS), batch_size=100)

    fast = run(PrefixReuseHFBackend(model, tokenizer, batch_size=8))
    plain = run(HFBackend(model, tokenizer, batch_size=1))
    assert fast[1].chunked
    assert [p.answers for p in fast] == [p.answers for p in plain]


# --------------------------------------------------------------------------- grouping


def test_groups_share_the_token_prefix(lively) -> None:
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    conversations = mixed_conversations()
    backend = PrefixReuseHFBackend(model, tokenizer)
    prompts, which, groups = backend.plan(conversations)
    assert len(prompts) == len(conversations) - 3  # the three duplicates are asked once
    assert [prompts[i] for i in which] == [
        tokenizer(backend.render(c), add_special_tokens=False)["input_ids"] for c in conversations
    ]
    assert len(groups) == len(TEXTS) + 2
    assert sorted(len(g.rows) for g in groups) == [1, 2] + [len(LABELS)] * len(TEXTS)
    for group in groups:
        members = [prompts[row] for row in group.rows]
        k = len(group.prefix)
        assert all(m[:k] == group.prefix and len(m) > k for m in members)
        if len(members) > 1:  # the longest common prefix: one more token would differ
            assert len({tuple(m[: k + 1]) for m in members}) > 1
        else:
            assert k == len(members[0]) - 1
    context = backend.render(conversations[0][:-1])
    assert len(groups[0].prefix) >= len(tokenizer(context, add_special_tokens=False)["input_ids"])


class ForwardCounter:
    """Counts forwards and the real (unmasked) new tokens each one runs."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (rows, new positions, real new tokens)
        self.handle = model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        input_ids = kwargs["input_ids"]
        rows, width = input_ids.shape
        real = int(kwargs["attention_mask"][:, -width:].sum())
        self.calls.append((rows, width, real))

    def close(self) -> None:
        self.handle.remove()


@pytest.mark.parametrize("batch_size", [3, 8, 64])
def test_each_prefix_is_prefilled_once(lively, batch_size: int) -> None:
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    conversations = mixed_conversations()
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=batch_size)
    prompts, which, groups = backend.plan(conversations)
    counter = ForwardCounter(model)
    try:
        backend.generate(conversations, 6)
    finally:
        counter.close()
    stats = backend.stats
    prefix_tokens = sum(len(g.prefix) for g in groups)
    suffix_tokens = sum(len(prompts[r]) - len(g.prefix) for g in groups for r in g.rows)
    assert stats.groups == len(groups)
    assert stats.prefix_tokens == prefix_tokens
    assert stats.suffix_tokens == suffix_tokens
    assert stats.prompt_tokens == sum(len(prompts[i]) for i in which)
    batches = -(-len(prompts) // batch_size)
    assert stats.prefill_forwards <= batches and stats.suffix_forwards == batches
    # what the model really ran: each prefix once, each distinct prompt's suffix once
    calls = counter.calls
    assert len(calls) == stats.prefill_forwards + stats.suffix_forwards + stats.decode_forwards
    assert sum(real for _, _, real in calls) == (
        prefix_tokens + suffix_tokens + stats.decode_tokens
    )
    assert sum(rows * width for rows, width, _ in calls) == stats.padded_tokens
    assert max(rows for rows, _, _ in calls) <= batch_size
    assert prefix_tokens + suffix_tokens < stats.prompt_tokens / 2


def test_long_group_straddling_batches_is_prefilled_once(lively) -> None:
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    labels = [f"type {i}" for i in range(11)]
    conversations = [EN.query_messages(TEXTS[4], label) for label in labels]
    conversations += [EN.query_messages(TEXTS[0], label) for label in labels[:3]]
    expected = reference(model, tokenizer, conversations, 6)
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=4)
    assert backend.generate(conversations, 6) == expected
    _, _, groups = backend.plan(conversations)
    assert backend.stats.prefill_forwards == 2  # two groups, one prefill each, 4 batches
    assert backend.stats.prefix_tokens == sum(len(g.prefix) for g in groups)


# --------------------------------------------------------------------------- edges


def test_edges_and_limits(lively, tiny_model_dir: Path) -> None:
    from raitner.infer.backends import HFBackend
    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = lively
    backend = PrefixReuseHFBackend(model, tokenizer)
    assert backend.generate([], 5) == []
    assert backend.generate(mixed_conversations()[:3], 0) == ["", "", ""]
    with pytest.raises(ValueError):
        PrefixReuseHFBackend(model, tokenizer, batch_size=0)
    with pytest.raises(ValueError):
        backend.generate([[]], 5)
    long_text = "Paris " * model.config.max_position_embeddings
    with pytest.raises(ValueError, match="max_new_tokens"):
        backend.generate([EN.query_messages(long_text, "location")], 5)
    model.train()
    backend.generate(mixed_conversations()[:2], 2)
    assert model.training
    model.eval()
    tiny, tiny_tokenizer = load(tiny_model_dir)
    text = "Barack Obama visited 北京."
    assert PrefixReuseHFBackend(tiny, tiny_tokenizer).token_spans(text) == HFBackend(
        tiny, tiny_tokenizer
    ).token_spans(text)


class CacheWidths:
    """Records the cache positions every forward attends over (the attention mask's width)."""

    def __init__(self, model) -> None:
        self.widths: list[int] = []
        self.handle = model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")  # model.generate (the plain path) may pass none
        self.widths.append(None if mask is None else mask.shape[1])

    def close(self) -> None:
        self.handle.remove()


# With two long questions about a short text, the prompts are 48-134 tokens long, the
# longest prefix 115 tokens, the longest suffix 52: a window of 4096 holds every batch, 150
# every prompt but not a batch of all of them, 60 only some prompts.
LONG_QUESTIONS = [
    EN.query_messages("Rome .", label)
    for label in (
        "government agency or ministry of a country in the European Union",
        "sports team or club of a city that plays in a national league",
    )
]


@pytest.mark.parametrize("window", [4096, 150, 60])
@pytest.mark.parametrize("batch_size", [1, 64])
def test_sliding_window_model_same_answers(window: int, batch_size: int) -> None:
    from tiny_models import build_tiny_gemma3

    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = build_tiny_gemma3(window)
    conversations = mixed_conversations() + LONG_QUESTIONS
    expected = reference(model, tokenizer, conversations, 10)
    assert len(set(expected)) > 4  # the answers really depend on the prompt
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=batch_size)
    assert PrefixReuseHFBackend.supports(model) and backend.attention_window() == window
    widths = CacheWidths(model)
    try:
        assert backend.generate(conversations, 10) == expected
    finally:
        widths.close()
    prompts, _, groups = backend.plan(conversations)
    too_long = sum(len(p) + 10 > window for p in prompts)
    stats = backend.stats
    assert stats.plain_prompts == too_long
    if window == 60:
        assert 0 < too_long < len(prompts)  # both paths ran
    else:
        assert too_long == 0
    if too_long == 0:  # only the prefix path ran: no forward attended beyond the window
        assert widths.widths and None not in widths.widths
        assert max(widths.widths) <= window
    if window == 150 and batch_size == 64:
        # every prompt fits, but all of them in one batch of 64 would not: split by the window
        longest_prefix = max(len(g.prefix) for g in groups)
        longest_suffix = max(len(prompts[r]) - len(g.prefix) for g in groups for r in g.rows)
        assert longest_prefix + longest_suffix + 10 > window
        assert stats.suffix_forwards > 1


def test_plain_path_shows_logits_processors_one_row() -> None:
    """Prompts too long for the window go the plain path; their processors still see one row."""
    from tiny_models import build_tiny_gemma3

    from raitner.infer.prefix_backend import PrefixReuseHFBackend

    model, tokenizer = build_tiny_gemma3(60)
    conversations = mixed_conversations()[:12]
    unconstrained = reference(model, tokenizer, conversations, 8)
    runs = free_runs(model, tokenizer, conversations, 8)
    banned = Counter(token for run in runs for token in run).most_common(1)[0][0]

    def factory():
        return [BanToken(banned, [])]  # BanToken asserts one row

    expected = reference(model, tokenizer, conversations, 8, logits_processor_factory=factory)
    assert expected != unconstrained
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=8, logits_processor_factory=factory)
    assert backend.generate(conversations, 8) == expected
    assert 0 < backend.stats.plain_prompts < backend.stats.unique_prompts


def test_the_tiny_sliding_window_model_needs_its_window() -> None:
    """Without packing within the window the answers would differ: the same weights with full
    attention everywhere answer otherwise (so the test above can fail)."""
    from tiny_models import build_tiny_gemma3

    conversations = mixed_conversations()
    sliding, tokenizer = build_tiny_gemma3(60)
    full, _ = build_tiny_gemma3(60, full_attention_only=True)
    assert reference(sliding, tokenizer, conversations, 10) != reference(
        full, tokenizer, conversations, 10
    )


def test_layer_kinds_without_the_transformers_helper(monkeypatch) -> None:
    """Older transformers lack ``get_layer_types_and_kwargs``: the config is read directly."""
    import types

    from tiny_models import build_tiny_gemma3

    from raitner.infer.prefix_backend import _layer_types

    model, _ = build_tiny_gemma3(60)
    expected = _layer_types(model.config)
    assert expected[0] == ["sliding_attention", "full_attention", "sliding_attention"]
    monkeypatch.setitem(sys.modules, "transformers.cache_utils", types.ModuleType("stub"))
    assert _layer_types(model.config) == expected


def test_other_layer_kinds_are_refused(tiny_model_dir: Path) -> None:
    from tiny_models import small_config_kwargs
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Lfm2Config

    from raitner.api import OpenNER
    from raitner.infer.backends import HFBackend
    from raitner.infer.prefix_backend import PrefixReuseHFBackend
    from raitner.infer.select import make_backend

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # a recurrent (convolution) layer
    config = Lfm2Config(**small_config_kwargs(tokenizer, layer_types=["conv", "full_attention"]))
    model = AutoModelForCausalLM.from_config(config)
    assert not PrefixReuseHFBackend.supports(model)
    with pytest.raises(NotImplementedError, match="HFBackend"):
        PrefixReuseHFBackend(model, tokenizer).generate(mixed_conversations()[:2], 3)
    # the default backend falls back to the plain one for such models, and keeps the prefix
    # backend for sliding-window ones
    assert type(make_backend("hf-prefix", model, tokenizer)) is HFBackend
    assert make_backend(None, model, tokenizer).generate(mixed_conversations()[:2], 3)
    # and records the backend that runs, not the one asked for
    fallen_back = OpenNER.from_model(model, tokenizer, backend="hf-prefix", max_new_tokens=3)
    assert fallen_back.backend_name == "hf" and type(fallen_back.backend) is HFBackend
    sliding = AutoConfig.from_pretrained(tiny_model_dir)
    sliding.use_sliding_window, sliding.sliding_window = True, 8
    sliding.layer_types = ["sliding_attention", "full_attention"]
    sliding_model = AutoModelForCausalLM.from_config(sliding)
    assert type(make_backend("hf-prefix", sliding_model, tokenizer)) is PrefixReuseHFBackend
    kept = OpenNER.from_model(sliding_model, tokenizer, max_new_tokens=3)
    assert kept.backend_name == "hf-prefix"
    assert PrefixReuseHFBackend.supports(AutoModelForCausalLM.from_pretrained(tiny_model_dir))


def test_module_imports_without_torch() -> None:
    code = (
        "import sys, raitner.infer.prefix_backend; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- real weights


@pytest.mark.slow
def test_real_smollm2_weights_identical() -> None:
    pytest.importorskip("torch")
    from raitner.infer.prefix_backend import PrefixReuseHFBackend
    from raitner.models import ModelNotAvailableError, load_causal_lm

    try:
        model, tokenizer = load_causal_lm(None, device="cpu", dtype="fp32")
    except ModelNotAvailableError as error:
        pytest.skip(str(error))
    texts = [
        "Barack Obama visited Paris in 2009 .",
        "The band Radiohead released OK Computer in 1997 on Parlophone .",
        "Geoffrey Hinton received the Turing Award for work on neural networks .",
    ]
    labels = ["person", "location", "organisation", "award"]
    conversations = [EN.query_messages(t, label) for t in texts for label in labels]
    expected = reference(model, tokenizer, conversations, 16)
    backend = PrefixReuseHFBackend(model, tokenizer, batch_size=8)
    assert backend.generate(conversations, 16) == expected
    assert backend.stats.prefill_forwards == 2 and backend.stats.groups == len(texts)
