"""Rules on trips: trips riders can use (stop times), and vehicle blocks (trips one vehicle runs in turn)."""

from __future__ import annotations

from transforms.rules.calendar import service_days
from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule


#: Per trip_id of stop_times (one row for the NULL trip_id too): its stop times ``n``, the least stop_id ``min_stop``, the stop
#: times with a stop_id ``n_stop`` and the sum ``f`` of their (stop_id, shape_dist_traveled, stop_sequence) hashes
#: (shape_matching's pattern classes), the stop_id at its greatest stop_sequence ``last_stop``, its first and last time ``t0``,
#: ``t1``. One aggregate for the five rules that each grouped 7M stop times by trip_id (Vilnius x16: 0.57-0.63 CPU-s, against
#: 1.35 for the five; bench/README.md, session 16).
TRIP_FACTS = (
    "SELECT trip_id, count(*) AS n, min(stop_id) AS min_stop, count(stop_id) AS n_stop, "
    "sum(CAST(hash(stop_id, shape_dist_traveled, stop_sequence) AS HUGEINT)) FILTER (WHERE stop_id IS NOT NULL) AS f, "
    "arg_max(stop_id, stop_sequence) AS last_stop, min(coalesce(departure_time, arrival_time)) AS t0, "
    "max(coalesce(arrival_time, departure_time)) AS t1 FROM stop_times GROUP BY trip_id"
)


def trip_facts(ctx: Context, columns: str) -> str:
    """Return a relation of ``columns`` (a SELECT list over :data:`TRIP_FACTS`' names) per trip_id of stop_times, from the
    table of every trip's facts shared by the run. For a large feed only (:attr:`Context.large`): a small feed's cheap rules
    run batched, and a shared table would cost each a statement of its own, so they keep their own aggregates."""
    return f"(SELECT {columns} FROM {ctx.shared('trip_facts', TRIP_FACTS)})"


def _unusable_trip(ctx: Context) -> str:
    if ctx.large:
        counts = trip_facts(ctx, "trip_id, n, min_stop AS stop_id")
    else:
        counts = "(SELECT trip_id, count(*) AS n, min(stop_id) AS stop_id FROM stop_times GROUP BY trip_id)"
    return (
        "SELECT 'trips.txt' AS file, t._line AS line, 'trip_id' AS field, t.trip_id AS value, "
        "'trip_id ' || t.trip_id || ' has only one stop time (stop_id ' || coalesce(c.stop_id, '') || '), so riders cannot get on and off' AS message "
        f"FROM trips t JOIN {counts} c USING (trip_id) WHERE c.n = 1"
    )


def _unused_trip(ctx: Context) -> str:
    if ctx.large and ctx.has("stop_times"):
        ids = f"SELECT trip_id FROM {trip_facts(ctx, 'trip_id')} WHERE trip_id IS NOT NULL"
    else:
        ids = "SELECT DISTINCT trip_id FROM stop_times WHERE trip_id IS NOT NULL"
    return (
        "SELECT 'trips.txt' AS file, _line AS line, 'trip_id' AS field, trip_id AS value, "
        "'trip_id ' || trip_id || ' (route_id ' || coalesce(route_id, '') || ') has no stop times in stop_times.txt' AS message "
        f"FROM trips WHERE trip_id NOT IN ({ids})"
    )


def _block_spans(ctx: Context) -> str:
    if ctx.large:
        spans = trip_facts(ctx, "trip_id, t0, t1")
    else:
        spans = ("(SELECT trip_id, min(coalesce(departure_time, arrival_time)) AS t0, max(coalesce(arrival_time, departure_time)) AS t1 "
                 "FROM stop_times GROUP BY trip_id)")
    return (
        "SELECT t.trip_id, t.block_id, t.service_id, t.route_id, t._line, s.t0, s.t1 FROM trips t "
        f"JOIN {spans} s USING (trip_id) WHERE t.block_id IS NOT NULL AND s.t0 IS NOT NULL AND s.t1 IS NOT NULL"
    )


def _block_overlap(ctx: Context) -> str:
    return (
        f"WITH span AS ({_block_spans(ctx)}), "
        "pairs AS (SELECT a.trip_id AS a_id, a.service_id AS a_svc, a.t0 AS a0, a.t1 AS a1, b.trip_id AS b_id, b.service_id AS b_svc, "
        "b.t0 AS b0, b.t1 AS b1, b._line, b.block_id FROM span a JOIN span b ON a.block_id = b.block_id AND a.trip_id < b.trip_id "
        "AND a.t0 < b.t1 AND b.t0 < a.t1), "
        f"sd AS (SELECT service_id, d FROM {service_days()} WHERE service_id IN (SELECT a_svc FROM pairs UNION SELECT b_svc FROM pairs)), "
        "shared AS (SELECT x.service_id AS s1, y.service_id AS s2, min(x.d) AS d FROM sd x JOIN sd y ON x.d = y.d GROUP BY x.service_id, y.service_id) "
        "SELECT 'trips.txt' AS file, p._line AS line, 'block_id' AS field, p.block_id AS value, "
        "'block_id ' || p.block_id || ': trip_id ' || p.a_id || ' (' || gtfs_time(p.a0) || '-' || gtfs_time(p.a1) || ') and trip_id ' || p.b_id || "
        "' (' || gtfs_time(p.b0) || '-' || gtfs_time(p.b1) || ') overlap in time and both run on ' || strftime(s.d, '%Y-%m-%d') AS message "
        "FROM pairs p JOIN shared s ON s.s1 = p.a_svc AND s.s2 = p.b_svc"
    )


