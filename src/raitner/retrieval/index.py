"""Exact top-K by inner product (cosine similarity for L2-normalised vectors).

Why exact and not approximate: RA-IT retrieval pools are small (5K-50K passages) and the paper's
strategies are defined on the true nearest neighbours, so an approximate index would change the
training data. The numpy backend computes the scores with blocked matrix products and selects the
top K of every row without a per-query Python loop:

1. the scores of a block of queries against every key come from one ``sgemm`` call;
2. the key columns are cut into groups (strided, so the cut is a free reshape); the group maxima
   are one SIMD reduction, and only the K groups with the largest maxima can hold the top K of a
   row, which leaves ~K*L of the ~N scores to select from;
3. the K-th largest of those is found with ``np.partition`` and every score ``>=`` it is kept, so
   keys tied with the K-th are never cut at random; a row for which a group outside the chosen
   ones reaches that value (a tie across groups) is redone on its full row.

Ties are broken deterministically: higher score first, then lower key index. Keys with
byte-identical vectors (duplicate passages in a pool) are scored once, so their scores are equal
by construction and they come out in index order.

Reproducibility: float32 BLAS results depend in the last bit on the matrix shapes, on where a
row sits in its block and on the number of BLAS threads. Each matrix product therefore runs on
one BLAS thread (parallelism comes from worker threads over blocks, see ``n_threads``), so that
identical inputs and ``block_size`` give bitwise identical output. With ``rescore=True`` the
candidates (every key within a proven rounding bound of the K-th score) are re-scored with
numpy's fixed-order dot product and ranked by that, so the output no longer depends on the block
size or on the order of the queries: ``retrieve`` uses it. For inputs whose dot products are
exact (small integers, as in the tests) every setting gives the same output.

Self-exclusion is by id, as in the RA-IT training setup where the pool is the query set itself:
with ``query_ids`` and ``key_ids``, a key whose id equals the query's id is never returned.

When fewer than ``k`` keys are available (small pool, or excluded keys), rows are padded with
index ``-1`` and score ``-inf`` on the right.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from raitner.errors import RaitnerError, UnknownNameError

BACKENDS = ("numpy", "faiss")

#: Upper bounds of the automatic block size: single-threaded sgemm reaches its full speed at
#: ~1024 query rows (the packing of the keys is amortised), and each worker holds one block of
#: scores, at most ``_BLOCK_BYTES`` (a 50K pool: 1024 rows, 200 MB per worker).
_MAX_BLOCK_ROWS = 1024
_BLOCK_BYTES = 256 << 20

_UNIT_ROUNDOFF = 2.0**-24


class MissingDependencyError(RaitnerError, ImportError):
    """An optional package needed for the requested feature is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the {package!r} package: pip install 'raitner[{extra}]' "
            f"(or pip install {package})"
        )


