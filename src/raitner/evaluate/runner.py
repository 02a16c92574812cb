"""Running a model over named benchmarks and scoring it as the papers do.

For every benchmark: a fixed, seeded subset of a split (``limit`` texts, or all of it), one
question per entity type of the benchmark (UniversalNER dropped CrossNER's ``misc``; so does
the default ``exclude_types``), optionally with in-context examples retrieved from a pool
(the benchmark's own train split, sampled to ``pool_size``: the paper's in-domain setting, or
any other examples: out-domain). Raw answers are scored with UniversalNER's rule, the RA-IT
rule, and strict span F1 on the aligned entities.

Predictions are written per benchmark, atomically, with the settings that produced them; a
rerun with the same settings reuses them, so an interrupted evaluation resumes where it
stopped. Nothing here imports torch: the model comes in as an object with a ``predict``
method (``raitner.OpenNER``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raitner.atomic import atomic_write
from raitner.evaluate.metrics import NERResult, ra_it_f1, span_f1, uniner_f1
from raitner.evaluate.report import build_table, render_markdown, write_report
from raitner.schema import Example


@dataclass
class EvalSettings:
    benchmarks: list[str]
    split: str = "test"
    #: texts per benchmark (a seeded random subset); None = the whole split.
    limit: int | None = None
    seed: int = 42
    exclude_types: tuple[str, ...] = ("misc",)
    #: "none" (no examples) or "pool" (retrieved from ``pool_split`` of the same benchmark).
    examples: str = "none"
    pool_split: str = "train"
    #: pool examples sampled from ``pool_split`` (None = all): the paper's N-example pools.
    pool_size: int | None = None
    retrieval: dict[str, Any] | None = None
    batch_size: int = 16
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self, benchmark: str) -> dict[str, Any]:
        """What a benchmark's predictions depend on (a rerun reuses them only if equal)."""
        settings = asdict(self)
        settings.pop("benchmarks")
        settings.pop("batch_size")
        settings["benchmark"] = benchmark
        settings["exclude_types"] = list(self.exclude_types)
        return settings


def seeded_subset(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """``limit`` examples chosen by a seeded permutation, in their original order."""
    if limit is None or limit >= len(examples):
        return list(examples)
    chosen = np.random.default_rng(seed).choice(len(examples), size=limit, replace=False)
    return [examples[i] for i in sorted(chosen)]


def _predictions_path(out_dir: Path, benchmark: str) -> Path:
    return out_dir / "predictions" / f"{benchmark}.jsonl"


def _load_cached(path: Path, key: dict[str, Any]) -> list[dict[str, Any]] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        header = json.loads(handle.readline() or "{}")
        if header.get("settings") != key:
            return None
        return [json.loads(line) for line in handle if line.strip()]


def predict_benchmark(
    ner: Any,
    benchmark: str,
    settings: EvalSettings,
    data_root: str | Path | None,
    out_dir: Path,
    *,
    embedder: Any = None,
    show_progress: bool = True,
) -> tuple[list[Example], list[str], list[dict[str, Any]]]:
    """``(gold examples, types asked, prediction records)`` for one benchmark."""
    from raitner.io.registry import get_benchmark

    spec = get_benchmark(benchmark)
    types = [t for t in spec.types if t not in settings.exclude_types]
    golds = seeded_subset(spec.load(settings.split, data_root), settings.limit, settings.seed)
    key = settings.key(benchmark)
    path = _predictions_path(out_dir, benchmark)
    cached = _load_cached(path, key)
    if cached is not None and [r["id"] for r in cached] == [ex.id for ex in golds]:
        return golds, types, cached

    examples_arg: Any = None
    if settings.examples == "pool":
        from raitner.retrieval.strategies import RetrievalConfig, retrieve

        pool = seeded_subset(
            spec.load(settings.pool_split, data_root), settings.pool_size, settings.seed
        )
        config = RetrievalConfig.from_dict(settings.retrieval or {})
        if embedder is None and config.strategy != "random":
            from raitner.retrieval.embedders import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        found = retrieve(golds, pool, config, embedder, exclude_self=True)
        by_id = {ex.id: ex for ex in pool}
        examples_arg = [[by_id[i] for i in r.example_ids] for r in found]
    elif settings.examples != "none":
        raise ValueError(f"examples must be 'none' or 'pool', got {settings.examples!r}")

    predictions = ner.predict(
        [ex.text for ex in golds],
        types,
        examples=examples_arg,
        batch_size=settings.batch_size,
        show_progress=show_progress,
    )
    records = []
    for example, prediction in zip(golds, predictions, strict=True):
        record = prediction.to_record(ner.template)
        record["id"] = example.id
        records.append(record)
    with atomic_write(path) as handle:
        handle.write(json.dumps({"settings": key}, ensure_ascii=False) + "\n")
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return golds, types, records


def score_benchmark(
    golds: Sequence[Example], types: Sequence[str], records: Sequence[dict[str, Any]]
) -> dict[str, NERResult]:
    answers, gold_lists, query_types = [], [], []
    for example, record in zip(golds, records, strict=True):
        for label in types:
            answers.append(record["answers"].get(label, ""))
            gold_lists.append(example.mentions(label))
            query_types.append(label)
    allowed = set(types)
    predicted_spans = [
        [(e["start"], e["end"], e["label"]) for e in record["entities"] if e["label"] in allowed]
        for record in records
    ]
    gold_spans = [
        [(e.start, e.end, e.label) for e in ex.entities if e.label in allowed] for ex in golds
    ]
    return {
        "uniner": uniner_f1(answers, gold_lists, query_types),
        "ra_it": ra_it_f1(answers, gold_lists, query_types),
        "span": span_f1(predicted_spans, gold_spans),
    }


def run_evaluation(
    ner: Any,
    settings: EvalSettings,
    out_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    embedder: Any = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate on every benchmark; write ``report.md`` / ``report.json`` under ``out_dir``."""
    out_dir = Path(out_dir)
    scores: dict[str, dict[str, NERResult]] = {}
    for benchmark in settings.benchmarks:
        golds, types, records = predict_benchmark(
            ner,
            benchmark,
            settings,
            data_root,
            out_dir,
            embedder=embedder,
            show_progress=show_progress,
        )
        scores[benchmark] = score_benchmark(golds, types, records)
    name = settings.model or "model"
    rows = {
        f"{name} ({label})": {bench: result[metric] for bench, result in scores.items()}
        for metric, label in (("uniner", "UniNER F1"), ("ra_it", "RA-IT F1"), ("span", "span F1"))
    }
    table = build_table(rows)
    table["settings"] = {**asdict(settings), "exclude_types": list(settings.exclude_types)}
    per_benchmark = "all" if settings.limit is None else settings.limit
    title = f"{name} on {settings.split} ({per_benchmark} texts per benchmark)"
    write_report(table, out_dir, stem="report", title=title)
    table["markdown"] = render_markdown(table, title=title)
    return table
