"""Time one forward + backward pass of the embedded SmolLM2 on a fixed batch, for a thread count.

    python benchmarks/train_step_threads.py --threads 1
    python benchmarks/train_step_threads.py --threads 2

Run the two commands one after the other on the same machine state to see whether a second
torch thread helps when the cores are shared with other processes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from raitner.models import load_causal_lm, resolve_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, _ = load_causal_lm(resolve_model("default"), device="cpu", dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.tokens))
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        times.append(time.perf_counter() - started)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    print(
        f"{args.threads} thread(s), batch {args.batch} x {args.tokens} tokens: "
        + ", ".join(f"{t:.1f} s" for t in times)
    )


if __name__ == "__main__":
    main()
