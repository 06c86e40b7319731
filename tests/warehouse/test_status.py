"""What analysts read: the latest version straight from the lake (the README's query), and GTFS HH:MM:SS times beside the seconds."""

from __future__ import annotations

import re

import duckdb
import pytest

from tests.conftest import MINI_FEED, ROOT, make_spec, write_feed

FREQ = "trip_id,start_time,end_time,headway_secs\nT1,06:00:00,25:30:00,600\n"


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    root = tmp_path_factory.mktemp("lake")
    ws = Workspace(root / "noriba-data").ensure()
    for i, files in enumerate((MINI_FEED, {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S3,港北,43.32,141.42\n",
                                           "frequencies.txt": FREQ})):
        run_feed(make_spec("port-bus", write_feed(root / f"in{i}", files)), ws, export=False, contracts=False)
    return ws


def _readme_lake_query(home) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    sql = next(b for b in re.findall(r"```sql\n(.*?)```", text, re.S) if "lake/gtfs_stops" in b)
    return sql.replace("noriba-data", str(home))


def test_readme_lake_query_reads_the_latest_version_only(two_versions):
    ws = two_versions
    cols = "stop_id, stop_name, stop_lat, stop_lon"
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        everything = con.execute(f"SELECT count(*) FROM read_parquet('{ws.lake}/gtfs_stops/*/*/*.parquet')").fetchall()[0][0]
        lake = con.execute(f"SELECT {cols}, feed_version FROM ({_readme_lake_query(ws.home).rstrip().rstrip(';')}) ORDER BY stop_id").fetchall()
        latest = con.execute(f"SELECT {cols}, feed_version FROM gtfs_latest.stops ORDER BY stop_id").fetchall()
    finally:
        con.close()
    assert everything == 5  # 2 + 3 stops: the plain glob counts both versions
    assert len(lake) == 3 and lake == latest


def test_hms_views_give_gtfs_times_beside_the_seconds_and_keep_hours_past_24(two_versions):
    con = duckdb.connect(str(two_versions.warehouse), read_only=True)
    try:
        st = con.sql("SELECT stop_id, arrival_time, arrival_time_hms, departure_time_hms FROM gtfs_latest.stop_times_hms "
                     "ORDER BY stop_sequence").fetchall()
        n = con.execute("SELECT count(*) FROM gtfs_latest.stop_times").fetchall()[0][0]
        fr = con.sql("SELECT start_time_hms, end_time_hms, end_time FROM gtfs_latest.frequencies_hms").fetchall()
    finally:
        con.close()
    assert st == [("S1", 8 * 3600, "08:00:00", "08:00:00"), ("S2", 24 * 3600 + 600, "24:10:00", "24:10:00")]
    assert n == len(st)
    assert fr == [("06:00:00", "25:30:00", 25 * 3600 + 1800)]


def test_a_version_ingested_in_the_same_second_as_the_one_before_is_the_latest(tmp_path, monkeypatch):
    """Two versions of a feed ingested within one second: the second is the latest (its ingested_at orders after),
    whichever of their version hashes sorts first. At a second's resolution they tied and the hash decided."""
    from datetime import datetime, timezone

    import noriba.pipeline as pipeline
    from noriba.pipeline import run_feed
    from warehouse.workspace import Workspace

    ticks = iter(range(1000, 10**6, 1000))

    class SameSecond(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 12, 7, 12, 0, 0, next(ticks), tzinfo=timezone.utc)

    monkeypatch.setattr(pipeline, "datetime", SameSecond)
    three = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S3,港北,43.32,141.42\n", "frequencies.txt": FREQ}
    for k, order in enumerate(((MINI_FEED, three), (three, MINI_FEED))):  # both orders: one had the hash against it
        ws = Workspace(tmp_path / f"home{k}").ensure()
        for i, files in enumerate(order):
            run_feed(make_spec("port-bus", write_feed(tmp_path / f"in-{k}-{i}", files)), ws, export=False, contracts=False)
        con = duckdb.connect(str(ws.warehouse), read_only=True)
        try:
            stops = con.execute("SELECT count(*) FROM gtfs_latest.stops").fetchall()[0][0]
        finally:
            con.close()
        assert stops == order[-1]["stops.txt"].count("\n") - 1
