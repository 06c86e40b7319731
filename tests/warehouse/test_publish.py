"""Publishing is idempotent, serialised, and all-or-nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb

from tests.conftest import MINI_FEED, ROOT, make_spec, write_feed


def dump(ws) -> dict:
    """Return every warehouse table's rows, without publish timestamps, for comparison."""
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        out = {}
        for schema, table in con.execute(  # a table stored in parts (gtfs.stop_times): its view, not the parts
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('gtfs','meta','quality') "
            "AND (table_type = 'BASE TABLE' AND NOT starts_with(table_name, '_') OR table_type = 'VIEW' AND table_schema = 'gtfs') "
            "ORDER BY ALL"
        ).fetchall():
            drop = (["published_at", "ingested_at", "fetched_at", "raw_path", "source"] if table == "feed_versions"
                    else ["run_at", "seconds"] if table == "expectation_results" else [])
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema=? AND table_name=? ORDER BY ordinal_position",
                [schema, table]).fetchall() if c not in drop]
            sel = ", ".join(f'"{c}"' for c in cols)
            out[f"{schema}.{table}"] = sorted(map(repr, con.execute(f'SELECT {sel} FROM {schema}."{table}"').fetchall()))
        return out
    finally:
        con.close()


def test_same_source_twice_makes_one_version(ws, tmp_path):
    from noriba.pipeline import run_feed

    spec = make_spec("mini", write_feed(tmp_path / "mini", MINI_FEED))
    first = run_feed(spec, ws)
    second = run_feed(spec, ws)
    assert first["status"] == "new" and second["status"] == "unchanged"
    assert "nothing to do" in second["message"]
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(1,)]


def test_repackaged_input_makes_no_new_version(ws, tmp_path):
    """Same files, CRLF line ends and a BOM: another sha256, same normalised contents."""
    from noriba.pipeline import run_feed

    run_feed(make_spec("mini", write_feed(tmp_path / "a", MINI_FEED)), ws)
    crlf = {k: "\ufeff" + v.replace("\n", "\r\n") for k, v in MINI_FEED.items()}
    again = run_feed(make_spec("mini", write_feed(tmp_path / "b", crlf)), ws)
    assert again["status"] == "unchanged"
    changed = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"].replace("港前", "港前東")}
    third = run_feed(make_spec("mini", write_feed(tmp_path / "c", changed)), ws)
    assert third["status"] == "new"
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(2,)]
    assert con.execute("SELECT stop_name FROM gtfs_latest.stops ORDER BY stop_id").fetchall() == [("港前東",), ("駅前",)]


def _cli(home, *args, env=None):
    return subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(home), *args],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_killed_publish_then_rerun_equals_an_uninterrupted_run(tmp_path):
    from warehouse.workspace import Workspace
    from warehouse.publish import CRASH_ENV

    feed = write_feed(tmp_path / "mini", MINI_FEED)
    clean = _cli(tmp_path / "clean", "ingest", "--id", "mini", "--quiet", str(feed))
    assert clean.returncode == 0, clean.stderr
    # first publish a version so there is a previous state, then kill the publish of a second one
    crashed_home = tmp_path / "crashed"
    assert _cli(crashed_home, "ingest", "--id", "mini", "--quiet", str(feed)).returncode == 0
    before = dump(Workspace(crashed_home))
    feed2 = write_feed(tmp_path / "mini2", {**MINI_FEED, "routes.txt": MINI_FEED["routes.txt"] + "R2,A,2,山線,3\n"})
    killed = _cli(crashed_home, "ingest", "--id", "mini", "--quiet", str(feed2), env={CRASH_ENV: "stop_times"})
    assert killed.returncode == 86
    assert dump(Workspace(crashed_home)) == before, "a publish killed mid-way changed the warehouse"
    rerun = _cli(crashed_home, "ingest", "--id", "mini", "--quiet", str(feed2))
    assert rerun.returncode == 0, rerun.stderr
    assert _cli(tmp_path / "clean", "ingest", "--id", "mini", "--quiet", str(feed2)).returncode == 0
    assert dump(Workspace(crashed_home)) == dump(Workspace(tmp_path / "clean"))


