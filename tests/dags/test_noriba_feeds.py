"""The generated DAGs load, have the expected shape, and a whole feed DAG runs with dag.test()."""

from __future__ import annotations

import duckdb
import pytest

from tests.dags.conftest import DAGS

pytestmark = pytest.mark.airflow
FEED_TASKS = ["fetch", "parse_validate", "write_lake", "publish", "contracts", "export"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), known_pools={"default_pool", "noriba_publish"})


@pytest.fixture(scope="module")
def specs():
    from noriba.specs import load_specs

    return load_specs()


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dag_warnings == set()


def test_one_dag_per_feed_spec_and_export_spec_plus_the_mapped_dag(dagbag, specs):
    from noriba.exports import load_export_specs

    assert specs, "specs/feeds has no feed"
    exports = {f"noriba_export__{e.id}" for e in load_export_specs()}
    feed_dags = {d for d in dagbag.dag_ids if not d.startswith(("noriba_trips__", "noriba_zones__"))  # dags/noriba_trips.py
                 and d != "noriba_rt"}  # dags/noriba_rt.py
    assert feed_dags == {f"noriba_feed__{s.id}" for s in specs} | {"noriba_all_feeds"} | exports


def test_export_dag_is_scheduled_on_its_feeds_assets_and_marks_its_own(dagbag, specs):
    from airflow.sdk import AssetAny

    d = dagbag.dags["noriba_export__demo-region"]
    assert d.task_ids == ["build"]
    assert [o.uri for o in d.get_task("build").outlets] == ["noriba://exports/demo-region"]
    cond = d.timetable.asset_condition
    assert isinstance(cond, AssetAny)  # any input's new version rebuilds the export
    assert {a.uri for a in cond.objects} == {"noriba://warehouse/gtfs/minato-city-bus", "noriba://warehouse/gtfs/minato-community-timetable",
                                             "noriba://warehouse/gtfs/kita-coast-line"}  # the feeds of specs/exports/demo-region.yml
    # feeds ingested ad hoc have no feed DAG to wait for: the Bay Area export runs when triggered
    assert type(dagbag.dags["noriba_export__sfbay-511-2018"].timetable).__name__ == "NullTimetable"


def test_export_dag_builds_the_export_with_dag_test(airflow_db, dagbag, specs, tmp_path, monkeypatch):
    from airflow.utils.state import DagRunState

    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    ws = Workspace.from_env().ensure()
    for spec in specs:
        if "demo" in spec.tags:
            run_feed(spec, ws)
    run = dagbag.dags["noriba_export__demo-region"].test()
    assert run.state == DagRunState.SUCCESS
    assert list((ws.exports / "demo-region").glob("*/demo-region.zip"))
    assert (ws.exports / "site" / "exports" / "demo-region.html").exists()


def test_feed_dag_chains_steps_serialises_publish_and_marks_its_asset(dagbag, specs):
    for spec in specs:
        d = dagbag.dags[f"noriba_feed__{spec.id}"]
        assert sorted(d.task_ids) == sorted(FEED_TASKS)
        for up, down in zip(FEED_TASKS, FEED_TASKS[1:]):
            assert d.get_task(up).downstream_task_ids == {down}
        assert d.get_task("publish").pool == "noriba_publish"
        assert all(t.retries == 2 for t in d.tasks)
        assert [o.uri for o in d.get_task("export").outlets] == [f"noriba://warehouse/gtfs/{spec.id}"]


def test_mapped_dag_labels_each_map_index_with_the_feed_id(dagbag):
    d = dagbag.dags["noriba_all_feeds"]
    assert d.get_task("ingest").map_index_template == "{{ task.op_kwargs['feed_id'] }}"


def test_dag_file_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys, runpy; runpy.run_path('dags/noriba_feeds.py');"
            "print(','.join(m for m in ('duckdb', 'pyarrow', 'pandas', 'gtfs_kit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=DAGS.parent, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([""], []), f"heavy imports at DAG top level: {out.stdout}"


