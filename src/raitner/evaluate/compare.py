"""``raitner compare A B``: is one evaluation better than another, beyond the choice of texts?

Reads the per-text counts two ``raitner eval`` runs saved (``text_counts.json`` in each output
folder), checks that both asked the same texts of the same benchmarks, and reports each
benchmark's F1, the macro-average difference B − A and its paired bootstrap interval over the
texts (:mod:`raitner.evaluate.significance`), and how much each side answered (mentions
predicted and correct, precision and recall), so that a change in F1 can be read as answering
more or answering better.

A recipe trained on several seeds is compared as a whole by giving one pair of evaluations per
seed (``raitner compare A1 B1 --pair A2 B2``): each benchmark's F1 and Δ are then means over the
pairs, and each bootstrap draw of texts is shared by every pair, since the test texts do not
change with the training seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from raitner.errors import RaitnerError
from raitner.evaluate.metrics import Counts
from raitner.evaluate.runner import TEXT_COUNTS_FILE
from raitner.evaluate.significance import observed_delta, paired_bootstrap

METRICS = ("uniner", "ra_it", "span")


class CompareError(RaitnerError):
    """Two evaluations that cannot be compared, or one that cannot be read."""


def load_text_counts(folder: str | Path) -> dict[str, Any]:
    """The per-text counts of a ``raitner eval`` output folder."""
    path = Path(folder) / TEXT_COUNTS_FILE
    if not path.is_file():
        raise CompareError(
            f"{path} not found: {folder} is not a raitner eval output folder, or it was "
            "written before raitner kept per-text counts (run the same raitner eval again "
            "with this -o: its saved predictions are reused, nothing is generated twice)"
        )
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise CompareError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("decodings"), dict):
        raise CompareError(f"{path}: expected an object with 'decodings'")
    return data


def _benchmarks(data: dict[str, Any], decoding: str, where: Path) -> dict[str, Any]:
    decodings = data["decodings"]
    if decoding not in decodings:
        raise CompareError(
            f"{where}: no {decoding} decoding; it has {', '.join(sorted(decodings))}"
        )
    return decodings[decoding]


def _only(found: dict[str, Any], names: Sequence[str], where: Path) -> dict[str, Any]:
    if not names:
        raise CompareError("no benchmark named to compare")
    missing = [name for name in names if name not in found]
    if missing:
        raise CompareError(
            f"{where}: no {', '.join(missing)} in this evaluation; it has "
            f"{', '.join(sorted(found))}"
        )
    return {name: found[name] for name in names}


def _total(rows: list[list[int]]) -> Counts:
    total = Counts()
    for tp, n_pred, n_gold in rows:
        total += Counts(tp, n_pred, n_gold)
    return total


def _f1_points(rows: list[list[int]]) -> float:
    return 100 * _total(rows).f1


def _answer_volume(
    rows_per_pair: Sequence[dict[str, Any]], names: Sequence[str]
) -> dict[str, float]:
    """How much one side answered, as means over the pairs: mentions predicted, correct and
    gold summed over every text; precision and recall averaged over the benchmarks, as F1 is."""
    totals = [{name: _total(rows[name]) for name in names} for rows in rows_per_pair]
    return {
        "mentions": _mean(sum(t[name].n_pred for name in names) for t in totals),
        "correct": _mean(sum(t[name].tp for name in names) for t in totals),
        "gold": _mean(sum(t[name].n_gold for name in names) for t in totals),
        "precision": _mean(
            sum(100 * t[name].precision for name in names) / len(names) for t in totals
        ),
        "recall": _mean(sum(100 * t[name].recall for name in names) / len(names) for t in totals),
    }


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values)


class _Pair(NamedTuple):
    """Two evaluations of the same texts: their models, texts and per-text counts."""

    model_a: Any
    model_b: Any
    texts: dict[str, Any]
    rows_a: dict[str, Any]
    rows_b: dict[str, Any]


def _pair_rows(
    folder_a: Path,
    folder_b: Path,
    *,
    metric: str,
    decoding: str,
    decoding_b: str,
    benchmarks: Sequence[str] | None,
) -> _Pair:
    """Both evaluations' per-text counts of ``metric``, checked to cover the same texts."""
    data_a, data_b = load_text_counts(folder_a), load_text_counts(folder_b)
    bench_a = _benchmarks(data_a, decoding, folder_a)
    bench_b = _benchmarks(data_b, decoding_b, folder_b)
    if benchmarks is not None:
        bench_a = _only(bench_a, benchmarks, folder_a)
        bench_b = _only(bench_b, benchmarks, folder_b)
    if sorted(bench_a) != sorted(bench_b):
        raise CompareError(
            f"the two evaluations cover different benchmarks: {folder_a} has "
            f"{', '.join(sorted(bench_a))}; {folder_b} has {', '.join(sorted(bench_b))}"
            + (
                f" (compare those both have with --benchmarks {','.join(sorted(shared))})"
                if (shared := set(bench_a) & set(bench_b))
                else ""
            )
        )
    for name in bench_a:
        if bench_a[name]["texts"] != bench_b[name]["texts"]:
            raise CompareError(
                f"{name}: the two evaluations asked different texts (evaluate both with the "
                "same --split, --limit and --seed)"
            )
    return _Pair(
        data_a.get("model"),
        data_b.get("model"),
        {name: counts["texts"] for name, counts in bench_a.items()},
        {name: counts[metric] for name, counts in bench_a.items()},
        {name: counts[metric] for name, counts in bench_b.items()},
    )


