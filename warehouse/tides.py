"""TIDES exports of a realtime feed: vehicle_locations, trips_performed and stop_visits as Parquet, per service date.

TIDES (Transit ITS Data Exchange Specification, https://tides-transit.org) v1.0; the table schemas are vendored in
``tides_schemas/`` (source URL and commit in its README). Built from the warehouse, read-only: schema ``rt``
(noriba/rt.py) and ``marts.rt_stop_events`` (warehouse/rt_marts.py; the marts must be built first: ``noriba rt marts``),
with the static timetable (``gtfs``) of the version the marts matched.

Layout (``NORIBA_HOME``)::

    exports/tides/<feed>/<YYYY-MM-DD>/vehicle_locations.parquet   one row per rt.vehicle_positions row of the day
    exports/tides/<feed>/<YYYY-MM-DD>/trips_performed.parquet     one row per trip a vehicle position names
    exports/tides/<feed>/<YYYY-MM-DD>/stop_visits.parquet         one row per marts.rt_stop_events row of a performed trip
    exports/tides/<feed>/<YYYY-MM-DD>/datapackage.json            resources, schema URLs, rows, the check's problems

Every column of the TIDES table is written, in the schema's order, with its type (``string`` as UTF-8, ``integer``
int64, ``number`` float64, ``boolean``, ``date`` date32, ``datetime`` a UTC timestamp); what the realtime feed cannot
tell (boardings, fares, doors, operator, ...) is null. How each table is filled:

- vehicle_locations: a lake row is one position as received (an unchanged position repeated in later snapshots is one
  row, noriba/rt.py), so rows in = rows out. ``location_ping_id`` = ``<feed>-<UTC date>T<hour>-<n>`` (n: the row's place in
  its hour). ``service_date``: the trip's start_date, else the service day (the local day of the fix or the day before)
  whose schedule of that trip is nearest in time, as the marts choose; a fix without a trip: its local day.
  ``event_timestamp``: the position's timestamp, else its snapshot's header timestamp, else (a snapshot without one)
  the start of the UTC hour it was archived in. ``vehicle_id``: the vehicle's id, else its label, else its licence
  plate, else ``entity:<entity id>`` (required by TIDES). ``trip_id_performed`` = the realtime trip_id;
  ``trip_id_scheduled`` = it, when the timetable of that day has it. ``scheduled_stop_sequence`` =
  current_stop_sequence, ``trip_stop_sequence`` its place among the trip's scheduled stops (1, 2, ...). ``heading`` =
  bearing. A latitude, longitude, bearing, speed or odometer outside the TIDES range (or NaN) is written null.
  ``trip_type`` is "In service" for a position naming a trip; ``schedule_relationship`` is the trip's (SCHEDULED /
  ADDED; SCHEDULED when not given). ``pattern_id`` is GTFS-JP's jp_pattern_id where the timetable has it.
- trips_performed: one row per (service_date, trip_id) named by a vehicle position (rt_observed_trips'
  trips_delivered, plus trips not in that day's timetable). ``vehicle_id``: the vehicle of its first position.
  Route, direction, shape, block and pattern come from the timetable; schedule_trip_start/end are the scheduled
  departure from the first stop and arrival at the last; actual_trip_start/end the observed departure from the first
  stop and arrival at the last (marts.rt_stop_events). ``schedule_relationship``: the realtime trip's, else
  "Scheduled" when the timetable has the trip.
- stop_visits: the stop events of each performed scheduled trip; ``trip_stop_sequence`` numbers the scheduled stops
  1, 2, ... (no detour is known from GTFS-Realtime); ``actual_*`` are the observed times, ``dwell`` the observed
  departure - arrival at an intermediate stop timed by fixes there (not interpolated); ``schedule_relationship``
  "Scheduled" when the stop was observed, else "Missing" (no data).

Not done yet: trip_id_performed is the realtime trip_id, so two vehicles running the same trip_id on one day (a
DUPLICATED trip) are one performed trip; frequency-based trips are not told apart by start_time.

:func:`check_table` checks a written Parquet file against its TIDES schema (fields, types, required, unique,
primary key, enumerations, minimum / maximum), Frictionless-like, in DuckDB (bounded memory).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

from transforms.errors import InputError
from transforms.sql import lit, q
from warehouse.workspace import Workspace, safe_id

TIDES_VERSION = "1.0"
TIDES_COMMIT = "5bc931002fcb2c45d6395a0e912f07fd004f0299"
SCHEMA_DIR = Path(__file__).parent / "tides_schemas"
TABLES = ("vehicle_locations", "trips_performed", "stop_visits")
#: TIDES (Frictionless) field types as DuckDB types, which DuckDB writes to Parquet as the types the README names.
SQL_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
             "datetime": "TIMESTAMPTZ", "time": "TIME"}

#: GTFS route_type (and Google's extended route types) as TIDES trips_performed.route_type names.
ROUTE_TYPES = {
    0: "Tram / Streetcar / Light rail", 1: "Subway / Metro", 2: "Rail", 3: "Bus", 4: "Ferry", 5: "Cable tram", 6: "Aerial lift",
    7: "Funicular", 11: "Trolleybus", 12: "Monorail",
    100: "Railway Service", 101: "High Speed Rail Service", 102: "Long Distance Trains", 103: "Inter Regional Rail Service",
    104: "Car Transport Rail Service", 105: "Sleeper Rail Service", 106: "Regional Rail Service", 107: "Tourist Railway Service",
    108: "Rail Shuttle (Within Complex)", 109: "Suburban Railway", 110: "Replacement Rail Service", 111: "Special Rail Service",
    112: "Lorry Transport Rail Service", 113: "All Rail Services", 114: "Cross-Country Rail Service",
    115: "Vehicle Transport Rail Service", 116: "Rack and Pinion Railway", 117: "Additional Rail Service",
    200: "Coach Service", 201: "International Coach Service", 202: "National Coach Service", 203: "Shuttle Coach Service",
    204: "Regional Coach Service", 205: "Special Coach Service", 206: "Sightseeing Coach Service", 207: "Tourist Coach Service",
    208: "Commuter Coach Service", 209: "All Coach Services",
    400: "Urban Railway Service", 401: "Metro Service", 402: "Underground Service", 404: "All Urban Railway Services", 405: "Monorail",
    700: "Bus Service", 701: "Regional Bus Service", 702: "Express Bus Service", 703: "Stopping Bus Service", 704: "Local Bus Service",
    705: "Night Bus Service", 706: "Post Bus Service", 707: "Special Needs Bus", 708: "Mobility Bus Service",
    709: "Mobility Bus for Registered Disabled", 710: "Sightseeing Bus", 711: "Shuttle Bus", 712: "School Bus",
    713: "School and Public Service Bus", 714: "Rail Replacement Bus Service", 715: "Demand and Response Bus Service",
    716: "All Bus Services", 800: "Trolleybus Service",
    900: "Tram Service", 901: "City Tram Service", 902: "Local Tram Service", 903: "Regional Tram Service",
    904: "Sightseeing Tram Service", 905: "Shuttle Tram Service", 906: "All Tram Services",
    1000: "Water Transport Service", 1100: "Air Service", 1200: "Ferry Service",
    1300: "Aerial Lift Service", 1301: "Telecabin Service", 1302: "Cable Car Service", 1303: "Elevator Service",
    1304: "Chair Lift Service", 1305: "Drag Lift Service", 1306: "Small Telecabin Service", 1307: "All Telecabin Services",
    1400: "Funicular Service",
    1500: "Taxi Service", 1501: "Communal Taxi Service", 1502: "Water Taxi Service", 1503: "Rail Taxi Service",
    1504: "Bike Taxi Service", 1505: "Licensed Taxi Service", 1506: "Private Hire Service Vehicle", 1507: "All Taxi Services",
    1700: "Miscellaneous Service", 1702: "Horse-drawn Carriage",
}
_VP_STATUS = {"INCOMING_AT": "Incoming at", "STOPPED_AT": "Stopped at", "IN_TRANSIT_TO": "In transit to"}
_TRIP_REL = {"SCHEDULED": "Scheduled", "ADDED": "Added", "UNSCHEDULED": "Unscheduled", "CANCELED": "Canceled",
             "DUPLICATED": "Duplicated"}


def load_schema(table: str) -> dict:
    """Return the vendored TIDES table schema of ``table`` (one of TABLES)."""
    if table not in TABLES:
        raise KeyError(f"{table!r} is not a TIDES table Noriba writes ({', '.join(TABLES)})")
    return json.loads((SCHEMA_DIR / f"{table}.schema.json").read_text(encoding="utf-8"))


def schema_url(table: str) -> str:
    """Return the URL of the TIDES schema of ``table`` at the vendored commit."""
    return f"https://raw.githubusercontent.com/TIDES-transit/TIDES/{TIDES_COMMIT}/spec/{table}.schema.json"


def _case(column: str, mapping: dict) -> str:
    whens = " ".join(f"WHEN {k if isinstance(k, int) else lit(k)} THEN {lit(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} END"


def _in_range(column: str, lo: float | None, hi: float | None) -> str:
    cond = [f"isfinite({column})"] + ([f"{column} >= {lo}"] if lo is not None else []) + ([f"{column} <= {hi}"] if hi is not None else [])
    return f"CASE WHEN {' AND '.join(cond)} THEN {column} END"


def _ts(column: str) -> str:
    return f"to_timestamp({column})"


# The values of each TIDES column; a column not named here is written null (its type from the schema).
_COLUMNS = {
    "vehicle_locations": {
        "location_ping_id": "v.location_ping_id", "service_date": "v.service_date", "event_timestamp": _ts("v.ts"),
        "trip_id_performed": "v.trip_id", "trip_id_scheduled": "CASE WHEN v.scheduled THEN v.trip_id END",
        "trip_stop_sequence": "r.trip_stop_sequence", "scheduled_stop_sequence": "v.current_stop_sequence",
        "vehicle_id": "v.vehicle", "pattern_id": "g.jp_pattern_id", "stop_id": "v.stop_id",
        "current_status": _case("v.current_status", _VP_STATUS),
        "latitude": _in_range("v.latitude", -90, 90), "longitude": _in_range("v.longitude", -180, 180),
        "heading": _in_range("v.bearing", 0, 360), "speed": _in_range("v.speed", 0, None), "odometer": _in_range("v.odometer", 0, None),
        "trip_type": "CASE WHEN v.trip_id IS NOT NULL THEN 'In service' END",
        "schedule_relationship": "CASE WHEN v.trip_id IS NOT NULL THEN "
                                 + _case("coalesce(v.trip_schedule_relationship, 'SCHEDULED')", {"SCHEDULED": "Scheduled", "ADDED": "Added"})
                                 + " END",
    },
    "trips_performed": {
        "service_date": "p.service_date", "trip_id_performed": "p.trip_id", "vehicle_id": "p.vehicle",
        "trip_id_scheduled": "CASE WHEN p.scheduled THEN p.trip_id END", "route_id": "coalesce(e.route_id, p.route_id)",
        "route_type": _case("ty.route_type", ROUTE_TYPES), "shape_id": "g.shape_id", "pattern_id": "g.jp_pattern_id",
        "direction_id": "CASE WHEN coalesce(e.direction_id, p.direction_id) IN (0, 1) THEN coalesce(e.direction_id, p.direction_id) END",
        "block_id": "g.block_id", "trip_start_stop_id": "e.first_stop", "trip_end_stop_id": "e.last_stop",
        "schedule_trip_start": _ts("e.sched_start"), "schedule_trip_end": _ts("e.sched_end"),
        "actual_trip_start": _ts("e.actual_start"), "actual_trip_end": _ts("e.actual_end"), "trip_type": "'In service'",
        "schedule_relationship": f"coalesce({_case('p.relationship', _TRIP_REL)}, CASE WHEN p.scheduled THEN 'Scheduled' END)",
    },
    "stop_visits": {
        "service_date": "s.service_date", "trip_id_performed": "s.trip_id", "trip_stop_sequence": "s.trip_stop_sequence",
        "scheduled_stop_sequence": "s.stop_sequence", "pattern_id": "g.jp_pattern_id", "vehicle_id": "p.vehicle",
        "dwell": "CASE WHEN NOT s.is_first AND NOT s.is_last AND s.observed_method IN ('stopped_at', 'radius') "
                 "AND s.observed_departure >= s.observed_arrival THEN s.observed_departure - s.observed_arrival END",
        "stop_id": "s.stop_id", "timepoint": "CASE st.timepoint WHEN 1 THEN true WHEN 0 THEN false END",
        "schedule_arrival_time": _ts("s.scheduled_arrival"), "schedule_departure_time": _ts("s.scheduled_departure"),
        "actual_arrival_time": _ts("s.observed_arrival"), "actual_departure_time": _ts("s.observed_departure"),
        "schedule_relationship": "CASE WHEN coalesce(s.observed_arrival, s.observed_departure) IS NOT NULL THEN 'Scheduled' ELSE 'Missing' END",
    },
}

_FROM = {
    "vehicle_locations": "_tides_vp v LEFT JOIN _tides_rank r ON r.service_date = v.service_date AND r.trip_id = v.trip_id "
                         "AND r.stop_sequence = v.current_stop_sequence "
                         "LEFT JOIN _tides_gtrips g ON g.service_date = v.service_date AND g.trip_id = v.trip_id",
    "trips_performed": "_tides_perf p LEFT JOIN _tides_ends e USING (service_date, trip_id) "
                       "LEFT JOIN _tides_gtrips g USING (service_date, trip_id) "
                       "LEFT JOIN _tides_rtype ty ON ty.service_date = p.service_date AND ty.route_id = coalesce(e.route_id, p.route_id)",
    "stop_visits": "_tides_ev s JOIN _tides_perf p USING (service_date, trip_id) "
                   "LEFT JOIN _tides_gtrips g USING (service_date, trip_id) "
                   "LEFT JOIN gtfs.stop_times st ON st.feed_id = s.static_feed_id AND st.feed_version = s.static_feed_version "
                   "AND st.trip_id = s.trip_id AND st.stop_sequence = s.stop_sequence",
}
_ORDER = {"vehicle_locations": "v.n", "trips_performed": "p.trip_id", "stop_visits": "s.trip_id, s.stop_sequence"}
_DATE = {"vehicle_locations": "v.service_date", "trips_performed": "p.service_date", "stop_visits": "s.service_date"}

# $tz is a validated IANA name, inlined; ? is the feed id.
_PREPARE = r"""
CREATE OR REPLACE TEMP TABLE _tides_ev AS
SELECT e.*, row_number() OVER w AS trip_stop_sequence,
       e.stop_sequence = min(e.stop_sequence) OVER (PARTITION BY e.service_date, e.trip_id) AS is_first,
       e.stop_sequence = max(e.stop_sequence) OVER (PARTITION BY e.service_date, e.trip_id) AS is_last
