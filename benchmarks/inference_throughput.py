"""Inference speed: shared-prefix KV reuse (``PrefixReuseHFBackend``) vs one generate per prompt.

The workload is zero-shot open NER as the papers evaluate it: a fixed, seeded set of CrossNER
test sentences (the same number from each of the 5 domains: ai, literature, music, politics,
science), each asked one question per entity type of its domain (``misc`` excluded, as
UniversalNER and ``raitner eval`` do), vanilla prompts (no in-context examples), built by the
real ``Predictor`` / ``ra-it-en-v1`` template code and answered greedily by the embedded default
model (SmolLM2-135M-Instruct, untuned) unless ``--model`` names another. ``--benchmarks`` takes
other test sets instead (Chinese ones are asked with ``ra-it-zh-v1``), e.g. Boson and Weibo
with ``--model gemma3-270m``, whose sliding-window layers the prefix path packs batches for.

Two paths answer the same questions in one run:

(a) naive: ``HFBackend(batch_size=1)``, one ``model.generate`` per (text, type) prompt, as
    UniversalNER's HF inference script serves one question at a time;
(b) ``PrefixReuseHFBackend(batch_size=B)``: each text's shared prompt prefix prefilled once,
    its questions decoded together.

Printed for each: queries/s, texts/s, prompt tokens/s, the time and tokens of the multi-token
(prefill) forwards and of the one-token (decode) forwards, measured by hooks on the model, and
the model FLOP/s of the prefill forwards as a fraction of this machine's peak. Peak FLOP/s is
the best of a few timed square matmuls (``--peak-size``) in the model's dtype on its device;
model FLOPs are 2 x non-embedding parameters per token run (padding included) + 2 x vocab x
hidden per row whose logits are computed (attention-score FLOPs are left out). Then the
speed-up (b)/(a) and the number of answers that differ (the target is none).

Run: ``python benchmarks/inference_throughput.py`` (``--help`` for the options; ``--limit 20``
for a quick look; the full naive run takes long on a small CPU).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

DOMAINS = ("ai", "literature", "music", "politics", "science")


@dataclass
class ForwardLog:
    """Forward calls of the model, split into prefill (several new positions) and decode."""

    sync: object = None
    prefill_seconds: float = 0.0
    prefill_calls: int = 0
    prefill_tokens: int = 0  # rows x new positions (padding included)
    prefill_rows: int = 0
    decode_seconds: float = 0.0
    decode_calls: int = 0
    decode_tokens: int = 0
    _started: list[tuple[float, int, int]] = field(default_factory=list)

    def attach(self, model):
        pre = model.register_forward_pre_hook(self._before, with_kwargs=True)
        post = model.register_forward_hook(self._after, with_kwargs=True)
        return pre, post

    def _before(self, module, args, kwargs):
        input_ids = kwargs.get("input_ids")
        if input_ids is None:
            input_ids = args[0]
        rows, width = input_ids.shape
        if self.sync is not None:
            self.sync()
        self._started.append((time.perf_counter(), rows, width))

    def _after(self, module, args, kwargs, output):
        if self.sync is not None:
            self.sync()
        started, rows, width = self._started.pop()
        seconds = time.perf_counter() - started
        if width > 1:
            self.prefill_seconds += seconds
            self.prefill_calls += 1
            self.prefill_tokens += rows * width
            self.prefill_rows += rows
        else:
            self.decode_seconds += seconds
            self.decode_calls += 1
            self.decode_tokens += rows


class Contender:
    """One backend's accumulated answers, wall time and forward log."""

    def __init__(self, label: str, backend, sync) -> None:
        self.label = label
        self.backend = backend
        self.log = ForwardLog(sync=sync)
        self.seconds = 0.0
        self.answers: list[str] = []

    def run(
        self, model, predictor, texts: list[str], types: list[list[str]], per_call: int
    ) -> None:
        handles = self.log.attach(model)
        try:
            start = time.perf_counter()
            # questions handed to the backend per call (default: the whole block, so that a
            # text's questions are never split over two calls)
            predictions = predictor.predict(texts, types, batch_size=per_call)
            self.seconds += time.perf_counter() - start
        finally:
            for handle in handles:
                handle.remove()
        self.answers += [answer.answer for p in predictions for answer in p.answers]

    def report(
        self,
        n_texts: int,
        n_queries: int,
        prompt_tokens: int,
        non_embedding: int,
        head: int,
        peak: float,
    ) -> None:
        log, seconds = self.log, self.seconds
        prefill = max(log.prefill_seconds, 1e-9)
        achieved = (2 * non_embedding * log.prefill_tokens + 2 * head * log.prefill_rows) / prefill
        plain = (2 * non_embedding * prompt_tokens + 2 * head * n_queries) / prefill
        print(f"\n{self.label}")
        print(
            f"  wall {seconds:9.1f} s   {n_queries / seconds:8.3f} queries/s   "
            f"{n_texts / seconds:7.4f} texts/s   {prompt_tokens / seconds:9.1f} prompt tokens/s"
        )
        print(
            f"  prefill forwards {log.prefill_calls:6d}: {log.prefill_seconds:8.1f} s, "
            f"{log.prefill_tokens:,} tokens run (padding incl.) for {prompt_tokens:,} prompt "
            f"tokens: {prompt_tokens / prefill:8.1f} prompt tokens/s, "
            f"{log.prefill_tokens / prefill:8.1f} tokens run/s"
        )
        print(
            f"  prefill model FLOP/s {achieved / 1e9:7.1f} G = {achieved / peak:6.1%} of peak; "
            f"prompt tokens/s as plain-prefill FLOP/s {plain / 1e9:7.1f} G = "
            f"{plain / peak:6.1%} of peak"
        )
        print(
            f"  decode forwards {log.decode_calls:7d}: {log.decode_seconds:8.1f} s, "
            f"{log.decode_tokens:,} tokens ({log.decode_tokens / max(log.decode_seconds, 1e-9):.1f}"
            f" tokens/s); other {seconds - log.prefill_seconds - log.decode_seconds:.1f} s"
        )
        stats = getattr(self.backend, "stats", None)
        if stats is not None:
            print(
                f"  prefix reuse: {stats.groups} prefix groups, {stats.unique_prompts} distinct "
                f"prompts; real tokens run: prefix {stats.prefix_tokens:,} + suffix "
                f"{stats.suffix_tokens:,} = {stats.prefix_tokens + stats.suffix_tokens:,} of "
                f"{stats.prompt_tokens:,} prompt tokens"
            )


