"""``raitner …``: parses arguments and calls the library; nothing else lives here.

Every subcommand is ``main(argv) -> int`` testable without a subprocess. Heavy libraries are
imported only by the commands that need them, so ``raitner --help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from raitner.errors import RaitnerError

STRATEGIES = ("nn", "nn_bm25", "diverse_nn", "diverse_nn_bm25", "random", "mixed", "word_nn")


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
    stats = data_commands.add_parser(
        "stats", help="read a benchmark or an annotated file and count what is in it"
    )
    stats.add_argument(
        "name",
        help="benchmark name (see `raitner data list`) or an annotated file (.jsonl, .json, "
        ".parquet, .conll, .bio, .iob, .iob2, .bioes, .tsv, .txt; each but .parquet may be "
        ".gz-compressed; FILE.parquet:COLUMN reads the tags of another column)",
    )
    stats.add_argument("--split", action="append", help="split(s) to read (default: all)")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    _add_data_root(stats)
    export = data_commands.add_parser(
        "export",
        help="write a benchmark split or an annotated file as span JSONL (raitner's, or "
        "doccano's or Prodigy's to import there), as Label Studio tasks, or as BIO columns",
    )
    export.add_argument(
        "source",
        help="BENCHMARK:SPLIT or an annotated file (token/tag columns, .json, a predictions "
        ".jsonl of raitner predict …)",
    )
    export.add_argument("--output", "-o", required=True, type=Path)
    export.add_argument(
        "--shape",
        choices=["raitner", "doccano", "prodigy", "label-studio", "conll"],
        default="raitner",
        help="raitner (default; keeps ids and label sets), doccano ({text, label: [[start, "
        "end, type]]}) or prodigy ({text, spans}), both keeping the id in meta; "
        "label-studio: a .json array of tasks with the mentions as predictions to review "
        "(for the NER template's controls, label and text); or conll: token<TAB>BIO-tag "
        "lines for a token classifier to train on (.conll, .bio, .tsv …)",
    )
    _add_data_root(export)
    split = data_commands.add_parser(
        "split",
        help="split a benchmark split or an annotated file into seeded train/dev/test files "
        "(repeated texts kept in one split)",
    )
    split.add_argument("source", help="BENCHMARK:SPLIT or an annotated file")
    split.add_argument(
        "--output",
        "-o",
        required=True,
        type=Path,
        help="folder to write train.jsonl, dev.jsonl and test.jsonl into (raitner's span JSONL)",
    )
    split.add_argument(
        "--dev", type=float, default=0.1, help="below 1: a fraction of the texts; else a count"
    )
    split.add_argument("--test", type=float, default=0.1, help="as --dev")
    split.add_argument("--seed", type=int, default=1)
    _add_data_root(split)

    distill = commands.add_parser(
        "distill",
        help="annotate raw text with a teacher LLM (OpenAI-compatible API) into NER examples",
        description=(
            "Cut documents into passages of at most --max-passage-tokens tokens, ask each "
            "teacher for every entity and its type (the papers' data-construction prompt), vote "
            "when there are several teachers, locate the mentions and write raitner JSONL for "
            "`raitner build`. Answers are cached as they arrive: an interrupted run resumes, a "
            "rerun asks nothing twice. Needs pip install 'raitner[distill]'."
        ),
    )
    distill.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        help=".jsonl files (one object per line with a string 'text' and optional 'id'), "
        ".json arrays of such objects, .csv or .parquet tables with such columns, or text "
        "files (one document per non-empty line); any of them but Parquet may be .gz-compressed",
    )
    distill.add_argument("--output", "-o", required=True, type=Path, help="examples .jsonl")
    distill.add_argument(
        "--teacher",
        action="append",
        required=True,
        metavar="MODEL[@BASE_URL]",
        help="teacher model, optionally with its own API base URL; repeat for several "
        "teachers (majority vote)",
    )
    distill.add_argument(
        "--base-url", help="OpenAI-compatible API base URL (default: $OPENAI_BASE_URL, else OpenAI)"
    )
    distill.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (default: %(default)s)",
    )
    distill.add_argument("--lang", choices=["en", "zh"], default="en")
    distill.add_argument(
        "--prompt", help="teacher prompt id (default: pile-ner-type-en-v1 / sky-ner-zh-v1)"
    )
    distill.add_argument(
        "--max-passage-tokens",
        type=_positive_int,
        default=256,
        help="passage length in tokens (papers: 256; default: %(default)s)",
    )
    distill.add_argument(
        "--tokenizer",
        help="HF tokenizer id or path whose tokens are counted (default: approximate tokens: "
        "words, punctuation marks, CJK characters)",
    )
    distill.add_argument("--sample", type=_positive_int, help="a seeded subset of N passages")
    distill.add_argument("--seed", type=int, default=0)
    distill.add_argument(
        "--text-field",
        default="text",
        help="the JSON field (or CSV, Parquet or Arrow column) holding the text "
        "(default: %(default)s)",
    )
    distill.add_argument(
        "--concurrency", type=_positive_int, default=4, help="requests in flight (default: 4)"
    )
    distill.add_argument(
        "--min-votes",
        type=_positive_int,
        help="teachers that must name a (mention, type) pair (default: a majority)",
    )
    distill.add_argument("--temperature", type=_finite_float, default=0.0)
    distill.add_argument(
        "--max-tokens", type=_positive_int, default=1024, help="answer length limit per request"
    )
    distill.add_argument(
        "--cache",
        type=Path,
        help="teacher answer cache (default: <output>.teacher-cache.jsonl; kept afterwards)",
    )
    distill.add_argument(
        "--keep-empty", action="store_true", help="keep passages left with no entity"
    )

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
        help="BENCHMARK:SPLIT, an annotated file (span .jsonl as raitner, doccano or Prodigy "
        "write it, UniversalNER or Label Studio .json, token/tag columns: .conll .bio .iob "
        ".iob2 .bioes .tsv .txt, a Hub .parquet or a save_to_disk folder, either with :COLUMN "
        "for another tag column: few-nerd.parquet:fine_ner_tags), or sample:NAME (packaged "
        "sample); append @N for a seeded subset of N examples of that source "
        "(conll2003:train@500)",
    )
    build.add_argument("--output", "-o", required=True, type=Path, help="dataset .jsonl to write")
    build.add_argument("--mode", choices=["vanilla", "ra-it"], default="ra-it")
    build.add_argument("--strategy", choices=STRATEGIES, default="nn", help="retrieval strategy")
    build.add_argument("--k", type=_positive_int, default=2, help="examples per sample (paper: 2)")
    build.add_argument(
        "--pool-k",
        type=_positive_int,
        default=128,
        help="K nearest to draw from for diverse NN (paper: 128)",
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
    build.add_argument(
        "--sample", type=_positive_int, help="use a seeded random subset of N inputs"
    )
    build.add_argument("--template", help="template id (default: ra-it-<lang>-v1)")
    build.add_argument(
        "--negative-probability",
        type=float,
        default=0.5,
        help="per positive type, chance of adding a frequency-sampled negative type",
    )
    build.add_argument(
        "--sampled-negatives",
        action="store_true",
        help="ignore closed label sets: ask each text's positive types plus sampled negatives "
        "(as for open-type data) instead of every type of its benchmark; texts without "
        "entities are then left out",
    )
    build.add_argument("--no-shuffle-types", action="store_true", help="keep question order")
    build.add_argument(
        "--seed", type=int, default=42, help="seed of subsets (--sample, SOURCE@N) and sampling"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_label_names(build, "of the inputs and the pool")
    _add_data_root(build)

    train = commands.add_parser(
        "train",
        help="LoRA fine-tuning on datasets written by `raitner build`",
        description=(
            "LoRA instruction tuning with TRL (loss on assistant turns only). Defaults are the "
            "paper's: 3 epochs, effective batch 8, lr 5e-5, cosine, warm-up 0.03, LoRA on all "
            "linear layers. Settings come from --config (JSON/YAML) with flags applied over it. "
            "Multi-GPU: accelerate launch --num_processes N -m raitner.train --config cfg.json"
        ),
    )
    train.add_argument("--config", help="JSON or YAML file of training settings")
    train.add_argument(
        "--export-checkpoint",
        metavar="CHECKPOINT",
        help="do not train: write the model as of this checkpoint folder of the run as a model "
        "folder at --export-to (to use or evaluate a long run before it ends)",
    )
    train.add_argument("--export-to", type=Path, metavar="DIR", help="see --export-checkpoint")
    from raitner.train.config import add_config_arguments

    add_config_arguments(train)

    def add_model_options(command: argparse.ArgumentParser, *, compare: bool = False) -> None:
        from raitner.infer.select import BACKENDS, DEFAULT_BACKEND

        command.add_argument(
            "--backend",
            choices=BACKENDS,
            default=DEFAULT_BACKEND,
            help="generation backend: hf (plain transformers generate), hf-prefix (the shared "
            "prompt prefix of a text's questions computed once; same answers, faster), vllm "
            "(vLLM engine, CUDA GPU, pip install 'raitner[vllm]'); default: %(default)s",
        )
        if compare:
            command.add_argument(
                "--constrained",
                nargs="?",
                const="yes",
                default="no",
                choices=["no", "yes", "both"],
                help="answers constrained to a JSON list of strings (needs "
                "'raitner[constrained]' for the hf backends); 'both' evaluates free and "
                "constrained decoding and reports them side by side",
            )
        else:
            command.add_argument(
                "--constrained",
                action="store_true",
                help="constrain every answer to a JSON list of strings (needs "
                "'raitner[constrained]' for the hf backends)",
            )
        command.add_argument(
            "--empty-bias",
            type=_finite_float,
            metavar="B",
            help="added to the score of the empty answer [] where it parts from non-empty ones: "
            "above 0 the model answers [] more often (higher precision, lower recall), below 0 "
            "less often; hf backends only; default: the model folder's own, else 0",
        )
        command.add_argument(
            "--close-lists",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="end a list answer at its first repeated item (the model has started to "
            "loop; decoding of that answer stops there) and close one the token limit cut "
            "after its last complete item; default: the model folder's own, else off",
        )
        command.add_argument(
            "--model",
            help="a raitner model folder, an HF causal LM id or path; default: the packaged "
            "fine-tuned model (a LoRA adapter on the embedded SmolLM2-135M-Instruct); "
            "'smollm2-135m-instruct' names the untuned base",
        )
        command.add_argument(
            "--vote-with",
            action="append",
            metavar="MODEL",
            help="another model (folder or id, trained with the same template) that answers "
            "every question too; a mention is kept when at least --min-votes of the models "
            "give it (one more pass over the questions per model; repeat for more); default: "
            "the model folder's own vote, else none",
        )
        command.add_argument(
            "--min-votes",
            type=_positive_int,
            help="models that must give a mention (default: more than half of them)",
        )
        command.add_argument(
            "--no-vote",
            action="store_true",
            help="decode with the model alone, not with the vote its folder sets",
        )
        command.add_argument(
            "--no-merge-lora",
            dest="merge_lora",
            action="store_false",
            help="keep a model folder's LoRA adapter apart from the base weights (slower; by "
            "default its update is merged in once at load, the same answers up to float "
            "rounding)",
        )
        command.add_argument("--device", help="cpu, cuda, cuda:1 … (default: cuda if available)")
        command.add_argument(
            "--batch-size", type=_positive_int, default=16, help="questions per forward"
        )
        command.add_argument("--lang", choices=["en", "zh"], help="template language (base models)")
        command.add_argument(
            "--pool",
            help="annotated examples to retrieve in-context examples from: span .jsonl "
            "(raitner, doccano, Prodigy), UniversalNER or Label Studio .json or token/tag "
            "columns (.conll, .bio, .tsv, …); enables --examples pool",
        )
        _add_label_names(
            command, "of the annotated files read: --pool FILE, and eval's --benchmarks FILE"
        )
        command.add_argument("--examples", choices=["none", "pool"], default="none")
        command.add_argument("--strategy", choices=STRATEGIES, help="retrieval strategy")
        command.add_argument("--k", type=_positive_int, help="examples per text")
        command.add_argument("--bm25-threshold", type=float, help="BM25 filter threshold")
        command.add_argument("--max-new-tokens", type=_positive_int, default=256)
        command.add_argument(
            "--max-text-tokens",
            type=_int_at_least(0),
            default=256,
            help="longer texts are split into overlapping windows; 0 = never split",
        )

    extract = commands.add_parser("extract", help="entities of one text, with character offsets")
    extract.add_argument(
        "text",
        help="the text; - reads it from standard input (offsets count from its first "
        "character; the line break ending the input is not part of it)",
    )
    extract.add_argument("--labels", required=True, help="comma-separated entity types")
    extract.add_argument(
        "--show-answers",
        action="store_true",
        help="also print the model's raw answer per type (always shown when nothing is found)",
    )
    add_model_options(extract)

    predict = commands.add_parser(
        "predict",
        help="predict entities for a file of texts (JSONL, JSON, CSV, Parquet, Arrow, or plain "
        "text one per line)",
        description=(
            "Input: JSONL lines with a 'text' (another field with --text-field; optional 'id', "
            "'labels' / 'label_set'), a "
            ".json array of such records or of Label Studio tasks (data.text), a .csv, "
            ".parquet or .arrow with such columns, any of them but Parquet and Arrow "
            ".gz-compressed, or "
            "any other file as plain text, one text per non-empty line (ids <file stem>:<line>, "
            "types from --labels); output: one JSON line per text with its 'id', 'entities', "
            "the types asked ('label_set'), raw 'answers' and unaligned mentions; it reads back "
            "as an annotated .jsonl (raitner build, eval, --pool). An output named .csv gets "
            "one row per text instead: id, text, labels, mentions ('type: mention; …') and "
            "entities (JSON)."
        ),
    )
    predict.add_argument("input", type=Path)
    predict.add_argument(
        "--output",
        "-o",
        required=True,
        type=Path,
        help="predictions .jsonl (or .csv: one row per text; .gz to compress either)",
    )
    predict.add_argument("--labels", help="comma-separated types for lines that name none")
    predict.add_argument(
        "--text-field",
        default="text",
        help="the JSON field (or CSV, Parquet or Arrow column) holding each text "
        "(default: %(default)s)",
    )
    scale = predict.add_argument_group(
        "scale-out with Ray (pip install 'raitner[ray]')",
        "texts are spread over workers that each load the model; all questions of a text go to "
        "one worker",
    )
    scale.add_argument(
        "--ray-workers", type=_positive_int, help="answer with N Ray workers (default: no Ray)"
    )
    scale.add_argument(
        "--ray-gpus-per-worker",
        type=_finite_float,
        default=0.0,
        help="GPUs each worker reserves (1 for --backend vllm; default: %(default)s)",
    )
    scale.add_argument(
        "--ray-cpus-per-worker",
        type=_finite_float,
        default=1.0,
        help="CPUs each worker reserves (default: %(default)s)",
    )
    scale.add_argument(
        "--ray-block-texts",
        type=_positive_int,
        default=16,
        help="texts per block handed to a worker (default: %(default)s)",
    )
    scale.add_argument("--ray-address", help="a running Ray cluster (default: start one here)")
    add_model_options(predict)

    serve = commands.add_parser(
        "serve",
        help="an HTTP server answering NER requests (pip install 'raitner[serve]')",
        description=(
            "POST /v1/extract {text, labels} and /v1/extract/batch {texts, labels}; GET "
            "/v1/model and /health; interactive docs at /docs. Requests arriving within "
            "--max-wait-ms of each other are answered in one batch. --examples sets what a "
            "request that names no 'examples' gets."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    serve.add_argument("--port", type=_positive_int, default=8000, help="default: %(default)s")
    serve.add_argument(
        "--max-batch-texts",
        type=_positive_int,
        default=32,
        help="texts of concurrent requests answered together (default: %(default)s)",
    )
    serve.add_argument(
        "--max-wait-ms",
        type=_finite_float,
        default=5.0,
        help="how long a batch waits for more requests after its first (default: %(default)s)",
    )
    serve.add_argument(
        "--max-text-chars",
        type=_positive_int,
        default=100_000,
        help="longer texts are refused with HTTP 413 (default: %(default)s)",
    )
    add_model_options(serve)
    # wide forwards take the questions of several requests at once (benchmarks/server_batching.py)
    serve.set_defaults(batch_size=64)

    evaluate = commands.add_parser(
        "eval",
        help="zero-shot evaluation on named benchmarks with the papers' metric",
    )
    evaluate.add_argument(
        "--benchmarks",
        default="crossner_ai,crossner_literature,crossner_music,crossner_politics,"
        "crossner_science,mit_movie,mit_restaurant",
        help="comma-separated benchmark names (default: the paper's 7 English ones) or "
        "annotated files (span .jsonl as raitner, doccano or Prodigy write it, UniversalNER or "
        "Label Studio .json, token/tag columns such as .conll or .bio, a Hub .parquet, "
        "FILE.parquet:COLUMN for another tag column), each asked about the types of its "
        "entities and named by its file name (and column)",
    )
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument(
        "--limit", type=_positive_int, help="seeded random subset of N texts each (default: all)"
    )
    evaluate.add_argument("--seed", type=int, default=42)
    evaluate.add_argument(
        "--exclude-types", default="misc", help="types not asked (UniversalNER dropped misc)"
    )
    evaluate.add_argument(
        "--pool-size",
        type=_positive_int,
        help="with --examples pool: sample N examples of the pool (--pool, else --pool-split)",
    )
    evaluate.add_argument(
        "--pool-split",
        default="train",
        help="with --examples pool and no --pool: the split of each benchmark its examples come "
        "from (in-domain; default: train)",
    )
    evaluate.add_argument(
        "--drop-unaligned",
        action="store_true",
        help="score only the answered mentions found in the text, as extract and predict "
        "return them (the papers score every answered string); saved predictions are reused",
    )
    evaluate.add_argument("--output", "-o", type=Path, default=Path("out/eval"))
    add_model_options(evaluate, compare=True)
    _add_data_root(evaluate)

    compare = commands.add_parser(
        "compare",
        help="two raitner eval outputs: per-benchmark F1, the difference and its bootstrap "
        "interval over the texts",
    )
    compare.add_argument("a", type=Path, help="output folder of the baseline's raitner eval")
    compare.add_argument("b", type=Path, help="output folder of the other raitner eval")
    compare.add_argument(
        "--pair",
        nargs=2,
        action="append",
        default=[],
        metavar=("A", "B"),
        help="another pair of evaluations of the same two recipes, trained on another seed "
        "(repeatable): F1s, the difference and its interval become means over the pairs",
    )
    compare.add_argument("--metric", choices=("uniner", "ra_it", "span"), default="uniner")
    compare.add_argument(
        "--decoding",
        choices=("free", "constrained"),
        default="free",
        help="which decoding of an eval run with --constrained (default: free)",
    )
    compare.add_argument(
        "--decoding-b",
        choices=("free", "constrained"),
        help="B's decoding, when it differs from A's (e.g. the same --constrained both folder "
        "twice: free against constrained)",
    )
    compare.add_argument("--resamples", type=int, default=2000)
    compare.add_argument("--confidence", type=float, default=0.95)
    compare.add_argument("--json", type=Path, help="also write the comparison as JSON")
    compare.add_argument(
        "--benchmarks",
        help="comma-separated benchmarks to compare, each in both evaluations (default: all, "
        "which must be the same in both)",
    )

    from raitner.reproduce.cli import add_parser as add_reproduce

    add_reproduce(commands)
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
    from raitner.io.user_files import is_user_file, read_user_file, split_tag_column, types_of

    path = Path(args.name)
    if is_user_file(path):
        if args.split:
            raise RaitnerError("--split: an annotated file is one split; leave --split out")
        read_stats = ReadStats()
        examples = read_user_file(path, read_stats)
        langs = sorted({ex.lang for ex in examples}) or ["en"]
        name, lang, description = str(path), ",".join(langs), "annotated file"
        types = list(types_of(examples))
        reads = {"file": (examples, read_stats, None)}
    else:
        benchmark = get_benchmark(args.name)
        name, lang, description = benchmark.name, benchmark.lang, benchmark.description
        types = list(benchmark.types)
        reads = {}
        for split in args.split or list(benchmark.splits):
            read_stats = ReadStats()
            examples = benchmark.load(split, args.data_root, read_stats)
            reads[split] = (examples, read_stats, benchmark.split(split).size)
    report = {"name": name, "lang": lang, "types": types, "splits": {}}
    for split, (examples, read_stats, expected) in reads.items():
        per_type = Counter(e.label for ex in examples for e in ex.entities)
        lengths = [len(ex.text) for ex in examples]
        report["splits"][split] = {
            "examples": len(examples),
            "expected": expected,
            "entities": sum(per_type.values()),
            "mean_chars": round(sum(lengths) / max(len(lengths), 1), 1),
            "max_chars": max(lengths, default=0),
            "entities_per_type": dict(per_type.most_common()),
            "repaired_tags": read_stats.repaired_tags,
            "unfound_mentions": read_stats.unfound_mentions,
            "trimmed_spans": read_stats.trimmed_spans,
            "realigned_spans": read_stats.realigned_spans,
            "skipped": read_stats.skipped,
            "tag_column": read_stats.tag_column,
            "other_tag_columns": read_stats.other_tag_columns,
        }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"{name} ({lang}): {description}")
    print(f"types ({len(types)}): {', '.join(types)}")
    for split, row in report["splits"].items():
        expected = "" if row["expected"] is None else f" (expected {row['expected']})"
        print(
            f"  {split}: {row['examples']} examples{expected}, "
            f"{row['entities']} entities, {row['mean_chars']} chars on average "
            f"(max {row['max_chars']}), repaired tags {row['repaired_tags']}, "
            f"unfound mentions {row['unfound_mentions']}"
        )
        if row["trimmed_spans"]:
            print(f"      mentions trimmed of surrounding spaces: {row['trimmed_spans']}")
        if row["realigned_spans"]:
            print(f"      mentions moved to where their text is: {row['realigned_spans']}")
        for reason, count in row["skipped"].items():
            print(f"      left out ({reason}): {count}")
        if row["other_tag_columns"]:  # only a table has them
            others = ", ".join(row["other_tag_columns"])
            table = split_tag_column(path)[0]  # the file without a chosen column
            print(
                f"      tags read from {row['tag_column']!r}; the table also has {others} "
                f"(read one as {table}:COLUMN)"
            )
        for label, count in row["entities_per_type"].items():
            print(f"      {count:>7}  {label}")
    return 0


def _data_export(args: argparse.Namespace) -> int:
    from raitner.io.files import format_suffix
    from raitner.io.span_jsonl import write_span_jsonl
    from raitner.io.user_files import TAGGED_SUFFIXES
    from raitner.sources import load_source

    if args.shape == "label-studio" and args.output.suffix.lower() != ".json":
        raise RaitnerError(
            f"--shape label-studio writes a JSON array: name the output .json, not {args.output}"
        )
    if args.shape == "conll" and format_suffix(args.output) not in TAGGED_SUFFIXES:
        raise RaitnerError(
            f"--shape conll writes token/tag columns: name the output with one of "
            f"{', '.join(TAGGED_SUFFIXES)}, not {args.output}"
        )
    examples = load_source(args.source, args.data_root)
    if args.shape == "conll":
        from raitner.io.conll import write_conll

        written = write_conll(args.output, examples)
        print(f"wrote {written.sentences} sentences to {args.output} (token<TAB>BIO tag)")
        if written.overlapping:
            print(f"  mentions left out, overlapping a longer one: {written.overlapping}")
        if written.empty_texts:
            print(f"  texts without a token, not written: {written.empty_texts}")
        return 0
    if args.shape == "label-studio":
        from raitner.io.label_studio import write_label_studio_tasks

        count = write_label_studio_tasks(args.output, examples)
    else:
        count = write_span_jsonl(args.output, examples, args.shape)
    print(f"wrote {count} examples to {args.output}")
    return 0


def _data_split(args: argparse.Namespace) -> int:
    from raitner.data.splitting import SPLIT_NAMES, split_examples
    from raitner.io.span_jsonl import write_span_jsonl
    from raitner.sources import load_source

    examples = load_source(args.source, args.data_root)
    if not examples:
        raise RaitnerError(f"{args.source}: no examples to split")
    splits = split_examples(examples, dev=args.dev, test=args.test, seed=args.seed)
    train_types = {entity.label for example in splits.train for entity in example.entities}
    for name in SPLIT_NAMES:
        part = getattr(splits, name)
        path = args.output / f"{name}.jsonl"
        if not part:
            print(f"{name}: no examples, {path} not written")
            continue
        write_span_jsonl(path, part, "raitner")
        mentions = sum(len(example.entities) for example in part)
        print(f"{name}: {len(part)} examples, {mentions} mentions -> {path}")
        unseen = sorted({e.label for ex in part for e in ex.entities} - train_types)
        if name != "train" and unseen:
            print(f"  types no train example has: {', '.join(unseen)}")
    return 0


def _add_label_names(command: argparse.ArgumentParser, whose: str) -> None:
    command.add_argument(
        "--label-names",
        type=_label_names,
        default={},
        metavar="TAG=type,…|conll|BENCHMARK",
        help=f"rename the labels {whose} (PER=person,LOC=location); 'conll' for CoNLL-2003's "
        "PER, LOC, ORG, MISC; or a registered benchmark's names for its tags (ontonotes); "
        "other labels are kept. Prompts ask for these types: give words a model knows",
    )


def _label_names(value: str) -> dict[str, str]:
    from raitner.io.user_files import parse_label_names

    try:
        return parse_label_names(value)
    except RaitnerError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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

    examples = load_sources(args.inputs, args.data_root, seed=args.seed)
    examples = [example.relabel(args.label_names) for example in examples]
    if args.sample is not None and args.sample < len(examples):
        chosen = np.random.default_rng(args.seed).choice(len(examples), args.sample, replace=False)
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
        if args.pool:
            pool = load_sources(args.pool, args.data_root, seed=args.seed)
            pool = [example.relabel(args.label_names) for example in pool]
    config = BuildConfig(
        template=args.template,
        retrieval=retrieval,
        negatives=NegativeSampling(
            probability=args.negative_probability,
            shuffle=not args.no_shuffle_types,
            use_label_set=not args.sampled_negatives,
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
    if summary["skipped_no_questions"]:
        print(
            f"left out {summary['skipped_no_questions']} texts with no question to ask "
            "(no entities and no closed label set)"
        )
    print(
        f"wrote {summary['samples']} conversations ({summary['questions']} questions) to "
        f"{args.output}; examples used per sample: {summary['examples_used']}; "
        f"statistics in {stats_path(args.output)}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    import logging

    from raitner.train import train
    from raitner.train.config import config_from_namespace

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = config_from_namespace(args, args.config)
    if args.export_checkpoint or args.export_to:
        if not (args.export_checkpoint and args.export_to):
            raise RaitnerError("--export-checkpoint and --export-to go together")
        from raitner.train.sft import export_checkpoint

        output = export_checkpoint(config, args.export_checkpoint, args.export_to)
        print(f"model as of {args.export_checkpoint} written to {output}")
        return 0
    output = train(config)
    print(f"trained model written to {output}")
    return 0


def _int_at_least(minimum: int):
    """An argparse type: an integer no smaller than ``minimum`` (checked before any model
    is loaded, so a typo costs no wait)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _finite_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _retrieval_overrides(args: argparse.Namespace) -> dict | None:
    given = {
        key: value
        for key, value in (
            ("strategy", args.strategy),
            ("k", args.k),
            ("bm25_threshold", args.bm25_threshold),
        )
        if value is not None
    }
    return given or None