def compare_evaluations(
    folder_a: str | Path,
    folder_b: str | Path,
    *,
    metric: str = "uniner",
    decoding: str = "free",
    decoding_b: str | None = None,
    resamples: int = 2000,
    confidence: float = 0.95,
    benchmarks: Sequence[str] | None = None,
    more_pairs: Sequence[tuple[str | Path, str | Path]] = (),
) -> dict[str, Any]:
    """Per-benchmark F1 of A and B, the macro Δ = B − A and its bootstrap interval.

    ``benchmarks`` restricts the comparison to these (each must be in both evaluations), e.g.
    to compare a run that has finished only some benchmarks with a complete one.

    ``decoding`` picks the decoding of A (``free`` or ``constrained``, for a run with
    ``--constrained both``), ``decoding_b`` that of B (default: the same); the two decodings of
    one ``--constrained both`` run are compared by giving its folder twice.

    ``more_pairs`` adds further (A, B) evaluations of the same two recipes, one pair per
    training seed: every pair must cover the texts of the first, and the F1s, Δ and interval
    become means over the pairs (``runs`` in the result lists each pair's own figures)."""
    if metric not in METRICS:
        raise CompareError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS)}")
    decoding_b = decoding if decoding_b is None else decoding_b
    pairs = [(Path(folder_a), Path(folder_b))] + [(Path(a), Path(b)) for a, b in more_pairs]
    loaded = [
        _pair_rows(
            pair_a,
            pair_b,
            metric=metric,
            decoding=decoding,
            decoding_b=decoding_b,
            benchmarks=benchmarks,
        )
        for pair_a, pair_b in pairs
    ]
    first = loaded[0]
    for (pair_a, _), pair in zip(pairs[1:], loaded[1:], strict=True):
        if sorted(pair.texts) != sorted(first.texts):
            raise CompareError(
                f"{pair_a} covers {', '.join(sorted(pair.texts))}, the first pair "
                f"{', '.join(sorted(first.texts))}: every pair must cover the same benchmarks"
            )
        for name, texts in first.texts.items():
            if pair.texts[name] != texts:
                raise CompareError(
                    f"{name}: {pair_a} asked other texts than {pairs[0][0]} (every pair must be "
                    "evaluated with the same --split, --limit and --seed)"
                )
    rows_a = {run: pair.rows_a for run, pair in enumerate(loaded, start=1)}
    rows_b = {run: pair.rows_b for run, pair in enumerate(loaded, start=1)}
    interval = paired_bootstrap(rows_a, rows_b, resamples=resamples, level=confidence)
    names = sorted(first.texts)
    scores = [
        (
            {name: _f1_points(pair.rows_a[name]) for name in names},
            {name: _f1_points(pair.rows_b[name]) for name in names},
        )
        for pair in loaded
    ]
    runs = []
    for (pair_a, pair_b), pair, (a_scores, b_scores) in zip(pairs, loaded, scores, strict=True):
        a_avg = sum(a_scores.values()) / len(names)
        b_avg = sum(b_scores.values()) / len(names)
        runs.append(
            {
                "a": {"folder": str(pair_a), "model": pair.model_a},
                "b": {"folder": str(pair_b), "model": pair.model_b},
                "a_avg": a_avg,
                "b_avg": b_avg,
                "delta": b_avg - a_avg,
            }
        )
    per_benchmark = {
        name: {
            "texts": len(first.texts[name]),
            "a": sum(a_scores[name] for a_scores, _ in scores) / len(scores),
            "b": sum(b_scores[name] for _, b_scores in scores) / len(scores),
        }
        for name in names
    }
    return {
        "a": runs[0]["a"],
        "b": runs[0]["b"],
        "metric": metric,
        "decoding": decoding,
        "decoding_b": decoding_b,
        "benchmarks": per_benchmark,
        "a_avg": sum(row["a"] for row in per_benchmark.values()) / len(per_benchmark),
        "b_avg": sum(row["b"] for row in per_benchmark.values()) / len(per_benchmark),
        "delta": observed_delta(rows_a, rows_b),
        "interval": [interval.low, interval.high],
        "confidence": confidence,
        "resamples": resamples,
        "significant": interval.excludes_zero(),
        "answers": {
            "a": _answer_volume([pair.rows_a for pair in loaded], names),
            "b": _answer_volume([pair.rows_b for pair in loaded], names),
        },
        "runs": runs,
    }


