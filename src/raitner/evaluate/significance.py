"""How sure is a difference in F1? A paired bootstrap over test texts.

Two systems scored on the same texts differ by Δ macro-average F1. Another draw of test texts
would give another Δ; the bootstrap estimates by how much by drawing, many times, as many texts
as each benchmark has, with replacement, the *same* draw for both systems (paired), and
recomputing Δ from the drawn texts' micro counts. The interval between the 2.5th and 97.5th
percentiles of those Δs is a 95 % confidence interval for Δ from text sampling alone: it says
nothing about training noise (another seed), which only more training runs measure.

Inputs are per-text micro counts ``[tp, n_pred, n_gold]``
(:func:`raitner.evaluate.runner.per_text_counts`), keyed by run (a training seed) and
benchmark; every run of both systems must hold the same texts in the same order. With several
runs, Δ is the mean over runs of the per-run macro Δ, and each draw of texts is shared by all
runs (the test texts do not change with the training seed).

This is the percentile bootstrap of Efron & Tibshirani (1993), as used for NLP significance by
Koehn (2004) and Berg-Kirkpatrick et al. (2012), stratified by benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: run → benchmark → one ``[tp, n_pred, n_gold]`` row per text
TextCounts = Mapping[object, Mapping[str, Sequence[Sequence[int]]]]


@dataclass(frozen=True)
class Interval:
    """A bootstrap interval for Δ in F1 points (0-100)."""

    low: float
    high: float
    level: float
    resamples: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _f1_points(sums: np.ndarray) -> np.ndarray:
    """Micro F1 in points of summed ``[tp, n_pred, n_gold]`` rows (``x / 0 = 0``)."""
    denominator = sums[..., 1] + sums[..., 2]
    return np.where(denominator > 0, 200.0 * sums[..., 0] / np.maximum(denominator, 1), 0.0)


def _check(baseline: TextCounts, treatment: TextCounts) -> tuple[list, list[str]]:
    runs = list(baseline)
    if not runs or set(runs) != set(treatment):
        raise ValueError(
            f"both systems need the same runs, got {sorted(map(str, baseline))} and "
            f"{sorted(map(str, treatment))}"
        )
    benchmarks = sorted(baseline[runs[0]])
    if not benchmarks:
        raise ValueError("no benchmarks to compare")
    for run in runs:
        for side, name in ((baseline, "baseline"), (treatment, "treatment")):
            if sorted(side[run]) != benchmarks:
                raise ValueError(
                    f"{name} run {run}: benchmarks {sorted(side[run])}, expected {benchmarks}"
                )
    for benchmark in benchmarks:
        sizes = {len(side[run][benchmark]) for run in runs for side in (baseline, treatment)}
        if len(sizes) != 1:
            raise ValueError(
                f"{benchmark}: the runs hold different numbers of texts {sorted(sizes)}"
            )
    return runs, benchmarks


def paired_bootstrap(
    baseline: TextCounts,
    treatment: TextCounts,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The percentile interval of Δ = treatment − baseline (macro F1 points, mean over runs)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    runs, benchmarks = _check(baseline, treatment)
    rng = np.random.default_rng(seed)
    deltas = np.zeros(resamples)
    for benchmark in benchmarks:
        n = len(baseline[runs[0]][benchmark])
        if n == 0:
            continue  # no texts: F1 0 for both, Δ 0 on this benchmark
        # how often each text is drawn, per resample: one shared draw for every run and side
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        for run in runs:
            for side, sign in ((treatment, 1.0), (baseline, -1.0)):
                counts = np.asarray(side[run][benchmark], dtype=np.float64).reshape(n, 3)
                deltas += sign * _f1_points(weights @ counts)
    deltas /= len(benchmarks) * len(runs)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail])
    return Interval(float(low), float(high), level, resamples)


def observed_delta(baseline: TextCounts, treatment: TextCounts) -> float:
    """Δ on the texts as they are (no resampling), in macro F1 points, mean over runs."""
    runs, benchmarks = _check(baseline, treatment)
    total = 0.0
    for run in runs:
        for benchmark in benchmarks:
            for side, sign in ((treatment, 1.0), (baseline, -1.0)):
                rows = np.asarray(side[run][benchmark], dtype=np.float64).reshape(-1, 3)
                total += sign * float(_f1_points(rows.sum(axis=0)))
    return total / (len(benchmarks) * len(runs))
