"""The answer journal that lets a long prediction run resume where it stopped."""

from __future__ import annotations

import json

from raitner.infer.journal import AnswerJournal


def _questions(n, text="Text: a"):
    return [
        [{"role": "user", "content": text}, {"role": "user", "content": f"q{i}"}] for i in range(n)
    ]


def test_saved_blocks_come_back_for_the_same_questions(tmp_path):
    path = tmp_path / "answers.journal.jsonl"
    questions = _questions(5)
    first = AnswerJournal(path, identity={"model": "m"})
    assert first.start(questions, 64) == []
    first.append(["[]", '["x"]'])
    first.append(["[]", "[]"])

    again = AnswerJournal(path, identity={"model": "m"})
    assert again.start(questions, 64) == ["[]", '["x"]', "[]", "[]"]
    assert again.resumed == 4
    again.append(["[]"])
    assert AnswerJournal(path, identity={"model": "m"}).start(questions, 64) == [
        "[]",
        '["x"]',
        "[]",
        "[]",
        "[]",
    ]
    again.discard()
    assert not path.exists()


def test_other_questions_or_settings_start_afresh(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = AnswerJournal(path, identity={"empty_bias": 0})
    journal.start(_questions(3), 64)
    journal.append(["[]", "[]"])

    assert AnswerJournal(path, identity={"empty_bias": 0}).start(_questions(3, "Text: b"), 64) == []
    # the file now belongs to the new questions: the old answers are gone for good
    assert AnswerJournal(path, identity={"empty_bias": 0}).start(_questions(3), 64) == []

    journal = AnswerJournal(path, identity={"empty_bias": 0})
    journal.start(_questions(3), 64)
    journal.append(["[]"])
    assert AnswerJournal(path, identity={"empty_bias": 1}).start(_questions(3), 64) == []
    journal.start(_questions(3), 64)
    journal.append(["[]"])
    assert AnswerJournal(path, identity={"empty_bias": 0}).start(_questions(3), 32) == []


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path):
    path = tmp_path / "j.jsonl"
    questions = _questions(4)
    journal = AnswerJournal(path)
    journal.start(questions, 64)
    journal.append(["[]", '["a"]'])
    complete = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'["[]", "[\\"b')  # the process died mid-write

    resumed = AnswerJournal(path)
    assert resumed.start(questions, 64) == ["[]", '["a"]']
    assert path.read_bytes() == complete
    resumed.append(["[]", "[]"])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines[1:]] == [["[]", '["a"]'], ["[]", "[]"]]


def test_a_journal_longer_than_the_questions_is_not_used(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = AnswerJournal(path)
    journal.start(_questions(2), 64)
    journal.append(["[]", "[]", "[]"])  # more answers than questions: not these questions'
    assert AnswerJournal(path).start(_questions(2), 64) == []