def _loader_options(args: argparse.Namespace, pool=None) -> dict:
    """The keyword arguments of ``OpenNER.from_pretrained`` the model options give."""
    from raitner.retrieval.strategies import RetrievalConfig

    if args.examples == "pool" and pool is None and not getattr(args, "pool_split", None):
        raise RaitnerError("--examples pool needs --pool FILE")
    overrides = _retrieval_overrides(args)
    if args.no_vote and (args.vote_with or args.min_votes):
        raise RaitnerError("--no-vote cannot be given with --vote-with or --min-votes")
    if pool is not None and args.label_names:
        from raitner.infer.predictor import load_pool

        pool = [example.relabel(args.label_names) for example in load_pool(pool)]
    return {
        "lang": args.lang,
        "device": args.device,
        "pool": pool,
        "retrieval": RetrievalConfig(**overrides) if overrides else None,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "max_text_tokens": args.max_text_tokens or None,
        "backend": args.backend,
        "constrained": args.constrained in (True, "yes"),
        "empty_bias": args.empty_bias,
        "close_lists": args.close_lists,
        "vote_with": [] if args.no_vote else args.vote_with,
        "min_votes": args.min_votes,
        "merge_lora": args.merge_lora,
    }


def _load_ner(args: argparse.Namespace, pool=None):
    from raitner.api import OpenNER

    return OpenNER.from_pretrained(args.model, **_loader_options(args, pool))


