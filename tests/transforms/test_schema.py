"""transforms/schema.py: where the canonical schema comes from."""

from __future__ import annotations

import pytest

from transforms.schema import load_schema
from transforms.specfile import SpecError


def test_a_specs_folder_without_schemas_uses_the_shipped_schema(tmp_path, monkeypatch):
    (tmp_path / "feeds").mkdir()  # a project's own specs: feeds only
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path))
    assert "stop_times" in load_schema("gtfs").tables


def test_a_schema_in_the_specs_folder_overrides_the_shipped_one(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "gtfs.yml").write_text("tables: [not, a, mapping]\n")
    with pytest.raises(SpecError, match="gtfs.yml"):
        load_schema("gtfs", tmp_path)
