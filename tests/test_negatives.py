from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from raitner.data.negatives import NegativeSampling, NegativeTypeSampler, mention_frequencies
from raitner.schema import Entity, Example


def _example(labels, label_set=(), id="x"):
    text = " ".join(f"m{i}" for i in range(len(labels)))
    entities = []
    position = 0
    for i, label in enumerate(labels):
        mention = f"m{i}"
        entities.append(Entity(position, position + len(mention), mention, label))
        position += len(mention) + 1
    return Example(id=id, text=text, lang="en", entities=entities, label_set=tuple(label_set))


def test_negatives_exclude_positives_and_are_unique():
    sampler = NegativeTypeSampler(
        {"a": 5, "b": 5, "c": 5, "d": 5}, NegativeSampling(probability=1.0)
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        negatives = sampler.negatives(["a", "b"], rng)
        assert len(negatives) == 2
        assert len(set(negatives)) == 2
        assert not {"a", "b"} & set(negatives)


def test_negative_count_follows_probability_and_pool_size():
    sampler = NegativeTypeSampler({t: 1 for t in "abcdefghij"}, NegativeSampling(probability=0.5))
    rng = np.random.default_rng(1)
    counts = [len(sampler.negatives(["a", "b", "c", "d"], rng)) for _ in range(4000)]
    assert abs(np.mean(counts) - 2.0) < 0.1  # 4 positives × 0.5
    small = NegativeTypeSampler({"a": 1, "b": 1}, NegativeSampling(probability=1.0))
    assert small.negatives(["a", "x", "y"], rng) == ["b"]  # capped by what is left


def test_negatives_are_proportional_to_frequency():
    sampler = NegativeTypeSampler(
        {"pos": 1, "rare": 1, "common": 9}, NegativeSampling(probability=1.0)
    )
    rng = np.random.default_rng(2)
    drawn = Counter(sampler.negatives(["pos"], rng)[0] for _ in range(5000))
    assert 0.87 < drawn["common"] / 5000 < 0.93


def test_label_set_is_asked_whole_and_shuffled_deterministically():
    sampler = NegativeTypeSampler({"a": 1, "zzz": 100}, NegativeSampling())
    ex = _example(["a"], label_set=("a", "b", "c", "d", "e"))
    first = sampler.types_for(ex, np.random.default_rng(3))
    assert sorted(first) == ["a", "b", "c", "d", "e"]
    assert first == sampler.types_for(ex, np.random.default_rng(3))
    orders = {tuple(sampler.types_for(ex, np.random.default_rng(seed))) for seed in range(20)}
    assert len(orders) > 1


def test_no_shuffle_keeps_positives_first():
    sampler = NegativeTypeSampler(
        {"a": 1, "b": 1, "c": 1}, NegativeSampling(probability=1.0, shuffle=False)
    )
    types = sampler.types_for(_example(["b", "a"]), np.random.default_rng(0))
    assert types[:2] == ["b", "a"]
    assert types[2] == "c"


def test_mention_frequencies_count_unique_pairs():
    ex = _example(["a", "a", "b"])
    assert mention_frequencies([ex, ex]) == {"a": 4, "b": 2}


def test_probability_is_validated():
    with pytest.raises(ValueError):
        NegativeSampling(probability=1.5)
