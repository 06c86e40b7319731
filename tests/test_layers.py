"""Layers point down: dags → noriba → warehouse → transforms. A lower layer never imports a higher one (not even lazily)."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

ORDER = ["dags", "noriba", "warehouse", "transforms"]


def imported_packages(path) -> set[str]:
    """Return the top-level package names a module imports anywhere in it (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ORDER[1:])
def test_a_layer_imports_nothing_above_it(layer):
    above = set(ORDER[: ORDER.index(layer)])
    wrong = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & above) for p in (ROOT / layer).rglob("*.py")}
    assert {k: v for k, v in wrong.items() if v} == {}
