"""The realtime DAG (dags/noriba_rt.py) loads, is mapped over the gtfs-rt specs, and parses and publishes with dag.test()."""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import shared
from tests.dags.conftest import DAGS

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS / "noriba_rt.py"), known_pools={"default_pool", "noriba_publish"})


def test_rt_dag_imports_and_is_hourly_mapped_over_the_specs_with_publish_in_the_pool(dagbag):
    assert dagbag.import_errors == {}
    d = dagbag.dags["noriba_rt"]
    assert sorted(d.task_ids) == ["check", "feed_ids", "gbfs_feed_ids", "ingest_gbfs", "parse", "publish"]
    assert d.get_task("ingest_gbfs").pool == "noriba_publish"
    assert d.get_task("publish").pool == "noriba_publish" and d.get_task("check").pool == "noriba_publish"
    assert d.get_task("publish").downstream_task_ids == {"check"}
    assert d.get_task("parse").map_index_template == "{{ task.op_kwargs['feed_id'] }}"
    assert d.get_task("parse").downstream_task_ids == {"publish"}


def test_rt_dag_parses_and_publishes_what_was_archived(airflow_db, dagbag, tmp_path, monkeypatch):
    from airflow.utils.state import DagRunState

    from noriba import rt
    from warehouse.workspace import Workspace

    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "specs" / "feeds" / "septa-rt.yml").write_text(
        "id: septa-rt\nkind: gtfs-rt\nrealtime:\n  trip_updates: http://127.0.0.1:9/tu.pb\n")
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path / "specs"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    ws = Workspace.from_env()
    rt.ingest(ws, "septa-rt", [shared("gtfs", "rt", "kcm-septa", "septa.pbf")])
    run = dagbag.dags["noriba_rt"].test()
    assert run.state == DagRunState.SUCCESS
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM rt.trip_updates WHERE feed_id = 'septa-rt'").fetchall() == [(35,)]
    assert rt.pending_hours(ws, "septa-rt") == []
    # the check task validated the hour and matched it to a static feed (none is named: said so, per hour)
    assert con.execute("SELECT count(*) FROM rt.notice_counts WHERE feed_id = 'septa-rt'").fetchall()[0][0] > 0
    assert con.execute("SELECT DISTINCT status FROM marts.rt_match_hourly WHERE feed_id = 'septa-rt'").fetchall() == [("no_static",)]


def test_rt_dag_ingests_what_the_archiver_kept_of_a_gbfs_system(airflow_db, dagbag, tmp_path, monkeypatch):
    from airflow.utils.state import DagRunState

    from noriba.gbfs import archive_dir
    from warehouse.workspace import Workspace

    head = shared("gbfs", "tier-wolfsburg-v2.3", "head")
    (tmp_path / "specs" / "feeds").mkdir(parents=True)
    (tmp_path / "specs" / "feeds" / "tier-live.yml").write_text(
        "id: tier-live\nkind: gbfs\nsource: {url: http://127.0.0.1:9/gbfs.json}\n")
    monkeypatch.setenv("NORIBA_SPECS", str(tmp_path / "specs"))
    monkeypatch.setenv("NORIBA_HOME", str(tmp_path / "home"))
    ws = Workspace.from_env()
    hour = archive_dir(ws, "tier-live") / "2023-08-11" / "09"  # as `noriba rt archive` names them: <kind>-<HHMMSS>-<sha256>.json
    hour.mkdir(parents=True)
    for f in head.glob("*.json"):
        (hour / f"{f.stem}-090000-{'0' * 64}.json").write_bytes(f.read_bytes())
    run = dagbag.dags["noriba_rt"].test()
    assert run.state == DagRunState.SUCCESS
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM gbfs.vehicle_status WHERE feed_id = 'tier-live'").fetchall() == [(840,)]
