"""Time a LoRA training step of the embedded SmolLM2 for several LoRA ranks, side by side.

    python benchmarks/lora_rank_step.py --ranks 8,32 --threads 2 --ra-it

Each rank gets the trainer ``raitner train`` builds (``raitner.train.sft.prepare`` with
``lora_r`` = rank and ``lora_alpha`` = 2 x rank, LoRA on every linear layer but the head), and
one step is that trainer's ``training_step`` (forward and backward, the LM head scoring only the
trained positions, as ``raitner train`` does on a CPU) plus an AdamW update of the LoRA weights,
on one fixed batch of real training conversations (built as ``train_head_positions.py`` builds
it; ``--ra-it`` prepends two examples to each). The ranks take turns, repeat after repeat, so
that a change in the machine's load falls on all of them alike; the figures printed are each
rank's median wall time and its ratio to the first rank's.

Session 44's version timed a random 4 x 512 batch with the loss over every position, whose LM
head (49,152 entries) outweighed what the rank adds; this one times the step training runs.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from train_head_positions import add_batch_arguments, build_batch, describe_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="8,32", help="comma-separated LoRA ranks")
    add_batch_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    ranks = [int(rank) for rank in args.ranks.split(",") if rank.strip()]
    if not ranks or min(ranks) < 1:
        parser.error("--ranks takes positive integers, e.g. 8,32")

    import torch

    from raitner.train.config import TrainConfig
    from raitner.train.sft import prepare

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        batch_file = build_batch(args, Path(tmp))
        trainers, batch = {}, None
        for rank in ranks:
            config = TrainConfig(
                datasets=[str(batch_file)],
                output_dir=str(Path(tmp) / f"out-{rank}"),
                base_model=args.model,
                per_device_train_batch_size=args.batch_size,
                lora_r=rank,
                lora_alpha=2 * rank,
                report_to="none",
                seed=args.seed,
            )
            trainer = prepare(config).trainer
            trainer.create_optimizer()
            trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, not run here
            trainers[rank] = trainer
            if batch is None:
                rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
                batch = trainer.data_collator(rows)

        def step(rank: int) -> float:
            trainer = trainers[rank]
            started = time.perf_counter()
            trainer.training_step(trainer.model, dict(batch))
            trainer.optimizer.step()
            trainer.optimizer.zero_grad(set_to_none=True)
            return time.perf_counter() - started

        for rank in ranks:  # warm-up: first-call allocations and the optimizer's state
            step(rank)
        times: dict[int, list[float]] = {rank: [] for rank in ranks}
        for _ in range(args.repeats):
            for rank in ranks:
                times[rank].append(step(rank))

    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(
        f"{describe_batch(args, batch)} trained; "
        f"{args.threads} thread(s), median of {args.repeats} step(s) after a warm-up"
    )
    first = statistics.median(times[ranks[0]])
    for rank in ranks:
        median = statistics.median(times[rank])
        model = trainers[rank].model
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(
            f"rank {rank:>3}: {trainable / 1e6:5.2f} M trainable, step median {median:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in times[rank])}), {median / first:.2f}x rank {ranks[0]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
