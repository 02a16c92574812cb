"""Reading a teacher's answer: a list of (entity, type) pairs, leniently.

Teachers are asked for ``[("entity", "type"), ...]`` (English) or ``[{"entity": "type"}, ...]``
(Chinese) and answer with variations: prose around the list, JSON arrays instead of tuples,
one object holding several pairs, ``{"entity": …, "type": …}`` objects, a list cut off by the
token limit. The reader tries, in order:

1. the text from the first ``[`` to the last ``]`` as a Python literal, then as JSON (failing
   that, from the first ``{`` to the last ``}``, one object); a list whose items are 2-item
   tuples or lists, or objects, gives status ``ok``;
2. failing that, every complete ``("…", "…")`` pair or ``{"…": "…"}`` object in the text
   (a truncated list keeps its complete items): status ``repaired``;
3. nothing found: status ``unparseable`` (the RA-IT paper and UniversalNER drop such outputs).

``[]`` is a valid answer (no entities). Types are normalised by :func:`normalize_type`
(whitespace collapsed, lower case), mentions only stripped; pairs with an empty mention or type
are dropped, duplicates kept once, order kept.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

_TUPLE = re.compile(
    r"""[(\[]\s*(?P<q1>["'])(?P<mention>(?:\\.|(?!(?P=q1)).)*)(?P=q1)\s*,\s*"""
    r"""(?P<q2>["'])(?P<type>(?:\\.|(?!(?P=q2)).)*)(?P=q2)\s*[)\]]""",
    re.DOTALL,
)
_OBJECT = re.compile(r'\{\s*"(?P<mention>(?:\\.|[^"\\])*)"\s*:\s*"(?P<type>(?:\\.|[^"\\])*)"\s*\}')
_ENTITY_KEYS = ("entity", "name", "mention", "实体", "实体名称")
_TYPE_KEYS = ("type", "entity_type", "label", "类别", "实体类别", "类型")


@dataclass
class TeacherAnswer:
    """The (mention, type) pairs read from one answer, and how they were read."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    #: "ok", "repaired" or "unparseable"
    status: str = "ok"

    @property
    def parsed(self) -> bool:
        return self.status != "unparseable"


def normalize_type(entity_type: str) -> str:
    """``"  Sports  Team "`` -> ``"sports team"``: whitespace collapsed, lower case."""
    return " ".join(entity_type.split()).lower()


def parse_teacher_output(text: str) -> TeacherAnswer:
    """The pairs of one teacher answer; see the module notes."""
    items = _literal_list(text)
    if items is not None:
        pairs = _pairs_from_items(items)
        if pairs is not None:
            return TeacherAnswer(_clean(pairs), "ok")
    found = [(m["mention"], m["type"]) for m in _TUPLE.finditer(text)]
    found += [(m["mention"], m["type"]) for m in _OBJECT.finditer(text)]
    if found:
        return TeacherAnswer(_clean([(_unescape(a), _unescape(b)) for a, b in found]), "repaired")
    return TeacherAnswer([], "unparseable")


def _literal_list(text: str) -> list[Any] | None:
    """The list from the first ``[`` to the last ``]``, or failing that one object from the
    first ``{`` to the last ``}`` (as a one-item list)."""
    for opening, closing in ("[]", "{}"):
        start, end = text.find(opening), text.rfind(closing)
        if start < 0 or end < start:
            continue
        snippet = text[start : end + 1]
        for read in (ast.literal_eval, json.loads):
            try:
                value = read(snippet)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, list):
                return value
            if isinstance(value, dict):
                return [value]
    return None


def _pairs_from_items(items: list[Any]) -> list[tuple[str, str]] | None:
    """Pairs from a parsed list, or None when an item has no recognisable shape."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            pairs.append((_text(item[0]), _text(item[1])))
        elif isinstance(item, dict):
            entity = next((item[k] for k in _ENTITY_KEYS if k in item), None)
            kind = next((item[k] for k in _TYPE_KEYS if k in item), None)
            if entity is not None and kind is not None:
                pairs.append((_text(entity), _text(kind)))
            else:
                pairs.extend((_text(k), _text(v)) for k, v in item.items())
        else:
            return None
    return pairs


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def _clean(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    kept = []
    for mention, entity_type in pairs:
        mention, entity_type = mention.strip(), normalize_type(entity_type)
        if mention and entity_type:
            kept.append((mention, entity_type))
    return list(dict.fromkeys(kept))
