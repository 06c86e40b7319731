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
from datetime import datetime, timezone

import duckdb

from warehouse.workspace import Workspace
from transforms.gbfs.parse import SCHEMAS, TABLES
from transforms.sql import lit
from warehouse.publish import connect, ensure_schema, publish_lock

_DUCK = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
#: Lake tables of a feed: the row tables, then files, notices, quarantine; gbfs_batches last (it marks a batch complete).
LAKE_TABLES = (*TABLES, "files", "notices", "quarantine")
ZONE_COLUMNS = (("zone_layer", "VARCHAR"), ("zone_id", "VARCHAR"))
ZONED = ("station_information", "vehicle_status")


def columns(table: str) -> list[tuple[str, str]]:
    """Return (name, DuckDB type) of a published gbfs table, after feed_id."""
    cols = [(f.name, _DUCK[str(f.type)]) for f in SCHEMAS[table]]
    return cols + (list(ZONE_COLUMNS) if table in ZONED else [])


def batch_files(ws: Workspace, feed_id: str) -> list[str]:
    """Return the ids of the feed's complete batches in the lake (those listed in gbfs_batches), oldest first."""
    folder = ws.lake / "gbfs_batches" / f"feed_id={feed_id}"
    return sorted(p.stem.removeprefix("batch=") for p in folder.glob("batch=*.parquet"))


def lake_paths(ws: Workspace, table: str, feed_id: str, batches: list[str]) -> list[str]:
    return [str(p) for b in batches if (p := ws.lake / f"gbfs_{table}" / f"feed_id={feed_id}" / f"batch={b}.parquet").exists()]


_GBFS_TABLES = [("gbfs", t) for t in (*TABLES, "files")] + [("marts", "gbfs_station_availability_hour"),
                                                             ("marts", "gbfs_vehicles_zone_hour")]


def _create(con: duckdb.DuckDBPyConnection) -> None:
    """Create the warehouse's tables and the gbfs and marts tables when missing (one catalog query when they all exist)."""
    ensure_schema(con)
    have = set(con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('gbfs', 'marts') "
                           "AND database_name = current_database()").fetchall())
    if have >= set(_GBFS_TABLES):
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


def publish_gbfs(ws: Workspace, feed_id: str, *, meta: dict, max_gap_s: int = 300, append: dict | None = None) -> dict:
    """Return row counts published for a GBFS feed: all its lake batches replace its warehouse rows and marts in one transaction.

    ``append`` ({"previous_version", "batches", "marts_from"}): if the warehouse holds the feed's ``previous_version``, only
    ``batches`` (the new ones) are inserted, and the marts' rows are rebuilt from the hour of ``marts_from`` (POSIX
    seconds; None: all of them); otherwise everything is replaced as without it. Counts are of the rows inserted.
    """
    batches = batch_files(ws, feed_id)
    if not batches:
        raise FileNotFoundError(f"{feed_id}: nothing in the lake to publish; ingest snapshots first")
    counts: dict[str, int] = {}
    with publish_lock(ws):
        con = connect(ws)
        try:
            _create(con)
            con.execute("SET preserve_insertion_order = false")
            con.execute("BEGIN TRANSACTION")
            held = con.execute("SELECT feed_version FROM meta.feed_versions WHERE feed_id = ?", [feed_id]).fetchall()
            incremental = append is not None and held == [(append["previous_version"],)]
            # a feed with no row yet needs no delete (every publish writes gbfs.files; its meta row alone could have been
            # removed by another kind's publish under the same id)
            present = bool(held) or con.execute("SELECT count(*) FROM (SELECT 1 FROM gbfs.files WHERE feed_id = ? LIMIT 1)",
                                                [feed_id]).fetchall()[0][0] > 0
            if incremental:
                batches = [b for b in batches if b in set(append["batches"])]
            if append is not None:
                append["published"] = "incremental" if incremental else "whole"
            for t in (*TABLES, "files"):
                if present and not incremental:
                    con.execute(f"DELETE FROM gbfs.{t} WHERE feed_id = ?", [feed_id])
                paths = lake_paths(ws, t, feed_id, batches)
                if not paths:
                    continue
                cols = ", ".join(c for c, _ in columns(t))
                extra = ", to_timestamp(snapshot_ts) AS snapshot_time" if t != "files" else ""
                counts[f"gbfs.{t}"] = con.execute(
                    f"INSERT INTO gbfs.{t} BY NAME SELECT ?::VARCHAR AS feed_id, {cols}{extra} "
                    f"FROM read_parquet([{', '.join(lit(p) for p in paths)}], union_by_name = true, hive_partitioning = false)",
                    [feed_id]).fetchall()[0][0]
            ver = meta["feed_version"]
            for target in ("quality.notices", "quality.quarantine"):
                if incremental:  # the earlier batches' rows stay, under the new version
                    con.execute(f"UPDATE {target} SET feed_version = ? WHERE feed_id = ?", [ver, feed_id])
                elif present:
                    con.execute(f"DELETE FROM {target} WHERE feed_id = ?", [feed_id])
            for t, target, cols in (("notices", "quality.notices", "code, severity, file, line, field, value, message"),
                                    ("quarantine", "quality.quarantine", "file, line, code, reason, raw")):
                paths = lake_paths(ws, t, feed_id, batches)
                if paths:
                    counts[target] = con.execute(
                        f"INSERT INTO {target} SELECT ?, ?, {cols} FROM read_parquet([{', '.join(lit(p) for p in paths)}], "
                        "hive_partitioning = false)", [feed_id, ver]).fetchall()[0][0]
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            if held:
                con.execute("DELETE FROM meta.feed_versions WHERE feed_id = ?", [feed_id])
            con.execute(
                "INSERT INTO meta.feed_versions (feed_id, feed_version, content_sha256, source_sha256, source, fetched_at, ingested_at, "
                "kind, profile, files, rows_in, rows_accepted, rows_quarantined, errors, warnings, infos, notice_codes, spec, "
                "published_at, service_start, service_end) VALUES (?, ?, ?, ?, ?, ?, ?, 'gbfs', 'gbfs', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [feed_id, ver, ver, meta["source_sha256"], meta["source"], meta["fetched_at"], meta["ingested_at"], meta["files"],
                 meta["rows_in"], meta["rows_accepted"], meta["rows_quarantined"], meta["errors"], meta["warnings"], meta["infos"],
                 meta["notice_codes"], meta["spec"], now, meta.get("first_snapshot"), meta.get("last_snapshot")])
            build_marts(con, feed_id, tz=meta.get("timezone") or "UTC", max_gap_s=max_gap_s,
                        since=append.get("marts_from") if incremental else None, fresh=not present)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            con.close()
    return counts


