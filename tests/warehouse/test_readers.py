"""Readers never wait for the writer: they open NORIBA_HOME/noriba.duckdb, a copy replaced whole after each feed's run (bounded staleness in a run of many)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb

from bench.bench_readers import latency, start_reader, stop_reader
from tests.conftest import MINI_FEED, ROOT, make_spec, shared, write_feed

#: Ten small real GTFS-JP feeds (stop_times 56 to 948 rows): community buses, a ferry, a shared taxi.
FEEDS = ("gtfs.1034.uenomura_com", "401005_shieitosengtfs", "gtfs.1022.minakamimachi_com", "GTFS(nagaibus-gunma-jp)",
         "gtfs.1017.yajima_taxi", "403491_fureaibus_gtfs_20190401", "city_kurobe_shinkansen_ikuji_gtfs",
         "city_uozu_omotenashi_gtfs", "town_nyuzen_liner_gtfs", "gtfs.1048.oizumimachi_com")


def _cli(home, *args, fault: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NORIBA_FAULT_AT", "NORIBA_HOME", "NORIBA_DEBUG")}
    if fault:
        env["NORIBA_FAULT_AT"] = fault
    return subprocess.run([sys.executable, "-m", "noriba.cli", "--home", str(home), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_queries_while_ten_feeds_publish_never_fail_never_wait_a_second_and_see_only_whole_publishes(ws):
    from datetime import date

    from noriba.pipeline import run_feed

    corpus = shared("gtfs", "jp", "corpus-2019", "feeds")
    specs = [make_spec(f"jp-{i:02d}", corpus / f"{name}.zip", timezone="Asia/Tokyo") for i, name in enumerate(FEEDS)]
    proc, stop, out = start_reader(ws.warehouse, ws.home.parent)
    try:
        for spec in specs:  # the writer: this process; the reader: its own, as an analyst's
            run_feed(spec, ws, export=False, contracts=False, validation_date=date(2019, 6, 1))
        time.sleep(0.5)  # a few queries on the final state
    finally:
        rows = stop_reader(proc, stop, out)
    answered = [r for r in rows if "versions" in r]
    figures = latency(rows)
    print(f"readers while {len(FEEDS)} feeds publish: {figures}")  # shown with pytest -s; bench/README.md quotes it
    assert figures["failed"] == 0, figures["errors"]
    assert figures["max_s"] < 1.0, figures
    seen = [r["versions"] for r in answered]
    assert seen == sorted(seen), "a reader saw the warehouse go back"
    assert all(r["versions"] == r["with_stops"] for r in answered), "a reader saw stops of a version without its meta row"
    assert seen[-1] == len(FEEDS) and len(set(seen)) >= 4, f"the reader did not query during the publishes: {sorted(set(seen))}"
    first = next(i for i, r in enumerate(rows) if not r.get("absent"))
    assert not any(r.get("absent") for r in rows[first:]), "the published file went missing after it first appeared"


def test_a_reader_that_keeps_the_file_open_holds_up_no_writer_and_keeps_its_state(ws, tmp_path):
    from noriba.pipeline import run_feed

    run_feed(make_spec("mini", write_feed(tmp_path / "a", MINI_FEED)), ws, export=False, contracts=False)
    held = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys\n"
        f"con = duckdb.connect({str(ws.warehouse)!r}, read_only=True)\n"
        "print(con.execute('SELECT count(*) FROM meta.feed_versions').fetchall()[0][0], flush=True)\n"
        "sys.stdin.readline()\n"
        "print(con.execute('SELECT count(*) FROM meta.feed_versions').fetchall()[0][0], flush=True)\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert held.stdout.readline().strip() == "1"
        changed = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"].replace("港前", "港前東")}
        assert run_feed(make_spec("mini", write_feed(tmp_path / "b", changed)), ws, export=False, contracts=False)["status"] == "new"
        out, _ = held.communicate("\n", timeout=60)
    finally:
        if held.poll() is None:
            held.kill()
    assert out.strip() == "1"  # its connection is its snapshot
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(2,)]
    finally:
        con.close()


def test_a_run_killed_between_commit_and_copy_leaves_readers_the_state_before_and_the_next_writer_publishes_it(tmp_path):
    from warehouse.workspace import Workspace
    from warehouse.publish import is_published, writer_path

    feed = write_feed(tmp_path / "in", MINI_FEED)
    home = tmp_path / "home"
    assert _cli(home, "ingest", "--quiet", "--no-export", "--id", "first", str(feed)).returncode == 0
    killed = _cli(home, "ingest", "--quiet", "--no-export", "--id", "second", str(feed), fault="snapshot")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    ws = Workspace(home)
    assert (home / "writer" / ".snapshot-pending").exists() and list(home.glob(".noriba.duckdb.tmp-*"))
    status = _cli(home, "status")
    assert status.returncode == 0 and "first" in status.stdout and "second" not in status.stdout, status.stdout + status.stderr
    con = duckdb.connect(str(writer_path(ws)), read_only=True)
    ver = con.execute("SELECT feed_version FROM meta.feed_versions WHERE feed_id = 'second'").fetchall()[0][0]  # committed
    con.close()
    assert is_published(ws, "second", ver)  # the next holder of the publish lock publishes the copy first
    assert not (home / "writer" / ".snapshot-pending").exists() and not list(home.glob(".noriba.duckdb.tmp-*"))
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT feed_id FROM meta.feed_versions ORDER BY 1").fetchall() == [("first",), ("second",)]
    finally:
        con.close()


def test_a_workspace_of_earlier_versions_keeps_its_warehouse_as_the_writers_file(ws, tmp_path):
    import shutil

    from noriba.pipeline import run_feed
    from warehouse.publish import writer_path

    run_feed(make_spec("old", write_feed(tmp_path / "a", MINI_FEED)), ws, export=False, contracts=False)
    shutil.rmtree(writer_path(ws).parent)  # as earlier versions left it: noriba.duckdb was the writer's file
    run_feed(make_spec("new", write_feed(tmp_path / "b", MINI_FEED)), ws, export=False, contracts=False)
    for path in (ws.warehouse, writer_path(ws)):
        con = duckdb.connect(str(path), read_only=True)
        try:
            assert con.execute("SELECT feed_id FROM meta.feed_versions ORDER BY 1").fetchall() == [("new",), ("old",)], path
        finally:
            con.close()


def test_a_writer_that_commits_nothing_makes_no_copy(ws, tmp_path):
    from noriba.pipeline import run_feed
    from warehouse.publish import connect, publish_lock

    run_feed(make_spec("mini", write_feed(tmp_path / "a", MINI_FEED)), ws, export=False, contracts=False)
    before = os.stat(ws.warehouse)
    with publish_lock(ws):
        con = connect(ws)  # opened for writing, then nothing committed
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM gtfs.stops")
        con.execute("ROLLBACK")
        con.close()
    after = os.stat(ws.warehouse)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not (ws.home / "writer" / ".snapshot-pending").exists()


def _copies_by_thread(monkeypatch) -> list[tuple[str, str]]:
    import threading

    import warehouse.publish as publish

    made: list[tuple[str, str]] = []
    real = publish.publish_snapshot

    def traced(ws):
        out = real(ws)
        made.append((threading.current_thread().name, out["how"]))
        return out

    monkeypatch.setattr(publish, "publish_snapshot", traced)
    return made


def test_the_readers_copy_is_made_while_the_writer_closes_and_is_the_closed_file(ws, monkeypatch):
    from warehouse.publish import connect, writer_path, writer_session

    made = _copies_by_thread(monkeypatch)
    with writer_session(ws):
        con = connect(ws)
        con.execute("CREATE TABLE t AS SELECT range AS a, range::VARCHAR AS b FROM range(200000)")
        con.execute("CHECKPOINT")  # no WAL left: the copy can start before DuckDB closes the file
    assert len(made) == 1 and made[0][0].startswith("noriba-snapshot") and made[0][1] != "unchanged"
    assert ws.warehouse.read_bytes() == writer_path(ws).read_bytes()  # closing wrote nothing after the copy
    assert not (writer_path(ws).parent / ".snapshot-pending").exists()
    with duckdb.connect(str(ws.warehouse), read_only=True) as r:
        assert r.execute("SELECT count(*), sum(a) FROM t").fetchone() == (200000, 199999 * 200000 // 2)


def test_a_writer_whose_commits_are_still_in_the_wal_is_copied_after_it_closes(ws, monkeypatch):
    from warehouse.publish import connect, writer_path, writer_session

    with writer_session(ws):
        connect(ws).execute("CREATE TABLE t (a INTEGER)")
    made = _copies_by_thread(monkeypatch)
    with writer_session(ws):
        connect(ws).execute("INSERT INTO t VALUES (1), (2)")  # a small commit stays in the WAL until DuckDB closes
        assert writer_path(ws).with_name(writer_path(ws).name + ".wal").exists()
    assert [t for t, _ in made] == ["MainThread"] and made[0][1] != "unchanged"  # by the lock's release, after the close
    with duckdb.connect(str(ws.warehouse), read_only=True) as r:
        assert r.execute("SELECT sum(a) FROM t").fetchone() == (3,)


def _count_copies(monkeypatch) -> list[dict]:
    import warehouse.publish as publish

    made: list[dict] = []
    real = publish.publish_snapshot

    def counted(ws):
        out = real(ws)
        if out["how"] != "unchanged":
            made.append(out)
        return out

    monkeypatch.setattr(publish, "publish_snapshot", counted)
    return made


def test_a_feed_run_copies_the_warehouse_for_readers_once_after_its_publish_and_contracts(ws, tmp_path, monkeypatch):
    from noriba.pipeline import run_feed

    run_feed(make_spec("first", write_feed(tmp_path / "a", MINI_FEED)), ws, export=False, contracts=False)
    made = _count_copies(monkeypatch)
    changed = {**MINI_FEED, "stops.txt": MINI_FEED["stops.txt"].replace("港前", "港前東")}
    assert run_feed(make_spec("first", write_feed(tmp_path / "b", changed)), ws, export=False)["status"] == "new"
    assert len(made) == 1  # publish and contracts both committed: one copy at the end of the feed's run
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(2,)]
        assert con.execute("SELECT count(DISTINCT feed_version) FROM quality.expectation_results").fetchall() == [(1,)]
    finally:
        con.close()
    assert not (ws.home / "writer" / ".snapshot-pending").exists()


def test_a_run_of_many_feeds_copies_at_most_once_per_interval_and_once_at_the_end(ws, tmp_path, monkeypatch):
    from noriba.pipeline import run_feed
    from warehouse.publish import connect, deferred_snapshots

    run_feed(make_spec("f0", write_feed(tmp_path / "f0", MINI_FEED)), ws, export=False, contracts=False)
    made = _count_copies(monkeypatch)
    with deferred_snapshots(ws, every=3600):
        for i in (1, 2, 3):
            run_feed(make_spec(f"f{i}", write_feed(tmp_path / f"f{i}", MINI_FEED)), ws, export=False, contracts=False)
        assert made == []  # deferred: readers still see the state before the run, a whole file
        con = duckdb.connect(str(ws.warehouse), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(1,)]
        finally:
            con.close()
        assert (ws.home / "writer" / ".snapshot-pending").exists()  # a kill now: the next writer publishes the copy
        con = connect(ws, read_only=True)  # the run's own reads see its writes: the copy is made first
        try:
            assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(4,)]
        finally:
            con.close()
        assert len(made) == 1
        run_feed(make_spec("f4", write_feed(tmp_path / "f4", MINI_FEED)), ws, export=False, contracts=False)
        assert len(made) == 1
    assert len(made) == 2  # the end of the run
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM meta.feed_versions").fetchall() == [(5,)]
    finally:
        con.close()
    assert not (ws.home / "writer" / ".snapshot-pending").exists()


def test_noriba_run_of_several_specs_leaves_readers_every_feed(tmp_path):
    home = tmp_path / "home"
    specs = tmp_path / "specs" / "feeds"
    specs.mkdir(parents=True)
    for i in range(3):
        feed = write_feed(tmp_path / f"in{i}", MINI_FEED)
        (specs / f"f{i}.yaml").write_text(f"id: f{i}\nkind: gtfs\nsource:\n  path: {feed}\n", encoding="utf-8")
    done = _cli(home, "run", "--specs", str(tmp_path / "specs"), "--quiet", "--no-export")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (home / "writer" / ".snapshot-pending").exists()
    con = duckdb.connect(str(home / "noriba.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT feed_id FROM meta.feed_versions ORDER BY 1").fetchall() == [("f0",), ("f1",), ("f2",)]
    finally:
        con.close()
