"""raitner: open NER with LLMs by retrieval augmented instruction tuning (RA-IT)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raitner.errors import DataFormatError, RaitnerError
from raitner.schema import Entity, Example

if TYPE_CHECKING:
    from raitner.api import OpenNER

__all__ = ["DataFormatError", "Entity", "Example", "OpenNER", "RaitnerError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # OpenNER is imported on first use, so that ``import raitner`` stays light (no torch).
    if name == "OpenNER":
        from raitner.api import OpenNER

        return OpenNER
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