#: A station's state per snapshot time (two files with the same last_updated: the later file name wins, per column), made
#: once for both marts (a temporary table: in memory, never written to the warehouse file).
_STATE = """
CREATE OR REPLACE TEMP TABLE _gbfs_state AS
SELECT station_id, snapshot_ts AS t, arg_max(num_bikes_available, file) AS bikes, arg_max(num_docks_available, file) AS docks,
       arg_max(num_bikes_disabled, file) AS disabled
FROM gbfs.station_status WHERE feed_id = $feed$since GROUP BY station_id, snapshot_ts
"""

#: Each state's interval until the station's next snapshot (at most the gap), cut at UTC hour boundaries.
_AVAILABILITY = """
INSERT INTO marts.gbfs_station_availability_hour
WITH iv0 AS (
  SELECT station_id, t, bikes, docks, lead(t) OVER (PARTITION BY station_id ORDER BY t) AS nxt FROM _gbfs_state
), iv AS (  -- the last snapshot of a station starts no interval (least() would skip the NULL)
  SELECT station_id, t, bikes, docks, CASE WHEN nxt IS NOT NULL THEN least(nxt, t + $gap) END AS t_end FROM iv0
), pieces AS (
  SELECT station_id, t, bikes, docks, t_end, unnest(range(t // 3600, (t_end - 1) // 3600 + 1)) AS h FROM iv WHERE t_end > t
), cut AS (
  SELECT station_id, h, bikes, docks, t >= h * 3600 AS starts_here,
         least(t_end, (h + 1) * 3600) - greatest(t, h * 3600) AS secs FROM pieces
), info AS (
  SELECT station_id, arg_max(name, snapshot_ts) AS name, arg_max(zone_layer, snapshot_ts) AS zone_layer,
         arg_max(zone_id, snapshot_ts) AS zone_id FROM gbfs.station_information WHERE feed_id = $feed GROUP BY station_id
)
SELECT $feed, a.station_id, i.name, i.zone_layer, i.zone_id, timezone($tz, to_timestamp(h * 3600)) AS hour_local,
       CAST(timezone($tz, to_timestamp(h * 3600)) AS DATE), hour(timezone($tz, to_timestamp(h * 3600))),
       snapshots, minutes_observed, avg_bikes, min_bikes, max_bikes, avg_docks, minutes_empty, minutes_full
FROM (  -- aggregated per station and hour first: the local-time labels are computed once per row of the mart
  SELECT station_id, h, count(*) FILTER (WHERE starts_here) AS snapshots, sum(secs) / 60.0 AS minutes_observed,
         sum(bikes * secs) / sum(secs) AS avg_bikes, min(bikes) AS min_bikes, max(bikes) AS max_bikes,
         sum(docks * secs) FILTER (WHERE docks IS NOT NULL) / nullif(sum(secs) FILTER (WHERE docks IS NOT NULL), 0) AS avg_docks,
         coalesce(sum(secs) FILTER (WHERE bikes = 0), 0) / 60.0 AS minutes_empty,
         coalesce(sum(secs) FILTER (WHERE docks = 0), 0) / 60.0 AS minutes_full
  FROM cut GROUP BY station_id, h
) a LEFT JOIN info i USING (station_id)
$keep
"""

