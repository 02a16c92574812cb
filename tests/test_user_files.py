"""Annotated files a user names: reading them by extension, training mixes and pools made of
them, and evaluating on one as on a benchmark."""

from __future__ import annotations

import json

import pytest
from test_eval_runner import GoldBackend

from raitner.api import OpenNER
from raitner.cli import main
from raitner.errors import DataFormatError, RaitnerError
from raitner.evaluate.runner import EvalSettings, run_evaluation
from raitner.io import registry
from raitner.io.stats import ReadStats
from raitner.io.uniner import write_uniner_conversations
from raitner.io.user_files import read_user_file
from raitner.prompts import get_template
from raitner.schema import Entity, Example
from raitner.sources import load_source, load_sources

CONLL_2003_LAYOUT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


@pytest.fixture(autouse=True)
def _no_added_files(monkeypatch):
    monkeypatch.setattr(registry, "_FILES", {})


def test_conll_2003_columns_read_token_first_and_tag_last(tmp_path):
    path = tmp_path / "news.conll"
    path.write_text(CONLL_2003_LAYOUT)
    first, second = read_user_file(path)
    assert (first.id, first.text, first.lang) == ("news:0", "EU rejects German call", "en")
    assert [(e.start, e.end, e.text, e.label) for e in first.entities] == [
        (0, 2, "EU", "ORG"),
        (11, 17, "German", "MISC"),
    ]
    assert second.entities == [Entity(0, 15, "Peter Blackburn", "PER")]


def test_tab_separated_tokens_keep_their_spaces_and_chinese_characters_join(tmp_path):
    tabbed = tmp_path / "places.tsv"
    tabbed.write_text("I\tO\nlove\tO\nNew York\tB-location\n")
    (example,) = read_user_file(tabbed)
    assert example.text == "I love New York"
    assert example.entities == [Entity(7, 15, "New York", "location")]

    chinese = tmp_path / "weibo.bio"
    chinese.write_text("我 O\n在 O\n北 B-地点\n京 I-地点\n")
    (example,) = read_user_file(chinese)
    assert (example.lang, example.text) == ("zh", "我在北京")
    assert example.entities == [Entity(2, 4, "北京", "地点")]


FEW_NERD_LAYOUT = """Paul\tperson-other
International\tlocation-other
airport\tO
.\tO

Sands\tperson-actor
and\tO
Nic\tperson-actor
Cage\tperson-actor
star\tO
in\tO
The\tart-film
Rock\tart-film
"""


def test_io_tags_read_a_run_of_one_type_as_one_mention(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(FEW_NERD_LAYOUT)
    stats = ReadStats()
    first, second = read_user_file(path, stats)
    assert first.text == "Paul International airport ."
    assert [(e.text, e.label) for e in first.entities] == [
        ("Paul", "person-other"),
        ("International", "location-other"),
    ]
    assert [(e.start, e.end, e.text, e.label) for e in second.entities] == [
        (0, 5, "Sands", "person-actor"),
        (10, 18, "Nic Cage", "person-actor"),
        (27, 35, "The Rock", "art-film"),
    ]
    assert (stats.entities, stats.repaired_tags) == (5, 0)


def test_tag_first_columns_are_recognised_and_swapped_ones_refused(tmp_path):
    mit = tmp_path / "mit.bio"
    mit.write_text("O\twhat\nO\tmovies\nO\tstar\nB-ACTOR\tsteve\nI-ACTOR\tmcqueen\n")
    (example,) = read_user_file(mit)
    assert example.text == "what movies star steve mcqueen"
    assert example.entities == [Entity(17, 30, "steve mcqueen", "ACTOR")]
    # told explicitly token first, the same file is refused rather than read as a type per word
    from raitner.io.conll import read_conll

    with pytest.raises(DataFormatError, match=r"mit\.bio:1: the columns look the other way round"):
        list(read_conll(mit))
    few_nerd_tag_first = tmp_path / "few.tsv"
    few_nerd_tag_first.write_text("person-actor\tSands\nO\tand\n")
    with pytest.raises(DataFormatError, match=r"few\.tsv:2: the columns look the other way round"):
        list(read_conll(few_nerd_tag_first))


def test_a_chinese_conversation_file_is_chinese(tmp_path):
    path = tmp_path / "sky.json"
    examples = [Example("a", "张三在北京工作", "zh", [Entity(0, 2, "张三", "人物")], ("人物",))]
    write_uniner_conversations(path, examples)
    (read,) = read_user_file(path)
    assert (read.id, read.lang, read.entities) == ("sky:0", "zh", examples[0].entities)


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("broken.conll", "EU B-ORG\nrejects\n", r"broken\.conll:2: expected `token<whitespace>…"),
        # a file keeps to one tag scheme, whichever its first tag other than O sets
        (
            "io.txt",
            "Paul\tperson\n.\tO\n\nBerlin\tB-location\n",
            r"io\.txt:4: this file's tags are IO.*'person'",
        ),
        (
            "bio.conll",
            "EU B-ORG\nrejects O\nGerman MISC\n",
            r"bio\.conll:3: expected a tag like O, B-TYPE.*'B-ORG' first\), got 'MISC'",
        ),
    ],
)
def test_bad_column_files_name_the_file_the_line_and_what_was_expected(
    tmp_path, name, content, expected
):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFormatError, match=expected):
        read_user_file(path)


