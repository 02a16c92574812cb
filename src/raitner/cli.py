"""``raitner …``: parses arguments and calls the library; nothing else lives here.

Every subcommand is ``main(argv) -> int`` testable without a subprocess. Heavy libraries are
imported only by the commands that need them, so ``raitner --help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from raitner.errors import RaitnerError

STRATEGIES = ("nn", "nn_bm25", "diverse_nn", "diverse_nn_bm25", "random", "mixed")


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-root",
        help="folder laid out like shared/data (en/…, zh/…); default: $RAITNER_DATA",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raitner",
        description="Open NER with LLMs by retrieval augmented instruction tuning (RA-IT).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="list and inspect the named benchmarks")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    listing = data_commands.add_parser("list", help="every benchmark with its splits and sizes")
    listing.add_argument("--lang", choices=["en", "zh"], help="only this language")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    stats = data_commands.add_parser("stats", help="read a benchmark and count what is in it")
    stats.add_argument("name", help="benchmark name (see `raitner data list`)")
    stats.add_argument("--split", action="append", help="split(s) to read (default: all)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    _add_data_root(stats)
    export = data_commands.add_parser("export", help="write a benchmark split as raitner JSONL")
    export.add_argument("source", help="BENCHMARK:SPLIT")
    export.add_argument("--output", "-o", required=True, type=Path)
    _add_data_root(export)

    build = commands.add_parser(
        "build",
        help="write a vanilla-IT or RA-IT training set (TRL messages JSONL)",
        description=(
            "Build instruction-tuning conversations from NER data. With --mode ra-it each "
            "sample is prepended with k examples retrieved from the pool (default: the inputs "
            "themselves, each sample excluded from its own neighbours)."
        ),
    )
    build.add_argument(
        "inputs",
        nargs="+",
        help="BENCHMARK:SPLIT, a raitner .jsonl file, or sample:NAME (packaged sample)",
    )
    build.add_argument("--output", "-o", required=True, type=Path, help="dataset .jsonl to write")
    build.add_argument("--mode", choices=["vanilla", "ra-it"], default="ra-it")
    build.add_argument("--strategy", choices=STRATEGIES, default="nn", help="retrieval strategy")
    build.add_argument("--k", type=int, default=2, help="examples per sample (paper: 2)")
    build.add_argument(
        "--pool-k", type=int, default=128, help="K nearest to draw from for diverse NN (paper: 128)"
    )
    build.add_argument(
        "--bm25-threshold", type=float, default=20.0, help="BM25 filter threshold (paper: 20)"
    )
    build.add_argument(
        "--mixed-ratio", type=float, default=0.8, help="share of NN samples for --strategy mixed"
    )
    build.add_argument(
        "--pool",
        nargs="+",
        help="retrieve from these sources instead of the inputs (same forms as inputs)",
    )
    build.add_argument(
        "--embedder",
        default="default",
        help="sentence-transformers model id or path; 'default' = the packaged all-MiniLM-L6-v2; "
        "'hashing' = a torch-free character n-gram embedder for dry runs",
    )
    build.add_argument("--cache-dir", type=Path, help="embedding cache (default: $RAITNER_CACHE)")
    build.add_argument("--sample", type=int, help="use a seeded random subset of N inputs")
    build.add_argument("--template", help="template id (default: ra-it-<lang>-v1)")
    build.add_argument(
        "--negative-probability",
        type=float,
        default=0.5,
        help="per positive type, chance of adding a frequency-sampled negative type",
    )
    build.add_argument("--no-shuffle-types", action="store_true", help="keep question order")
    build.add_argument("--seed", type=int, default=42)
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_root(build)
    return parser


def _data_list(args: argparse.Namespace) -> int:
    from raitner.io.registry import benchmarks

    rows = []
    for benchmark in benchmarks().values():
        if args.lang and benchmark.lang != args.lang:
            continue
        rows.append(
            {
                "name": benchmark.name,
                "lang": benchmark.lang,
                "splits": {name: split.size for name, split in benchmark.splits.items()},
                "types": len(benchmark.types),
                "zero_shot_eval": benchmark.zero_shot_eval,
                "description": benchmark.description,
            }
        )
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    print(f"{'name':<24} {'lang':<4} {'types':>5}  {'eval-only':<9}  splits")
    for row in rows:
        splits = " ".join(f"{name}={size}" for name, size in row["splits"].items())
        flag = "yes" if row["zero_shot_eval"] else ""
        print(f"{row['name']:<24} {row['lang']:<4} {row['types']:>5}  {flag:<9}  {splits}")
    return 0


def _data_stats(args: argparse.Namespace) -> int:
    from collections import Counter

    from raitner.io.registry import get_benchmark
    from raitner.io.stats import ReadStats

    benchmark = get_benchmark(args.name)
    report = {"name": benchmark.name, "lang": benchmark.lang, "types": list(benchmark.types)}
    report["splits"] = {}
    for split in args.split or list(benchmark.splits):
        read_stats = ReadStats()
        examples = benchmark.load(split, args.data_root, read_stats)
        per_type = Counter(e.label for ex in examples for e in ex.entities)
        lengths = [len(ex.text) for ex in examples]
        report["splits"][split] = {
            "examples": len(examples),
            "expected": benchmark.split(split).size,
            "entities": sum(per_type.values()),
            "mean_chars": round(sum(lengths) / max(len(lengths), 1), 1),
            "max_chars": max(lengths, default=0),
            "entities_per_type": dict(per_type.most_common()),
            "repaired_tags": read_stats.repaired_tags,
            "unfound_mentions": read_stats.unfound_mentions,
            "skipped": read_stats.skipped,
        }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"{benchmark.name} ({benchmark.lang}): {benchmark.description}")
    print(f"types ({len(benchmark.types)}): {', '.join(benchmark.types)}")
    for split, row in report["splits"].items():
        print(
            f"  {split}: {row['examples']} examples (expected {row['expected']}), "
            f"{row['entities']} entities, {row['mean_chars']} chars on average "
            f"(max {row['max_chars']}), repaired tags {row['repaired_tags']}, "
            f"unfound mentions {row['unfound_mentions']}"
        )
        for label, count in row["entities_per_type"].items():
            print(f"      {count:>7}  {label}")
    return 0


def _data_export(args: argparse.Namespace) -> int:
    from raitner.io.jsonl import write_examples
    from raitner.sources import load_source

    count = write_examples(args.output, load_source(args.source, args.data_root))
    print(f"wrote {count} examples to {args.output}")
    return 0


def _make_embedder(name: str):
    from raitner.retrieval.embedders import HashingEmbedder, SentenceTransformerEmbedder

    if name == "hashing":
        return HashingEmbedder()
    return SentenceTransformerEmbedder(None if name == "default" else name)


def _build(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from raitner.data.builder import BuildConfig, build_dataset, stats_path
    from raitner.data.negatives import NegativeSampling
    from raitner.sources import load_sources

    if args.k < 1:
        raise RaitnerError(f"--k must be at least 1, got {args.k}")
    examples = load_sources(args.inputs, args.data_root)
    if args.sample is not None:
        if args.sample < 1:
            raise RaitnerError(f"--sample must be at least 1, got {args.sample}")
        if args.sample < len(examples):
            chosen = np.random.default_rng(args.seed).choice(
                len(examples), args.sample, replace=False
            )
            examples = [examples[i] for i in sorted(chosen)]
    retrieval = None
    embedder = cache = None
    pool = None
    if args.mode == "ra-it":
        from raitner.retrieval.cache import EmbeddingCache
        from raitner.retrieval.strategies import RetrievalConfig

        retrieval = RetrievalConfig(
            strategy=args.strategy,
            k=args.k,
            pool_k=args.pool_k,
            bm25_threshold=args.bm25_threshold,
            mixed_nn_ratio=args.mixed_ratio,
            seed=args.seed,
        )
        embedder = _make_embedder(args.embedder)
        cache = EmbeddingCache(args.cache_dir)
        pool = load_sources(args.pool, args.data_root) if args.pool else None
    config = BuildConfig(
        template=args.template,
        retrieval=retrieval,
        negatives=NegativeSampling(
            probability=args.negative_probability, shuffle=not args.no_shuffle_types
        ),
        seed=args.seed,
    )

    def progress(records):
        return tqdm(records, total=len(examples), desc="build", unit="sample", disable=args.quiet)

    stats = build_dataset(
        examples,
        args.output,
        config,
        embedder=embedder,
        pool=pool,
        cache=cache,
        sources=[*args.inputs, *[f"pool={p}" for p in args.pool or []]],
        progress=progress,
    )
    summary = stats.to_dict()
    print(
        f"wrote {summary['samples']} conversations ({summary['questions']} questions) to "
        f"{args.output}; examples used per sample: {summary['examples_used']}; "
        f"statistics in {stats_path(args.output)}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handlers = {
        ("data", "list"): _data_list,
        ("data", "stats"): _data_stats,
        ("data", "export"): _data_export,
        ("build", None): _build,
    }
    handler = handlers[(args.command, getattr(args, "data_command", None))]
    try:
        return handler(args)
    except RaitnerError as err:
        print(f"raitner: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as err:
        print(f"raitner: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raitner: interrupted; nothing partial was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
