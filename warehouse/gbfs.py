"""Publish GBFS into DuckDB (schema ``gbfs``), build its marts (schema ``marts``) and export them.

A feed's lake batches (``lake/gbfs_<table>/feed_id=<id>/batch=<id>.parquet``, one per ingest of new
snapshots; only batches listed in ``gbfs_batches`` count, so a killed write is never read) replace
the feed's rows in one transaction, under the same single-writer lock as GTFS and trips. When the
warehouse holds the feed as it was before the new batches (its meta version), only their rows are
added and only the mart hours they can change are rebuilt (``publish_gbfs(append=...)``, ``build_marts(since=...)``).

Marts (SQL below):

- ``marts.gbfs_station_availability_hour``: per station and hour, bikes and docks available
  (time-weighted mean, min, max) and minutes empty / full. A station's state (from a snapshot's
  ``last_updated``) lasts until its next snapshot, at most ``max_gap_s`` (a polling gap beyond that
  is not observed); a station is empty while ``num_bikes_available = 0`` and full while
  ``num_docks_available = 0``. Time is cut at UTC hour boundaries and labelled in the system's
  local time (for a zone with a half-hour offset the hour starts at :30 local).
- ``marts.gbfs_vehicles_zone_hour``: per zone of the spec's zone layer and hour, vehicles available
  (neither reserved nor disabled) averaged over the hour's snapshots, for free-floating vehicles
  (vehicle status with a position) and for bikes docked at the zone's stations.

No vehicle id reaches the lake, the warehouse or an export (transforms/gbfs/parse.py drops them).
"""

from __future__ import annotations

import csv
import json
import queue
import threading
from concurrent.futures import Future
from contextlib import closing, nullcontext
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from warehouse.txn import transaction
from warehouse.versions import insert_feed_version
from warehouse.workspace import Workspace
from transforms.gbfs.parse import SCHEMAS, TABLES
from transforms.sql import lit
from warehouse.publish import _ensure_schema_once, connect, ensure_schema, writer_path, writer_session

_DUCK = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
#: Rows of a row group the GBFS writer gives DuckDB (its default: 122,880). A day of a city's station_status is tens of
#: thousands of rows: in row groups of 32,768 the first is compressed as the insert fills it and the commit's checkpoint
#: compresses the rest, ~20 % less CPU for both than one row group at the commit (insert + commit of Boulder's 62,730 rows,
#: 34 -> 27 ms, bench/README.md "Session 13").
ROW_GROUP_SIZE = 32_768
#: Lake tables of a feed: the row tables, then files, notices, quarantine; gbfs_batches last (it marks a batch complete).
LAKE_TABLES = (*TABLES, "files", "notices", "quarantine")
ZONE_COLUMNS = (("zone_layer", "VARCHAR"), ("zone_id", "VARCHAR"))
ZONED = ("station_information", "vehicle_status")


def columns(table: str) -> list[tuple[str, str]]:
    """Return (name, DuckDB type) of a published gbfs table, after feed_id."""
    cols = [(f.name, _DUCK[str(f.type)]) for f in SCHEMAS[table]]
    return cols + (list(ZONE_COLUMNS) if table in ZONED else [])


def batch_files(ws: Workspace, feed_id: str) -> list[str]:
    """Return the ids of the feed's complete batches in the lake (those listed in gbfs_batches), sorted by id (a hash, not
    a time: the newest batch is the one its meta row says was ingested last)."""
    folder = ws.lake / "gbfs_batches" / f"feed_id={feed_id}"
    return sorted(p.stem.removeprefix("batch=") for p in folder.glob("batch=*.parquet"))


def lake_paths(ws: Workspace, table: str, feed_id: str, batches: list[str]) -> list[str]:
    return [str(p) for b in batches if (p := ws.lake / f"gbfs_{table}" / f"feed_id={feed_id}" / f"batch={b}.parquet").exists()]


_GBFS_TABLES = [("gbfs", t) for t in (*TABLES, "files")] + [("marts", "gbfs_station_availability_hour"),
                                                             ("marts", "gbfs_vehicles_zone_hour")]


#: Writer files (path, inode) this process found or made with every gbfs and marts table: a process that publishes again
#: (the archiver's hourly step) does not check the catalog again, as GTFS publish does not (warehouse.publish._ensure_schema_once).
_created_here: set[tuple[str, int]] = set()


