"""Score several ``raitner eval`` runs of the same texts as one, by a vote over their mentions.

    python tools/vote_runs.py runs/seed2-full runs/seed1-full -o runs/seeds-agree \\
        --close-lists --data-root ../shared/data
    raitner compare runs/seed2-full runs/seeds-agree

Each question (text, type) gets, as its answer, the mentions that at least ``--min-votes`` of
the runs answered (default: more than half of them; with two runs, both), voted as ``raitner
extract --vote-with`` votes (:func:`raitner.infer.voting.vote_answers`): each answer read as
the predictor reads it, each mention normalised as the list metric does (case, ASCII
punctuation, articles), so ``"The Beatles"`` and ``"beatles"`` are one vote; an answer with no
list votes for nothing. The voted answer is a JSON list, in the order the runs gave the
mentions, each in the surface form of the first run that answered it.

The runs must be free runs of the same benchmark texts (same split, subset and types). With
``--close-lists`` every answer is first ended as ``raitner eval --close-lists`` would have
decoded it; ``--drop-unaligned`` then keeps only the mentions found in the text. This writes
``text_counts.json`` (UniNER and RA-IT list metrics per text, which ``raitner compare`` reads)
and ``report.md`` (per benchmark: each run's UniNER F1 and the vote's, with precision and
recall) under ``-o``. Span F1 is not scored: it needs the predictor's aligned entities.

A vote needs every run's generation, so it costs as many passes over the texts as runs.
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


def _finished_benchmarks(run: Path) -> dict[str, Path]:
    return {
        path.stem: path
        for path in sorted((run / "predictions").glob("*.jsonl"))
        if path.name.count(".") == 1  # not the constrained answers, not a journal
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="raitner eval output folders (free)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--min-votes", type=int, help="default: more than half of the runs")
    parser.add_argument("--data-root", help="the benchmarks' data root (default: $RAITNER_DATA)")
    parser.add_argument("--close-lists", action="store_true", help="end each answer first")
    parser.add_argument(
        "--drop-unaligned",
        action="store_true",
        help="then keep only the mentions found in the text, as raitner eval --drop-unaligned",
    )
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs to vote")
    from raitner.infer.voting import majority

    min_votes = majority(len(args.runs)) if args.min_votes is None else args.min_votes
    if not 1 <= min_votes <= len(args.runs):
        parser.error(f"--min-votes must be between 1 and {len(args.runs)}, got {min_votes}")

    from raitner.atomic import atomic_write
    from raitner.evaluate.metrics import ra_it_f1, uniner_f1
    from raitner.evaluate.runner import TEXT_COUNTS_FILE, per_text_counts, seeded_subset
    from raitner.evaluate.unaligned import drop_unaligned
    from raitner.infer.list_ending import end_list
    from raitner.infer.voting import vote_answers
    from raitner.io.registry import get_benchmark

    finished = [_finished_benchmarks(run) for run in args.runs]
    for run, found in zip(args.runs, finished, strict=True):
        if not found:
            sys.exit(f"{run}/predictions: no finished benchmark")
    benchmarks = sorted(set.intersection(*(set(found) for found in finished)))
    if not benchmarks:
        sys.exit("the runs have no finished benchmark in common")

    counts: dict[str, dict] = {}
    rows = []
    for benchmark in benchmarks:
        loaded = [_read_predictions(found[benchmark]) for found in finished]
        settings = loaded[0][0]["settings"]
        for (header, _), found in zip(loaded, finished, strict=True):
            path = found[benchmark]
            if header["settings"].get("close_lists"):
                sys.exit(f"{path}: decoded with close_lists; vote over free runs")
            if header["settings"].get("constrained"):
                sys.exit(f"{path}: constrained answers; vote over free runs")
            for key in ("split", "limit", "seed", "exclude_types"):
                if header["settings"].get(key) != settings.get(key):
                    sys.exit(
                        f"{path}: {key} is {header['settings'].get(key)!r}, but "
                        f"{finished[0][benchmark]} has {settings.get(key)!r}"
                    )
        spec = get_benchmark(benchmark)
        types = [t for t in spec.types if t not in settings["exclude_types"]]
        golds = seeded_subset(
            spec.load(settings["split"], args.data_root), settings["limit"], settings["seed"]
        )
        for (_, records), found in zip(loaded, finished, strict=True):
            if [r["id"] for r in records] != [g.id for g in golds]:
                sys.exit(f"{found[benchmark]}: the saved texts are not the {benchmark} texts")

        per_run: list[list[str]] = [[] for _ in args.runs]
        voted, gold_lists, query_types = [], [], []
        for index, example in enumerate(golds):
            text = loaded[0][1][index]["text"]
            run_answers = []
            for _, records in loaded:
                answers = {label: records[index]["answers"].get(label, "") for label in types}
                if args.close_lists:
                    answers = {label: end_list(answer) for label, answer in answers.items()}
                run_answers.append(answers)
            combined = {
                label: vote_answers([answers[label] for answers in run_answers], min_votes)
                for label in types
            }
            if args.drop_unaligned:
                run_answers = [drop_unaligned(text, answers)[0] for answers in run_answers]
                combined = drop_unaligned(text, combined)[0]
            for label in types:
                for column, answers in zip(per_run, run_answers, strict=True):
                    column.append(answers[label])
                voted.append(combined[label])
                gold_lists.append(example.mentions(label))
                query_types.append(label)
        scores = {
            "uniner": uniner_f1(voted, gold_lists, query_types),
            "ra_it": ra_it_f1(voted, gold_lists, query_types),
        }
        counts[benchmark] = {
            "texts": [g.id for g in golds],
            **per_text_counts(scores, len(golds), len(types)),
        }
        singles = [uniner_f1(column, gold_lists, query_types) for column in per_run]
        rows.append((benchmark, singles, scores["uniner"]))

    def cell(result) -> str:
        return f"{100 * result.f1:.2f} ({100 * result.precision:.1f} / {100 * result.recall:.1f})"

    options = (" --close-lists" if args.close_lists else "") + (
        " --drop-unaligned" if args.drop_unaligned else ""
    )
    names = [str(run) for run in args.runs]
    lines = [
        f"# {len(args.runs)} runs voted: a mention kept when at least {min_votes} answer it",
        "",
        f"`python tools/vote_runs.py {' '.join(names)} -o {args.output}"
        + (f" --min-votes {args.min_votes}" if args.min_votes is not None else "")
        + (f" --data-root {args.data_root}" if args.data_root else "")
        + f"{options}`",
        "",
        "UniNER F1 (precision / recall), %"
        + (", answers ended as with close_lists" if args.close_lists else "")
        + (", mentions not in the text dropped" if args.drop_unaligned else ""),
        "",
        "| benchmark | " + " | ".join(names) + " | vote |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for name, singles, result in rows:
        lines.append(f"| {name} | " + " | ".join(map(cell, [*singles, result])) + " |")
    averages = [sum(100 * row[1][i].f1 for row in rows) / len(rows) for i in range(len(names))] + [
        sum(100 * row[2].f1 for row in rows) / len(rows)
    ]
    lines.append("| **average** | " + " | ".join(f"{a:.2f}" for a in averages) + " |")
    report = "\n".join(lines) + "\n"
    args.output.mkdir(parents=True, exist_ok=True)
    label = f"vote of {len(names)} runs (at least {min_votes}{options})"
    with atomic_write(args.output / TEXT_COUNTS_FILE) as handle:
        json.dump({"model": label, "decodings": {"free": counts}}, handle)
        handle.write("\n")
    with atomic_write(args.output / "report.md") as handle:
        handle.write(report)
    print(report, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
