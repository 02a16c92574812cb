"""A journal of generated answers, so that a long prediction run resumes where it stopped.

:meth:`raitner.infer.predictor.Predictor.predict` hands the backend one block of questions at
a time; with a journal, each block's answers are appended to a file (flushed and synced) as
soon as they come back. A run interrupted after 9,000 of 12,000 questions then asks only the
last 3,000 again, in the same blocks as the first run would have (the resumed part starts on
a block boundary), so the answers are the ones an uninterrupted run gives.

File layout (JSON lines): a header ``{"journal": 1, "fingerprint": …}``, then one line per
block, the JSON list of its answers. The fingerprint covers the questions themselves (every
message of every conversation, in order), ``max_new_tokens`` and whatever the caller adds as
``identity`` (the decoding settings, the model): a journal written for other questions or
settings is ignored and overwritten, never mixed in. A line cut off by a crash (the last one,
without its newline, or not valid JSON) is dropped and the file truncated before it.

The journal is scaffolding: the caller writes its real output atomically when all answers
are in, then calls :meth:`AnswerJournal.discard`. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_VERSION = 1


def questions_fingerprint(
    conversations: Sequence[Sequence[dict[str, str]]], max_new_tokens: int, identity: Any = None
) -> str:
    """A digest of the questions and of what else decides their answers."""
    digest = hashlib.sha256()
    digest.update(json.dumps([max_new_tokens, identity], sort_keys=True, default=str).encode())
    for messages in conversations:
        digest.update(b"\x1e")
        digest.update(json.dumps(list(messages), ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


class AnswerJournal:
    """Answers of earlier blocks, kept in ``path``; ``identity`` is folded into the
    fingerprint (for instance the evaluation settings)."""

    def __init__(self, path: str | Path, identity: Any = None) -> None:
        self.path = Path(path)
        self.identity = identity
        self._fingerprint: str | None = None
        self.resumed = 0

    def start(
        self, conversations: Sequence[Sequence[dict[str, str]]], max_new_tokens: int
    ) -> list[str]:
        """The answers saved for the first questions of ``conversations`` (possibly none);
        the file is left ready for :meth:`append`."""
        fingerprint = questions_fingerprint(conversations, max_new_tokens, self.identity)
        self._fingerprint = fingerprint
        answers = self._read(fingerprint, len(conversations))
        if answers is None:
            self._write_header(fingerprint)
            answers = []
        self.resumed = len(answers)
        return answers

    def append(self, answers: Sequence[str]) -> None:
        """Saves one block's answers (after :meth:`start`)."""
        if self._fingerprint is None:
            raise RuntimeError("AnswerJournal.append before start")
        line = json.dumps(list(answers), ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def discard(self) -> None:
        """Removes the file (once the answers are saved for good elsewhere)."""
        self.path.unlink(missing_ok=True)

    def _write_header(self, fingerprint: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"journal": _VERSION, "fingerprint": fingerprint}) + "\n"
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write(header)
            handle.flush()
            os.fsync(handle.fileno())

    def _read(self, fingerprint: str, limit: int) -> list[str] | None:
        """Saved answers for these questions, or None when the file is absent or belongs
        to other questions. A torn last line is cut off the file."""
        if not self.path.is_file():
            return None
        with open(self.path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if header != {"journal": _VERSION, "fingerprint": fingerprint}:
            return None
        answers: list[str] = []
        good_end = len(lines[0]) + 1
        # every complete line ends with "\n": the piece after the last "\n" is torn or empty
        for raw in lines[1:-1]:
            try:
                block = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not isinstance(block, list) or not all(isinstance(a, str) for a in block):
                break
            answers.extend(block)
            good_end += len(raw) + 1
        if good_end < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
        if len(answers) > limit:
            return None
        return answers
