"""Dropping answered mentions that are not in the text before a list metric scores them."""

from __future__ import annotations

import json

from raitner.evaluate.metrics import uniner_f1
from raitner.evaluate.unaligned import drop_unaligned
from raitner.infer.align import align_mentions

TEXT = "Barack Obama met the New York Times in New York ."


def test_mentions_not_in_the_text_are_dropped_and_counted():
    answers = {
        "person": '["Barack Obama", "Michelle Obama"]',
        "location": '["New York", "Paris"]',
        "organization": "[]",
    }
    rewritten, dropped = drop_unaligned(TEXT, answers)
    assert dropped == 2
    assert list(rewritten) == list(answers)  # same labels, same order
    assert json.loads(rewritten["person"]) == ["Barack Obama"]
    assert json.loads(rewritten["location"]) == ["New York"]
    assert rewritten["organization"] is answers["organization"]  # untouched: the same string


def test_case_whitespace_and_nested_mentions_count_as_in_the_text():
    answers = {
        "person": '["barack  obama"]',  # other case, doubled space: the aligner finds it
        "organization": '["NewYork Times"]',  # a space lost: found ignoring whitespace
        "location": '["New York", "York"]',  # York lies inside New York: subsumed, not absent
    }
    rewritten, dropped = drop_unaligned(TEXT, answers)
    assert dropped == 0
    assert rewritten == answers


def test_repaired_and_unparseable_answers_are_kept_verbatim():
    answers = {
        "person": '["Barack Obama", "Nobody Here", "Cut off',  # truncated: repaired
        "location": "I cannot tell.",  # unparseable
        "organization": '["New York Times", "Le Monde"]',
    }
    rewritten, dropped = drop_unaligned(TEXT, answers)
    assert rewritten["person"] == answers["person"]
    assert rewritten["location"] == answers["location"]
    assert json.loads(rewritten["organization"]) == ["New York Times"]
    assert dropped == 1


def test_non_ascii_mentions_survive_the_rewrite():
    text = "Jürgen Schmidhuber sprach in München ."
    rewritten, dropped = drop_unaligned(text, {"person": '["Jürgen Schmidhuber", "Sepp"]'})
    assert dropped == 1
    assert rewritten["person"] == '["Jürgen Schmidhuber"]'


def test_the_metric_loses_only_false_positives():
    """Gold mentions are always in their text, so dropping can lower n_pred, never tp."""
    texts = [TEXT, "Angela Merkel visited Berlin and Bonn .", "Nothing to see here ."]
    golds = [
        {"person": ["Barack Obama"], "location": ["New York"]},
        {"person": ["Angela Merkel"], "location": ["Berlin", "Bonn"]},
        {"person": [], "location": []},
    ]
    answered = [
        {"person": '["Barack Obama", "Obama Barack"]', "location": '["New York", "NYC"]'},
        {"person": '["Angela Merkel"]', "location": '["Berlin", "Hamburg", "Bonn"]'},
        {"person": '["Somebody"]', "location": "[]"},
    ]
    before, after, gold_lists = [], [], []
    total_dropped = 0
    for text, gold, answers in zip(texts, golds, answered, strict=True):
        rewritten, dropped = drop_unaligned(text, answers)
        total_dropped += dropped
        for label in answers:
            before.append(answers[label])
            after.append(rewritten[label])
            gold_lists.append(gold[label])
    old, new = uniner_f1(before, gold_lists), uniner_f1(after, gold_lists)
    assert total_dropped == 4
    assert new.tp == old.tp == 5
    assert new.n_gold == old.n_gold
    assert new.n_pred == old.n_pred - total_dropped
    assert new.f1 > old.f1


def test_what_is_kept_is_what_the_aligner_finds():
    answers = {"person": '["Barack Obama", "Michelle Obama"]', "location": '["New York"]'}
    rewritten, _ = drop_unaligned(TEXT, answers)
    pairs = [(m, label) for label, a in rewritten.items() for m in json.loads(a)]
    assert align_mentions(TEXT, pairs).unaligned == []
