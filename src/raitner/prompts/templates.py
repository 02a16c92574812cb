"""The UniversalNER conversation and its RA-IT extension, as versioned templates.

A conversation for one text (RA-IT paper, Fig. 1; Tables 14-15)::

    [system]     (English only: UniversalNER's system line)
    user         Here are some examples of named entity recognition:      ┐ only with
                 Text: {example 1 text}\\nEntity: {example 1 entities}     │ retrieved
                 ...                                                        │ examples
    assistant    I've read these examples.                                 ┘
    user         Text: {text}
    assistant    I've read this text.
    user         What describes {type 1} in the text?
    assistant    ["mention", ...]                 ← loss is computed on assistant turns
    ...          one question per entity type

With no examples the conversation is exactly the vanilla UniversalNER one, so a model trained
with RA-IT can be served with or without retrieval (the paper's on-demand RAG), and samples
whose examples were all filtered out (BM25) fall back to it, as in the paper.

Choices where the authors' own files disagree (see shared/data/README.md "Known quirks"):

* ``ra-it-en-v1``: UniversalNER's strings: ``I've read this text.`` (straight apostrophe,
  period) and ``What describes {type} in the text?`` without quotes around the type; the
  RA-IT data script writes ``I’ve read this text`` instead. System line as UniversalNER.
* ``ra-it-zh-v1``: the authors' Chinese strings exactly as in their published Boson test
  files: ``文本： {text}`` (a space after the full-width colon in the text turn, none in the
  example blocks), ``我已读完这段文本。`` and ``文本中属于"{type}"的实体有哪些？``. No system
  line (their files have none).
* Answers are ``json.dumps(mentions, ensure_ascii=False)``. The authors join ``'"' + m + '"'``
  with ``", "``, which is the same string unless a mention contains ``"``, ``\\`` or a control
  character; there theirs is not valid JSON and ours is.
* Example entities are Python's ``str()`` of ``[{mention: type}, ...]`` (what the authors'
  files contain, e.g. ``[{'北京': '地点名称'}]``), one entry per unique (mention, type) pair
  in the example's entity order.

A released template is never edited; a change gets a new version id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from raitner.errors import UnknownNameError
from raitner.schema import Example

Message = dict[str, str]


@dataclass(frozen=True)
class Template:
    id: str
    lang: str
    system: str | None
    text_turn: str
    text_ack: str
    question: str
    examples_intro: str
    example_block: str
    examples_ack: str

    def render_answer(self, mentions: Sequence[str]) -> str:
        return json.dumps(list(mentions), ensure_ascii=False)

    def render_example_entities(self, example: Example) -> str:
        return str([{mention: label} for mention, label in example.mention_label_pairs()])

    def render_examples(self, examples: Sequence[Example]) -> str:
        blocks = [
            self.example_block.format(text=ex.text, entities=self.render_example_entities(ex))
            for ex in examples
        ]
        return self.examples_intro + "\n".join(blocks)

    def context_messages(self, text: str, examples: Sequence[Example] = ()) -> list[Message]:
        """Everything before the first question: system, examples turn, text turn."""
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": self.system})
        if examples:
            messages.append({"role": "user", "content": self.render_examples(examples)})
            messages.append({"role": "assistant", "content": self.examples_ack})
        messages.append({"role": "user", "content": self.text_turn.format(text=text)})
        messages.append({"role": "assistant", "content": self.text_ack})
        return messages

    def question_message(self, label: str) -> Message:
        return {"role": "user", "content": self.question.format(label=label)}

    def training_messages(
        self,
        example: Example,
        types: Sequence[str],
        examples: Sequence[Example] = (),
    ) -> list[Message]:
        """The full multi-turn conversation for training: every question answered."""
        messages = self.context_messages(example.text, examples)
        for label in types:
            messages.append(self.question_message(label))
            messages.append(
                {"role": "assistant", "content": self.render_answer(example.mentions(label))}
            )
        return messages

    def query_messages(
        self, text: str, label: str, examples: Sequence[Example] = ()
    ) -> list[Message]:
        """One question about one type, ending on the user turn (for generation)."""
        return [*self.context_messages(text, examples), self.question_message(label)]


_ENGLISH = Template(
    id="ra-it-en-v1",
    lang="en",
    system="A virtual assistant answers questions from a user based on the provided text.",
    text_turn="Text: {text}",
    text_ack="I've read this text.",
    question="What describes {label} in the text?",
    examples_intro="Here are some examples of named entity recognition:\n",
    example_block="Text: {text}\nEntity: {entities}",
    examples_ack="I've read these examples.",
)

_CHINESE = Template(
    id="ra-it-zh-v1",
    lang="zh",
    system=None,
    text_turn="文本： {text}",
    text_ack="我已读完这段文本。",
    question='文本中属于"{label}"的实体有哪些？',
    examples_intro="以下是一些命名实体识别的例子：\n",
    example_block="文本：{text}\n实体：{entities}",
    examples_ack="我已读完这些例子。",
)

TEMPLATES: dict[str, Template] = {t.id: t for t in (_ENGLISH, _CHINESE)}


def get_template(template_id: str) -> Template:
    if template_id not in TEMPLATES:
        raise UnknownNameError("template", template_id, list(TEMPLATES))
    return TEMPLATES[template_id]


def default_template_id(lang: str) -> str:
    return {"en": _ENGLISH.id, "zh": _CHINESE.id}[lang]


_SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}


def to_sharegpt(messages: Sequence[Message], *, keep_system: bool = False) -> list[dict[str, str]]:
    """``[{"role", "content"}]`` → ShareGPT ``[{"from", "value"}]`` as in the authors' files."""
    return [
        {"from": _SHAREGPT_ROLES[m["role"]], "value": m["content"]}
        for m in messages
        if keep_system or m["role"] != "system"
    ]
