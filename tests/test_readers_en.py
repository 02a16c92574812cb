"""English readers (token/tag columns, Pile-NER sample, UniversalNER conversations) and the
English benchmark registry, against the real shared data and small hand-made files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raitner.errors import DataFormatError
from raitner.io.benchmarks_en import BENCHMARKS, CROSSNER_LABELS
from raitner.io.conll import read_conll
from raitner.io.pile_ner import read_pile_ner
from raitner.io.registry import Benchmark
from raitner.io.stats import ReadStats
from raitner.io.uniner import read_uniner_conversations, write_uniner_conversations

BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}
SPLITS = [(b.name, split) for b in BENCHMARKS for split in b.splits]
UNINER_FILES = [
    "CrossNER_AI",
    "CrossNER_literature",
    "CrossNER_music",
    "CrossNER_politics",
    "CrossNER_science",
    "mit-restaurant",
]


def spans(example):
    return [(e.text, e.label) for e in example.entities]


def write(tmp_path: Path, text: str, name: str = "data.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- registry -------------------------------------------------------------------------------


def test_registry_names_and_zero_shot_flags():
    names = set(BY_NAME)
    assert len(names) == len(BENCHMARKS)
    expected = {
        *(f"crossner_{d}" for d in ("ai", "literature", "music", "politics", "science")),
        "mit_movie",
        "mit_restaurant",
        "conll2003",
        "wnut17",
        "pile_ner_sample",
        "conllpp",
        "anatem",
        "bc2gm",
        "bc5cdr",
        "ncbi",
        "broad_twitter_corpus",
        "tweetner7",
        "wikiann_en",
        "multinerd",
        "wikineural",
        "ontonotes",
    }
    assert expected <= names
    assert {n for n in names if n.startswith("uniner_eval_")} == {
        "uniner_eval_crossner_ai",
        "uniner_eval_crossner_literature",
        "uniner_eval_crossner_music",
        "uniner_eval_crossner_politics",
        "uniner_eval_crossner_science",
        "uniner_eval_mit_restaurant",
    }
    for name in expected:
        evaluation_only = name.startswith("crossner_") or name.startswith("mit_")
        assert BY_NAME[name].zero_shot_eval is evaluation_only, name
    for benchmark in BENCHMARKS:
        assert benchmark.lang == "en"
        assert benchmark.description and benchmark.source and benchmark.license
        assert len(set(benchmark.label_names.values())) == len(benchmark.label_names)


def test_readme_split_sizes():
    sizes = {name: {s: split.size for s, split in BY_NAME[name].splits.items()} for name in BY_NAME}
    assert sizes["crossner_ai"] == {"train": 100, "dev": 350, "test": 431}
    assert sizes["crossner_literature"] == {"train": 100, "dev": 400, "test": 416}
    assert sizes["crossner_music"] == {"train": 100, "dev": 380, "test": 465}
    assert sizes["crossner_politics"] == {"train": 200, "dev": 541, "test": 651}
    assert sizes["crossner_science"] == {"train": 200, "dev": 450, "test": 543}
    assert sizes["conll2003"] == {"train": 14041, "dev": 3250, "test": 3453}
    assert sizes["mit_movie"] == {"train": 9775, "test": 2443}
    assert sizes["mit_restaurant"] == {"train": 7660, "test": 1521}
    assert sizes["wnut17"] == {"train": 3394, "dev": 1009, "test": 1287}
    for name in ("multinerd", "wikineural", "ontonotes"):
        assert set(sizes[name]) == {"dev", "test"}


def test_names_follow_universalner():
    assert CROSSNER_LABELS["ai"]["programlang"] == "program language"
    assert CROSSNER_LABELS["ai"]["organisation"] == "organization"
    assert BY_NAME["mit_restaurant"].label_names["Restaurant_Name"] == "Restaurant Name"
    assert BY_NAME["mit_movie"].label_names["RATINGS_AVERAGE"] == "average ratings"
    assert "misc" in BY_NAME["crossner_music"].types
    assert "misc" not in BY_NAME["uniner_eval_crossner_music"].types


@pytest.mark.parametrize(("name", "split"), SPLITS, ids=[f"{n}:{s}" for n, s in SPLITS])
def test_every_english_split_loads_with_its_size(data_root: Path, name: str, split: str):
    benchmark: Benchmark = BY_NAME[name]
    stats = ReadStats()
    examples = benchmark.load(split, data_root, stats)
    assert len(examples) == benchmark.splits[split].size == stats.examples
    assert len({e.id for e in examples}) == len(examples)
    assert stats.entities == sum(len(e.entities) for e in examples) > 0
    types = set(benchmark.types)
    for example in examples:
        assert example.lang == "en"
        assert example.meta["benchmark"] == name and example.meta["split"] == split
        if types:
            assert {e.label for e in example.entities} <= types, example.id
        for entity in example.entities:  # construction checks this too
            assert example.text[entity.start : entity.end] == entity.text


# --- token/tag columns ----------------------------------------------------------------------


def test_crossner_first_sentences(data_root: Path):
    path = data_root / "en/crossner/ai/test.txt"
    first = next(read_conll(path, id_prefix="ai:"))
    assert first.id == "ai:0"
    assert first.text == (
        "Typical generative model approaches include naive Bayes classifier s , Gaussian "
        "mixture model s , variational autoencoders and others ."
    )
    assert spans(first) == [
        ("naive Bayes classifier", "algorithm"),
        ("Gaussian mixture model", "algorithm"),
        ("variational autoencoders", "algorithm"),
    ]
    assert (first.entities[0].start, first.entities[0].end) == (44, 66)

    train = BY_NAME["conll2003"].load("train", data_root)
    assert train[0].text == "EU rejects German call to boycott British lamb ."
    assert spans(train[0]) == [("EU", "organization"), ("German", "misc"), ("British", "misc")]
    assert train[0].label_set == ("person", "organization", "location", "misc")
    assert train[1].text == "Peter Blackburn" and spans(train[1]) == [("Peter Blackburn", "person")]


def test_mit_tag_first(data_root: Path):
    movie = next(read_conll(data_root / "en/mit_movie/test.txt", tag_first=True))
    assert movie.text.startswith("are there any good romantic comedies out right now")
    assert ("romantic comedies", "GENRE") in spans(movie)
    restaurant = BY_NAME["mit_restaurant"].load("test", data_root)[0]
    assert restaurant.text == "a four star restaurant with a bar"
    assert spans(restaurant) == [
        ("four star", "Rating"),
        ("with a", "Location"),
        ("bar", "Amenity"),
    ]
    # Read token-first, SLIMER's file would have tags for tokens: the first line is `O<TAB>are`.
    with pytest.raises(DataFormatError) as caught:
        next(read_conll(data_root / "en/mit_movie/test.txt"))
    assert caught.value.line == 1 and "'are'" in caught.value.detail


def test_tag_first_small_file(tmp_path: Path):
    path = write(tmp_path, "O\tfind\nB-Dish\tonion\nI-Dish\trings\n\nB-Hours\tnow\n")
    first, second = read_conll(path, tag_first=True, id_prefix="m:")
    assert (first.id, first.text, spans(first)) == (
        "m:0",
        "find onion rings",
        [("onion rings", "Dish")],
    )
    assert (second.id, spans(second)) == ("m:1", [("now", "Hours")])


def test_wnut17_files_and_tab_only_separators(data_root: Path):
    # The train file separates sentences with a line holding only a TAB.
    assert "\n\t\n" in (data_root / "en/wnut17/wnut17train.conll").read_text(encoding="utf-8")
    train = BY_NAME["wnut17"].load("train", data_root)
    assert train[0].text.startswith("@paulwalk It 's the view from where I 'm living")
    assert spans(train[0]) == [("Empire State Building", "location"), ("ESB", "location")]
    assert train[1].text.startswith("From Green")
    test = next(read_conll(data_root / "en/wnut17/emerging.test.annotated"))
    assert ("Sonmarg", "location") in spans(test)


def test_tokens_with_spaces_are_kept(data_root: Path):
    tweets = list(read_conll(data_root / "en/gner/TweetNER7/test.txt"))
    assert any(("{@Harry Styles.@}", "person") in spans(e) for e in tweets)
    twitter = list(read_conll(data_root / "en/gner/broad_twitter_corpus/test.txt"))
    assert any("   " in e.text for e in twitter)  # a token that is one space


def test_bio_repair_is_counted(tmp_path: Path):
    path = write(tmp_path, "John\tI-PER\nSmith\tI-PER\nin\tO\nNew\tB-LOC\nYork\tI-ORG\n")
    stats = ReadStats()
    (example,) = read_conll(path, stats=stats)
    assert spans(example) == [("John Smith", "PER"), ("New", "LOC"), ("York", "ORG")]
    assert stats.repaired_tags == 2
    assert (stats.examples, stats.entities) == (1, 3)


def test_blank_lines_docstart_crlf_and_bom(tmp_path: Path):
    text = "\ufeff-DOCSTART-\tO\n\n\nA\tB-X\r\nb\tO  \r\n \t \n\n-DOCSTART- -X- -X- O\nc\tO\n"
    path = write(tmp_path, text)
    stats = ReadStats()
    first, second = read_conll(path, stats=stats)
    assert (first.id, first.text, spans(first)) == ("0", "A b", [("A", "X")])
    assert (second.id, second.text) == ("1", "c")
    assert stats.skipped == {"-DOCSTART- line": 2}


def test_whitespace_separator_and_chinese_joiner(tmp_path: Path):
    path = write(tmp_path, "北 B-LOC\n京 I-LOC\n好 O\n")
    (example,) = read_conll(path, lang="zh", separator=None)
    assert example.text == "北京好" and spans(example) == [("北京", "LOC")]


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        ("a\tO\nb\tO\tO\n", 2, "expected `token<TAB>tag`, got 3 fields"),
        ("a\tO\n\nb\n", 3, "expected `token<TAB>tag`, got 1 fields"),
        ("a\tO\nb\tX-PER\n", 2, "expected a tag like O, B-TYPE"),
        ("a\tO\n\tB-PER\n", 2, "got an empty token"),
    ],
)
def test_malformed_columns_name_file_and_line(tmp_path: Path, content, line, expected):
    path = write(tmp_path, content)
    with pytest.raises(DataFormatError) as caught:
        list(read_conll(path))
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert expected in caught.value.detail
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_undecodable_bytes_name_the_line(tmp_path: Path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("a\tO\n\nb\tO\nCaf\u00e9\tO\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as caught:
        list(read_conll(path))
    assert caught.value.line == 4 and "utf-8" in caught.value.detail


# --- Pile-NER sample ------------------------------------------------------------------------


def test_pile_ner_groups_rows_by_passage(data_root: Path):
    path = data_root / "en/pile_ner_sample/5pos_5neg_perNE_top391NEs_FalseDef/validation.jsonl"
    stats = ReadStats()
    examples = {e.id: e for e in read_pile_ner(path, id_prefix="pile:", stats=stats)}
    assert len(examples) == stats.examples == 882
    assert stats.unfound_mentions == 1  # "U.S. Senate" is not in its passage
    assert sum(len(e.label_set) for e in examples.values()) == 1320
    assert len({t for e in examples.values() for t in e.label_set}) == 384

    court = examples["pile:42805"]  # the first row: type "court", output "[]"
    assert "court" in court.label_set and not court.mentions("court")
    assert court.meta["asked_types"] == list(court.label_set)
    month = examples["pile:43340"]
    assert month.mentions("month") == ["August", "January", "February"]
    # Every passage was asked some negative types: 603 of the 1320 rows answer "[]".
    negatives = sum(1 for e in examples.values() for t in e.label_set if not e.mentions(t))
    assert negatives == 603
    for example in examples.values():
        assert {e.label for e in example.entities} <= set(example.label_set)


def test_pile_ner_label_set_survives_the_registry(data_root: Path):
    examples = BY_NAME["pile_ner_sample"].load("validation", data_root)
    assert all(example.label_set for example in examples)
    assert all(example.label_set == tuple(example.meta["asked_types"]) for example in examples)
    # negatives asked about: some asked types have no entity in their passage
    assert any(set(example.label_set) - {e.label for e in example.entities} for example in examples)


def test_pile_ner_malformed_output(tmp_path: Path):
    good = {"doc_question_pairID": "1:0", "tagName": "city", "input": "in Paris", "output": "[]"}
    bad = dict(good, doc_question_pairID="1:1", tagName="person", output="Paris")
    path = write(tmp_path, json.dumps(good) + "\n" + json.dumps(bad) + "\n", "p.jsonl")
    with pytest.raises(DataFormatError) as caught:
        list(read_pile_ner(path))
    assert caught.value.line == 2 and "JSON list of strings" in caught.value.detail
    path = write(tmp_path, json.dumps(dict(good, doc_question_pairID="7")) + "\n", "q.jsonl")
    with pytest.raises(DataFormatError) as caught:
        list(read_pile_ner(path))
    assert caught.value.line == 1 and "<passage>:<index>" in caught.value.detail


def test_pile_ner_nested_mentions_of_other_types(tmp_path: Path):
    rows = [
        {"doc_question_pairID": "9:1", "tagName": "country", "input": "the New Zealand First party",
         "output": '["New Zealand"]'},
        {"doc_question_pairID": "9:0", "tagName": "political party",
         "input": "the New Zealand First party", "output": '["New Zealand First"]'},
    ]  # fmt: skip
    path = write(tmp_path, "".join(json.dumps(r) + "\n" for r in rows), "n.jsonl")
    (example,) = read_pile_ner(path)
    assert example.label_set == ("political party", "country")  # question order
    assert spans(example) == [("New Zealand First", "political party"), ("New Zealand", "country")]


# --- UniversalNER conversations -------------------------------------------------------------


@pytest.mark.parametrize("name", UNINER_FILES)
def test_uniner_round_trip_is_byte_exact(data_root: Path, tmp_path: Path, name: str):
    source = data_root / f"en/uniner_eval/{name}.json"
    stats = ReadStats()
    examples = list(read_uniner_conversations(source, stats=stats))
    assert stats.unfound_mentions == 0
    written = write_uniner_conversations(tmp_path / "out.json", examples, id_prefix=f"{name}_")
    assert written == len(json.loads(source.read_text(encoding="utf-8")))
    assert (tmp_path / "out.json").read_bytes() == source.read_bytes()


def test_uniner_grouping(data_root: Path):
    examples = list(read_uniner_conversations(data_root / "en/uniner_eval/CrossNER_AI.json"))
    assert len(examples) == 431  # 430 distinct texts: a repeated sentence stays two examples
    assert len({e.text for e in examples}) == 430
    first = examples[0]
    assert first.id == "0"
    assert first.text.startswith("Typical generative model approaches include naive Bayes")
    assert first.label_set[:2] == ("organization", "university") and len(first.label_set) == 13
    assert spans(first) == [
        ("naive Bayes classifier", "algorithm"),
        ("Gaussian mixture model", "algorithm"),
        ("variational autoencoders", "algorithm"),
    ]


def test_uniner_spans_agree_with_crossner_gold(data_root: Path):
    """The answers are located where CrossNER tagged them (UniversalNER's answers differ from
    the gold spans in a handful of places), and label_names maps the raw tags to its types."""
    uniner = BY_NAME["uniner_eval_crossner_ai"].load("test", data_root)
    gold = BY_NAME["crossner_ai"].load("test", data_root)
    agree = total = 0
    for ours, theirs in zip(uniner, gold, strict=True):
        assert ours.text == theirs.text
        located = {(e.start, e.end, e.label) for e in ours.entities}
        tagged = {(e.start, e.end, e.label) for e in theirs.entities if e.label != "misc"}
        agree += len(located & tagged)
        total += len(tagged)
    assert total == 1628 and agree >= 1615


def test_uniner_writer_from_tagged_data(data_root: Path, tmp_path: Path):
    """Writing CrossNER's tagged test set without misc gives UniversalNER's answers."""
    gold = BY_NAME["crossner_ai"].load("test", data_root)
    out = tmp_path / "ai.json"
    write_uniner_conversations(out, gold, id_prefix="CrossNER_AI_", exclude_types=["misc"])
    ours = _queries(json.loads(out.read_text(encoding="utf-8")))
    source = data_root / "en/uniner_eval/CrossNER_AI.json"
    theirs = _queries(json.loads(source.read_text(encoding="utf-8")))
    assert ours.keys() == theirs.keys()
    assert len(ours) == 5590  # 5603 queries; one repeated sentence asks its 13 again
    differ = {key for key in ours if ours[key] != theirs[key]}
    # UniversalNER's conversion dropped a mention that ends the sentence (no final period).
    assert len(differ) == 4
    for text, question in differ:
        assert theirs[text, question] == ours[text, question][:-1]
        assert text.endswith(" " + ours[text, question][-1])


def _queries(records: list[dict]) -> dict[tuple[str, str], list[str]]:
    """{(text, question): answer} of the records, ignoring ids and the order of the types."""
    queries = {}
    for record in records:
        text, _, question, answer = (turn["value"] for turn in record["conversations"])
        queries[text, question] = json.loads(answer)
    return queries


def test_uniner_reads_multi_question_records_and_quoted_types(tmp_path: Path):
    record = {
        "id": "x",
        "conversations": [
            {"from": "human", "value": "Text: Ada met Bob in Rome and Bob left ."},
            {"from": "gpt", "value": "I’ve read this text"},
            {"from": "human", "value": 'What describes "person" in the text?'},
            {"from": "gpt", "value": '["Ada", "Bob", "Bob"]'},
            {"from": "human", "value": "What describes city in the text?"},
            {"from": "gpt", "value": "[]"},
        ],
    }
    path = write(tmp_path, json.dumps([record, record]), "c.json")
    first, second = read_uniner_conversations(path, id_prefix="c:")
    assert (first.id, second.id) == ("c:0", "c:1")  # the same text asked again: two examples
    assert first.label_set == ("person", "city")
    assert [(e.text, e.start) for e in first.entities] == [("Ada", 0), ("Bob", 8), ("Bob", 24)]


def test_uniner_malformed_record_names_its_line(tmp_path: Path):
    good = {
        "id": "a",
        "conversations": [
            {"from": "human", "value": "Text: x"},
            {"from": "gpt", "value": "I've read this text."},
            {"from": "human", "value": "What describes y in the text?"},
            {"from": "gpt", "value": "[]"},
        ],
    }
    bad = json.loads(json.dumps(good))
    bad["conversations"][3]["value"] = "none"
    content = json.dumps([good, bad], indent=2)
    path = write(tmp_path, content, "bad.json")
    line = content[: content.index('"id"', content.index('"id"') + 1)].count("\n") + 1
    with pytest.raises(DataFormatError) as caught:
        list(read_uniner_conversations(path))
    assert caught.value.path == str(path)
    assert caught.value.line == line - 1  # the line holding the record's opening brace
    assert "record 1" in caught.value.detail and "JSON list of strings" in caught.value.detail
