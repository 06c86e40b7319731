"""Trips specs: every mistake reported at once, with file and field."""

from __future__ import annotations

import pytest

from noriba.specs import SpecError, parse_spec
from tests.conftest import ROOT


def test_every_mistake_in_a_trips_section_is_listed_with_file_and_field():
    doc = {"id": "bad-taxi", "kind": "trips", "source": {"path": "x"}, "timezone": "Asia/Tokyo",
           "trips": {"format": "dbf", "mode": "rickshaw", "distance_unit": "furlong", "currency": "yen",
                     "time": {"zone": "jst"}, "columns": {"pickup": "a"}, "codes": {"fare": {}}, "privacy": {"k": 1}, "colour": 1}}
    with pytest.raises(SpecError) as e:
        parse_spec(doc, where="specs/trips/bad-taxi.yml", root=ROOT)
    text = "\n".join(e.value.problems)
    for field in ("trips.colour", "trips.files", "trips.format", "trips.mode", "trips.distance_unit", "trips.currency",
                  "trips.time.zone", "trips.columns.pickup", "trips.columns.pickup_time", "trips.codes.fare", "trips.privacy.k"):
        assert f"specs/trips/bad-taxi.yml: {field}:" in text, field


def test_committed_trip_specs_load():
    from noriba.specs import load_trip_specs

    specs = {s.id: s for s in load_trip_specs()}
    assert {"nyc-yellow-samples", "nyc-green-2020-04", "nyc-azure-2016", "chicago-taxi-2013-2016", "nyc-taxi-zones"} <= set(specs)
    assert specs["nyc-yellow-samples"].kind == "trips" and specs["nyc-taxi-zones"].kind == "zones"


def test_missing_source_is_one_clear_error(tmp_path):
    from noriba.trips_pipeline import fetch_trips
    from warehouse.workspace import Workspace
    from transforms.adapters import InputError

    spec = parse_spec({"id": "gone", "kind": "trips", "source": {"path": str(tmp_path / "nowhere")},
                       "trips": {"files": ["*.csv"], "columns": {"pickup_time": "t"}}}, where="gone.yml", root=ROOT)
    with pytest.raises(InputError) as e:
        fetch_trips(spec, Workspace(tmp_path / "home").ensure())
    assert "does not exist" in str(e.value) and "\n" not in str(e.value)
