"""Annotated files a user names on the command line, read by their extension.

* ``.jsonl``: one text a line with its mentions as character offsets, in raitner's own
  format, doccano's or Prodigy's (:mod:`raitner.io.span_jsonl`);
* ``.json``: UniversalNER conversations (:mod:`raitner.io.uniner`), or Label Studio's JSON or
  JSON-MIN export (:mod:`raitner.io.label_studio`), told apart by the first record;
* ``.parquet``: a table of tokens and tags, or of texts and spans, as the Hugging Face Hub
  serves datasets (:mod:`raitner.io.parquet`); a folder written by ``Dataset.save_to_disk``
  holds the same columns, and so does one of its ``.arrow`` files (:mod:`raitner.io.hf_saved`);
* ``.conll``, ``.bio``, ``.iob``, ``.iob2``, ``.bioes``, ``.tsv``, ``.txt``: token/tag columns,
  one token a line and a blank line between sentences (:mod:`raitner.io.conll`). The token is
  the first column and the tag the last, so both ``token<TAB>tag`` and CoNLL-2003's
  ``token POS chunk tag`` read, unless the first column holds the tags (``O``, ``B-X``) and the
  last does not, as in MIT Movie and MIT Restaurant's ``tag<TAB>token`` files, read that way
  round. Tags are BIO, BIOES/BMES or IO (bare type names, as Few-NERD's). Columns are split on
  tabs when the first token line has one, else on any whitespace. A file whose tokens are
  mostly single CJK characters is Chinese (characters joined with nothing), any other English
  (tokens joined by single spaces).

A Parquet file or ``save_to_disk`` folder with several tag columns is read from its first known
one (``ner_tags`` first); ``FILE:COLUMN`` reads another (``few-nerd.parquet:fine_ner_tags``,
:func:`split_tag_column`).

Each may be gzip-compressed, named with ``.gz`` after its extension (``train.jsonl.gz``;
:mod:`raitner.io.files`).

Example ids are ``<file stem>:<n>`` (the stem without ``.gz``) for column and conversation
files (their own formats carry no ids); JSONL lines keep raitner's ``id`` and are otherwise
named after their file too (:mod:`raitner.io.span_jsonl`), so two files of one training mix
never share an id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from itertools import islice
from pathlib import Path

from raitner.errors import RaitnerError
from raitner.io.files import file_stem, format_suffix, text_lines
from raitner.io.stats import ReadStats
from raitner.schema import Example

TAGGED_SUFFIXES = (".conll", ".bio", ".iob", ".iob2", ".bioes", ".tsv", ".txt")
#: tables whose tags may come from a chosen column (``FILE:COLUMN``)
TABLE_SUFFIXES = (".parquet", ".arrow")
SUFFIXES = (".jsonl", ".json", *TABLE_SUFFIXES, *TAGGED_SUFFIXES)
#: token lines (or texts) sniffed for the column separator and the language
_SNIFFED = 200


def is_cjk(character: str) -> bool:
    """A CJK unified ideograph (basic block or extension A) or a CJK punctuation mark."""
    code = ord(character)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x3000 <= code <= 0x303F


def text_lang(texts: Iterable[str]) -> str:
    """``"zh"`` when most of the non-space characters of the first texts (up to 200) are CJK,
    else ``"en"``."""
    characters = [c for text in islice(texts, _SNIFFED) for c in text if not c.isspace()]
    cjk = sum(1 for c in characters if is_cjk(c))
    return "zh" if characters and cjk * 2 > len(characters) else "en"


def _sniff_columns(path: Path) -> tuple[str | None, str, bool]:
    """``(separator, lang, tag_first)`` of a token/tag file, from its first token lines."""
    from raitner.io.tags import is_prefixed

    def is_tag(field: str) -> bool:
        return field.strip() == "O" or is_prefixed(field.strip())

    separator: str | None = None
    firsts: list[str] = []
    lasts: list[str] = []
    for line in text_lines(path, "utf-8", errors="replace"):
        line = line.lstrip("\ufeff").rstrip("\r\n")
        if not line.strip() or line.split()[0] == "-DOCSTART-":
            continue
        if not firsts:
            separator = "\t" if "\t" in line else None
        fields = line.split(separator)
        firsts.append(fields[0])
        lasts.append(fields[-1])
        if len(firsts) >= _SNIFFED:
            break
    tag_first = all(map(is_tag, firsts)) and not all(map(is_tag, lasts))
    tokens = lasts if tag_first else firsts
    return separator, tokens_lang(tokens), tag_first


def tokens_lang(tokens: Iterable[str]) -> str:
    """``"zh"`` when most of the tokens (the first 200) are single CJK characters (a Chinese
    file tagged by character), else ``"en"``."""
    sample = list(islice(tokens, _SNIFFED))
    single_cjk = sum(1 for token in sample if len(token) == 1 and is_cjk(token))
    return "zh" if sample and single_cjk * 2 > len(sample) else "en"


def types_of(examples: Iterable[Example]) -> tuple[str, ...]:
    """The types of a file's texts in order of first appearance: each text's label set (the
    types it was annotated for), then its entities' labels."""
    types: dict[str, None] = {}
    for example in examples:
        types.update(dict.fromkeys(example.label_set))
        types.update(dict.fromkeys(entity.label for entity in example.entities))
    return tuple(types)


