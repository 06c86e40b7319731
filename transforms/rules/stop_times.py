"""Rules on stop_times: times in order, trip edges, timepoints, distances along the shape, travel speeds.

The rules that read a trip in stop_sequence order (the previous timed stop, the running distance, the
same-time runs) filter one table, ``stop_pass``: stop_times read once per run, trip by trip, with
those figures beside each row (transforms/rules/stop_times_pass.py builds it, sorting only when the
file does not already hold each trip together in order; :func:`_pass_sql` is its definition in SQL,
used outside run_rules). Travel speeds use the stops' coordinates (a stop without them takes its
parent station's).
"""

from __future__ import annotations

from functools import partial

from transforms.rules import stop_times_pass
from transforms.rules.engine import ERROR, WARNING, Context, Rule

#: MobilityData's top speeds (km/h) per route_type (StopTimeTravelSpeedValidator.getMaxVehicleSpeedKph). Any other
#: route_type, extended types such as 700 or 1501 included, is UNRECOGNIZED there and gets DEFAULT_MAX_SPEED.
MD_MAX_SPEED = {0: 100, 1: 150, 2: 500, 3: 150, 4: 80, 5: 30, 6: 50, 7: 50, 11: 150, 12: 150}
DEFAULT_MAX_SPEED = 200
#: Google FeedValidator's (transitfeed Route._ROUTE_TYPES); an unknown type counts as a tram (100).
FV_MAX_SPEED = {0: 100, 1: 150, 2: 300, 3: 100, 4: 80, 5: 50, 6: 50, 7: 50}
FV_DEFAULT_MAX_SPEED = 100
TYPE_NAMES = {0: "tram", 1: "subway", 2: "rail", 3: "bus", 4: "ferry", 5: "cable tram", 6: "aerial lift", 7: "funicular",
              11: "trolleybus", 12: "monorail"}

#: Extended route types (Google's hierarchical list) folded to their basic type.
BASIC_TYPE = (
    "CASE WHEN route_type BETWEEN 0 AND 12 THEN route_type WHEN route_type BETWEEN 100 AND 199 THEN 2 "
    "WHEN route_type BETWEEN 200 AND 299 THEN 3 WHEN route_type BETWEEN 400 AND 499 THEN 1 WHEN route_type BETWEEN 700 AND 799 THEN 3 "
    "WHEN route_type = 800 THEN 11 WHEN route_type BETWEEN 900 AND 999 THEN 0 WHEN route_type BETWEEN 1000 AND 1299 THEN 4 "
    "WHEN route_type = 1300 THEN 6 WHEN route_type = 1400 THEN 7 ELSE route_type END"
)


def _case(mapping: dict, default: float, col: str) -> str:
    whens = " ".join(f"WHEN {int(k)} THEN {float(v)}" for k, v in mapping.items())
    return f"CASE {col} {whens} ELSE {float(default)} END"


def _type_name(col: str) -> str:
    whens = " ".join(f"WHEN {k} THEN '{v}'" for k, v in TYPE_NAMES.items())
    return f"CASE {col} {whens} ELSE 'route_type ' || {col} END"


def stop_pass(ctx: Context) -> str:
    """Return the relation of every stop time with a trip_id and a stop_sequence in trip order with its trip figures
    (stop_times_pass.COLUMNS; each trip's rows together in stop_sequence order, ``r - i`` the same on all of them): built
    once per run and shared by the rules, of this module and others, that read a trip in stop_sequence order."""
    return ctx.shared("stop_pass", _pass_sql(), build=partial(stop_times_pass.build, rows=_PASS_ROWS, located=_located(),
                                                                routes=_TRIP_FACTS))


def pass_holds_all(ctx: Context) -> str:
    """Return a SQL condition: every stop time is in :func:`stop_pass` (each has a trip_id and a stop_sequence, as canonical
    tables always do). A rule reading the pass instead of stop_times falls back to stop_times when it is false."""
    return f"((SELECT count(*) FROM stop_times) = (SELECT count(*) FROM {stop_pass(ctx)}))"


#: The stop times the pass reads (a trip and a stop_sequence), and each trip's route_type, whether it has a route (``routed``)
#: and its shape's number in :data:`SHAPE_KEYS` (``shape_k``).
_PASS_ROWS = ("SELECT trip_id, _line, stop_id, stop_sequence, arrival_time, departure_time, shape_dist_traveled FROM stop_times "
              "WHERE trip_id IS NOT NULL AND stop_sequence IS NOT NULL")
#: Every shape_id of trips.txt (shape_id) and its number (shape_k): a rule groups the pass by that integer and names the
#: shapes of its few groups, instead of joining every stop time to trips for its shape_id.
SHAPE_KEYS = ("SELECT shape_id, CAST(row_number() OVER (ORDER BY shape_id) AS INTEGER) AS shape_k "
              "FROM (SELECT DISTINCT shape_id FROM trips WHERE shape_id IS NOT NULL)")
