"""The prompts a teacher LLM is given to annotate a passage with open entity types.

A prompt is a system message and a user message with a ``{passage}`` slot. Like the
instruction templates (:mod:`raitner.prompts.templates`), a released prompt is never edited: a
change gets a new id, so a cached teacher answer always belongs to the prompt it was given.

* ``pile-ner-type-en-v1``: UniversalNER's data-construction prompt for Pile-NER-type (Zhou et
  al., 2024, Fig. 2), the version the RA-IT paper adopts (its Appendix A).
* ``sky-ner-zh-v1``: the Chinese prompt of the RA-IT paper's Fig. 6, used to build Sky-NER;
  it asks for a JSON list of ``{"entity": "type"}`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TeacherPrompt:
    id: str
    lang: str
    system: str
    #: the user message; ``{passage}`` is replaced by the passage
    user: str

    def messages(self, passage: str) -> list[dict[str, str]]:
        """The chat messages that ask the teacher about ``passage``."""
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user.replace("{passage}", passage)},
        ]


TEACHER_PROMPTS: dict[str, TeacherPrompt] = {
    prompt.id: prompt
    for prompt in (
        TeacherPrompt(
            id="pile-ner-type-en-v1",
            lang="en",
            system="You are a helpful information extraction system.",
            user=(
                "Given a passage, your task is to extract all entities and identify their "
                "entity types. The output should be in a list of tuples of the following "
                'format: [("entity 1", "type of entity 1"), ... ].\n\nPassage: {passage}'
            ),
        ),
        TeacherPrompt(
            id="sky-ner-zh-v1",
            lang="zh",
            system="你是一个有效的信息抽取系统。",
            user=(
                "给定一段文本，你的任务是抽取所有实体并识别它们的实体类别。输出应为以下 JSON"
                '格式：[{"实体1": "实体1的类别"}, ...]。\n\nPassage: {passage}'
            ),
        ),
    )
}

DEFAULT_TEACHER_PROMPTS = {"en": "pile-ner-type-en-v1", "zh": "sky-ner-zh-v1"}


def get_teacher_prompt(prompt_id: str) -> TeacherPrompt:
    try:
        return TEACHER_PROMPTS[prompt_id]
    except KeyError:
        known = ", ".join(sorted(TEACHER_PROMPTS))
        raise ValueError(f"unknown teacher prompt {prompt_id!r}; known: {known}") from None


def default_teacher_prompt(lang: str) -> TeacherPrompt:
    """The paper's prompt for ``lang`` ("en" or "zh")."""
    if lang not in DEFAULT_TEACHER_PROMPTS:
        raise ValueError(f"no teacher prompt for language {lang!r}; give one of en, zh")
    return TEACHER_PROMPTS[DEFAULT_TEACHER_PROMPTS[lang]]