def _inconsistent_block_route_type(ctx: Context) -> str:
    return (
        "WITH b AS (SELECT t._line, t.trip_id, t.block_id, r.route_type, first_value(r.route_type) OVER w AS first_type, first_value(t.trip_id) OVER w AS first_trip "
        "FROM trips t JOIN routes r USING (route_id) WHERE t.block_id IS NOT NULL WINDOW w AS (PARTITION BY t.block_id ORDER BY t._line)) "
        "SELECT 'trips.txt' AS file, _line AS line, 'block_id' AS field, block_id AS value, "
        "'block_id ' || block_id || ': trip_id ' || trip_id || ' is on a route of route_type ' || route_type || ' but trip_id ' || first_trip || "
        "' of the same block on route_type ' || first_type AS message FROM b WHERE route_type <> first_type"
    )


def _headsign_matches_intermediate_stop(ctx: Context) -> str:
    # The stop times whose stop is named as the trip's headsign first (few), then the last stop of those trips only. Only the
    # stops named as some headsign are joined to stop_times (a few ids, which DuckDB filters the scan by), and then the
    # trips on both trip and name: at ×16 the join of every stop time to all 1.4M (trip, stop of its headsign's name) pairs
    # was most of the rule (1.04 → 0.74 CPU-s).
    if ctx.large:
        last = f"SELECT trip_id, last_stop FROM {trip_facts(ctx, 'trip_id, last_stop')} WHERE trip_id IN (SELECT trip_id FROM named)"
    else:
        last = ("SELECT trip_id, arg_max(stop_id, stop_sequence) AS last_stop FROM stop_times "
                "WHERE trip_id IN (SELECT trip_id FROM named) GROUP BY trip_id")
    return (
        "WITH hs AS (SELECT stop_id, stop_name FROM stops WHERE stop_name IN (SELECT trip_headsign FROM trips)), "
        "named AS (SELECT st.trip_id, st.stop_id FROM stop_times st JOIN hs s ON s.stop_id = st.stop_id "
        "JOIN trips t ON t.trip_id = st.trip_id AND t.trip_headsign = s.stop_name), "
        f"last AS ({last}), "
        "mid AS (SELECT DISTINCT n.trip_id FROM named n JOIN last l USING (trip_id) WHERE n.stop_id <> l.last_stop) "
        "SELECT 'trips.txt' AS file, t._line AS line, 'trip_headsign' AS field, t.trip_headsign AS value, "
        "'trip_id ' || t.trip_id || ': trip_headsign ' || t.trip_headsign || ' is the name of a stop before the end of the trip' AS message "
        "FROM trips t WHERE t.trip_headsign IS NOT NULL AND t.trip_id IN (SELECT trip_id FROM mid) "
        "AND NOT EXISTS (SELECT 1 FROM last l JOIN stops s ON s.stop_id = l.last_stop WHERE l.trip_id = t.trip_id AND s.stop_name = t.trip_headsign)"
    )


RULES: list[Rule] = [
    Rule("unusable_trip", WARNING, "A trip has only one stop time, so riders cannot travel on it (a trip needs at least two stops).",
         ("file", "line", "trip_id"), _unusable_trip, needs=("trips", "stop_times"),
         fix="Add the trip's other stops to stop_times.txt, or delete the trip.",
         why_ja="便の停車が一か所しかなく、乗って移動することができません（二か所以上の停車が必要です）。",
         fix_ja="stop_times.txt に残りの停留所を追加するか、便を削除してください。"),
    Rule("unused_trip", WARNING, "A trip has no stop times, so it never appears in timetables.",
         ("file", "line", "trip_id"), _unused_trip, needs=("trips",),
         fix="Add the trip's stop times, or delete the trip.",
         why_ja="便に停車時刻 (stop_times) が一つもなく、時刻表に現れません。",
         fix_ja="便の停車時刻を追加するか、便を削除してください。"),
    Rule("block_trips_with_overlapping_stop_times", ERROR, "Two trips of the same block_id (run by one vehicle in turn) overlap in time on a day both run, which one vehicle cannot do.",
         ("file", "line", "block_id", "trip_id"), _block_overlap, needs=("trips", "stop_times"),
         fix="Correct the block_id of one of the trips, or their times.",
         why_ja="同じ block_id（一台の車両が続けて運行する便）の二つの便が、両方運行する日に時間が重なっています。一台では運行できません。",
         fix_ja="どちらかの便の block_id か時刻を直してください。"),
    Rule("inconsistent_route_type_for_block_id", WARNING, "Trips of one block_id run on routes of different route_type (e.g. a bus and a train), which one vehicle cannot be.",
         ("file", "line", "block_id"), _inconsistent_block_route_type, needs=("trips",),
         fix="Check the block_id of the trips, or the route_type of their routes.",
         why_ja="同じ block_id の便が、種別 (route_type) の異なる路線（バスと鉄道など）に属しています。",
         fix_ja="便の block_id か、路線の route_type を確認してください。"),
    Rule("trip_headsign_matches_intermediate_stop", INFO, "A trip's headsign is the name of a stop it passes before its end, which may mislead riders about where it goes.",
         ("file", "line", "trip_headsign"), _headsign_matches_intermediate_stop, needs=("trips", "stop_times", "stops"),
         fix="Use the trip's destination as trip_headsign (a via stop can be written as 'destination (via stop)').",
         why_ja="便の行先表示 (trip_headsign) が途中の停留所名になっており、行先を誤解させるおそれがあります。",
         fix_ja="trip_headsign には終点（行先）を入れてください（経由地は「行先（経由地経由）」のように書けます）。"),
]
