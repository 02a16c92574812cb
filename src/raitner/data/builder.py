"""Vanilla-IT and RA-IT training sets as TRL ``messages`` JSONL.

Each output line is one training conversation::

    {"id": ..., "messages": [{"role": ..., "content": ...}, ...],
     "example_ids": [...], "strategy": "nn" | "random" | null}

``messages`` is what TRL's ``SFTTrainer`` trains on directly; ``example_ids`` and ``strategy``
record which retrieved examples were prepended (empty for vanilla IT or when the BM25 filter
dropped them all). A statistics file beside it records the settings and counts (examples
actually used per sample, by strategy), so every dataset carries what produced it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from raitner.atomic import atomic_write
from raitner.data.negatives import NegativeSampling, NegativeTypeSampler, mention_frequencies
from raitner.prompts.templates import Template, default_template_id, get_template
from raitner.schema import Example

if TYPE_CHECKING:
    from raitner.retrieval.strategies import Retrieval, RetrievalConfig

#: Bumped when the record layout changes.
DATASET_FORMAT = "raitner-messages-v1"


@dataclass
class BuildConfig:
    #: ``None`` picks the default template of the data's language.
    template: str | None = None
    #: ``None`` builds vanilla IT; otherwise RA-IT with these retrieval settings.
    retrieval: RetrievalConfig | None = None
    negatives: NegativeSampling = field(default_factory=NegativeSampling)
    seed: int = 42

    def to_dict(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "retrieval": None if self.retrieval is None else asdict(self.retrieval),
            "negatives": asdict(self.negatives),
            "seed": self.seed,
        }


@dataclass
class BuiltSample:
    #: ``None`` when the text had no type to ask about: it is left out of the dataset
    record: dict[str, Any] | None
    questions: int
    empty_answers: int
    bm25_dropped: int = 0


@dataclass
class BuildStats:
    samples: int = 0
    questions: int = 0
    empty_answers: int = 0
    examples_used: Counter = field(default_factory=Counter)
    examples_used_by_strategy: dict[str, Counter] = field(default_factory=dict)
    bm25_dropped: int = 0
    #: texts left out because there was no type to ask about (no entities, no label set)
    skipped_no_questions: int = 0

    def add(self, sample: BuiltSample) -> None:
        self.samples += 1
        self.questions += sample.questions
        self.empty_answers += sample.empty_answers
        used = len(sample.record["example_ids"])
        self.examples_used[used] += 1
        strategy = sample.record["strategy"] or "none"
        self.examples_used_by_strategy.setdefault(strategy, Counter())[used] += 1
        self.bm25_dropped += sample.bm25_dropped

    def to_dict(self) -> dict[str, Any]:
        def histogram(counter: Counter) -> dict[str, int]:
            return {str(k): counter[k] for k in sorted(counter)}

        return {
            "samples": self.samples,
            "questions": self.questions,
            "empty_answers": self.empty_answers,
            "examples_used": histogram(self.examples_used),
            "examples_used_by_strategy": {
                s: histogram(c) for s, c in sorted(self.examples_used_by_strategy.items())
            },
            "bm25_dropped": self.bm25_dropped,
            "skipped_no_questions": self.skipped_no_questions,
        }


def _resolve_template(config: BuildConfig, examples: Sequence[Example]) -> Template:
    if config.template is not None:
        return get_template(config.template)
    languages = sorted({ex.lang for ex in examples})
    if len(languages) != 1:
        raise ValueError(f"examples mix languages {languages}: pass a template explicitly")
    return get_template(default_template_id(languages[0]))


def iter_records(
    examples: Sequence[Example],
    config: BuildConfig,
    retrievals: Sequence[Retrieval] | None = None,
    pool: Sequence[Example] | None = None,
) -> Iterator[BuiltSample]:
    """Yield one built sample per example, in input order.

    ``retrievals[i]`` lists the pool ids retrieved for ``examples[i]``; ``pool`` resolves them
    (defaults to ``examples`` itself, the training-time setting).
    """
    template = _resolve_template(config, examples)
    sampler = NegativeTypeSampler(mention_frequencies(examples), config.negatives)
    pool_by_id = {ex.id: ex for ex in (pool if pool is not None else examples)}
    if retrievals is not None and len(retrievals) != len(examples):
        raise ValueError(f"{len(retrievals)} retrievals for {len(examples)} examples")
    # One child generator per example: a sample's questions do not depend on the others.
    seeds = np.random.SeedSequence(config.seed).spawn(len(examples))
    for index, example in enumerate(examples):
        rng = np.random.default_rng(seeds[index])
        types = sampler.types_for(example, rng)
        if not types:
            yield BuiltSample(None, 0, 0)
            continue
        context: list[Example] = []
        strategy = None
        dropped = 0
        if retrievals is not None:
            retrieval = retrievals[index]
            context = [pool_by_id[i] for i in retrieval.example_ids]
            strategy = retrieval.strategy_used
            dropped = retrieval.n_dropped
        record = {
            "id": example.id,
            "messages": template.training_messages(example, types, context),
            "example_ids": [ex.id for ex in context],
            "strategy": strategy,
        }
        empty = sum(1 for label in types if not example.mentions(label))
        yield BuiltSample(record, len(types), empty, dropped)


def build_dataset(
    examples: Sequence[Example],
    output: str | Path,
    config: BuildConfig,
    *,
    embedder: Any = None,
    pool: Sequence[Example] | None = None,
    cache: Any = None,
    sources: Sequence[str] = (),
    progress: Callable[[Iterator], Iterator] | None = None,
) -> BuildStats:
    """Build a vanilla-IT or RA-IT dataset and write it (and its stats file) atomically.

    For RA-IT, each example retrieves from ``pool`` (default: the examples themselves, with
    each sample excluded from its own neighbours).
    """
    if not examples:
        raise ValueError("no examples to build a dataset from")
    retrievals = None
    if config.retrieval is not None:
        from raitner.retrieval.strategies import retrieve

        if embedder is None:
            raise ValueError("RA-IT needs an embedder")
        retrievals = retrieve(
            examples,
            pool if pool is not None else examples,
            config.retrieval,
            embedder,
            cache=cache,
            exclude_self=True,
            show_progress=progress is not None,
        )
    template = _resolve_template(config, examples)
    stats = BuildStats()
    output = Path(output)
    records = iter_records(examples, config, retrievals, pool)
    if progress is not None:
        records = progress(records)
    settings = config.to_dict()
    settings["template"] = template.id
    # The dataset is renamed into place last, after its statistics file.
    with atomic_write(output) as handle:
        for sample in records:
            if sample.record is None:
                stats.skipped_no_questions += 1
                continue
            handle.write(json.dumps(sample.record, ensure_ascii=False) + "\n")
            stats.add(sample)
        summary = {
            "format": DATASET_FORMAT,
            "dataset": output.name,
            "mode": "ra-it" if config.retrieval is not None else "vanilla",
            "settings": settings,
            "embedder": getattr(embedder, "name", None),
            "sources": list(sources),
            "statistics": stats.to_dict(),
        }
        with atomic_write(stats_path(output)) as stats_handle:
            json.dump(summary, stats_handle, ensure_ascii=False, indent=2)
            stats_handle.write("\n")
    return stats


def stats_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".stats.json")