def test_unknown_and_missing_files_are_named(tmp_path):
    unknown = tmp_path / "notes.docx"
    unknown.write_text("x")
    with pytest.raises(
        RaitnerError, match=r"expected one of \.jsonl, \.json, \.parquet, \.arrow, \.conll"
    ):
        read_user_file(unknown)
    with pytest.raises(RaitnerError, match="not found"):
        load_source(str(tmp_path / "missing.bio"))


def test_column_files_mix_with_other_sources_without_id_clashes(tmp_path):
    (tmp_path / "a.conll").write_text(CONLL_2003_LAYOUT)
    (tmp_path / "b.conll").write_text(CONLL_2003_LAYOUT)
    mixed = load_sources([str(tmp_path / "a.conll"), str(tmp_path / "b.conll")])
    assert [ex.id for ex in mixed] == ["a:0", "a:1", "b:0", "b:1"]
    (subset,) = load_source(f"{tmp_path / 'a.conll'}@1", seed=1)
    assert subset.id in {"a:0", "a:1"}


def _annotated(tmp_path, name="mine.conll"):
    path = tmp_path / name
    path.write_text(
        "Alice\tB-person\nmet\tO\nBob\tB-person\nin\tO\nParis\tB-city\n\n"
        "Carol\tB-person\nstayed\tO\nhome\tO\n\n"
        "Rome\tB-city\nis\tO\nold\tO\n"
    )
    return path


