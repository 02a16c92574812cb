"""Named benchmarks and their splits, read from a data root.

The data root is the folder laid out like the project's ``shared/data`` (``en/…``, ``zh/…``).
It comes from the ``data_root`` argument, else the ``RAITNER_DATA`` environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raitner.errors import RaitnerError, UnknownNameError
from raitner.io.stats import ReadStats
from raitner.schema import Example

DATA_ROOT_ENV = "RAITNER_DATA"

#: ``reader(path, *, lang, id_prefix, stats, **reader_kwargs)`` yields Examples with raw labels.
Reader = Callable[..., Iterable[Example]]


class DataRootError(RaitnerError, FileNotFoundError):
    """The data root or one of a benchmark's files is missing."""


@dataclass(frozen=True)
class Split:
    #: paths relative to the data root; several files are read in order and concatenated.
    files: tuple[str, ...]
    #: expected number of examples, from the data README (checked by the tests).
    size: int
    note: str = ""
    reader_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Benchmark:
    name: str
    lang: str
    description: str
    reader: Reader
    splits: Mapping[str, Split]
    #: raw label → natural-language entity type used in prompts; also fixes the label set order.
    #: Empty for open-type data: labels are kept and each example keeps the label set its
    #: reader gave it (the types its annotator was asked about).
    label_names: Mapping[str, str]
    source: str = ""
    license: str = ""
    #: evaluation-only under the zero-shot protocol (CrossNER, MIT): never in a training mix.
    zero_shot_eval: bool = False
    reader_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.label_names.values()))

    def split(self, split: str) -> Split:
        if split not in self.splits:
            raise UnknownNameError(f"split of {self.name}", split, list(self.splits))
        return self.splits[split]

    def load(
        self, split: str, data_root: str | Path | None = None, stats: ReadStats | None = None
    ) -> list[Example]:
        """Read a split, map labels to natural-language types and set each label set."""
        spec = self.split(split)
        root = resolve_data_root(data_root)
        stats = stats if stats is not None else ReadStats()
        examples: list[Example] = []
        for relative in spec.files:
            path = root / relative
            if not path.is_file():
                raise DataRootError(
                    f"{self.name}/{split}: file {relative} not found under data root {root}"
                )
            kwargs = {**self.reader_kwargs, **spec.reader_kwargs}
            for example in self.reader(
                path, lang=self.lang, id_prefix=f"{self.name}.{split}:", stats=stats, **kwargs
            ):
                renamed = example.relabel(self.label_names)
                if self.label_names:
                    renamed.label_set = self.types
                renamed.meta.setdefault("benchmark", self.name)
                renamed.meta.setdefault("split", split)
                examples.append(renamed)
        return examples


def resolve_data_root(data_root: str | Path | None = None) -> Path:
    candidate = data_root if data_root is not None else os.environ.get(DATA_ROOT_ENV)
    if candidate is None:
        raise DataRootError(
            f"no data root given: pass --data-root (or data_root=) or set {DATA_ROOT_ENV} "
            "to a folder laid out like shared/data (en/…, zh/…)"
        )
    root = Path(candidate).expanduser()
    if not root.is_dir():
        source = "--data-root" if data_root is not None else DATA_ROOT_ENV
        raise DataRootError(f"data root {root} (from {source}) is not a folder")
    return root


def _all_benchmarks() -> dict[str, Benchmark]:
    from raitner.io.benchmarks_en import BENCHMARKS as ENGLISH
    from raitner.io.benchmarks_zh import BENCHMARKS as CHINESE

    table: dict[str, Benchmark] = {}
    for benchmark in [*ENGLISH, *CHINESE]:
        if benchmark.name in table:
            raise RuntimeError(f"benchmark {benchmark.name} is registered twice")
        table[benchmark.name] = benchmark
    return table


_REGISTRY: dict[str, Benchmark] | None = None


def benchmarks() -> dict[str, Benchmark]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = _all_benchmarks()
    return _REGISTRY


def get_benchmark(name: str) -> Benchmark:
    table = benchmarks()
    if name not in table:
        raise UnknownNameError("benchmark", name, list(table))
    return table[name]


def load_benchmark(
    name: str, split: str, data_root: str | Path | None = None, stats: ReadStats | None = None
) -> list[Example]:
    """``load_benchmark("crossner_ai", "test")``; ``name`` may also be ``"crossner_ai:test"``."""
    return get_benchmark(name).load(split, data_root, stats)
