"""Predicted and gold mentions sorted by kind: wrong type, not gold, missed."""

from __future__ import annotations

import json

import pytest

from raitner.evaluate.error_kinds import error_kinds
from raitner.evaluate.metrics import ra_it_f1, uniner_f1
from raitner.schema import Entity, Example


def _example(id_, text, spans):
    entities = []
    for mention, label in spans:
        start = text.index(mention)
        entities.append(Entity(start, start + len(mention), mention, label))
    return Example(id=id_, text=text, lang="en", entities=entities)


CLASH = _example(
    "t1",
    "The Clash recorded London Calling in London.",
    [("The Clash", "band"), ("London Calling", "album"), ("London", "location")],
)
TYPES = ["band", "album", "location", "person"]


def test_each_predicted_mention_has_one_kind_and_confusions_name_the_types():
    answers = [
        {
            "band": '["The Clash"]',  # tp
            "album": '["London Calling", "the clash"]',  # tp; gold band (normalised match)
            "location": '["London", "London Calling", "Brixton"]',  # tp, wrong type, not gold
            "person": '["The Clash", "Joe"]',  # wrong type, not gold
        }
    ]
    kinds = error_kinds([CLASH], TYPES, answers)
    assert (kinds.tp, kinds.wrong_type, kinds.not_gold, kinds.missed) == (3, 3, 2, 0)
    assert kinds.confusions == {
        ("band", "album"): 1,
        ("album", "location"): 1,
        ("band", "person"): 1,
    }
    assert kinds.top_confusions(1) == [("album", "location", 1)]  # ties broken by name
    record = kinds.to_dict()
    assert record["n_pred"] == 8 and record["n_gold"] == 3
    assert record["confusions"][0] == {"gold": "album", "answered": "location", "count": 1}


def test_missed_mentions_and_answers_that_do_not_parse():
    answers = [
        {
            "band": "I think it is The Clash",  # no list: nothing predicted, the band missed
            "album": '["London Calling"',  # truncated: nothing predicted
            # no answer for "location" at all: empty, its gold missed
            "person": "[]",
        }
    ]
    kinds = error_kinds([CLASH], TYPES, answers)
    assert (kinds.tp, kinds.wrong_type, kinds.not_gold, kinds.missed) == (0, 0, 0, 3)


def test_a_mention_gold_only_for_a_type_not_asked_is_not_gold():
    text = "Joe Strummer sang."
    example = _example("t2", text, [("Joe Strummer", "misc")])
    kinds = error_kinds([example], ["person"], [{"person": '["Joe Strummer"]'}])
    assert (kinds.tp, kinds.wrong_type, kinds.not_gold, kinds.missed) == (0, 0, 1, 0)


def test_a_mention_gold_for_two_other_types_counts_once_and_names_both():
    text = "Paris is lovely."
    example = _example("t3", text, [("Paris", "city"), ("Paris", "location")])
    kinds = error_kinds([example], ["city", "location", "person"], [{"person": '["Paris"]'}])
    assert kinds.wrong_type == 1 and kinds.missed == 2
    assert kinds.confusions == {("city", "person"): 1, ("location", "person"): 1}


@pytest.mark.parametrize(("rule", "metric"), [("uniner", uniner_f1), ("ra_it", ra_it_f1)])
def test_counts_add_up_to_the_list_metric(rule, metric):
    """tp + wrong type + not gold is the metric's n_pred, tp + missed its n_gold, under the
    same answer rule (UniversalNER's cleaning of 'ASSISTANT:' included)."""
    second = _example("t4", "Mick Jones left the band in 1983.", [("Mick Jones", "person")])
    answers = [
        {
            "band": 'ASSISTANT: ["The Clash", "London"]',
            "album": 'Sure: ["London Calling"]',  # read only by the RA-IT rule
            "location": '["London", "London", "The Clash"]',
            "person": '["Mick"]',
        },
        {"band": '["Mick Jones"]', "person": '["Mick", "the band"]', "album": "[1983]"},
    ]
    golds = [CLASH, second]
    kinds = error_kinds(golds, TYPES, answers, rule=rule)
    predictions = [a.get(label, "") for a in answers for label in TYPES]
    gold_lists = [ex.mentions(label) for ex in golds for label in TYPES]
    result = metric(predictions, gold_lists)
    assert kinds.tp == result.tp
    assert kinds.n_pred == result.n_pred
    assert kinds.n_gold == result.n_gold
    assert kinds.wrong_type > 0 and kinds.not_gold > 0 and kinds.missed > 0


def test_answers_must_match_the_texts():
    with pytest.raises(ValueError, match="1 answer sets for 2 texts"):
        error_kinds([CLASH, CLASH], TYPES, [{}])


def test_to_dict_is_json_ready():
    kinds = error_kinds([CLASH], TYPES, [{"person": '["The Clash"]'}])
    assert json.loads(json.dumps(kinds.to_dict()))["confusions"] == [
        {"gold": "band", "answered": "person", "count": 1}
    ]
