"""The teacher: an LLM behind an OpenAI-compatible chat API, and a cache of its answers.

:class:`OpenAITeacher` talks to ``/v1/chat/completions`` through the ``openai`` package
(``pip install 'raitner[distill]'``), which retries rate limits and server errors with
back-off. ``base_url`` points it at any compatible server (``vllm serve``, llama.cpp's
``llama-server``, a hosted API); greedy decoding (``temperature=0``) is the default, so that an
answer can be cached and a rerun gives the same data.

:class:`TeacherCache` is a JSON-lines file with one line per answer, appended and flushed as
each answer arrives: an interrupted run loses nothing it has paid for, and a rerun (another
sample, other filters) asks only what the cache lacks. An answer is keyed by the teacher's
settings (model, temperature, token limit) and the exact messages, so a change of prompt or
model never reuses an answer given to something else. A last line cut off by a crash is dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from raitner.errors import RaitnerError
from raitner.io.jsonl import complete_lines

Messages = Sequence[dict[str, str]]


class TeacherError(RaitnerError):
    """The teacher could not be asked (connection, authentication, unknown model …)."""


class Teacher(Protocol):
    #: how the teacher is named in the output's ``meta["teachers"]``
    name: str

    def settings(self) -> dict[str, Any]:
        """Everything besides the messages that decides an answer (for the cache key)."""
        ...

    def complete(self, messages: Messages) -> str:
        """The assistant's reply to ``messages``."""
        ...


class OpenAITeacher:
    """A chat model behind an OpenAI-compatible API.

    ``api_key``: default ``$OPENAI_API_KEY``; a local server (``base_url`` given) that needs
    none gets a placeholder. ``base_url``: default ``$OPENAI_BASE_URL``, else OpenAI's.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        max_retries: int = 5,
    ) -> None:
        try:
            from openai import OpenAI
        except ImportError as err:
            raise TeacherError(
                "asking a teacher needs the openai package: pip install 'raitner[distill]'"
            ) from err
        self.name = model
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if not self.base_url:
                raise TeacherError(
                    "no API key for the teacher: set OPENAI_API_KEY (or name another variable "
                    "with --api-key-env), or point --base-url at a server that needs none"
                )
            api_key = "none"
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._client = OpenAI(
            api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=max_retries
        )

    def settings(self) -> dict[str, Any]:
        return {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}

    def complete(self, messages: Messages) -> str:
        import openai

        try:
            response = self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
        except openai.APIError as err:
            where = self.base_url or "the OpenAI API"
            raise TeacherError(f"teacher {self.model!r} at {where}: {err}") from err
        if not response.choices:
            raise TeacherError(f"teacher {self.model!r} returned no choices")
        return response.choices[0].message.content or ""


def answer_key(settings: dict[str, Any], messages: Messages) -> str:
    """The cache key of one question to one teacher."""
    payload = json.dumps([settings, list(messages)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TeacherCache:
    """Teacher answers kept in a JSON-lines file (see the module notes); thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._answers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._load()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> str | None:
        return self._answers.get(key)

    def put(self, key: str, teacher: str, answer: str) -> None:
        line = json.dumps({"key": key, "teacher": teacher, "answer": answer}, ensure_ascii=False)
        with self._lock:
            self._answers[key] = answer
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()

    def _load(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        for raw in complete_lines(self.path):
            try:
                record = json.loads(raw)
                self._answers[record["key"]] = record["answer"]
            except (ValueError, KeyError, TypeError):
                continue  # not one of ours: skipped, left in place
