"""Versioned prompt templates and the conversations they render."""

from __future__ import annotations

from raitner.prompts.templates import (
    TEMPLATES,
    Template,
    default_template_id,
    get_template,
    to_sharegpt,
)

__all__ = ["TEMPLATES", "Template", "default_template_id", "get_template", "to_sharegpt"]
