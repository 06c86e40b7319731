"""Publish trips into DuckDB (schema ``trips``), build the marts (schema ``marts``), export privacy-safe aggregates.

Publishing a source replaces its rows in one transaction under the same file lock as GTFS
publishing. Quarantined rows go to the shared ``quality.quarantine`` table (feed_id = source id)
with their raw row as JSON and the reason; what reading found goes to ``quality.notices``; one
row per version to ``meta.feed_versions`` (kind 'trips') so ``noriba status`` lists trips too.

SQL models, in the shape source → renamed → final: ``trips.fct_trips`` is a table in the DuckDB
file; publishing a version replaces the source's rows with its lake Parquet
(``lake/trips_fct_trips/source_id=…/month=…``, the source of truth) in the publish transaction,
so the DuckDB file stays queryable when the workspace is moved or opened from elsewhere (an older
view over absolute lake paths is replaced by the table at the next publish). The marts are
tables built at publish: ``marts.trips_by_zone_hour``, ``marts.trips_od_matrix``, ``marts.transit_gap_trips``,
``marts.transit_gap_by_municipality``, ``marts.ondemand_bookings_zone_hour`` and ``marts.ondemand_bookings_unserved``.

On-demand services (feed kind ``ondemand``, transforms/ondemand/) publish their zones and day-by-day
windows to schema ``ondemand``; a trip such a service carries is not a transit gap, and trips of
mode ``on_demand`` are matched to the service that should carry them.

Privacy: trip rows are personal data. Exports aggregate to zones × time bins and drop every cell
with fewer than k trips (the spec's privacy.k, default 10); points and exact timestamps are only
exported when the spec says ``privacy: {allow_points: true, allow_exact_times: true}``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from warehouse.versions import insert_feed_version
from warehouse.workspace import Workspace
from transforms.sql import lit
from transforms.trips.spec import TripOptions, load_schema_fields
from warehouse.publish import connect, ensure_schema, publish_lock
from warehouse.txn import transaction

_TYPES = {"text": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "timestamp": "TIMESTAMP", "list": "VARCHAR[]"}
ZONE_COLUMNS = [("zone_layer", "VARCHAR"), ("role", "VARCHAR"), ("zone_id", "VARCHAR"), ("zone_name", "VARCHAR"),
                ("zone_group", "VARCHAR"), ("polygons", "BIGINT"), ("geometry_wkt", "VARCHAR"), ("point_lat", "DOUBLE"),
                ("point_lon", "DOUBLE")]
#: Day types of the demand mart: Sunday and public holidays are one type, as Japanese timetables count them.
DAY_TYPES = ("weekday", "saturday", "sunday_holiday")


def fct_columns() -> list[tuple[str, str]]:
    return [(f["name"], _TYPES[f["type"]]) for f in load_schema_fields()]


def ensure_trips_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schemas trips / marts and their tables when missing (shared schemas through warehouse.publish)."""
    ensure_schema(con)
    for s in ("trips", "marts"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    con.execute(f"CREATE TABLE IF NOT EXISTS trips.zones ({', '.join(f'{c} {t}' for c, t in ZONE_COLUMNS)})")
    con.execute("CREATE TABLE IF NOT EXISTS trips.source_files (source_id VARCHAR, feed_version VARCHAR, file VARCHAR, "
                "format VARCHAR, encoding VARCHAR, rows_in BIGINT, accepted BIGINT, quarantined BIGINT)")
    # rows that are not trips (trips.exclude): rows_in = accepted + quarantined + excluded
    con.execute("ALTER TABLE trips.source_files ADD COLUMN IF NOT EXISTS excluded BIGINT DEFAULT 0")
    con.execute("CREATE TABLE IF NOT EXISTS quality.trip_rule_counts (source_id VARCHAR, feed_version VARCHAR, file VARCHAR, "
                "code VARCHAR, severity VARCHAR, rows BIGINT)")
    con.execute("CREATE TABLE IF NOT EXISTS trips.sources (source_id VARCHAR, feed_version VARCHAR, spec VARCHAR, "
                "published_at VARCHAR)")


def ensure_fct_table(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """Create the table trips.fct_trips when missing. If it is still the old view over the lake, replace it by a table
    holding the published versions' rows (read from the lake once), so the DuckDB file no longer depends on where the
    lake is."""
    have = con.sql("SELECT table_type FROM information_schema.tables WHERE table_schema = 'trips' AND table_name = 'fct_trips'").fetchall()
    if have and have[0][0] != "VIEW":
        # columns the canonical schema gained since the table was made (trip_count, addresses): added, old rows count 1 trip each
        for c, t in fct_columns():
            default = " DEFAULT 1" if c == "trip_count" else ""
            con.execute(f"ALTER TABLE trips.fct_trips ADD COLUMN IF NOT EXISTS {c} {t}{default}")
        return
    if have:
        con.execute("DROP VIEW trips.fct_trips")
    con.execute(f"CREATE TABLE trips.fct_trips ({', '.join(f'{c} {t}' for c, t in fct_columns())})")
    for sid, ver in con.sql("SELECT source_id, feed_version FROM trips.sources").fetchall():
        _insert_fct(con, ws, sid, ver)


def _insert_fct(con: duckdb.DuckDBPyConnection, ws: Workspace, source_id: str, ver: str) -> None:
    files = sorted(str(p) for p in _lake(ws, "trips_fct_trips", source_id).glob("month=*/*.parquet"))
    if not files:
        return
    have = {r[0] for r in con.execute(f"SELECT name FROM parquet_schema({lit(files[0])})").fetchall()}

    def column(c: str, t: str) -> str:
        if c not in have:  # written before the canonical schema had it: a trip record counts one trip
            return f"{'1' if c == 'trip_count' else 'NULL'}::{t} AS {c}"
        return f"CAST({c} AS {t}) AS {c}" if t != "VARCHAR[]" else c

    cols = ", ".join(column(c, t) for c, t in fct_columns())
    con.execute(f"INSERT INTO trips.fct_trips BY NAME SELECT {cols} FROM read_parquet([{', '.join(lit(f) for f in files)}], "
                "hive_partitioning=false, union_by_name=true) WHERE source_id = ? AND feed_version = ?", [source_id, ver])


def published_version(ws: Workspace, source_id: str) -> str | None:
    """Return the version of the source in the warehouse, or None."""
    if not ws.warehouse.exists():
        return None
    con = connect(ws, read_only=True)
    try:
        have = con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'trips' AND table_name = 'sources'").fetchall()[0][0]
        if not have:
            return None
        rows = con.execute("SELECT feed_version FROM trips.sources WHERE source_id = ?", [source_id]).fetchall()
        return rows[0][0] if rows else None
    finally:
        con.close()


#: The lake tables of a trips source (lake/<table>/source_id=<id>/), written by noriba/trips_pipeline.py.
TRIPS_LAKE_TABLES = ("trips_fct_trips", "trips_files", "trips_notices", "trips_quarantine", "trips_rule_counts", "trips_zones",
                     "trips_meta")


def _lake(ws: Workspace, table: str, source_id: str) -> Path:
    return ws.lake / table / f"source_id={source_id}"


def publish_zones(ws: Workspace, layer) -> dict:
    """Return the number of zones of one layer and whether they were published (its rows replaced in one transaction).

    If the warehouse already holds exactly these rows and notices for the layer, then nothing is
    written and the status is ``unchanged``.
    """
    rows = layer.rows()
    zones = len({r["zone_id"] for r in rows})
    notices = [[layer.layer_id, n.code, n.severity, n.file, n.line, n.field, n.value, n.message] for n in layer.notices]
    with publish_lock(ws), connect(ws) as con:
        ensure_trips_schema(con)
        if rows:
            import pyarrow as pa

            con.register("_z", pa.Table.from_pylist(rows))
        if _zones_as_published(con, layer.layer_id, bool(rows), notices):  # the lock is held: nobody writes in between
            return {"zones": zones, "status": "unchanged"}
        with transaction(con):
            con.execute("DELETE FROM trips.zones WHERE zone_layer = ?", [layer.layer_id])
            if rows:
                con.execute("INSERT INTO trips.zones BY NAME SELECT * FROM _z")
            _zone_notices(con, layer)
    return {"zones": zones, "status": "published"}


def _zones_as_published(con, layer_id: str, have_rows: bool, notices: list[list]) -> bool:
    """Return True if trips.zones and the layer's notices already hold exactly these rows (registered as _z) and notices."""
    cols = ", ".join(c for c, _ in ZONE_COLUMNS)
    old = f"SELECT {cols} FROM trips.zones WHERE zone_layer = {lit(layer_id)}"
    new = f"SELECT {cols} FROM _z" if have_rows else f"SELECT {cols} FROM trips.zones WHERE false"
    differ = con.execute(f"SELECT (SELECT count(*) FROM ({old} EXCEPT ALL {new})) + (SELECT count(*) FROM ({new} EXCEPT ALL {old}))").fetchall()[0][0]
    if differ or not con.execute(f"SELECT count(*) FROM ({old})").fetchall()[0][0]:
        return False
    stored = con.execute("SELECT feed_id, code, severity, file, line, field, value, message FROM quality.notices "
                         "WHERE feed_id = ? AND feed_version = 'zones'", [layer_id]).fetchall()
    return sorted(map(repr, stored)) == sorted(repr(tuple(n)) for n in notices)


def _zone_notices(con, layer) -> None:
    con.execute("DELETE FROM quality.notices WHERE feed_id = ? AND feed_version = 'zones'", [layer.layer_id])
    for n in layer.notices:
        con.execute("INSERT INTO quality.notices VALUES (?, 'zones', ?, ?, ?, ?, ?, ?, ?)",
                    [layer.layer_id, n.code, n.severity, n.file, n.line, n.field, n.value, n.message])


def publish_trips(ws: Workspace, source_id: str) -> dict:
    """Return row counts published for a trips source: its lake partitions replace its warehouse rows in one transaction."""
    from warehouse import storage

    for table in TRIPS_LAKE_TABLES:  # object-storage home: the partitions as the run that wrote them sent them, meta included
        storage.pull(ws, _lake(ws, table, source_id))
    meta_part = _lake(ws, "trips_meta", source_id) / "part-0.parquet"
    if not meta_part.exists():
        raise FileNotFoundError(f"{source_id}: nothing in the lake to publish; run the source first")
    with publish_lock(ws), connect(ws) as con:
        ensure_trips_schema(con)
        con.execute("SET preserve_insertion_order = false")  # trips carry their own file and row; order is not data
        rel = con.sql(f"SELECT * FROM read_parquet({lit(str(meta_part))}, hive_partitioning=false)")
        meta = dict(zip(rel.columns, rel.fetchall()[0]))  # no Arrow: the publish step does not import pyarrow
        ver = meta["feed_version"]
        # the holiday calendar (importing holidays' country tables) is computed while DuckDB loads the rows
        spec_tz = json.loads(meta["spec"] or "{}").get("timezone")
        years = sorted({int(m[:4]) for m in json.loads(meta.get("months") or "[]")})  # the accepted trips' local months
        pool = ThreadPoolExecutor(max_workers=1)
        days = pool.submit(holiday_dates, _country(meta["spec"], spec_tz), years)
        pool.shutdown(wait=False)
        with transaction(con, checkpoint=True):
            con.execute("DELETE FROM trips.source_files WHERE source_id = ?", [source_id])
            con.execute("DELETE FROM quality.trip_rule_counts WHERE source_id = ?", [source_id])
            con.execute("DELETE FROM quality.quarantine WHERE feed_id = ?", [source_id])
            con.execute("DELETE FROM quality.notices WHERE feed_id = ? AND feed_version <> 'zones'", [source_id])
            con.execute("DELETE FROM trips.sources WHERE source_id = ?", [source_id])
            ensure_fct_table(con, ws)  # the other sources' rows, when an older view over the lake is replaced
            con.execute("DELETE FROM trips.fct_trips WHERE source_id = ?", [source_id])
            files = _lake(ws, "trips_files", source_id) / "part-0.parquet"
            excluded = ("excluded" if "excluded" in {r[0] for r in con.execute(f"SELECT name FROM parquet_schema({lit(str(files))})").fetchall()}
                        else "0")
            con.execute(f"INSERT INTO trips.source_files BY NAME SELECT ? AS source_id, ? AS feed_version, file, format, encoding, "
                        f"rows_in, accepted, quarantined, {excluded}::BIGINT AS excluded "
                        f"FROM read_parquet({lit(str(files))}, hive_partitioning=false)", [source_id, ver])
            rc = _lake(ws, "trips_rule_counts", source_id) / "part-0.parquet"
            con.execute(f"INSERT INTO quality.trip_rule_counts SELECT ?, ?, file, code, severity, rows FROM read_parquet({lit(str(rc))}, hive_partitioning=false)",
                        [source_id, ver])
            qp = _lake(ws, "trips_quarantine", source_id) / "part-0.parquet"
            con.execute(f"INSERT INTO quality.quarantine SELECT ?, ?, file, line, code, reason, raw FROM read_parquet({lit(str(qp))}, hive_partitioning=false)",
                        [source_id, ver])
            npart = _lake(ws, "trips_notices", source_id) / "part-0.parquet"
            con.execute(f"INSERT INTO quality.notices SELECT ?, ?, code, severity, file, line, field, value, message "
                        f"FROM read_parquet({lit(str(npart))}, hive_partitioning=false)", [source_id, ver])
            zp = _lake(ws, "trips_zones", source_id) / "part-0.parquet"
            if zp.exists():
                con.execute(f"DELETE FROM trips.zones WHERE zone_layer IN (SELECT DISTINCT zone_layer FROM read_parquet({lit(str(zp))}, hive_partitioning=false))")
                con.execute(f"INSERT INTO trips.zones BY NAME SELECT * FROM read_parquet({lit(str(zp))}, hive_partitioning=false)")
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            con.execute("INSERT INTO trips.sources VALUES (?, ?, ?, ?)", [source_id, ver, meta["spec"], now])
            _insert_fct(con, ws, source_id, ver)
            con.execute("DELETE FROM meta.feed_versions WHERE feed_id = ?", [source_id])
            insert_feed_version(con, feed_id=source_id, version=ver, kind="trips", meta=meta, published_at=now, service=tuple(_months(meta)))
            build_marts(con, source_id, calendar=lambda country: days.result() if country == _country(meta["spec"], spec_tz)
                        else holiday_dates(country, years))
    return {"rows_in": meta["rows_in"], "rows_accepted": meta["rows_accepted"], "rows_quarantined": meta["rows_quarantined"]}


def _months(meta: dict) -> tuple[str | None, str | None]:
    months = json.loads(meta.get("months") or "[]")
    return (months[0], months[-1]) if months else (None, None)


# --------------------------------------------------------------------------------------------
# Marts
# --------------------------------------------------------------------------------------------

def holiday_dates(country: str | None, years: list[int]) -> list[date]:
    """Return the public holidays of ``country`` in ``years``, sorted (none without a country or years)."""
    if not country or not years:
        return []
    import holidays

    return sorted(holidays.country_holidays(country, years=sorted(years)))


def _holidays(con, source_id: str, country: str | None, *, days: list[date] | None = None) -> None:
    """Register the public holidays of the years the source covers as ``_holidays(d DATE)``.

    If ``days`` is given (computed by the caller for the same country and years), then it is used as is.
    """
    if days is None:
        years = [r[0] for r in con.execute("SELECT DISTINCT year(pickup_time_local) FROM trips.fct_trips WHERE source_id = ? "
                                            "AND pickup_time_local IS NOT NULL", [source_id]).fetchall()]
        days = holiday_dates(country, years)
    # a list parameter, not an Arrow table: building one from Python objects makes pyarrow import pandas (0.25 s)
    con.execute("CREATE OR REPLACE TEMP TABLE _holidays AS SELECT CAST(unnest(CAST(? AS VARCHAR[])) AS DATE) AS d",
                [[d.isoformat() for d in days]])


def _country(spec_json: str | None, tz: str | None) -> str | None:
    spec = json.loads(spec_json or "{}")
    c = (spec.get("trips") or {}).get("holidays")
    if c:
        return str(c)
    return {"Asia/Tokyo": "JP"}.get(tz or "", "US" if (tz or "").startswith("America/") else None)


def build_marts(con: duckdb.DuckDBPyConnection, source_id: str, *, calendar: Callable[[str | None], list[date]] | None = None) -> None:
    """Rebuild the marts rows of one source (inside the caller's transaction).

    ``calendar(country)``, if given, returns the source's public holidays for that country (the
    caller may have computed them while the rows were loading); otherwise they are computed here
    for the years of the source's trips.
    """
    spec_json = (con.execute("SELECT spec FROM trips.sources WHERE source_id = ?", [source_id]).fetchall() or [(None,)])[0][0]
    # the source's time zone from any one of its trips (a correlated subquery would scan them all)
    tz = (con.execute("SELECT timezone FROM trips.fct_trips WHERE source_id = ? LIMIT 1", [source_id]).fetchall() or [(None,)])[0][0]
    country = _country(spec_json, tz)
    _holidays(con, source_id, country, days=None if calendar is None else calendar(country))
    trips_section = json.loads(spec_json or "{}").get("trips") or {}
    weighted = "trip_count" in (trips_section.get("columns") or {})
    # a file with dates but no time of day (e.g. one row per base per day) has no hour: not hour 0
    hour = "NULL::INTEGER" if _date_only(trips_section) else "hour(pickup_time_local)"

    def mean(col: str) -> str:
        return _wavg(col) if weighted else f"avg({col})"

    day_type = ("CASE WHEN CAST(pickup_time_local AS DATE) IN (SELECT d FROM _holidays) OR dayofweek(pickup_time_local) = 0 "
                "THEN 'sunday_holiday' WHEN dayofweek(pickup_time_local) = 6 THEN 'saturday' ELSE 'weekday' END")
    con.execute(
        "CREATE TABLE IF NOT EXISTS marts.trips_by_zone_hour (source_id VARCHAR, mode VARCHAR, zone_layer VARCHAR, zone_id VARCHAR, "
        "municipality VARCHAR, month VARCHAR, day_type VARCHAR, hour INTEGER, trips BIGINT, passengers BIGINT, "
        "avg_distance_km DOUBLE, avg_duration_s DOUBLE, total_amount DOUBLE, currency VARCHAR)")
    con.execute("DELETE FROM marts.trips_by_zone_hour WHERE source_id = ?", [source_id])
    con.execute(
        f"INSERT INTO marts.trips_by_zone_hour SELECT source_id, mode, zone_layer, pickup_zone, pickup_municipality, month, {day_type}, "
        f"{hour}, sum(trip_count), sum(passengers), {mean('distance_km')}, {mean('duration_s')}, "
        f"sum(total_amount) FILTER (WHERE total_amount >= 0), any_value(currency) "
        f"FROM trips.fct_trips WHERE source_id = ? GROUP BY ALL", [source_id])
    con.execute(
        "CREATE TABLE IF NOT EXISTS marts.trips_od_matrix (source_id VARCHAR, zone_layer VARCHAR, month VARCHAR, "
        "pickup_zone VARCHAR, dropoff_zone VARCHAR, pickup_municipality VARCHAR, dropoff_municipality VARCHAR, trips BIGINT, "
        "avg_distance_km DOUBLE, avg_duration_s DOUBLE)")
    con.execute("DELETE FROM marts.trips_od_matrix WHERE source_id = ?", [source_id])
    con.execute(
        "INSERT INTO marts.trips_od_matrix SELECT source_id, zone_layer, month, pickup_zone, dropoff_zone, pickup_municipality, "
        f"dropoff_municipality, sum(trip_count), {mean('distance_km')}, {mean('duration_s')} FROM trips.fct_trips "
        "WHERE source_id = ? GROUP BY ALL",
        [source_id])
    _transit_gap(con, source_id, trips_section)
    _ondemand_marts(con, source_id)


def _date_only(trips_section: dict) -> bool:
    """Return True if the source's pickups have a date but no time of day (columns.pickup_date without pickup_time_of_day)."""
    cols = trips_section.get("columns") or {}
    return "pickup_date" in cols and "pickup_time_of_day" not in cols


def _wavg(col: str) -> str:
    """Return SQL for the mean of ``col`` over trips: each row weighs its trip_count (one row of an aggregate file is many trips)."""
    return (f"sum({col} * trip_count) FILTER (WHERE {col} IS NOT NULL) / "
            f"nullif(sum(trip_count) FILTER (WHERE {col} IS NOT NULL), 0)")


def _transit_gap(con, source_id: str, trips_section: dict) -> None:
    """Rebuild marts.transit_gap_trips / transit_gap_by_municipality for one source.

    A trip is a transit-gap trip when its pickup or dropoff lies farther than
    ``transit_gap.max_distance_m`` from every stop of the named GTFS feed (latest published
    version), or its pickup time of day is outside that feed's service hours (first departure to
    last arrival of its stop_times, times past 24:00 wrapping to the small hours), and no published
    on-demand service (schema ``ondemand``) carries it: pickup and dropoff in its zone, at its time.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS marts.transit_gap_trips (source_id VARCHAR, gtfs_feed_id VARCHAR, source_file VARCHAR, "
        "source_row BIGINT, mode VARCHAR, municipality VARCHAR, month VARCHAR, hour INTEGER, pickup_zone VARCHAR, dropoff_zone VARCHAR, "
        "pickup_stop_distance_m DOUBLE, dropoff_stop_distance_m DOUBLE, far_from_stop BOOLEAN, outside_service_hours BOOLEAN, "
        "max_distance_m DOUBLE)")
    con.execute(
        "CREATE TABLE IF NOT EXISTS marts.transit_gap_by_municipality (source_id VARCHAR, gtfs_feed_id VARCHAR, municipality VARCHAR, "
        "month VARCHAR, trips BIGINT, gap_trips BIGINT, far_from_stop BIGINT, outside_service_hours BIGINT, gap_share DOUBLE)")
    con.execute("DELETE FROM marts.transit_gap_trips WHERE source_id = ?", [source_id])
    con.execute("DELETE FROM marts.transit_gap_by_municipality WHERE source_id = ?", [source_id])
    gap = trips_section.get("transit_gap") or {}
    feed = gap.get("gtfs_feed")
    if not feed:
        return
    max_m = float(gap.get("max_distance_m", 500))
    has_gtfs = con.sql("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'gtfs_latest' AND view_name = 'stops'").fetchall()[0][0]
    if not has_gtfs:
        return
    stops = con.execute("SELECT stop_lat, stop_lon FROM gtfs_latest.stops WHERE feed_id = ? AND stop_lat IS NOT NULL "
                        "AND coalesce(location_type, 0) IN (0, 4)", [feed]).fetchall()
    if not stops:
        return
    win = con.execute("SELECT min(least(departure_time, arrival_time)), max(greatest(departure_time, arrival_time)) "
                      "FROM gtfs_latest.stop_times WHERE feed_id = ?", [feed]).fetchall()[0]
    first_s, last_s = win if win[0] is not None else (0, 86400)
    trips = con.sql("SELECT source_file, source_row, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon FROM trips.fct_trips "
                    "WHERE source_id = ?", params=[source_id]).to_arrow_table()
    import numpy as np
    import pyarrow as pa

    lat0 = float(np.mean([s[0] for s in stops]))
    pd_ = nearest_distances_m(np.array(stops, dtype=float), trips.column("pickup_lat").to_numpy(zero_copy_only=False).astype(float),
                              trips.column("pickup_lon").to_numpy(zero_copy_only=False).astype(float), lat0=lat0)
    dd_ = nearest_distances_m(np.array(stops, dtype=float), trips.column("dropoff_lat").to_numpy(zero_copy_only=False).astype(float),
                              trips.column("dropoff_lon").to_numpy(zero_copy_only=False).astype(float), lat0=lat0)
    con.register("_dist", pa.table({"source_file": trips.column("source_file"), "source_row": trips.column("source_row"),
                                    "pd": pa.array(pd_), "dd": pa.array(dd_)}))
    covered = "false"  # carried by a published on-demand service: not a gap
    if not _date_only(trips_section) and _ondemand_match(con, source_id, only_on_demand=False):
        covered = "(o.reason IS NULL AND o.feed_id IS NOT NULL)"
    tod = "(hour(f.pickup_time_local) * 3600 + minute(f.pickup_time_local) * 60 + second(f.pickup_time_local))"
    inside = f"({tod} BETWEEN {int(first_s)} AND {int(last_s)} OR {tod} + 86400 BETWEEN {int(first_s)} AND {int(last_s)})"
    hour = "hour(f.pickup_time_local)"
    if _date_only(trips_section):  # no time of day: the service hours cannot be compared, only the distance
        inside, hour = "true", "NULL::INTEGER"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _gap AS SELECT f.source_id, {lit(feed)} AS gtfs_feed_id, f.source_file, f.source_row, f.mode, "
        f"coalesce(f.pickup_municipality, f.dropoff_municipality) AS municipality, f.month, {hour} AS hour, "
        f"f.pickup_zone, f.dropoff_zone, f.trip_count AS n, CASE WHEN isnan(d.pd) THEN NULL ELSE d.pd END AS pd, "
        f"CASE WHEN isnan(d.dd) THEN NULL ELSE d.dd END AS dd, "
        f"(coalesce(d.pd > {max_m}, false) OR coalesce(d.dd > {max_m}, false)) AND NOT {covered} AS far, "
        f"NOT {inside} AND NOT {covered} AS outside "
        f"FROM trips.fct_trips f JOIN _dist d USING (source_file, source_row) "
        f"{'LEFT JOIN _od_match o USING (source_file, source_row) ' if covered != 'false' else ''}WHERE f.source_id = {lit(source_id)}")
    if covered != "false":
        con.execute("DROP TABLE _od_match")
    con.unregister("_dist")
    con.execute(f"INSERT INTO marts.transit_gap_trips SELECT source_id, gtfs_feed_id, source_file, source_row, mode, municipality, "
                f"month, hour, pickup_zone, dropoff_zone, pd, dd, far, outside, {max_m} FROM _gap WHERE far OR outside")
    # trips, not rows: a row of an aggregate file counts its trip_count
    con.execute("INSERT INTO marts.transit_gap_by_municipality SELECT source_id, gtfs_feed_id, municipality, month, sum(n), "
                "coalesce(sum(n) FILTER (WHERE far OR outside), 0), coalesce(sum(n) FILTER (WHERE far), 0), "
                "coalesce(sum(n) FILTER (WHERE outside), 0), round(coalesce(sum(n) FILTER (WHERE far OR outside), 0) / sum(n), 4) "
                "FROM _gap GROUP BY ALL")
    con.execute("DROP TABLE _gap")


def nearest_distances_m(stops_latlon: np.ndarray, lat: np.ndarray, lon: np.ndarray, *, lat0: float) -> np.ndarray:
    """Return, for each point, the distance in metres to the nearest stop (NaN where the point is missing).

    Points and stops are projected to a local equirectangular plane around ``lat0`` (error
    well under 1 % within a municipality) and matched with shapely's STRtree.query_nearest.
    """
    import numpy as np
    import shapely

    kx = 111_320.0 * np.cos(np.radians(lat0))
    ky = 110_574.0
    tree = shapely.STRtree(shapely.points(stops_latlon[:, 1] * kx, stops_latlon[:, 0] * ky))
    out = np.full(len(lat), np.nan)
    ok = np.isfinite(lat) & np.isfinite(lon)
    if ok.any():
        pts = shapely.points(lon[ok] * kx, lat[ok] * ky)
        (pi, _), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        vals = np.full(ok.sum(), np.nan)
        vals[pi] = dist
        out[ok] = vals
    return out


# --------------------------------------------------------------------------------------------
# Privacy-safe exports
# --------------------------------------------------------------------------------------------

GAP_COUNTS = ("gap_trips", "far_from_stop", "outside_service_hours")  # trip counts inside a transit-gap row
GAP_SHARES = {"gap_share": "gap_trips"}
DEFAULT_K = 10  # a trips spec's privacy.k when it gives none (transforms/trips/spec.py)


def suppress(rows: list[dict], *, k: int, count: str = "trips", minor: tuple[str, ...] = (),
             shares: dict[str, str] | None = None, groups: tuple[tuple[str, ...], ...] = ()) -> tuple[list[dict], int]:
    """Return (cells published, number of cells suppressed). A suppressed cell is dropped whole.

    Every figure derived from trip records passes here before it leaves the warehouse (exports,
    the municipality report). A cell with fewer than k trips is suppressed (primary). ``groups`` names
    the sets of cells whose total can be learnt elsewhere (a zone's total from the OD matrix, a
    municipality's from the transit gaps, a table's from the report; ``()`` = the whole table): in each,
    while exactly one cell is suppressed, or the suppressed ones add up to fewer than k trips, the
    smallest published cell is suppressed too (secondary), so no suppressed cell can be recovered by
    subtraction. ``minor`` names counts of a published row that are themselves trip counts (e.g.
    gap_trips): one below k becomes None; ``shares`` maps a ratio column to the count it is computed
    from, and is blanked with it.
    """
    kept, _, _ = suppress_cells(rows, k=k, count=count, minor=minor, shares=shares, groups=groups)
    return kept, len(rows) - len(kept)


def suppress_cells(rows: list[dict], *, k: int, count: str = "trips", minor: tuple[str, ...] = (),
                   shares: dict[str, str] | None = None, groups: tuple[tuple[str, ...], ...] = ()) -> tuple[list[dict], int, int]:
    """Return (cells published, cells suppressed for fewer than k trips, cells suppressed to protect those): see :func:`suppress`."""
    from collections import defaultdict

    n = [r.get(count) or 0 for r in rows]
    out = [x < k for x in n]
    primary = sum(out)
    changed = bool(groups) and primary > 0
    while changed:
        changed = False
        for cols in groups:
            buckets: dict[tuple, list[int]] = defaultdict(list)
            for i, r in enumerate(rows):
                buckets[tuple(r.get(c) for c in cols)].append(i)
            for idx in buckets.values():
                gone = [i for i in idx if out[i] and n[i] > 0]  # an empty cell protects nothing and needs no protection
                if not gone or (len(gone) >= 2 and sum(n[i] for i in gone) >= k):
                    continue
                left = [i for i in idx if not out[i]]
                if left:
                    out[min(left, key=lambda i: (n[i], i))] = True
                    changed = True
    kept = []
    for r, gone in zip(rows, out):
        if gone:
            continue
        r = dict(r)
        for c in minor:
            if 0 < (r.get(c) or 0) < k:
                r[c] = None
        for share, of in (shares or {}).items():
            if r.get(of) is None:
                r[share] = None
        kept.append(r)
    return kept, primary, len(rows) - len(kept) - primary


#: The cells of each trips export whose totals are published elsewhere (suppress's ``groups``): by zone, municipality
#: and the whole layer, across modes (the OD matrix and the transit gaps have no mode), and by hour (the report).
LINKED = {
    "trips_by_zone_hour": (("zone_layer", "zone_id"), ("zone_layer", "municipality"), ("zone_layer", "hour"), ("zone_layer",)),
    "od_matrix": (("zone_layer", "pickup_zone"), ("zone_layer", "dropoff_zone"), ("zone_layer", "pickup_municipality"),
                  ("zone_layer", "dropoff_municipality"), ("zone_layer",)),
    "transit_gap_by_municipality": (("gtfs_feed_id", "municipality"), ("gtfs_feed_id", "month"), ("gtfs_feed_id",)),
}


def privacy_k(con: duckdb.DuckDBPyConnection, source_ids: list[str]) -> int:
    """Return the k to suppress figures mixing these trip sources with: the largest privacy.k of their specs."""
    ks = [DEFAULT_K]
    have = con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'trips' AND table_name = 'sources'").fetchall()[0][0]
    if have and source_ids:
        for (spec,) in con.execute("SELECT spec FROM trips.sources WHERE source_id IN (SELECT unnest($ids))", {"ids": list(source_ids)}).fetchall():
            k = ((json.loads(spec or "{}").get("trips") or {}).get("privacy") or {}).get("k")
            ks.append(int(k) if isinstance(k, int) or str(k).isdigit() else DEFAULT_K)
    return max(ks)


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:  # BOM: municipal officers open these in Excel
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _export_trip_rows(ws: Workspace, source_id: str, out_dir: Path, opts: TripOptions) -> str:
    """Return the path of the trip-level export a spec explicitly allowed: points only if allow_points, exact times only
    if allow_exact_times (otherwise times are cut to the hour); never the operator's trip id or the source row."""
    times = ("pickup_time_local, dropoff_time_local" if opts.allow_exact_times
             else "date_trunc('hour', pickup_time_local) AS pickup_hour_local")
    points = ", pickup_lat, pickup_lon, dropoff_lat, dropoff_lon" if opts.allow_points else ""
    path = out_dir / "trips.parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    con = connect(ws, read_only=True)
    try:
        con.execute(f"COPY (SELECT mode, provider, {times}, pickup_zone, dropoff_zone, pickup_municipality, dropoff_municipality, "
                    f"distance_km, duration_s, total_amount, currency, passengers{points} FROM trips.fct_trips "
                    f"WHERE source_id = {lit(source_id)}) TO {lit(str(path))} (FORMAT parquet)")
    finally:
        con.close()
    return str(path)


def export_trips(ws: Workspace, source_id: str, *, opts: TripOptions) -> dict:
    """Return the paths of the source's exports: zone × hour demand, OD matrix and transit gaps, each k-suppressed.

    Cells with fewer than ``opts.k`` trips are dropped (k-anonymity of aggregates); trip-level rows
    are exported only when the spec allows it, and then without points / exact times unless allowed.
    """
    out_dir = ws.exports / "trips" / source_id
    con = connect(ws, read_only=True)
    try:
        demand = con.sql(
            "SELECT mode, zone_layer, zone_id, municipality, day_type, hour, sum(trips)::BIGINT AS trips, sum(passengers)::BIGINT AS passengers, "
            "round(sum(avg_distance_km * trips) / sum(trips), 2) AS avg_distance_km, round(sum(avg_duration_s * trips) / sum(trips)) AS avg_duration_s "
            "FROM marts.trips_by_zone_hour WHERE source_id = ? GROUP BY ALL ORDER BY zone_id, day_type, hour", params=[source_id]).to_arrow_table().to_pylist()
        od = con.sql(
            "SELECT zone_layer, pickup_zone, dropoff_zone, pickup_municipality, dropoff_municipality, sum(trips)::BIGINT AS trips "
            "FROM marts.trips_od_matrix WHERE source_id = ? GROUP BY ALL ORDER BY pickup_zone, dropoff_zone", params=[source_id]).to_arrow_table().to_pylist()
        gap = con.sql(
            "SELECT gtfs_feed_id, municipality, month, trips, gap_trips, far_from_stop, outside_service_hours, gap_share "
            "FROM marts.transit_gap_by_municipality WHERE source_id = ? ORDER BY municipality, month", params=[source_id]).to_arrow_table().to_pylist()
    finally:
        con.close()
    files, suppressed, secondary = {}, {}, {}
    for name, rows in (("trips_by_zone_hour", demand), ("od_matrix", od), ("transit_gap_by_municipality", gap)):
        if not rows:
            continue
        kept, n, more = suppress_cells(rows, k=opts.k, minor=GAP_COUNTS if name == "transit_gap_by_municipality" else (),
                                       shares=GAP_SHARES if name == "transit_gap_by_municipality" else None, groups=LINKED[name])
        path = out_dir / f"{name}.csv"
        _write_csv(path, kept, list(rows[0].keys()))
        files[name], suppressed[name], secondary[name] = str(path), n + more, more
    if opts.allow_points or opts.allow_exact_times:
        files["trips"] = _export_trip_rows(ws, source_id, out_dir, opts)
    about = {"source_id": source_id, "k": opts.k, "suppressed_cells": suppressed, "of_which_to_protect_others": secondary,
             "note": f"cells with fewer than {opts.k} trips are not published, nor the smallest cells that would let one be "
                     "recovered from a published total (a zone's, a municipality's, an hour's, the whole table's); "
                     "points and exact times are not exported"
                     + ("" if not (opts.allow_points or opts.allow_exact_times) else " unless the spec allows them"),
             "allow_points": opts.allow_points, "allow_exact_times": opts.allow_exact_times}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "about.json").write_text(json.dumps(about, ensure_ascii=False, indent=2), encoding="utf-8")
    files["about"] = str(out_dir / "about.json")
    return files


# --------------------------------------------------------------------------------------------
# On-demand services (kind ondemand): their zones and windows, and the bookings they should carry
# --------------------------------------------------------------------------------------------

#: Why a trip is not one an on-demand service carries (marts.ondemand_bookings_unserved.reason).
UNSERVED_REASONS = ("no_ondemand_service", "pickup_outside_zone", "dropoff_outside_zone", "no_service_that_day", "outside_hours")


def ensure_ondemand_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create schema ``ondemand`` (services, zones, windows) when missing."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ondemand")
    con.execute("CREATE TABLE IF NOT EXISTS ondemand.services (feed_id VARCHAR, feed_version VARCHAR, name VARCHAR, "
                "booking VARCHAR, published_at VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS ondemand.zones (feed_id VARCHAR, zone_id VARCHAR, zone_name VARCHAR, kind VARCHAR, "
                "geometry_wkt VARCHAR)")
    con.execute("CREATE TABLE IF NOT EXISTS ondemand.windows (feed_id VARCHAR, service_date DATE, service_id VARCHAR, "
                "start_s INTEGER, end_s INTEGER)")