FROM marts.rt_stop_events e WHERE e.feed_id = $feed
WINDOW w AS (PARTITION BY e.service_date, e.trip_id ORDER BY e.stop_sequence);

CREATE OR REPLACE TEMP TABLE _tides_rank AS SELECT service_date, trip_id, stop_sequence, trip_stop_sequence FROM _tides_ev;

CREATE OR REPLACE TEMP TABLE _tides_days AS
SELECT service_date, trip_id, any_value(static_feed_id) AS static_feed_id, any_value(static_feed_version) AS static_feed_version,
       min(scheduled_arrival) AS t_first, max(scheduled_departure) AS t_last
FROM _tides_ev GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _tides_vp AS
WITH r AS (
  SELECT v.*, $feed || '-' || strftime(v.date, '%Y%m%d') || 'T' || lpad(v.hour::VARCHAR, 2, '0') || '-'
             || row_number() OVER (PARTITION BY v.date, v.hour ORDER BY v.rowid) AS location_ping_id,
         row_number() OVER (ORDER BY v.date, v.hour, v.rowid) AS n,
         coalesce(v."timestamp", v.header_timestamp, epoch(v.date::TIMESTAMP)::BIGINT + v.hour * 3600) AS ts,
         try_strptime(v.start_date, '%Y%m%d')::DATE AS sd,
         coalesce(nullif(v.vehicle_id, ''), nullif(v.vehicle_label, ''), nullif(v.license_plate, ''), 'entity:' || v.entity_id,
                  'entity:') AS vehicle
  FROM rt.vehicle_positions v WHERE v.feed_id = $feed
), l AS (SELECT *, (timezone('$tz', to_timestamp(ts)))::DATE AS local_day FROM r),
pick AS (
  SELECT l.n, arg_min(d.service_date, greatest(d.t_first - l.ts, l.ts - d.t_last, 0) * 100000 + abs(l.ts - d.t_first)) AS service_date
  FROM l JOIN _tides_days d ON d.trip_id = l.trip_id AND d.service_date IN (l.local_day, l.local_day - 1)
  WHERE l.sd IS NULL GROUP BY l.n
)
SELECT l.* EXCLUDE (sd, local_day), coalesce(l.sd, p.service_date, l.local_day) AS service_date,
       d.trip_id IS NOT NULL AS scheduled
