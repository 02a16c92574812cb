"""Running a model over named benchmarks and scoring it as the papers do.

For every benchmark: a fixed, seeded subset of a split (``limit`` texts, or all of it), one
question per entity type of the benchmark (UniversalNER dropped CrossNER's ``misc``; so does
the default ``exclude_types``), optionally with in-context examples retrieved from a pool
(the benchmark's own train split, sampled to ``pool_size``: the paper's in-domain setting, or
any other examples: out-domain). Raw answers are scored with UniversalNER's rule, the RA-IT
rule, and strict span F1 on the aligned entities.

Predictions are written per benchmark, atomically, with the settings that produced them
(backend and decoding included); a rerun with the same settings reuses them. Within a
benchmark, answers are journalled block by block as they come back
(``predictions/<benchmark>.journal.jsonl``, removed once the benchmark's predictions are
written), so an interrupted evaluation resumes at the block where it stopped. Nothing here
imports torch: the model comes in as an object with a ``predict`` method (``raitner.OpenNER``).

Decoding: ``constrained=True`` evaluates answers constrained to a JSON list of strings
(:mod:`raitner.infer.constrained`), ``"both"`` evaluates free and constrained decoding with the
same model and reports them side by side (one row per metric and decoding), with the count of
unparseable answers of each. The model is switched with ``ner.with_constrained(flag)``
(``OpenNER``) whenever its own decoding differs from the one asked.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from raitner.atomic import atomic_write
from raitner.evaluate.error_kinds import error_kinds
from raitner.evaluate.metrics import NERResult, ra_it_f1, span_f1, uniner_f1
from raitner.evaluate.report import build_table, render_markdown, write_report
from raitner.evaluate.unaligned import drop_unaligned
from raitner.infer.journal import AnswerJournal
from raitner.infer.select import FALLBACKS
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
    #: generation backend name (``hf``, ``hf-prefix``, ``vllm``); "" = the model's own
    #: (``ner.backend_name``, the backend that ran, is recorded when the model has one)
    backend: str = ""
    #: False: free decoding; True: answers constrained to a JSON list of strings; "both":
    #: evaluate both and report them side by side
    constrained: bool | str = False
    #: out-domain examples: source specs (``BENCH:split@N``, ``.jsonl``, ``sample:NAME``) whose
    #: examples form the pool instead of the benchmark's ``pool_split`` (``pool_size`` still
    #: samples from them); None = the benchmark's own split (in-domain)
    pool_sources: list[str] | None = None
    #: the bias for the empty answer (:mod:`raitner.infer.empty_bias`); run_evaluation sets
    #: it to the one the model decodes with
    empty_bias: float = 0.0
    #: list answers ended at their first repeated item and closed when cut
    #: (:mod:`raitner.infer.list_ending`); run_evaluation sets it to the model's
    close_lists: bool = False
    #: score only the answered mentions found in the text, as the predictor returns them
    #: (:mod:`raitner.evaluate.unaligned`); the papers score every answered string. Scoring
    #: only: the predictions are the same, so they are reused either way.
    drop_unaligned: bool = False
    #: further models whose answers are voted with the model's (:mod:`raitner.infer.voting`)
    #: and how many must agree; run_evaluation sets them to the model's
    vote_with: list[str] = field(default_factory=list)
    min_votes: int | None = None
    #: labels of the ``pool_sources`` renamed (tag → type) before they become examples
    label_names: dict[str, str] = field(default_factory=dict)

    def key(self, benchmark: str) -> dict[str, Any]:
        """What a benchmark's predictions depend on (a rerun reuses them only if equal)."""
        settings = asdict(self)
        settings.pop("benchmarks")
        settings.pop("batch_size")
        if settings["pool_sources"] is None:
            settings.pop("pool_sources")  # keeps earlier in-domain caches valid
        if not settings["empty_bias"]:
            settings.pop("empty_bias")  # keeps caches from before the setting valid
        if not settings["close_lists"]:
            settings.pop("close_lists")  # the same
        settings.pop("drop_unaligned")  # how answers are scored, not what they are
        if not settings["vote_with"]:
            settings.pop("vote_with")  # keeps caches from before the setting valid
            settings.pop("min_votes")
        if not settings["label_names"]:
            settings.pop("label_names")  # keeps caches from before the setting valid
        settings["benchmark"] = benchmark
        settings["exclude_types"] = list(self.exclude_types)
        from raitner.io.registry import file_benchmark

        added = file_benchmark(benchmark)
        if added is not None:  # an annotated file: its predictions hold for its content only
            settings["file"] = added.fingerprint
        return settings


