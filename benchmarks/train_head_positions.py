"""A CPU training step: the LM head over every position (TRL off CUDA) vs trained ones only.

raitner's trainer makes TRL's fused LM head score only the positions whose label is trained
(``raitner.train.lm_head``); TRL alone scores every position on a CPU. This times both on one
fixed batch of real training conversations, side by side in one process: after a warm-up step
of each, the two alternate for ``--rounds`` rounds, and the median wall and CPU seconds of
each are reported with their ratio, together with the loss of each (they must agree).

    python benchmarks/train_head_positions.py --model smollm2-135m-instruct --source conll2003:train
    python benchmarks/train_head_positions.py --model gemma3-270m --source msra:train --ra-it

``--ra-it`` prepends two examples to every conversation (random ones from the same source:
no embedder needed, about the lengths NN retrieval gives), as RA-IT training does. The batch
is the first ``--batch-size`` texts of at most ``--max-chars`` characters of the seeded source.
Nothing is downloaded; the embedded models are converted once beforehand.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path


def default_data_root() -> str:
    configured = os.environ.get("RAITNER_DATA")
    if configured:
        return configured
    return str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options :func:`build_batch` reads (the model, the source and the batch's shape)."""
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--source", default="conll2003:train")
    parser.add_argument("--ra-it", action="store_true", help="two random examples per text")
    parser.add_argument("--data-root", default=default_data_root())
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--pool", type=int, default=1000, help="texts examples are drawn from")
    parser.add_argument("--seed", type=int, default=42)


def describe_batch(args: argparse.Namespace, batch: dict) -> str:
    """``model M, SOURCE, batch RxL = N tokens, T`` (T: how many positions are trained)."""
    trained = int((batch["labels"][:, 1:] != -100).sum())
    return (
        f"model {args.model}, {args.source}{' RA-IT (2 random examples)' if args.ra_it else ''}, "
        f"batch {'x'.join(map(str, batch['input_ids'].shape))} = "
        f"{int(batch['attention_mask'].sum())} tokens, {trained}"
    )


def build_batch(args: argparse.Namespace, folder: Path) -> Path:
    from raitner.data.builder import BuildConfig, build_dataset
    from raitner.retrieval import HashingEmbedder, RetrievalConfig
    from raitner.sources import load_sources

    examples = load_sources([args.source], args.data_root, seed=args.seed)
    chosen = [ex for ex in examples if len(ex.text) <= args.max_chars][: args.batch_size]
    if len(chosen) < args.batch_size:
        raise SystemExit(
            f"{args.source} has only {len(chosen)} texts of at most {args.max_chars} characters"
        )
    # Random examples need no embedding; the builder asks for an embedder all the same.
    retrieval = RetrievalConfig(strategy="random", k=2, seed=args.seed) if args.ra_it else None
    path = folder / "batch.jsonl"
    build_dataset(
        chosen,
        path,
        BuildConfig(retrieval=retrieval, seed=args.seed),
        embedder=HashingEmbedder() if args.ra_it else None,
        pool=examples[: args.pool] if args.ra_it else None,
        sources=[args.source],
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batch_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    from raitner.train.config import TrainConfig
    from raitner.train.lm_head import score_every_position, score_trained_positions_only
    from raitner.train.sft import prepare

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        batch_file = build_batch(args, Path(tmp))
        config = TrainConfig(
            datasets=[str(batch_file)],
            output_dir=str(Path(tmp) / "out"),
            base_model=args.model,
            per_device_train_batch_size=args.batch_size,
            report_to="none",
            seed=args.seed,
        )
        run = prepare(config)
        trainer, model = run.trainer, run.trainer.model
        rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
        batch = trainer.data_collator(rows)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, not run here
        modes = {
            "every position": score_every_position,
            "trained only": score_trained_positions_only,
        }
        timings: dict[str, dict[str, list[float]]] = {m: {"wall": [], "cpu": []} for m in modes}
        losses: dict[str, float] = {}
        for round_ in range(args.rounds + 1):  # round 0 is the warm-up of each
            for mode, switch in modes.items():
                switch()
                wall, cpu = time.perf_counter(), time.process_time()
                loss = trainer.training_step(model, dict(batch))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                model.zero_grad(set_to_none=True)
                losses.setdefault(mode, float(loss))
                if round_:
                    timings[mode]["wall"].append(wall)
                    timings[mode]["cpu"].append(cpu)
        score_trained_positions_only()

    labels = batch["labels"][:, 1:]
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(
        f"{describe_batch(args, batch)} of "
        f"{labels.numel()} scored positions trained; {args.threads} thread(s), "
        f"median of {args.rounds} step(s) after a warm-up"
    )
    medians = {m: {k: statistics.median(v) for k, v in t.items()} for m, t in timings.items()}
    for mode in modes:
        print(
            f"  {mode:15s} wall {medians[mode]['wall']:7.2f} s   CPU {medians[mode]['cpu']:7.2f} s"
            f"   loss {losses[mode]:.6f}"
        )
    every, trained = medians["every position"], medians["trained only"]
    print(
        f"  speed-up (every / trained only): wall {every['wall'] / trained['wall']:.2f}x, "
        f"CPU {every['cpu'] / trained['cpu']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