_TRIP_FACTS = ("SELECT t.trip_id, r.route_type, r.route_id IS NOT NULL AS routed, k.shape_k FROM trips t "
               f"LEFT JOIN routes r ON r.route_id = t.route_id LEFT JOIN ({SHAPE_KEYS}) k ON k.shape_id = t.shape_id")


def _pass_source() -> str:
    """Return SQL of the stop times of the pass with their coordinates (or their parent station's) and their trip's
    route_type (``routed``: the trip has a route) and shape_k."""
    return (
        f"WITH loc AS ({_located()}), rt AS ({_TRIP_FACTS}) "
        "SELECT st.*, l.lat, l.lon, rt.route_type, coalesce(rt.routed, false) AS routed, rt.shape_k "
        f"FROM ({_PASS_ROWS}) st LEFT JOIN loc l ON l.stop_id = st.stop_id LEFT JOIN rt ON rt.trip_id = st.trip_id"
    )


def _wide_sql() -> str:
    """Return SQL of every figure of the pass and of its side tables per stop time, in trip order (windows)."""
    wp = "(w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    runs = (
        f"WITH o AS (SELECT s.*, CAST(row_number() OVER (ORDER BY trip_id, stop_sequence) - 1 AS INTEGER) AS r FROM ({_pass_source()}) s), "
        "w AS (SELECT o.*, CAST(row_number() OVER w AS INTEGER) AS i, lag(departure_time) OVER w AS p_dep, lag(lat) OVER w AS p_lat, lag(lon) OVER w AS p_lon, "
        f"last_value(departure_time IGNORE NULLS) OVER {wp} AS prev_dep, "
        f"last_value(CASE WHEN departure_time IS NOT NULL THEN stop_sequence END IGNORE NULLS) OVER {wp} AS prev_dep_seq, "
        f"last_value(shape_dist_traveled IGNORE NULLS) OVER {wp} AS prev_dist, "
        f"last_value(CASE WHEN shape_dist_traveled IS NOT NULL THEN stop_sequence END IGNORE NULLS) OVER {wp} AS prev_dist_seq, "
        f"last_value(CASE WHEN arrival_time IS NOT NULL AND departure_time IS NOT NULL THEN r END IGNORE NULLS) OVER {wp} AS t_r "
        "FROM o WINDOW w AS (PARTITION BY trip_id ORDER BY stop_sequence)), "
        "x AS (SELECT w.*, coalesce(haversine_m(w.p_lat, w.p_lon, w.lat, w.lon), 0) AS leg_m, t.departure_time AS t_dep, "
        "t.lat IS NOT NULL AS t_located, haversine_m(t.lat, t.lon, w.lat, w.lon) AS t_m, "
        "CASE WHEN w.arrival_time IS NULL OR w.departure_time IS NULL THEN 0 "
        "WHEN w.prev_dep = w.arrival_time AND w.arrival_time = w.departure_time THEN 0 ELSE 1 END AS starts "
        "FROM w LEFT JOIN o t ON t.r = w.t_r) "
        "SELECT r, trip_id, _line, stop_id, stop_sequence, arrival_time, departure_time, shape_dist_traveled, lat IS NOT NULL AS located, "
        "route_type, routed, shape_k, i, CASE WHEN lat IS NOT NULL THEN row_number() OVER (PARTITION BY trip_id, stop_id ORDER BY stop_sequence) = 1 "
        "END AS first_visit, p_dep, p_lat IS NOT NULL AS p_located, leg_m, sum(leg_m) OVER v AS cum_m, prev_dep, "
        "prev_dep_seq, prev_dist, prev_dist_seq, t_r, t_dep, t_located, t_m, coalesce(t_r = r - 1, false) AS t_prev, "
        "CAST(sum(starts) OVER v AS INTEGER) AS run "
        "FROM x WINDOW v AS (PARTITION BY trip_id ORDER BY stop_sequence ROWS UNBOUNDED PRECEDING)"
    )
    trip_m = "last_value(cum_m) OVER (PARTITION BY trip_id ORDER BY r ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS trip_m"
    return f"SELECT * EXCLUDE (run), {trip_m}, run, CAST(count(*) OVER (PARTITION BY trip_id, run) AS INTEGER) AS run_n FROM ({runs})"


def _pass_sql() -> str:
    """Return the definition of the shared ``stop_pass`` table in SQL (windows; stop_times_pass.build makes the same rows
    in one pass, its running distance cum_m added stop by stop where DuckDB's window sum may group the additions
    otherwise, so the two can differ in the last bits)."""
    return f"SELECT {', '.join(stop_times_pass.COLUMNS)} FROM ({_wide_sql()}) ORDER BY r"