def seeded_subset(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """``limit`` examples chosen by a seeded permutation, in their original order."""
    if limit is None or limit >= len(examples):
        return list(examples)
    chosen = np.random.default_rng(seed).choice(len(examples), size=limit, replace=False)
    return [examples[i] for i in sorted(chosen)]


def _predictions_path(out_dir: Path, benchmark: str, constrained: bool = False) -> Path:
    suffix = ".constrained" if constrained else ""
    return out_dir / "predictions" / f"{benchmark}{suffix}.jsonl"


def _journal_path(predictions_path: Path) -> Path:
    """Where the answers of an unfinished benchmark are kept (:mod:`raitner.infer.journal`)."""
    return predictions_path.with_name(predictions_path.stem + ".journal.jsonl")


def generation_limits(ner: Any) -> dict[str, Any] | None:
    """The model's limits on answers and texts (``max_new_tokens``, ``max_text_tokens``,
    ``overlap_tokens``), which change its answers; None for a model object without them."""
    predictor = getattr(ner, "predictor", None)
    if predictor is None:
        return None
    return {
        "max_new_tokens": predictor.max_new_tokens,
        "max_text_tokens": predictor.max_text_tokens,
        "overlap_tokens": predictor.overlap_tokens,
    }


def _load_cached(
    path: Path, key: dict[str, Any], limits: dict[str, Any] | None = None
) -> list[dict[str, Any]] | None:
    """Saved records for ``key``. The generation limits are saved beside the key since
    session 28: a file that records other limits is not reused; one from before, which
    records none, is (its limits are unknown)."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        header = json.loads(handle.readline() or "{}")
        if header.get("settings") != key:
            return None
        saved_limits = header.get("limits")
        if limits is not None and saved_limits is not None and saved_limits != limits:
            return None
        return [json.loads(line) for line in handle if line.strip()]


def _with_saved(
    spec: Any,
    benchmark: str,
    settings: EvalSettings,
    data_root: str | Path | None,
    out_dir: Path,
    limits: dict[str, Any] | None = None,
) -> tuple[list[Example], list[str], list[dict[str, Any]] | None]:
    """The gold texts, the types asked and the saved prediction records (None if there are
    none for exactly these settings, generation limits and texts)."""
    types = [t for t in spec.types if t not in settings.exclude_types]
    golds = seeded_subset(spec.load(settings.split, data_root), settings.limit, settings.seed)
    path = _predictions_path(out_dir, benchmark, settings.constrained is True)
    cached = _load_cached(path, settings.key(benchmark), limits)
    if cached is None or [r["id"] for r in cached] != [ex.id for ex in golds]:
        return golds, types, None
    return golds, types, cached


def saved_predictions(
    benchmark: str, settings: EvalSettings, data_root: str | Path | None, out_dir: Path
) -> tuple[list[Example], list[str], list[dict[str, Any]]] | None:
    """What :func:`predict_benchmark` returns, from the predictions it saved in ``out_dir``
    for the same settings and texts; None when there are none (nothing is predicted)."""
    from raitner.io.registry import get_benchmark

    golds, types, cached = _with_saved(
        get_benchmark(benchmark), benchmark, settings, data_root, out_dir
    )
    return None if cached is None else (golds, types, cached)


def predict_benchmark(
    ner: Any,
    benchmark: str,
    settings: EvalSettings,
    data_root: str | Path | None,
    out_dir: Path,
    *,
    embedder: Any = None,
    embedding_cache: Any = None,
    show_progress: bool = True,
    check_limits: bool = True,
) -> tuple[list[Example], list[str], list[dict[str, Any]]]:
    """``(gold examples, types asked, prediction records)`` for one benchmark.

    Saved predictions are reused only for the model's generation limits
    (:func:`generation_limits`); ``check_limits=False`` skips reading them from ``ner``, for a
    caller whose ``out_dir`` is already specific to them and whose model is loaded lazily
    (``raitner reproduce``).

    ``embedding_cache`` (a :class:`raitner.retrieval.cache.EmbeddingCache`) keeps the pool's
    and the texts' embeddings across benchmarks and runs: an out-domain pool shared by every
    benchmark is then encoded once instead of once per benchmark.
    """
    from raitner.io.registry import get_benchmark

    spec = get_benchmark(benchmark)
    limits = generation_limits(ner) if check_limits else None
    golds, types, cached = _with_saved(spec, benchmark, settings, data_root, out_dir, limits)
    if cached is not None:
        if show_progress:
            print(f"{benchmark}: saved predictions reused", file=sys.stderr)
        return golds, types, cached
    key = settings.key(benchmark)
    path = _predictions_path(out_dir, benchmark, settings.constrained is True)

    examples_arg: Any = None
    if settings.examples == "pool":
        from raitner.retrieval.strategies import RetrievalConfig, retrieve

        if settings.pool_sources is not None:
            from raitner.sources import load_sources

            candidates = load_sources(settings.pool_sources, data_root, seed=settings.seed)
            if settings.label_names:
                candidates = [example.relabel(settings.label_names) for example in candidates]
        else:
            candidates = spec.load(settings.pool_split, data_root)
        pool = seeded_subset(candidates, settings.pool_size, settings.seed)
        config = RetrievalConfig.from_dict(settings.retrieval or {})
        if embedder is None and config.strategy != "random":
            from raitner.retrieval.embedders import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder()
        found = retrieve(golds, pool, config, embedder, cache=embedding_cache, exclude_self=True)
        by_id = {ex.id: ex for ex in pool}
        examples_arg = [[by_id[i] for i in r.example_ids] for r in found]
    elif settings.examples != "none":
        raise ValueError(f"examples must be 'none' or 'pool', got {settings.examples!r}")

    journal = AnswerJournal(_journal_path(path), identity=[key, limits])
    if show_progress:
        print(
            f"{benchmark}: {len(golds)} texts x {len(types)} types ({settings.split} split)",
            file=sys.stderr,
        )
    predictions = ner.predict(
        [ex.text for ex in golds],
        types,
        examples=examples_arg,
        batch_size=settings.batch_size,
        show_progress=show_progress,
        journal=journal,
    )
    records = []
    for example, prediction in zip(golds, predictions, strict=True):
        record = prediction.to_record(ner.template)
        record["id"] = example.id
        records.append(record)
    with atomic_write(path) as handle:
        header = {"settings": key, "limits": limits}
        handle.write(json.dumps(header, ensure_ascii=False) + "\n")
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    journal.discard()
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


def per_text_counts(
    scores: dict[str, NERResult], n_texts: int, n_types: int
) -> dict[str, list[list[int]]]:
    """Each metric's ``[tp, n_pred, n_gold]`` per text, from :func:`score_benchmark`'s results.

    The list metrics ask every type of every text (``n_types`` queries per text, text-major);
    span F1 scores one item per text. These are what a paired bootstrap over texts resamples
    (:mod:`raitner.evaluate.significance`).
    """
    out: dict[str, list[list[int]]] = {}
    for metric, result in scores.items():
        items = result.item_counts
        size = len(items) // n_texts if n_texts else 0
        if size * n_texts != len(items) or size not in (0, 1, n_types):
            raise ValueError(
                f"{metric}: {len(items)} scored items for {n_texts} texts of {n_types} types"
            )
        chunks = (items[i * size : (i + 1) * size] for i in range(n_texts))
        out[metric] = [
            [sum(c.tp for c in chunk), sum(c.n_pred for c in chunk), sum(c.n_gold for c in chunk)]
            for chunk in chunks
        ]
    return out


def text_counts_entry(
    golds: Sequence[Example], types: Sequence[str], scores: dict[str, NERResult]
) -> dict[str, Any]:
    """One benchmark's entry of ``text_counts.json``: the text ids and, per metric, one
    ``[tp, n_pred, n_gold]`` row per text."""
    return {"texts": [ex.id for ex in golds], **per_text_counts(scores, len(golds), len(types))}


DECODINGS = {False: "free", True: "constrained"}
#: per-text micro counts of every benchmark and metric (``raitner compare`` reads an eval
#: folder's; ``raitner reproduce`` keeps one per evaluation stage, for its verdicts)
TEXT_COUNTS_FILE = "text_counts.json"
_METRIC_ROWS = (("uniner", "UniNER F1"), ("ra_it", "RA-IT F1"), ("span", "span F1"))


def _without_unaligned(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The records with answers rewritten by :func:`drop_unaligned`, and how many mentions
    that dropped in all."""
    rewritten, total = [], 0
    for record in records:
        answers, dropped = drop_unaligned(record["text"], record["answers"])
        rewritten.append({**record, "answers": answers})
        total += dropped
    return rewritten, total


def _decoding_runs(ner: Any, settings: EvalSettings) -> list[tuple[bool, Any, EvalSettings]]:
    """``(constrained, model, settings)`` of each decoding to evaluate."""
    if settings.constrained == "both":
        flags = [False, True]
    elif settings.constrained in (False, True):
        flags = [bool(settings.constrained)]
    else:
        raise ValueError(f"constrained must be False, True or 'both', got {settings.constrained!r}")
    runs = []
    for flag in flags:
        model = ner if getattr(ner, "constrained", False) == flag else ner.with_constrained(flag)
        runs.append((flag, model, replace(settings, constrained=flag)))
    return runs


def _with_backend(settings: EvalSettings, ner: Any) -> EvalSettings:
    """``settings`` with the name of the backend the model runs on (checked against the one
    the settings name, if any, which may be the one it fell back from), the empty-answer
    bias it decodes with and whether it ends list answers (``close_lists``)."""
    settings = replace(
        settings,
        empty_bias=float(getattr(ner, "empty_bias", 0.0)),
        close_lists=bool(getattr(ner, "close_lists", False)),
        vote_with=list(getattr(ner, "vote_with", None) or []),
        min_votes=getattr(ner, "min_votes", None),
    )
    name = getattr(ner, "backend_name", None)
    if not name:
        return settings
    if settings.backend and name not in (settings.backend, FALLBACKS.get(settings.backend)):
        raise ValueError(f"settings name backend {settings.backend!r}, the model uses {name!r}")
    return replace(settings, backend=name)


def unparseable_counts(
    result: dict[str, NERResult], records: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Answers from which no list could be read: by the papers' rules (scored as empty) and by
    the lenient parser of inference (no entities), with the numbers they are out of."""
    statuses = [status for record in records for status in record.get("statuses", ())]
    return {
        "queries": result["uniner"].n_queries,
        "uniner": result["uniner"].n_unparseable,
        "ra_it": result["ra_it"].n_unparseable,
        "answers": len(statuses),
        "lenient": sum(status == "unparseable" for status in statuses),
    }


def run_evaluation(
    ner: Any,
    settings: EvalSettings,
    out_dir: str | Path,
    *,
    data_root: str | Path | None = None,
    embedder: Any = None,
    embedding_cache: Any = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Evaluate on every benchmark; write ``report.md`` / ``report.json`` under ``out_dir``.

    With ``settings.constrained == "both"`` every metric has two rows, ``(<metric>, free)``
    and ``(<metric>, constrained)``; the table's ``unparseable`` holds the unparseable answers
    of each decoding per benchmark (:func:`unparseable_counts`), its ``errors`` the predicted
    and gold mentions sorted by kind under the UniNER rule
    (:func:`raitner.evaluate.error_kinds.error_kinds`). With ``settings.drop_unaligned`` every
    metric scores the answers without the mentions not found in the text
    (:func:`raitner.evaluate.unaligned.drop_unaligned`; the saved predictions keep them), and
    the table's ``dropped_unaligned`` holds how many were dropped per benchmark.
    """
    out_dir = Path(out_dir)
    settings = _with_backend(settings, ner)
    runs = _decoding_runs(ner, settings)
    scores: dict[bool, dict[str, dict[str, NERResult]]] = {}
    unparseable: dict[str, dict[str, dict[str, int]]] = {}
    errors: dict[str, dict[str, dict[str, Any]]] = {}
    text_counts: dict[str, dict[str, Any]] = {}
    dropped: dict[str, dict[str, int]] = {}
    for flag, model, run_settings in runs:
        scores[flag] = {}
        unparseable[DECODINGS[flag]] = {}
        errors[DECODINGS[flag]] = {}
        text_counts[DECODINGS[flag]] = {}
        dropped[DECODINGS[flag]] = {}
        for benchmark in run_settings.benchmarks:
            golds, types, records = predict_benchmark(
                model,
                benchmark,
                run_settings,
                data_root,
                out_dir,
                embedder=embedder,
                embedding_cache=embedding_cache,
                show_progress=show_progress,
            )
            if run_settings.drop_unaligned:
                records, dropped[DECODINGS[flag]][benchmark] = _without_unaligned(records)
            result = score_benchmark(golds, types, records)
            scores[flag][benchmark] = result
            unparseable[DECODINGS[flag]][benchmark] = unparseable_counts(result, records)
            errors[DECODINGS[flag]][benchmark] = error_kinds(
                golds, types, [record["answers"] for record in records]
            ).to_dict()
            text_counts[DECODINGS[flag]][benchmark] = text_counts_entry(golds, types, result)
    name = settings.model or "model"
    if settings.vote_with:
        name += f" voted with {', '.join(settings.vote_with)} (at least {settings.min_votes})"
    compared = len(runs) > 1
    rows = {}
    for metric, label in _METRIC_ROWS:
        for flag, _, _ in runs:
            row = f"{name} ({label}, {DECODINGS[flag]})" if compared else f"{name} ({label})"
            rows[row] = {bench: result[metric] for bench, result in scores[flag].items()}
    table = build_table(rows)
    table["settings"] = {
        **asdict(settings),
        "exclude_types": list(settings.exclude_types),
        "generation_limits": generation_limits(ner),
    }
    table["unparseable"] = unparseable
    table["errors"] = errors
    if settings.drop_unaligned:
        table["dropped_unaligned"] = dropped
    per_benchmark = "all" if settings.limit is None else settings.limit
    decoding = {False: "", True: ", constrained decoding", "both": ", free vs constrained"}
    title = (
        f"{name} on {settings.split} ({per_benchmark} texts per benchmark"
        f"{decoding[settings.constrained]}"
        f"{', mentions not in the text dropped' if settings.drop_unaligned else ''})"
    )
    write_report(table, out_dir, stem="report", title=title)
    with atomic_write(out_dir / TEXT_COUNTS_FILE) as handle:
        json.dump({"model": name, "decodings": text_counts}, handle, ensure_ascii=False)
        handle.write("\n")
    table["markdown"] = render_markdown(table, title=title)
    return table