#: Vehicles available per zone, summed per snapshot, averaged over the hour's snapshots of the feed (a zone with no
#: vehicle in a snapshot counts 0 there); docked bikes are those of the stations in the zone.
_VEHICLES = """
INSERT INTO marts.gbfs_vehicles_zone_hour
WITH snaps AS (
  SELECT snapshot_ts // 3600 AS h, count(DISTINCT snapshot_ts) AS n FROM gbfs.vehicle_status WHERE feed_id = $feed$since GROUP BY 1
), per_snap AS (
  SELECT snapshot_ts, zone_layer, zone_id, vehicle_type_id,
         count(*) FILTER (WHERE NOT coalesce(is_reserved, false) AND NOT coalesce(is_disabled, false)) AS available,
         count(*) FILTER (WHERE coalesce(is_reserved, false)) AS reserved, count(*) FILTER (WHERE coalesce(is_disabled, false)) AS disabled
  FROM gbfs.vehicle_status WHERE feed_id = $feed$since AND lat IS NOT NULL AND station_id IS NULL GROUP BY ALL
), info AS (
  SELECT station_id, arg_max(zone_layer, snapshot_ts) AS zone_layer, arg_max(zone_id, snapshot_ts) AS zone_id
  FROM gbfs.station_information WHERE feed_id = $feed GROUP BY station_id
), sstat AS (
  SELECT t AS snapshot_ts, station_id, bikes, disabled FROM _gbfs_state
), dsnaps AS (
  SELECT snapshot_ts // 3600 AS h, count(DISTINCT snapshot_ts) AS n FROM sstat GROUP BY 1
), docked AS (
  SELECT snapshot_ts, i.zone_layer, i.zone_id, NULL::VARCHAR AS vehicle_type_id, sum(bikes) AS available, 0 AS reserved,
         coalesce(sum(disabled), 0) AS disabled
  FROM sstat s LEFT JOIN info i USING (station_id) GROUP BY ALL
)
SELECT $feed, src, zone_layer, zone_id, vehicle_type_id, timezone($tz, to_timestamp(h * 3600)) AS hour_local,
       CAST(timezone($tz, to_timestamp(h * 3600)) AS DATE), hour(timezone($tz, to_timestamp(h * 3600))),
       n, available, max_available, reserved, disabled
FROM (
  SELECT src, zone_layer, zone_id, vehicle_type_id, h, any_value(n) AS n, sum(available) / any_value(n) AS available,
         max(available) AS max_available, sum(reserved) / any_value(n) AS reserved, sum(disabled) / any_value(n) AS disabled
  FROM (SELECT 'free_floating' AS src, p.*, p.snapshot_ts // 3600 AS h FROM per_snap p
        UNION ALL SELECT 'docked', d.*, d.snapshot_ts // 3600 FROM docked d) x
  JOIN (SELECT 'free_floating' AS src, * FROM snaps UNION ALL SELECT 'docked', * FROM dsnaps) n USING (src, h)
  GROUP BY src, zone_layer, zone_id, vehicle_type_id, h
)
$keep
"""


#: Hours before the first one that can change which are computed again too (and left out), so that a row whose local label
#: a fall-back repeats is rebuilt whole.
_MARGIN_HOURS = 2


def build_marts(con: duckdb.DuckDBPyConnection, feed_id: str, *, tz: str, max_gap_s: int, since: int | None = None,
                fresh: bool = False) -> None:
    """Rebuild the feed's rows of the two GBFS marts: all of them, or (``since``, POSIX seconds of the earliest new
    snapshot) those of the hours a snapshot from then on can change.

    A state lasts at most ``max_gap_s``, so only hours from ``h0 = (since - max_gap_s) // 3600`` can change. Mart rows are
    labelled in local time, which never goes back by more than the hour a fall-back repeats: the rows labelled from h0's
    label on are deleted, and made again from the states of the hours from h0 - 2 on (each such hour is then whole; the
    rows labelled before h0's label are not kept from that pass). ``fresh``: the feed has no mart row yet.
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
    con.execute(_STATE.replace("$since", since_sql), {"feed": feed_id})
    con.execute(_AVAILABILITY.replace("$keep", keep), {"feed": feed_id, "gap": gap, "tz": tz})
    con.execute(_VEHICLES.replace("$since", since_sql).replace("$keep", keep), {"feed": feed_id, "tz": tz})
    con.execute("DROP TABLE _gbfs_state")


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


