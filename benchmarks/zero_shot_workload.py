"""The workload the decoding benchmarks share: zero-shot open NER as ``raitner eval`` asks it.

``--per-benchmark`` test texts of each benchmark named (default: the seven zero-shot ones,
CrossNER x 5, MIT Movie, MIT Restaurant), drawn with ``raitner.evaluate.runner.seeded_subset``
and ``--seed``, each asked every type of its benchmark but ``misc``. Imported by the scripts
beside it (``close_lists_speed.py``, ``lora_merge_inference.py``), which run from this folder.
"""

from __future__ import annotations

import argparse
import os

BENCHMARKS = (
    "crossner_ai",
    "crossner_literature",
    "crossner_music",
    "crossner_politics",
    "crossner_science",
    "mit_movie",
    "mit_restaurant",
)


def add_workload_arguments(parser: argparse.ArgumentParser, *, per_benchmark: int) -> None:
    """The options of the model, the texts and the decoding a script answers them with."""
    parser.add_argument("--model", default=None, help="default: the packaged fine-tuned model")
    parser.add_argument("--data-root", default=os.environ.get("RAITNER_DATA"))
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    parser.add_argument(
        "--per-benchmark", type=int, default=per_benchmark, help="texts per benchmark"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="questions per forward")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")


def load_workload(args: argparse.Namespace) -> tuple[list[str], list[list[str]]]:
    """The texts drawn and, per text, the types asked of it."""
    from raitner.evaluate.runner import seeded_subset
    from raitner.io.registry import get_benchmark

    texts: list[str] = []
    labels: list[list[str]] = []
    for name in args.benchmarks.split(","):
        spec = get_benchmark(name)
        chosen = seeded_subset(spec.load("test", args.data_root), args.per_benchmark, args.seed)
        types = [t for t in spec.types if t != "misc"]
        texts += [example.text for example in chosen]
        labels += [types] * len(chosen)
    return texts, labels
