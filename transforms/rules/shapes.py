"""Rules on shapes. Each rule: code, severity, one-line why, fields, SQL over the canonical tables."""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule  # noqa: F401

RULES: list[Rule] = []
