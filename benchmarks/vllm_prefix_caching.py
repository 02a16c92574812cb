"""Speed of vLLM's automatic prefix caching on RA-IT inference: caching off and on, one run.

The workload is the one RA-IT inference produces: 200 CrossNER test sentences drawn with a fixed
seed from the five domains' test splits (AI, literature, music, politics, science, read in that
order with ``raitner.io.registry.load_benchmark``), each asked about every entity type of its
domain, with vanilla prompts (no in-context examples). The conversations come from the real
code path, ``Predictor.conversations`` with the model's template; every question of a text
shares the system, text and acknowledgement turns, and only the last question differs.

Each setting gets its own fresh engine (``VLLMBackend.from_pretrained`` with
``enable_prefix_caching`` off, then on; everything else equal), is warmed up on other sentences,
has its prefix cache emptied, and then answers the whole workload, handed over in one
``generate`` call by default (``--batch-size`` hands it over in blocks, as the predictor does).
Printed: seconds, questions/s, texts/s, the ratio, vLLM's prefix-cache hit rate where its
metrics are readable, whether both settings gave the same answers, and the exact command.

Run on a machine with a CUDA GPU and vLLM (``pip install 'raitner[vllm]'``)::

    python benchmarks/vllm_prefix_caching.py --model PATH --data-root shared/data

``--model`` is a raitner model folder (its base model must be on that machine), a Hugging Face
id or a model folder; without it, the package's default. A machine without internet access
needs the weights on its disk; one that only receives a small working tree (the project's lent
GPU machines take at most 64 MiB) can only run a tiny model carried with it. ``--dry-run``
builds and describes the workload with the model's tokenizer only (no vLLM, no GPU).
"""

from __future__ import annotations

import argparse
import platform
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from raitner.infer.backends import DEFAULT_MAX_NEW_TOKENS, HFBackend
from raitner.infer.predictor import Predictor
from raitner.infer.vllm_backend import (
    VLLMBackend,
    VLLMNotAvailableError,
    import_vllm,
    prefix_grouped_order,
)
from raitner.io.registry import get_benchmark, load_benchmark
from raitner.prompts.templates import default_template_id, get_template

DOMAINS = ("ai", "literature", "music", "politics", "science")


def crossner_workload(
    data_root: str | Path | None, n_texts: int, seed: int, n_warmup: int = 16
) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """``(workload, warm-up)``, each a list of ``(text, labels)``: ``n_texts`` sentences drawn
    with ``seed`` from the pooled CrossNER test splits, each with all its domain's types, and
    ``n_warmup`` other sentences drawn after them."""
    pool: list[tuple[str, list[str]]] = []
    for domain in DOMAINS:
        name = f"crossner_{domain}"
        types = list(get_benchmark(name).types)
        pool += [(example.text, types) for example in load_benchmark(name, "test", data_root)]
    if n_texts + n_warmup > len(pool):
        raise SystemExit(f"--texts {n_texts}: only {len(pool) - n_warmup} sentences can be drawn")
    chosen = [pool[i] for i in random.Random(seed).sample(range(len(pool)), n_texts + n_warmup)]
    return chosen[:n_texts], chosen[n_texts:]


def model_tokenizer_and_template(model: str | None) -> tuple[Any, str]:
    """The tokenizer that renders the prompts (a raitner folder's own) and the template id."""
    from transformers import AutoTokenizer

    from raitner.api import read_model_config, template_of
    from raitner.models import packaged_default_model, resolve_model

    source = model if model is not None else packaged_default_model()
    config = read_model_config(source) if source is not None else None
    if config is None:
        return AutoTokenizer.from_pretrained(resolve_model(source)), default_template_id("en")
    return AutoTokenizer.from_pretrained(source), template_of(config, "en")


def shared_prefix_share(tokenizer: Any, renderer: HFBackend, conversations: list) -> float:
    """Share of prompt tokens that repeat the start of the prompt sent just before (in the
    backend's grouped order): what a perfect prefix cache could skip."""
    order = prefix_grouped_order(conversations)
    prompts = [renderer.render(conversations[i]) for i in order]
    encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    shared = 0
    for previous, current in zip(encoded, encoded[1:], strict=False):
        common = 0
        for a, b in zip(previous, current, strict=False):
            if a != b:
                break
            common += 1
        shared += common
    return shared / max(1, sum(len(ids) for ids in encoded))


def prefix_cache_counters(llm: Any) -> tuple[float, float] | None:
    """vLLM's cumulative (hits, queries) prefix-cache token counters, when it exposes them."""
    try:
        metrics = llm.get_metrics()
    except Exception:  # older engines, or metrics switched off: report n/a
        return None
    found: dict[str, float] = {}
    for metric in metrics:
        name = str(getattr(metric, "name", "")).removesuffix("_total")
        if name in ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries"):
            found[name] = found.get(name, 0.0) + float(getattr(metric, "value", 0.0))
    if len(found) != 2:
        return None
    return found["vllm:prefix_cache_hits"], found["vllm:prefix_cache_queries"]


