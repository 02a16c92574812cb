"""Speed of exact top-K retrieval: raitner's blocked ``exact_top_k`` vs the RA-IT authors' scan.

The workload is RA-IT training retrieval at the paper's sizes: every item of a 50,000-item pool
(384-dim L2-normalised float32 embeddings, fixed seed) gets its 128 nearest neighbours from the
pool itself, itself excluded (K = 128 is what diverse NN draws from).

The baseline re-implements, per query, what the authors' ``retrieve_similar_examples`` /
``get_similar_examples_by_emb`` (``src/data_process/5.gen_rag_it_data.py``) do: put the pool
embeddings (float64, as their ``gen_emb.py`` saves them) in a pandas DataFrame, ``apply`` the
``cosine_similarity`` of OpenAI's ``embeddings_utils`` (``dot / (norm * norm)``) to every row, full
``np.argsort``, reverse, then walk the order skipping the query itself. (Their loop ``continue``s
without advancing on the query itself, which never terminates; the re-implementation advances.)
It runs on a subset of the queries, against the full pool, and the neighbours are compared.

Run: ``python benchmarks/retrieval_topk.py`` (``--help`` for sizes and threads).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time

import numpy as np

from raitner.retrieval.index import auto_block_size, default_threads, exact_top_k


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """OpenAI ``embeddings_utils.cosine_similarity``, which the authors import."""
    return np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))


def authors_scan(
    query_emb: np.ndarray, query_id: str, src_emb: np.ndarray, src_ids: list[str], k: int
) -> list[int]:
    """One query as in ``get_similar_examples_by_emb``: cosine to every item, full sort."""
    try:
        import pandas as pd
    except ImportError:
        sims = np.array([cosine_similarity(x, query_emb) for x in src_emb])
    else:
        src_emb_df = pd.DataFrame(columns=["embedding"])
        src_emb_df["embedding"] = list(src_emb)
        src_emb_df["similarity"] = src_emb_df.embedding.apply(
            lambda x: cosine_similarity(x, query_emb)
        )
        sims = src_emb_df["similarity"]
    sorted_idxes = np.argsort(sims).tolist()
    sorted_idxes.reverse()
    selected: list[int] = []
    cnt = 0
    while len(selected) < k:
        candidate = sorted_idxes[cnt]
        cnt += 1
        if src_ids[candidate] == query_id:
            continue
        selected.append(candidate)
    return selected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=50_000, help="pool size (= number of queries)")
    parser.add_argument("--dim", type=int, default=384, help="embedding dimension")
    parser.add_argument("--k", type=int, default=128, help="neighbours per query")
    parser.add_argument("--baseline-queries", type=int, default=2_000, help="queries scanned")
    parser.add_argument("--block-size", type=int, default=None, help="default: automatic")
    parser.add_argument("--threads", type=int, default=None, help="default: available cores")
    parser.add_argument("--rescore", action="store_true", help="also time rescore=True")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(f"command: {shlex.join(sys.orig_argv)}")
    threads = args.threads or default_threads()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
        f"({default_threads()} available); python {platform.python_version()}, "
        f"numpy {np.__version__}; worker threads {threads}, 1 BLAS thread each, "
        f"block {args.block_size or auto_block_size(args.pool)} queries"
    )
    rng = np.random.default_rng(args.seed)
    pool = rng.standard_normal((args.pool, args.dim), dtype=np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    ids = [f"item{i}" for i in range(args.pool)]
    n = args.pool
    print(f"workload: top-{args.k} of each of {n:,} items in the pool itself (self excluded)")

    def timed(label: str, **kwargs: object) -> tuple[np.ndarray, np.ndarray, float]:
        start, cpu = time.perf_counter(), time.process_time()
        idx, scores = exact_top_k(
            pool,
            pool,
            args.k,
            query_ids=ids,
            key_ids=ids,
            block_size=args.block_size,
            n_threads=threads,
            **kwargs,  # type: ignore[arg-type]
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"{label:<28} {seconds:8.2f} s total  {1e3 * seconds / n:8.3f} ms/query  "
            f"(CPU {cpu:.1f} s)"
        )
        return idx, scores, seconds

    ours_idx, ours_scores, ours_seconds = timed("exact_top_k numpy")
    assert not (ours_idx == np.arange(n)[:, None]).any(), "self retrieved"
    if args.rescore:
        re_idx, _, _ = timed("exact_top_k numpy rescore")
        same = (re_idx == ours_idx).all(axis=1).mean()
        print(f"  identical neighbour lists to plain numpy: {same:.2%}")
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("faiss: not installed")
    else:
        faiss_idx, _, _ = timed("exact_top_k faiss")
        same = (faiss_idx == ours_idx).all(axis=1).mean()
        print(f"  identical neighbour lists to numpy: {same:.2%}")

    m = min(args.baseline_queries, n)
    subset = rng.choice(n, size=m, replace=False)
    pool64 = pool.astype(np.float64)
    start = time.perf_counter()
    baseline = np.array([authors_scan(pool64[i], ids[i], pool64, ids, args.k) for i in subset])
    base_seconds = time.perf_counter() - start
    print(
        f"{'authors per-query scan':<28} {base_seconds:8.2f} s total  "
        f"{1e3 * base_seconds / m:8.3f} ms/query  ({m:,} queries)"
    )
    ratio = (base_seconds / m) / (ours_seconds / n)
    print(f"per-query speed-up of exact_top_k over the authors' scan: {ratio:,.0f}x")

    same_rows = (baseline == ours_idx[subset]).all(axis=1)
    exact64 = pool64[subset] @ pool64.T
    exact64[np.arange(m), subset] = -np.inf
    gaps = np.diff(-np.sort(-exact64, axis=1)[:, : args.k + 1], axis=1)
    near_tie = (np.abs(gaps) < 1e-6).any(axis=1)
    print(
        f"same neighbours on the {m:,}-query subset: {same_rows.sum():,}/{m:,} lists identical; "
        f"the {(~same_rows).sum()} others all have two of their top {args.k + 1} scores within "
        f"1e-6: {bool(near_tie[~same_rows].all())}"
    )
    print(
        f"targets: <= 15 s for {n:,} queries: {ours_seconds <= 15}; "
        f">= 100x per query: {ratio >= 100}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
