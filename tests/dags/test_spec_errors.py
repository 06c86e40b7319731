"""A spec with a mistake costs only its own DAG; the mistake is an Airflow import error naming the file and field."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT
from tests.dags.conftest import DAGS

pytestmark = pytest.mark.airflow


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "noriba_publish"})


def _specs_with(tmp_path, monkeypatch, edits: dict[str, tuple[str, str]]):
    """Return a copy of specs/ with ``edits`` {relative file: (old text, new text)} applied, used by the DAG files."""
    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    for rel, (old, new) in edits.items():
        path = specs / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new), encoding="utf-8")
    monkeypatch.setenv("NORIBA_SPECS", str(specs))
    return specs


def test_a_schedule_airflow_cannot_parse_costs_only_its_own_dag(tmp_path, monkeypatch):
    good = _bag()
    assert good.import_errors == {}
    specs = _specs_with(tmp_path, monkeypatch, {"feeds/minato-city-bus.yml": ('schedule: "@daily"', 'schedule: "every day"')})
    bag = _bag()
    assert set(good.dag_ids) - set(bag.dag_ids) == {"noriba_feed__minato-city-bus"}
    assert set(bag.dag_ids) - set(good.dag_ids) == set()
    assert list(bag.import_errors) == [str(DAGS / "noriba_spec_errors.py")]
    error = bag.import_errors[str(DAGS / "noriba_spec_errors.py")]
    assert f"{specs / 'feeds' / 'minato-city-bus.yml'}: schedule: 'every day' is not a cron expression" in error


def test_a_mistake_in_a_trips_spec_and_an_export_spec_costs_only_their_own_dags(tmp_path, monkeypatch):
    good = _bag()
    specs = _specs_with(tmp_path, monkeypatch, {
        "trips/nyc-taxi-zones.yml": ("id_field: LocationID", "id_feild: LocationID"),
        "exports/gunma-2019.yml": ("id: gunma-2019", "id: gunma-2019\nformts: [gtfs]"),
    })
    bag = _bag()
    assert set(good.dag_ids) - set(bag.dag_ids) == {"noriba_zones__nyc-taxi-zones", "noriba_export__gunma-2019"}
    error = bag.import_errors[str(DAGS / "noriba_spec_errors.py")]
    assert f"{specs / 'trips' / 'nyc-taxi-zones.yml'}: zones.id_feild: unknown key; did you mean 'id_field'?" in error
    assert f"{specs / 'exports' / 'gunma-2019.yml'}: formts: unknown key; did you mean 'formats'?" in error
    assert len(bag.import_errors) == 1
