"""Test vectors for raitner.evaluate; every expected number is worked out in the comments.

The list rules follow UniversalNER's src/eval/evaluate.py (``uniner``) and the RA-IT authors'
src/llm_tuning/evaluation/evaluate.py (``ra_it``); see raitner/evaluate/metrics.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raitner.errors import UnknownNameError
from raitner.evaluate import (
    Counts,
    NERResult,
    ParseStatus,
    average_table,
    build_table,
    clean_uniner_response,
    conversation_golds,
    list_f1,
    macro_average,
    normalize_answer,
    parse_answer,
    percent,
    ra_it_f1,
    reference_scores,
    render_markdown,
    span_f1,
    uniner_f1,
    write_report,
)
from raitner.schema import Entity, Example

OK, NO_LIST, INVALID = ParseStatus.OK, ParseStatus.NO_LIST, ParseStatus.INVALID


def counts(result: NERResult) -> tuple[int, int, int]:
    return result.tp, result.n_pred, result.n_gold


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The U.S.", "us"),  # lower, drop "." then the article
        ("U.S", "us"),
        ("  New   York\t", "new york"),
        ("PARIS.", "paris"),
        ("A", ""),  # an article alone normalises to the empty mention
        ("an apple", "apple"),
        ("Theatre of the Absurd", "theatre of absurd"),  # whole words only
        ("the-a", "thea"),  # punctuation goes first, so no article is left
        ("C++", "c"),
        ("C #", "c"),
        ('say "hi"', "say hi"),
        ("O'Neil", "oneil"),
        # Chinese: ASCII punctuation only, Unicode lower/whitespace, whole-string compare.
        ("《红楼梦》", "《红楼梦》"),
        ("(红楼梦)", "红楼梦"),
        ("（红楼梦）", "（红楼梦）"),
        ("北京，上海", "北京，上海"),
        ("中国\u3000银行", "中国 银行"),
        ("中国\xa0银行", "中国 银行"),
        ("中国银行", "中国银行"),
        ("A股", "a股"),  # no word boundary between "a" and a CJK character
        ("The 中国", "中国"),
        ("ＡＢＣ", "ａｂｃ"),  # full-width Latin is lowercased, not folded to ASCII
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


# --- reading the answer's list ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "uniner", "ra_it"),
    [
        ('["x", "y"]', (OK, ("x", "y")), (OK, ("x", "y"))),
        ("[]", (OK, ()), (OK, ())),
        ("[ ]", (OK, ()), (OK, ())),
        ("", (NO_LIST, ()), (NO_LIST, ())),
        # truncated list: no "]" at all, so neither rule finds a list (not "invalid")
        ('["x", "y', (NO_LIST, ()), (NO_LIST, ())),
        # prose before the list
        ('The entities are ["Paris", "London"].', (NO_LIST, ()), (OK, ("paris", "london"))),
        # text after the list is ignored by both
        ('["Paris"] is the answer', (OK, ("paris",)), (OK, ("paris",))),
        # only the first list counts
        ('["x"] ["y"]', (OK, ("x",)), (OK, ("x",))),
        # RA-IT takes the first [...] anywhere, even a bad one
        ('See [1]: ["x"]', (NO_LIST, ()), (INVALID, ())),
        # a leading space defeats re.match (uniner_f1 strips predictions first)
        (' ["x"]', (NO_LIST, ()), (OK, ("x",))),
        # "." does not cross a newline: a pretty-printed list is never found
        ('[\n  "x",\n  "y"\n]', (NO_LIST, ()), (NO_LIST, ())),
        # non-list JSON
        ('{"entities": ["x"]}', (NO_LIST, ()), (OK, ("x",))),
        ('"x"', (NO_LIST, ()), (NO_LIST, ())),
        ('{"entities": []}', (NO_LIST, ()), (OK, ())),
        # not a list of strings: the whole answer is dropped
        ('["x", 1]', (INVALID, ()), (INVALID, ())),
        ("[null]", (INVALID, ()), (INVALID, ())),
        ('[{"a": "b"}]', (INVALID, ()), (INVALID, ())),
        # not JSON: single quotes, trailing comma, raw tab inside a string
        ("['a']", (INVALID, ()), (INVALID, ())),
        ('["a",]', (INVALID, ()), (INVALID, ())),
        ('["\tx"]', (INVALID, ()), (INVALID, ())),
        ('["\\tx"]', (OK, ("x",)), (OK, ("x",))),
        # escaped quotes are fine; the quotes and the apostrophe are then punctuation
        ('["say \\"hi\\"", "O\'Neil"]', (OK, ("say hi", "oneil")), (OK, ("say hi", "oneil"))),
        # "]" inside a mention ends the match early: '["a]' does not decode
        ('["x]y", "z"]', (INVALID, ()), (INVALID, ())),
        ('["x\\u005dy"]', (OK, ("xy",)), (OK, ("xy",))),  # escaped "]" is fine
        # nested lists never decode (the match stops at the inner "]")
        ('[["x", "y"]]', (INVALID, ()), (INVALID, ())),
        # de-duplication after normalisation, first occurrence kept
        ('["Paris", "paris", "PARIS.", "The Paris", "Lyon"]', (OK, ("paris", "lyon")), None),
        # article-only mentions all become the one empty mention
        ('["a", "An", "the", "x"]', (OK, ("", "x")), None),
    ],
)
def test_parse_answer(answer: str, uniner: tuple, ra_it: tuple | None) -> None:
    for rule, expected in (("uniner", uniner), ("ra_it", ra_it if ra_it else uniner)):
        parsed = parse_answer(answer, rule)
        assert (parsed.status, parsed.mentions) == expected, rule


def test_parse_answer_rejects_unknown_rule_and_non_strings() -> None:
    with pytest.raises(UnknownNameError):
        parse_answer("[]", "gner")
    with pytest.raises(TypeError):
        parse_answer(["a"], "uniner")  # type: ignore[arg-type]


def test_clean_uniner_response() -> None:
    assert clean_uniner_response('  ["a"]\n') == '["a"]'
    assert clean_uniner_response('USER: q ASSISTANT: x ASSISTANT: ["a"] ') == '["a"]'


# --- list F1 -------------------------------------------------------------------------------

# Six queries (type, gold mentions, prediction):
# q1 location  ["The U.S.", "Obama"]  '["U.S", "obama", "Biden"]'  pred {us, obama, biden},
#              gold {us, obama}                                    → tp 2, pred 3, gold 2
# q2 person    []                     "[]"                         → 0, 0, 0 (adds nothing)
# q3 person    []                     '["x"]'                      → 0, 1, 0 (false positive)
# q4 location  ["Paris", "paris"]     '["PARIS", "Paris", "Lyon", "lyon"]'  gold {paris},
#              pred {paris, lyon}                                  → 1, 2, 1
# q5 misc      ["x", "y"]             '["x", "y' (truncated)       → 0, 0, 2, no list
# q6 location  ["Berlin"]             'Answer: ["Berlin"]'         uniner: 0, 0, 1, no list;
#                                                                  ra_it:  1, 1, 1
TYPES = ["location", "person", "person", "location", "misc", "location"]
GOLDS = [["The U.S.", "Obama"], [], [], ["Paris", "paris"], ["x", "y"], ["Berlin"]]
PREDS = [
    '["U.S", "obama", "Biden"]',
    "[]",
    '["x"]',
    '["PARIS", "Paris", "Lyon", "lyon"]',
    '["x", "y',
    'Answer: ["Berlin"]',
]


def test_uniner_f1_hand_computed() -> None:
    result = uniner_f1(PREDS, GOLDS, TYPES)
    # tp 2+1 = 3, pred 3+1+2 = 6, gold 2+1+2+1 = 6 → P = R = F1 = 0.5
    assert counts(result) == (3, 6, 6)
    assert (result.precision, result.recall, result.f1) == (0.5, 0.5, 0.5)
    assert result.n_queries == 6
    assert (result.n_no_list, result.n_invalid, result.n_unparseable) == (2, 0, 2)  # q5, q6
    assert result.n_empty_pred == 3  # q2, q5, q6
    assert result.n_empty_gold == 2  # q2, q3
    assert result.n_unparsed_gold == 0
    # location: q1 + q4 + q6 = (3, 5, 4); person: q2 + q3 = (0, 1, 0); misc: q5 = (0, 0, 2)
    assert result.per_type == {
        "location": Counts(3, 5, 4),
        "person": Counts(0, 1, 0),
        "misc": Counts(0, 0, 2),
    }
    assert result.per_type["location"].f1 == pytest.approx(2 * 3 / 9)
    assert list(result.per_type) == ["location", "person", "misc"]  # first-seen order


def test_ra_it_f1_hand_computed() -> None:
    result = ra_it_f1(PREDS, GOLDS, TYPES)
    # as uniner, but q6 is read: tp 4, pred 7, gold 6
    assert counts(result) == (4, 7, 6)
    assert result.precision == pytest.approx(4 / 7)
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(8 / 13)  # 2·4 / (7 + 6)
    assert (result.n_no_list, result.n_invalid) == (1, 0)
    assert result.n_empty_pred == 2
    assert result.per_type["location"] == Counts(4, 6, 4)


def test_gold_as_raw_string_equals_gold_as_list() -> None:
    raw = [json.dumps(gold) for gold in GOLDS]
    for rule in ("uniner", "ra_it"):
        assert list_f1(PREDS, raw, rule=rule) == list_f1(PREDS, GOLDS, rule=rule)


def test_unparseable_gold_string_scores_as_empty() -> None:
    # a raw tab inside a mention (as in RA-IT's Boson test file): the gold is read as []
    result = ra_it_f1(['["x"]'], ['["\tx"]'])
    assert counts(result) == (0, 1, 0)
    assert result.n_unparsed_gold == 1
    assert result.n_invalid == 0


def test_empty_gold_cases() -> None:
    # empty gold, empty prediction: no tp, fp or fn; 0/0 is defined as 0
    both_empty = uniner_f1(["[]"], [[]])
    assert counts(both_empty) == (0, 0, 0)
    assert (both_empty.precision, both_empty.recall, both_empty.f1) == (0.0, 0.0, 0.0)
    assert (both_empty.n_empty_pred, both_empty.n_empty_gold) == (1, 1)
    # empty gold with a prediction: two false positives
    fp = uniner_f1(['["x", "y"]'], [[]])
    assert counts(fp) == (0, 2, 0)
    assert (fp.precision, fp.recall, fp.f1) == (0.0, 0.0, 0.0)
    # adding it to a perfect query halves precision: tp 1, pred 3, gold 1 → F1 = 2/4
    mixed = uniner_f1(['["x"]', '["x", "y"]'], [["x"], []])
    assert counts(mixed) == (1, 3, 1)
    assert mixed.f1 == 0.5


def test_duplicates_case_punctuation_articles() -> None:
    # gold {us, new york}; pred "The U.S.", "u.s", "US" → us; "NEW YORK" → new york; "York"
    result = uniner_f1(['["The U.S.", "u.s", "US", "NEW YORK", "York"]'], [["U.S", "New York"]])
    assert counts(result) == (2, 3, 2)
    assert result.f1 == pytest.approx(0.8)  # 2·2 / (3 + 2)
    # "A" and "the" both normalise to "" and so match each other
    assert counts(uniner_f1(['["the"]'], [["A"]])) == (1, 1, 1)


def test_invalid_answer_counted() -> None:
    result = ra_it_f1(['See [1]: ["x"]', '["x", 1]'], [["x"], ["x"]])
    assert counts(result) == (0, 0, 2)
    assert (result.n_invalid, result.n_no_list, result.n_unparseable) == (2, 0, 2)


def test_chinese_mentions() -> None:
    gold = ["《红楼梦》", "曹雪芹", "中国\u3000银行"]
    answer = '文本中的实体：["红楼梦", "曹雪芹", "中国 银行", "(曹雪芹)", "（曹雪芹）"]'
    # ra_it: pred {红楼梦, 曹雪芹, 中国 银行, （曹雪芹）} ("(曹雪芹)" duplicates 曹雪芹);
    # gold {《红楼梦》, 曹雪芹, 中国 银行}: tp 2, pred 4, gold 3 → F1 = 4/7
    result = ra_it_f1([answer], [gold])
    assert counts(result) == (2, 4, 3)
    assert result.f1 == pytest.approx(4 / 7)
    # uniner: the answer does not start with "[": nothing predicted
    assert counts(uniner_f1([answer], [gold])) == (0, 0, 3)
    # characters are not matched one by one: a partial mention is simply wrong
    assert counts(ra_it_f1(['["中国"]'], [["中国银行"]])) == (0, 1, 1)


def test_uniner_cleans_predictions_like_its_inference() -> None:
    assert counts(uniner_f1(['  ["x"]\n'], [["x"]])) == (1, 1, 1)
    assert counts(uniner_f1(['ASSISTANT: ["x"]'], [["x"]])) == (1, 1, 1)
    assert counts(uniner_f1(['  ["x"]'], [["x"]], clean=False)) == (0, 0, 1)


def test_reference_smoothing_is_negligible() -> None:
    for tp, n_pred, n_gold in [(3, 6, 6), (4, 7, 6), (1, 3, 1), (786, 786, 1603), (0, 0, 5)]:
        exact = Counts(tp, n_pred, n_gold)
        p, r, f = reference_scores(tp, n_pred, n_gold)
        assert abs(exact.precision - p) < 1e-9
        assert abs(exact.recall - r) < 1e-9
        assert abs(exact.f1 - f) < 1e-9
        assert percent(exact.f1) == percent(f)


def test_length_and_type_checks() -> None:
    with pytest.raises(ValueError):
        uniner_f1(["[]"], [[], []])
    with pytest.raises(ValueError):
        uniner_f1(["[]"], [[]], ["a", "b"])
    with pytest.raises(TypeError):
        uniner_f1([None], [[]])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        uniner_f1(["[]"], [[1]])  # type: ignore[list-item]
    with pytest.raises(UnknownNameError):
        list_f1(["[]"], [[]], rule="gner")


# --- span F1 -------------------------------------------------------------------------------

TEXT = "Apple Inc. hired Tim Cook in New York City."


def _gold_example() -> Example:
    return Example(
        id="s1",
        text=TEXT,
        lang="en",
        entities=[
            Entity(0, 10, "Apple Inc.", "organization"),
            Entity(17, 25, "Tim Cook", "person"),
            Entity(29, 42, "New York City", "location"),
            Entity(29, 37, "New York", "location"),  # nested gold
        ],
    )


# predictions for the example above:
#   (0, 5, organization)    overlaps the gold span, not equal       → fp organization
#   (0, 10, organization)   exact                                   → tp organization
#   (17, 25, location)      right span, wrong label                 → fp location, fn person
#   (29, 37, location)      nested, exact                           → tp location
#   (29, 37, location)      duplicate, counted once
#   (29, 42, gpe)           right span, wrong label                 → fp gpe, fn location
# tp 2, pred 5, gold 4 → P = 2/5, R = 1/2, F1 = 4/9
SPAN_PREDS = [
    (0, 5, "organization"),
    Entity(0, 10, "Apple Inc.", "organization"),
    {"start": 17, "end": 25, "label": "location"},
    (29, 37, "location"),
    [29, 37, "location"],
    (29, 42, "gpe"),
]


def test_span_f1_hand_computed() -> None:
    result = span_f1([SPAN_PREDS], [_gold_example()])
    assert counts(result) == (2, 5, 4)
    assert result.precision == pytest.approx(2 / 5)
    assert result.recall == pytest.approx(1 / 2)
    assert result.f1 == pytest.approx(4 / 9)
    assert result.metric == "span"
    assert result.per_type == {
        "gpe": Counts(0, 1, 0),
        "location": Counts(1, 2, 2),
        "organization": Counts(1, 2, 1),
        "person": Counts(0, 0, 1),
    }
    assert result.per_type["organization"].f1 == pytest.approx(2 / 3)
    assert result.per_type["location"].f1 == pytest.approx(1 / 2)


def test_span_f1_over_several_examples() -> None:
    gold = _gold_example()
    other = Example(id="s2", text="Bob ran.", lang="en", entities=[Entity(0, 3, "Bob", "person")])
    empty = Example(id="s3", text="Nothing here.", lang="en")
    # s1 as above (2, 5, 4); s2 missed (0, 0, 1); s3 empty both (0, 0, 0) → (2, 5, 5): F1 0.4
    result = span_f1([SPAN_PREDS, [], []], [gold, other, empty])
    assert counts(result) == (2, 5, 5)
    assert result.f1 == pytest.approx(0.4)
    assert (result.n_queries, result.n_empty_pred, result.n_empty_gold) == (3, 2, 1)
    # an Example may be the prediction too; perfect prediction gives 1
    assert span_f1([gold, other, empty], [gold, other, empty]).f1 == 1.0


def test_span_f1_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        span_f1([[]], [])
    with pytest.raises(TypeError):
        span_f1([["Apple"]], [[]])


# --- result type ---------------------------------------------------------------------------


def test_result_round_trip() -> None:
    result = uniner_f1(PREDS, GOLDS, TYPES)
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["precision"] == 0.5 and data["n_unparseable"] == 2
    assert data["per_type"]["misc"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "tp": 0,
        "n_pred": 0,
        "n_gold": 2,
    }
    assert NERResult.from_dict(data) == result


# --- reports -------------------------------------------------------------------------------


def _result(tp: int, n_pred: int, n_gold: int) -> NERResult:
    return NERResult("uniner", tp, n_pred, n_gold, n_queries=10)


# AI: 2·1/(2+1) = 2/3 → 66.67; Music: 2·1/(3+3) = 1/3 → 33.33; Science: 0 → 0.00
# Avg. = (2/3 + 1/3 + 0)/3 = 1/3 → 33.33
BENCH = {"AI": _result(1, 2, 1), "Music": _result(1, 3, 3), "Science": _result(0, 4, 4)}


def test_average_table() -> None:
    table = average_table(BENCH, name="RA-IT")
    assert table["columns"] == ["AI", "Music", "Science", "Avg."]
    (row,) = table["rows"]
    assert row["scores"] == {"AI": 66.67, "Music": 33.33, "Science": 0.0}
    assert row["avg"] == 33.33
    assert row["n_benchmarks"] == 3
    assert macro_average(BENCH) == pytest.approx(1 / 3)
    # precision table: 1/2, 1/3, 0 → 50.00, 33.33, 0.00; Avg. (1/2 + 1/3)/3 = 5/18 → 27.78
    precision = average_table(BENCH, metric="precision")
    assert precision["rows"][0]["scores"] == {"AI": 50.0, "Music": 33.33, "Science": 0.0}
    assert precision["rows"][0]["avg"] == 27.78
    with pytest.raises(ValueError):
        average_table(BENCH, metric="accuracy")


def test_average_uses_unrounded_scores() -> None:
    # F1s 2·1/(1+6) = 2/7 = 28.571 % and 2·1/(1+2) = 2/3 = 66.667 %: printed 28.57 and 66.67,
    # whose mean is 47.62; the unrounded mean is (2/7 + 2/3)/2 = 10/21 = 47.619 % → 47.62
    table = average_table({"a": _result(1, 1, 6), "b": _result(1, 1, 2)})
    assert table["rows"][0]["avg"] == 47.62
    assert percent(10 / 21) == 47.62


def test_markdown_and_written_report(tmp_path: Path) -> None:
    table = build_table(
        {
            "Vanilla IT": {"AI": _result(0, 4, 4), "Music": _result(1, 3, 3)},
            "RA-IT": {k: v.to_dict() for k, v in BENCH.items()},  # dicts are accepted
        }
    )
    assert table["columns"] == ["AI", "Music", "Science", "Avg."]
    markdown = render_markdown(table, title="Zero-shot")
    assert "| Method | AI | Music | Science | Avg. |" in markdown
    # Vanilla IT lacks Science: shown as "-", Avg. over its two benchmarks (0 + 1/3)/2 → 16.67
    assert "| Vanilla IT | 0.00 | 33.33 | - | 16.67 |" in markdown
    assert "| RA-IT | 66.67 | 33.33 | 0.00 | 33.33 |" in markdown
    assert "| RA-IT | AI | uniner | 50.00 | 100.00 | 66.67 | 10 | 2 | 1 | 1 | 0 |" in markdown

    md_path, json_path = write_report(table, tmp_path / "out", stem="zero_shot", title="Zero")
    assert md_path.read_text(encoding="utf-8") == render_markdown(table, title="Zero")
    assert json.loads(json_path.read_text(encoding="utf-8")) == table
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "zero_shot.json",
        "zero_shot.md",
    ]


def test_the_markdown_lists_the_first_rows_types_by_their_gold_mentions() -> None:
    # person: 1 of 3 answered mentions right, 3 gold → 33.33 each; city: 1 of 1, 1 gold
    answers = ['["Alice", "Bob"]', '["Carol"]', '["Rome"]', "[]"]
    golds = [["Alice", "Dan"], ["Eve"], ["Rome"], []]
    result = uniner_f1(answers, golds, ["person", "person", "city", "city"])
    table = build_table({"model (UniNER F1)": {"AI": result}, "other": {"AI": _result(1, 1, 1)}})
    markdown = render_markdown(table)
    section = markdown[markdown.index("## By type") :]
    assert "model (UniNER F1), each type asked" in section
    assert section.index("| AI | person |") < section.index("| AI | city |")
    assert "| AI | person | 33.33 | 33.33 | 33.33 | 3 | 3 | 1 |" in section
    assert "| AI | city | 100.00 | 100.00 | 100.00 | 1 | 1 | 1 |" in section
    assert "other" not in section
    no_types = render_markdown(build_table({"m": {"AI": _result(1, 1, 1)}}))
    assert "## By type" not in no_types


def test_evaluate_imports_without_torch() -> None:
    code = "import sys, raitner.evaluate; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- real data -----------------------------------------------------------------------------

# CrossNER_AI.json (UniversalNER's test file): 5603 queries (431 sentences × 13 types), of which
# 786 have a non-empty gold; 1624 gold mentions, 1603 after normalisation and de-duplication
# (raw duplicates such as "LREC", "LREC", and collisions such as "C" / "C + +" / "C #" → "c").
N_QUERIES, N_NONEMPTY, N_GOLD = 5603, 786, 1603


@pytest.fixture(scope="module")
def crossner_ai(data_root: Path) -> tuple[list[str], list[str]]:
    records = json.loads((data_root / "en/uniner_eval/CrossNER_AI.json").read_text("utf-8"))
    questions = [record["conversations"][2]["value"] for record in records]
    types = [re.fullmatch(r"What describes (.+) in the text\?", q).group(1) for q in questions]
    return conversation_golds(records), types


def test_real_gold_as_prediction(crossner_ai: tuple[list[str], list[str]]) -> None:
    golds, types = crossner_ai
    assert len(golds) == N_QUERIES
    assert sum(len(json.loads(g)) for g in golds) == 1624
    for metric in (uniner_f1, ra_it_f1):
        result = metric(golds, golds, types)
        assert counts(result) == (N_GOLD, N_GOLD, N_GOLD)
        assert percent(result.f1) == 100.0
        assert result.n_unparseable == 0
        assert result.n_empty_gold == N_QUERIES - N_NONEMPTY
        assert len(result.per_type) == 13
        assert sum(c.n_gold for c in result.per_type.values()) == N_GOLD


def test_real_empty_prediction(crossner_ai: tuple[list[str], list[str]]) -> None:
    golds, _ = crossner_ai
    result = uniner_f1(["[]"] * len(golds), golds)
    assert counts(result) == (0, 0, N_GOLD)
    assert (result.precision, result.recall, result.f1) == (0.0, 0.0, 0.0)
    assert result.n_empty_pred == N_QUERIES


def test_real_perturbations(crossner_ai: tuple[list[str], list[str]]) -> None:
    golds, _ = crossner_ai
    mentions = [json.loads(g) for g in golds]

    # first gold mention only: tp = pred = 786, gold 1603 → P 1, R 786/1603,
    # F1 = 2·786/(786 + 1603) = 1572/2389 = 65.80 %
    first = uniner_f1([json.dumps(m[:1]) for m in mentions], golds)
    assert counts(first) == (786, 786, N_GOLD)
    assert first.precision == 1.0
    assert first.f1 == pytest.approx(1572 / 2389)
    assert percent(first.f1) == 65.80

    # one spurious mention per query: pred = 1603 + 5603 = 7206 → P = 1603/7206 = 22.25 %,
    # R = 1, F1 = 2·1603/(7206 + 1603) = 3206/8809 = 36.39 %
    extra = uniner_f1([json.dumps([*m, "Zebra crossing"]) for m in mentions], golds)
    assert counts(extra) == (N_GOLD, 7206, N_GOLD)
    assert percent(extra.precision) == 22.25
    assert percent(extra.f1) == 36.39

    # upper case with a leading article: normalisation undoes both → 100
    loud = [json.dumps(["The " + x.upper() for x in m]) for m in mentions]
    assert uniner_f1(loud, golds).f1 == 1.0

    # prose before the list: UniversalNER reads nothing, RA-IT reads everything
    prose = ["Answer: " + g for g in golds]
    strict = uniner_f1(prose, golds)
    assert counts(strict) == (0, 0, N_GOLD)
    assert strict.n_no_list == N_QUERIES
    assert ra_it_f1(prose, golds).f1 == 1.0


def test_real_boson_gold_with_a_raw_tab(data_root: Path) -> None:
    path = data_root / "zh/ra_it_reference/data/benchmark_it_data/boson/test.json"
    golds = conversation_golds(json.loads(path.read_text("utf-8")))
    # 1074 queries; one gold holds a raw tab and is read as [] (RA-IT's n_unparsed_gold = 1,
    # and n_unparsed_pred = 1 when it is fed back as the prediction); 1477 mentions remain
    result = ra_it_f1(golds, golds)
    assert result.n_queries == 1074
    assert counts(result) == (1477, 1477, 1477)
    assert (result.n_unparsed_gold, result.n_invalid) == (1, 1)
    assert result.f1 == 1.0
