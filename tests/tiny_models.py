"""Tiny causal LMs built in code for fast tests: nothing is downloaded.

A byte-level BPE tokenizer is trained in memory on a few NER-style conversations, and a
2-layer Qwen2 (or Llama) with random weights is saved beside it. The chat template is ChatML
*without* ``{% generation %}`` markers, like most real instruct models, so the code paths that
must cope with such templates are exercised.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = [
    "Text: Barack Obama visited Paris in 2009 .",
    "I've read this text.",
    "What describes person in the text?",
    '["Barack Obama"]',
    "What describes location in the text?",
    '["Paris"]',
    "Here are some examples of named entity recognition:",
    "Entity: [{'Paris': 'city'}, {'France': 'country'}]",
    "A virtual assistant answers questions from a user based on the provided text.",
    "文本： 张三在北京工作。",
    "我已读完这段文本。",
    '文本中属于"人名"的实体有哪些？',
    '["张三"]',
    "[]",
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def small_config_kwargs(tokenizer, **overrides):
    """Config arguments of a tiny decoder on ``tokenizer`` (2 layers, hidden size 32, its
    end/pad tokens, no BOS); ``overrides`` replace or add arguments."""
    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    kwargs.update(overrides)
    return kwargs


def build_tiny_model(output_dir: str | Path, architecture: str = "qwen2", seed: int = 0) -> Path:
    """Save a random tiny causal LM with its tokenizer under ``output_dir``; return the path."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    output_dir = Path(output_dir)
    tokenizer = build_tokenizer()
    common = small_config_kwargs(tokenizer, tie_word_embeddings=True)
    config = Qwen2Config(**common) if architecture == "qwen2" else LlamaConfig(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def build_tiny_gemma3(sliding_window: int, *, full_attention_only: bool = False, seed: int = 0):
    """A random 3-layer Gemma 3 text model in memory (sliding, full, sliding attention) on the
    tiny tokenizer; ``full_attention_only`` makes every layer full attention with the same
    weights. Weights are drawn a little wider than Gemma's initialiser so that greedy answers
    vary by prompt."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = build_tokenizer()
    layer_types = ["sliding_attention", "full_attention", "sliding_attention"]
    if full_attention_only:
        layer_types = ["full_attention"] * 3
    config = Gemma3TextConfig(
        **small_config_kwargs(
            tokenizer,
            num_hidden_layers=3,
            head_dim=8,
            sliding_window=sliding_window,
            layer_types=layer_types,
        )
    )
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval(), tokenizer