def publish_ondemand(ws: Workspace, feed_id: str, feed_version: str) -> dict:
    """Return the rows published for an on-demand service version from its lake tables (replaced in one transaction).

    The lake tables ondemand_services / ondemand_zones / ondemand_windows are staged by the pipeline
    from the spec (transforms/ondemand/). The marts of the trips sources that use them (a transit
    gap, or on_demand trips) are rebuilt in the same transaction. If this version is already the
    published one, then nothing is done.
    """
    parts = {t: ws.lake_partition(f"ondemand_{t}", feed_id, feed_version) / "part-0.parquet" for t in ("services", "zones", "windows")}
    with publish_lock(ws), connect(ws) as con:
        ensure_trips_schema(con)
        ensure_ondemand_schema(con)
        have = con.execute("SELECT feed_version FROM ondemand.services WHERE feed_id = ?", [feed_id]).fetchall()
        if have == [(feed_version,)]:
            return {"status": "unchanged"}
        with transaction(con, checkpoint=True):
            for t in ("services", "zones", "windows"):
                con.execute(f"DELETE FROM ondemand.{t} WHERE feed_id = ?", [feed_id])
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            con.execute(f"INSERT INTO ondemand.services SELECT ?, ?, name, booking, ? FROM read_parquet({lit(str(parts['services']))})",
                        [feed_id, feed_version, now])
            con.execute(f"INSERT INTO ondemand.zones SELECT ?, zone_id, zone_name, kind, geometry_wkt FROM read_parquet({lit(str(parts['zones']))})",
                        [feed_id])
            con.execute(f"INSERT INTO ondemand.windows SELECT ?, service_date, service_id, start_s, end_s "
                        f"FROM read_parquet({lit(str(parts['windows']))})", [feed_id])
            sources = [sid for sid, spec in con.execute("SELECT source_id, spec FROM trips.sources ORDER BY 1").fetchall()
                       if _uses_ondemand(con, sid, spec)]
            for sid in sources:
                build_marts(con, sid)
            zones, windows = (con.execute(f"SELECT count(*) FROM ondemand.{t} WHERE feed_id = ?", [feed_id]).fetchall()[0][0]
                              for t in ("zones", "windows"))
    return {"status": "published", "zones": zones, "service_windows": windows, "marts_rebuilt": sources}


