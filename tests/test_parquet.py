"""Annotated Parquet files, as the Hugging Face Hub serves datasets: tokens with named or
string tags, or texts with spans; read wherever an annotated file goes."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("datasets")
import pyarrow as pa  # noqa: E402 (after the skip: both come with the train extra)
import pyarrow.parquet as pq  # noqa: E402
from datasets import ClassLabel, Dataset, Features, Sequence, Value  # noqa: E402

from raitner.cli import main  # noqa: E402
from raitner.errors import DataFormatError, RaitnerError  # noqa: E402
from raitner.io import registry  # noqa: E402
from raitner.io.stats import ReadStats  # noqa: E402
from raitner.io.user_files import read_user_file  # noqa: E402
from raitner.schema import Entity  # noqa: E402

CONLL_TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


@pytest.fixture(autouse=True)
def _no_added_files(monkeypatch):
    monkeypatch.setattr(registry, "_FILES", {})


def _hub_like(path, tokens, tags):
    """A Parquet file as ``Dataset.to_parquet`` (and the Hub's conversion) writes CoNLL-2003:
    numbered tags whose names are in the file's features."""
    features = Features(
        {
            "id": Value("string"),
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=CONLL_TAGS)),
        }
    )
    ids = [str(i) for i in range(len(tokens))]
    Dataset.from_dict({"id": ids, "tokens": tokens, "ner_tags": tags}, features).to_parquet(path)
    return path


def test_numbered_tags_are_named_by_the_files_features(tmp_path):
    path = _hub_like(
        tmp_path / "test-00000-of-00001.parquet",
        [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]],
        [[3, 0, 7, 0], [1, 2]],
    )
    stats = ReadStats()
    first, second = read_user_file(path, stats)
    assert (first.id, first.text, first.lang) == (
        "test-00000-of-00001:0",
        "EU rejects German call",
        "en",
    )
    assert first.entities == [Entity(0, 2, "EU", "ORG"), Entity(11, 17, "German", "MISC")]
    assert second.entities == [Entity(0, 15, "Peter Blackburn", "PER")]
    assert (stats.examples, stats.entities) == (2, 3)


def test_string_tags_and_chinese_characters(tmp_path):
    path = tmp_path / "weibo.parquet"
    table = pa.table(
        {"words": [["我", "在", "北", "京"]], "tags": [["O", "O", "B-地点", "I-地点"]]}
    )
    pq.write_table(table, path)
    (example,) = read_user_file(path)
    assert (example.text, example.lang) == ("我在北京", "zh")
    assert example.entities == [Entity(2, 4, "北京", "地点")]


def test_few_nerd_io_tags_named_by_the_features_read_as_runs(tmp_path):
    # the Hub's Few-NERD: IO tags, a ClassLabel of bare type names
    names = ["O", "art-film", "person-actor"]
    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=names))}
    )
    tokens = [["Nic", "Cage", "and", "Sands", "star", "in", "The", "Rock"]]
    path = tmp_path / "few-nerd.parquet"
    tags = [[2, 2, 0, 2, 0, 0, 1, 1]]
    Dataset.from_dict({"tokens": tokens, "ner_tags": tags}, features).to_parquet(path)
    (example,) = read_user_file(path)
    assert [(e.text, e.label) for e in example.entities] == [
        ("Nic Cage", "person-actor"),
        ("Sands", "person-actor"),
        ("The Rock", "art-film"),
    ]
    mixed = tmp_path / "mixed.parquet"
    pq.write_table(pa.table({"tokens": [["a"], ["b"]], "tags": [["person"], ["B-person"]]}), mixed)
    with pytest.raises(DataFormatError, match=r"mixed\.parquet.*row 2.*'tags'.*tags are IO"):
        read_user_file(mixed)


def _few_nerd_both_columns(path):
    """The Hub's Few-NERD layout: coarse types in ``ner_tags``, fine ones in ``fine_ner_tags``."""
    coarse, fine = ["O", "art", "person"], ["O", "art-film", "person-actor"]
    features = Features(
        {
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(ClassLabel(names=coarse)),
            "fine_ner_tags": Sequence(ClassLabel(names=fine)),
        }
    )
    tokens = [["Nic", "Cage", "stars", "in", "The", "Rock"], ["Sands", "too"]]
    tags = [[2, 2, 0, 0, 1, 1], [2, 0]]
    data = {"tokens": tokens, "ner_tags": tags, "fine_ner_tags": tags}
    dataset = Dataset.from_dict(data, features)
    if path.suffix == ".parquet":
        dataset.to_parquet(path)
    else:
        dataset.save_to_disk(str(path))
    return path


