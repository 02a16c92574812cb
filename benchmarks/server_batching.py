"""``raitner serve`` under concurrent clients: micro-batching on vs off, side by side.

The workload: ``--texts`` seeded test texts of one benchmark (MIT Restaurant by default, each
asked one question per type but ``misc``), sent as single-text ``POST /v1/extract`` requests by
``--clients`` concurrent client threads through FastAPI's TestClient (in-process ASGI, so the
network is not timed). The same loaded model answers both paths:

(a) ``max_batch_texts=1``: each request is one predictor call (its questions still batched by
    the backend), as a server without a request queue would do;
(b) ``max_batch_texts=B, max_wait_ms=W``: requests that arrive together are answered in one
    predictor call (:class:`raitner.server.MicroBatcher`).

The paths take turns on blocks of texts so that a load drifting on a shared machine weighs on
both alike. Printed: wall time, requests/s and the mean and largest batch of each path, the
speed-up (b)/(a), and how many responses differ (the target is none: batching must not change
answers).

Run: ``python benchmarks/server_batching.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference_throughput import default_data_root, load_sentences  # noqa: E402


def serve_block(client, texts, types, clients: int) -> tuple[float, list]:
    """Send every text as its own request from ``clients`` threads; (seconds, responses)."""

    def ask(index: int):
        body = {"text": texts[index], "labels": types[index]}
        response = client.post("/v1/extract", json=body)
        response.raise_for_status()
        return response.json()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        responses = list(pool.map(ask, range(len(texts))))
    return time.perf_counter() - started, responses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a raitner model folder or HF model (default: packaged)")
    parser.add_argument("--benchmark", default="mit_restaurant")
    parser.add_argument("--texts", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--max-batch-texts", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--block", type=int, default=16, help="texts per turn of each path")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--batch-size", type=int, default=16, help="questions per forward (OpenNER batch_size)"
    )
    parser.add_argument("--data-root", default=default_data_root())
    args = parser.parse_args(argv)

    import torch
    from fastapi.testclient import TestClient

    from raitner.api import OpenNER
    from raitner.server import create_app

    torch.set_num_threads(args.threads)
    texts, types, _ = load_sentences(args.data_root, args.texts, args.seed, [args.benchmark])
    ner = OpenNER.from_pretrained(
        args.model, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size
    )
    apps = {
        "(a) one request per call": create_app(ner, max_batch_texts=1, max_wait_ms=0),
        "(b) micro-batched": create_app(
            ner, max_batch_texts=args.max_batch_texts, max_wait_ms=args.max_wait_ms
        ),
    }
    seconds = dict.fromkeys(apps, 0.0)
    responses: dict[str, list] = {name: [] for name in apps}
    health = {}
    with (
        TestClient(apps["(a) one request per call"]) as plain,
        TestClient(apps["(b) micro-batched"]) as batched,
    ):
        clients = {"(a) one request per call": plain, "(b) micro-batched": batched}
        for client in clients.values():
            serve_block(client, texts[:1], types[:1], 1)  # warm-up, not timed
        for start in range(0, len(texts), args.block):
            block = slice(start, start + args.block)
            order = list(apps) if (start // args.block) % 2 == 0 else list(reversed(apps))
            for name in order:
                spent, answered = serve_block(
                    clients[name], texts[block], types[block], args.clients
                )
                seconds[name] += spent
                responses[name].extend(answered)
            print(f"  {min(start + args.block, len(texts))}/{len(texts)} texts", file=sys.stderr)
        for name, client in clients.items():
            health[name] = client.get("/health").json()

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    questions = sum(len(t) for t in types)
    print(f"command: {command}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{args.threads} torch thread(s); model: {args.model or 'packaged default'}"
    )
    print(
        f"{len(texts)} {args.benchmark} test texts (seed {args.seed}), {questions} questions, "
        f"{args.clients} concurrent clients, blocks of {args.block}, {args.batch_size} questions "
        f"per forward at most"
    )
    print("| path | wall | requests/s | predictor calls | mean / largest batch (texts) |")
    print("|---|---:|---:|---:|---:|")
    for name in apps:
        stats = health[name]
        calls = stats["batches"] - 1  # less the warm-up
        mean = (stats["texts"] - 1) / calls if calls else 0.0
        print(
            f"| {name} | {seconds[name]:.1f} s | {len(texts) / seconds[name]:.2f} | {calls} | "
            f"{mean:.1f} / {stats['largest_batch_texts']} |"
        )
    a, b = (seconds[name] for name in apps)
    differing = sum(x != y for x, y in zip(*responses.values(), strict=True))
    print(
        f"speed-up (b)/(a): {a / b:.2f}x requests/s; differing responses: {differing} of "
        f"{len(texts)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
