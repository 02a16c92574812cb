"""Counters a reader fills in while it reads, so that repairs are reported, never silent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ReadStats:
    examples: int = 0
    entities: int = 0
    #: I-/M-/E- tags that did not continue a span of their type and so opened a new one.
    repaired_tags: int = 0
    #: listed mentions that could not be found in their text (dropped, see ``io.mentions``).
    unfound_mentions: int = 0
    #: mentions whose offsets took in spaces at either end, trimmed to the mention (span JSONL).
    trimmed_spans: int = 0
    #: mentions whose offsets missed their stated text, moved to its nearest occurrence.
    realigned_spans: int = 0
    #: records skipped with the reason as key (e.g. empty text).
    skipped: dict[str, int] = field(default_factory=dict)
    #: tables (Parquet, Arrow): the column the tags were read from, and the other columns that
    #: look like tags (``fine_ner_tags``, ``pos_tags``), which ``FILE:COLUMN`` would read.
    tag_column: str | None = None
    other_tag_columns: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict:
        return asdict(self)