def _extract(args: argparse.Namespace) -> int:
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise RaitnerError("--labels needs at least one entity type")
    text = args.text
    if text == "-":
        text = sys.stdin.read()
        text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if not text.strip():
        source = "standard input" if args.text == "-" else "the text argument"
        raise RaitnerError(f"no text to extract entities from: {source} is empty")
    ner = _load_ner(args, pool=args.pool)
    examples = "pool" if args.examples == "pool" else None
    (prediction,) = ner.predict([text], labels, examples=examples)
    entities = prediction.to_dicts()
    for entity in entities:
        print(json.dumps(entity, ensure_ascii=False))
    if not entities or args.show_answers:
        # An empty result is easier to trust (or distrust) next to what the model said.
        answers = prediction.raw_answers(ner.template)
        print(f"{len(entities)} entities; the model's answers:", file=sys.stderr)
        for label, answer in answers.items():
            print(f"  {label}: {answer}", file=sys.stderr)
    return 0


def _read_predict_input(
    path: Path, default_labels: list[str], text_field: str = "text"
) -> list[dict]:
    from raitner.errors import DataFormatError
    from raitner.io.files import format_suffix
    from raitner.io.records import (
        RECORD_SUFFIXES,
        fields_hint,
        iter_records,
        missing_text_message,
    )

    if not path.is_file():
        raise RaitnerError(f"input file {path} not found")
    rows = []
    suffix = format_suffix(path)
    if suffix not in RECORD_SUFFIXES:  # plain text, one text a line, as distill reads
        if not default_labels:
            raise RaitnerError(
                f"{path} is plain text, one text a line: give its types with --labels"
            )
        from raitner.distill.pipeline import read_documents

        return [
            {"id": text_id, "text": text, "labels": default_labels}
            for text_id, text in read_documents(path)
        ]
    from raitner.io.label_studio import has_task_data, task_as_text_record

    # CSV, Parquet, Arrow: columns text, and optionally id, labels; a .json array may hold
    # Label Studio tasks (the text in data.text)
    for number, given in iter_records(path):
        task = suffix == ".json" and has_task_data(given)
        record = task_as_text_record(given, text_field) if task else given
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            problem = (
                f"expected data.{text_field} in this Label Studio task (or one string field of "
                f"data); {fields_hint(given['data'])}"
                if task
                else missing_text_message(record, text_field, suffix)
            )
            raise DataFormatError(path, number, problem)
        key = "labels" if record.get("labels") else "label_set"
        labels = record.get(key) or default_labels
        if isinstance(labels, str):  # "person, location", as --labels takes them
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        if not labels:
            raise DataFormatError(path, number, "no 'labels' on the line and no --labels given")
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise DataFormatError(
                path,
                number,
                f"'{key}' must be a list of type names (or one string of them, comma-separated), "
                f"got {json.dumps(labels, ensure_ascii=False)[:80]}",
            )
        given_id = record.get("id")
        row_id = str(len(rows) if given_id is None or given_id == "" else given_id)
        rows.append({"id": row_id, "text": record[text_field], "labels": labels})
    return rows