def default_threads() -> int:
    """CPU cores this process may run on (the affinity mask, not the machine's core count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def exact_top_k(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    *,
    query_ids: Sequence[object] | None = None,
    key_ids: Sequence[object] | None = None,
    block_size: int | None = None,
    backend: str = "numpy",
    n_threads: int | None = None,
    rescore: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` keys with the largest inner product for every query.

    Args:
        queries: ``(nq, d)`` vectors; L2-normalise them (and ``keys``) for cosine similarity.
        keys: ``(nk, d)`` vectors.
        k: neighbours per query; may exceed the number of keys (rows are then padded).
        query_ids, key_ids: give both to exclude, for each query, the keys with the same id.
        block_size: query rows per matrix product; default: up to 1024, as many as fit in
            256 MB of scores (see the module notes on reproducibility).
        backend: ``"numpy"`` or ``"faiss"`` (``IndexFlatIP``; same candidate and tie rules, but
            FAISS's own sgemm, so without ``rescore`` its float32 scores can differ from numpy's
            in the last bit and two keys that close can come out in the other order).
        n_threads: worker threads over blocks; default: the CPU cores available.
        rescore: recompute the candidates' scores with a fixed-order dot product and rank by
            those, so that scores and order do not depend on the block size or on where a query
            sits in the batch (costs a gather of ~k key vectors per query).

    Returns:
        ``(indices, scores)``: int64 and float32 arrays of shape ``(nq, k)``, best first, ties
        broken by lower key index, padded with ``-1`` / ``-inf`` when fewer keys are available.
    """
    q = _as_matrix(queries, "queries")
    x = _as_matrix(keys, "keys")
    if q.shape[1] != x.shape[1]:
        raise ValueError(f"queries have dimension {q.shape[1]}, keys {x.shape[1]}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if backend not in BACKENDS:
        raise UnknownNameError("index backend", backend, list(BACKENDS))
    if (query_ids is None) != (key_ids is None):
        raise ValueError("give both query_ids and key_ids (self-exclusion by id) or neither")
    nq, nk = q.shape[0], x.shape[0]
    indices = np.full((nq, k), -1, dtype=np.int64)
    scores = np.full((nq, k), -np.inf, dtype=np.float32)
    if nq == 0 or nk == 0 or k == 0:
        return indices, scores

    excluded = _ExcludedPairs.build(query_ids, key_ids, nq, nk)
    units = _KeyUnits.build(x)
    # Searching k + (most keys excluded for one query) units and dropping the excluded afterwards
    # is exact: each of those units holds at least one key that would precede a missing one.
    units_needed = min(units.count, k + excluded.max_per_query)
    threads = n_threads if n_threads is not None else default_threads()
    if backend == "faiss":
        unit_idx, unit_scores = _faiss_top_units(
            q, units.vectors, units_needed, block_size, rescore
        )
    else:
        unit_idx, unit_scores = _numpy_top_units(
            q, units.vectors, units_needed, block_size, threads, rescore
        )
    units.expand_into(unit_idx, unit_scores, excluded, indices, scores)
    return indices, scores


def _as_matrix(array: np.ndarray, what: str) -> np.ndarray:
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array, got shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    return matrix


class _ExcludedPairs:
    """For each query row, the key indices it must not get (padded with -1)."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.max_per_query = table.shape[1]

    @classmethod
    def build(
        cls,
        query_ids: Sequence[object] | None,
        key_ids: Sequence[object] | None,
        n_queries: int,
        n_keys: int,
    ) -> _ExcludedPairs:
        if query_ids is None or key_ids is None:
            return cls(np.full((n_queries, 0), -1, dtype=np.int64))
        if len(query_ids) != n_queries or len(key_ids) != n_keys:
            raise ValueError(
                f"got {len(query_ids)} query ids for {n_queries} queries and "
                f"{len(key_ids)} key ids for {n_keys} keys"
            )
        positions: dict[object, list[int]] = {}
        for j, key_id in enumerate(key_ids):
            positions.setdefault(key_id, []).append(j)
        same = [positions.get(query_id, ()) for query_id in query_ids]
        table = np.full((n_queries, max(map(len, same), default=0)), -1, dtype=np.int64)
        for i, keys in enumerate(same):
            table[i, : len(keys)] = keys
        return cls(table)

    def mask_rows(self, cols: np.ndarray) -> np.ndarray:
        """``cols[i, j]`` is excluded for query ``i``."""
        mask = np.zeros(cols.shape, dtype=bool)
        for slot in range(self.max_per_query):
            mask |= cols == self.table[:, slot : slot + 1]
        return mask

    def mask_entries(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``cols[e]`` is excluded for query ``rows[e]``."""
        mask = np.zeros(cols.shape, dtype=bool)
        for slot in range(self.max_per_query):
            mask |= cols == self.table[rows, slot]
        return mask


class _KeyUnits:
    """Distinct key vectors ("units") in order of first occurrence, and their member keys.

    Scoring each distinct vector once makes duplicate keys tie exactly; ordering the units by
    first occurrence makes "lower unit index" mean "lower key index" in the tie rule.
    """

    def __init__(
        self, vectors: np.ndarray, members: np.ndarray | None, offsets: np.ndarray | None
    ) -> None:
        self.vectors = vectors
        self.members = members
        self.offsets = offsets
        self.count = vectors.shape[0]

    @classmethod
    def build(cls, keys: np.ndarray) -> _KeyUnits:
        if np.unique(_row_hashes(keys)).size == keys.shape[0]:
            return cls(keys, None, None)
        row_bytes = np.dtype((np.void, keys.shape[1] * keys.itemsize))
        rows = keys.view(row_bytes).ravel()
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        if first.size == keys.shape[0]:
            return cls(keys, None, None)
        order = np.argsort(first, kind="stable")
        unit_of_key = np.empty(first.size, dtype=np.int64)
        unit_of_key[order] = np.arange(first.size)
        unit_of_key = unit_of_key[inverse.ravel()]
        members = np.argsort(unit_of_key, kind="stable")
        offsets = np.zeros(first.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(unit_of_key, minlength=first.size), out=offsets[1:])
        return cls(np.ascontiguousarray(keys[first[order]]), members, offsets)

    def expand_into(
        self,
        unit_idx: np.ndarray,
        unit_scores: np.ndarray,
        excluded: _ExcludedPairs,
        out_idx: np.ndarray,
        out_scores: np.ndarray,
    ) -> None:
        """Turn ranked units into ranked keys, drop excluded keys, keep the first k per row."""
        if self.members is None:
            keep = (unit_idx >= 0) & ~excluded.mask_rows(unit_idx)
            rank = np.cumsum(keep, axis=1) - 1
            k, width = out_idx.shape[1], unit_idx.shape[1]
            source = np.flatnonzero(keep & (rank < k))
            target = (source // width) * k + rank.ravel()[source]
            out_idx.ravel()[target] = unit_idx.ravel()[source]
            out_scores.ravel()[target] = unit_scores.ravel()[source]
            return
        assert self.offsets is not None
        rows, slots = np.nonzero(unit_idx >= 0)
        units = unit_idx[rows, slots]
        sizes = self.offsets[units + 1] - self.offsets[units]
        starts = np.repeat(self.offsets[units], sizes)
        within = np.arange(starts.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        cols = self.members[starts + within]
        rows = np.repeat(rows, sizes)
        scores = np.repeat(unit_scores[unit_idx >= 0], sizes)
        keep = ~excluded.mask_entries(rows, cols)
        rows, cols, scores = rows[keep], cols[keep], scores[keep]
        # Members of tied units interleave by key index.
        order = np.lexsort((cols, -scores, rows))
        _scatter_first_k(rows[order], cols[order], scores[order], out_idx, out_scores)


def _row_hashes(vectors: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """A 64-bit hash of each row's bytes (integer arithmetic: equal rows, equal hashes)."""
    words = vectors.view(np.uint32)
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=words.shape[1], dtype=np.uint64)
    hashes = np.empty(words.shape[0], dtype=np.uint64)
    for start in range(0, words.shape[0], chunk):
        block = words[start : start + chunk].astype(np.uint64)
        hashes[start : start + chunk] = (block * (multipliers | np.uint64(1))).sum(axis=1)
    return hashes


def _scatter_first_k(
    rows: np.ndarray,
    cols: np.ndarray,
    scores: np.ndarray,
    out_idx: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Write the first ``k`` entries of each row (entries grouped by row, in rank order)."""
    k = out_idx.shape[1]
    if rows.size == 0:
        return
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts
    take = rank < k
    out_idx[rows[take], rank[take]] = cols[take]
    out_scores[rows[take], rank[take]] = scores[take]


def _group_length(n_cols: int, k: int) -> int:
    """Group length L minimising the work of the two selection passes (~N/L + L*k per row)."""
    ideal = math.sqrt(n_cols / max(k, 1))
    return int(min(256, max(8, 2 ** round(math.log2(max(ideal, 1.0))))))


def _rounding_margins(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per query, a bound on how far two float32 dot-product orders can disagree.

    Any summation order of a length-d float32 dot product is within ``gamma_d * |q| * |x|`` of
    the exact value (``gamma_d = d u / (1 - d u)``, Higham); two such computations differ by at
    most twice that, and a candidate set that must contain the top K under either order needs
    twice that again below the K-th score.
    """
    d = queries.shape[1]
    gamma = d * _UNIT_ROUNDOFF / (1 - d * _UNIT_ROUNDOFF)
    key_norm = float(np.sqrt((keys.astype(np.float64) ** 2).sum(axis=1).max()))
    query_norms = np.sqrt((queries.astype(np.float64) ** 2).sum(axis=1))
    return (4 * gamma * query_norms * key_norm * 1.001).astype(np.float64)


def _candidates_in_rows(
    scores: np.ndarray, n_valid: int, k: int, margins: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every entry of ``scores[:, :n_valid]`` >= (its row's k-th largest - margin).

    A superset of each row's top ``k`` that keeps every key tied with the k-th (and, with
    margins, every key within rounding of it), as ``(rows, cols, values)`` sorted by row then
    column. ``scores`` may be wider than ``n_valid`` (padding columns must hold ``-inf``); when
    its width is a multiple of ``_group_length(n_valid, k)`` the grouped pre-selection is used.
    Requires ``1 <= k <= n_valid`` and finite values in the valid columns.
    """
    width = scores.shape[1]
    group = _group_length(n_valid, k)
    n_groups = width // group
    if width % group == 0 and n_groups > 2 * k:
        return _grouped_candidates(scores, n_valid, k, group, n_groups, margins)
    return _row_candidates(scores[:, :n_valid], k, margins)


def _row_candidates(
    scores: np.ndarray, k: int, margins: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = scores.shape[1]
    threshold = np.partition(scores, n - k, axis=1)[:, n - k].astype(np.float64)
    if margins is not None:
        threshold -= margins
    rows, cols = np.nonzero(scores >= threshold[:, None])
    return rows, cols.astype(np.int64), scores[rows, cols]


def _grouped_candidates(
    scores: np.ndarray,
    n_valid: int,
    k: int,
    group: int,
    n_groups: int,
    margins: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_rows = scores.shape[0]
    # Group g holds columns g, g + G, g + 2G, ...: the reduction runs over contiguous rows of G.
    strided = scores.reshape(n_rows, group, n_groups)
    group_max = strided.max(axis=1)
    part = np.argpartition(group_max, n_groups - k - 1, axis=1)
    chosen = np.sort(part[:, n_groups - k :], axis=1)
    best_left_out = np.take_along_axis(group_max, part[:, n_groups - k - 1 : n_groups - k], 1)
    vals = np.take_along_axis(strided, chosen[:, None, :], axis=2).reshape(n_rows, group * k)
    width = vals.shape[1]
    threshold = np.partition(vals, width - k, axis=1)[:, width - k].astype(np.float64)
    if margins is not None:
        threshold -= margins
    # A group left out whose maximum reaches the threshold may hold a candidate: redo that row.
    complete = best_left_out[:, 0] < threshold
    mask = vals >= threshold[:, None]
    mask[~complete] = False
    rows, pos = np.nonzero(mask)
    cols = (pos // k) * n_groups + chosen[rows, pos % k]
    found = [(rows, cols, vals[rows, pos])]
    for row in np.flatnonzero(~complete):
        margin = None if margins is None else margins[row : row + 1]
        _, r_cols, r_vals = _row_candidates(scores[row : row + 1, :n_valid], k, margin)
        found.append((np.full(r_cols.size, row, dtype=np.int64), r_cols, r_vals))
    rows = np.concatenate([f[0] for f in found])
    cols = np.concatenate([f[1] for f in found])
    vals = np.concatenate([f[2] for f in found])
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order], vals[order]


def _rank_order(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, width: int
) -> np.ndarray:
    """Order by (row, score descending, column): one integer sort instead of a lexsort.

    The float32 scores map to unsigned integers in the same order, so the three keys pack into
    one uint64 when the row and column numbers leave room (always, for 256-row blocks and pools
    under 16M keys); ``np.lexsort`` is the general fallback.
    """
    row_bits = max(1, int(n_rows - 1).bit_length())
    col_bits = max(1, int(width - 1).bit_length())
    if row_bits + 32 + col_bits > 64:
        return np.lexsort((cols, -vals, rows))
    raw = (vals.astype(np.float32) + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    low32 = np.uint64(0xFFFFFFFF)
    ascending = np.where(raw >> np.uint64(31), ~raw & low32, raw | np.uint64(1 << 31))
    descending = low32 - ascending
    packed = (
        (rows.astype(np.uint64) << np.uint64(32 + col_bits))
        | (descending << np.uint64(col_bits))
        | cols.astype(np.uint64)
    )
    return np.argsort(packed)


def _finish_rows(
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    queries: np.ndarray,
    keys: np.ndarray,
    rescore: bool,
    out_idx: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Rank candidates (local ``rows`` of ``queries``) and write each row's first k."""
    if rescore:
        # numpy's own fixed-order loop: the same value for a pair wherever its row sits.
        vals = np.einsum("ij,ij->i", keys[cols], queries[rows])
    order = _rank_order(rows, cols, vals, out_idx.shape[0], keys.shape[0])
    _scatter_first_k(rows[order], cols[order], vals[order], out_idx, out_scores)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[bool]:
    """One BLAS thread per matrix product, so results do not depend on the thread count.

    Yields whether the limit could be set (it needs ``threadpoolctl``); without it the products
    use the BLAS default and the blocks run one after the other.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


def auto_block_size(n_keys: int) -> int:
    """Query rows per block: up to 1024, a multiple of 64, and at most 256 MB of scores."""
    rows = _BLOCK_BYTES // (4 * max(n_keys, 1))
    return int(min(_MAX_BLOCK_ROWS, max(64, rows // 64 * 64)))


def _numpy_top_units(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    block_size: int | None,
    n_threads: int,
    rescore: bool,
) -> tuple[np.ndarray, np.ndarray]:
    nq, nk = queries.shape[0], keys.shape[0]
    group = _group_length(nk, k)
    width = -(-nk // group) * group
    if width // group <= 2 * k:
        width = nk
    if block_size is None:
        block_size = auto_block_size(width)
    padded = keys
    if width != nk:
        padded = np.zeros((width, keys.shape[1]), dtype=np.float32)
        padded[:nk] = keys
    margins = _rounding_margins(queries, keys) if rescore else None
    out_idx = np.full((nq, k), -1, dtype=np.int64)
    out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
    buffers = threading.local()

    def run_block(start: int) -> None:
        stop = min(start + block_size, nq)
        buffer = getattr(buffers, "scores", None)
        if buffer is None:
            buffer = np.empty((block_size, width), dtype=np.float32)
            buffers.scores = buffer
        block = buffer[: stop - start]
        np.matmul(queries[start:stop], padded.T, out=block)
        block[:, nk:] = -np.inf
        margin = None if margins is None else margins[start:stop]
        rows, cols, vals = _candidates_in_rows(block, nk, k, margin)
        _finish_rows(
            rows,
            cols,
            vals,
            queries[start:stop],
            keys,
            rescore,
            out_idx[start:stop],
            out_scores[start:stop],
        )

    starts = range(0, nq, block_size)
    with _single_threaded_blas() as limited:
        _run(run_block, starts, n_threads if limited else 1)
    return out_idx, out_scores


def _run(task: Callable[[int], None], items: range, n_threads: int) -> None:
    if n_threads <= 1 or len(items) <= 1:
        for item in items:
            task(item)
        return
    with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
        for _ in pool.map(task, items):
            pass


def _faiss_top_units(
    queries: np.ndarray, keys: np.ndarray, k: int, block_size: int | None, rescore: bool
) -> tuple[np.ndarray, np.ndarray]:
    """FAISS ``IndexFlatIP`` search, then the numpy backend's candidate and tie rules.

    FAISS orders tied scores arbitrarily and stops at the neighbours it was asked for, so a few
    more are fetched; a row whose last fetched score still reaches the candidate threshold (a
    tie, or a near-tie when rescoring) is recomputed with numpy.
    """
    try:
        import faiss
    except ImportError as error:
        raise MissingDependencyError("faiss-cpu", "faiss", "the faiss index backend") from error
    nq, nk = queries.shape[0], keys.shape[0]
    fetch = min(nk, k + (8 if rescore else 1))
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(keys)
    found_scores, found_idx = index.search(queries, fetch)
    found_idx = found_idx.astype(np.int64)
    threshold = found_scores[:, k - 1].astype(np.float64)
    if rescore:
        threshold -= _rounding_margins(queries, keys)
    keep = (found_idx >= 0) & (found_scores >= threshold[:, None])
    redo = np.zeros(nq, dtype=bool)
    if fetch < nk:
        redo = found_scores[:, -1] >= threshold
    keep[redo] = False
    rows, slots = np.nonzero(keep)
    out_idx = np.full((nq, k), -1, dtype=np.int64)
    out_scores = np.full((nq, k), -np.inf, dtype=np.float32)
    _finish_rows(
        rows,
        found_idx[rows, slots],
        found_scores[rows, slots].astype(np.float32),
        queries,
        keys,
        rescore,
        out_idx,
        out_scores,
    )
    redo_rows = np.flatnonzero(redo)
    if redo_rows.size:
        redo_idx, redo_scores = _numpy_top_units(
            queries[redo_rows], keys, k, block_size, 1, rescore
        )
        out_idx[redo_rows], out_scores[redo_rows] = redo_idx, redo_scores
    return out_idx, out_scores
