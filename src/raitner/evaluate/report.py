"""Result tables like the papers': one row per method, one column per benchmark, then "Avg.".

Cells are percentages rounded to two decimals (``round(100 * x, 2)``, as the RA-IT authors'
``format_number``). "Avg." is the macro average over the row's benchmarks of the *unrounded*
scores, then rounded; it can differ from the mean of the printed cells by at most 0.005.
A benchmark a row lacks is shown as ``-`` and left out of that row's average (``n_benchmarks``
in the JSON says how many went in).

When the first row's results have per-type counts (``NERResult.per_type``), the markdown
lists each type's scores after the details ("By type").

A table may also carry ``unparseable`` (``{decoding: {benchmark: counts}}``, written by the
evaluation runner): the markdown then ends with the unparseable answers of each decoding; and
``errors`` (``{decoding: {benchmark: ErrorKinds.to_dict()}}``, see
:mod:`raitner.evaluate.error_kinds`): then with the predicted and gold mentions by kind; and
``dropped_unaligned`` (``{decoding: {benchmark: count}}``, see
:mod:`raitner.evaluate.unaligned`): then with the answered mentions not found in the text,
dropped before scoring.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from raitner.atomic import atomic_write
from raitner.evaluate.metrics import NERResult

AVG_COLUMN = "Avg."
SCORES = ("precision", "recall", "f1")
_METRIC_NAMES = {"precision": "Precision", "recall": "Recall", "f1": "F1"}

ResultLike = NERResult | Mapping[str, Any]


def percent(value: float) -> float:
    """A fraction as a percentage with two decimals: ``0.55796 → 55.8``."""
    return round(100 * value, 2)


def _as_result(result: ResultLike) -> NERResult:
    return result if isinstance(result, NERResult) else NERResult.from_dict(result)


def macro_average(results: Mapping[str, ResultLike], metric: str = "f1") -> float:
    """Mean of the benchmarks' unrounded ``metric`` (a fraction in [0, 1])."""
    if metric not in SCORES:
        raise ValueError(f"metric must be one of {', '.join(SCORES)}, got {metric!r}")
    if not results:
        raise ValueError("no results to average")
    values = [getattr(_as_result(result), metric) for result in results.values()]
    return sum(values) / len(values)


def build_table(
    rows: Mapping[str, Mapping[str, ResultLike]], *, metric: str = "f1"
) -> dict[str, Any]:
    """A JSON-ready table from ``{row name: {benchmark: result}}``.

    Columns are the benchmarks in first-seen order, then ``Avg.``; each row keeps its scores
    in percent and its full results (``NERResult.to_dict``) under ``results``.
    """
    if metric not in SCORES:
        raise ValueError(f"metric must be one of {', '.join(SCORES)}, got {metric!r}")
    if not rows:
        raise ValueError("no rows for the table")
    benchmarks: dict[str, None] = {}
    table_rows: list[dict[str, Any]] = []
    for name, results in rows.items():
        parsed = {bench: _as_result(result) for bench, result in results.items()}
        benchmarks.update(dict.fromkeys(parsed))
        table_rows.append(
            {
                "name": name,
                "scores": {bench: percent(getattr(r, metric)) for bench, r in parsed.items()},
                "avg": percent(macro_average(parsed, metric)) if parsed else None,
                "n_benchmarks": len(parsed),
                "results": {bench: r.to_dict() for bench, r in parsed.items()},
            }
        )
    return {
        "metric": metric,
        "unit": "percent",
        "average": "macro mean of unrounded per-benchmark scores",
        "columns": [*benchmarks, AVG_COLUMN],
        "rows": table_rows,
    }