def render_comparison(result: dict[str, Any]) -> str:
    """The comparison as a markdown table and one sentence."""
    labels = {"uniner": "UniNER F1", "ra_it": "RA-IT F1", "span": "span F1"}
    decodings = ("", "")
    if result.get("decoding_b", result["decoding"]) != result["decoding"]:
        decodings = (f", {result['decoding']} decoding", f", {result['decoding_b']} decoding")
    runs = result.get("runs") or [{"a": result["a"], "b": result["b"]}]
    if len(runs) == 1:
        lines = [
            f"A: {result['a']['folder']} ({result['a']['model']}{decodings[0]})",
            f"B: {result['b']['folder']} ({result['b']['model']}{decodings[1]})",
            "",
        ]
        mean = ""
    else:
        lines = [f"{len(runs)} pairs of evaluations (one per training seed), paired in order:"]
        for number, run in enumerate(runs, start=1):
            lines += [
                f"A{number}: {run['a']['folder']} ({run['a']['model']}{decodings[0]})",
                f"B{number}: {run['b']['folder']} ({run['b']['model']}{decodings[1]})",
            ]
        lines.append("")
        mean = f", mean of {len(runs)}"
    lines += [
        f"| Benchmark | Texts | A {labels[result['metric']]}{mean} | B{mean} | B − A |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in result["benchmarks"].items():
        lines.append(
            f"| {name} | {row['texts']} | {row['a']:.2f} | {row['b']:.2f} | "
            f"{row['b'] - row['a']:+.2f} |"
        )
    low, high = result["interval"]
    lines.append(
        f"| **average** | | {result['a_avg']:.2f} | {result['b_avg']:.2f} | "
        f"**{result['delta']:+.2f}** |"
    )
    if len(runs) > 1:
        lines += ["", "| Pair | A | B | B − A |", "|---|---:|---:|---:|"]
        for number, run in enumerate(runs, start=1):
            lines.append(
                f"| {number} | {run['a_avg']:.2f} | {run['b_avg']:.2f} | {run['delta']:+.2f} |"
            )
    level = f"{100 * result['confidence']:g} %"
    verdict = (
        "excludes 0: the difference holds beyond the choice of texts"
        if result["significant"]
        else "holds 0: another draw of texts could reverse the difference"
    )
    lines += [
        "",
        f"{level} paired bootstrap interval of B − A over the texts ({result['resamples']} "
        f"resamples): [{low:+.2f}, {high:+.2f}], which {verdict}. "
        + (
            "It does not measure training noise (another seed)."
            if len(runs) == 1
            else f"Each draw of texts is shared by the {len(runs)} pairs; the interval does "
            "not measure the spread between training seeds, which the pairs' own differences "
            "above show."
        ),
    ]
    lines += _answer_lines(result["answers"], mean)
    return "\n".join(lines) + "\n"


def _answer_lines(answers: dict[str, dict[str, float]], mean: str) -> list[str]:
    """Whether B answers more or less than A, and how much of it is right."""
    count = "{:.1f}" if mean else "{:.0f}"
    lines = [
        "",
        f"| Evaluation{mean} | Mentions answered | Correct | Precision | Recall |",
        "|---|---:|---:|---:|---:|",
    ]
    for side in ("a", "b"):
        row = answers[side]
        lines.append(
            f"| {side.upper()} | {count.format(row['mentions'])} | "
            f"{count.format(row['correct'])} | {row['precision']:.2f} | {row['recall']:.2f} |"
        )
    gold = count.format(answers["a"]["gold"])
    lines += [
        "",
        f"Mentions and correct ones are counted over every text ({gold} gold mentions); "
        "precision and recall are averaged over the benchmarks, as F1 is.",
    ]
    return lines
