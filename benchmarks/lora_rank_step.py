"""Time a LoRA training step of the embedded SmolLM2 for several LoRA ranks, side by side.

    python benchmarks/lora_rank_step.py --ranks 8,32 --threads 2

One step is a forward and backward pass on a fixed random batch plus an AdamW update of the
LoRA weights, with LoRA on every linear layer but the output head (``raitner train``'s
``all-linear``) and alpha = 2 x rank. The ranks take turns, repeat after repeat, so that a
change in the machine's load falls on all of them alike; the figures printed are each rank's
median and its ratio to the first rank's.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", default="8,32", help="comma-separated LoRA ranks")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ranks = [int(rank) for rank in args.ranks.split(",") if rank.strip()]

    import torch
    from peft import LoraConfig, get_peft_model

    from raitner.models import load_causal_lm, resolve_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models, optimizers = {}, {}
    for rank in ranks:
        base, _ = load_causal_lm(resolve_model("default"), device="cpu", dtype=torch.float32)
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear"
        )
        models[rank] = get_peft_model(base, config)
        trainable = [p for p in models[rank].parameters() if p.requires_grad]
        optimizers[rank] = torch.optim.AdamW(trainable, lr=3e-4)
    ids = torch.randint(0, models[ranks[0]].config.vocab_size, (args.batch, args.tokens))

    def step(rank: int) -> float:
        started = time.perf_counter()
        models[rank](input_ids=ids, labels=ids).loss.backward()
        optimizers[rank].step()
        optimizers[rank].zero_grad(set_to_none=True)
        return time.perf_counter() - started

    for rank in ranks:  # warm-up: first-call allocations and the optimizer's state
        step(rank)
    times: dict[int, list[float]] = {rank: [] for rank in ranks}
    for _ in range(args.repeats):
        for rank in ranks:
            times[rank].append(step(rank))

    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(f"{args.threads} thread(s), batch {args.batch} x {args.tokens} tokens")
    first = statistics.median(times[ranks[0]])
    for rank in ranks:
        median = statistics.median(times[rank])
        trainable = sum(p.numel() for p in models[rank].parameters() if p.requires_grad)
        print(
            f"rank {rank:>3}: {trainable / 1e6:5.2f} M trainable, step median {median:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in times[rank])}), {median / first:.2f}x rank {ranks[0]}"
        )


if __name__ == "__main__":
    main()