def _write_predictions(path: Path, records: Iterable[dict]) -> None:
    """predict's records, atomically: CSV when ``path`` is a ``.csv`` (``.csv.gz``), else one
    JSON line each."""
    from raitner.atomic import atomic_write
    from raitner.io.csv_rows import write_prediction_csv
    from raitner.io.files import format_suffix

    if format_suffix(path) == ".csv":
        write_prediction_csv(path, records)
        return
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _predict(args: argparse.Namespace) -> int:
    from raitner.infer.journal import AnswerJournal

    default_labels = [x.strip() for x in (args.labels or "").split(",") if x.strip()]
    rows = _read_predict_input(args.input, default_labels, args.text_field)
    if not rows:
        raise RaitnerError(f"no text in {args.input}: nothing to predict")
    if args.ray_workers:
        return _predict_with_ray(args, rows)
    ner = _load_ner(args, pool=args.pool)
    # answers are kept as they come: an interrupted run, started again, asks only the rest
    journal = AnswerJournal(
        args.output.with_name(args.output.name + ".journal"),
        identity={
            "model": args.model or "embedded-default",
            "backend": getattr(ner, "backend_name", args.backend),
            "constrained": bool(getattr(ner, "constrained", False)),
            "empty_bias": getattr(ner, "empty_bias", None),
            **({"close_lists": True} if getattr(ner, "close_lists", False) else {}),
            **(
                {"vote_with": ner.vote_with, "min_votes": ner.min_votes}
                if getattr(ner, "vote_with", None)
                else {}
            ),
        },
    )
    predictions = ner.predict(
        [row["text"] for row in rows],
        [row["labels"] for row in rows],
        examples="pool" if args.examples == "pool" else None,
        batch_size=args.batch_size,
        show_progress=True,
        journal=journal,
    )
    _write_predictions(
        args.output,
        (
            {"id": row["id"], **prediction.to_record(ner.template)}
            for row, prediction in zip(rows, predictions, strict=True)
        ),
    )
    journal.discard()
    resumed = f" ({journal.resumed} answers reused from {journal.path})" if journal.resumed else ""
    print(f"wrote {len(rows)} predictions to {args.output}{resumed}")
    return 0


