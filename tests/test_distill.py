"""Teacher distillation: passages, the teacher-answer reader, voting, location, the cache, and
`raitner distill` against a local OpenAI-compatible server (a real HTTP server on a free port,
answering chat completions from a script)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from raitner.distill import distill, get_teacher_prompt, parse_teacher_output, split_passages
from raitner.distill.pipeline import Passage, read_documents, sample_passages
from raitner.distill.prompts import default_teacher_prompt
from raitner.distill.teacher import TeacherCache, answer_key
from raitner.io.jsonl import read_examples

EN = get_teacher_prompt("pile-ner-type-en-v1")


# -- the reader of teacher answers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "pairs", "status"),
    [
        (
            '[("Barack Obama", "person"), ("Paris", "City ")]',
            [("Barack Obama", "person"), ("Paris", "city")],
            "ok",
        ),
        (
            'Here you go:\n[["NATO", "Organization"]]\nHope it helps.',
            [("NATO", "organization")],
            "ok",
        ),
        ('[{"北京": "地点"}, {"张三": "人物"}]', [("北京", "地点"), ("张三", "人物")], "ok"),
        ('{"北京": "地点", "上海": "城市"}', [("北京", "地点"), ("上海", "城市")], "ok"),
        ('[{"entity": "Rome", "type": "City"}]', [("Rome", "city")], "ok"),
        ("[('O\\'Brien', 'person')]", [("O'Brien", "person")], "ok"),
        ("[]", [], "ok"),
        ('[("a", "x"), ("a", "x"), (" ", "y"), ("b", "")]', [("a", "x")], "ok"),
        ('[("Rome", "city"), ("Paris", "ci', [("Rome", "city")], "repaired"),
        ('("Rome", "city") and ("Oslo", "city")', [("Rome", "city"), ("Oslo", "city")], "repaired"),
        ("I could not find any entities.", [], "unparseable"),
        ("[1, 2, 3]", [], "unparseable"),
    ],
)
def test_teacher_answers_are_read_leniently(answer, pairs, status) -> None:
    read = parse_teacher_output(answer)
    assert (read.pairs, read.status) == (pairs, status)


def test_prompts_fill_the_passage_and_are_looked_up_by_language() -> None:
    messages = EN.messages("Rome is old.")
    assert messages[0] == {
        "role": "system",
        "content": "You are a helpful information extraction system.",
    }
    assert messages[1]["content"].endswith("Passage: Rome is old.")
    assert "list of tuples" in messages[1]["content"]
    assert default_teacher_prompt("zh").id == "sky-ner-zh-v1"
    assert "JSON" in default_teacher_prompt("zh").messages("北京")[1]["content"]
    with pytest.raises(ValueError, match="known: pile-ner-type-en-v1, sky-ner-zh-v1"):
        get_teacher_prompt("nope")


# -- passages ---------------------------------------------------------------------------------


def test_passages_cover_a_long_document_without_overlap() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near Paris. "
    text = "  " + sentence * 40
    passages = split_passages("doc", text, max_tokens=50)
    assert len(passages) > 1
    assert [p.id for p in passages] == [f"doc:{i}" for i in range(len(passages))]
    for passage in passages:
        assert text[passage.start : passage.start + len(passage.text)] == passage.text
        assert len(passage.text.split()) <= 50
        assert passage.text == passage.text.strip()
        assert passage.text.endswith(".")  # cut at a sentence end
    rebuilt = " ".join(p.text for p in passages)
    assert rebuilt == text.strip()
    assert split_passages("d", "Short text.", max_tokens=50) == [
        Passage("d:0", "d", 0, "Short text.")
    ]
    assert split_passages("d", "   \n ", max_tokens=50) == []


def test_sampling_is_seeded_and_keeps_order() -> None:
    passages = [Passage(f"d:{i}", "d", i, f"text {i}") for i in range(20)]
    first = sample_passages(passages, 5, seed=3)
    assert first == sample_passages(passages, 5, seed=3)
    assert first != sample_passages(passages, 5, seed=4)
    assert first == sorted(first, key=lambda p: p.start)
    assert sample_passages(passages, None, seed=0) == passages
    assert sample_passages(passages, 50, seed=0) == passages


def test_documents_from_jsonl_and_text_files(tmp_path: Path) -> None:
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text('{"id": "a", "text": "One."}\n{"text": "Two."}\n', encoding="utf-8")
    assert list(read_documents(jsonl)) == [("a", "One."), ("docs:2", "Two.")]
    jsonl.write_text('{"id": 0, "text": "Zero."}\n{"id": null, "text": "None."}\n')
    assert list(read_documents(jsonl)) == [("0", "Zero."), ("docs:2", "None.")]
    plain = tmp_path / "docs.txt"
    plain.write_text("First doc.\n\nSecond doc.\n", encoding="utf-8")
    assert list(read_documents(plain)) == [("docs:1", "First doc."), ("docs:3", "Second doc.")]
    plain.write_text("\ufeffFirst doc.\n", encoding="utf-8")  # a Windows editor's byte-order mark
    assert list(read_documents(plain)) == [("docs:1", "First doc.")]
    jsonl.write_text('\ufeff{"text": "One."}\n', encoding="utf-8")
    assert list(read_documents(jsonl)) == [("docs:1", "One.")]
    array = tmp_path / "docs.json"  # a JSON array of documents, one a line or not
    array.write_text('[{"id": "a", "text": "One."},\n {"text": "Two."}]', encoding="utf-8")
    assert list(read_documents(array)) == [("a", "One."), ("docs:2", "Two.")]
    array.write_text('[{"text": "One."}, "Two."]', encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"docs.json:1: expected a JSON object with a string field 'text', got str"
    ):
        list(read_documents(array))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(
        ValueError,
        match=r"bad.jsonl:2: expected a string field 'text'; its fields: 'body' \(name the one "
        r"holding the text with --text-field\)",
    ):
        list(read_documents(bad))


# -- annotation, voting, location with in-memory teachers ---------------------------------------


class ScriptedTeacher:
    """Answers by a function of the passage; counts its calls."""

    def __init__(self, name: str, answer: Callable[[str], str]) -> None:
        self.name = name
        self.answer = answer
        self.calls = 0

    def settings(self):
        return {"model": self.name}

    def complete(self, messages):
        self.calls += 1
        return self.answer(messages[-1]["content"].split("Passage: ", 1)[1])


PASSAGES = [
    Passage("d:0", "d", 0, "Barack Obama visited Paris and Paris again."),
    Passage("d:1", "d", 44, "Nothing to see here."),
    Passage("d:2", "d", 65, "Angela Merkel met NATO leaders."),
]


def test_one_teacher_annotations_become_located_examples(tmp_path: Path) -> None:
    answers = {
        PASSAGES[0].text: '[("Barack Obama", "Person"), ("Paris", "city"), ("London", "city")]',
        PASSAGES[1].text: "[]",
        PASSAGES[2].text: "Sorry, I cannot help with that.",
    }
    teacher = ScriptedTeacher("t1", answers.__getitem__)
    examples, stats = distill(PASSAGES, [teacher], EN)
    assert [e.id for e in examples] == ["d:0"]
    (example,) = examples
    assert [(e.start, e.end, e.text, e.label) for e in example.entities] == [
        (0, 12, "Barack Obama", "person"),
        (21, 26, "Paris", "city"),
        (31, 36, "Paris", "city"),
    ]
    assert example.label_set == ()  # open types: negatives are sampled by `raitner build`
    assert example.meta == {"doc": "d", "offset": 0, "teachers": ["t1"]}
    assert (stats.unfound_mentions, stats.unparseable_passages, stats.empty_passages) == (1, 1, 1)
    assert (stats.examples, stats.entities, stats.asked, stats.cached) == (1, 3, 3, 0)
    kept, stats = distill(PASSAGES, [teacher], EN, keep_empty=True)
    assert [e.id for e in kept] == ["d:0", "d:1"]


def test_majority_vote_over_teachers_and_abstentions() -> None:
    text = PASSAGES[2].text
    teachers = [
        ScriptedTeacher("a", lambda _: '[("Angela Merkel", "person"), ("NATO", "organization")]'),
        ScriptedTeacher("b", lambda _: '[("Angela Merkel", "person"), ("NATO", "alliance")]'),
        ScriptedTeacher(
            "c", lambda _: '[("Angela Merkel", "politician"), ("NATO", "organization")]'
        ),
    ]
    (example,), stats = distill([PASSAGES[2]], teachers, EN)
    assert [(e.text, e.label) for e in example.entities] == [
        ("Angela Merkel", "person"),
        ("NATO", "organization"),
    ]
    assert stats.outvoted_pairs == 2
    (everything,), _ = distill([PASSAGES[2]], teachers, EN, min_votes=1)
    assert len(everything.entities) == 4
    # a teacher whose answer cannot be read abstains: the majority is of the two others
    teachers[2] = ScriptedTeacher("c", lambda _: "no idea")
    (example,), stats = distill([PASSAGES[2]], teachers, EN)
    assert [(e.text, e.label) for e in example.entities] == [("Angela Merkel", "person")]
    assert stats.unparseable_answers == 1
    assert text  # the passage itself is unchanged
    with pytest.raises(ValueError, match="min_votes"):
        distill([PASSAGES[2]], teachers, EN, min_votes=4)


def test_the_cache_makes_a_rerun_free_and_survives_a_cut_line(tmp_path: Path) -> None:
    teacher = ScriptedTeacher("t", lambda _: '[("Paris", "city")]')
    cache = TeacherCache(tmp_path / "cache.jsonl")
    first, stats = distill(PASSAGES, [teacher], EN, cache=cache)
    assert (teacher.calls, stats.asked, len(cache)) == (3, 3, 3)
    again, stats = distill(PASSAGES, [teacher], EN, cache=TeacherCache(tmp_path / "cache.jsonl"))
    assert (teacher.calls, stats.cached, again) == (3, 3, first)
    # another prompt or teacher setting is another question
    other = ScriptedTeacher("t2", lambda _: "[]")
    distill(PASSAGES[:1], [other], EN, cache=cache)
    assert other.calls == 1
    # a crash that cut the last line: it is dropped, the rest kept, the file usable
    path = tmp_path / "cache.jsonl"
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"key": "abc", "ans')
    reloaded = TeacherCache(path)
    assert len(reloaded) == 4 and path.read_bytes() == whole
    key = answer_key({"model": "t"}, EN.messages(PASSAGES[0].text))
    assert reloaded.get(key) == '[("Paris", "city")]'


def test_a_failing_teacher_stops_the_run_and_keeps_what_came_in(tmp_path: Path) -> None:
    from raitner.distill.teacher import TeacherError

    def answer(passage: str) -> str:
        if passage.startswith("Angela"):
            raise TeacherError("teacher 't' at http://x: rate limited")
        return "[]"

    cache = TeacherCache(tmp_path / "cache.jsonl")
    with pytest.raises(TeacherError, match="rate limited"):
        distill(PASSAGES, [ScriptedTeacher("t", answer)], EN, cache=cache, concurrency=1)
    assert len(cache) == 2
    healthy = ScriptedTeacher("t", lambda _: "[]")
    distill(PASSAGES, [healthy], EN, cache=TeacherCache(tmp_path / "cache.jsonl"))
    assert healthy.calls == 1  # only the passage that failed is asked again


# -- the real client against a local OpenAI-compatible server ----------------------------------


class ChatServer:
    """A chat-completions endpoint on a free local port; ``reply(model, messages)`` answers."""

    def __init__(self, reply: Callable[[str, list], str]) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                if body["model"] == "missing-model":
                    self._send(
                        404,
                        {"error": {"message": "model not found", "type": "invalid_request_error"}},
                    )
                    return
                content = reply(body["model"], body["messages"])
                self._send(
                    200,
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def reply_by_passage(model: str, messages: list) -> str:
    passage = messages[-1]["content"].split("Passage: ", 1)[1]
    found = [(word, "city") for word in ("Paris", "Rome", "Oslo") if word in passage]
    if model == "teacher-b":  # disagrees with teacher-a on Rome's type
        found = [(m, "capital" if m == "Rome" else t) for m, t in found]
    return "[" + ", ".join(f'("{m}", "{t}")' for m, t in found) + "]"


def test_cli_distill_end_to_end_and_rerun_from_the_cache(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    pytest.importorskip("openai")
    from raitner.cli import main

    monkeypatch.setenv("TEACHER_KEY", "sk-test")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        json.dumps({"id": "a", "text": "Paris is big. Rome is old."})
        + "\n"
        + json.dumps({"id": "b", "text": "Nothing here."})
        + "\n"
        + json.dumps({"id": "c", "text": "Oslo in winter."})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "distilled.jsonl"
    with ChatServer(reply_by_passage) as server:
        argv = ["distill", str(docs), "-o", str(out), "--teacher", "teacher-a"]
        argv += ["--teacher", "teacher-b", "--base-url", server.url]
        argv += ["--api-key-env", "TEACHER_KEY", "--min-votes", "2"]
        assert main(argv) == 0
        assert len(server.requests) == 6
        assert {r["auth"] for r in server.requests} == {"Bearer sk-test"}
        assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
        assert server.requests[0]["temperature"] == 0.0
        examples = list(read_examples(out))
        assert [e.id for e in examples] == ["a:0", "c:0"]
        assert [(x.text, x.label) for x in examples[0].entities] == [
            ("Paris", "city")
        ]  # Rome outvoted
        assert examples[0].meta["teachers"] == ["teacher-a", "teacher-b"]
        assert "2 pairs outvoted" in capsys.readouterr().err
        # the rerun asks nothing: every answer is in the cache beside the output
        assert main(argv) == 0
        assert len(server.requests) == 6
        assert (tmp_path / "distilled.jsonl.teacher-cache.jsonl").is_file()
    # the output is training data as it stands
    dataset = tmp_path / "dataset.jsonl"
    assert main(["build", str(out), "-o", str(dataset), "--mode", "vanilla"]) == 0
    conversations = [json.loads(line) for line in dataset.read_text().splitlines()]
    asked = [m["content"] for c in conversations for m in c["messages"] if m["role"] == "user"]
    assert "Text: Paris is big. Rome is old." in asked
    assert "What describes city in the text?" in asked


def test_cli_distill_errors_are_clear_and_leave_no_output(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    pytest.importorskip("openai")
    from raitner.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    docs = tmp_path / "docs.txt"
    docs.write_text("Paris is big.\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["distill", str(docs), "-o", str(out), "--teacher", "gpt"]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    with ChatServer(reply_by_passage) as server:
        assert (
            main(["distill", str(docs), "-o", str(out), "--teacher", f"missing-model@{server.url}"])
            == 2
        )
    err = capsys.readouterr().err
    assert "missing-model" in err and "model not found" in err
    assert not out.exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 3}\n', encoding="utf-8")
    assert (
        main(["distill", str(bad), "-o", str(out), "--teacher", "gpt", "--base-url", "http://x"])
        == 2
    )
    assert "bad.jsonl:1: expected a string field 'text', got 3" in capsys.readouterr().err
    assert main(["distill", str(docs), "-o", str(out), "--teacher", "a", "--min-votes", "2"]) == 2
    assert "--min-votes 2 with 1 teacher" in capsys.readouterr().err