#: Which rows of the pass each side table (stop_times_pass.SIDES) holds.
_SIDE_ROWS = {"_back": "arrival_time < prev_dep", "_dist": "shape_dist_traveled <= prev_dist",
              "_timed": "t_r IS NOT NULL AND NOT t_prev"}


def _side_sql(suffix: str) -> str:
    """Return the definition of the side table ``suffix`` of the pass in SQL."""
    return (f"SELECT {', '.join(stop_times_pass.SIDES[suffix])} FROM ({_wide_sql()}) WHERE {_SIDE_ROWS[suffix]} ORDER BY r")


def side(ctx: Context, suffix: str) -> str:
    """Return the relation of the side table ``suffix`` (stop_times_pass.SIDES) of :func:`stop_pass`: in run_rules made
    by the pass's build, beside it."""
    stop_pass(ctx)  # asked for first, so that run_rules builds the pass (and so this table) before it
    return ctx.shared(f"stop_pass{suffix}", _side_sql(suffix), build=_made_with_the_pass)


def _made_with_the_pass(cur, table: str) -> None:
    """Check that the side table ``table`` exists: stop_times_pass.build made it with the pass."""
    if not cur.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]:
        raise RuntimeError(f"{table} was not made with the stop-time pass")


def _at(ctx: Context, rel: str, col: str) -> str:
    """Return SQL of the rows of ``rel`` with the stop_id and stop_sequence of the stop time at position ``col`` of the
    shared pass (a_stop, a_seq): joined to a rule's findings only."""
    return (f"(SELECT f.*, a.stop_id AS a_stop, a.stop_sequence AS a_seq FROM {rel} f "
            f"LEFT JOIN {stop_pass(ctx)} a ON a.r = f.{col})")


def _arrival_before_previous_departure(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, 'arrival_time' AS field, gtfs_time(arrival_time) AS value, "
        "'trip_id ' || trip_id || ' arrives at stop_sequence ' || stop_sequence || ' at ' || gtfs_time(arrival_time) || "
        "', before it departs from stop_sequence ' || prev_dep_seq || ' at ' || gtfs_time(prev_dep) AS message "
        f"FROM {side(ctx, '_back')} WHERE arrival_time < prev_dep"
    )


def _departure_before_arrival(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, 'departure_time' AS field, gtfs_time(departure_time) AS value, "
        "'trip_id ' || trip_id || ' at stop_sequence ' || stop_sequence || ' departs at ' || gtfs_time(departure_time) || "
        "', before it arrives at ' || gtfs_time(arrival_time) AS message "
        "FROM stop_times WHERE departure_time < arrival_time"
    )


def _only_arrival_or_departure(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, CASE WHEN arrival_time IS NULL THEN 'arrival_time' ELSE 'departure_time' END AS field, "
        "gtfs_time(coalesce(arrival_time, departure_time)) AS value, "
        "'trip_id ' || trip_id || ' at stop_sequence ' || stop_sequence || ' has ' || "
        "CASE WHEN arrival_time IS NULL THEN 'a departure_time but no arrival_time' ELSE 'an arrival_time but no departure_time' END AS message "
        "FROM stop_times WHERE (arrival_time IS NULL) <> (departure_time IS NULL)"
    )


def _missing_trip_edge(ctx: Context) -> str:
    edges = (
        "SELECT *, row_number() OVER (PARTITION BY trip_id ORDER BY stop_sequence) AS i, count(*) OVER (PARTITION BY trip_id) AS n "
        "FROM stop_times WHERE trip_id IS NOT NULL AND stop_sequence IS NOT NULL"
    )
    parts = []
    for col in ("arrival_time", "departure_time"):
        parts.append(
            f"SELECT 'stop_times.txt' AS file, _line AS line, '{col}' AS field, NULL AS value, "
            "'trip_id ' || trip_id || ': the ' || CASE WHEN i = 1 THEN 'first' ELSE 'last' END || ' stop (stop_sequence ' || stop_sequence || "
            f"', stop_id ' || coalesce(stop_id, '') || ') has no {col}' AS message FROM e WHERE (i = 1 OR i = n) AND {col} IS NULL "
            "AND start_pickup_drop_off_window IS NULL AND end_pickup_drop_off_window IS NULL"  # GTFS-Flex: a window replaces times
        )
    return f"WITH e AS ({edges}) " + " UNION ALL ".join(parts)


def _timepoint_without_times(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, CASE WHEN arrival_time IS NULL THEN 'arrival_time' ELSE 'departure_time' END AS field, "
        "NULL AS value, 'trip_id ' || trip_id || ' at stop_sequence ' || stop_sequence || ' is a timepoint (timepoint 1) without ' || "
        "CASE WHEN arrival_time IS NULL AND departure_time IS NULL THEN 'times' WHEN arrival_time IS NULL THEN 'arrival_time' ELSE 'departure_time' END AS message "
        "FROM stop_times WHERE timepoint = 1 AND (arrival_time IS NULL OR departure_time IS NULL)"
    )


