"""The trips DAGs (dags/noriba_trips.py) load, chain zone layers before trips by Assets, and run with dag.test()."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from tests.dags.conftest import DAGS

pytestmark = pytest.mark.airflow
TRIP_TASKS = ["fetch", "parse_validate", "write_lake", "publish", "export"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "noriba_trips.py"), known_pools={"default_pool", "noriba_publish"})


@pytest.fixture(scope="module")
def trip_specs():
    from noriba.specs import load_trip_specs

    return load_trip_specs()


def test_trips_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dag_warnings == set()


def test_one_dag_per_trips_and_zones_spec(dagbag, trip_specs):
    want = {f"noriba_{'zones' if s.kind == 'zones' else 'trips'}__{s.id}" for s in trip_specs}
    assert {s.kind for s in trip_specs} == {"trips", "zones"}
    assert set(dagbag.dag_ids) == want


def test_trips_dag_chains_steps_publishes_in_the_pool_and_marks_its_asset(dagbag, trip_specs):
    for spec in (s for s in trip_specs if s.kind == "trips"):
        d = dagbag.dags[f"noriba_trips__{spec.id}"]
        assert sorted(d.task_ids) == sorted(TRIP_TASKS)
        for up, down in zip(TRIP_TASKS, TRIP_TASKS[1:]):
            assert d.get_task(up).downstream_task_ids == {down}
        assert d.get_task("publish").pool == "noriba_publish"
        assert [o.uri for o in d.get_task("publish").outlets] == [f"noriba://warehouse/trips/{spec.id}"]
    for spec in (s for s in trip_specs if s.kind == "zones"):
        d = dagbag.dags[f"noriba_zones__{spec.id}"]
        assert d.task_ids == ["publish"]
        assert d.get_task("publish").pool == "noriba_publish"
        assert [o.uri for o in d.get_task("publish").outlets] == [f"noriba://warehouse/trips/zones/{spec.id}"]


def _uris(cond) -> set[str]:
    if cond is None:
        return set()
    if hasattr(cond, "objects"):  # AssetAll / AssetAny
        return set().union(*(_uris(c) for c in cond.objects))
    return {cond.uri}


def test_trips_dag_waits_for_the_zone_layers_it_uses(dagbag, trip_specs):
    from transforms.trips.spec import trip_options

    for spec in (s for s in trip_specs if s.kind == "trips"):
        opts = trip_options(spec)
        layers = {x for x in (opts.zone_layer, opts.municipality_layer) if x}
        cond = getattr(dagbag.dags[f"noriba_trips__{spec.id}"].timetable, "asset_condition", None)
        if not layers:
            assert not _uris(cond)
            continue
        uris = _uris(cond)
        assert uris == {f"noriba://warehouse/trips/zones/{x}" for x in layers}, spec.id
    # minato-taxi also keeps its own clock: its layers' Assets or @monthly
    taxi = dagbag.dags["noriba_trips__minato-taxi"].timetable
    assert type(taxi).__name__ == "AssetOrTimeSchedule"


def test_trips_dag_file_imports_no_heavy_library():
    code = ("import sys, runpy; runpy.run_path('dags/noriba_trips.py');"
            "print(','.join(m for m in ('duckdb', 'pyarrow', 'pandas', 'gtfs_kit', 'shapely') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=DAGS.parent, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([""], []), f"heavy imports at DAG top level: {out.stdout}"


def test_demo_zone_and_trips_dags_run_with_dag_test(airflow_db, dagbag, tmp_path, monkeypatch):
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    for layer in ("minato-districts", "minato-municipalities"):
        assert dagbag.dags[f"noriba_zones__{layer}"].test().state == DagRunState.SUCCESS
    run = dagbag.dags["noriba_trips__minato-taxi"].test()
    assert run.state == DagRunState.SUCCESS
    con = duckdb.connect(str(tmp_path / "home" / "noriba.duckdb"), read_only=True)
    rows_in, accepted, quarantined = con.sql("SELECT rows_in, rows_accepted, rows_quarantined FROM meta.feed_versions "
                                             "WHERE feed_id = 'minato-taxi'").fetchall()[0]
    assert rows_in == accepted + quarantined and accepted > 0
    assert con.sql("SELECT count(*) FROM trips.fct_trips WHERE source_id = 'minato-taxi'").fetchall()[0][0] == accepted
    assert con.sql("SELECT count(DISTINCT zone_layer) FROM trips.zones").fetchall()[0][0] == 2
    con.close()
    assert list((tmp_path / "home" / "exports" / "trips" / "minato-taxi").glob("*.csv"))
    # a second run of the unchanged source publishes nothing new
    assert dagbag.dags["noriba_trips__minato-taxi"].test().state == DagRunState.SUCCESS
