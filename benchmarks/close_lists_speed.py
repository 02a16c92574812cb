"""close_lists: the time it saves and the answers it changes, free decoding beside it, one run.

The workload is zero-shot open NER as ``raitner eval`` asks it: ``--per-benchmark`` test texts
of each of the seven zero-shot benchmarks (CrossNER x 5, MIT Movie, MIT Restaurant), drawn
with ``raitner.evaluate.runner.seeded_subset`` and ``--seed``, each asked every type of its
benchmark but ``misc``, no in-context examples, conversations built by the real ``Predictor``
(long texts split into windows as ``raitner eval`` does) and answered by the
``hf-prefix`` backend of the model (default: the package's fine-tuned default) with
``--max-new-tokens`` (64, as the evaluations in ``docs/RESULTS.md``).

The same conversations are answered twice per block of ``--block`` texts, free and with
``close_lists`` (:mod:`raitner.infer.list_ending`), in alternating order from block to block,
on one loaded model, so both see the same machine load. Printed: seconds and questions/s of
each, the ratio, the tokens decoded (the backend's counters), how many answers ``close_lists``
ended, and the check it rests on: every answer with ``close_lists`` equals
``end_list(free answer)``. Then the exact command.

Run: ``python benchmarks/close_lists_speed.py --data-root ../shared/data``
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time

from zero_shot_workload import add_workload_arguments, load_workload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser, per_benchmark=20)
    parser.add_argument("--block", type=int, default=10, help="texts per turn of each setting")
    args = parser.parse_args(argv)

    import torch

    from raitner.api import OpenNER
    from raitner.infer.list_ending import ListEnding, end_list

    if args.threads:
        torch.set_num_threads(args.threads)
    ner = OpenNER.from_pretrained(
        args.model, backend="hf-prefix", batch_size=args.batch_size, close_lists=False
    )
    backend = ner.backend
    texts, labels = load_workload(args)

    # warm-up (first forwards allocate): a few questions, untimed
    backend.generate(ner.predictor.conversations(texts[:1], labels[:1])[:4], 8)

    seconds = {"free": 0.0, "close_lists": 0.0}
    decoded = {"free": 0, "close_lists": 0}
    questions = ended = differing = 0
    blocks = range(0, len(texts), args.block)
    for number, start in enumerate(blocks):
        conversations = ner.predictor.conversations(
            texts[start : start + args.block], labels[start : start + args.block]
        )
        order = ("free", "close_lists") if number % 2 == 0 else ("close_lists", "free")
        answers = {}
        for setting in order:
            backend.reply_ending = ListEnding() if setting == "close_lists" else None
            before = backend.stats.decode_tokens
            began = time.perf_counter()
            answers[setting] = backend.generate(conversations, args.max_new_tokens)
            seconds[setting] += time.perf_counter() - began
            decoded[setting] += backend.stats.decode_tokens - before
        questions += len(conversations)
        for free, closed in zip(answers["free"], answers["close_lists"], strict=True):
            ended += free != closed
            differing += closed != end_list(free)
        print(
            f"block {number + 1}/{len(blocks)}: {questions} questions, "
            f"free {seconds['free']:.1f} s, close_lists {seconds['close_lists']:.1f} s",
            file=sys.stderr,
        )

    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, model {args.model or 'packaged default'}"
    )
    print(f"{len(texts)} texts, {questions} questions, max_new_tokens {args.max_new_tokens}")
    print("| decoding | seconds | questions/s | tokens decoded |")
    print("|---|---:|---:|---:|")
    for setting in ("free", "close_lists"):
        print(
            f"| {setting} | {seconds[setting]:.1f} | {questions / seconds[setting]:.2f} | "
            f"{decoded[setting]} |"
        )
    print(f"time ratio free / close_lists: {seconds['free'] / seconds['close_lists']:.2f}x")
    print(f"answers close_lists changed: {ended} of {questions}")
    print(f"answers that are not end_list(free answer): {differing} (the target is 0)")
    print("command: python " + shlex.join([sys.argv[0], *(argv or sys.argv[1:])]))
    return 1 if differing else 0


if __name__ == "__main__":
    raise SystemExit(main())