def _missing_timepoint_value(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, 'timepoint' AS field, NULL AS value, "
        "'trip_id ' || trip_id || ' at stop_sequence ' || stop_sequence || ' has times but an empty timepoint' AS message "
        "FROM stop_times WHERE timepoint IS NULL AND (arrival_time IS NOT NULL OR departure_time IS NOT NULL) "
        "AND EXISTS (SELECT 1 FROM _columns WHERE file = 'stop_times.txt' AND \"column\" = 'timepoint' AND known)"
    )


def _decreasing_distance(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, _line AS line, 'shape_dist_traveled' AS field, CAST(shape_dist_traveled AS VARCHAR) AS value, "
        "'trip_id ' || trip_id || ': stop_id ' || coalesce(stop_id, '') || ' (stop_sequence ' || stop_sequence || ') has shape_dist_traveled ' || "
        "shape_dist_traveled || CASE WHEN shape_dist_traveled = prev_dist THEN ', equal to' ELSE ', less than' END || "
        "' the ' || prev_dist || ' of stop_sequence ' || prev_dist_seq AS message "
        f"FROM {side(ctx, '_dist')} WHERE shape_dist_traveled <= prev_dist"
    )


def _unexpected_location(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, st._line AS line, 'stop_id' AS field, st.stop_id AS value, "
        "'trip_id ' || st.trip_id || ' at stop_sequence ' || st.stop_sequence || ' calls at stop_id ' || st.stop_id || "
        "coalesce(' (' || s.stop_name || ')', '') || ', which has location_type ' || s.location_type || ', not a stop or platform' AS message "
        "FROM stop_times st JOIN stops s ON s.stop_id = st.stop_id WHERE coalesce(s.location_type, 0) <> 0"
    )


def _located() -> str:
    """Return SQL of (stop_id, stop_name, lat, lon): each stop's coordinates, or its parent station's."""
    return (
        "SELECT s.stop_id, s.stop_name, coalesce(s.stop_lat, p.stop_lat) AS lat, coalesce(s.stop_lon, p.stop_lon) AS lon "
        "FROM stops s LEFT JOIN stops p ON p.stop_id = s.parent_station"
    )


def _named(rel: str) -> str:
    """Return SQL of the rows of ``rel`` with the names of their stops a_stop and b_stop (a_name, b_name)."""
    return (f"(SELECT f.*, sa.stop_name AS a_name, sb.stop_name AS b_name FROM {rel} f "
            "LEFT JOIN stops sa ON sa.stop_id = f.a_stop LEFT JOIN stops sb ON sb.stop_id = f.b_stop)")


def _md_seconds(dep: str, arr: str) -> str:
    """Return MobilityData's travel time: at least a minute; a minute more when both times are on whole minutes (rounding)."""
    return (f"(CASE WHEN {arr} - {dep} <= 0 THEN 60 WHEN {arr} % 60 = 0 AND {dep} % 60 = 0 THEN {arr} - {dep} + 60 "
            f"ELSE {arr} - {dep} END)")


def _md_limit(ctx: Context, col: str) -> str:
    speeds = {**MD_MAX_SPEED, **{int(k): v for k, v in dict(ctx.param("max_speed_kmh", {})).items()}}
    return _case(speeds, ctx.param("default_max_speed_kmh", DEFAULT_MAX_SPEED), col)


def _leg_message(kind: str) -> str:
    return (
        f"'trip_id ' || trip_id || ' ({kind}): from stop_id ' || a_stop || coalesce(' \"' || a_name || '\"', '') || ' (stop_sequence ' || a_seq || "
        "', departs ' || gtfs_time(a_dep) || ') to stop_id ' || b_stop || coalesce(' \"' || b_name || '\"', '') || ' (stop_sequence ' || b_seq || "
        "', arrives ' || gtfs_time(b_arr) || '): ' || printf('%.0f', d) || ' m in ' || (b_arr - a_dep) || ' s, ' || printf('%.0f', kmh) || "
        f"' km/h, faster than ' || printf('%.0f', lim) || ' km/h for a ' || {_type_name('route_type')}"
    )


