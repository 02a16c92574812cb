"""Resolving the data a command names: ``benchmark:split``, an annotated file (span JSONL as
raitner, doccano or Prodigy write it, UniversalNER conversation or Label Studio JSON, or
token/tag columns: :mod:`raitner.io.user_files`), or a packaged sample (``sample:NAME``),
each optionally followed by ``@N`` for a seeded random subset of N of its examples
(``ontonotes:dev@600``), kept in their original order.

A training mix is a list of such specs; ``@N`` lets each source contribute its own share
(the same seed always picks the same subset of a source).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from raitner.errors import RaitnerError, UnknownNameError
from raitner.io.jsonl import read_examples
from raitner.io.stats import ReadStats
from raitner.io.user_files import SUFFIXES, is_user_file, read_user_file
from raitner.schema import Example

SAMPLE_PREFIX = "sample:"
_SUBSET = re.compile(r"^(?P<base>.+)@(?P<count>\d+)$")
#: seed of ``@N`` subsets when the caller gives none
DEFAULT_SUBSET_SEED = 42


def split_subset(spec: str) -> tuple[str, int | None]:
    """``"conll2003:train@500"`` → ``("conll2003:train", 500)``; no ``@N`` → ``(spec, None)``.

    A spec that names an existing file is never split (file names may contain ``@``).
    """
    match = _SUBSET.match(spec)
    if match is None or Path(spec).exists():
        return spec, None
    return match["base"], int(match["count"])


def seeded_subset(examples: Sequence[Example], count: int, seed: int, what: str) -> list[Example]:
    """``count`` examples drawn without replacement with ``seed``, in their original order."""
    import numpy as np

    if count < 1:
        raise RaitnerError(f"{what}: a subset needs at least 1 example, got @{count}")
    if count > len(examples):
        raise RaitnerError(f"{what}: asks for {count} examples but the source has {len(examples)}")
    chosen = np.random.default_rng(seed).choice(len(examples), count, replace=False)
    return [examples[i] for i in sorted(chosen)]


def packaged_samples() -> dict[str, Path]:
    folder = resources.files("raitner") / "samples"
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".jsonl")
    }


def load_source(
    spec: str,
    data_root: str | Path | None = None,
    stats: ReadStats | None = None,
    seed: int = DEFAULT_SUBSET_SEED,
) -> list[Example]:
    """Examples named by ``spec``: ``sample:NAME``, an annotated file, or ``benchmark:split``,
    with an optional ``@N`` suffix (a subset of N drawn with ``seed``)."""
    base, count = split_subset(spec)
    examples = _load_whole_source(base, data_root, stats)
    if count is None:
        return examples
    return seeded_subset(examples, count, seed, spec)


def _load_whole_source(
    spec: str, data_root: str | Path | None, stats: ReadStats | None
) -> list[Example]:
    if spec.startswith(SAMPLE_PREFIX):
        name = spec[len(SAMPLE_PREFIX) :]
        samples = packaged_samples()
        if name not in samples:
            raise UnknownNameError("packaged sample", name, list(samples))
        return list(read_examples(samples[name]))
    path = Path(spec)
    if is_user_file(path):
        return read_user_file(path, stats)
    if ":" not in spec:
        raise RaitnerError(
            f"cannot read {spec!r}: expected BENCHMARK:SPLIT (see `raitner data list`), "
            f"an annotated file ({', '.join(SUFFIXES)}), a folder written by "
            f"Dataset.save_to_disk, or {SAMPLE_PREFIX}NAME"
        )
    from raitner.io.registry import load_benchmark

    name, split = spec.rsplit(":", 1)
    return load_benchmark(name, split, data_root, stats)


def load_sources(
    specs: Sequence[str], data_root: str | Path | None = None, seed: int = DEFAULT_SUBSET_SEED
) -> list[Example]:
    examples: list[Example] = []
    seen: set[str] = set()
    for spec in specs:
        for example in load_source(spec, data_root, seed=seed):
            if example.id in seen:
                raise RaitnerError(
                    f"example id {example.id!r} from {spec} appears twice in the inputs"
                )
            seen.add(example.id)
            examples.append(example)
    return examples