def test_latest_views_show_only_the_newest_version(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("mini", write_feed(tmp_path / "a", MINI_FEED)), ws)
    changed = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"] + "S3,山手,43.32,141.42\n"}
    run_feed(make_spec("mini", write_feed(tmp_path / "b", changed)), ws)
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM gtfs.stops").fetchall() == [(5,)]
    assert con.execute("SELECT count(*) FROM gtfs_latest.stops").fetchall() == [(3,)]


def test_schema_checks_are_skipped_at_the_current_layout_and_rerun_when_it_is_incomplete(tmp_path, monkeypatch):
    import warehouse.publish as publish

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish.ensure_schema(con)  # a new warehouse: everything created, the layout marked
    ran: list[str] = []
    real = duckdb.DuckDBPyConnection.execute

    class Spy:
        def __init__(self, c):
            self.c = c

        def execute(self, sql, *a):
            ran.append(sql)
            return real(self.c, sql, *a)

        def sql(self, *a, **k):
            return self.c.sql(*a, **k)

    publish.ensure_schema(Spy(con))
    assert ran == []  # at the current layout: only the catalog read
    con.execute("ALTER TABLE quality.notices DROP COLUMN message")
    con.execute("DROP VIEW gtfs_latest.stops")
    publish.ensure_schema(Spy(con))
    assert any("ADD COLUMN \"message\"" in s for s in ran) and any("VIEW gtfs_latest.\"stops\"" in s for s in ran)
    cols = {c for (c,) in con.sql("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'quality' AND table_name = 'notices'").fetchall()}
    assert "message" in cols
    assert con.sql("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'gtfs_latest' AND view_name = 'stops'").fetchall()[0][0] == 1
    ran.clear()
    publish.ensure_schema(Spy(con))
    assert ran == []


def test_publish_and_contract_results_of_a_run_share_one_writer_connection(ws, tmp_path, monkeypatch):
    """run_feed opens the writer's file once for a feed's publish and its contract results; the readers' copy has both."""
    from noriba.pipeline import run_feed
    from warehouse import publish

    opened = []
    real = publish.duckdb.connect

    def counting(path=":memory:", *args, **kwargs):
        if str(path) == str(publish.writer_path(ws)) and not kwargs.get("read_only"):
            opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(publish.duckdb, "connect", counting)
    out = run_feed(make_spec("mini", write_feed(tmp_path / "mini", MINI_FEED)), ws)
    assert out["status"] == "new" and out["contracts"]["expectations"] > 0
    assert len(opened) == 1
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(1,)]
        assert con.execute("SELECT count(*) FROM quality.expectation_results").fetchall()[0][0] == out["contracts"]["expectations"]
    finally:
        con.close()
    assert not publish._pending(ws).exists()  # the copy was made when the lock was released


def test_publish_lock_taken_again_in_the_same_thread_does_not_wait(ws):
    from warehouse.publish import publish_lock, writer_session

    with writer_session(ws), publish_lock(ws), publish_lock(ws):
        pass


def _part_counts(ws) -> dict:
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM gtfs.{t}").fetchall()[0][0]
                for t in ("_stop_times_narrow", "_stop_times_classic", "_stop_times_wide")} | {
            "versions": con.execute("SELECT count(*) FROM gtfs._stop_times_versions").fetchall()[0][0]}
    finally:
        con.close()


