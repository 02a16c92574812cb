"""Scoring: the papers' list F1 (UniversalNER and RA-IT rules), strict span F1, and reports.

Imports only the standard library (no torch).
"""

from __future__ import annotations

from raitner.evaluate.metrics import (
    RA_IT,
    RULES,
    SPAN,
    UNINER,
    Counts,
    NERResult,
    ParsedAnswer,
    ParseStatus,
    clean_uniner_response,
    conversation_golds,
    list_f1,
    normalize_answer,
    parse_answer,
    ra_it_f1,
    reference_scores,
    span_f1,
    uniner_f1,
)
from raitner.evaluate.report import (
    average_table,
    build_table,
    macro_average,
    percent,
    render_markdown,
    write_report,
)

__all__ = [
    "RA_IT",
    "RULES",
    "SPAN",
    "UNINER",
    "Counts",
    "NERResult",
    "ParseStatus",
    "ParsedAnswer",
    "average_table",
    "build_table",
    "clean_uniner_response",
    "conversation_golds",
    "list_f1",
    "macro_average",
    "normalize_answer",
    "parse_answer",
    "percent",
    "ra_it_f1",
    "reference_scores",
    "render_markdown",
    "span_f1",
    "uniner_f1",
    "write_report",
]