def default_data_root() -> str:
    configured = os.environ.get("RAITNER_DATA")
    if configured:
        return configured
    return str(Path(__file__).resolve().parents[1].parent / "shared" / "data")


def load_sentences(data_root: str, limit: int, seed: int, benchmarks: list[str]):
    """``(texts, types per text, language)``: ``limit`` test texts, as evenly as possible per
    benchmark (``name`` or ``name:split``, test by default), each with all the benchmark's
    types but ``misc``."""
    from raitner.evaluate.runner import seeded_subset
    from raitner.io.registry import get_benchmark

    texts: list[str] = []
    types: list[list[str]] = []
    languages = set()
    for k, name in enumerate(benchmarks):
        count = limit // len(benchmarks) + (1 if k < limit % len(benchmarks) else 0)
        benchmark, _, split = name.partition(":")
        spec = get_benchmark(benchmark)
        languages.add(spec.lang)
        benchmark_types = [t for t in spec.types if t != "misc"]
        for example in seeded_subset(spec.load(split or "test", data_root), count, seed):
            texts.append(example.text)
            types.append(list(benchmark_types))
    if len(languages) != 1:
        raise SystemExit(f"--benchmarks mixes languages {sorted(languages)}: give one language")
    return texts, types, languages.pop()


def peak_flops(torch, device, dtype, size: int, repeats: int = 5) -> float:
    """Best FLOP/s of ``repeats`` timed ``size x size`` matmuls (after one warm-up)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best = float("inf")
    for attempt in range(repeats + 1):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        if attempt:
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or hub id (default: embedded)")
    parser.add_argument(
        "--data-root", default=None, help="default: $RAITNER_DATA or ../shared/data"
    )
    parser.add_argument(
        "--benchmarks",
        default=",".join(f"crossner_{domain}" for domain in DOMAINS),
        help="comma-separated benchmarks of one language, name or name:split (default: the 5 "
        "CrossNER domains)",
    )
    parser.add_argument("--limit", type=int, default=200, help="texts (split over benchmarks)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--batch-size", type=int, default=32, help="rows decoded together by the fast path(s)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: its)")
    parser.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    parser.add_argument("--dtype", default=None, help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--peak-size", type=int, default=2048, help="matmul size for peak FLOP/s")
    parser.add_argument(
        "--also-batched",
        action="store_true",
        help="also time HFBackend(batch_size=B) (batched generate, no prefix reuse)",
    )
    parser.add_argument("--skip-naive", action="store_true", help="time only the fast path(s)")
    parser.add_argument("--block", type=int, default=20, help="texts per turn of each path")
    parser.add_argument(
        "--questions-per-call",
        type=int,
        default=0,
        help="the predictor's batch: questions per backend call (default 0: a whole block)",
    )
    parser.add_argument("--progress", action="store_true", help="print the times after each block")
    args = parser.parse_args(argv)

    import torch

    from raitner.infer.backends import HFBackend
    from raitner.infer.predictor import Predictor
    from raitner.infer.prefix_backend import PrefixReuseHFBackend
    from raitner.models import load_causal_lm
    from raitner.prompts.templates import get_template

    print(f"command: {shlex.join(sys.orig_argv)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    data_root = args.data_root or default_data_root()
    benchmarks = [name.strip() for name in args.benchmarks.split(",") if name.strip()]
    texts, types, language = load_sentences(data_root, args.limit, args.seed, benchmarks)

    started = time.perf_counter()
    model, tokenizer = load_causal_lm(args.model, device=args.device, dtype=args.dtype)
    model.eval()
    loaded = time.perf_counter() - started
    device, dtype = model.device, model.dtype
    embedding = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    output_embedding = model.get_output_embeddings()
    tied = output_embedding is not None and output_embedding.weight is embedding
    non_embedding = total - embedding.numel() - (0 if tied else output_embedding.weight.numel())
    vocab, hidden = embedding.shape
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"python {platform.python_version()}, torch {torch.__version__}; "
        f"torch threads {torch.get_num_threads()}; device {device}, {dtype}; load average "
        f"{os.getloadavg()[0]:.1f} at start (a shared machine: compare paths of one run only)"
    )
    print(
        f"model: {args.model or 'embedded default (SmolLM2-135M-Instruct, untuned)'}; "
        f"{total / 1e6:.1f} M parameters ({non_embedding / 1e6:.1f} M non-embedding, "
        f"vocab {vocab} x {hidden}); loaded in {loaded:.1f} s"
    )
    peak = peak_flops(torch, device, dtype, args.peak_size)
    print(f"peak: {peak / 1e9:.1f} GFLOP/s (best {args.peak_size}^2 {dtype} matmul)")

    template = get_template("ra-it-zh-v1" if language == "zh" else "ra-it-en-v1")
    probe = Predictor(HFBackend(model, tokenizer), template, show_progress=False)
    conversations = probe.conversations(texts, types)
    n_queries = len(conversations)
    print(
        f"workload: {len(texts)} test texts ({', '.join(benchmarks)}; seed "
        f"{args.seed}), {n_queries} questions (all types of the benchmark but misc), vanilla "
        f"prompts, greedy, max_new_tokens {args.max_new_tokens}; paths take turns on blocks of "
        f"{args.block} texts; questions per backend call: "
        f"{args.questions_per_call or 'all of a block'}"
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    paths: list[Contender] = []
    fast_label = f"(b) PrefixReuseHFBackend(batch_size={args.batch_size})"
    naive_label = "(a) naive: HFBackend(batch_size=1), one generate per prompt"
    if not args.skip_naive:
        paths.append(Contender(naive_label, HFBackend(model, tokenizer, batch_size=1), sync))
    paths.append(
        Contender(
            fast_label, PrefixReuseHFBackend(model, tokenizer, batch_size=args.batch_size), sync
        )
    )
    if args.also_batched:
        label = f"(c) HFBackend(batch_size={args.batch_size}), no prefix reuse"
        paths.append(
            Contender(label, HFBackend(model, tokenizer, batch_size=args.batch_size), sync)
        )
    for path in paths:
        path.backend.generate(conversations[:2], 2)  # warm-up, not timed
        if hasattr(path.backend, "stats"):
            path.backend.stats = type(path.backend.stats)()

    # The paths take turns on blocks of texts (in rotating order), so that a load that drifts
    # during the run (a shared machine) weighs on all of them alike.
    block = max(1, args.block)
    for number, offset in enumerate(range(0, len(texts), block)):
        for k in range(len(paths)):
            path = paths[(number + k) % len(paths)]
            predictor = Predictor(
                path.backend, template, max_new_tokens=args.max_new_tokens, show_progress=False
            )
            path.run(
                model,
                predictor,
                texts[offset : offset + block],
                types[offset : offset + block],
                args.questions_per_call or 1_000_000,
            )
        if args.progress:
            done = min(offset + block, len(texts))
            print(
                f"  ... {done}/{len(texts)} texts: "
                + ", ".join(f"{p.label.split(')')[0]}) {p.seconds:.0f} s" for p in paths)
                + "; answers differing from the first path: "
                + ", ".join(
                    str(sum(x != y for x, y in zip(p.answers, paths[0].answers, strict=True)))
                    for p in paths[1:]
                ),
                flush=True,
            )

    prompt_tokens = sum(
        len(tokenizer(paths[0].backend.render(c), add_special_tokens=False)["input_ids"])
        for c in conversations
    )
    for path in paths:
        path.report(len(texts), n_queries, prompt_tokens, non_embedding, vocab * hidden, peak)

    print()
    reuse = paths[0 if args.skip_naive else 1].backend
    window = reuse.attention_window()
    if window is not None:
        print(
            f"sliding window {window} tokens: {reuse.stats.plain_prompts} of "
            f"{reuse.stats.unique_prompts} distinct prompts did not fit it with max_new_tokens "
            "and went the plain path"
        )
    if args.skip_naive and args.also_batched:
        fast, batched = paths
        differing = sum(x != y for x, y in zip(fast.answers, batched.answers, strict=True))
        print(
            f"(b)/(c) speed-up: {batched.seconds / fast.seconds:.2f}x queries/s; answers "
            f"differing from (c): {differing} of {n_queries}"
        )
    if not args.skip_naive:
        naive = paths[0]
        for path in paths[1:]:
            differing = [
                k
                for k, (x, y) in enumerate(zip(path.answers, naive.answers, strict=True))
                if x != y
            ]
            print(
                f"{path.label.split(')')[0]})/(a) speed-up: {naive.seconds / path.seconds:.2f}x "
                f"queries/s; answers differing from (a): {len(differing)} of {n_queries}"
            )
            for k in differing[:3]:
                print(f"  question {k}: {path.answers[k]!r} vs {naive.answers[k]!r}")
        fast = paths[1]
        print(
            f"target: >= 5x queries/s with identical answers: "
            f"{naive.seconds / fast.seconds >= 5 and fast.answers == naive.answers}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
