"""The GBFS publish's writer thread (warehouse.gbfs.Writer): prepared while the batch is read, it publishes, releases the
publish lock with the readers' copy made, and leaves nothing behind when anything fails."""

import fcntl
import json
import threading
from pathlib import Path

import duckdb
import pytest

from noriba.gbfs import ingest
from warehouse.gbfs import Writer
from warehouse.publish import deferred_snapshots
from warehouse.workspace import Workspace


def _system(folder: Path, snapshots: int = 3) -> Path:
    """Write a small docked system (2 stations) with ``snapshots`` station_status files a minute apart."""
    folder.mkdir(parents=True)
    stations = [{"station_id": s, "name": f"Station {s}", "lat": 40.0, "lon": -105.0, "capacity": 10} for s in ("a", "b")]
    (folder / "station_information.json").write_text(json.dumps(
        {"last_updated": 1_644_883_200, "ttl": 60, "version": "2.3", "data": {"stations": stations}}))
    for k in range(snapshots):
        t = 1_644_883_200 + 60 * k
        status = [{"station_id": s, "num_bikes_available": k + i, "num_docks_available": 10 - k - i, "is_installed": True,
                   "is_renting": True, "is_returning": True, "last_reported": t} for i, s in enumerate(("a", "b"))]
        (folder / f"station_status_{t}.json").write_text(json.dumps(
            {"last_updated": t, "ttl": 60, "version": "2.3", "data": {"stations": status}}))
    return folder


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "noriba-gbfs-writer"]


