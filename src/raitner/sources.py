"""Resolving the data a command names: ``benchmark:split``, a raitner JSONL file, or a
packaged sample (``sample:NAME``)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from raitner.errors import RaitnerError, UnknownNameError
from raitner.io.jsonl import read_examples
from raitner.io.stats import ReadStats
from raitner.schema import Example

SAMPLE_PREFIX = "sample:"


def packaged_samples() -> dict[str, Path]:
    folder = resources.files("raitner") / "samples"
    return {
        Path(entry.name).stem: Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".jsonl")
    }


def load_source(
    spec: str, data_root: str | Path | None = None, stats: ReadStats | None = None
) -> list[Example]:
    """Examples named by ``spec``: ``sample:NAME``, a ``.jsonl`` path, or ``benchmark:split``."""
    if spec.startswith(SAMPLE_PREFIX):
        name = spec[len(SAMPLE_PREFIX) :]
        samples = packaged_samples()
        if name not in samples:
            raise UnknownNameError("packaged sample", name, list(samples))
        return list(read_examples(samples[name]))
    path = Path(spec)
    if path.suffix == ".jsonl" or path.exists():
        if not path.is_file():
            raise RaitnerError(f"input file {path} not found")
        return list(read_examples(path))
    if ":" not in spec:
        raise RaitnerError(
            f"cannot read {spec!r}: expected BENCHMARK:SPLIT (see `raitner data list`), "
            f"a raitner .jsonl file, or {SAMPLE_PREFIX}NAME"
        )
    from raitner.io.registry import load_benchmark

    name, split = spec.rsplit(":", 1)
    return load_benchmark(name, split, data_root, stats)


def load_sources(specs: Sequence[str], data_root: str | Path | None = None) -> list[Example]:
    examples: list[Example] = []
    seen: set[str] = set()
    for spec in specs:
        for example in load_source(spec, data_root):
            if example.id in seen:
                raise RaitnerError(
                    f"example id {example.id!r} from {spec} appears twice in the inputs"
                )
            seen.add(example.id)
            examples.append(example)
    return examples
