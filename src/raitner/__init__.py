"""raitner: open NER with LLMs by retrieval augmented instruction tuning (RA-IT)."""

from __future__ import annotations

from raitner.errors import DataFormatError, RaitnerError
from raitner.schema import Entity, Example

__all__ = ["DataFormatError", "Entity", "Example", "RaitnerError"]
__version__ = "0.1.0"