def test_stop_times_go_to_the_narrowest_table_holding_their_filled_columns(ws, tmp_path):
    """DuckDB spends CPU storing each all-NULL text column: a partition is stored without the columns it does not fill,
    and gtfs.stop_times (a view of the parts) gives every column, NULL where the partition had none."""
    from noriba.pipeline import run_feed

    run_feed(make_spec("plain", write_feed(tmp_path / "plain", MINI_FEED)), ws)
    assert _part_counts(ws) == {"_stop_times_narrow": 2, "_stop_times_classic": 0, "_stop_times_wide": 0, "versions": 1}
    headsign = {**MINI_FEED, "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,stop_headsign\n"
                "T1,08:00:00,08:00:00,S1,1,港前\nT1,24:10:00,24:10:00,S2,2,\n"}
    run_feed(make_spec("headsign", write_feed(tmp_path / "headsign", headsign)), ws)
    assert _part_counts(ws) == {"_stop_times_narrow": 2, "_stop_times_classic": 2, "_stop_times_wide": 0, "versions": 2}
    extra = {**MINI_FEED, "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence,my_note\n"
             "T1,08:00:00,08:00:00,S1,1,x\nT1,24:10:00,24:10:00,S2,2,y\n"}
    run_feed(make_spec("extra", write_feed(tmp_path / "extra", extra)), ws)
    assert _part_counts(ws) == {"_stop_times_narrow": 2, "_stop_times_classic": 2, "_stop_times_wide": 2, "versions": 2}
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'gtfs' "
                                      "AND table_name = 'stop_times' ORDER BY ordinal_position").fetchall()]
    from warehouse.publish import _warehouse_tables
    assert cols == [c for s, t, cs in _warehouse_tables() if t == "stop_times" for c, _ in cs]
    rows = con.execute("SELECT feed_id, _line, trip_id, arrival_time, stop_id, stop_sequence, stop_headsign, _extra IS NOT NULL "
                       "FROM gtfs_latest.stop_times ORDER BY ALL").fetchall()
    assert rows == [("extra", 2, "T1", 28800, "S1", 1, None, True), ("extra", 3, "T1", 87000, "S2", 2, None, True),
                    ("headsign", 2, "T1", 28800, "S1", 1, "港前", False), ("headsign", 3, "T1", 87000, "S2", 2, None, False),
                    ("plain", 2, "T1", 28800, "S1", 1, None, False), ("plain", 3, "T1", 87000, "S2", 2, None, False)]


def test_publishing_a_version_again_replaces_its_rows_in_every_part(ws, tmp_path):
    from noriba.pipeline import run_feed
    from warehouse import publish

    out = run_feed(make_spec("plain", write_feed(tmp_path / "plain", MINI_FEED)), ws)
    first = dump(ws)
    again = publish.publish(ws, "plain", out["feed_version"])
    assert again["published"]["gtfs.stop_times"] == 2
    assert _part_counts(ws) == {"_stop_times_narrow": 2, "_stop_times_classic": 0, "_stop_times_wide": 0, "versions": 1}
    assert {k: v for k, v in dump(ws).items() if k != "meta.feed_versions"} == \
        {k: v for k, v in first.items() if k != "meta.feed_versions"}


def test_a_warehouse_of_the_layout_before_the_split_keeps_its_stop_times(ws, tmp_path):
    """An existing warehouse's gtfs.stop_times table becomes the widest part: its rows stay readable, a version of it
    published again is replaced, and new versions go to the narrow part."""
    from noriba.pipeline import run_feed
    from warehouse import publish

    out = run_feed(make_spec("plain", write_feed(tmp_path / "plain", MINI_FEED)), ws)
    writer = publish.writer_path(ws)
    con = duckdb.connect(str(writer))  # back to the old layout: one stop_times table holding the version's rows
    con.execute("CREATE TABLE gtfs.old AS SELECT * FROM gtfs.stop_times")
    con.execute("DROP VIEW gtfs.stop_times")
    for part in ("narrow", "classic", "wide", "versions"):
        con.execute(f"DROP TABLE gtfs._stop_times_{part}")
    con.execute("ALTER TABLE gtfs.old RENAME TO stop_times")
    con.execute("COMMENT ON VIEW meta.latest_versions IS 'before the split'")
    con.close()
    publish._at_layout_here.clear()
    assert publish.is_published(ws, "plain", out["feed_version"])  # brings the file to the current layout
    con = duckdb.connect(str(writer), read_only=True)
    assert con.execute("SELECT count(*) FROM gtfs._stop_times_wide").fetchall() == [(2,)]
    assert con.execute("SELECT count(*) FROM gtfs_latest.stop_times").fetchall() == [(2,)]
    assert con.execute("SELECT table_type FROM information_schema.tables WHERE table_schema = 'gtfs' "
                       "AND table_name = 'stop_times'").fetchall() == [("VIEW",)]
    con.close()
    publish.publish(ws, "plain", out["feed_version"])
    assert _part_counts(ws) == {"_stop_times_narrow": 2, "_stop_times_classic": 0, "_stop_times_wide": 0, "versions": 1}
    changed = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"].replace("港前", "港前東")}
    run_feed(make_spec("plain", write_feed(tmp_path / "changed", changed)), ws)
    assert _part_counts(ws) == {"_stop_times_narrow": 4, "_stop_times_classic": 0, "_stop_times_wide": 0, "versions": 2}
