"""Rescore a ``raitner eval`` folder as if its answers had been decoded with ``close_lists``.

    python tools/end_lists.py runs/default-full -o runs/default-full-close-lists \\
        --data-root ../shared/data
    raitner compare runs/default-full runs/default-full-close-lists

Greedy decoding with ``close_lists`` answers exactly :func:`raitner.infer.list_ending.end_list`
of the answer decoded without it (the row only stops earlier; the backends' tests check the
identity), so a free run's saved answers give the option's list-metric scores without
generating again. This writes ``text_counts.json`` (the UniNER and RA-IT list metrics per
text, which ``raitner compare`` reads) and ``report.md`` (per benchmark: answers ended, F1 as
saved and ended) under ``-o``. ``--drop-unaligned`` scores both, as saved and ended, with
only the mentions found in the text (``raitner eval --drop-unaligned``'s rescoring). Span F1
is not rescored: it needs the entities the predictor aligns from each answer; run
``raitner eval --close-lists`` for it (and for the time saved).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _read_predictions(path: Path) -> tuple[dict, list[dict]]:
    with path.open(encoding="utf-8") as handle:
        header = json.loads(handle.readline() or "{}")
        records = [json.loads(line) for line in handle if line.strip()]
    if "settings" not in header:
        sys.exit(f"{path}: line 1 is not a raitner eval header (no 'settings')")
    return header, records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a raitner eval output folder (free decoding)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--data-root", help="the benchmarks' data root (default: $RAITNER_DATA)")
    parser.add_argument(
        "--drop-unaligned",
        action="store_true",
        help="then score only the mentions found in the text, as raitner eval --drop-unaligned",
    )
    args = parser.parse_args(argv)

    from raitner.atomic import atomic_write
    from raitner.evaluate.metrics import ra_it_f1, uniner_f1
    from raitner.evaluate.runner import TEXT_COUNTS_FILE, per_text_counts, seeded_subset
    from raitner.evaluate.unaligned import drop_unaligned
    from raitner.infer.list_ending import end_list
    from raitner.io.registry import get_benchmark

    files = sorted(
        path
        for path in (args.run / "predictions").glob("*.jsonl")
        if path.name.count(".") == 1  # not the constrained answers, not a journal
    )
    if not files:
        sys.exit(f"{args.run}/predictions: no finished benchmark to rescore")
    counts: dict[str, dict] = {}
    rows = []
    model = None
    for path in files:
        header, records = _read_predictions(path)
        settings = header["settings"]
        if settings.get("close_lists"):
            sys.exit(f"{path}: these answers were decoded with close_lists already")
        if settings.get("constrained"):
            sys.exit(f"{path}: constrained answers; rescore a free run")
        benchmark = settings["benchmark"]
        model = settings.get("model") or model
        spec = get_benchmark(benchmark)
        types = [t for t in spec.types if t not in settings["exclude_types"]]
        golds = seeded_subset(
            spec.load(settings["split"], args.data_root), settings["limit"], settings["seed"]
        )
        if [r["id"] for r in records] != [g.id for g in golds]:
            sys.exit(f"{path}: the saved texts are not the {benchmark} texts of its settings")
        saved, ended, gold_lists, query_types = [], [], [], []
        for example, record in zip(golds, records, strict=True):
            as_saved = {label: record["answers"].get(label, "") for label in types}
            as_ended = {label: end_list(answer) for label, answer in as_saved.items()}
            if args.drop_unaligned:
                as_saved = drop_unaligned(record["text"], as_saved)[0]
                as_ended = drop_unaligned(record["text"], as_ended)[0]
            for label in types:
                saved.append(as_saved[label])
                ended.append(as_ended[label])
                gold_lists.append(example.mentions(label))
                query_types.append(label)
        before = uniner_f1(saved, gold_lists, query_types)
        scores = {
            "uniner": uniner_f1(ended, gold_lists, query_types),
            "ra_it": ra_it_f1(ended, gold_lists, query_types),
        }
        counts[benchmark] = {
            "texts": [g.id for g in golds],
            **per_text_counts(scores, len(golds), len(types)),
        }
        changed = sum(a != b for a, b in zip(saved, ended, strict=True))
        rows.append((benchmark, len(saved), changed, 100 * before.f1, 100 * scores["uniner"].f1))

    lines = [
        f"# {args.run} rescored with close_lists (list metrics only"
        + (", mentions not in the text dropped)" if args.drop_unaligned else ")"),
        "",
        f"`python tools/end_lists.py {args.run} -o {args.output}"
        + (f" --data-root {args.data_root}" if args.data_root else "")
        + (" --drop-unaligned`" if args.drop_unaligned else "`"),
        "",
        "| benchmark | answers | ended | UniNER F1 as saved | with close_lists | Δ |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, n, changed, before_f1, after_f1 in rows:
        delta = after_f1 - before_f1
        lines.append(
            f"| {name} | {n} | {changed} | {before_f1:.2f} | {after_f1:.2f} | {delta:+.2f} |"
        )
    average_before = sum(row[3] for row in rows) / len(rows)
    average_after = sum(row[4] for row in rows) / len(rows)
    lines.append(
        f"| **average** | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | "
        f"{average_before:.2f} | {average_after:.2f} | {average_after - average_before:+.2f} |"
    )
    report = "\n".join(lines) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.output / TEXT_COUNTS_FILE) as handle:
        json.dump({"model": f"{model} (close_lists)", "decodings": {"free": counts}}, handle)
        handle.write("\n")
    with atomic_write(args.output / "report.md") as handle:
        handle.write(report)
    print(report, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
