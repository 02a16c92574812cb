"""Raw documents -> passages -> teacher answers -> voted, located NER examples.

* **Passages** (:func:`split_passages`): each document is cut into passages of at most
  ``max_tokens`` tokens (256, as UniversalNER and the RA-IT paper chunk their corpora) by
  :func:`raitner.infer.chunking.split_text` without overlap, so a passage ends at a sentence end
  where one falls in its second half. Tokens are the given tokenizer's, else approximate (words,
  punctuation marks, CJK characters). :func:`sample_passages` draws a seeded subset, as the
  papers sample 50K passages from their chunks.
* **Annotation** (:func:`distill`): every passage is asked to every teacher with one prompt
  (:mod:`raitner.distill.prompts`), ``concurrency`` requests at a time, answers taken from and
  added to the cache (:class:`raitner.distill.teacher.TeacherCache`).
* **Voting**: with several teachers a (mention, type) pair is kept when at least ``min_votes``
  teachers named it (default: a majority of the teachers whose answer could be read; the
  RA-IT paper's Appendix B votes over four). A teacher whose answer cannot be read abstains; a
  passage no teacher answered readably is dropped, as the papers drop unparseable outputs.
* **Location**: kept pairs are found in the passage by
  :func:`raitner.io.mentions.locate_mentions` (every occurrence, longer mentions first);
  mentions not in the passage are dropped and counted, never invented. A passage left with no
  entity is dropped unless ``keep_empty``.

Examples carry ``id`` ``<document id>:<passage index>``, the passage as ``text``, no
``label_set`` (open types: ``raitner build`` samples negative types by frequency) and ``meta``
with the document id, the passage's character offset in it and the teachers' names.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from raitner.distill.parse import TeacherAnswer, parse_teacher_output
from raitner.distill.prompts import TeacherPrompt
from raitner.distill.teacher import Teacher, TeacherCache, answer_key
from raitner.errors import DataFormatError
from raitner.infer.chunking import TokenSpans, split_text
from raitner.io.mentions import locate_mentions
from raitner.schema import Example

DEFAULT_PASSAGE_TOKENS = 256


@dataclass(frozen=True)
class Passage:
    id: str
    doc_id: str
    #: character offset of the passage in its document
    start: int
    text: str


def read_documents(path: str | Path, text_field: str = "text") -> Iterator[tuple[str, str]]:
    """``(document id, text)`` pairs of a raw-text file.

    ``.jsonl``: one JSON object per line with a string ``text_field`` (and an optional ``id``);
    ``.json``: an array of such objects; ``.csv`` or ``.parquet``: a table with a column
    ``text_field`` (the RA-IT authors' SkyPile samples are Parquet; :mod:`raitner.io.records`);
    any other file: one document per non-empty line. Ids default to ``<file stem>:<line>``.
    Any of them but Parquet may be gzip-compressed (``corpus.jsonl.gz``, ``corpus.txt.gz``:
    :mod:`raitner.io.files`).
    """
    from raitner.io.files import file_stem, format_suffix, text_lines
    from raitner.io.records import RECORD_SUFFIXES, iter_records, missing_text_message

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix, stem = format_suffix(path), file_stem(path)
    if suffix in RECORD_SUFFIXES:
        for number, record in iter_records(path):
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise DataFormatError(
                    path, number, missing_text_message(record, text_field, suffix)
                )
            given_id = record.get("id")  # an empty CSV cell or a null is no id
            missing = given_id is None or given_id == ""
            yield (f"{stem}:{number}" if missing else str(given_id)), text
        return
    for number, line in enumerate(text_lines(path), start=1):
        if line.strip():
            yield f"{stem}:{number}", line.rstrip("\n")


def split_passages(
    doc_id: str,
    text: str,
    *,
    max_tokens: int = DEFAULT_PASSAGE_TOKENS,
    token_spans: TokenSpans | None = None,
) -> list[Passage]:
    """The passages of one document (whitespace at their edges trimmed, empty ones left out)."""
    passages = []
    for window in split_text(
        text, max_tokens=max_tokens, overlap_tokens=0, token_spans=token_spans
    ):
        stripped = window.text.strip()
        if not stripped:
            continue
        start = window.start + (len(window.text) - len(window.text.lstrip()))
        passages.append(Passage(f"{doc_id}:{len(passages)}", doc_id, start, stripped))
    return passages


def sample_passages(passages: Sequence[Passage], size: int | None, seed: int) -> list[Passage]:
    """A seeded random subset of ``size`` passages, in their original order (all if None)."""
    if size is None or size >= len(passages):
        return list(passages)
    chosen = sorted(random.Random(seed).sample(range(len(passages)), size))
    return [passages[i] for i in chosen]


@dataclass
class DistillStats:
    passages: int = 0
    #: answers asked of a teacher in this run, and answers found in the cache
    asked: int = 0
    cached: int = 0
    #: teacher answers read leniently, and answers that could not be read (abstentions)
    repaired_answers: int = 0
    unparseable_answers: int = 0
    #: passages no teacher answered readably
    unparseable_passages: int = 0
    #: pairs named by fewer than the required number of teachers
    outvoted_pairs: int = 0
    #: kept pairs whose mention is not in the passage
    unfound_mentions: int = 0
    #: passages left without entities (dropped unless keep_empty)
    empty_passages: int = 0
    examples: int = 0
    entities: int = 0
    types: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        return (
            f"{self.passages} passages ({self.asked} answers asked, {self.cached} from the "
            f"cache); {self.unparseable_answers} answers unreadable, {self.repaired_answers} "
            f"read leniently; {self.unparseable_passages} passages dropped as unreadable, "
            f"{self.empty_passages} with no entity; {self.outvoted_pairs} pairs outvoted, "
            f"{self.unfound_mentions} mentions not in their passage; {self.examples} examples, "
            f"{self.entities} entities, {len(self.types)} distinct types"
        )


def distill(
    passages: Sequence[Passage],
    teachers: Sequence[Teacher],
    prompt: TeacherPrompt,
    *,
    cache: TeacherCache | None = None,
    concurrency: int = 4,
    min_votes: int | None = None,
    keep_empty: bool = False,
    on_answer: Callable[[], None] | None = None,
) -> tuple[list[Example], DistillStats]:
    """Annotate ``passages`` with ``teachers``; see the module notes.

    ``on_answer`` is called once per answer (cached or new), for a progress bar. A failing
    request stops the run with its :class:`~raitner.distill.teacher.TeacherError` once the
    requests in flight are done; the answers already in are in the cache.
    """
    if not teachers:
        raise ValueError("distill needs at least one teacher")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    if min_votes is not None and not 1 <= min_votes <= len(teachers):
        raise ValueError(f"min_votes must be in [1, {len(teachers)}], got {min_votes}")
    stats = DistillStats(passages=len(passages))
    answers = _ask(passages, teachers, prompt, cache, concurrency, stats, on_answer)
    examples = []
    for index, passage in enumerate(passages):
        read = [parse_teacher_output(answers[index, t]) for t in range(len(teachers))]
        example = _example(passage, read, teachers, prompt.lang, min_votes, keep_empty, stats)
        if example is not None:
            examples.append(example)
    stats.examples = len(examples)
    return examples, stats


def _ask(passages, teachers, prompt, cache, concurrency, stats, on_answer):
    answers: dict[tuple[int, int], str] = {}
    todo: list[tuple[int, int, str]] = []
    for index, passage in enumerate(passages):
        messages = prompt.messages(passage.text)
        for t, teacher in enumerate(teachers):
            key = answer_key(teacher.settings(), messages)
            found = cache.get(key) if cache is not None else None
            if found is None:
                todo.append((index, t, key))
            else:
                answers[index, t] = found
                stats.cached += 1
                if on_answer:
                    on_answer()

    def ask(index: int, t: int, key: str) -> str:
        answer = teachers[t].complete(prompt.messages(passages[index].text))
        if cache is not None:
            cache.put(key, teachers[t].name, answer)
        return answer

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="raitner-teacher")
    try:
        futures: dict[Future, tuple[int, int]] = {
            pool.submit(ask, index, t, key): (index, t) for index, t, key in todo
        }
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                answers[futures[future]] = future.result()  # raises the first failure
                stats.asked += 1
                if on_answer:
                    on_answer()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return answers


def _example(
    passage: Passage,
    read: list[TeacherAnswer],
    teachers: Sequence[Teacher],
    lang: str,
    min_votes: int | None,
    keep_empty: bool,
    stats: DistillStats,
) -> Example | None:
    stats.repaired_answers += sum(answer.status == "repaired" for answer in read)
    voters = [answer for answer in read if answer.parsed]
    stats.unparseable_answers += len(read) - len(voters)
    if not voters:
        stats.unparseable_passages += 1
        return None
    needed = min_votes if min_votes is not None else len(voters) // 2 + 1
    votes: Counter = Counter(pair for answer in voters for pair in dict.fromkeys(answer.pairs))
    order = list(dict.fromkeys(pair for answer in voters for pair in answer.pairs))
    kept = [pair for pair in order if votes[pair] >= needed]
    stats.outvoted_pairs += len(order) - len(kept)
    entities, unfound = locate_mentions(passage.text, kept)
    stats.unfound_mentions += len(unfound)
    if not entities and not keep_empty:
        stats.empty_passages += 1
        return None
    if not entities:
        stats.empty_passages += 1
    stats.entities += len(entities)
    stats.types.update(entity.label for entity in entities)
    meta = {
        "doc": passage.doc_id,
        "offset": passage.start,
        "teachers": [teacher.name for teacher in teachers],
    }
    return Example(passage.id, passage.text, lang, entities, meta=meta)