def _fast_consecutive(ctx: Context) -> str:
    return (
        "WITH pairs AS (SELECT trip_id, _line, r - 1 AS a_r, p_dep AS a_dep, "
        "stop_id AS b_stop, stop_sequence AS b_seq, arrival_time AS b_arr, leg_m AS d, route_type, "
        f"leg_m / 1000.0 * 3600 / {_md_seconds('p_dep', 'arrival_time')} AS kmh, {_md_limit(ctx, 'route_type')} AS lim "
        f"FROM {stop_pass(ctx)} WHERE routed AND p_dep IS NOT NULL AND arrival_time IS NOT NULL AND p_located AND located) "
        "SELECT 'stop_times.txt' AS file, _line AS line, 'arrival_time' AS field, gtfs_time(b_arr) AS value, "
        f"{_leg_message('consecutive stops')} AS message FROM {_named(_at(ctx, '(SELECT * FROM pairs WHERE kmh > lim)', 'a_r'))}"
    )


def _fast_far(ctx: Context) -> str:
    far_m = float(ctx.param("far_stops_m", 10_000))
    long_rows = int(ctx.param("far_stops_long_trip_rows", 4096))
    legs = f"(SELECT * FROM {stop_pass(ctx)} WHERE routed)"
    lim = _md_limit(ctx, "route_type")
    kmh = f"(b.cum_m - a.cum_m) / 1000.0 * 3600 / {_md_seconds('a.departure_time', 'b.arrival_time')}"
    leg = (f"a.departure_time IS NOT NULL AND b.arrival_time IS NOT NULL AND b.cum_m - a.cum_m > {far_m} "
           f"AND {kmh} > {_md_limit(ctx, 'b.route_type')}")
    # the candidate end e (a stop b) with every earlier stop a of its trip that makes the leg too fast
    true_end = f"JOIN {legs} b ON b.r = e.r JOIN {legs} a ON a.r - a.i = e.k AND a.r < b.r WHERE {leg}"
    return (
        # Only the stops a leg that fast can end at: 3.6 d / t > lim needs 3.6 cum_b - lim arr_b > 3.6 cum_a - lim dep_a (the time
        # MobilityData divides by is never below arr_b - dep_a), for some earlier a more than far_m back; one window, not all pairs.
        # A trip is its rows' r - i (the position of its first stop time): an integer to partition and join on. The window
        # reads only the stops that can end such a leg (more than far_m along) or start one (more than far_m before the end).
        f"WITH src AS (SELECT r, r - i AS k, cum_m, arrival_time, 3.6 * cum_m - {lim} * arrival_time AS kb, "
        f"CASE WHEN departure_time IS NOT NULL THEN 3.6 * cum_m - {lim} * departure_time END AS kd "
        f"FROM {legs} WHERE cum_m > {far_m} OR cum_m <= trip_m - {far_m}), "
        # DuckDB's window over a RANGE ending before the row grows faster than linearly in one huge partition (0.55 s at 100k
        # rows, 6.5 s at 400k): a trip longer than long_trip_rows takes the same minimum as a running minimum (rows in
        # running-distance order, the last row of equal distances holding it) looked up as of the distance far_m back.
        f"long AS (SELECT r - i AS k FROM {legs} WHERE i = {long_rows}), "
        "long_src AS (SELECT * FROM src WHERE k IN (SELECT k FROM long)), "
        f"short_ka AS (SELECT r, k, cum_m, arrival_time, kb, min(kd) OVER (PARTITION BY k ORDER BY cum_m "
        f"RANGE BETWEEN UNBOUNDED PRECEDING AND {far_m} PRECEDING) AS ka FROM src WHERE k NOT IN (SELECT k FROM long)), "
        "run_min AS (SELECT k, cum_m, min(m) AS m FROM (SELECT k, cum_m, min(kd) OVER (PARTITION BY k ORDER BY cum_m, r "
        "ROWS UNBOUNDED PRECEDING) AS m FROM long_src) GROUP BY k, cum_m), "
        "long_ka AS (SELECT s.r, s.k, s.cum_m, s.arrival_time, s.kb, p.m AS ka FROM long_src s "
        f"ASOF LEFT JOIN run_min p ON p.k = s.k AND p.cum_m <= s.cum_m - {far_m}), "
        "ends AS (SELECT r, k, row_number() OVER (PARTITION BY k ORDER BY r) AS n FROM "
        "(SELECT * FROM short_ka UNION ALL SELECT * FROM long_ka) "
        f"WHERE arrival_time IS NOT NULL AND cum_m > {far_m} AND ka < kb + 1), "
        # The trip's first stop that truly ends such a leg; its pairs alone are formed below, so that a trip holding every
        # stop time of a hostile feed costs its length, not its length squared (pairs of every end: terabytes of spill).
        # Most trips' first candidate is it; only a trip whose first candidate is not (a leg saved by the minute MobilityData
        # adds to whole-minute times) tries its later ones, counted per trip without keeping the pairs.
        # Both are a filter of the ends (IN, not a join's GROUP BY), so that DuckDB estimates them as few as the ends and
        # builds the hash table of `firsts` below on them, not on every stop time (a join's estimate put all 7.1M rows of
        # ×16 in that hash table for no finding: far stops 1.46 → 0.86 CPU-s).
        f"first_ok AS (SELECT k, r FROM ends WHERE n = 1 AND r IN (SELECT e.r FROM (SELECT * FROM ends WHERE n = 1) e {true_end})), "
        "later AS MATERIALIZED (SELECT r, k FROM ends WHERE n > 1 AND k NOT IN (SELECT k FROM first_ok)), "
        f"later_ok AS (SELECT k, min(r) AS r FROM later WHERE r IN (SELECT e.r FROM later e {true_end}) GROUP BY k), "
        # The ends' rows first, on their own (a materialised CTE is not reordered): joined to every stop time of their trip
        # before being cut to the ends, one trip of n stop times would give n² rows (DuckDB chose that order at 1.6M rows).
        f"firsts AS MATERIALIZED (SELECT b.* FROM (SELECT r FROM first_ok UNION ALL SELECT r FROM later_ok) e JOIN {legs} b ON b.r = e.r), "
        "pairs AS (SELECT a.trip_id, b._line, b.i AS b_i, a.i AS a_i, a.stop_id AS a_stop, a.stop_sequence AS a_seq, "
        "a.departure_time AS a_dep, b.stop_id AS b_stop, b.stop_sequence AS b_seq, b.arrival_time AS b_arr, "
        f"b.cum_m - a.cum_m AS d, b.route_type, {kmh} AS kmh, "
        f"{_md_limit(ctx, 'b.route_type')} AS lim "
        f"FROM firsts b JOIN {legs} a ON a.r - a.i = b.r - b.i AND a.r < b.r "
        f"WHERE a.departure_time IS NOT NULL AND b.arrival_time IS NOT NULL AND b.cum_m - a.cum_m > {far_m}), "
        "first_per_trip AS (SELECT * FROM pairs WHERE kmh > lim QUALIFY row_number() OVER (PARTITION BY trip_id ORDER BY b_i, a_i DESC) = 1) "
        "SELECT 'stop_times.txt' AS file, _line AS line, 'arrival_time' AS field, gtfs_time(b_arr) AS value, "
        f"{_leg_message('stops more than ' + format(far_m / 1000, 'g') + ' km apart along the trip')} AS message FROM {_named('first_per_trip')}"
    )