_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def split_tag_column(name: str | Path) -> tuple[Path, str | None]:
    """``few-nerd.parquet:fine_ner_tags`` → ``(Path("few-nerd.parquet"), "fine_ner_tags")``: an
    existing Parquet file or ``save_to_disk`` folder, then ``:`` and the column of tags to read.
    Anything else, a path that exists as named included, is ``(Path(name), None)``, so that
    ``conll2003:train`` stays a benchmark's split beside a folder called ``conll2003``.
    :class:`RaitnerError` for a column named after an annotated file of another format."""
    from raitner.io.hf_saved import is_saved_dataset

    path = Path(name)
    text = str(name)
    if path.exists() or ":" not in text:
        return path, None
    base, column = text.rsplit(":", 1)
    base_path = Path(base)
    if not _COLUMN_NAME.match(column) or not base_path.exists():
        return path, None
    if format_suffix(base_path) in TABLE_SUFFIXES or is_saved_dataset(base_path):
        return base_path, column
    if base_path.is_file() and format_suffix(base_path) in SUFFIXES:
        raise RaitnerError(
            f"{text}: a column of tags can be named only after a Parquet or Arrow file or a "
            f"folder written by Dataset.save_to_disk; {base} is read by its own format"
        )
    return path, None


def is_user_file(path: str | Path) -> bool:
    """Whether ``path`` names an annotated file (by its extension, or being one) or a folder
    saved by ``Dataset.save_to_disk``, either with ``:COLUMN`` (:func:`split_tag_column`),
    rather than a benchmark or a sample."""
    from raitner.io.hf_saved import is_saved_dataset

    path, _column = split_tag_column(path)
    return format_suffix(path) in SUFFIXES or path.is_file() or is_saved_dataset(path)


def user_file_name(path: str | Path) -> str:
    """What an annotated file is called as a benchmark: its stem, with the tag column after a
    dot when one is chosen (``few-nerd.fine_ner_tags``); its texts' ids keep the stem alone."""
    path, column = split_tag_column(path)
    return file_stem(path) if column is None else f"{file_stem(path)}.{column}"


