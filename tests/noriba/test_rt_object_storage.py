"""The realtime archiver and the hourly parse with NORIBA_HOME on object storage, against a real S3-compatible server
(moto) and a real GTFS-Realtime server, both on 127.0.0.1: what the archiver receives reaches the bucket as it goes, and
another machine (another empty working folder) parses and publishes the same rows from the bucket."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb

from tests.conftest import ROOT, deadline
from tests.noriba.test_object_storage import BUCKET, CREDENTIALS, _env, _objects, s3  # noqa: F401 (s3: the fixture)
from tests.noriba.test_rt_archive import replay, snapshot


def _noriba(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "noriba.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _rows(home) -> list[tuple]:
    with duckdb.connect(str(home / "noriba.duckdb"), read_only=True) as con:
        return con.sql("SELECT trip_id, stop_id, arrival_delay, header_timestamp FROM rt.stop_time_updates "
                       "ORDER BY header_timestamp").fetchall()


def test_archived_snapshots_reach_the_bucket_and_another_machine_parses_the_same_rows(s3, tmp_path, monkeypatch):  # noqa: F811
    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    home = f"s3://{BUCKET}/rt-home"
    archiver = _env(NORIBA_HOME=home, NORIBA_CACHE=str(tmp_path / "archiver"), NORIBA_SPECS=str(tmp_path / "specs"),
                    AWS_ENDPOINT_URL=s3, **CREDENTIALS)
    with replay() as srv, deadline(240):
        (specs / "bus-rt.yml").write_text(f"id: bus-rt\nkind: gtfs-rt\ntimezone: Asia/Tokyo\nrealtime:\n  trip_updates: {srv.url}\n"
                                          "  static: minato-city-bus\n  poll_s: 1\n", encoding="utf-8")
        first = _noriba("rt", "archive", "--once", env=archiver)
        srv.body = snapshot(int(time.time()), delay=30)
        second = _noriba("rt", "archive", "--once", env=archiver)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    keys = _objects(s3)
    snaps = sorted(k for k in keys if k.startswith("rt-home/raw/bus-rt/rt/") and k.endswith(".pb"))
    logs = sorted(k for k in keys if k.startswith("rt-home/raw/bus-rt/rt/") and k.endswith("/fetches.jsonl"))
    assert len(snaps) == 2 and logs and "rt-home/raw/bus-rt/rt/feed.json" in keys
    local = sorted((tmp_path / "archiver").glob("raw/bus-rt/rt/*/*/*.pb"))
    assert [k.rsplit("/", 1)[1] for k in snaps] == sorted(p.name for p in local)

    # the parse runs elsewhere: an empty working folder gets the archive from the bucket
    worker = {**archiver, "NORIBA_CACHE": str(tmp_path / "worker")}
    parsed = _noriba("rt", "parse", "bus-rt", env=worker)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    rows = _rows(tmp_path / "worker")
    assert [(r[0], r[1], r[2]) for r in rows] == [("T1", "S1", 0), ("T1", "S1", 30)]
    keys = _objects(s3)
    assert any(k.startswith("rt-home/lake/rt_stop_time_updates/feed_id=bus-rt/") for k in keys)
    assert any(k.startswith("rt-home/lake/rt_snapshots/feed_id=bus-rt/") and k.endswith("_raw_mark.json") for k in keys)

    # and the publish alone on a third machine reads the hours' partitions from the bucket
    third = {**archiver, "NORIBA_CACHE": str(tmp_path / "third")}
    hours = sorted({k.split("/")[4] + "T" + k.split("/")[5] for k in snaps})  # two, if the test ran across an hour's end
    from noriba import rt
    from warehouse.workspace import Workspace

    for k, v in third.items():
        if k.startswith(("AWS_", "NORIBA_")):
            monkeypatch.setenv(k, v)
    rt.publish_hours(Workspace.from_env(), "bus-rt", hours)
    assert _rows(tmp_path / "third") == rows


def test_a_gbfs_systems_archive_reaches_the_bucket_and_another_machine_ingests_the_same_rows(s3, tmp_path):  # noqa: F811
    """The archiver polls a live GBFS system with NORIBA_HOME on object storage: every changed response and the fetch
    logs reach the bucket, and `noriba gbfs ingest-archive` on an empty working folder publishes the rows the archiver's
    own folder gives."""
    from tests.noriba.test_gbfs_archive import System
    from tests.noriba.test_gbfs_archive import _rows as gbfs_rows

    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    home = f"s3://{BUCKET}/gbfs-home"
    archiver = _env(NORIBA_HOME=home, NORIBA_CACHE=str(tmp_path / "archiver"), NORIBA_SPECS=str(tmp_path / "specs"),
                    AWS_ENDPOINT_URL=s3, **CREDENTIALS)
    srv = System()
    try:
        (specs / "bikes.yml").write_text(f"id: bikes\nkind: gbfs\nsource: {{url: {srv.base}/gbfs.json}}\ntimezone: Asia/Tokyo\n"
                                         "gbfs: {min_interval_s: 1}\n", encoding="utf-8")
        with deadline(120):
            first = _noriba("rt", "archive", "bikes", "--once", env=archiver)
            second = _noriba("rt", "archive", "bikes", "--once", env=archiver)
    finally:
        srv.stop()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    local = sorted((tmp_path / "archiver").glob("raw/bikes/archive/*/*/*.json"))
    keys = _objects(s3)
    sent = sorted(k for k in keys if k.startswith("gbfs-home/raw/bikes/archive/") and k.endswith(".json"))
    assert local and [k.rsplit("/", 1)[1] for k in sent] == sorted(p.name for p in local)  # each changed response
    logs = [k for k in keys if k.startswith("gbfs-home/raw/bikes/archive/") and k.endswith("/fetches.jsonl")]
    assert logs  # and the fetch logs

    worker = {**archiver, "NORIBA_CACHE": str(tmp_path / "worker")}
    done = _noriba("gbfs", "ingest-archive", "bikes", "--quiet", "--no-export", env=worker)
    assert done.returncode == 0, done.stdout + done.stderr
    same = _noriba("gbfs", "ingest-archive", "bikes", "--quiet", "--no-export", env=archiver)
    assert same.returncode == 0, same.stdout + same.stderr
    for table, order in (("station_information", "station_id"), ("station_status", "ALL")):
        got = gbfs_rows(tmp_path / "worker", table, order)
        assert got and got == gbfs_rows(tmp_path / "archiver", table, order), table