def _too_fast_travel(ctx: Context) -> str:
    speeds = {**FV_MAX_SPEED, **{int(k): v for k, v in dict(ctx.param("fv_max_speed_kmh", {})).items()}}
    fv_lim = _case(speeds, FV_DEFAULT_MAX_SPEED, "route_type")
    md_secs = _md_seconds("a_dep", "b_arr")
    # a stop time with both times and the previous one with both times in its trip (t_r)
    # where that is the previous stop time (t_prev), its figures are the pass's p_dep, p_located and leg_m; else the side
    # table _timed holds them
    pick = ("SELECT trip_id, _line, {t_r} AS t_r, {t_dep} AS a_dep, stop_id AS b_stop, stop_sequence AS b_seq, "
            f"arrival_time AS b_arr, route_type, {{t_m}} * {6378135.0 / 6371008.8} AS d, arrival_time - {{t_dep}} AS secs, r, "
            f"{fv_lim} AS lim, {_md_limit(ctx, 'route_type')} AS md_lim FROM {{rel}} "
            "WHERE {only}routed AND arrival_time IS NOT NULL AND departure_time IS NOT NULL AND {t_dep} IS NOT NULL AND {t_located} AND located")
    return (
        f"WITH pairs AS ({pick.format(t_r='r - 1', t_dep='p_dep', t_m='leg_m', t_located='p_located', rel=stop_pass(ctx), only='t_prev AND ')} "
        f"UNION ALL {pick.format(t_r='t_r', t_dep='t_dep', t_m='t_m', t_located='t_located', rel=side(ctx, '_timed'), only='')}), "
        "fast AS (SELECT *, CASE WHEN secs > 0 THEN d / 1000.0 * 3600 / secs END AS kmh FROM pairs "
        "WHERE (secs > 0 AND d / 1000.0 * 3600 / secs > lim) OR (secs = 0 AND (a_dep % 60 <> 0 OR d / 1000.0 * 60 > lim))) "
        "SELECT 'stop_times.txt' AS file, _line AS line, 'arrival_time' AS field, gtfs_time(b_arr) AS value, "
        "'trip_id ' || trip_id || ': from stop_id ' || a_stop || coalesce(' \"' || a_name || '\"', '') || ' (stop_sequence ' || a_seq || ', departs ' || "
        "gtfs_time(a_dep) || ') to stop_id ' || b_stop || coalesce(' \"' || b_name || '\"', '') || ' (stop_sequence ' || b_seq || ', arrives ' || "
        "gtfs_time(b_arr) || '): ' || printf('%.0f', d) || ' m in ' || secs || ' s' || coalesce(', ' || printf('%.0f', kmh) || ' km/h', '') || "
        f"', faster than ' || printf('%.0f', lim) || ' km/h for a ' || {_type_name('(' + BASIC_TYPE + ')')} AS message "
        # a leg MobilityData's consecutive-stops rule reports already is not reported twice
        f"FROM {_named(_at(ctx, f'(SELECT * FROM fast WHERE NOT (t_r = r - 1 AND d / 1000.0 * 3600 / {md_secs} > md_lim))', 't_r'))}"
    )


