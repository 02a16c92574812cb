"""Did we reproduce the paper's finding? One verdict per comparison, by a stated rule.

Scores are F1 in points (0-100), each the macro average over a study's benchmarks for one
seed. For a comparison *baseline → treatment* that the paper says goes ``higher`` (or
``lower``):

* Δ = mean over the seeds both arms have of (treatment − baseline), paired by seed;
* noise = with two seeds or more, the seed spread: the larger of the two arms' ranges
  (max − min over seeds), but at least ``min_margin``; with one seed, ``single_seed_margin``
  (nothing measures the noise, so only a large difference counts);
* interval = the paired bootstrap interval of Δ over test texts
  (:func:`raitner.evaluate.significance.paired_bootstrap`, level ``confidence``), when both
  arms have per-text counts for the same texts; it measures what another draw of test texts
  could change, which the margins do not;
* **reproduced**: Δ goes the paper's way, |Δ| > noise and the interval excludes 0;
* **not reproduced**: Δ goes the other way, |Δ| > noise and the interval excludes 0;
* **inconclusive**: |Δ| ≤ noise, or the interval holds 0 — the difference is within what the
  seed or the choice of test texts alone changes;
* **not run**: no seed has complete results for both arms yet.

Without per-text counts (results written before raitner saved them, predictions deleted) the
margins alone decide, and the comparison says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from raitner.evaluate.significance import Interval
from raitner.reproduce.config import VerdictSettings

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)


def rule_text(settings: VerdictSettings) -> str:
    """The rule in words, written into every report."""
    return (
        "Δ = mean over seeds of (treatment − baseline) in macro-average F1 points, paired by "
        "seed. Noise = with ≥ 2 seeds, the larger seed range (max − min) of the two arms, at "
        f"least {settings.min_margin:g} points; with 1 seed, {settings.single_seed_margin:g} "
        f"points. Interval = the {100 * settings.confidence:g} % paired bootstrap interval of Δ "
        f"over the test texts ({settings.resamples} resamples, each benchmark's texts drawn "
        "with replacement, the same draw for both arms and every seed). Reproduced: Δ has the "
        "paper's sign, |Δ| > noise and the interval excludes 0. Not reproduced: Δ has the "
        "opposite sign, |Δ| > noise and the interval excludes 0. Inconclusive: |Δ| ≤ noise or "
        "the interval holds 0. Not run: no seed with complete results for both arms. Without "
        "per-text counts the margins alone decide."
    )


@dataclass(frozen=True)
class Verdict:
    verdict: str
    delta: float | None
    noise: float | None
    noise_basis: str
    seeds: tuple[int, ...]
    per_seed_delta: Mapping[int, float]
    interval: Interval | None = None

    def to_dict(self) -> dict:
        interval = self.interval
        return {
            "verdict": self.verdict,
            "delta": None if self.delta is None else _stored(self.delta),
            "noise": None if self.noise is None else _stored(self.noise),
            "noise_basis": self.noise_basis,
            "interval": None
            if interval is None
            else [_stored(interval.low), _stored(interval.high)],
            "interval_level": None if interval is None else interval.level,
            "seeds": list(self.seeds),
            "per_seed_delta": {str(s): _stored(d) for s, d in self.per_seed_delta.items()},
        }


def _stored(value: float) -> float:
    """A figure as ``results.json`` keeps it. Text quoting a figure formats this value too, so a
    number rounded twice (here, then to 2 decimals in a table) reads the same everywhere."""
    return round(value, 4)


def _range(values: list[float]) -> float:
    return max(values) - min(values)


def judge(
    expect: str,
    baseline: Mapping[int, float],
    treatment: Mapping[int, float],
    settings: VerdictSettings,
    interval: Interval | None = None,
) -> Verdict:
    """The verdict for one comparison from per-seed scores (``{seed: F1 points}``) and, when
    there is one, the bootstrap interval of their difference over test texts."""
    if expect not in ("higher", "lower"):
        raise ValueError(f"expect must be 'higher' or 'lower', got {expect!r}")
    seeds = tuple(sorted(set(baseline) & set(treatment)))
    if not seeds:
        return Verdict(NOT_RUN, None, None, "", (), {})
    per_seed = {seed: treatment[seed] - baseline[seed] for seed in seeds}
    delta = sum(per_seed.values()) / len(seeds)
    if len(seeds) >= 2:
        spread = max(_range([baseline[s] for s in seeds]), _range([treatment[s] for s in seeds]))
        noise = max(spread, settings.min_margin)
        basis = f"seed range {_stored(spread):.2f} over {len(seeds)} seeds"
        if spread < settings.min_margin:
            basis += f" (floor {settings.min_margin:g})"
    else:
        noise = settings.single_seed_margin
        basis = f"1 seed: fixed margin {settings.single_seed_margin:g}"
    if interval is not None:
        basis += (
            f"; {100 * interval.level:g} % interval over texts "
            f"[{_stored(interval.low):+.2f}, {_stored(interval.high):+.2f}]"
        )
    elif settings.resamples:
        basis += "; no per-text counts, margin only"
    sign = 1.0 if expect == "higher" else -1.0
    if abs(delta) <= noise or (interval is not None and not interval.excludes_zero()):
        verdict = INCONCLUSIVE
    elif delta * sign > 0:
        verdict = REPRODUCED
    else:
        verdict = NOT_REPRODUCED
    return Verdict(verdict, delta, noise, basis, seeds, per_seed, interval)