def _lock_free(ws: Workspace) -> bool:
    with open(ws.home / ".publish.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


def _published_rows(ws: Workspace, feed_id: str) -> int:
    if not ws.warehouse.exists():
        return 0
    with duckdb.connect(str(ws.warehouse), read_only=True) as con:
        return con.sql("SELECT count(*) FROM gbfs.station_status WHERE feed_id = ?", params=[feed_id]).fetchall()[0][0]


def test_readers_see_the_batch_as_soon_as_ingest_returns(tmp_path):
    ws = Workspace(tmp_path / "home")
    out = ingest(ws, "town", _system(tmp_path / "in"), export=False, timezone_name="UTC")
    assert out["batch_rows_accepted"] == 8  # 2 stations of information + 3 status snapshots of 2 stations
    assert _published_rows(ws, "town") == 6
    assert _lock_free(ws) and not _writer_threads()


def test_a_failure_while_reading_gives_the_publish_lock_back_and_leaves_no_thread(tmp_path, monkeypatch):
    import noriba.gbfs as ng

    ws = Workspace(tmp_path / "home")
    held = []

    def failing(*a, **k):  # the writer is started (the last batch is being staged) and holds the lock by now
        held.append(not _lock_free_soon(ws))
        raise RuntimeError("disk gone")

    monkeypatch.setattr(ng, "_stage_batch", failing)
    with pytest.raises(RuntimeError, match="disk gone"):
        ingest(ws, "town", _system(tmp_path / "in"), export=False, timezone_name="UTC")
    assert held == [True]
    assert _lock_free(ws) and not _writer_threads()
    assert _published_rows(ws, "town") == 0


def _lock_free_soon(ws: Workspace) -> bool:
    """Return whether the publish lock is free, after giving a starting writer thread time to take it."""
    import time

    for _ in range(200):
        if not _lock_free(ws):
            return False
        time.sleep(0.01)
    return True


def test_a_failing_job_is_raised_in_the_caller_and_nothing_is_committed(tmp_path):
    ws = Workspace(tmp_path / "home")
    ingest(ws, "town", _system(tmp_path / "in"), export=False, timezone_name="UTC")

    def half_then_fail(con):
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM gbfs.station_status WHERE feed_id = 'town'")
        raise ValueError("bad batch")

    with Writer(ws) as w:
        with pytest.raises(ValueError, match="bad batch"):
            w.run(half_then_fail)
        w.run(lambda con: con.execute("ROLLBACK"))  # the same connection goes on serving the caller
        assert w.run(lambda con: con.sql("SELECT count(*) FROM gbfs.station_status").fetchall()[0][0]) == 6
    assert _published_rows(ws, "town") == 6 and _lock_free(ws) and not _writer_threads()


def test_inside_deferred_snapshots_the_readers_copy_waits_for_the_end_of_the_block(tmp_path):
    ws = Workspace(tmp_path / "home")
    ingest(ws, "first", _system(tmp_path / "in1"), export=False, timezone_name="UTC")
    with deferred_snapshots(ws, every=None):
        ingest(ws, "second", _system(tmp_path / "in2", snapshots=2), export=False, timezone_name="UTC")
        assert _published_rows(ws, "second") == 0  # committed in the writer's file; the copy is deferred
    assert _published_rows(ws, "second") == 4 and _published_rows(ws, "first") == 6


def test_a_writer_never_started_does_nothing(tmp_path):
    ws = Workspace(tmp_path / "home")
    ws.ensure()
    from warehouse.publish import _file_state, writer_path

    before = _file_state(writer_path(ws))
    with Writer(ws):
        pass
    assert _file_state(writer_path(ws)) == before and not (writer_path(ws).parent / ".snapshot-pending").exists()
    assert not _writer_threads()


def test_a_failed_lake_write_fails_the_ingest_and_nothing_is_committed(tmp_path, monkeypatch):
    import time

    import noriba.gbfs as ng

    write = ng._write

    def slow_then_fail(table, dest):
        if "gbfs_station_status" in str(dest):
            time.sleep(0.3)  # the publish has long reached its commit by now: it must wait for the lake
            raise OSError(28, "No space left on device")
        return write(table, dest)

    monkeypatch.setattr(ng, "_write", slow_then_fail)
    ws = Workspace(tmp_path / "home")
    with pytest.raises(OSError, match="No space left"):
        ingest(ws, "town", _system(tmp_path / "in"), export=False, timezone_name="UTC")
    assert _published_rows(ws, "town") == 0
    assert not list((ws.lake / "gbfs_batches").glob("**/batch=*.parquet"))  # the batch is not complete in the lake either
    assert _lock_free(ws) and not _writer_threads()
    assert not [t for t in threading.enumerate() if t.name.startswith("noriba-gbfs-io")]
    monkeypatch.setattr(ng, "_write", write)  # the next run ingests the same files whole
    out = ingest(ws, "town", _system(tmp_path / "in2"), export=False, timezone_name="UTC")
    assert out["new_files"] == 4 and _published_rows(ws, "town") == 6


@pytest.mark.parametrize("limit", ["files", "bytes"])
def test_the_publish_lock_is_held_only_while_the_last_batch_is_staged(tmp_path, monkeypatch, limit):
    import noriba.gbfs as ng

    folder = _system(tmp_path / "in", snapshots=6)
    if limit == "files":  # 7 files: more than a batch holds, so the writer is not started with the ingest
        monkeypatch.setattr(ng, "MAX_BATCH_FILES", 3)
    else:  # few enough files for one batch, but too many bytes: the writer started with the ingest lets the lock go
        monkeypatch.setattr(ng, "MAX_BATCH_BYTES", 3 * max(p.stat().st_size for p in folder.iterdir()))
    stage = ng._stage_batch
    staged = []  # (files so far, whether the lock was held while the batch was staged)

    def watched(ws, feed_id, items, **kw):
        files = (staged[-1][0] if staged else 0) + len(items)
        staged.append((files, not _lock_free_soon(ws) if files == 7 else not _lock_free(ws)))
        return stage(ws, feed_id, items, **kw)

    monkeypatch.setattr(ng, "_stage_batch", watched)
    ws = Workspace(tmp_path / "home")
    out = ingest(ws, "town", folder, export=False, timezone_name="UTC")
    assert len(staged) == 3 and [held for _, held in staged] == [False, False, True]
    assert out["new_files"] == 7 and _published_rows(ws, "town") == 12
    assert _lock_free(ws) and not _writer_threads()


def test_marts_figures_made_beside_the_writer_equal_those_read_from_the_warehouse(tmp_path):
    import pyarrow as pa

    from warehouse.gbfs import _availability, _premade_marts, _states

    ws = Workspace(tmp_path / "home")
    ingest(ws, "town", _system(tmp_path / "in", snapshots=5), export=False, timezone_name="UTC")
    with duckdb.connect(str(ws.warehouse), read_only=True) as con:
        rows = con.sql("SELECT * EXCLUDE (feed_id, snapshot_time) FROM gbfs.station_status").to_arrow_table()
        from_sql = _availability(_states(con, "town", "", False), 300)
    states, figures = _premade_marts(rows, 300)
    assert figures.to_pylist() == from_sql.to_pylist() and figures.num_rows > 0
    twice = pa.concat_tables([rows, rows.slice(0, 1)])  # a station twice at one time: DuckDB decides, so not made here
    assert _premade_marts(twice, 300) is None


def test_an_ingest_by_a_thread_that_holds_the_publish_lock_runs_its_publish_itself(tmp_path):
    from warehouse.publish import publish_lock, writer_session

    ws = Workspace(tmp_path / "home")
    ws.ensure()
    done = []

    def run():
        with writer_session(ws), publish_lock(ws):
            done.append(ingest(ws, "town", _system(tmp_path / "in"), export=False, timezone_name="UTC"))

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the ingest waited for the lock its own thread holds"
    assert done and done[0]["batch_rows_accepted"] == 8 and not _writer_threads()
    assert _published_rows(ws, "town") == 6 and _lock_free(ws)  # copied when the session let the lock go


def test_the_gbfs_writer_writes_row_groups_of_its_own_size_and_readers_see_every_row(tmp_path, monkeypatch):
    import warehouse.gbfs as wg

    monkeypatch.setattr(wg, "ROW_GROUP_SIZE", 2048)  # DuckDB's smallest; the real size is 32,768
    folder = tmp_path / "in"
    folder.mkdir()
    t0 = 1_644_883_200
    for k in range(120):  # 120 snapshots of 50 stations: 6,000 status rows
        status = [{"station_id": f"s{i}", "num_bikes_available": (k + i) % 7, "num_docks_available": 10, "is_installed": True,
                   "is_renting": True, "is_returning": True, "last_reported": t0 + 60 * k} for i in range(50)]
        (folder / f"station_status_{t0 + 60 * k}.json").write_text(json.dumps(
            {"last_updated": t0 + 60 * k, "ttl": 60, "version": "2.3", "data": {"stations": status}}))
    ws = Workspace(tmp_path / "home")
    ingest(ws, "city", folder, export=False, timezone_name="UTC")
    with duckdb.connect(str(ws.warehouse), read_only=True) as con:
        groups = con.sql("SELECT row_group_id, max(start + count) - min(start) FROM pragma_storage_info('gbfs.station_status') "
                         "WHERE segment_type <> 'VALIDITY' GROUP BY ALL ORDER BY 1").fetchall()
        assert con.sql("SELECT count(*), sum(num_bikes_available) FROM gbfs.station_status").fetchall() == [
            (6000, sum((k + i) % 7 for k in range(120) for i in range(50)))]
    assert len(groups) == 3 and all(n <= 2048 for _, n in groups), groups
