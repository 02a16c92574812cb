"""The HTTP face of raitner: one loaded :class:`~raitner.api.OpenNER` behind a FastAPI app.

``raitner serve`` runs it with uvicorn (``pip install 'raitner[serve]'``)::

    POST /v1/extract        {"text": "...", "labels": ["person", "location"]}
    POST /v1/extract/batch  {"texts": ["...", "..."], "labels": [...] or one list per text}
    GET  /v1/model          what is loaded and how it decodes
    GET  /health            liveness, and how many requests and batches were served

Entities come in GLiNER's shape, as from :meth:`OpenNER.predict_entities` (character offsets,
``end`` exclusive). Requests that arrive within ``max_wait_ms`` of each other are answered by
one predictor call of up to ``max_batch_texts`` texts (:class:`MicroBatcher`): the backend then
batches the questions of all of them, which is where a CPU or GPU gets its throughput. One
worker runs the model, so it is never called from two threads at once.

This module imports FastAPI at the top; nothing in the library imports it (``cli`` does, for
``raitner serve`` only).
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

try:
    from fastapi import FastAPI, HTTPException
    from pydantic import BaseModel, Field, field_validator
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the raitner server needs FastAPI and uvicorn: pip install 'raitner[serve]'"
    ) from err

from raitner.errors import RaitnerError

__all__ = ["MicroBatcher", "create_app"]

LOG = logging.getLogger("raitner.server")

DEFAULT_MAX_BATCH_TEXTS = 32
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_TEXTS_PER_REQUEST = 256


class RequestError(RaitnerError, ValueError):
    """A request the model cannot answer as asked (answered with HTTP 400)."""


def _check_labels(labels: list[str]) -> list[str]:
    if not labels:
        raise ValueError("at least one entity type is needed")
    cleaned = [label.strip() for label in labels]
    if any(not label for label in cleaned):
        raise ValueError("entity types must be non-empty strings")
    return cleaned


class _Options(BaseModel):
    examples: Literal["none", "pool"] | None = Field(
        None,
        description="'pool': in-context examples retrieved from the server's pool; 'none': "
        "no examples; default: the server's --examples",
    )
    flat_ner: bool = Field(False, description="drop overlapping entities, longer first")
    answers: bool = Field(False, description="also return the model's raw answer per type")


class ExtractRequest(_Options):
    text: str
    labels: list[str] = Field(description="the entity types to find, one question each")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        return _check_labels(labels)


class BatchExtractRequest(_Options):
    texts: list[str] = Field(min_length=1)
    labels: list[str] | list[list[str]] = Field(
        description="entity types asked about every text, or one list per text"
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str] | list[list[str]]) -> list[str] | list[list[str]]:
        if labels and all(isinstance(item, list) for item in labels):
            return [_check_labels(item) for item in labels]
        return _check_labels(labels)


class EntityOut(BaseModel):
    start: int
    end: int
    text: str
    label: str


class ExtractResponse(BaseModel):
    entities: list[EntityOut]
    #: (mention, type) pairs the model answered that are not in the text
    unaligned: list[tuple[str, str]]
    answers: dict[str, str] | None = None


class BatchExtractResponse(BaseModel):
    results: list[ExtractResponse]


@dataclass
class _Job:
    texts: list[str]
    labels: list[list[str]]
    examples: str | None
    future: asyncio.Future


@dataclass
class BatchStats:
    """Counters the ``/health`` endpoint reports."""

    requests: int = 0
    texts: int = 0
    batches: int = 0
    largest_batch_texts: int = 0
    failed_requests: int = 0
    busy_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "busy_seconds": round(self.busy_seconds, 3)}


@dataclass
class MicroBatcher:
    """Gathers requests that arrive close together into one call of ``predict``.

    ``predict(texts, labels_per_text, examples)`` runs in a worker thread, one call at a time.
    A batch is closed when it holds ``max_batch_texts`` texts or ``max_wait_s`` after its first
    request; a request larger than ``max_batch_texts`` is answered alone. When a batch of
    several requests fails, each is retried alone, so one bad request fails only itself.
    """

    predict: Callable[[list[str], list[list[str]], str | None], list[Any]]
    max_batch_texts: int = DEFAULT_MAX_BATCH_TEXTS
    max_wait_s: float = DEFAULT_MAX_WAIT_MS / 1000
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        if self.max_batch_texts < 1:
            raise ValueError(f"max_batch_texts must be at least 1, got {self.max_batch_texts}")
        if self.max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {self.max_wait_s}")
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="raitner-batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))

    async def submit(
        self, texts: list[str], labels: list[list[str]], examples: str | None
    ) -> list[Any]:
        """The predictions of ``texts``, once the batch holding them has run."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(texts, labels, examples, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        carried: _Job | None = None  # a request that did not fit the last batch opens the next
        while True:
            jobs = [carried if carried is not None else await self._queue.get()]
            carried = None
            size = len(jobs[0].texts)
            deadline = loop.time() + self.max_wait_s
            while size < self.max_batch_texts:
                if not self._queue.empty():
                    job = self._queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                if size + len(job.texts) > self.max_batch_texts:
                    carried = job
                    break
                jobs.append(job)
                size += len(job.texts)
            await self._answer(jobs)

    async def _answer(self, jobs: list[_Job]) -> None:
        by_examples: dict[str | None, list[_Job]] = {}
        for job in jobs:
            by_examples.setdefault(job.examples, []).append(job)
        for examples, group in by_examples.items():
            await self._answer_group(group, examples, retry_alone=len(group) > 1)

    async def _answer_group(self, jobs: list[_Job], examples: str | None, retry_alone: bool):
        texts = [text for job in jobs for text in job.texts]
        labels = [text_labels for job in jobs for text_labels in job.labels]
        started = time.perf_counter()
        try:
            predictions = await asyncio.to_thread(self.predict, texts, labels, examples)
        except Exception as err:  # answered to the requests, not raised in the worker
            self.stats.busy_seconds += time.perf_counter() - started
            if retry_alone:
                for job in jobs:
                    await self._answer_group([job], examples, retry_alone=False)
                return
            self.stats.failed_requests += len(jobs)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        self.stats.busy_seconds += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.requests += len(jobs)
        self.stats.texts += len(texts)
        self.stats.largest_batch_texts = max(self.stats.largest_batch_texts, len(texts))
        offset = 0
        for job in jobs:
            share = predictions[offset : offset + len(job.texts)]
            offset += len(job.texts)
            if not job.future.done():  # the client may have gone away
                job.future.set_result(share)