def _predict_with_ray(args: argparse.Namespace, rows: list[dict]) -> int:
    from tqdm.auto import tqdm

    from raitner.infer.ray_predict import predict_with_ray

    options = _loader_options(args, pool=str(args.pool) if args.pool else None)
    journal_path = args.output.with_name(args.output.name + ".ray-journal.jsonl")
    with tqdm(total=len(rows), unit="text", desc="predict (ray)") as bar:
        try:
            records, resumed = predict_with_ray(
                rows,
                model=args.model,
                options=options,
                examples="pool" if args.examples == "pool" else None,
                workers=args.ray_workers,
                gpus_per_worker=args.ray_gpus_per_worker,
                cpus_per_worker=args.ray_cpus_per_worker,
                block_texts=args.ray_block_texts,
                journal_path=journal_path,
                address=args.ray_address,
                on_texts=bar.update,
            )
        except ImportError as err:
            raise RaitnerError(str(err)) from err
    _write_predictions(
        args.output,
        ({"id": row["id"], **record} for row, record in zip(rows, records, strict=True)),
    )
    journal_path.unlink(missing_ok=True)
    reused = f" ({resumed} texts reused from {journal_path})" if resumed else ""
    print(
        f"wrote {len(rows)} predictions to {args.output} "
        f"with {args.ray_workers} Ray workers{reused}"
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from raitner.evaluate.runner import EvalSettings, run_evaluation
    from raitner.io.registry import add_file_benchmark, get_benchmark
    from raitner.io.user_files import is_user_file
    from raitner.retrieval.strategies import RetrievalConfig

    chosen = []
    for name in (name.strip() for name in args.benchmarks.split(",")):
        if not name:
            continue
        if is_user_file(name):
            # an annotated file of the user's
            name = add_file_benchmark(name, args.split, args.label_names).name
        # unknown names and unreadable files fail before the model loads
        chosen.append(get_benchmark(name))
    for benchmark in chosen:  # and so do a missing data root and missing split files
        benchmark.files(args.split, args.data_root)
        if args.examples == "pool" and not args.pool:
            benchmark.files(args.pool_split, args.data_root)
    names = [benchmark.name for benchmark in chosen]
    if args.pool and args.examples != "pool":
        raise RaitnerError("--pool gives the examples of --examples pool; add --examples pool")
    if args.pool:
        from raitner.sources import load_source

        load_source(args.pool, args.data_root)  # an unreadable pool fails before the model loads
    overrides = _retrieval_overrides(args) or {}
    settings = EvalSettings(
        benchmarks=names,
        split=args.split,
        limit=args.limit,
        seed=args.seed,
        exclude_types=tuple(t.strip() for t in args.exclude_types.split(",") if t.strip()),
        examples=args.examples,
        pool_split=args.pool_split,
        pool_size=args.pool_size,
        retrieval=asdict(RetrievalConfig(**overrides)) if args.examples == "pool" else None,
        pool_sources=[args.pool] if args.pool else None,
        label_names=args.label_names if args.pool else {},
        batch_size=args.batch_size,
        model=args.model or "embedded-default",
        backend=args.backend,
        constrained={"no": False, "yes": True, "both": "both"}[args.constrained],
        drop_unaligned=args.drop_unaligned,
    )
    ner = _load_ner(args)
    cache = None
    if args.examples == "pool":
        from raitner.retrieval.cache import EmbeddingCache

        cache = EmbeddingCache()  # $RAITNER_CACHE: pools are encoded once across runs
    table = run_evaluation(
        ner, settings, args.output, data_root=args.data_root, embedding_cache=cache
    )
    print(table["markdown"])
    print(f"report written to {args.output}/report.md and report.json")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from raitner.atomic import atomic_write
    from raitner.evaluate.compare import compare_evaluations, render_comparison

    result = compare_evaluations(
        args.a,
        args.b,
        metric=args.metric,
        decoding=args.decoding,
        decoding_b=args.decoding_b,
        resamples=args.resamples,
        confidence=args.confidence,
        benchmarks=[b.strip() for b in args.benchmarks.split(",") if b.strip()]
        if args.benchmarks is not None
        else None,
        more_pairs=[tuple(pair) for pair in args.pair],
    )
    print(render_comparison(result), end="")
    if args.json is not None:
        with atomic_write(args.json) as handle:
            json.dump(result, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.max_wait_ms < 0:
        raise RaitnerError(f"--max-wait-ms must not be negative, got {args.max_wait_ms}")
    try:
        import uvicorn

        from raitner.server import create_app
    except ImportError as err:
        raise RaitnerError(
            f"{err}; the server needs FastAPI and uvicorn: pip install 'raitner[serve]'"
        ) from err
    model_name = args.model or "embedded-default"
    print(f"loading {model_name} …", file=sys.stderr, flush=True)
    started = time.perf_counter()
    ner = _load_ner(args, pool=args.pool)
    print(f"loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    app = create_app(
        ner,
        model_name=model_name,
        max_batch_texts=args.max_batch_texts,
        max_wait_ms=args.max_wait_ms,
        max_text_chars=args.max_text_chars,
        default_examples=args.examples,
    )
    print(
        f"serving on http://{args.host}:{args.port} (docs at /docs; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _distill(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from raitner.distill.pipeline import distill, read_documents, sample_passages, split_passages
    from raitner.distill.prompts import default_teacher_prompt, get_teacher_prompt
    from raitner.distill.teacher import OpenAITeacher, TeacherCache
    from raitner.io.jsonl import write_examples

    prompt = get_teacher_prompt(args.prompt) if args.prompt else default_teacher_prompt(args.lang)
    if prompt.lang != args.lang:
        raise RaitnerError(f"teacher prompt {prompt.id} is for {prompt.lang!r}, not {args.lang!r}")
    if args.min_votes is not None and args.min_votes > len(args.teacher):
        raise RaitnerError(f"--min-votes {args.min_votes} with {len(args.teacher)} teacher(s)")
    token_spans = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)

        def token_spans(text: str) -> list[tuple[int, int]]:
            encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
            return [tuple(span) for span in encoded["offset_mapping"]]

    passages = [
        passage
        for path in args.inputs
        for doc_id, text in read_documents(path, args.text_field)
        for passage in split_passages(
            doc_id, text, max_tokens=args.max_passage_tokens, token_spans=token_spans
        )
    ]
    if not passages:
        raise RaitnerError(f"no text in {', '.join(map(str, args.inputs))}")
    chosen = sample_passages(passages, args.sample, args.seed)
    print(f"{len(passages)} passages, {len(chosen)} to annotate", file=sys.stderr)
    api_key = os.environ.get(args.api_key_env)
    teachers = []
    for spec in args.teacher:
        model, _, base_url = spec.partition("@")
        teachers.append(
            OpenAITeacher(
                model,
                base_url=base_url or args.base_url,
                api_key=api_key,
                temperature=args.temperature,
                max_tokens=args.max_tokens,
            )
        )
    cache = TeacherCache(
        args.cache or args.output.with_name(args.output.name + ".teacher-cache.jsonl")
    )
    with tqdm(total=len(chosen) * len(teachers), unit="answer", desc="distill") as bar:
        examples, stats = distill(
            chosen,
            teachers,
            prompt,
            cache=cache,
            concurrency=args.concurrency,
            min_votes=args.min_votes,
            keep_empty=args.keep_empty,
            on_answer=lambda: bar.update(1),
        )
    write_examples(args.output, examples)
    print(stats.summary(), file=sys.stderr)
    common = ", ".join(f"{t} ({n})" for t, n in stats.types.most_common(10))
    if common:
        print(f"most frequent types: {common}", file=sys.stderr)
    print(f"wrote {len(examples)} examples to {args.output} (answers cached in {cache.path})")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from raitner.reproduce.cli import run

    return run(args)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``), raised in the main thread so a long command stops the way
    Ctrl-C stops it: atomic writes roll back, a training keeps its last checkpoint and
    ``raitner reproduce`` writes the report of what finished."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    finally:
        os.close(devnull)


#: what an interrupted command keeps for the next run of the same command
_KEPT_WHEN_INTERRUPTED = {
    "train": "checkpoints are kept in --output-dir",
    "eval": "answers so far are journalled under --output",
    "predict": "answers so far are journalled in <output>.journal",
    "predict-ray": "texts answered so far are journalled in <output>.ray-journal.jsonl",
    "distill": "teacher answers so far are in the cache",
    "reproduce": "finished stages and their checkpoints are kept",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handlers = {
        ("data", "list"): _data_list,
        ("data", "stats"): _data_stats,
        ("data", "export"): _data_export,
        ("data", "split"): _data_split,
        ("build", None): _build,
        ("train", None): _train,
        ("extract", None): _extract,
        ("predict", None): _predict,
        ("serve", None): _serve,
        ("distill", None): _distill,
        ("eval", None): _eval,
        ("compare", None): _compare,
        ("reproduce", None): _reproduce,
    }
    handler = handlers[(args.command, getattr(args, "data_command", None))]
    try:
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        previous_sigterm = None
    try:
        return handler(args)
    except RaitnerError as err:
        print(f"raitner: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as err:
        print(f"raitner: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, Terminated)
        how = "terminated (SIGTERM)" if terminated else "interrupted"
        ray = args.command == "predict" and getattr(args, "ray_workers", None)
        kept = _KEPT_WHEN_INTERRUPTED.get("predict-ray" if ray else args.command)
        after = f"; {kept}: the same command resumes" if kept else ""
        print(f"raitner: {how}; no output was half-written{after}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # The reader of our output went away (`raitner … | head`): stop quietly, as a shell
        # tool does, and keep Python from failing again when it flushes stdout at exit.
        _silence_stdout()
        return 141  # 128 + SIGPIPE
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    sys.exit(main())
