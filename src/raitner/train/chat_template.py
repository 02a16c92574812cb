"""The chat template used for training: the model's own text, with the loss span marked.

RA-IT trains on every assistant turn and on nothing else, as the authors' LLaMA-Factory set-up
did: the system and user turns, and the chat template's own markup around every turn, get label
-100; each assistant turn's content and its end-of-turn token are trained. TRL computes exactly
this with ``assistant_only_loss=True`` from the ``{% generation %}…{% endgeneration %}`` spans of
the chat template, but most instruct models (SmolLM2, Qwen2, …) ship templates without them.

For those, :func:`training_chat_template` writes a template that renders the *same text* as the
model's own, with the markers around ``content + end-of-turn``:

* ChatML templates (``<|im_start|>role\\ncontent<|im_end|>\\n``, optionally with a default system
  turn when the conversation has none, as SmolLM2 and Qwen2/2.5 do) are rewritten here;
* other templates get TRL's training variant when TRL ships one for that exact template;
* anything else is a :class:`ChatTemplateError` that says what is wrong.

Every rewritten template is checked against the original on probe conversations (with and
without a system turn, several turns, with and without ``add_generation_prompt``); the trainer
also compares them on every training conversation. The tokenizer is saved with the template
actually used, so inference renders exactly the prompt the model was trained on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from raitner.errors import RaitnerError

Conversation = Sequence[dict[str, str]]

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")

#: Conversations whose rendering must not change when the training template replaces the
#: original: system or not, one or several turns, non-ASCII text, quotes and braces.
PROBE_CONVERSATIONS: tuple[tuple[dict[str, str], ...], ...] = (
    ({"role": "user", "content": "Text: Paris is in France."},),
    (
        {"role": "system", "content": "A virtual assistant answers questions."},
        {"role": "user", "content": "Text: Barack Obama visited Paris."},
        {"role": "assistant", "content": "I've read this text."},
        {"role": "user", "content": "What describes person in the text?"},
        {"role": "assistant", "content": '["Barack Obama"]'},
    ),
    (
        {"role": "user", "content": "文本： 张三在北京工作。"},
        {"role": "assistant", "content": "我已读完这段文本。"},
        {"role": "user", "content": '文本中属于"人名"的实体有哪些？'},
        {"role": "assistant", "content": '["张三"]'},
        {"role": "user", "content": "Entity: [{'a': \"b\"}] {{ not a tag }}\nsecond line"},
    ),
)


class ChatTemplateError(RaitnerError, ValueError):
    """The model's chat template cannot be used to train with a loss on assistant turns only."""


@dataclass(frozen=True)
class TrainingTemplate:
    #: The chat template to train (and later serve) with; it has ``{% generation %}`` markers.
    template: str
    #: ``"original"``: the model's own template already had markers; ``"chatml"``: rewritten
    #: here; ``"trl"``: TRL's training variant of a template it knows.
    source: str
    #: The model's template, as it was.
    original: str

    @property
    def rewritten(self) -> bool:
        return self.source != "original"


def has_generation_markers(template: str | None) -> bool:
    return template is not None and _GENERATION_TAG.search(template) is not None


def original_chat_template(tokenizer: Any) -> str:
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise ChatTemplateError(
            "the tokenizer has no chat template; train from an instruct/chat model, or set "
            "tokenizer.chat_template first"
        )
    return template