def model_info(ner: Any, model_name: str) -> dict[str, Any]:
    """What ``GET /v1/model`` reports about the loaded model."""
    config = ner.config or {}
    pool = ner.predictor.pool
    return {
        "model": model_name,
        "base_model": config.get("base_model"),
        "template": ner.template.id,
        "lang": ner.template.lang,
        "backend": ner.backend_name,
        "constrained": ner.constrained,
        "empty_bias": ner.empty_bias,
        "close_lists": ner.close_lists,
        "vote_with": list(getattr(ner, "vote_with", [])),
        "min_votes": getattr(ner, "min_votes", None),
        "pool_examples": len(pool) if pool is not None else 0,
        "batch_size": ner.predictor.batch_size,
    }


def create_app(
    ner: Any,
    *,
    model_name: str = "model",
    max_batch_texts: int = DEFAULT_MAX_BATCH_TEXTS,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    max_texts_per_request: int = DEFAULT_MAX_TEXTS_PER_REQUEST,
    default_examples: Literal["none", "pool"] = "none",
) -> FastAPI:
    """A FastAPI app answering NER requests with ``ner`` (an :class:`~raitner.api.OpenNER`).

    ``model_name`` is what ``/v1/model`` calls it; texts longer than ``max_text_chars`` and
    requests of more than ``max_texts_per_request`` texts are refused with HTTP 413.
    ``default_examples`` answers requests that do not say whether to use the pool.
    """
    if default_examples == "pool" and ner.predictor.pool is None:
        raise ValueError("default_examples='pool' needs an OpenNER with a pool")
    from raitner import __version__

    def predict(texts: list[str], labels: list[list[str]], examples: str | None) -> list[Any]:
        return ner.predict(texts, labels, examples=examples)

    batcher = MicroBatcher(predict, max_batch_texts, max_wait_ms / 1000)
    info = model_info(ner, model_name)
    info["max_batch_texts"], info["max_wait_ms"] = max_batch_texts, max_wait_ms
    info["default_examples"] = default_examples

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="raitner",
        version=__version__,
        description="Open named entity recognition with an instruction-tuned LLM (RA-IT).",
        lifespan=lifespan,
    )
    app.state.batcher = batcher

    def check(texts: Sequence[str], labels: list[Any], examples: str) -> list[list[str]]:
        if len(texts) > max_texts_per_request:
            raise HTTPException(
                413, f"{len(texts)} texts in one request; at most {max_texts_per_request}"
            )
        for index, text in enumerate(texts):
            if len(text) > max_text_chars:
                raise HTTPException(
                    413,
                    f"text {index} has {len(text)} characters; at most {max_text_chars} "
                    f"(the server's --max-text-chars)",
                )
        if examples == "pool" and ner.predictor.pool is None:
            raise HTTPException(
                400, "examples='pool' needs a pool of examples: start the server with --pool"
            )
        if labels and isinstance(labels[0], list):
            if len(labels) != len(texts):
                raise HTTPException(
                    422, f"{len(labels)} label lists for {len(texts)} texts; give one per text"
                )
            return labels
        return [list(labels)] * len(texts)

    async def answer(texts, labels, options: _Options) -> list[ExtractResponse]:
        chosen = options.examples or default_examples
        per_text = check(texts, labels, chosen)
        examples = "pool" if chosen == "pool" else None
        try:
            predictions = await batcher.submit(list(texts), per_text, examples)
        except (RaitnerError, ValueError) as err:
            raise HTTPException(400, str(err)) from err
        except Exception as err:
            LOG.exception("prediction failed")
            raise HTTPException(500, f"prediction failed: {type(err).__name__}") from err
        return [
            ExtractResponse(
                entities=prediction.to_dicts(flat_ner=options.flat_ner),
                unaligned=prediction.unaligned,
                answers=prediction.raw_answers(ner.template) if options.answers else None,
            )
            for prediction in predictions
        ]

    @app.post("/v1/extract", response_model=ExtractResponse, response_model_exclude_none=True)
    async def extract(request: ExtractRequest) -> ExtractResponse:
        """Entities of one text, one question per entity type."""
        (result,) = await answer([request.text], request.labels, request)
        return result

    @app.post(
        "/v1/extract/batch", response_model=BatchExtractResponse, response_model_exclude_none=True
    )
    async def extract_batch(request: BatchExtractRequest) -> BatchExtractResponse:
        """Entities of several texts, in the order given."""
        return BatchExtractResponse(results=await answer(request.texts, request.labels, request))

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        """The loaded model and its decoding settings."""
        return info

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and the batcher's counters."""
        return {"status": "ok", **batcher.stats.as_dict()}

    return app