def _same_time_run(ctx: Context) -> str:
    limit = int(ctx.param("max_consecutive_stop_times_with_same_time", 5))
    # As FeedValidator: a timed stop time continues a run when arrival = departure = the previous timed departure;
    # an untimed one always continues it; any other timed one starts a new run (the pass numbers the runs of each trip).
    # Runs before the first timed stop are not counted.
    return (
        "WITH g AS (SELECT trip_id, run, count(*) AS n, min(_line) AS line, min(stop_sequence) AS s0, max(stop_sequence) AS s1, "
        "arg_max(departure_time, CASE WHEN departure_time IS NOT NULL THEN stop_sequence END) AS t "
        f"FROM {stop_pass(ctx)} WHERE run >= 1 AND run_n > {limit} GROUP BY trip_id, run) "
        "SELECT 'stop_times.txt' AS file, line, 'arrival_time' AS field, gtfs_time(t) AS value, "
        "'trip_id ' || trip_id || ' has ' || n || ' consecutive stop times (stop_sequence ' || s0 || ' to ' || s1 || ') all with the same arrival/departure time ' || "
        f"gtfs_time(t) AS message FROM g WHERE n > {limit}"
    )


RULES: list[Rule] = [
    Rule("stop_time_with_arrival_before_previous_departure_time", ERROR, "A trip arrives at a stop before it has left the previous stop, so its times go backwards.",
         ("file", "line", "trip_id", "stop_sequence", "arrival_time"), _arrival_before_previous_departure, needs=("stop_times",),
         fix="Correct the times (a typo, or a time after midnight written as 00:10 instead of 24:10), or the stop_sequence order.",
         why_ja="便が前の停留所を出発する前に次の停留所に到着しており、時刻が逆戻りしています。",
         fix_ja="時刻の誤り（深夜 0 時以降を 24:10 ではなく 00:10 と書いている等）か、stop_sequence の順序を直してください。"),
    Rule("stop_time_with_departure_before_arrival_time", ERROR, "A trip leaves a stop before it arrives there (departure_time earlier than arrival_time).",
         ("file", "line", "trip_id", "stop_sequence", "departure_time"), _departure_before_arrival, needs=("stop_times",),
         fix="Swap or correct arrival_time and departure_time of that stop.",
         why_ja="停留所の発車時刻 (departure_time) が到着時刻 (arrival_time) より前になっています。",
         fix_ja="その停留所の arrival_time と departure_time を入れ替えるか、正しい時刻に直してください。"),
    Rule("stop_time_with_only_arrival_or_departure_time", ERROR, "A stop time has an arrival_time without a departure_time or the reverse; GTFS requires both or neither.",
         ("file", "line", "trip_id", "stop_sequence"), _only_arrival_or_departure, needs=("stop_times",),
         fix="Fill in the missing time (the same as the other one if the bus does not wait), or empty both.",
         why_ja="到着時刻と発車時刻の一方だけが入力されています。GTFS では両方を入れるか、両方を空欄にする必要があります。",
         fix_ja="もう一方の時刻を入力してください（停車時間がなければ同じ時刻）。または両方を空欄にしてください。"),
    Rule("missing_trip_edge", ERROR, "The first or last stop of a trip has no arrival_time or departure_time; a trip must have times where it starts and ends.",
         ("file", "line", "trip_id", "stop_sequence"), _missing_trip_edge, needs=("stop_times",),
         fix="Give the first and last stop of every trip both times.",
         why_ja="便の始発または終着の停留所に時刻がありません。始発と終着には必ず時刻が必要です。",
         fix_ja="各便の最初と最後の停留所に到着・発車の両方の時刻を入力してください。"),
    Rule("stop_time_timepoint_without_times", ERROR, "A stop time is marked as an exact timepoint (timepoint 1) but has no time.",
         ("file", "line", "trip_id", "stop_sequence", "timepoint"), _timepoint_without_times, needs=("stop_times",),
         fix="Fill in its times, or set timepoint to 0 if the times are only estimated.",
         why_ja="時刻が正確な停留所 (timepoint=1) とされているのに時刻がありません。",
         fix_ja="時刻を入力するか、時刻が目安なら timepoint を 0 にしてください。"),
    Rule("missing_timepoint_value", WARNING, "stop_times.txt has a timepoint column, but a stop time with times leaves it empty, so it is unclear whether its times are exact.",
         ("file", "line", "trip_id", "stop_sequence", "timepoint"), _missing_timepoint_value, needs=("stop_times",),
         fix="Set timepoint to 1 (exact time) or 0 (approximate) on every stop time that has times; if the feed does not say which "
             "times are exact, delete the empty timepoint column instead.",
         why_ja="stop_times.txt に timepoint 列があるのに、時刻のある行で空欄になっており、時刻が正確か目安か分かりません。",
         fix_ja="時刻のある行すべてに timepoint を 1（正確）または 0（目安）で入力してください。使っていない空の timepoint 列なら、列ごと削除してください。"),
    Rule("decreasing_or_equal_stop_time_distance", ERROR, "Along a trip, a stop's shape_dist_traveled is not greater than the previous stop's, so the distance goes backwards or stands still.",
         ("file", "line", "trip_id", "stop_id", "shape_dist_traveled"), _decreasing_distance, needs=("stop_times",),
         fix="Recompute shape_dist_traveled so that it grows from the first stop to the last (in the same unit as shapes.txt).",
         why_ja="便の中で、停留所の shape_dist_traveled（起点からの距離）が前の停留所以下になっています。",
         fix_ja="始発から終着へ増えていくように shape_dist_traveled を計算し直してください（shapes.txt と同じ単位で）。"),
    Rule("location_with_unexpected_stop_time", ERROR, "A stop time refers to a station, entrance, node or boarding area; trips can only call at stops or platforms (location_type 0).",
         ("file", "line", "trip_id", "stop_id"), _unexpected_location, needs=("stop_times",),
         fix="Refer to the platform or stop (location_type 0) inside the station instead.",
         why_ja="stop_times が駅・出入口・結節点・乗車位置を参照しています。便が停車できるのは停留所・のりば (location_type 0) だけです。",
         fix_ja="駅の中ののりば・停留所 (location_type 0) の stop_id を指定してください。"),
    Rule("fast_travel_between_consecutive_stops", WARNING, "A trip travels between two consecutive stops faster than its vehicle can (MobilityData's limits, e.g. 150 km/h for a bus, allowing a minute for rounded times).",
         ("file", "line", "trip_id", "stop_sequence"), _fast_consecutive, needs=("stop_times", "stops"),
         fix="Check the times of the two stops and the coordinates of both stops (a misplaced stop makes a short hop look long).",
         why_ja="連続する二つの停留所の間を、車両が出せない速さで移動しています（MobilityData の基準、例: バスは時速 150 km）。",
         fix_ja="二つの停留所の時刻と座標を確認してください（停留所の位置がずれていると距離が長く見えます）。"),
    Rule("fast_travel_between_far_stops", WARNING, "A trip covers more than 10 km between two stops faster than its vehicle can; over such a distance a single mistyped time cannot explain it.",
         ("file", "line", "trip_id", "stop_sequence"), _fast_far, needs=("stop_times", "stops"),
         fix="Check the trip's times and the coordinates of its stops; one notice is given per trip.",
         why_ja="10 km 以上離れた停留所の間を、車両が出せない速さで移動しています。時刻の入力ミス一つでは説明できない誤りです。",
         fix_ja="便の時刻と停留所の座標を確認してください（便ごとに一件だけ報告します）。"),
    Rule("too_fast_travel", WARNING, "A trip travels between two timed stops faster than Google FeedValidator allows (bus and tram 100 km/h, ferry 80, rail 300), counting scheduled minutes exactly.",
         ("file", "line", "trip_id", "stop_sequence"), _too_fast_travel, needs=("stop_times", "stops"),
         fix="Check the times and coordinates of both stops; with times rounded to the minute, give short hops at least a minute.",
         why_ja="時刻のある二つの停留所の間の速度が Google FeedValidator の基準（バス・路面電車は時速 100 km、船 80 km、鉄道 300 km）を超えています。",
         fix_ja="二つの停留所の時刻と座標を確認してください。分単位の時刻で所要 0 分になる区間は、1 分以上にしてください。"),
    Rule("too_many_consecutive_stop_times_with_same_time", WARNING, "More than 5 consecutive stop times of a trip have the same arrival and departure time, which usually means times were copied instead of entered (FeedValidator's check).",
         ("file", "line", "trip_id", "arrival_time"), _same_time_run, needs=("stop_times",),
         fix="Enter the real passing time of each stop, or leave the times of intermediate stops empty so that apps interpolate them.",
         why_ja="便の中で 6 つ以上の停留所が続けて同じ時刻になっています。時刻を入力せず複写した可能性があります。",
         fix_ja="各停留所の実際の通過時刻を入力するか、途中停留所の時刻を空欄にして（アプリが補間します）ください。"),
]
