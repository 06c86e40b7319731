"""SQL text helpers: identifiers and string literals quoted for DuckDB. No heavy imports, so the publish step can use them."""

from __future__ import annotations


def q(name: str) -> str:
    """Return ``name`` quoted as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Return ``value`` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