FROM l LEFT JOIN pick p USING (n)
LEFT JOIN _tides_days d ON d.service_date = coalesce(l.sd, p.service_date, l.local_day) AND d.trip_id = l.trip_id;

CREATE OR REPLACE TEMP TABLE _tides_perf AS
SELECT service_date, trip_id, arg_min(vehicle, ts) AS vehicle, any_value(route_id) AS route_id, any_value(direction_id) AS direction_id,
       arg_max(trip_schedule_relationship, ts) FILTER (trip_schedule_relationship IS NOT NULL) AS relationship,
       bool_or(scheduled) AS scheduled
FROM _tides_vp WHERE trip_id IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _tides_ends AS
SELECT service_date, trip_id, any_value(route_id) AS route_id, any_value(direction_id) AS direction_id,
       arg_min_null(stop_id, stop_sequence) AS first_stop, arg_max_null(stop_id, stop_sequence) AS last_stop,
       -- the value at the first / last stop, null when that stop was not observed (arg_min skips null values)
       arg_min_null(scheduled_departure, stop_sequence) AS sched_start, arg_max_null(scheduled_arrival, stop_sequence) AS sched_end,
       arg_min_null(observed_departure, stop_sequence) AS actual_start, arg_max_null(observed_arrival, stop_sequence) AS actual_end
