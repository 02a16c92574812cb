"""Did we reproduce the paper's finding? One verdict per comparison, by a stated rule.

Scores are F1 in points (0-100), each the macro average over a study's benchmarks for one
seed. For a comparison *baseline → treatment* that the paper says goes ``higher`` (or
``lower``):

* Δ = mean over the seeds both arms have of (treatment − baseline), paired by seed;
* noise = with two seeds or more, the seed spread: the larger of the two arms' ranges
  (max − min over seeds), but at least ``min_margin``; with one seed, ``single_seed_margin``
  (nothing measures the noise, so only a large difference counts);
* **reproduced**: Δ goes the paper's way and |Δ| > noise;
* **not reproduced**: Δ goes the other way and |Δ| > noise;
* **inconclusive**: |Δ| ≤ noise — the difference is within what the seed alone changes;
* **not run**: no seed has complete results for both arms yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
        "points. Reproduced: Δ has the paper's sign and |Δ| > noise. Not reproduced: Δ has "
        "the opposite sign and |Δ| > noise. Inconclusive: |Δ| ≤ noise. Not run: no seed with "
        "complete results for both arms."
    )


@dataclass(frozen=True)
class Verdict:
    verdict: str
    delta: float | None
    noise: float | None
    noise_basis: str
    seeds: tuple[int, ...]
    per_seed_delta: Mapping[int, float]

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "delta": None if self.delta is None else round(self.delta, 4),
            "noise": None if self.noise is None else round(self.noise, 4),
            "noise_basis": self.noise_basis,
            "seeds": list(self.seeds),
            "per_seed_delta": {str(s): round(d, 4) for s, d in self.per_seed_delta.items()},
        }


def _range(values: list[float]) -> float:
    return max(values) - min(values)


def judge(
    expect: str,
    baseline: Mapping[int, float],
    treatment: Mapping[int, float],
    settings: VerdictSettings,
) -> Verdict:
    """The verdict for one comparison from per-seed scores (``{seed: F1 points}``)."""
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
        basis = f"seed range {spread:.2f} over {len(seeds)} seeds"
        if spread < settings.min_margin:
            basis += f" (floor {settings.min_margin:g})"
    else:
        noise = settings.single_seed_margin
        basis = f"1 seed: fixed margin {settings.single_seed_margin:g}"
    sign = 1.0 if expect == "higher" else -1.0
    if abs(delta) <= noise:
        verdict = INCONCLUSIVE
    elif delta * sign > 0:
        verdict = REPRODUCED
    else:
        verdict = NOT_REPRODUCED
    return Verdict(verdict, delta, noise, basis, seeds, per_seed)
