"""BM25 scores of the examples an evaluation retrieved, against the texts they were retrieved for.

The ``nn_bm25`` strategies keep a retrieved example only when its BM25 score against the query
reaches a threshold (20). This reads the saved predictions of an evaluation that used plain
retrieval (``example_ids`` per question) and the pool they came from (a ``raitner reproduce``
dataset's ``examples.jsonl``, or any JSONL of examples with ``id`` and ``text``), and prints,
per predictions file, how the retrieved examples score: median, 90th percentile, maximum, and
how many reach 10 and 20. Only texts answered in one window are counted (the query is then the
whole text).

Run: ``python benchmarks/bm25_of_retrieved_examples.py --pool POOL.jsonl PREDICTIONS.jsonl ...``
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True, help="JSONL of the pool's examples (id, text)")
    parser.add_argument("--lang", default=None, help="language of the texts (default: the pool's)")
    parser.add_argument("predictions", nargs="+", help="an evaluation's predictions JSONL files")
    args = parser.parse_args(argv)

    from raitner.retrieval.bm25 import BM25Scorer

    print(f"command: {shlex.join(sys.orig_argv)}")
    with open(args.pool, encoding="utf-8") as handle:
        pool = [json.loads(line) for line in handle if line.strip()]
    lang = args.lang or pool[0].get("lang", "en")
    position = {example["id"]: i for i, example in enumerate(pool)}
    scorer = BM25Scorer([example["text"] for example in pool], lang)
    print(f"pool: {len(pool)} texts ({lang})")
    for path in args.predictions:
        with open(path, encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle if line.strip()][1:]  # 1st: settings
        scores: list[float] = []
        texts = 0
        for record in records:
            if len(record["windows"]) != 1 or not record["example_ids"]:
                continue
            ids = record["example_ids"][0]  # one window: every question has the same examples
            missing = [i for i in ids if i not in position]
            if missing:
                raise SystemExit(f"{path}: example ids {missing} are not in the pool {args.pool}")
            texts += 1
            scores.extend(scorer.score(record["text"], lang, [position[i] for i in ids]))
        if not scores:
            print(f"{path}: no one-window text with retrieved examples")
            continue
        values = np.asarray(scores)
        print(
            f"{path}: {texts} texts, {len(values)} examples; BM25 median {np.median(values):.1f}, "
            f"90th percentile {np.percentile(values, 90):.1f}, max {values.max():.1f}; "
            f">= 10: {int((values >= 10).sum())}, >= 20: {int((values >= 20).sum())}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
