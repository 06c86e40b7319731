"""Trips with NORIBA_HOME on object storage, each Airflow task on another machine (another empty working folder), against a
real S3-compatible server (moto) on 127.0.0.1: the fetch's archive, the lake the parse wrote and the publish meet in the
bucket, and the published rows are those of a local run."""

from __future__ import annotations

import duckdb

from tests.noriba.test_object_storage import BUCKET, CREDENTIALS, s3  # noqa: F401 (s3: the fixture)

SOURCE = "minato-taxi"


def _machine(monkeypatch, env: dict) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def _trips(home) -> list[tuple]:
    with duckdb.connect(str(home / "noriba.duckdb"), read_only=True) as con:
        return con.sql("SELECT count(*), sum(passengers), min(pickup_zone), max(dropoff_zone) FROM trips.fct_trips "
                       f"WHERE source_id = '{SOURCE}'").fetchall()


def test_each_trips_task_on_another_machine_publishes_what_one_machine_does(s3, tmp_path, monkeypatch):  # noqa: F811
    from noriba import tasks
    from noriba.trips_pipeline import run_trips
    from noriba.specs import load_trip_specs
    from warehouse.workspace import Workspace

    for k in [k for k in __import__("os").environ if k.startswith(("AWS_", "NORIBA_"))]:
        monkeypatch.delenv(k)
    specs = {s.id: s for s in load_trip_specs()}
    local = Workspace(tmp_path / "local").ensure()
    for layer in ("minato-districts", "minato-municipalities"):
        run_trips(specs[layer], local, specs=specs)
    run_trips(specs[SOURCE], local, specs=specs)
    expected = _trips(local.home)
    assert expected[0][0] > 1000

    remote = {"NORIBA_HOME": f"s3://{BUCKET}/trips-home", "AWS_ENDPOINT_URL": s3, **CREDENTIALS}
    _machine(monkeypatch, {**remote, "NORIBA_CACHE": str(tmp_path / "a")})
    for layer in ("minato-districts", "minato-municipalities"):
        tasks.publish_zones(layer)
    fetched = tasks.trips_fetch(SOURCE)
    __import__("shutil").rmtree(tmp_path / "a")  # that machine is gone: its archive is only in the bucket
    _machine(monkeypatch, {**remote, "NORIBA_CACHE": str(tmp_path / "b")})  # the parse: no archive here but the bucket's
    staged = tasks.trips_parse_validate(SOURCE, fetched)
    lake = tasks.trips_write_lake(staged)
    __import__("shutil").rmtree(tmp_path / "b")
    _machine(monkeypatch, {**remote, "NORIBA_CACHE": str(tmp_path / "c")})  # the publish: nor the lake
    for layer in ("minato-districts", "minato-municipalities"):
        tasks.publish_zones(layer)
    out = tasks.trips_publish(lake)
    assert out["status"] == "new"
    assert _trips(Workspace.from_env().home) == expected