@pytest.mark.parametrize("name", ["few-nerd.parquet", "few-nerd"])
def test_file_colon_column_reads_the_tags_of_that_column(tmp_path, name, capsys):
    from raitner.sources import load_source

    path = _few_nerd_both_columns(tmp_path / name)
    labels = [[e.label for e in example.entities] for example in read_user_file(path)]
    assert labels == [["person", "art"], ["person"]]  # ner_tags, the first known column
    fine = read_user_file(f"{path}:fine_ner_tags")
    assert [[e.label for e in example.entities] for example in fine] == [
        ["person-actor", "art-film"],
        ["person-actor"],
    ]
    assert fine[0].id == "few-nerd:0"  # the same texts under the same ids
    # build sources with a subset, data stats and eval benchmarks take the same name
    (one,) = load_source(f"{path}:fine_ner_tags@1", seed=0)
    assert one.entities[0].label == "person-actor"
    assert main(["data", "stats", f"{path}:fine_ner_tags", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["splits"]["file"]
    assert stats["entities_per_type"] == {"person-actor": 2, "art-film": 1}
    assert (stats["tag_column"], stats["other_tag_columns"]) == ("fine_ner_tags", ["ner_tags"])
    # read as it comes, the file's stats say which column was read and what else is there
    assert main(["data", "stats", str(path)]) == 0
    printed = capsys.readouterr().out
    assert (
        f"tags read from 'ner_tags'; the table also has fine_ner_tags (read one as {path}:COL"
        in printed
    )
    coarse = registry.add_file_benchmark(path)
    chosen = registry.add_file_benchmark(f"{path}:fine_ner_tags")
    assert (coarse.name, chosen.name) == ("few-nerd", "few-nerd.fine_ner_tags")
    assert chosen.types == ("person-actor", "art-film") and coarse.types == ("person", "art")
    assert chosen.fingerprint["tag_column"] == "fine_ner_tags"
    assert "tag_column" not in coarse.fingerprint
    with pytest.raises(DataFormatError, match=r"no column 'fine_tags' to read tags from; col"):
        read_user_file(f"{path}:fine_tags")
    # a study config's training mix takes it as a file, not as a benchmark's split
    from raitner.reproduce.config import benchmark_of

    assert benchmark_of(f"{path}:fine_ner_tags@1") is None
    assert benchmark_of("conll2003:train@5") == "conll2003"


def test_a_chosen_tag_column_is_evaluated_under_its_own_name(tmp_path):
    from test_eval_runner import GoldBackend

    from raitner.api import OpenNER
    from raitner.evaluate.runner import EvalSettings, run_evaluation
    from raitner.prompts import get_template

    path = _few_nerd_both_columns(tmp_path / "few-nerd.parquet")
    fine = registry.add_file_benchmark(f"{path}:fine_ner_tags")
    coarse = registry.add_file_benchmark(path)
    template = get_template("ra-it-en-v1")
    backend = GoldBackend(fine.load("test"), template)  # answers the fine types' gold
    ner = OpenNER(backend, template, max_text_tokens=None)
    out = tmp_path / "eval"
    names = [fine.name, coarse.name]
    run_evaluation(ner, EvalSettings(benchmarks=names, model="gold"), out, show_progress=False)
    report = json.loads((out / "report.json").read_text())
    scores = {row["name"]: row["scores"] for row in report["rows"]}["gold (UniNER F1)"]
    # the fine column asks its own types (gold answers all), the coarse one its own (none)
    assert scores == {"few-nerd.fine_ner_tags": 100.0, "few-nerd": 0.0}
    assert (out / "predictions" / "few-nerd.fine_ner_tags.jsonl").is_file()


def test_an_arrow_file_reads_as_its_table_in_either_arrow_format(tmp_path, capsys):
    import pyarrow.feather as feather

    saved = _few_nerd_both_columns(tmp_path / "saved")
    (shard,) = saved.glob("*.arrow")  # a stream, with the features in its metadata
    arrow = tmp_path / "few-nerd.arrow"
    shard.rename(arrow)
    examples = read_user_file(arrow)
    assert [e.id for e in examples] == ["few-nerd:0", "few-nerd:1"]
    assert [e.label for e in examples[0].entities] == ["person", "art"]  # named by ClassLabel
    fine = read_user_file(f"{arrow}:fine_ner_tags")
    assert [e.label for e in fine[0].entities] == ["person-actor", "art-film"]
    # the IPC file format (Feather v2), string tags, through a build source
    ipc = tmp_path / "news.arrow"
    feather.write_feather(
        pa.table({"tokens": [["Peter", "in", "Rome"]], "tags": [["B-PER", "O", "B-LOC"]]}), ipc
    )
    from raitner.sources import load_source

    (example,) = load_source(str(ipc))
    assert [(e.text, e.label) for e in example.entities] == [("Peter", "PER"), ("Rome", "LOC")]
    broken = tmp_path / "broken.arrow"
    broken.write_bytes(b"not arrow at all")
    with pytest.raises(DataFormatError, match=r"broken\.arrow.*expected an Arrow stream or IPC"):
        read_user_file(broken)
    assert main(["data", "stats", str(broken)]) != 0
    assert "broken.arrow" in capsys.readouterr().err
    packed = tmp_path / "few-nerd.arrow.gz"
    packed.write_bytes(arrow.read_bytes())
    with pytest.raises(DataFormatError, match=r"compresses its own columns: give the file itself"):
        read_user_file(packed)


def test_a_tag_column_after_another_format_or_a_missing_file_is_refused(tmp_path):
    from raitner.io.user_files import is_user_file, split_tag_column

    conll = tmp_path / "train.conll"
    conll.write_text("Rome\tB-LOC\n")
    with pytest.raises(RaitnerError, match=r"train\.conll:ner_tags: a column of tags can be named"):
        read_user_file(f"{conll}:ner_tags")
    # no such file, or a folder named like a benchmark: a benchmark spec as before
    assert split_tag_column("missing.parquet:ner_tags")[1] is None
    (tmp_path / "conll2003").mkdir()
    assert split_tag_column(tmp_path / "conll2003:train") == (tmp_path / "conll2003:train", None)
    assert not is_user_file("conll2003:train")
    # a tokens-less table cannot take its tags from a column
    spans = tmp_path / "spans.parquet"
    pq.write_table(pa.table({"text": ["Rome"], "labels": [["x"]]}), spans)
    with pytest.raises(DataFormatError, match=r"tags in 'labels' need a tokens column"):
        read_user_file(f"{spans}:labels")


def test_texts_with_spans_read_as_span_jsonl_lines_do(tmp_path):
    path = tmp_path / "spans.parquet"
    rows = [
        {
            "id": "a",
            "text": "Alice flew to Rome.",
            "entities": [{"start": 0, "end": 5, "label": "person"}],
        },
        {"id": "b", "text": "Nothing here.", "entities": []},
        {"id": None, "text": "No id, no entities, no label set.", "label_set": None},
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)
    first, second, third = read_user_file(path)
    assert (first.id, first.entities) == ("a", [Entity(0, 5, "Alice", "person")])
    assert (second.id, second.entities) == ("b", [])
    assert (third.id, third.entities, third.label_set) == ("spans:2", [], ())  # nulls: absent

    bad = tmp_path / "bad.parquet"
    rows[1]["entities"] = [{"start": 0, "end": 99, "label": "x"}]
    del rows[2]
    pq.write_table(pa.Table.from_pylist(rows), bad)
    with pytest.raises(DataFormatError, match=r"bad.parquet, row 2: "):
        read_user_file(bad)


def test_unreadable_tables_name_the_file_the_row_and_what_was_expected(tmp_path):
    unnamed = tmp_path / "unnamed.parquet"
    pq.write_table(pa.table({"tokens": [["a"], ["b", "c"]], "ner_tags": [[0], [1, 0]]}), unnamed)
    with pytest.raises(DataFormatError, match="row 1: the tags in 'ner_tags' are numbers"):
        read_user_file(unnamed)

    short = tmp_path / "short.parquet"
    pq.write_table(pa.table({"tokens": [["a", "b"]], "tags": [["O"]]}), short)
    with pytest.raises(
        DataFormatError, match=r"row 1: expected as many tags in 'tags' as tokens \(2\), got 1"
    ):
        read_user_file(short)

    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"sentence": ["x"], "y": [1]}), other)
    with pytest.raises(DataFormatError, match="found columns sentence, y"):
        read_user_file(other)

    fake = tmp_path / "fake.parquet"
    fake.write_text("id,text\n")
    with pytest.raises(DataFormatError, match="fake.parquet: expected a Parquet file"):
        read_user_file(fake)


