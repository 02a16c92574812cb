"""A LoRA model folder at inference: its update merged into the base weights, or kept apart.

``OpenNER.from_pretrained`` merges a folder's LoRA update into the base weights once at load
(``merge_lora=True``, peft's ``merge_and_unload``); before, every forward pass computed the
adapter's two low-rank products beside each adapted layer. This measures what merging saves
and checks what it must not change: the answers.

The workload is zero-shot open NER as ``raitner eval`` asks it: ``--per-benchmark`` test texts
of each of the seven zero-shot benchmarks (CrossNER x 5, MIT Movie, MIT Restaurant), drawn
with ``raitner.evaluate.runner.seeded_subset`` and ``--seed``, each asked every type of its
benchmark but ``misc``, no in-context examples, conversations built by the real ``Predictor``
and answered by the ``hf-prefix`` backend with ``--max-new-tokens`` (64, as the evaluations in
``docs/RESULTS.md``) and the model folder's own decoding (``close_lists`` for the default).

The model (default: the package's fine-tuned default; ``--model`` for another folder, e.g. a
rank-32 candidate) is loaded twice, merged and apart; the same conversations are answered by
both per block of ``--block`` texts, in alternating order from block to block, so both see the
same machine load. Printed: seconds and questions/s of each, the ratio, and how many answers
differ (merging changes the float rounding of each adapted layer, so a greedy answer may part
where two tokens are nearly tied; the expected count is 0 or close to it). Then the command.

Run: ``python benchmarks/lora_merge_inference.py --data-root ../shared/data``
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time

from zero_shot_workload import add_workload_arguments, load_workload

SETTINGS = ("apart", "merged")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_arguments(parser, per_benchmark=10)
    parser.add_argument("--block", type=int, default=5, help="texts per turn of each setting")
    args = parser.parse_args(argv)

    import torch

    from raitner.api import OpenNER

    if args.threads:
        torch.set_num_threads(args.threads)
    models = {
        setting: OpenNER.from_pretrained(
            args.model,
            backend="hf-prefix",
            batch_size=args.batch_size,
            merge_lora=setting == "merged",
        )
        for setting in SETTINGS
    }
    kinds = {setting: type(ner.backend.model).__name__ for setting, ner in models.items()}
    if kinds["apart"] == kinds["merged"]:
        print(f"the model is not a LoRA folder ({kinds['apart']}): nothing to merge")
        return 2
    texts, labels = load_workload(args)

    predictor = models["apart"].predictor
    # warm-up (first forwards allocate): a few questions each, untimed
    for ner in models.values():
        ner.backend.generate(predictor.conversations(texts[:1], labels[:1])[:4], 8)

    seconds = dict.fromkeys(SETTINGS, 0.0)
    questions = 0
    differing: list[tuple[str, str]] = []
    blocks = range(0, len(texts), args.block)
    for number, start in enumerate(blocks):
        conversations = predictor.conversations(
            texts[start : start + args.block], labels[start : start + args.block]
        )
        order = SETTINGS if number % 2 == 0 else SETTINGS[::-1]
        answers = {}
        for setting in order:
            began = time.perf_counter()
            answers[setting] = models[setting].backend.generate(conversations, args.max_new_tokens)
            seconds[setting] += time.perf_counter() - began
        questions += len(conversations)
        differing += [
            (apart, merged)
            for apart, merged in zip(answers["apart"], answers["merged"], strict=True)
            if apart != merged
        ]
        print(
            f"block {number + 1}/{len(blocks)}: {questions} questions, apart "
            f"{seconds['apart']:.1f} s, merged {seconds['merged']:.1f} s",
            file=sys.stderr,
        )

    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{torch.get_num_threads()}, model {args.model or 'packaged default'} "
        f"(apart: {kinds['apart']}, merged: {kinds['merged']})"
    )
    print(f"{len(texts)} texts, {questions} questions, max_new_tokens {args.max_new_tokens}")
    print("| LoRA update | seconds | questions/s |")
    print("|---|---:|---:|")
    for setting in SETTINGS:
        print(f"| {setting} | {seconds[setting]:.1f} | {questions / seconds[setting]:.2f} |")
    print(f"time ratio apart / merged: {seconds['apart'] / seconds['merged']:.2f}x")
    print(f"answers that differ: {len(differing)} of {questions}")
    for apart, merged in differing[:5]:
        print(f"  apart {apart!r} / merged {merged!r}")
    print("command: python " + shlex.join([sys.argv[0], *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
