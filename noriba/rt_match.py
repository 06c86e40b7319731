"""Match realtime trips, routes and stops to the static feed version in service that day, per hour: ``marts.rt_match_hourly``.

For each realtime feed and UTC hour published in schema ``rt``, the static feed is the one named in
``rt.feeds.static_feed_id``, in the version in service on the hour's date in the feed's time zone
(``rt.feeds.timezone``; UTC when unknown; the mart's ``service_day``) (meta.feed_versions
service_start <= date <= service_end; the newest ingested such version), else the newest
published version (``version_in_service`` false). The ids seen in the hour (trip and route ids of
vehicle positions and trip updates, stop ids of stop time updates and vehicle positions; each
distinct id once) are looked up in that version's gtfs.trips / gtfs.routes / gtfs.stops.

``marts.rt_match_hourly``: feed_id, date, hour, service_day, static_feed_id, static_feed_version,
version_in_service, trips, trips_unmatched, routes, routes_unmatched, stops, stops_unmatched,
trip_match_share, route_match_share, stop_match_share, status. ``status`` is ``ok``;
``stale_static`` when most route ids match but almost no trip id does (a static feed older than
the realtime one: the network is the same, the timetable is not); ``no_static`` when no static
version is published; ``unmatched`` when most route ids do not match either.

Each hour that is not ``ok`` (or whose static version is not in service) also gets a notice in
``rt.notices`` / ``rt.notice_counts`` (codes in :data:`MATCH_RULES`), replaced whole on rerun, and the
hour's validation report (written by noriba/rt_validate.py) is rebuilt to include them.
"""

from __future__ import annotations

from transforms.gtfs_rt.rules import MATCH_RULES
from transforms.notices import ERROR, WARNING, Findings

#: A static feed is stale when at least this share of route ids matches and at most this share of trip ids does.
STALE_ROUTES, STALE_TRIPS = 0.5, 0.1

_CODES = tuple(r.code for r in MATCH_RULES)

_MART = """
CREATE OR REPLACE TEMP TABLE _version AS
SELECT h.feed_id, h.date, h.hour, h.static_feed_id, h.service_day,
       arg_max(v.feed_version, (v.service_start IS NOT NULL AND v.service_start <= h.service_day
           AND (v.service_end IS NULL OR v.service_end >= h.service_day), coalesce(v.ingested_at, ''))) AS static_feed_version,
       bool_or(v.service_start IS NOT NULL AND v.service_start <= h.service_day
           AND (v.service_end IS NULL OR v.service_end >= h.service_day)) AS version_in_service
FROM _hours h LEFT JOIN meta.feed_versions v ON v.feed_id = h.static_feed_id
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _ids AS
SELECT DISTINCT feed_id, date, hour, 'trip' AS kind, trip_id AS id FROM rt.vehicle_positions WHERE feed_id = $feed AND trip_id IS NOT NULL
UNION SELECT DISTINCT feed_id, date, hour, 'trip', trip_id FROM rt.trip_updates WHERE feed_id = $feed AND trip_id IS NOT NULL
UNION SELECT DISTINCT feed_id, date, hour, 'route', route_id FROM rt.vehicle_positions WHERE feed_id = $feed AND route_id IS NOT NULL
UNION SELECT DISTINCT feed_id, date, hour, 'route', route_id FROM rt.trip_updates WHERE feed_id = $feed AND route_id IS NOT NULL
UNION SELECT DISTINCT feed_id, date, hour, 'stop', stop_id FROM rt.vehicle_positions WHERE feed_id = $feed AND stop_id IS NOT NULL
UNION SELECT DISTINCT feed_id, date, hour, 'stop', CAST(stop_id AS VARCHAR) FROM rt.stop_time_updates WHERE feed_id = $feed AND stop_id IS NOT NULL;

CREATE OR REPLACE TEMP TABLE _matched AS
SELECT i.*, CASE i.kind
    WHEN 'trip' THEN EXISTS (SELECT 1 FROM gtfs.trips t WHERE t.feed_id = v.static_feed_id AND t.feed_version = v.static_feed_version AND t.trip_id = i.id)
    WHEN 'route' THEN EXISTS (SELECT 1 FROM gtfs.routes r WHERE r.feed_id = v.static_feed_id AND r.feed_version = v.static_feed_version AND r.route_id = i.id)
    ELSE EXISTS (SELECT 1 FROM gtfs.stops s WHERE s.feed_id = v.static_feed_id AND s.feed_version = v.static_feed_version AND s.stop_id = i.id)
  END AS matched
FROM _ids i JOIN _version v USING (feed_id, date, hour);

CREATE OR REPLACE TEMP TABLE _hourly AS
SELECT v.feed_id, v.date, v.hour, v.service_day, v.static_feed_id, v.static_feed_version, coalesce(v.version_in_service, false) AS version_in_service,
  count(*) FILTER (kind = 'trip') AS trips, count(*) FILTER (kind = 'trip' AND NOT matched) AS trips_unmatched,
  count(*) FILTER (kind = 'route') AS routes, count(*) FILTER (kind = 'route' AND NOT matched) AS routes_unmatched,
  count(*) FILTER (kind = 'stop') AS stops, count(*) FILTER (kind = 'stop' AND NOT matched) AS stops_unmatched
FROM _version v LEFT JOIN _matched m USING (feed_id, date, hour)
GROUP BY ALL;
"""


