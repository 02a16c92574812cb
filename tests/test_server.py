"""``raitner serve``: the FastAPI app over an OpenNER, its request checks, and the micro-batcher
that answers concurrent requests in one predictor call."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from raitner.api import OpenNER  # noqa: E402
from raitner.schema import Entity, Example  # noqa: E402
from raitner.server import MicroBatcher, create_app  # noqa: E402


class Scripted:
    """Answers from a dict keyed by label; counts the backend calls."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.calls = 0

    def generate(self, conversations, max_new_tokens):
        self.calls += 1
        labels = [
            c[-1]["content"].split("What describes ")[1][: -len(" in the text?")]
            for c in conversations
        ]
        return [self.answers.get(label, "[]") for label in labels]


ANSWERS = {"person": '["Barack Obama"]', "location": '["Paris", "Berlin"]'}
TEXT = "Barack Obama visited Paris. Paris!"


def scripted_client(**options) -> TestClient:
    ner = OpenNER(Scripted(ANSWERS), "ra-it-en-v1")
    return TestClient(create_app(ner, model_name="scripted", **options))


def test_extract_returns_entities_with_offsets_and_optional_answers() -> None:
    with scripted_client() as client:
        response = client.post("/v1/extract", json={"text": TEXT, "labels": ["person", "location"]})
        assert response.status_code == 200
        body = response.json()
        assert body == {
            "entities": [
                {"start": 0, "end": 12, "text": "Barack Obama", "label": "person"},
                {"start": 21, "end": 26, "text": "Paris", "label": "location"},
                {"start": 28, "end": 33, "text": "Paris", "label": "location"},
            ],
            "unaligned": [["Berlin", "location"]],
        }
        with_answers = client.post(
            "/v1/extract", json={"text": TEXT, "labels": ["person"], "answers": True}
        ).json()
        assert with_answers["answers"] == {"person": '["Barack Obama"]'}


def test_flat_ner_keeps_the_longer_of_overlapping_entities() -> None:
    ner = OpenNER(
        Scripted({"organization": '["New York Times"]', "location": '["New York"]'}),
        "ra-it-en-v1",
    )
    with TestClient(create_app(ner)) as client:
        request = {"text": "The New York Times", "labels": ["organization", "location"]}
        nested = client.post("/v1/extract", json=request).json()["entities"]
        flat = client.post("/v1/extract", json={**request, "flat_ner": True}).json()["entities"]
    assert [e["label"] for e in nested] == ["location", "organization"]
    assert flat == [{"start": 4, "end": 18, "text": "New York Times", "label": "organization"}]


def test_batch_endpoint_with_labels_per_text() -> None:
    texts = [TEXT, "Nobody here."]
    with scripted_client() as client:
        shared = client.post("/v1/extract/batch", json={"texts": texts, "labels": ["person"]})
        per_text = client.post(
            "/v1/extract/batch", json={"texts": texts, "labels": [["person"], ["location"]]}
        )
    assert shared.status_code == per_text.status_code == 200
    first, second = shared.json()["results"]
    assert [e["text"] for e in first["entities"]] == ["Barack Obama"]
    assert second["entities"] == []
    first, second = per_text.json()["results"]
    assert [e["text"] for e in first["entities"]] == ["Barack Obama"]
    assert second == {"entities": [], "unaligned": [["Paris", "location"], ["Berlin", "location"]]}


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/v1/extract", {"text": TEXT, "labels": []}, 422, "at least one entity type"),
        ("/v1/extract", {"text": TEXT, "labels": ["person", " "]}, 422, "non-empty"),
        ("/v1/extract", {"text": TEXT}, 422, "labels"),
        ("/v1/extract", {"text": "x" * 101, "labels": ["person"]}, 413, "at most 100"),
        ("/v1/extract", {"text": TEXT, "labels": ["person"], "examples": "pool"}, 400, "--pool"),
        ("/v1/extract", {"text": TEXT, "labels": ["person"], "examples": "all"}, 422, "pool"),
        ("/v1/extract/batch", {"texts": [], "labels": ["person"]}, 422, "texts"),
        ("/v1/extract/batch", {"texts": ["a", "b"], "labels": [["person"]]}, 422, "one per text"),
        ("/v1/extract/batch", {"texts": ["a"] * 4, "labels": ["person"]}, 413, "at most 3"),
    ],
)
def test_bad_requests_get_a_clear_status_and_message(path, body, status, says) -> None:
    with scripted_client(max_text_chars=100, max_texts_per_request=3) as client:
        response = client.post(path, json=body)
        assert response.status_code == status
        assert says in response.text
        # the server keeps answering after a refused request
        assert client.post("/v1/extract", json={"text": "a", "labels": ["person"]}).is_success


def test_examples_from_the_servers_pool() -> None:
    from raitner.retrieval import HashingEmbedder

    pool = [Example("a", "Rome is the capital of Italy.", "en", [Entity(0, 4, "Rome", "city")])]
    seen = []

    class Recording(Scripted):
        def generate(self, conversations, max_new_tokens):
            seen.extend(conversations)
            return super().generate(conversations, max_new_tokens)

    ner = OpenNER(
        Recording({}), "ra-it-en-v1", pool=pool, retrieval={"k": 1}, embedder=HashingEmbedder()
    )
    with TestClient(create_app(ner)) as client:
        request = {"text": "Paris is the capital of France.", "labels": ["city"]}
        assert client.post("/v1/extract", json={**request, "examples": "pool"}).is_success
        assert "Rome is the capital of Italy." in str(seen[-1])
        assert client.post("/v1/extract", json=request).is_success
        assert "Rome" not in str(seen[-1])
        assert client.get("/v1/model").json()["pool_examples"] == 1
    with TestClient(create_app(ner, default_examples="pool")) as client:
        assert client.post("/v1/extract", json=request).is_success
        assert "Rome is the capital of Italy." in str(seen[-1])
        assert client.post("/v1/extract", json={**request, "examples": "none"}).is_success
        assert "Rome" not in str(seen[-1])
    without_pool = OpenNER(Recording({}), "ra-it-en-v1")
    with pytest.raises(ValueError, match="needs an OpenNER with a pool"):
        create_app(without_pool, default_examples="pool")


