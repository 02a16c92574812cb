"""Batch prediction over a Ray cluster: one model per worker, texts spread over the workers.

``raitner predict --ray-workers N`` (``pip install 'raitner[ray]'``) hands the texts to a Ray
Data pipeline whose ``N`` actors each load the model once, with the same loader options as a
one-process run (``backend="vllm"`` included: give each worker a GPU with
``gpus_per_worker=1``), and answer blocks of ``block_texts`` whole texts. All questions of a
text go to one worker, so the shared prompt prefix is computed once (``hf-prefix``) or found in
vLLM's prefix cache. On one machine Ray is started locally; ``address`` joins a running
cluster, whose nodes must all reach the model and the pool file by the same path.

Answered blocks stream back to the driver, which appends them to a journal as they arrive
(one JSON line per text): an interrupted run, started again with the same inputs and settings,
sends only the texts not yet answered. A journal written for other texts or settings is set
aside and started afresh. The records come back in input order once all are in, and are the
ones a one-process run writes (:meth:`TextPrediction.to_record`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from raitner.io.jsonl import complete_lines

_JOURNAL_VERSION = 1


class NERWorker:
    """A Ray Data actor: loads an OpenNER and answers blocks of texts."""

    def __init__(self, model: str | None, options: dict[str, Any], examples: str | None) -> None:
        from raitner.api import OpenNER

        self.ner = OpenNER.from_pretrained(model, **options)
        self.examples = examples

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        rows = [json.loads(payload) for payload in batch["payload"]]
        predictions = self.ner.predict(
            [row["text"] for row in rows],
            [row["labels"] for row in rows],
            examples=self.examples,
        )
        records = [
            json.dumps(prediction.to_record(self.ner.template), ensure_ascii=False)
            for prediction in predictions
        ]
        return {"index": [int(i) for i in batch["index"]], "record": records}


def settings_fingerprint(
    rows: Sequence[dict[str, Any]], model: str | None, options: dict[str, Any], examples: Any
) -> str:
    """A digest of the texts, their labels and everything that decides their answers."""
    digest = hashlib.sha256()
    header = [model, sorted((k, repr(v)) for k, v in options.items()), examples]
    digest.update(json.dumps(header, default=str).encode())
    for row in rows:
        digest.update(b"\x1e")
        digest.update(json.dumps([row["text"], list(row["labels"])], ensure_ascii=False).encode())
    return digest.hexdigest()


class RecordJournal:
    """Records of answered texts, one JSON line each after a header with the fingerprint."""

    def __init__(self, path: str | Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.records: dict[int, dict[str, Any]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            self._start()
            return
        lines = complete_lines(self.path)
        try:
            header = json.loads(lines[0])
        except (ValueError, IndexError):
            header = None
        if not isinstance(header, dict) or header.get("fingerprint") != self.fingerprint:
            self._start()  # another run's journal: not mixed in
            return
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                self.records[int(entry["index"])] = entry["record"]
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: that text is answered again

    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = {"ray_journal": _JOURNAL_VERSION, "fingerprint": self.fingerprint}
        self.path.write_text(json.dumps(header) + "\n", encoding="utf-8")

    def add(self, indices: Sequence[int], records: Sequence[dict[str, Any]]) -> None:
        lines = []
        for index, record in zip(indices, records, strict=True):
            self.records[int(index)] = record
            lines.append(json.dumps({"index": int(index), "record": record}, ensure_ascii=False))
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def predict_with_ray(
    rows: Sequence[dict[str, Any]],
    *,
    model: str | None,
    options: dict[str, Any],
    examples: str | None = None,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    block_texts: int = 16,
    journal_path: str | Path | None = None,
    address: str | None = None,
    on_texts: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """``(records in input order, how many came from the journal)`` for ``rows``
    (``{"text", "labels"}`` dicts); see the module notes. ``options`` go to
    :meth:`OpenNER.from_pretrained` in each worker; ``on_texts(n)`` is called as blocks of ``n``
    texts are answered (journalled ones included, at the start)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if block_texts < 1:
        raise ValueError(f"block_texts must be at least 1, got {block_texts}")
    journal = None
    if journal_path is not None:
        fingerprint = settings_fingerprint(rows, model, options, examples)
        journal = RecordJournal(journal_path, fingerprint)
    done = journal.records if journal is not None else {}
    resumed = len(done)
    if on_texts and resumed:
        on_texts(resumed)
    todo = [index for index in range(len(rows)) if index not in done]
    records: dict[int, dict[str, Any]] = dict(done)
    if todo:
        try:
            import ray
        except ImportError as err:
            raise ImportError("--ray-workers needs Ray: pip install 'raitner[ray]'") from err
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=address, include_dashboard=False, logging_level="warning")
        try:
            items = [
                {
                    "index": index,
                    "payload": json.dumps(
                        {"text": rows[index]["text"], "labels": list(rows[index]["labels"])},
                        ensure_ascii=False,
                    ),
                }
                for index in todo
            ]
            answered = ray.data.from_items(items).map_batches(
                NERWorker,
                fn_constructor_kwargs={"model": model, "options": options, "examples": examples},
                batch_size=block_texts,
                batch_format="numpy",
                concurrency=min(workers, len(todo)),
                num_gpus=gpus_per_worker,
                num_cpus=cpus_per_worker,
            )
            for batch in answered.iter_batches(batch_size=None, batch_format="numpy"):
                indices = [int(i) for i in batch["index"]]
                block = [json.loads(record) for record in batch["record"]]
                if journal is not None:
                    journal.add(indices, block)
                records.update(zip(indices, block, strict=True))
                if on_texts:
                    on_texts(len(indices))
        finally:
            if started_here:
                ray.shutdown()
    missing = [index for index in range(len(rows)) if index not in records]
    if missing:
        raise RuntimeError(
            f"{len(missing)} texts came back without an answer (first: {missing[0]})"
        )
    return [records[index] for index in range(len(rows))], resumed