FROM _tides_ev GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE _tides_gtrips AS
SELECT d.service_date, d.trip_id, t.shape_id, t.block_id, $pattern AS jp_pattern_id
FROM _tides_days d JOIN gtfs.trips t ON t.feed_id = d.static_feed_id AND t.feed_version = d.static_feed_version AND t.trip_id = d.trip_id;

CREATE OR REPLACE TEMP TABLE _tides_rtype AS
SELECT DISTINCT v.service_date, r.route_id, r.route_type
FROM (SELECT DISTINCT service_date, static_feed_id, static_feed_version FROM _tides_days) v
JOIN gtfs.routes r ON r.feed_id = v.static_feed_id AND r.feed_version = v.static_feed_version
"""


def _zone(con, feed_id: str) -> str:
    """Return the feed's time zone (rt.feeds) when it is a known IANA name, else UTC (as the marts do)."""
    from warehouse.rt_marts import _zone as known_zone

    row = con.execute("SELECT timezone FROM rt.feeds WHERE feed_id = ?", [feed_id]).fetchone()
    return known_zone(row[0] if row else None)


def _select(table: str, schema: dict) -> str:
    cols = []
    for f in schema["fields"]:
        expr = _COLUMNS[table].get(f["name"], "NULL")
        cols.append(f"CAST({expr} AS {SQL_TYPES[f['type']]}) AS {q(f['name'])}")
    return f"SELECT {', '.join(cols)} FROM {_FROM[table]}"