def test_model_and_health_endpoints() -> None:
    with scripted_client(max_batch_texts=8) as client:
        info = client.get("/v1/model").json()
        assert info["model"] == "scripted"
        assert info["template"] == "ra-it-en-v1"
        assert info["max_batch_texts"] == 8
        client.post("/v1/extract", json={"text": TEXT, "labels": ["person"]})
        health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["requests"] == health["texts"] == health["batches"] == 1


def run_batcher(predict, jobs, **options):
    """Submit every job at once to a started MicroBatcher; its results and stats."""

    async def main():
        batcher = MicroBatcher(predict, **options)
        await batcher.start()
        try:
            results = await asyncio.gather(
                *(batcher.submit(texts, [["t"]] * len(texts), None) for texts in jobs),
                return_exceptions=True,
            )
        finally:
            await batcher.stop()
        return results, batcher.stats

    return asyncio.run(main())


def test_micro_batcher_answers_concurrent_requests_in_one_call() -> None:
    calls = []

    def predict(texts, labels, examples):
        calls.append(list(texts))
        return [text.upper() for text in texts]

    jobs = [["a"], ["b", "c"], ["d"]]
    results, stats = run_batcher(predict, jobs, max_wait_s=0.5)
    assert results == [["A"], ["B", "C"], ["D"]]
    assert calls == [["a", "b", "c", "d"]]
    assert (stats.requests, stats.texts, stats.batches) == (3, 4, 1)


def test_micro_batcher_respects_the_batch_size_and_keeps_order() -> None:
    calls = []

    def predict(texts, labels, examples):
        calls.append(list(texts))
        return list(texts)

    jobs = [["a", "b"], ["c", "d"], ["e"], ["f", "g", "h", "i"]]
    results, stats = run_batcher(predict, jobs, max_batch_texts=3, max_wait_s=0.5)
    assert results == jobs
    # [c, d] would overfill [a, b]: it opens the next batch, which [e] fills
    assert calls == [["a", "b"], ["c", "d", "e"], ["f", "g", "h", "i"]]
    assert stats.largest_batch_texts == 4  # a request larger than the batch runs alone


def test_one_bad_request_fails_only_itself() -> None:
    calls = []

    def predict(texts, labels, examples):
        calls.append(list(texts))
        if "bad" in texts:
            raise ValueError("cannot read 'bad'")
        return list(texts)

    results, stats = run_batcher(predict, [["a"], ["bad"], ["b"]], max_wait_s=0.5)
    assert results[0] == ["a"] and results[2] == ["b"]
    assert isinstance(results[1], ValueError) and "bad" in str(results[1])
    assert calls[0] == ["a", "bad", "b"]  # tried together first, then each alone
    assert sorted(map(tuple, calls[1:])) == [("a",), ("b",), ("bad",)]
    assert stats.failed_requests == 1 and stats.requests == 2


def test_batcher_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch_texts"):
        MicroBatcher(lambda *a: [], max_batch_texts=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        MicroBatcher(lambda *a: [], max_wait_s=-1)


def test_concurrent_requests_on_a_real_model_match_one_at_a_time(lively_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(lively_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(lively_model_dir)
    ner = OpenNER.from_model(model, tokenizer, max_new_tokens=12)
    texts = ["Barack Obama visited Paris in 2009 .", "张三在北京工作。", "Paris Paris and Rome"]
    labels = ["person", "location"]
    expected = [ner.predict_entities(text, labels) for text in texts]

    with TestClient(create_app(ner, max_wait_ms=300)) as client:
        results: dict[int, list] = {}

        def ask(index: int) -> None:
            response = client.post("/v1/extract", json={"text": texts[index], "labels": labels})
            results[index] = response.json()["entities"]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        health = client.get("/health").json()
    assert [results[i] for i in range(len(texts))] == expected
    assert health["requests"] == 3
    assert health["batches"] < 3  # at least two of the three were answered together
    for text, entities in zip(texts, expected, strict=True):
        for entity in entities:
            assert text[entity["start"] : entity["end"]] == entity["text"]


def test_cli_serve_loads_the_model_and_serves_it(monkeypatch, lively_model_dir: Path) -> None:
    import uvicorn

    from raitner.cli import main

    served = {}

    def fake_run(app, host, port, log_level):  # instead of binding a port
        served.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    code = main(
        ["serve", "--model", str(lively_model_dir), "--port", "8123", "--max-new-tokens", "8"]
    )
    assert code == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.batcher.max_batch_texts == 32
    with TestClient(served["app"]) as client:
        info = client.get("/v1/model").json()
        assert info["model"] == str(lively_model_dir)
        assert info["batch_size"] == 64  # serve's own default: wide forwards
        response = client.post("/v1/extract", json={"text": "Paris and Rome", "labels": ["city"]})
        assert response.status_code == 200


def test_cli_serve_refuses_a_missing_model(capsys, tmp_path: Path) -> None:
    from raitner.cli import main

    assert main(["serve", "--model", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