def _create(con: duckdb.DuckDBPyConnection, path: Path | None = None) -> None:
    """Create the warehouse's tables and the gbfs and marts tables when missing (one catalog query when they all exist).
    With ``path`` (the file of ``con``), once per process and file."""
    key = (str(path), path.stat().st_ino) if path is not None and path.exists() else None
    if key is not None and key in _created_here:
        return
    if path is not None:
        _ensure_schema_once(con, path)
    else:
        ensure_schema(con)
    have = set(con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('gbfs', 'marts') "
                           "AND database_name = current_database()").fetchall())
    if have >= set(_GBFS_TABLES):
        if key is not None:
            _created_here.add(key)
        return
    for s in ("gbfs", "marts"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    for t in TABLES:
        cols = ", ".join(f"{c} {ty}" for c, ty in [("feed_id", "VARCHAR"), *columns(t), ("snapshot_time", "TIMESTAMPTZ")])
        con.execute(f"CREATE TABLE IF NOT EXISTS gbfs.{t} ({cols})")
    cols = ", ".join(f"{c} {ty}" for c, ty in [("feed_id", "VARCHAR"), *columns("files")])
    con.execute(f"CREATE TABLE IF NOT EXISTS gbfs.files ({cols})")
    con.execute("CREATE TABLE IF NOT EXISTS marts.gbfs_station_availability_hour (feed_id VARCHAR, station_id VARCHAR, "
                "station_name VARCHAR, zone_layer VARCHAR, zone_id VARCHAR, hour_local TIMESTAMP, local_date DATE, hour INTEGER, "
                "snapshots BIGINT, minutes_observed DOUBLE, avg_bikes_available DOUBLE, min_bikes_available BIGINT, "
                "max_bikes_available BIGINT, avg_docks_available DOUBLE, minutes_empty DOUBLE, minutes_full DOUBLE)")
    con.execute("CREATE TABLE IF NOT EXISTS marts.gbfs_vehicles_zone_hour (feed_id VARCHAR, source VARCHAR, zone_layer VARCHAR, "
                "zone_id VARCHAR, vehicle_type_id VARCHAR, hour_local TIMESTAMP, local_date DATE, hour INTEGER, snapshots BIGINT, "
                "avg_available DOUBLE, max_available BIGINT, avg_reserved DOUBLE, avg_disabled DOUBLE)")


def _insert(con: duckdb.DuckDBPyConnection, sql: str, params: list, paths: list[str], tables: list, *, by_name: bool) -> int:
    """Return the rows inserted by ``sql`` (its ``$from``: the rows of the Parquet ``paths``, then those of the Arrow
    ``tables``, each read once)."""
    n = 0
    if paths:
        src = f"read_parquet([{', '.join(lit(p) for p in paths)}], {'union_by_name = true, ' if by_name else ''}hive_partitioning = false)"
        n += con.execute(sql.replace("$from", src), params).fetchall()[0][0]
    for table in tables:
        con.register("_gbfs_batch", table)
        try:
            n += con.execute(sql.replace("$from", "_gbfs_batch"), params).fetchall()[0][0]
        finally:
            con.unregister("_gbfs_batch")
    return n


def publish_gbfs(ws: Workspace, feed_id: str, *, meta: dict, max_gap_s: int = 300, append: dict | None = None,
                 memory: dict[str, dict] | None = None, writer: "Writer | None" = None, pending: dict | None = None) -> dict:
    """Return row counts published for a GBFS feed: all its lake batches replace its warehouse rows and marts in one transaction.

    ``append`` ({"previous_version", "batches", "marts_from"}): if the warehouse holds the feed's ``previous_version``, only
    ``batches`` (the new ones) are inserted, and the marts' rows are rebuilt from the hour of ``marts_from`` (POSIX
    seconds; None: all of them); otherwise everything is replaced as without it. Counts are of the rows inserted.
    ``memory`` ({batch id: {table: Arrow table}}): batches just staged, whose tables (those its lake files hold) are
    inserted as they are instead of being read back from the lake. ``writer``: a Writer already started (its connection
    opened while the batch was read), else one is made here. ``pending`` ({batch id: Future}): batches of ``memory`` whose
    lake files are still being written; the commit waits for them (the lake holds every batch the warehouse does).
    """
    memory, pending = memory or {}, pending or {}
    ids = sorted(set(batch_files(ws, feed_id)) | set(pending))
    one = memory[ids[0]].get("station_status") if len(ids) == 1 and ids[0] in memory else None
    premade: Future = Future()  # the availability mart's figures of a feed that is one batch in memory, computed here

    def job(con: duckdb.DuckDBPyConnection) -> dict:
        return _publish_on(con, ws, feed_id, meta=meta, max_gap_s=max_gap_s, append=append, memory=memory, pending=pending,
                           premade=premade)

    def make() -> None:
        try:
            premade.set_result(_premade_marts(one, max_gap_s) if one is not None else None)
        except BaseException as exc:  # noqa: BLE001 - the job raises it if it needs the figures
            premade.set_exception(exc)

    with (nullcontext(writer) if writer is not None else Writer(ws)) as w:
        if w.inline:  # the job runs in this thread: the figures first
            make()
        done = w.submit(job)
        if not premade.done():  # while the writer's thread inserts the rows (DuckDB releases the GIL)
            make()
        return done.result()


class _NeedsWarehouse(Exception):
    """The marts' station states must be read from the warehouse (two rows of a station at one time)."""


def _premade_marts(status, max_gap_s: int) -> tuple | None:
    """Return (station states, availability figures) of a feed whose station_status rows are all ``status`` (an Arrow
    table), as build_marts computes them; None when they must be read from the warehouse."""
    try:
        states = _states(None, "", "", status)
    except _NeedsWarehouse:
        return None
    return states, (_availability(states, int(max_gap_s)) if states is not None else None)


def _publish_on(con: duckdb.DuckDBPyConnection, ws: Workspace, feed_id: str, *, meta: dict, max_gap_s: int,
                append: dict | None, memory: dict[str, dict] | None, pending: dict, premade: Future | None = None) -> dict:
    """Return publish_gbfs's counts, published through ``con`` (the writer's connection, prepared by Writer; under the
    publish lock)."""
    memory = memory or {}
    batches = sorted(set(batch_files(ws, feed_id)) | set(pending))
    if not batches:
        raise FileNotFoundError(f"{feed_id}: nothing in the lake to publish; ingest snapshots first")
    counts: dict[str, int] = {}
    try:
        with transaction(con, checkpoint=True):
            held = con.execute("SELECT feed_version FROM meta.feed_versions WHERE feed_id = ?", [feed_id]).fetchall()
            incremental = append is not None and held == [(append["previous_version"],)]
            # a feed with no row yet needs no delete (every publish writes gbfs.files; its meta row alone could have been
            # removed by another kind's publish under the same id)
            present = bool(held) or con.execute("SELECT count(*) FROM (SELECT 1 FROM gbfs.files WHERE feed_id = ? LIMIT 1)",
                                                [feed_id]).fetchall()[0][0] > 0
            vehicles = (bool(lake_paths(ws, "vehicle_status", feed_id, [b for b in batches if b not in pending]))  # any batch's,
                        or any("vehicle_status" in memory[b] for b in pending))  # not only the new ones'
            # the station states of the marts are the one batch's rows when the feed is that batch, published whole
            status = (memory[batches[0]].get("station_status") if len(batches) == 1 and batches[0] in memory and not incremental
                      else False)
            if incremental:
                batches = [b for b in batches if b in set(append["batches"])]
            if append is not None:
                append["published"] = "incremental" if incremental else "whole"
            for t in (*TABLES, "files"):
                if present and not incremental:
                    con.execute(f"DELETE FROM gbfs.{t} WHERE feed_id = ?", [feed_id])
                paths = lake_paths(ws, t, feed_id, [b for b in batches if b not in memory])
                tables = [memory[b][t] for b in batches if b in memory and t in memory[b]]
                if not paths and not tables:
                    continue
                cols = ", ".join(c for c, _ in columns(t))
                extra = ", to_timestamp(snapshot_ts) AS snapshot_time" if t != "files" else ""
                counts[f"gbfs.{t}"] = _insert(con, f"INSERT INTO gbfs.{t} BY NAME SELECT ?::VARCHAR AS feed_id, {cols}{extra} FROM $from",
                                              [feed_id], paths, tables, by_name=True)
            ver = meta["feed_version"]
            for target in ("quality.notices", "quality.quarantine"):
                if incremental:  # the earlier batches' rows stay, under the new version
                    con.execute(f"UPDATE {target} SET feed_version = ? WHERE feed_id = ?", [ver, feed_id])
                elif present:
                    con.execute(f"DELETE FROM {target} WHERE feed_id = ?", [feed_id])
            for t, target, cols in (("notices", "quality.notices", "code, severity, file, line, field, value, message"),
                                    ("quarantine", "quality.quarantine", "file, line, code, reason, raw")):
                paths = lake_paths(ws, t, feed_id, [b for b in batches if b not in memory])
                tables = [memory[b][t] for b in batches if b in memory and t in memory[b]]
                if paths or tables:
                    counts[target] = _insert(con, f"INSERT INTO {target} SELECT ?, ?, {cols} FROM $from", [feed_id, ver], paths, tables,
                                             by_name=False)
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if held:
                con.execute("DELETE FROM meta.feed_versions WHERE feed_id = ?", [feed_id])
            insert_feed_version(con, feed_id=feed_id, version=ver, kind="gbfs", meta=meta, published_at=now,
                                service=(meta.get("first_snapshot"), meta.get("last_snapshot")))
            build_marts(con, feed_id, tz=meta.get("timezone") or "UTC", max_gap_s=max_gap_s,
                        since=append.get("marts_from") if incremental else None, fresh=not present, vehicles=vehicles,
                        status=status, premade=premade.result() if premade is not None and status is not False else None)
            # the commit checkpoints straight away (the readers' copy needs the rows in the file), without first writing
            # them to the WAL too
            con.execute("SET checkpoint_threshold = '0b'")
            for lake in pending.values():  # the lake holds the batches before the warehouse does
                lake.result()
    finally:  # a setting is the database's, not the connection's (threads=1 is left: only a holder of the publish
        con.execute("RESET checkpoint_threshold")  # lock opens the writer's file, so it closes with this connection)
    return counts


class Writer:
    """The warehouse's writer for a GBFS publish, prepared in a thread of its own: the publish lock, the connection to the
    writer's file, the catalog check and the settings (DuckDB releases the GIL for them, so an ingest reads and decodes
    its files meanwhile). ``submit(job)`` runs ``job(con)`` in that thread (``run`` waits for it); leaving the block
    (``close``) closes the connection and releases the lock, which makes the readers' copy, and waits for the thread;
    ``start`` after ``close`` takes the lock again. The lock's thread-local state stays in the one thread; a deferral of
    copies (warehouse.publish.deferred_snapshots) of the thread that made the Writer holds in its thread too.
    """

    def __init__(self, ws: Workspace):
        from warehouse.publish import _deferral, _holds_lock

        self.ws = ws
        self._deferral = _deferral(ws)  # the caller's block (shared: a copy made here counts for it)
        # a caller that holds the publish lock already (a writer_session) runs the jobs itself: a thread of its own
        # would wait for that lock for ever
        self._inline = _holds_lock(ws)
        self._lock = threading.Lock()  # a job is queued only to a thread that will run it or hand it its error
        self._thread: threading.Thread | None = None
        self._ended = True  # the thread takes no more jobs
        self._error: BaseException | None = None  # raised by close: the lock's release (the readers' copy) failed

    def start(self) -> "Writer":
        """Start preparing the writer, unless it is running (after ``close``, a new thread starts: the lock is taken again)."""
        with self._lock:
            self._start()
        return self

    def _start(self) -> None:
        if self._ended and not self._inline:
            self._jobs: queue.Queue = queue.Queue()
            self._ended = False
            self._thread = threading.Thread(target=self._main, name="noriba-gbfs-writer", daemon=True)
            self._thread.start()

    @property
    def inline(self) -> bool:
        """Return True if jobs run in the caller's thread (which held the publish lock when the Writer was made)."""
        return self._inline

    def __enter__(self) -> "Writer":
        return self  # started by start() or the first submit()

    def __exit__(self, exc_type, *_) -> None:
        self.close(raising=exc_type is None)  # an error on the way out does not hide the one that ended the block

    def run(self, job):
        """Return ``job(con)`` run in the writer's thread under the publish lock; raise what preparing the writer or the job raised."""
        return self.submit(job).result()

    def submit(self, job) -> Future:
        """Return the Future of ``job(con)``, run in the writer's thread under the publish lock (or of what preparing it raised)."""
        done: Future = Future()
        if self._inline:
            try:
                with writer_session(self.ws), closing(connect(self.ws)) as con:
                    _create(con, writer_path(self.ws))
                    done.set_result(job(con))
            except BaseException as exc:  # noqa: BLE001 - raised by result()
                done.set_exception(exc)
            return done
        with self._lock:
            self._start()
            self._jobs.put((job, done))
        return done

    def close(self, *, raising: bool = True) -> None:
        """Close the connection and release the publish lock (replacing the readers' copy after a commit), and wait for it.
        If that failed, then raise its error (unless ``raising`` is False)."""
        with self._lock:
            if not self._ended:
                self._ended = True
                self._jobs.put(None)
        if self._thread is not None:
            self._thread.join()
        err, self._error = self._error, None
        if err is not None and raising:
            raise err

    def _main(self) -> None:
        from warehouse.publish import _deferred

        if self._deferral is not None:
            _deferred.__dict__.setdefault("blocks", {})[str(writer_path(self.ws))] = self._deferral
        jobs = self._jobs
        ready = False
        try:
            # closed before the lock goes (readers' copy); row groups of ROW_GROUP_SIZE rows (see there)
            with writer_session(self.ws, row_group_size=ROW_GROUP_SIZE), closing(connect(self.ws)) as con:
                _create(con, writer_path(self.ws))
                # one thread: this work is small, and starting and waking DuckDB's other threads costs more CPU than it saves
                con.execute("SET threads = 1")
                con.execute("SET preserve_insertion_order = false")
                ready = True
                while (item := jobs.get()) is not None:
                    job, done = item
                    try:
                        done.set_result(job(con))
                    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                        done.set_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - taking the lock, preparing or releasing it (the copy) failed
            with self._lock:
                self._ended = True
                while True:  # every job queued gets the error (none is queued once _ended is set)
                    try:
                        item = jobs.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[1].set_exception(exc)
            if ready:  # the jobs ran: the release failed, which close raises
                self._error = exc


#: A station's state per snapshot time: its rows as they are when no two rows share a station and a snapshot time (the
#: common case, checked in numpy), else one per (station, time), the later file name winning per column (arg_max skips
#: NULLs), as the marts always read them.
_STATE_ROWS = """
SELECT station_id, snapshot_ts AS t, num_bikes_available AS bikes, num_docks_available AS docks, num_bikes_disabled AS disabled
FROM gbfs.station_status WHERE feed_id = $feed$since
"""
_STATE_GROUPED = """
SELECT station_id, snapshot_ts AS t, arg_max(num_bikes_available, file) AS bikes, arg_max(num_docks_available, file) AS docks,
       arg_max(num_bikes_disabled, file) AS disabled
FROM gbfs.station_status WHERE feed_id = $feed$since GROUP BY station_id, snapshot_ts
"""

#: The station availability mart: each state's interval until the station's next snapshot (at most the gap), cut at UTC
#: hour boundaries and aggregated per station and hour in numpy (_availability); here labelled in local time (once per
#: row of the mart) and joined to the stations' names and zones.
_AVAILABILITY = """
INSERT INTO marts.gbfs_station_availability_hour
WITH info AS (
  SELECT station_id, arg_max(name, snapshot_ts) AS name, arg_max(zone_layer, snapshot_ts) AS zone_layer,
         arg_max(zone_id, snapshot_ts) AS zone_id FROM gbfs.station_information WHERE feed_id = $feed GROUP BY station_id
)
SELECT $feed, a.station_id, i.name, i.zone_layer, i.zone_id, timezone($tz, to_timestamp(h * 3600)) AS hour_local,
       CAST(timezone($tz, to_timestamp(h * 3600)) AS DATE), hour(timezone($tz, to_timestamp(h * 3600))),
       snapshots, minutes_observed, avg_bikes, min_bikes, max_bikes, avg_docks, minutes_empty, minutes_full
FROM _gbfs_availability a LEFT JOIN info i USING (station_id)
$keep
"""

#: Free-floating vehicles available per zone, summed per snapshot, averaged over the hour's snapshots of the feed (a zone
#: with no vehicle in a snapshot counts 0 there). Run only for a feed with vehicle rows.
_FREE_FLOATING = """
INSERT INTO marts.gbfs_vehicles_zone_hour
WITH snaps AS (
  SELECT snapshot_ts // 3600 AS h, count(DISTINCT snapshot_ts) AS n FROM gbfs.vehicle_status WHERE feed_id = $feed$since GROUP BY 1
), per_snap AS (
  SELECT snapshot_ts, zone_layer, zone_id, vehicle_type_id,
         count(*) FILTER (WHERE NOT coalesce(is_reserved, false) AND NOT coalesce(is_disabled, false)) AS available,
         count(*) FILTER (WHERE coalesce(is_reserved, false)) AS reserved, count(*) FILTER (WHERE coalesce(is_disabled, false)) AS disabled
  FROM gbfs.vehicle_status WHERE feed_id = $feed$since AND lat IS NOT NULL AND station_id IS NULL GROUP BY ALL
)
SELECT $feed, 'free_floating', zone_layer, zone_id, vehicle_type_id, timezone($tz, to_timestamp(h * 3600)) AS hour_local,
       CAST(timezone($tz, to_timestamp(h * 3600)) AS DATE), hour(timezone($tz, to_timestamp(h * 3600))),
       n, available, max_available, reserved, disabled
FROM (
  SELECT zone_layer, zone_id, vehicle_type_id, h, any_value(n) AS n, sum(available) / any_value(n) AS available,
         max(available) AS max_available, sum(reserved) / any_value(n) AS reserved, sum(disabled) / any_value(n) AS disabled
  FROM (SELECT p.*, p.snapshot_ts // 3600 AS h FROM per_snap p) x JOIN snaps USING (h)
  GROUP BY zone_layer, zone_id, vehicle_type_id, h
)
$keep
"""

#: Bikes docked at the zone's stations, available (and disabled) summed per snapshot, averaged over the hour's snapshots
#: (_docked, numpy), labelled here.
_DOCKED = """
INSERT INTO marts.gbfs_vehicles_zone_hour
SELECT $feed, 'docked', zone_layer, zone_id, NULL, timezone($tz, to_timestamp(h * 3600)) AS hour_local,
       CAST(timezone($tz, to_timestamp(h * 3600)) AS DATE), hour(timezone($tz, to_timestamp(h * 3600))),
       n, available, max_available, reserved, disabled
FROM _gbfs_docked
$keep
"""

#: The stations' zones (the latest station_information row of each), for the docked bikes.
_ZONES = """
SELECT station_id, arg_max(zone_layer, snapshot_ts), arg_max(zone_id, snapshot_ts) FROM gbfs.station_information
WHERE feed_id = $feed GROUP BY station_id
"""


#: Hours before the first one that can change which are computed again too (and left out), so that a row whose local label
#: a fall-back repeats is rebuilt whole.
_MARGIN_HOURS = 2


def _tdiv(a, b: int):
    """Return a // b truncated toward zero, as DuckDB's ``//`` on integers (numpy's floors)."""
    import numpy as np

    q = a // b
    return q + ((a < 0) & (q * b != a)).astype(q.dtype)


def _states(con: duckdb.DuckDBPyConnection, feed_id: str, since_sql: str, status=False):
    """Return the station states (station ids, their codes, t, bikes, docks and disabled with null masks), sorted by station
    and time; None without any. ``status``: the feed's station_status rows as an Arrow table (None: no row), if at hand."""
    import numpy as np
    import pyarrow.compute as pc

    def fetch(sql):
        tbl = con.sql(sql.replace("$since", since_sql).replace("$feed", "?"), params=[feed_id]).to_arrow_table() if isinstance(sql, str) else sql
        if tbl.num_rows == 0:
            return None
        enc = pc.dictionary_encode(tbl.column("station_id")).combine_chunks()
        codes = enc.indices.to_numpy().astype(np.int64)
        t = tbl.column("t").to_numpy()
        order = np.lexsort((t, codes))
        return tbl, enc.dictionary, codes[order], t[order], order

    if status is False:
        got = fetch(_STATE_ROWS)
    else:
        got = fetch(status.select(["station_id", "snapshot_ts", "num_bikes_available", "num_docks_available", "num_bikes_disabled"])
                    .rename_columns(["station_id", "t", "bikes", "docks", "disabled"])) if status is not None else None
    if got is None:
        return None
    tbl, names, codes, t, order = got
    if ((codes[1:] == codes[:-1]) & (t[1:] == t[:-1])).any():  # two rows of a station at one time: DuckDB picks per column
        if con is None:
            raise _NeedsWarehouse
        tbl, names, codes, t, order = fetch(_STATE_GROUPED)

    def col(name: str):
        c = tbl.column(name).combine_chunks()
        valid = c.is_valid().to_numpy(zero_copy_only=False)[order]
        return c.fill_null(0).to_numpy().astype(np.int64)[order], valid

    bikes, _ = col("bikes")
    docks, has_docks = col("docks")
    disabled, _ = col("disabled")
    return names, codes, t, bikes, docks, has_docks, disabled


def _availability(states, gap: int):
    """Return the availability mart's figures per station and UTC hour h (an Arrow table), from the sorted states."""
    import numpy as np
    import pyarrow as pa

    names, codes, t, bikes, docks, has_docks, _ = states
    nxt = np.empty_like(t)
    nxt[:-1] = t[1:]
    has_next = np.zeros(len(t), bool)
    has_next[:-1] = codes[1:] == codes[:-1]
    t_end = np.minimum(nxt, t + gap)
    idx = np.flatnonzero(has_next & (t_end > t))  # the last snapshot of a station starts no interval
    ts, te = t[idx], t_end[idx]
    h0 = _tdiv(ts, 3600)
    n = _tdiv(te - 1, 3600) - h0 + 1
    rep = np.repeat(np.arange(len(idx)), n)
    h = h0[rep] + (np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n))
    ts, te, src = ts[rep], te[rep], idx[rep]
    secs = np.minimum(te, (h + 1) * 3600) - np.maximum(ts, h * 3600)
    code, b, d, dv = codes[src], bikes[src], docks[src], has_docks[src]
    if rep.size == 0:
        starts = np.zeros(0, np.int64)
    else:  # pieces come sorted by station, then hour
        starts = np.flatnonzero(np.concatenate(([True], (code[1:] != code[:-1]) | (h[1:] != h[:-1]))))
    add = lambda x: np.add.reduceat(x, starts) if starts.size else np.zeros(0, x.dtype)  # noqa: E731
    total = add(secs)
    dsecs = add(np.where(dv, secs, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        avg_docks = add(np.where(dv, d * secs, 0)) / dsecs
    return pa.table({
        "station_id": names.take(pa.array(code[starts])), "h": h[starts],
        "snapshots": add((ts >= h * 3600).astype(np.int64)), "minutes_observed": total / 60.0,
        "avg_bikes": add(b * secs) / total,
        "min_bikes": np.minimum.reduceat(b, starts) if starts.size else b[:0],
        "max_bikes": np.maximum.reduceat(b, starts) if starts.size else b[:0],
        "avg_docks": pa.array(avg_docks, mask=dsecs == 0),
        "minutes_empty": add(np.where(b == 0, secs, 0)) / 60.0,
        "minutes_full": add(np.where(dv & (d == 0), secs, 0)) / 60.0})


def _docked(con: duckdb.DuckDBPyConnection, feed_id: str, states):
    """Return the docked rows of the vehicles mart per zone and UTC hour h (an Arrow table), from the sorted states."""
    import numpy as np
    import pyarrow as pa

    names, codes, t, bikes, _, _, disabled = states
    zones_of = {sid: (layer, zone) for sid, layer, zone in con.sql(_ZONES.replace("$feed", "?"), params=[feed_id]).fetchall()}
    keys: dict[tuple, int] = {}
    zone_of_code = np.array([keys.setdefault(zones_of.get(sid, (None, None)), len(keys)) for sid in names.to_pylist()], np.int64)
    z = zone_of_code[codes]
    order = np.lexsort((z, t))  # per snapshot time, then zone
    t, z, bikes, disabled = t[order], z[order], bikes[order], disabled[order]
    first = np.flatnonzero(np.concatenate(([True], (t[1:] != t[:-1]) | (z[1:] != z[:-1]))))
    st, sz = t[first], z[first]
    avail, dis = np.add.reduceat(bikes, first), np.add.reduceat(disabled, first)  # a NULL disabled counts 0 (coalesce)
    hs = _tdiv(st, 3600)
    snap_first = np.flatnonzero(np.concatenate(([True], st[1:] != st[:-1])))
    hours, n_per_hour = np.unique(hs[snap_first], return_counts=True)  # distinct snapshot times per hour, all zones
    n = n_per_hour[np.searchsorted(hours, hs)]
    order = np.lexsort((hs, sz))  # per zone, then hour
    sz, hs, avail, dis, n = sz[order], hs[order], avail[order], dis[order], n[order]
    g = np.flatnonzero(np.concatenate(([True], (sz[1:] != sz[:-1]) | (hs[1:] != hs[:-1]))))
    layer = [None] * len(keys)
    zone = [None] * len(keys)
    for (lay, zid), k in keys.items():
        layer[k], zone[k] = lay, zid
    nf = n[g].astype(np.float64)
    return pa.table({"zone_layer": pa.array(layer, pa.string()).take(pa.array(sz[g])),
                     "zone_id": pa.array(zone, pa.string()).take(pa.array(sz[g])), "h": hs[g], "n": n[g],
                     "available": np.add.reduceat(avail, g) / nf, "max_available": np.maximum.reduceat(avail, g),
                     "reserved": np.zeros(len(g)) / nf, "disabled": np.add.reduceat(dis, g) / nf})


def build_marts(con: duckdb.DuckDBPyConnection, feed_id: str, *, tz: str, max_gap_s: int, since: int | None = None,
                fresh: bool = False, vehicles: bool = True, status=False, premade: tuple | None = None) -> None:
    """Rebuild the feed's rows of the two GBFS marts: all of them, or (``since``, POSIX seconds of the earliest new
    snapshot) those of the hours a snapshot from then on can change.

    A state lasts at most ``max_gap_s``, so only hours from ``h0 = (since - max_gap_s) // 3600`` can change. Mart rows are
    labelled in local time, which never goes back by more than the hour a fall-back repeats: the rows labelled from h0's
    label on are deleted, and made again from the states of the hours from h0 - 2 on (each such hour is then whole; the
    rows labelled before h0's label are not kept from that pass). ``fresh``: the feed has no mart row yet. ``vehicles``
    False: the feed has no vehicle_status row (its free-floating rows are not computed). ``status`` (an Arrow table, or
    None for none): every station_status row of the feed, as published, read from it instead of the warehouse.
    ``premade`` (_premade_marts of ``status``): its states and availability figures, computed already.
    """
    gap = int(max_gap_s)
    if since is None:
        t0, keep = None, ""
        for m in () if fresh else ("gbfs_station_availability_hour", "gbfs_vehicles_zone_hour"):
            con.execute(f"DELETE FROM marts.{m} WHERE feed_id = ?", [feed_id])
    else:
        h0 = (int(since) - gap) // 3600
        t0 = (h0 - _MARGIN_HOURS) * 3600 - gap
        label = f"timezone({lit(tz)}, to_timestamp({h0 * 3600}))"
        keep = f"WHERE hour_local >= {label}"
        for m in ("gbfs_station_availability_hour", "gbfs_vehicles_zone_hour"):
            con.execute(f"DELETE FROM marts.{m} WHERE feed_id = ? AND hour_local >= {label}", [feed_id])
    since_sql = "" if t0 is None else f" AND snapshot_ts >= {t0}"
    states, availability = premade if premade is not None and since is None else (_states(con, feed_id, since_sql, status), None)
    params = {"feed": feed_id, "tz": tz}
    if states is not None:
        for name, table, sql in (("_gbfs_availability", availability if availability is not None else _availability(states, gap),
                                  _AVAILABILITY),
                                 ("_gbfs_docked", _docked(con, feed_id, states), _DOCKED)):
            if table.num_rows:
                con.register(name, table)
                try:
                    con.execute(sql.replace("$keep", keep), params)
                finally:
                    con.unregister(name)
    if vehicles:
        con.execute(_FREE_FLOATING.replace("$since", since_sql).replace("$keep", keep), params)


def export_gbfs(ws: Workspace, feed_id: str) -> dict:
    """Return the paths of the feed's exports (the two marts as CSV, and about.json). No vehicle id is in any of them."""
    out_dir = ws.exports / "gbfs" / feed_id
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(ws, read_only=True)
    files = {}
    try:
        for name, sql in (("station_availability_hour", "SELECT * EXCLUDE (feed_id) FROM marts.gbfs_station_availability_hour "
                                                         "WHERE feed_id = ? ORDER BY station_id, hour_local"),
                          ("vehicles_zone_hour", "SELECT * EXCLUDE (feed_id) FROM marts.gbfs_vehicles_zone_hour "
                                                  "WHERE feed_id = ? ORDER BY source, zone_id, vehicle_type_id, hour_local")):
            rel = con.execute(sql, [feed_id])
            cols = [d[0] for d in rel.description]
            rows = rel.fetchall()
            path = out_dir / f"{name}.csv"
            with open(path, "w", encoding="utf-8-sig", newline="") as fh:  # BOM: opened in Excel
                w = csv.writer(fh)
                w.writerow(cols)
                w.writerows(rows)
            files[name] = str(path)
    finally:
        con.close()
    about = {"feed_id": feed_id, "note": "aggregates of GBFS snapshots; vehicle ids are never stored or exported"}
    (out_dir / "about.json").write_text(json.dumps(about, ensure_ascii=False, indent=2), encoding="utf-8")
    files["about"] = str(out_dir / "about.json")
    return files


def published_counts(ws: Workspace, feed_id: str) -> dict:
    """Return {table: rows} of the feed in the warehouse (for status and tests)."""
    con = connect(ws, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM gbfs.{t} WHERE feed_id = ?", [feed_id]).fetchall()[0][0] for t in TABLES}
    finally:
        con.close()


