"""Teacher distillation: raw text in, NER examples out, annotated by a teacher LLM.

The RA-IT paper builds its Chinese training data (Sky-NER) the way UniversalNER built
Pile-NER: passages of at most 256 tokens are cut from a raw corpus and sampled, a strong LLM
is asked to list every entity of a passage with a type of its own choosing, and the answers
are filtered into open-type NER data; its Appendix B also tries several teachers with a
majority vote. This package does that over any OpenAI-compatible chat API (OpenAI itself, or a
local ``vllm serve`` / llama.cpp server):

* :mod:`raitner.distill.prompts` — the data-construction prompts (Pile-NER-type for English,
  the paper's Fig. 6 for Chinese), versioned like the instruction templates;
* :mod:`raitner.distill.parse` — a lenient reader of the teacher's list of (entity, type);
* :mod:`raitner.distill.teacher` — the API client and a response cache that makes a run
  resumable and a rerun free;
* :mod:`raitner.distill.pipeline` — passages, annotation, voting, mention location.

The output is raitner JSONL with character offsets and no ``label_set`` (open types), which
``raitner build`` turns into vanilla-IT or RA-IT conversations with frequency-proportional
negative types, as the paper does. Nothing here imports torch.
"""

from raitner.distill.parse import parse_teacher_output
from raitner.distill.pipeline import DistillStats, distill, split_passages
from raitner.distill.prompts import TEACHER_PROMPTS, TeacherPrompt, get_teacher_prompt

__all__ = [
    "TEACHER_PROMPTS",
    "DistillStats",
    "TeacherPrompt",
    "distill",
    "get_teacher_prompt",
    "parse_teacher_output",
    "split_passages",
]