def test_a_hub_parquet_is_evaluated_and_exported_like_any_annotated_file(tmp_path, capsys):
    path = _hub_like(
        tmp_path / "conll.parquet", [["Peter", "Blackburn", "in", "Rome"]], [[1, 2, 0, 5]]
    )
    assert main(["data", "stats", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["file"]["entities_per_type"] == {"PER": 1, "LOC": 1}
    out = tmp_path / "conll.jsonl"
    assert main(["data", "export", str(path), "-o", str(out)]) == 0
    assert [e.text for e in read_user_file(out)[0].entities] == ["Peter Blackburn", "Rome"]
    spec = registry.add_file_benchmark(path, "test", {"PER": "person", "LOC": "location"})
    assert spec.name == "conll" and spec.types == ("person", "location")


def test_a_dataset_saved_to_disk_reads_wherever_an_annotated_file_goes(tmp_path, capsys):
    from datasets import DatasetDict

    features = Features(
        {"tokens": Sequence(Value("string")), "ner_tags": Sequence(ClassLabel(names=CONLL_TAGS))}
    )
    train = Dataset.from_dict(
        {
            "tokens": [["Peter", "Blackburn", "in", "Rome"], ["EU", "rejects"]],
            "ner_tags": [[1, 2, 0, 5], [3, 0]],
        },
        features,
    )
    test = Dataset.from_dict({"tokens": [["Paris"]], "ner_tags": [[5]]}, features)
    folder = tmp_path / "news"
    DatasetDict({"train": train, "test": test}).save_to_disk(str(folder))

    first, second = read_user_file(folder / "train")
    assert (first.id, first.text) == ("train:0", "Peter Blackburn in Rome")
    assert [(e.text, e.label) for e in first.entities] == [
        ("Peter Blackburn", "PER"),
        ("Rome", "LOC"),
    ]
    assert second.entities == [Entity(0, 2, "EU", "ORG")]
    # the same as data stats, build sources and eval benchmarks see it
    assert main(["data", "stats", str(folder / "test"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["file"]["entities_per_type"] == {"LOC": 1}
    from raitner.sources import load_source

    assert [e.id for e in load_source(f"{folder / 'train'}@1", seed=3)] in (
        ["train:0"],
        ["train:1"],
    )
    spec = registry.add_file_benchmark(folder / "test")
    before = spec.fingerprint
    assert spec.name == "test" and spec.types == ("LOC",)
    # the whole DatasetDict is refused with its splits named
    with pytest.raises(
        RaitnerError,
        match=r"holds a DatasetDict: name one split's folder \(.*news/test, .*news/train\)",
    ):
        read_user_file(folder)
    # a changed dataset gets a new fingerprint
    Dataset.from_dict({"tokens": [["Rome"]], "ner_tags": [[5]]}, features).save_to_disk(
        str(tmp_path / "re")
    )
    registry._FILES.clear()
    import shutil

    shutil.rmtree(folder / "test")
    shutil.copytree(tmp_path / "re", folder / "test")
    assert registry.add_file_benchmark(folder / "test").fingerprint != before


@pytest.mark.parametrize("layout", ["parquet", "arrow-stream", "arrow-file"])
def test_predict_and_distill_read_texts_from_a_table(tmp_path, layout):
    import pyarrow.feather as feather

    from raitner.cli import _read_predict_input
    from raitner.distill.pipeline import read_documents

    suffix = ".parquet" if layout == "parquet" else ".arrow"
    path = tmp_path / f"corpus{suffix}"
    rows = [
        {"id": "d1", "text": "Alice flew to Rome.", "labels": "person, city"},
        {"id": None, "text": "Bob stayed.", "labels": None},
    ]
    table = pa.Table.from_pylist(rows)
    if layout == "parquet":
        pq.write_table(table, path)
    elif layout == "arrow-file":
        feather.write_feather(table, path)
    else:
        Dataset(table).save_to_disk(str(tmp_path / "saved"))
        next((tmp_path / "saved").glob("*.arrow")).rename(path)
    assert _read_predict_input(path, ["person"]) == [
        {"id": "d1", "text": "Alice flew to Rome.", "labels": ["person", "city"]},
        {"id": "1", "text": "Bob stayed.", "labels": ["person"]},
    ]
    assert list(read_documents(path)) == [
        ("d1", "Alice flew to Rome."),
        ("corpus:2", "Bob stayed."),
    ]
    with pytest.raises(DataFormatError, match=rf"corpus{suffix}, row 1: expected a column 'body'"):
        list(read_documents(path, "body"))


def test_the_ra_it_authors_skypile_sample_is_a_distillation_corpus(data_root):
    # the RA-IT reference code's corpus sample (ten SkyPile-150B documents) is Parquet
    from raitner.distill.pipeline import read_documents

    path = (
        data_root
        / "zh/ra_it_reference/data/corpus_data/my_data/SkyPile-150B/sky_10_samples.parquet"
    )
    if not path.is_file():
        pytest.skip(f"{path} is not in this data root")
    documents = list(read_documents(path))
    assert len(documents) == 10
    assert all(text.strip() for _, text in documents)
    assert len({doc_id for doc_id, _ in documents}) == 10