def average_table(
    results: Mapping[str, ResultLike], *, name: str = "raitner", metric: str = "f1"
) -> dict[str, Any]:
    """:func:`build_table` for one method: ``{benchmark: result}`` → one row plus Avg."""
    return build_table({name: results}, metric=metric)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(table: Mapping[str, Any], *, title: str | None = None) -> str:
    """The table in markdown, then a details table (P/R/F1 and counts per benchmark)."""
    columns: list[str] = list(table["columns"])
    benchmarks = [c for c in columns if c != AVG_COLUMN]
    lines: list[str] = []
    if title:
        lines += [f"# {title}", ""]
    lines.append(f"{_METRIC_NAMES.get(table['metric'], table['metric'])} (%)")
    lines.append("")
    lines.append("| Method | " + " | ".join(_escape(c) for c in columns) + " |")
    lines.append("|---|" + "---:|" * len(columns))
    for row in table["rows"]:
        cells = [_cell(row["scores"].get(bench)) for bench in benchmarks] + [_cell(row["avg"])]
        lines.append(f"| {_escape(row['name'])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Details",
        "",
        "| Method | Benchmark | Metric | P | R | F1 | Queries | Pred | Gold | TP | Unparseable |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table["rows"]:
        for bench in benchmarks:
            if bench not in row["results"]:
                continue
            result = row["results"][bench]
            scores = [_cell(percent(result[key])) for key in SCORES]
            counts = [
                str(result[key]) for key in ("n_queries", "n_pred", "n_gold", "tp", "n_unparseable")
            ]
            lines.append(
                f"| {_escape(row['name'])} | {_escape(bench)} | {result['metric']} | "
                + " | ".join(scores + counts)
                + " |"
            )
    lines += _by_type_lines(table["rows"][0], benchmarks)
    if table.get("unparseable"):
        lines += _unparseable_lines(table["unparseable"])
    if table.get("errors"):
        lines += _error_lines(table["errors"])
    if table.get("dropped_unaligned"):
        lines += _dropped_lines(table["dropped_unaligned"])
    return "\n".join(lines) + "\n"


def _by_type_lines(row: Mapping[str, Any], benchmarks: list[str]) -> list[str]:
    """Each type's scores in the first row's results, types by their gold mentions."""
    if not any(row["results"].get(bench, {}).get("per_type") for bench in benchmarks):
        return []
    lines = _section_head(
        "By type",
        f"{_escape(row['name'])}, each type asked: its precision, recall and F1 (%) and "
        "counts, the types in order of their gold mentions.",
        ["Benchmark", "Type", "P", "R", "F1", "Pred", "Gold", "TP"],
        numeric=range(2, 8),
    )
    for bench in benchmarks:
        per_type = row["results"].get(bench, {}).get("per_type") or {}
        ordered = sorted(per_type.items(), key=lambda item: (-item[1]["n_gold"], item[0]))
        for label, counts in ordered:
            scores = [_cell(percent(counts[key])) for key in SCORES]
            numbers = [str(counts[key]) for key in ("n_pred", "n_gold", "tp")]
            lines.append(
                f"| {_escape(bench)} | {_escape(label)} | " + " | ".join(scores + numbers) + " |"
            )
    return lines


#: Rows of the unparseable-answers section: (key in the counts, reader, out of which key).
_READERS = (
    ("uniner", "UniNER rule", "queries"),
    ("ra_it", "RA-IT rule", "queries"),
    ("lenient", "lenient parser", "answers"),
)


def _section_head(title: str, note: str, columns: list[str], numeric: range) -> list[str]:
    """A report section's heading, note and table header; the ``numeric`` columns are
    right-aligned."""
    alignment = ["---:" if i in numeric else "---" for i in range(len(columns))]
    return [
        "",
        f"## {title}",
        "",
        note,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(alignment) + "|",
    ]


def _unparseable_lines(unparseable: Mapping[str, Mapping[str, Mapping[str, int]]]) -> list[str]:
    benchmarks = list(dict.fromkeys(b for counts in unparseable.values() for b in counts))
    lines = _section_head(
        "Unparseable answers",
        "Answers from which no list could be read: the papers' rules score them as empty, the "
        "lenient parser of inference reads no entity from them. Each cell: unparseable / asked.",
        ["Decoding", "Reader", *(_escape(b) for b in benchmarks), "Total"],
        numeric=range(2, len(benchmarks) + 3),
    )
    for decoding, per_benchmark in unparseable.items():
        for key, reader, total_key in _READERS:
            cells = []
            for bench in benchmarks:
                counts = per_benchmark.get(bench)
                cells.append("-" if counts is None else f"{counts[key]} / {counts[total_key]}")
            found = sum(counts[key] for counts in per_benchmark.values())
            asked = sum(counts[total_key] for counts in per_benchmark.values())
            lines.append(
                f"| {_escape(decoding)} | {reader} | "
                + " | ".join(cells)
                + f" | {found} / {asked} |"
            )
    return lines


def _dropped_lines(dropped: Mapping[str, Mapping[str, int]]) -> list[str]:
    benchmarks = list(dict.fromkeys(b for counts in dropped.values() for b in counts))
    lines = _section_head(
        "Mentions not in the text",
        "Answered mentions found nowhere in the text (the aligner's rule: exact, then ignoring "
        "case, then whitespace) were dropped before scoring, as the predictor drops them from "
        "its entities; the papers score every answered string. Mentions dropped:",
        ["Decoding", *(_escape(b) for b in benchmarks), "Total"],
        numeric=range(1, len(benchmarks) + 2),
    )
    for decoding, per_benchmark in dropped.items():
        cells = [str(per_benchmark.get(bench, "-")) for bench in benchmarks]
        total = sum(per_benchmark.values())
        lines.append(f"| {_escape(decoding)} | " + " | ".join(cells) + f" | {total} |")
    return lines


#: confusions named per benchmark in the markdown (report.json keeps them all)
_CONFUSIONS_SHOWN = 3


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.1f} %)" if whole else str(part)


def _error_lines(errors: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    lines = _section_head(
        "Errors by kind",
        "Mentions read by the UniNER rule. A predicted mention is a true positive, gold for "
        "another asked type of the same text (wrong type) or gold for none of them (not gold); "
        "a gold mention not predicted for its type is missed. Shares: of the predicted "
        "mentions, and of the gold ones for missed.",
        [
            "Decoding",
            "Benchmark",
            *("Predicted", "TP", "Wrong type", "Not gold", "Gold", "Missed"),
            "Most confused (gold → answered)",
        ],
        numeric=range(2, 8),
    )
    for decoding, per_benchmark in errors.items():
        for bench, kinds in per_benchmark.items():
            confused = "; ".join(
                f"{_escape(c['gold'])} → {_escape(c['answered'])} ({c['count']})"
                for c in kinds["confusions"][:_CONFUSIONS_SHOWN]
            )
            n_pred, n_gold = kinds["n_pred"], kinds["n_gold"]
            cells = [
                str(n_pred),
                _share(kinds["tp"], n_pred),
                _share(kinds["wrong_type"], n_pred),
                _share(kinds["not_gold"], n_pred),
                str(n_gold),
                _share(kinds["missed"], n_gold),
                confused or "-",
            ]
            lines.append(f"| {_escape(decoding)} | {_escape(bench)} | " + " | ".join(cells) + " |")
    return lines


def write_report(
    table: Mapping[str, Any], out_dir: str | Path, *, stem: str = "report", title: str | None = None
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json`` into ``out_dir`` atomically; return both paths."""
    directory = Path(out_dir)
    markdown_path = directory / f"{stem}.md"
    json_path = directory / f"{stem}.json"
    with atomic_write(json_path) as handle:
        json.dump(table, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    with atomic_write(markdown_path) as handle:
        handle.write(render_markdown(table, title=title))
    return markdown_path, json_path