def read_user_file(path: str | Path, stats: ReadStats | None = None) -> list[Example]:
    """The annotated examples of one file, read by its extension (see the module docstring);
    ``FILE:COLUMN`` reads the tags of a Parquet file or saved folder from that column."""
    from raitner.io.hf_saved import is_saved_dataset, read_saved_dataset

    path, column = split_tag_column(path)
    if is_saved_dataset(path):
        return read_saved_dataset(path, stats, tag_column=column)
    if not path.is_file():
        raise RaitnerError(f"input file {path} not found")
    suffix = format_suffix(path)
    if suffix == ".jsonl":
        from raitner.io.span_jsonl import read_span_jsonl

        return read_span_jsonl(path, stats)
    if suffix == ".json":
        from raitner.io.label_studio import is_label_studio_task, read_label_studio
        from raitner.io.uniner import read_uniner_conversations
        from raitner.io.zh_common import iter_json_records

        first = next((record for _, record in iter_json_records(path)), None)
        if is_label_studio_task(first):
            return read_label_studio(path, stats)

        prefix = f"{file_stem(path)}:"
        examples = list(read_uniner_conversations(path, id_prefix=prefix, stats=stats))
        if examples and text_lang(example.text for example in examples) == "zh":
            examples = [replace(example, lang="zh") for example in examples]
        return examples
    if suffix == ".parquet":
        from raitner.io.parquet import read_parquet

        return read_parquet(path, stats, tag_column=column)
    if suffix == ".arrow":
        from raitner.io.hf_saved import read_arrow_file

        return read_arrow_file(path, stats, tag_column=column)
    if suffix in TAGGED_SUFFIXES:
        from raitner.io.conll import read_conll

        separator, lang, tag_first = _sniff_columns(path)
        return list(
            read_conll(
                path,
                lang=lang,
                id_prefix=f"{file_stem(path)}:",
                stats=stats,
                separator=separator,
                tag_first=tag_first,
                extra_columns=not tag_first,
            )
        )
    raise RaitnerError(
        f"cannot read {path}: expected one of {', '.join(SUFFIXES)} (span-annotated JSONL, "
        "UniversalNER conversation or Label Studio JSON, Parquet as the Hugging Face Hub "
        "serves datasets, an Arrow file as datasets writes them, or token/tag columns), each "
        "but Parquet and Arrow also gzip-compressed with .gz after it, or a folder written by "
        "Dataset.save_to_disk"
    )


#: ``--label-names conll``: the tags of CoNLL-2003's original files (``misc`` as raitner's own
#: CoNLL-2003 reader names it, so evaluation leaves it out as UniversalNER did)
CONLL_TAG_NAMES = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "misc"}


def parse_label_names(value: str) -> dict[str, str]:
    """``--label-names``: ``"PER=person,LOC=location"``; ``"conll"`` for CoNLL-2003's tags
    (:data:`CONLL_TAG_NAMES`); or a registered benchmark whose label names to use
    (``"ontonotes"``: PERSON, GPE, ORG … become person, geopolitical entity, organization …).
    The types prompts ask should be words a model knows, not tags."""
    value = value.strip()
    if value == "conll":
        return dict(CONLL_TAG_NAMES)
    if "=" not in value:
        from raitner.io.registry import benchmarks

        if value not in benchmarks():
            raise RaitnerError(
                f"--label-names: expected TAG=type pairs separated by commas "
                f"(PER=person,LOC=location), 'conll', or a benchmark name (see `raitner data "
                f"list`), got {value!r}"
            )
        names = benchmarks()[value].label_names
        if not names:
            raise RaitnerError(f"--label-names {value}: that benchmark has no label names")
        return dict(names)
    mapping: dict[str, str] = {}
    for pair in value.split(","):
        raw, sep, name = (part.strip() for part in pair.partition("="))
        if not sep or not raw or not name:
            raise RaitnerError(
                f"--label-names: expected TAG=type pairs separated by commas "
                f"(PER=person,LOC=location) or a benchmark name, got {pair.strip()!r}"
            )
        if raw in mapping:
            raise RaitnerError(f"--label-names: {raw!r} is named twice")
        mapping[raw] = name
    return mapping