def _uses_ondemand(con, source_id: str, spec_json: str | None) -> bool:
    """Return True if a trips source's marts read the on-demand services: it has a transit gap, or on_demand trips."""
    section = json.loads(spec_json or "{}").get("trips") or {}
    if (section.get("transit_gap") or {}).get("gtfs_feed") or section.get("mode") == "on_demand":
        return True
    return bool(con.execute("SELECT count(*) FROM (SELECT 1 FROM trips.fct_trips WHERE source_id = ? AND mode = 'on_demand' LIMIT 1)",
                            [source_id]).fetchall()[0][0])


def _has_ondemand(con) -> bool:
    return bool(con.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ondemand' AND table_name = 'zones'").fetchall()[0][0]
                and con.sql("SELECT count(*) FROM ondemand.zones").fetchall()[0][0])


def _ondemand_match(con, source_id: str, *, only_on_demand: bool) -> bool:
    """Build temp table ``_od_match``: for each trip of the source, the on-demand service that should carry it.

    Columns: source_file, source_row, feed_id (NULL when no service is published), pickup_zone
    (the service zone or connecting stop the pickup lies in), reason (NULL when served; else one
    of UNSERVED_REASONS). A trip is in the service's area when its pickup lies in the zone and its
    dropoff in the zone or at a connecting stop (within STOP_RADIUS_M), or the pickup is at a stop
    and the dropoff in the zone; for a stop-based service both ends are at its stops. It is in a
    window when its local pickup time falls in a window of that service date (or of the day
    before, for windows past 24:00). Of several services, a serving one wins, then the closest miss.
    Return False (no table) if no on-demand service is published.
    """
    import numpy as np
    import pyarrow as pa
    import shapely

    from transforms.ondemand.build import STOP_RADIUS_M

    if not _has_ondemand(con):
        return False
    zones = con.sql("SELECT feed_id, zone_id, kind, geometry_wkt FROM ondemand.zones ORDER BY feed_id, kind DESC, zone_id").fetchall()
    where = "AND mode = 'on_demand'" if only_on_demand else ""
    if not only_on_demand:  # a transit gap: only trips that start near a service can be carried by it (large sources)
        x0, y0, x1, y1 = shapely.union_all([shapely.from_wkt(z[3]) for z in zones]).buffer(0.01).bounds  # ~1 km margin
        where = f"AND pickup_lon BETWEEN {x0} AND {x1} AND pickup_lat BETWEEN {y0} AND {y1}"
    trips = con.sql(f"SELECT source_file, source_row, pickup_lat, pickup_lon, dropoff_lat, dropoff_lon FROM trips.fct_trips "
                    f"WHERE source_id = ? {where}", params=[source_id]).to_arrow_table()

    def arr(c: str):
        return trips.column(c).to_numpy(zero_copy_only=False).astype(float)

    plat, plon, dlat, dlon = arr("pickup_lat"), arr("pickup_lon"), arr("dropoff_lat"), arr("dropoff_lon")
    parts = []
    for fid in sorted({z[0] for z in zones}):
        polys = [(z[1], shapely.from_wkt(z[3])) for z in zones if z[0] == fid and z[2] == "zone"]
        stops = [(z[1], shapely.from_wkt(z[3])) for z in zones if z[0] == fid and z[2] == "stop"]

        def in_zone(lat, lon):
            out = np.full(len(lat), None, dtype=object)
            ok = np.isfinite(lat) & np.isfinite(lon)
            for zid, g in polys:
                hit = ok & (out == None) & shapely.contains_xy(g, np.where(ok, lon, 0), np.where(ok, lat, 0))  # noqa: E711
                out[hit] = zid
            return out

        def at_stop(lat, lon):
            out = np.full(len(lat), None, dtype=object)
            if not stops:
                return out
            pts = np.array([[g.y, g.x] for _, g in stops])
            for i, (zid, _) in enumerate(stops):  # the nearest stop within the radius
                d = nearest_distances_m(pts[i:i + 1], lat, lon, lat0=float(pts[:, 0].mean()))
                out[(out == None) & (d <= STOP_RADIUS_M)] = zid  # noqa: E711
            return out

        pz, ps, dz, ds = in_zone(plat, plon), at_stop(plat, plon), in_zone(dlat, dlon), at_stop(dlat, dlon)
        has_p, has_d = pz != None, dz != None  # noqa: E711
        at_p, at_d = ps != None, ds != None  # noqa: E711
        if polys:
            served = (has_p & (has_d | at_d)) | (at_p & has_d)
            p_ok, d_ok = has_p | at_p, has_d | at_d
        else:
            served = at_p & at_d
            p_ok, d_ok = at_p, at_d
        reason = np.where(served, None, np.where(~p_ok, "pickup_outside_zone", "dropoff_outside_zone"))
        # both ends only at stops (station to hospital) is not a zone trip
        reason = np.where(~served & p_ok & d_ok, "dropoff_outside_zone", reason)
        pickup_zone = np.where(pz != None, pz, ps)  # noqa: E711
        parts.append(pa.table({"source_file": trips.column("source_file"), "source_row": trips.column("source_row"),
                               "feed_id": pa.array([fid] * len(trips), pa.string()),
                               "pickup_zone": pa.array(pickup_zone.tolist(), pa.string()),
                               "place_reason": pa.array(reason.tolist(), pa.string())}))
    con.register("_od_geo", pa.concat_tables(parts))
    tod = "(hour(f.pickup_time_local) * 3600 + minute(f.pickup_time_local) * 60 + second(f.pickup_time_local))"
    day = "CAST(f.pickup_time_local AS DATE)"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _od_cand AS SELECT g.source_file, g.source_row, g.feed_id, g.pickup_zone, "
        "coalesce(g.place_reason, CASE WHEN f.pickup_time_local IS NULL THEN 'outside_hours' "
        f"WHEN NOT EXISTS (SELECT 1 FROM ondemand.windows w WHERE w.feed_id = g.feed_id AND w.service_date = {day}) "
        "THEN 'no_service_that_day' "
        f"WHEN NOT EXISTS (SELECT 1 FROM ondemand.windows w WHERE w.feed_id = g.feed_id AND ((w.service_date = {day} "
        f"AND {tod} BETWEEN w.start_s AND w.end_s) OR (w.service_date = {day} - 1 AND {tod} + 86400 BETWEEN w.start_s AND w.end_s))) "
        "THEN 'outside_hours' END) AS reason "
        "FROM _od_geo g JOIN trips.fct_trips f ON f.source_id = ? AND f.source_file = g.source_file AND f.source_row = g.source_row",
        [source_id])
    con.unregister("_od_geo")
    order = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(reversed(UNSERVED_REASONS)))
    con.execute("CREATE OR REPLACE TEMP TABLE _od_match AS SELECT source_file, source_row, feed_id, pickup_zone, reason FROM _od_cand "
                f"QUALIFY row_number() OVER (PARTITION BY source_file, source_row ORDER BY CASE WHEN reason IS NULL THEN -1 ELSE "
                f"CASE reason {order} END END, feed_id) = 1")
    con.execute("DROP TABLE _od_cand")
    return True


