"""Readers and writers for NER data, and the registry of named benchmarks."""

from __future__ import annotations

from raitner.io.jsonl import read_examples, write_examples

__all__ = ["read_examples", "write_examples"]
