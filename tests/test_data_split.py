"""`raitner data split`: seeded train/dev/test files from one annotated set, repeated texts
never on both sides."""

from __future__ import annotations

import pytest

from raitner.cli import main
from raitner.data.splitting import split_examples
from raitner.errors import RaitnerError
from raitner.io.span_jsonl import write_span_jsonl
from raitner.io.user_files import read_user_file
from raitner.schema import Entity, Example


def _examples(count: int, repeated: int = 0) -> list[Example]:
    examples = []
    for index in range(count):
        text = "Same sentence in Rome." if index < repeated else f"Text {index} about Rome."
        start = text.index("Rome")
        examples.append(
            Example(f"x:{index}", text, "en", [Entity(start, start + 4, "Rome", "city")])
        )
    return examples


def test_shares_are_fractions_or_counts_and_the_splits_partition_the_set():
    examples = _examples(100)
    splits = split_examples(examples, dev=0.1, test=25, seed=3)
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (65, 10, 25)
    ids = [ex.id for part in (splits.train, splits.dev, splits.test) for ex in part]
    assert sorted(ids) == sorted(ex.id for ex in examples)
    for part in (splits.train, splits.dev, splits.test):  # each keeps the source's order
        assert [ex.id for ex in part] == [ex.id for ex in examples if ex in part]
    again = split_examples(examples, dev=0.1, test=25, seed=3)
    assert again == splits
    other = split_examples(examples, dev=0.1, test=25, seed=4)
    assert {ex.id for ex in other.test} != {ex.id for ex in splits.test}


def test_repeated_texts_stay_in_one_split():
    examples = _examples(40, repeated=8)
    for seed in range(10):
        splits = split_examples(examples, dev=0.2, test=0.2, seed=seed)
        homes = [
            name
            for name, part in (("train", splits.train), ("dev", splits.dev), ("test", splits.test))
            if any(ex.text == "Same sentence in Rome." for ex in part)
        ]
        assert len(homes) == 1, (seed, homes)
        sizes = len(splits.train) + len(splits.dev) + len(splits.test)
        assert sizes == 40


@pytest.mark.parametrize(
    ("dev", "test", "message"),
    [
        (0.6, 0.6, r"ask for 6 \+ 6 examples; there are 10"),
        (-1, 0.1, "--dev must be 0 or more"),
        (0.1, 2.5, "--test: a fraction below 1 or a whole number"),
    ],
)
def test_impossible_shares_are_refused(dev, test, message):
    with pytest.raises(RaitnerError, match=message):
        split_examples(_examples(10), dev=dev, test=test, seed=1)


def test_the_command_writes_files_that_read_back(tmp_path, capsys):
    source = tmp_path / "mine.jsonl"
    examples = _examples(20)
    examples[0] = Example("x:0", "Alice is here.", "en", [Entity(0, 5, "Alice", "person")])
    write_span_jsonl(source, examples, "raitner")
    out = tmp_path / "splits"
    args = ["data", "split", str(source), "-o", str(out), "--dev", "0", "--test", "0.5"]
    assert main([*args, "--seed", "4"]) == 0  # a seed that puts Alice's text in test
    printed = capsys.readouterr().out
    assert f"dev: no examples, {out / 'dev.jsonl'} not written" in printed
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl", "train.jsonl"]
    train, test = read_user_file(out / "train.jsonl"), read_user_file(out / "test.jsonl")
    assert len(train) == len(test) == 10
    assert sorted(ex.id for ex in train + test) == sorted(ex.id for ex in examples)
    by_id = {ex.id: ex for ex in examples}
    assert all(ex.entities == by_id[ex.id].entities for ex in train + test)
    assert any(ex.id == "x:0" for ex in test)
    assert "types no train example has: person" in printed

    assert main(["data", "split", str(source), "-o", str(out), "--test", "30"]) == 2
    assert "there are 20" in capsys.readouterr().err