def _share(n: int, bad: int) -> float | None:
    return None if not n else round((n - bad) / n, 4)


def _status(row: dict) -> str:
    if not row["static_feed_version"]:
        return "no_static"
    r, t = row["route_match_share"], row["trip_match_share"]
    if r is not None and r >= STALE_ROUTES and t is not None and t <= STALE_TRIPS:
        return "stale_static"
    if r is not None and r < STALE_ROUTES:
        return "unmatched"
    return "ok"


def match_feed(ws, feed_id: str) -> dict:
    """Build ``marts.rt_match_hourly`` for one realtime feed (its rows replaced whole) and its notices; return the hours' rows."""
    import pyarrow as pa

    from noriba.rt_validate import local_day
    from warehouse.publish import connect, ensure_schema, publish_lock
    from warehouse.txn import transaction

    with publish_lock(ws), connect(ws) as con:
        ensure_schema(con)  # meta.feed_versions and gtfs.* exist even before any static feed is published
        hours = con.execute("SELECT DISTINCT s.feed_id, s.date, s.hour, f.static_feed_id, f.timezone FROM rt.snapshots s "
                            "LEFT JOIN rt.feeds f USING (feed_id) WHERE s.feed_id = ?", [feed_id]).fetchall()
        con.register("_hours_py", pa.Table.from_pylist(
            [{"feed_id": f, "date": d, "hour": h, "static_feed_id": sf, "service_day": local_day(d.isoformat(), h, tz)}
             for f, d, h, sf, tz in hours],
            schema=pa.schema([("feed_id", pa.string()), ("date", pa.date32()), ("hour", pa.int32()),
                              ("static_feed_id", pa.string()), ("service_day", pa.string())])))
        con.execute("CREATE OR REPLACE TEMP TABLE _hours AS SELECT * FROM _hours_py")
        con.unregister("_hours_py")
        for stmt in _MART.replace("$feed", "?").split(";"):
            if stmt.strip():
                con.execute(stmt, [feed_id] * stmt.count("?"))
        cols = [d[0] for d in con.execute("SELECT * FROM _hourly ORDER BY date, hour").description]
        rows = [dict(zip(cols, r)) for r in con.execute("SELECT * FROM _hourly ORDER BY date, hour").fetchall()]
        findings = Findings()
        for r in rows:
            r["trip_match_share"] = _share(r["trips"], r["trips_unmatched"])
            r["route_match_share"] = _share(r["routes"], r["routes_unmatched"])
            r["stop_match_share"] = _share(r["stops"], r["stops_unmatched"])
            r["status"] = _status(r)
            where = f"{feed_id} {r['date']}T{r['hour']:02d}"
            if r["status"] == "stale_static":
                findings.add("rt_static_feed_stale", ERROR, f"{where}: {r['route_match_share']:.0%} of {r['routes']} route ids but "
                             f"{r['trip_match_share']:.0%} of {r['trips']} trip ids are in static {r['static_feed_id']} "
                             f"{r['static_feed_version']}", file=where, value=r["static_feed_version"])
            elif r["status"] == "unmatched":
                findings.add("rt_static_feed_unmatched", ERROR, f"{where}: only {r['route_match_share']:.0%} of {r['routes']} route ids "
                             f"are in static {r['static_feed_id']} {r['static_feed_version']}", file=where, value=r["static_feed_version"])
            elif r["status"] == "no_static":
                findings.add("rt_static_feed_missing", WARNING, f"{where}: static feed {r['static_feed_id'] or '(none named)'} is not "
                             "published", file=where, value=r["static_feed_id"])
            if r["static_feed_version"] and not r["version_in_service"]:
                findings.add("rt_static_version_not_in_service", WARNING, f"{where}: no version of {r['static_feed_id']} is in service "
                             f"on {r['date']}; matched against {r['static_feed_version']}", file=where, value=r["static_feed_version"])
            r["_notices"] = [n for n in findings.notices if n.file == where]
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS marts")
            con.execute("CREATE TABLE IF NOT EXISTS marts.rt_match_hourly AS SELECT *, 0.0::DOUBLE AS trip_match_share, "
                        "0.0::DOUBLE AS route_match_share, 0.0::DOUBLE AS stop_match_share, ''::VARCHAR AS status FROM _hourly LIMIT 0")
            con.execute("DELETE FROM marts.rt_match_hourly WHERE feed_id = ?", [feed_id])
            if rows:
                t = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "_notices"} for r in rows])
                con.register("_rows", t)
                con.execute("INSERT INTO marts.rt_match_hourly BY NAME SELECT * FROM _rows")
                con.unregister("_rows")
            con.execute("CREATE SCHEMA IF NOT EXISTS rt")
            from noriba.rt_validate import RT_NOTICE_COLUMNS
            con.execute(f"CREATE TABLE IF NOT EXISTS rt.notices ({RT_NOTICE_COLUMNS})")
            con.execute("CREATE TABLE IF NOT EXISTS rt.notice_counts (feed_id VARCHAR, date DATE, hour INTEGER, "
                        "static_feed_version VARCHAR, code VARCHAR, severity VARCHAR, notices BIGINT)")
            marks = ", ".join("?" for _ in _CODES)
            for table in ("rt.notices", "rt.notice_counts"):
                con.execute(f"DELETE FROM {table} WHERE feed_id = ? AND code IN ({marks})", [feed_id, *_CODES])
            for r in rows:
                for n in r["_notices"]:
                    args = [feed_id, r["date"], r["hour"], r["static_feed_version"], n.code, n.severity]
                    con.execute("INSERT INTO rt.notices VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?)", args + [n.file, n.value, n.message])
                    con.execute("INSERT INTO rt.notice_counts VALUES (?, ?, ?, ?, ?, ?, 1)", args)
    from noriba.report import report_dir, rt_report_version
    from noriba.rt_validate import write_hour_report

    for r in rows:
        r["notices"] = [n.code for n in r.pop("_notices")]
        day = r["date"].isoformat() if hasattr(r["date"], "isoformat") else str(r["date"])
        if (report_dir(ws, feed_id, rt_report_version(day, r["hour"])) / "report.json").exists():
            write_hour_report(ws, feed_id, day, r["hour"])  # the validated hour's report gains the match's notices
    return {"feed_id": feed_id, "hours": rows}