def test_an_annotated_file_is_evaluated_like_a_benchmark(tmp_path):
    path = _annotated(tmp_path)
    benchmark = registry.add_file_benchmark(path)
    assert (benchmark.name, benchmark.types, benchmark.lang) == ("mine", ("person", "city"), "en")
    with pytest.raises(RaitnerError, match="has no 'train' split .* --pool"):
        benchmark.load("train")

    template = get_template("ra-it-en-v1")
    backend = GoldBackend(benchmark.load("test"), template)
    ner = OpenNER(backend, template, max_text_tokens=None)
    settings = EvalSettings(benchmarks=["mine"], model="gold")
    out = tmp_path / "eval"
    run_evaluation(ner, settings, out, show_progress=False)  # no data root needed
    report = json.loads((out / "report.json").read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert rows["gold (UniNER F1)"]["scores"]["mine"] == 100.0
    assert backend.calls == 3 * 2  # every text, both types
    run_evaluation(ner, settings, out, show_progress=False)
    assert backend.calls == 6  # saved predictions reused

    path.write_text(path.read_text().replace("Rome\tB-city", "Rome\tO"))  # the file changes
    registry.add_file_benchmark(path)
    backend.gold = {ex.text: ex for ex in registry.get_benchmark("mine").load("test")}
    run_evaluation(ner, settings, out, show_progress=False)
    assert backend.calls == 12  # predicted anew: the predictions were of the old content


def test_file_names_may_not_shadow_benchmarks_or_each_other(tmp_path):
    with pytest.raises(RaitnerError, match="'crossner_ai' is a registered benchmark's"):
        registry.add_file_benchmark(_annotated(tmp_path, "crossner_ai.conll"))
    registry.add_file_benchmark(_annotated(tmp_path, "mine.conll"))
    (tmp_path / "other").mkdir()
    with pytest.raises(RaitnerError, match="would both be named 'mine'"):
        registry.add_file_benchmark(_annotated(tmp_path / "other", "mine.bio"))


def test_eval_reads_files_and_pools_before_loading_a_model(tmp_path, capsys):
    broken = tmp_path / "broken.bio"
    broken.write_text("Alice B-person\nmet\n")
    assert main(["eval", "--benchmarks", str(broken), "--model", "/nonexistent"]) == 2
    assert "broken.bio:2: expected" in capsys.readouterr().err

    good = _annotated(tmp_path)
    arguments = ["eval", "--benchmarks", str(good), "--model", "/nonexistent"]
    assert main([*arguments, "--pool", str(good)]) == 2
    assert "add --examples pool" in capsys.readouterr().err
    assert main([*arguments, "--examples", "pool", "--pool", str(broken)]) == 2
    assert "broken.bio:2: expected" in capsys.readouterr().err
    assert main([*arguments, "--examples", "pool"]) == 2  # a file has no train split to pool
    assert "for examples from a pool, name the pool's file with --pool" in capsys.readouterr().err


def test_eval_takes_its_examples_from_a_pool_file(tmp_path):
    registry.add_file_benchmark(_annotated(tmp_path))
    pool = tmp_path / "pool.conll"
    pool.write_text(CONLL_2003_LAYOUT)
    template = get_template("ra-it-en-v1")
    backend = GoldBackend(registry.get_benchmark("mine").load("test"), template)
    seen = []
    generate = backend.generate

    def remember(conversations, max_new_tokens):
        seen.extend(conversations)
        return generate(conversations, max_new_tokens)

    backend.generate = remember
    settings = EvalSettings(
        benchmarks=["mine"],
        model="gold",
        examples="pool",
        pool_sources=[str(pool)],
        retrieval={"strategy": "random", "k": 2},
        label_names={"PER": "person"},
    )
    run_evaluation(OpenNER(backend, template), settings, tmp_path / "eval", show_progress=False)
    assert len(seen) == 6
    for messages in seen:  # both pool texts, the pool's PER named person
        assert "Text: EU rejects German call" in messages[1]["content"]
        assert "{'Peter Blackburn': 'person'}" in messages[1]["content"]


def test_label_names_are_pairs_or_a_benchmarks_names():
    from raitner.io.user_files import parse_label_names

    assert parse_label_names("PER=person, LOC = location") == {"PER": "person", "LOC": "location"}
    assert parse_label_names("conll") == {
        "PER": "person",
        "LOC": "location",
        "ORG": "organization",
        "MISC": "misc",
    }
    assert parse_label_names("ontonotes")["GPE"] == "geopolitical entity"
    for bad, message in [
        ("PER=person,LOC", "expected TAG=type pairs"),
        ("PER=,LOC=location", "expected TAG=type pairs"),
        ("PER=a,PER=b", "'PER' is named twice"),
        ("no_such_benchmark", "or a benchmark name .* got 'no_such_benchmark'"),
    ]:
        with pytest.raises(RaitnerError, match=message):
            parse_label_names(bad)


def test_renamed_labels_are_the_types_asked_and_part_of_the_predictions_key(tmp_path):
    path = tmp_path / "news.conll"
    path.write_text(CONLL_2003_LAYOUT)
    plain = registry.add_file_benchmark(path)
    named = registry.add_file_benchmark(path, label_names={"PER": "person", "ORG": "organization"})
    assert plain.types == ("ORG", "MISC", "PER")
    assert named.types == ("organization", "MISC", "person")
    assert named.load("test")[1].entities[0].label == "person"
    assert plain.fingerprint != named.fingerprint


def test_build_trains_on_a_column_file_with_renamed_labels(tmp_path, capsys):
    path = tmp_path / "news.conll"
    path.write_text(CONLL_2003_LAYOUT)
    out = tmp_path / "train.jsonl"
    arguments = ["build", str(path), "--mode", "vanilla", "-o", str(out), "--quiet"]
    assert main([*arguments, "--label-names", "PER=person,ORG=organization"]) == 0
    questions = [
        message["content"]
        for line in out.read_text().splitlines()
        for message in json.loads(line)["messages"]
        if message["role"] == "user"
    ]
    assert "What describes person in the text?" in questions
    assert "What describes organization in the text?" in questions
    assert not any("PER" in q or "ORG" in q for q in questions)
    with pytest.raises(SystemExit):
        main([*arguments, "--label-names", "PER"])
    assert "expected TAG=type pairs separated by commas" in capsys.readouterr().err


def test_data_stats_and_export_read_an_annotated_file(tmp_path, capsys):
    path = tmp_path / "news.conll"
    path.write_text(CONLL_2003_LAYOUT)
    assert main(["data", "stats", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["types"] == ["ORG", "MISC", "PER"]
    assert report["splits"]["file"]["examples"] == 2
    assert report["splits"]["file"]["entities_per_type"] == {"ORG": 1, "MISC": 1, "PER": 1}
    assert report["splits"]["file"]["skipped"] == {"-DOCSTART- line": 1}
    assert main(["data", "stats", str(path)]) == 0
    assert "2 examples, 3 entities" in capsys.readouterr().out
    out = tmp_path / "news.jsonl"
    assert main(["data", "export", str(path), "-o", str(out)]) == 0
    assert [ex.id for ex in read_user_file(out)] == ["news:0", "news:1"]


def test_a_folder_named_like_a_benchmark_does_not_hide_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crossner_ai").mkdir()  # e.g. an eval's output folder
    assert main(["eval", "--benchmarks", "crossner_ai,nope", "--model", "/nonexistent"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err  # crossner_ai was a benchmark


def test_model_commands_rename_the_labels_of_a_pool_file(tmp_path):
    from raitner.cli import _build_parser, _loader_options

    pool = tmp_path / "news.conll"
    pool.write_text(CONLL_2003_LAYOUT)
    arguments = ["extract", "Anna", "--labels", "person", "--examples", "pool"]
    args = _build_parser().parse_args([*arguments, "--pool", str(pool), "--label-names", "conll"])
    examples = _loader_options(args, pool=args.pool)["pool"]
    assert [e.label for ex in examples for e in ex.entities] == ["organization", "misc", "person"]
    plain = _build_parser().parse_args([*arguments, "--pool", str(pool)])
    assert _loader_options(plain, pool=plain.pool)["pool"] == str(pool)  # read by the predictor
