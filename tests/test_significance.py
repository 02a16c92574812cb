"""The paired bootstrap over test texts, and the per-text counts it resamples."""

from __future__ import annotations

import numpy as np
import pytest

from raitner.evaluate.metrics import Counts, ra_it_f1, span_f1, uniner_f1
from raitner.evaluate.runner import per_text_counts
from raitner.evaluate.significance import observed_delta, paired_bootstrap


def _macro_points(runs):
    """Mean over runs of the macro F1 (points) of ``{run: {benchmark: rows}}``, by Counts."""
    values = []
    for benchmarks in runs.values():
        f1s = []
        for rows in benchmarks.values():
            total = Counts()
            for tp, n_pred, n_gold in rows:
                total += Counts(tp, n_pred, n_gold)
            f1s.append(100 * total.f1)
        values.append(sum(f1s) / len(f1s))
    return sum(values) / len(values)


def _random_rows(rng, n):
    gold = rng.integers(0, 4, size=n)
    pred = rng.integers(0, 4, size=n)
    tp = np.minimum(gold, pred) * rng.integers(0, 2, size=n)
    return [[int(a), int(b), int(c)] for a, b, c in zip(tp, pred, gold, strict=True)]


def test_item_counts_add_up_to_the_totals_and_stay_out_of_the_json():
    answers = ['["Paris", "Rome"]', "no list", '["Ada"]', "[]"]
    golds = [["Paris"], ["Bern"], ["Ada", "Alan"], []]
    for result in (uniner_f1(answers, golds), ra_it_f1(answers, golds)):
        assert result.item_counts == (Counts(1, 2, 1), Counts(0, 0, 1), Counts(1, 1, 2), Counts())
        total = Counts()
        for counts in result.item_counts:
            total += counts
        assert total == result.counts
        assert "item_counts" not in result.to_dict()
    spans = span_f1([[(0, 5, "city")], []], [[(0, 5, "city"), (7, 9, "city")], [(1, 2, "x")]])
    assert spans.item_counts == (Counts(1, 1, 2), Counts(0, 0, 1))


def test_per_text_counts_group_the_queries_of_each_text():
    # 2 texts × 3 types, text-major, as score_benchmark asks them
    answers = ['["a"]', "[]", '["b", "c"]', '["d"]', '["e"]', "[]"]
    golds = [["a"], ["x"], ["c"], [], ["e"], ["f"]]
    scores = {"uniner": uniner_f1(answers, golds), "span": span_f1([[], [(0, 1, "t")]], [[], []])}
    counts = per_text_counts(scores, n_texts=2, n_types=3)
    assert counts["uniner"] == [[2, 3, 3], [1, 2, 2]]
    assert counts["span"] == [[0, 0, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="6 scored items for 4 texts"):
        per_text_counts({"uniner": scores["uniner"]}, n_texts=4, n_types=3)


def test_identical_systems_give_a_zero_interval_that_holds_zero():
    rng = np.random.default_rng(3)
    runs = {1: {"a": _random_rows(rng, 20), "b": _random_rows(rng, 15)}}
    interval = paired_bootstrap(runs, runs, resamples=500)
    assert interval.low == interval.high == 0.0
    assert not interval.excludes_zero()
    assert observed_delta(runs, runs) == 0.0


def test_a_system_better_on_every_text_gets_an_interval_above_zero():
    rng = np.random.default_rng(4)
    baseline = {1: {"a": [[0, 2, 2]] * 30}, 2: {"a": [[1, 2, 2]] * 30}}
    treatment = {1: {"a": [[2, 2, 2]] * 30}, 2: {"a": [[2, 2, 2]] * 30}}
    interval = paired_bootstrap(baseline, treatment, resamples=300)
    # every text is the same, so every resample gives the observed Δ: (100 + 50) / 2 points
    assert interval.low == pytest.approx(75.0) and interval.high == pytest.approx(75.0)
    assert interval.excludes_zero()
    noisy_base = {1: {"a": _random_rows(rng, 40)}}
    better = {1: {"a": [[n_gold, n_gold, n_gold] for _, _, n_gold in noisy_base[1]["a"]]}}
    assert paired_bootstrap(noisy_base, better, resamples=300).low > 0


def test_observed_delta_is_the_macro_f1_difference_and_lies_in_the_interval():
    rng = np.random.default_rng(5)
    baseline = {s: {b: _random_rows(rng, 25) for b in "xyz"} for s in (1, 2)}
    treatment = {s: {b: _random_rows(rng, 25) for b in "xyz"} for s in (1, 2)}
    delta = observed_delta(baseline, treatment)
    assert delta == pytest.approx(_macro_points(treatment) - _macro_points(baseline))
    interval = paired_bootstrap(baseline, treatment, resamples=2000, level=0.95)
    assert interval.low < delta < interval.high
    # a wider level gives a wider interval; the same seed gives the same interval
    wider = paired_bootstrap(baseline, treatment, resamples=2000, level=0.99)
    assert wider.low <= interval.low and wider.high >= interval.high
    assert paired_bootstrap(baseline, treatment, resamples=2000, level=0.95) == interval


def test_mismatched_inputs_are_refused_with_what_differs():
    rows = [[1, 1, 1]] * 3
    with pytest.raises(ValueError, match="same runs"):
        paired_bootstrap({1: {"a": rows}}, {2: {"a": rows}})
    with pytest.raises(ValueError, match="treatment run 1: benchmarks"):
        paired_bootstrap({1: {"a": rows}}, {1: {"b": rows}})
    with pytest.raises(ValueError, match="different numbers of texts"):
        paired_bootstrap({1: {"a": rows}}, {1: {"a": rows[:2]}})
    with pytest.raises(ValueError, match="level"):
        paired_bootstrap({1: {"a": rows}}, {1: {"a": rows}}, level=1.5)