def timed_run(
    args: argparse.Namespace, caching: bool, conversations: list, warmup: list
) -> dict[str, Any]:
    engine: dict[str, Any] = {
        "dtype": args.dtype,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "enforce_eager": args.enforce_eager,
        "disable_log_stats": False,  # keeps the prefix-cache counters readable
    }
    if args.max_model_len is not None:
        engine["max_model_len"] = args.max_model_len
    started = time.perf_counter()
    backend = VLLMBackend.from_pretrained(
        args.model,
        enable_prefix_caching=caching,
        merge_lora=args.merge_lora,
        constrained=args.constrained,
        **engine,
    )
    load_seconds = time.perf_counter() - started
    try:
        backend.generate(warmup, args.max_new_tokens)
        reset = getattr(backend.llm, "reset_prefix_cache", None)
        if callable(reset):
            reset()
        before = prefix_cache_counters(backend.llm)
        block = args.batch_size or len(conversations)
        started = time.perf_counter()
        answers: list[str] = []
        for offset in range(0, len(conversations), block):
            answers += backend.generate(conversations[offset : offset + block], args.max_new_tokens)
        seconds = time.perf_counter() - started
        after = prefix_cache_counters(backend.llm)
    finally:
        backend.close()
    hit_rate = None
    if before is not None and after is not None and after[1] > before[1]:
        hit_rate = (after[0] - before[0]) / (after[1] - before[1])
    return {"seconds": seconds, "load": load_seconds, "answers": answers, "hit_rate": hit_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="raitner folder, HF id or model folder")
    parser.add_argument("--data-root", default=None, help="shared/data (default: $RAITNER_DATA)")
    parser.add_argument("--texts", type=int, default=200, help="sentences in the workload")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence draw")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    parser.add_argument(
        "--batch-size", type=int, default=None, help="questions per generate call (default: all)"
    )
    parser.add_argument("--dtype", default="auto", help="vLLM dtype (auto, bfloat16, float16 …)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.4)
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs")
    parser.add_argument("--merge-lora", action="store_true", help="merge a folder's adapter")
    parser.add_argument("--constrained", action="store_true", help="JSON-list answers")
    parser.add_argument(
        "--dry-run", action="store_true", help="describe the workload only (no vLLM, no GPU)"
    )
    args = parser.parse_args(argv)

    print(f"command: {shlex.join(sys.orig_argv)}")
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    if not args.dry_run:
        try:
            vllm = import_vllm()
        except VLLMNotAvailableError as error:
            print(f"cannot run: {error}", file=sys.stderr)
            return 1
        import torch

        if not torch.cuda.is_available():
            print("cannot run: vLLM needs a CUDA GPU and none is visible", file=sys.stderr)
            return 1
        print(f"vLLM {vllm.__version__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")

    tokenizer, template_id = model_tokenizer_and_template(args.model)
    renderer = HFBackend(None, tokenizer)
    workload, warmup_workload = crossner_workload(args.data_root, args.texts, args.seed)
    texts = [text for text, _ in workload]
    predictor = Predictor(renderer, get_template(template_id), show_progress=False)
    conversations = predictor.conversations(texts, [labels for _, labels in workload])
    warmup = predictor.conversations(
        [text for text, _ in warmup_workload], [labels for _, labels in warmup_workload]
    )
    share = shared_prefix_share(tokenizer, renderer, conversations)
    print(
        f"workload: {len(texts)} CrossNER test sentences (seed {args.seed}), "
        f"{len(conversations)} questions, template {template_id}, "
        f"max_new_tokens {args.max_new_tokens}; {share:.0%} of prompt tokens repeat the "
        "previous prompt's start"
    )
    if args.dry_run:
        return 0

    results = {}
    for caching in (False, True):
        results[caching] = timed_run(args, caching, conversations, warmup)
    print(
        f"{'prefix caching':<16}{'load s':>8}{'run s':>9}{'questions/s':>13}{'texts/s':>9}"
        f"{'cache hits':>12}"
    )
    for caching, result in results.items():
        hits = result["hit_rate"]
        print(
            f"{'on' if caching else 'off':<16}{result['load']:>8.1f}{result['seconds']:>9.2f}"
            f"{len(conversations) / result['seconds']:>13.1f}"
            f"{len(texts) / result['seconds']:>9.2f}"
            f"{'n/a' if hits is None else f'{hits:.0%}':>12}"
        )
    ratio = results[False]["seconds"] / results[True]["seconds"]
    same = sum(
        a == b for a, b in zip(results[False]["answers"], results[True]["answers"], strict=True)
    )
    print(f"speed-up with prefix caching: {ratio:.2f}x")
    print(f"identical answers: {same}/{len(conversations)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