def prepare(con, feed_id: str) -> None:
    """Build the temporary tables the three TIDES tables are selected from. If the feed has no realtime rows or no
    marts, raise InputError saying what to run."""
    have = {(s, t) for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
    if ("rt", "vehicle_positions") not in have or not con.execute(
            "SELECT count(*) FROM rt.vehicle_positions WHERE feed_id = ?", [feed_id]).fetchone()[0]:
        if ("rt", "snapshots") in have and con.execute("SELECT count(*) FROM rt.snapshots WHERE feed_id = ?", [feed_id]).fetchone()[0]:
            raise InputError(f"{feed_id} has no vehicle positions (only trip updates or alerts); TIDES vehicle_locations and "
                             "trips_performed are built from vehicle positions: add the feed's VehiclePositions URL to its spec")
        raise InputError(f"no vehicle positions of {feed_id} in the warehouse (rt.vehicle_positions); archive or ingest the feed "
                         f"and parse it first (noriba rt ingest / noriba rt parse)")
    # every built feed has rows in rt_feed_quality (one per archived hour), even without a static feed to match
    if not {("marts", "rt_stop_events"), ("marts", "rt_feed_quality")} <= have or not con.execute(
            "SELECT count(*) FROM marts.rt_feed_quality WHERE feed_id = ?", [feed_id]).fetchone()[0]:
        raise InputError(f"the realtime marts of {feed_id} are not built; build them first: noriba rt marts {feed_id}")
    trip_cols = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'gtfs' "
                                           "AND table_name = 'trips'").fetchall()}
    sql = _PREPARE.replace("$tz", _zone(con, feed_id)).replace(
        "$pattern", "t.jp_pattern_id" if "jp_pattern_id" in trip_cols else "NULL::VARCHAR")
    for stmt in sql.split(";\n"):
        if stmt.strip():
            n = stmt.count("$feed")
            con.execute(stmt.replace("$feed", "CAST(? AS VARCHAR)"), [feed_id] * n)