def _ondemand_marts(con, source_id: str) -> None:
    """Rebuild marts.ondemand_bookings_zone_hour / ondemand_bookings_unserved for one source's on_demand trips.

    zone_hour: bookings per service, pickup zone, month, day type and hour of day, how many fell in a
    window, and on how many days of that type in the month a window was open in that hour. unserved: bookings
    outside every zone or window, counted by reason (no_ondemand_service when none is published).
    """
    con.execute("CREATE TABLE IF NOT EXISTS marts.ondemand_bookings_zone_hour (source_id VARCHAR, ondemand_feed_id VARCHAR, "
                "zone_id VARCHAR, month VARCHAR, day_type VARCHAR, hour INTEGER, bookings BIGINT, bookings_in_window BIGINT, "
                "service_days_open BIGINT)")
    con.execute("CREATE TABLE IF NOT EXISTS marts.ondemand_bookings_unserved (source_id VARCHAR, ondemand_feed_id VARCHAR, "
                "month VARCHAR, reason VARCHAR, bookings BIGINT)")
    con.execute("DELETE FROM marts.ondemand_bookings_zone_hour WHERE source_id = ?", [source_id])
    con.execute("DELETE FROM marts.ondemand_bookings_unserved WHERE source_id = ?", [source_id])
    n = con.execute("SELECT count(*) FROM trips.fct_trips WHERE source_id = ? AND mode = 'on_demand'", [source_id]).fetchall()[0][0]
    if not n:
        return
    if not _ondemand_match(con, source_id, only_on_demand=True):
        con.execute("INSERT INTO marts.ondemand_bookings_unserved SELECT source_id, NULL, month, 'no_ondemand_service', sum(trip_count) "
                    "FROM trips.fct_trips WHERE source_id = ? AND mode = 'on_demand' GROUP BY ALL", [source_id])
        return
    def day_type(d: str) -> str:  # as in marts.trips_by_zone_hour: Sunday and public holidays are one type
        return (f"CASE WHEN CAST({d} AS DATE) IN (SELECT d FROM _holidays) OR dayofweek({d}) = 0 THEN 'sunday_holiday' "
                f"WHEN dayofweek({d}) = 6 THEN 'saturday' ELSE 'weekday' END")

    con.execute(
        "INSERT INTO marts.ondemand_bookings_zone_hour SELECT f.source_id, m.feed_id, m.pickup_zone, f.month, "
        f"{day_type('f.pickup_time_local')} AS dt, hour(f.pickup_time_local) AS h, sum(f.trip_count), "
        "coalesce(sum(f.trip_count) FILTER (WHERE m.reason IS NULL), 0), "
        "(SELECT count(DISTINCT w.service_date) FROM ondemand.windows w WHERE w.feed_id = m.feed_id "
        f"AND strftime(w.service_date, '%Y-%m') = f.month AND {day_type('w.service_date')} = dt "
        "AND w.start_s < (h + 1) * 3600 AND w.end_s > h * 3600) "
        "FROM trips.fct_trips f JOIN _od_match m USING (source_file, source_row) "
        "WHERE f.source_id = ? AND f.mode = 'on_demand' AND m.pickup_zone IS NOT NULL "
        "GROUP BY f.source_id, m.feed_id, m.pickup_zone, f.month, dt, h", [source_id])
    con.execute(
        "INSERT INTO marts.ondemand_bookings_unserved SELECT f.source_id, m.feed_id, f.month, m.reason, sum(f.trip_count) "
        "FROM trips.fct_trips f JOIN _od_match m USING (source_file, source_row) "
        "WHERE f.source_id = ? AND f.mode = 'on_demand' AND m.reason IS NOT NULL GROUP BY ALL", [source_id])
    con.execute("DROP TABLE _od_match")
