"""Named benchmarks and their splits, read from a data root.

The data root is the folder laid out like the project's ``shared/data`` (``en/…``, ``zh/…``).
It comes from the ``data_root`` argument, else the ``RAITNER_DATA`` environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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

    def files(self, split: str, data_root: str | Path | None = None) -> list[Path]:
        """The files of a split under the data root; a missing root, split or file is an error.

        Cheap, so a command can check its inputs before it loads a model.
        """
        spec = self.split(split)
        root = resolve_data_root(data_root)
        paths = [root / relative for relative in spec.files]
        for relative, path in zip(spec.files, paths, strict=True):
            if not path.is_file():
                raise DataRootError(
                    f"{self.name}/{split}: file {relative} not found under data root {root}"
                )
        return paths

    def load(
        self, split: str, data_root: str | Path | None = None, stats: ReadStats | None = None
    ) -> list[Example]:
        """Read a split, map labels to natural-language types and set each label set."""
        spec = self.split(split)
        stats = stats if stats is not None else ReadStats()
        examples: list[Example] = []
        for path in self.files(split, data_root):
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


@dataclass(frozen=True)
class FileBenchmark:
    """An annotated file evaluated like a benchmark (``raitner eval --benchmarks FILE``).

    Its name is the file's stem; its types are the labels of its entities in order of first
    appearance, together with any text's own label set (a raitner JSONL ``label_set``). It has
    one split, the one it was added as: an in-domain pool must come from another file.
    """

    name: str
    path: Path
    split_name: str
    lang: str
    types: tuple[str, ...]
    sha256: str
    examples: tuple[Example, ...] = field(repr=False, compare=False)
    label_names: Mapping[str, str] = field(default_factory=dict)
    #: the column its tags were read from, when chosen (``FILE:COLUMN``)
    tag_column: str | None = None

    def files(self, split: str, data_root: str | Path | None = None) -> list[Path]:
        """The file itself, for its one split (no data root needed)."""
        if split != self.split_name:
            raise RaitnerError(
                f"{self.path} is one file, evaluated as the {self.split_name!r} split: it has no "
                f"{split!r} split (for examples from a pool, name the pool's file with --pool)"
            )
        return [self.path]

    def load(
        self, split: str, data_root: str | Path | None = None, stats: ReadStats | None = None
    ) -> list[Example]:
        self.files(split, data_root)
        return [replace(example, label_set=self.types) for example in self.examples]

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What its predictions depend on besides the settings: the file and its content."""
        fingerprint = {"path": str(self.path), "sha256": self.sha256}
        if self.label_names:
            fingerprint["label_names"] = dict(self.label_names)
        if self.tag_column is not None:
            fingerprint["tag_column"] = self.tag_column
        return fingerprint


_FILES: dict[str, FileBenchmark] = {}


def add_file_benchmark(
    path: str | Path, split: str = "test", label_names: Mapping[str, str] | None = None
) -> FileBenchmark:
    """Read an annotated file (:mod:`raitner.io.user_files`) and make it a benchmark named by
    its stem, for this process; the name must not be a registered benchmark's or another
    file's. ``label_names`` renames its labels (tag → type asked); others are kept."""
    from raitner.io.files import content_sha256
    from raitner.io.user_files import read_user_file, split_tag_column, types_of, user_file_name

    base, tag_column = split_tag_column(path)
    path = base.resolve()
    spec = path if tag_column is None else f"{path}:{tag_column}"
    examples = read_user_file(spec)
    if label_names:
        examples = [example.relabel(label_names) for example in examples]
    if not examples:
        raise RaitnerError(f"{path}: no examples to evaluate on")
    name = user_file_name(spec)
    if name in benchmarks():
        raise RaitnerError(
            f"{path}: its name {name!r} is a registered benchmark's; rename the file"
        )
    known = _FILES.get(name)
    if known is not None and (known.path, known.tag_column) != (path, tag_column):
        raise RaitnerError(f"{path} and {known.path} would both be named {name!r}; rename one")
    labels = types_of(examples)
    if not labels:
        raise RaitnerError(f"{path}: no entity types to ask about (no entities, no label sets)")
    langs = {example.lang for example in examples}
    if len(langs) != 1:
        raise RaitnerError(f"{path}: texts in several languages ({', '.join(sorted(langs))})")
    benchmark = FileBenchmark(
        name=name,
        path=path,
        split_name=split,
        lang=langs.pop(),
        types=labels,
        sha256=content_sha256(path),
        examples=tuple(examples),
        label_names=dict(label_names or {}),
        tag_column=tag_column,
    )
    _FILES[name] = benchmark
    return benchmark


def file_benchmark(name: str) -> FileBenchmark | None:
    """The file added under ``name`` (:func:`add_file_benchmark`), None for any other name."""
    return _FILES.get(name)


def get_benchmark(name: str) -> Benchmark | FileBenchmark:
    if name in _FILES:
        return _FILES[name]
    table = benchmarks()
    if name not in table:
        raise UnknownNameError("benchmark", name, list(table))
    return table[name]


def load_benchmark(
    name: str, split: str, data_root: str | Path | None = None, stats: ReadStats | None = None
) -> list[Example]:
    """``load_benchmark("crossner_ai", "test")``; ``name`` may also be ``"crossner_ai:test"``."""
    return get_benchmark(name).load(split, data_root, stats)