def service_dates(con) -> list[date]:
    """Return the service dates the prepared tables have (vehicle positions' and stop events'), oldest first."""
    return [r[0] for r in con.execute("SELECT DISTINCT service_date FROM _tides_vp UNION SELECT DISTINCT service_date FROM _tides_ev "
                                      "ORDER BY 1").fetchall()]


def tides_dir(ws: Workspace, feed_id: str) -> Path:
    """Return exports/tides/<feed>."""
    return ws.exports / "tides" / safe_id(feed_id)


def export_tides(ws: Workspace, feed_id: str, *, dates: list[date] | None = None) -> dict:
    """Write the TIDES tables of a realtime feed, one folder per service date (default: every date it has); return
    {dates: {date: {folder, rows: {table: n}, problems: [...]}}}. Each file is checked against its TIDES schema after
    it is written (``problems``: none expected). If the feed has no vehicle positions or marts, raise InputError."""
    from warehouse.runstate import feed_lock

    if not ws.warehouse.exists():
        raise InputError(f"no warehouse at {ws.warehouse}; ingest the realtime feed first (noriba rt ingest)")
    with feed_lock(ws, f"tides-{safe_id(feed_id)}"):  # two exports of one feed never swap the same folder at once
        return _export_locked(ws, feed_id, dates)


