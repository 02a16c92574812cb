"""Seeded train/dev/test splits of one annotated set, with repeated texts kept together.

Annotated data from a tool often holds the same text more than once (a sentence annotated
twice, boilerplate lines); were its copies spread over train and test, the test would score
memorisation. Texts are therefore grouped by their exact string, the groups shuffled with the
seed, and whole groups given to test, then dev, until each holds its share of examples; the
rest is train. A share below 1 is a fraction of the examples, 1 or more a number of them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from raitner.errors import RaitnerError
from raitner.schema import Example

SPLIT_NAMES = ("train", "dev", "test")


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def share_size(share: float, total: int, name: str) -> int:
    """The number of examples a ``--dev``/``--test`` share stands for."""
    if share < 0:
        raise RaitnerError(f"--{name} must be 0 or more, got {share:g}")
    if share < 1:
        return round(share * total)
    if share != int(share):
        raise RaitnerError(
            f"--{name}: a fraction below 1 or a whole number of texts, got {share:g}"
        )
    return int(share)


def split_examples(examples: Sequence[Example], *, dev: float, test: float, seed: int) -> Splits:
    """Train, dev and test examples (each in the source's order); see the module docstring."""
    total = len(examples)
    dev_size, test_size = share_size(dev, total, "dev"), share_size(test, total, "test")
    if dev_size + test_size > total:
        raise RaitnerError(
            f"--dev and --test ask for {dev_size} + {test_size} examples; there are {total}"
        )
    groups: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example.text, []).append(index)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    chosen: dict[str, set[int]] = {"test": set(), "dev": set()}
    for name, size in (("test", test_size), ("dev", dev_size)):
        while len(chosen[name]) < size and order:
            chosen[name].update(order.pop())
    test_ids, dev_ids = chosen["test"], chosen["dev"]
    return Splits(
        train=[ex for i, ex in enumerate(examples) if i not in test_ids and i not in dev_ids],
        dev=[ex for i, ex in enumerate(examples) if i in dev_ids],
        test=[ex for i, ex in enumerate(examples) if i in test_ids],
    )