def test_whole_feed_dag_runs_with_dag_test(airflow_db, dagbag, specs, tmp_path, monkeypatch):
    from airflow.utils.state import DagRunState

    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    spec = next(s for s in specs if "demo" in s.tags)
    run = dagbag.dags[f"noriba_feed__{spec.id}"].test()
    assert run.state == DagRunState.SUCCESS
    con = duckdb.connect(str(tmp_path / "home" / "noriba.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM meta.feed_versions WHERE feed_id = ?", [spec.id]).fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM gtfs_latest.stops WHERE feed_id = ?", [spec.id]).fetchall()[0][0] > 0
    assert list((tmp_path / "home" / "exports" / "gtfs" / spec.id).glob("*.zip"))


def test_second_run_of_an_unchanged_feed_skips_the_tasks_after_fetch_and_marks_no_asset(airflow_db, dagbag, specs, tmp_path, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    spec = next(s for s in specs if "demo" in s.tags)
    d = dagbag.dags[f"noriba_feed__{spec.id}"]
    uri = f"noriba://warehouse/gtfs/{spec.id}"
    first = d.test(logical_date=datetime.now(timezone.utc) - timedelta(hours=1))
    assert first.state == DagRunState.SUCCESS
    with create_session() as session:
        before = session.query(AssetEvent).filter(AssetEvent.asset.has(uri=uri)).count()
    second = d.test()
    states = {ti.task_id: ti.state for ti in second.get_task_instances()}
    assert states["fetch"] == TaskInstanceState.SUCCESS
    assert {t: states[t] for t in FEED_TASKS[1:]} == {t: TaskInstanceState.SKIPPED for t in FEED_TASKS[1:]}
    with create_session() as session:  # nothing new: downstream export DAGs are not triggered
        assert session.query(AssetEvent).filter(AssetEvent.asset.has(uri=uri)).count() == before
    for z in (tmp_path / "home" / "exports" / "gtfs" / spec.id).glob("*.zip"):  # an export interrupted: not skipped
        z.unlink()
    third = d.test(logical_date=datetime.now(timezone.utc) + timedelta(seconds=1))
    assert {ti.task_id: ti.state for ti in third.get_task_instances()}["export"] == TaskInstanceState.SUCCESS
    assert list((tmp_path / "home" / "exports" / "gtfs" / spec.id).glob("*.zip"))  # the rerun finished it


def test_a_published_feed_queues_a_run_of_its_export_dag_which_is_created_unpaused(airflow_db, dagbag, specs, tmp_path, monkeypatch):
    """Issue 19.11: Airflow queues an asset-triggered run only for consumers unpaused when the event is recorded."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    spec = next(s for s in specs if "demo" in s.tags)
    export_id = "noriba_export__demo-region"
    assert f"noriba://warehouse/gtfs/{spec.id}" in {a.uri for a in dagbag.dags[export_id].timetable.asset_condition.objects}

    def publish_once(home: str) -> tuple[int, bool, set[str]]:
        """Return (asset events of this run, whether the export DAG has a queued run, the DAGs the scheduler would run)."""
        monkeypatch.setenv("NORIBA_HOME", str(tmp_path / home))  # a fresh workspace: a new version, a new event
        with create_session() as session:
            session.query(AssetDagRunQueue).delete()
        run = dagbag.dags[f"noriba_feed__{spec.id}"].test()
        with create_session() as session:
            events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).count()
            queued = session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == export_id).count() > 0
            due = {m.dag_id for m in DagModel.dags_needing_dagruns(session)[0]}
        return events, queued, due

    events, queued, due = publish_once("h1")  # the export DAG is written to the metadata DB by dag.test() of its feed
    with create_session() as session:
        assert DagModel.get_current(export_id, session=session).is_paused is False  # created unpaused
    assert events == 1 and queued and export_id in due  # the scheduler creates the export run
    with create_session() as session:
        DagModel.get_current(export_id, session=session).is_paused = True
    events, queued, due = publish_once("h2")
    assert events == 1 and not queued and export_id not in due  # paused: Airflow drops the event for it (README says so)
    with create_session() as session:
        DagModel.get_current(export_id, session=session).is_paused = False