def render(
    tokenizer: Any, template: str, messages: Conversation, *, add_generation_prompt: bool = False
) -> str:
    return tokenizer.apply_chat_template(
        list(messages),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def chatml_training_template(default_system: str | None = None) -> str:
    """A ChatML template with the loss span (content + ``<|im_end|>``) marked.

    ``default_system`` is the system turn the original template adds when a conversation starts
    without one (SmolLM2: "You are a helpful AI assistant named SmolLM…"), or ``None``.
    """
    lines = ["{#- ChatML with {% generation %} around each assistant answer (raitner). -#}"]
    if default_system is not None:
        # json.dumps gives a double-quoted string with the escapes Jinja's lexer understands.
        literal = json.dumps(default_system, ensure_ascii=False)
        lines += [
            "{%- if messages and messages[0]['role'] != 'system' %}",
            "{{- '" + IM_START + "system\\n' + " + literal + " + '" + IM_END + "\\n' }}",
            "{%- endif %}",
        ]
    lines += [
        "{%- for message in messages %}",
        "{%- if message['role'] == 'assistant' %}",
        "{{- '" + IM_START + "assistant\\n' }}",
        "{%- generation %}{{- message['content'] + '" + IM_END + "' }}{%- endgeneration %}",
        "{{- '\\n' }}",
        "{%- else %}",
        "{{- '"
        + IM_START
        + "' + message['role'] + '\\n' + message['content'] + '"
        + IM_END
        + "\\n' }}",
        "{%- endif %}",
        "{%- endfor %}",
        "{%- if add_generation_prompt %}{{- '" + IM_START + "assistant\\n' }}{%- endif %}",
    ]
    return "\n".join(lines)


def training_chat_template(tokenizer: Any) -> TrainingTemplate:
    """The template to train ``tokenizer``'s model with; see the module notes."""
    original = original_chat_template(tokenizer)
    if has_generation_markers(original):
        return TrainingTemplate(original, "original", original)
    problems = []
    default_system = _chatml_default_system(tokenizer, original)
    if isinstance(default_system, _NotChatML):
        problems.append(f"not ChatML ({default_system.reason})")
    else:
        candidate = chatml_training_template(default_system)
        mismatch = first_mismatch(tokenizer, original, candidate, PROBE_CONVERSATIONS)
        if mismatch is None:
            return TrainingTemplate(candidate, "chatml", original)
        problems.append(f"ChatML-like, but the rewrite renders differently: {mismatch}")
    trl_template, trl_problem = _trl_training_template(tokenizer)
    if trl_template is not None:
        mismatch = first_mismatch(tokenizer, original, trl_template, PROBE_CONVERSATIONS)
        if mismatch is None:
            return TrainingTemplate(trl_template, "trl", original)
        problems.append(f"TRL's training variant renders differently: {mismatch}")
    else:
        problems.append(trl_problem)
    raise ChatTemplateError(
        "the model's chat template has no {% generation %} markers, which mark the assistant "
        "answers to train on, and raitner cannot add them: "
        + "; ".join(problems)
        + ". Give the tokenizer a chat template with {% generation %}…{% endgeneration %} around "
        "each assistant answer and its end-of-turn token (rendering the same text otherwise)."
    )


class _NotChatML:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _chatml_default_system(tokenizer: Any, template: str) -> str | None | _NotChatML:
    vocab = tokenizer.get_vocab()
    added = tokenizer.get_added_vocab()
    for token in (IM_START, IM_END):
        if token not in vocab or token not in added:
            return _NotChatML(f"{token} is not a special token of the tokenizer")
    probe = "raitner probe"
    try:
        text = render(tokenizer, template, [{"role": "user", "content": probe}])
    except Exception as error:  # a template may reject a lone user turn in its own way
        return _NotChatML(f"rendering a user turn failed: {error}")
    turn = f"{IM_START}user\n{probe}{IM_END}\n"
    if not text.endswith(turn):
        return _NotChatML(f"a user turn renders as {text!r}")
    prefix = text[: -len(turn)]
    if not prefix:
        return None
    match = re.fullmatch(
        re.escape(IM_START) + r"system\n(.*)" + re.escape(IM_END) + r"\n", prefix, re.S
    )
    if match is None:
        return _NotChatML(f"unexpected text before the first turn: {prefix!r}")
    return match.group(1)


def _trl_training_template(tokenizer: Any) -> tuple[str | None, str]:
    try:
        from trl.chat_template_utils import get_training_chat_template
    except ImportError:
        return None, "TRL is not installed"
    try:
        template = get_training_chat_template(tokenizer)
    except ValueError as error:
        return None, f"TRL has no training variant of it ({error})"
    if template is None or not has_generation_markers(template):
        return None, "TRL returned no template with markers"
    return template, ""


def first_mismatch(
    tokenizer: Any,
    original: str,
    candidate: str,
    conversations: Iterable[Conversation],
) -> str | None:
    """``None`` if both templates render every conversation identically (with and without
    ``add_generation_prompt``), else a description of the first difference."""
    for index, messages in enumerate(conversations):
        for add_generation_prompt in (False, True):
            try:
                expected = render(
                    tokenizer, original, messages, add_generation_prompt=add_generation_prompt
                )
                actual = render(
                    tokenizer, candidate, messages, add_generation_prompt=add_generation_prompt
                )
            except Exception as error:
                return f"conversation {index} fails to render: {error}"
            if expected != actual:
                at = next(
                    (i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
                    min(len(expected), len(actual)),
                )
                return (
                    f"conversation {index} (add_generation_prompt={add_generation_prompt}) "
                    f"differs at character {at}: original {expected[at : at + 40]!r}, "
                    f"rewrite {actual[at : at + 40]!r}"
                )
    return None


def end_of_turn_token(tokenizer: Any, template: str) -> str | None:
    """The last token the template trains in an assistant turn (``<|im_end|>`` for ChatML)."""
    messages = [
        {"role": "user", "content": "probe"},
        {"role": "assistant", "content": "probe"},
        {"role": "user", "content": "probe"},
    ]
    output = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    trained = [t for t, m in zip(output["input_ids"], output["assistant_masks"], strict=True) if m]
    for token_id in reversed(trained):
        token = tokenizer.convert_ids_to_tokens(token_id)
        if tokenizer.decode([token_id]).strip():
            return token
    return None