def _export_locked(ws: Workspace, feed_id: str, dates: list[date] | None) -> dict:
    from warehouse.publish import connect
    from warehouse.runstate import replace_dir, sweep

    con = connect(ws, read_only=True)
    try:
        prepare(con, feed_id)
        have = service_dates(con)
        todo = have if dates is None else [d for d in dates if d in have]
        if dates is not None and not todo:
            shown = ", ".join(str(d) for d in have) or "none"
            raise InputError(f"no realtime data of {feed_id} on {', '.join(str(d) for d in dates)}; service dates it has: {shown}")
        root = tides_dir(ws, feed_id)
        root.mkdir(parents=True, exist_ok=True)
        sweep(root, ".*.tmp-*", ".*.old-*")
        out = {}
        for d in todo:
            work = Path(tempfile.mkdtemp(prefix=f".{d}.tmp-", dir=root))
            try:
                rows, problems = {}, {}
                for table in TABLES:
                    schema = load_schema(table)
                    path = work / f"{table}.parquet"
                    con.execute(f"COPY ({_select(table, schema)} WHERE {_DATE[table]} = {lit(str(d))}::DATE "
                                f"ORDER BY {_ORDER[table]}) TO {lit(str(path))} (FORMAT parquet, COMPRESSION zstd)")
                    rows[table] = con.execute(f"SELECT count(*) FROM read_parquet({lit(str(path))})").fetchone()[0]
                    problems[table] = check_table(path, schema, con=con)
                package = {
                    "name": f"{feed_id}-{d}", "title": f"{feed_id}: TIDES {TIDES_VERSION} tables for service date {d}",
                    "profile": "data-package", "created_by": "noriba (warehouse/tides.py)",
                    "tides": {"version": TIDES_VERSION, "commit": TIDES_COMMIT},
                    "resources": [{"name": t, "path": f"{t}.parquet", "format": "parquet", "schema": schema_url(t), "rows": rows[t]}
                                  for t in TABLES],
                    "problems": {t: p for t, p in problems.items() if p},
                }
                (work / "datapackage.json").write_text(json.dumps(package, ensure_ascii=False, indent=1), encoding="utf-8")
                target = root / str(d)
                replace_dir(work, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            out[str(d)] = {"folder": str(target), "rows": rows, "problems": problems}
        return {"feed_id": feed_id, "dates": out}
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# The check: a Parquet file against a TIDES (Frictionless) table schema

#: Parquet / Arrow types (as DuckDB reads them) each TIDES type accepts.
ACCEPTED = {"string": {"VARCHAR"}, "integer": {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"},
            "number": {"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "DECIMAL"}, "boolean": {"BOOLEAN"}, "date": {"DATE"},
            "datetime": {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP"}, "time": {"TIME"}}


def check_table(path: Path, schema: dict, *, con=None) -> list[str]:
    """Return the problems of a Parquet file against a TIDES table schema, one line each (none: it conforms).

    Checked: every schema field is a column and every column a schema field; each column's type fits the field's
    type; required fields have no null; unique fields and the primary key have no duplicate; enum values are
    allowed; minimum / maximum hold.
    """
    import duckdb

    own = con is None
    con = con or duckdb.connect()
    try:
        src = f"read_parquet({lit(str(path))})"
        cols = {name: typ for name, typ in con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})").fetchall()}
        problems = []
        names = [f["name"] for f in schema["fields"]]
        problems += [f"{path.name}: column {c!r} is not a field of {schema['name']}" for c in cols if c not in names]
        for f in schema["fields"]:
            name, typ, cons = f["name"], f["type"], f.get("constraints") or {}
            if name not in cols:
                problems.append(f"{path.name}: field {name!r} is missing")
                continue
            base = cols[name].split("(")[0]
            if base not in ACCEPTED[typ]:
                problems.append(f"{path.name}: {name} is {cols[name]}, not a TIDES {typ}")
                continue
            c = q(name)
            checks = []
            if cons.get("required"):
                checks.append((f"{c} IS NULL", "is required but null"))
            if "enum" in cons:
                allowed = ", ".join(lit(v) if isinstance(v, str) else str(v) for v in cons["enum"])
                checks.append((f"{c} IS NOT NULL AND {c} NOT IN ({allowed})", "is not one of the allowed values"))
            if "minimum" in cons:
                checks.append((f"{c} < {cons['minimum']}", f"is below the minimum {cons['minimum']}"))
            if "maximum" in cons:
                checks.append((f"{c} > {cons['maximum']}", f"is above the maximum {cons['maximum']}"))
            for cond, what in checks:
                n, example = con.execute(f"SELECT count(*), any_value({c}::VARCHAR) FROM {src} WHERE {cond}").fetchone()
                if n:
                    problems.append(f"{path.name}: {name} {what} in {n} row(s), e.g. {example!r}")
            if cons.get("unique"):
                n = con.execute(f"SELECT count(*) FROM (SELECT {c} FROM {src} WHERE {c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]
                if n:
                    problems.append(f"{path.name}: {name} must be unique; {n} value(s) repeat")
        key = schema.get("primaryKey")
        key = [key] if isinstance(key, str) else list(key or [])
        if key and all(k in cols for k in key):
            ks = ", ".join(q(k) for k in key)
            n = con.execute(f"SELECT count(*) FROM (SELECT {ks} FROM {src} GROUP BY ALL HAVING count(*) > 1)").fetchone()[0]
            if n:
                problems.append(f"{path.name}: the primary key ({', '.join(key)}) repeats for {n} key(s)")
        return problems
    finally:
        if own:
            con.close()
