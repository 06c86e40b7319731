"""Matching stops to their trips' shapes, as MobilityData v8.0.1's ShapeToStopMatchingValidator does, set-based.

For each (shape, stop) a trip calls at, the *potential matches* are the local minima of the distance
from the stop to the shape's segments, among the segments within 100 m (400 m for a rail station):
a new match starts where the shape came back towards the stop after moving away. With more than 20
potential matches the stop is ambiguous (``stop_has_too_many_matches_for_shape``). Along a trip
pattern, the matches must be reachable in order along the shape: the earliest feasible position of
each stop is the least match at or after the previous stop's; when a stop has none, the two stops
are out of order (``stops_match_shape_out_of_order``, once per pattern, at the first such stop).
With shape_dist_traveled on both sides, each stop is placed on the shape at its distance and must
be within 100 m of that point (``stop_too_far_from_shape_using_user_distance``, once per stop and
shape, unless ``stop_too_far_from_shape`` already reports it).

Distances use a local flat projection around each stop, as :func:`transforms.rules.shapes.stop_shape_distance_sql`.
"""

from __future__ import annotations

from transforms.rules.engine import WARNING, Context, Rule
from transforms.rules.trips import trip_facts

MAX_M = 100.0
LARGE_STATION_FACTOR = 4.0
TOO_MANY_MATCHES = 20


def _pairs_sql(facts: str | None = None) -> str:
    """Return the CTEs of :func:`_pairs` as one chain (pat, pairs, pt, seg); ``facts``: the relation of trips.trip_facts
    (trip_id, n_stop, f) when the run shares it."""
    return (
        "tp AS (SELECT t.trip_id, t.shape_id, r.route_type, t._line AS trip_line FROM trips t JOIN routes r USING (route_id) "
        "WHERE t.shape_id IN (SELECT shape_id FROM shapes)), "
        f"{_pattern_keys(facts)}, "
        "rep AS (SELECT key, min(trip_id) AS trip_id FROM pk GROUP BY key), "
        "pat AS (SELECT pk.key, pk.trip_id, pk.shape_id, pk.route_type, st.stop_id, st._line AS line, st.shape_dist_traveled AS sd, "
        "row_number() OVER (PARTITION BY pk.key ORDER BY st.stop_sequence) AS k, "
        "coalesce(s.stop_lat, ps.stop_lat) AS lat, coalesce(s.stop_lon, ps.stop_lon) AS lon, s.stop_name "
        "FROM rep JOIN pk USING (key, trip_id) JOIN stop_times st ON st.trip_id = pk.trip_id "
        "JOIN stops s ON s.stop_id = st.stop_id LEFT JOIN stops ps ON ps.stop_id = s.parent_station), "
        f"pairs AS (SELECT shape_id, stop_id, any_value(lat) AS lat, any_value(lon) AS lon, "
        f"max(CASE WHEN route_type = 2 THEN {MAX_M * LARGE_STATION_FACTOR} ELSE {MAX_M} END) AS maxd "
        "FROM pat WHERE lat IS NOT NULL AND lon IS NOT NULL GROUP BY shape_id, stop_id), "
        "pt AS (SELECT shape_id, shape_pt_lat AS lat, shape_pt_lon AS lon, shape_dist_traveled AS ud, "
        "row_number() OVER w AS i, lead(shape_pt_lat) OVER w AS lat2, lead(shape_pt_lon) OVER w AS lon2 "
        "FROM shapes WHERE shape_pt_lat IS NOT NULL AND shape_pt_lon IS NOT NULL AND shape_id IN (SELECT shape_id FROM pairs) "
        "WINDOW w AS (PARTITION BY shape_id ORDER BY shape_pt_sequence)), "
        "seg AS (SELECT *, coalesce(sum(haversine_m(lat, lon, lat2, lon2)) OVER (PARTITION BY shape_id ORDER BY i "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS cum FROM pt)"
    )


#: A trip's pattern key: its shape and its stops in stop_sequence order with their shape_dist_traveled (stop times without a
#: stop_id left out), hashed.
_KEY = ("hash(tp.shape_id, string_agg(st.stop_id || ':' || coalesce(CAST(st.shape_dist_traveled AS VARCHAR), ''), ',' "
        "ORDER BY st.stop_sequence))")


def _pattern_keys(facts: str | None = None) -> str:
    """Return the CTE pk (trip_id, shape_id, route_type, key): every trip of tp with stop times and its :data:`_KEY`.

    The key's ordered aggregate is 2.1 CPU-s at Vilnius x16, so it is computed for one trip per class: trips with the same
    shape, number of stop times with a stop_id and sum of hashes of their (stop_sequence, stop_id, shape_dist_traveled)
    (cls; c its least trip_id). A class is checked to hold one sequence: its distinct triples are as many as each trip's
    stop times (stop_sequence is unique in a trip; a zero or NaN distance is told apart by its text, as in the key). If a
    class fails, or a stop time with a stop_id lacks its stop_sequence, then every trip's key is computed (odd). A trip's
    count and sum are taken from stop_times alone, then joined to tp (summed again: a trip twice in tp counts its stop
    times twice, as the join of every stop time did; 0.40 against 0.56 CPU-s at Vilnius x16)."""
    dist = "st.shape_dist_traveled"
    per_trip = (f"(SELECT trip_id, n_stop AS n, f FROM {facts})" if facts else
                "(SELECT trip_id, count(stop_id) AS n, sum(CAST(hash(stop_id, shape_dist_traveled, stop_sequence) AS HUGEINT)) "
                "FILTER (WHERE stop_id IS NOT NULL) AS f FROM stop_times GROUP BY trip_id)")
    return (
        "fp AS (SELECT tp.trip_id, tp.shape_id, any_value(tp.route_type) AS route_type, CAST(sum(a.n) AS BIGINT) AS n, sum(a.f) AS f "
        f"FROM tp JOIN {per_trip} a USING (trip_id) GROUP BY tp.trip_id, tp.shape_id), "
        "cls AS (SELECT trip_id, shape_id, route_type, n, min(trip_id) OVER (PARTITION BY shape_id, f, n) AS c FROM fp), "
        f"ck AS (SELECT tp.trip_id AS c, {_KEY} AS key FROM tp JOIN stop_times st USING (trip_id) "
        "WHERE tp.trip_id IN (SELECT c FROM cls) GROUP BY tp.trip_id, tp.shape_id), "
        "odd AS (SELECT (SELECT count(*) FROM (SELECT c, count(*) AS k FROM (SELECT DISTINCT cls.c, st.stop_sequence, st.stop_id, "
        f"{dist}, CASE WHEN {dist} = 0 OR isnan({dist}) THEN CAST({dist} AS VARCHAR) END "
        "FROM stop_times st JOIN cls USING (trip_id) WHERE st.stop_id IS NOT NULL) GROUP BY c) g "
        "JOIN (SELECT DISTINCT c, n FROM cls) USING (c) WHERE g.k <> n) "
        "+ (SELECT count(*) FROM stop_times WHERE stop_id IS NOT NULL AND stop_sequence IS NULL) AS n), "
        "pk AS (SELECT cls.trip_id, cls.shape_id, cls.route_type, ck.key FROM cls JOIN ck USING (c) WHERE (SELECT n FROM odd) = 0 "
        f"UNION ALL SELECT tp.trip_id, tp.shape_id, any_value(tp.route_type) AS route_type, {_KEY} AS key "
        "FROM tp JOIN stop_times st USING (trip_id) WHERE (SELECT n FROM odd) > 0 GROUP BY tp.trip_id, tp.shape_id)"
    )


def _pairs(ctx: Context) -> str:
    """Return CTEs: pat (one row per distinct trip pattern and stop), pairs (shape_id, stop_id, lat, lon, maxd), seg.

    The three are built once per run and shared by the rules of this module (each reads every stop time once)."""
    facts = None
    if ctx.large:  # the per-trip count and hash sum of the pattern classes, from the aggregate other rules share
        facts = trip_facts(ctx, "trip_id, n_stop, f")
    pat = ctx.shared("shape_match_pat", f"WITH {_pairs_sql(facts)} SELECT * FROM pat")
    pairs = ctx.shared("shape_match_pairs", f"WITH pat AS (SELECT * FROM {pat}), {_pairs_sql()[_pairs_sql().index('pairs AS'):]} SELECT * FROM pairs")
    seg = ctx.shared("shape_match_seg", f"WITH pairs AS (SELECT * FROM {pairs}), {_pairs_sql()[_pairs_sql().index('pt AS'):]} SELECT * FROM seg")
    return f"pat AS (SELECT * FROM {pat}), pairs AS (SELECT * FROM {pairs}), seg AS (SELECT * FROM {seg})"


def _matched(ctx: Context) -> str:
    """Return CTEs (after :func:`_pairs`): m, the potential matches of every pair, built once per run and shared."""
    m = ctx.shared("shape_match_m", f"WITH {_pairs(ctx)}{_matches()} SELECT * FROM m")
    return f", m AS (SELECT * FROM {m})"


def _matches(source: str = "pairs") -> str:
    """Return CTEs (after :func:`_pairs`): near (segments within reach of each pair of ``source``) and m (shape_id, stop_id, g, d, geo)."""
    return (
        f", near AS (SELECT p.shape_id, p.stop_id, s.i, x1, y1, x2, y2, p.maxd, s.cum FROM {source} p JOIN ("
        "SELECT * FROM seg WHERE lat2 IS NOT NULL) s USING (shape_id), "
        "LATERAL (SELECT (s.lon - p.lon) * 111320.0 * cos(radians(p.lat)) AS x1, (s.lat - p.lat) * 110540.0 AS y1, "
        "(s.lon2 - p.lon) * 111320.0 * cos(radians(p.lat)) AS x2, (s.lat2 - p.lat) * 110540.0 AS y2) "
        "WHERE least(s.lat, s.lat2) - p.maxd / 110540.0 <= p.lat AND greatest(s.lat, s.lat2) + p.maxd / 110540.0 >= p.lat "
        "AND least(s.lon, s.lon2) - p.maxd / (111320.0 * cos(radians(p.lat))) <= p.lon "
        "AND greatest(s.lon, s.lon2) + p.maxd / (111320.0 * cos(radians(p.lat))) >= p.lon), "
        "nd AS (SELECT *, sqrt(pow(x1 + tt * (x2 - x1), 2) + pow(y1 + tt * (y2 - y1), 2)) AS d, sqrt(x2 * x2 + y2 * y2) AS e, "
        "tt * sqrt(pow(x2 - x1, 2) + pow(y2 - y1, 2)) AS along FROM ("
        "SELECT *, CASE WHEN (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) = 0 THEN 0 "
        "ELSE greatest(0, least(1, -(x1 * (x2 - x1) + y1 * (y2 - y1)) / ((x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)))) END AS tt FROM near)), "
        "w AS (SELECT *, CASE WHEN lag(i) OVER o IS DISTINCT FROM i - 1 THEN 1 "
        "WHEN lag(e) OVER o > lag(d) OVER o AND d < lag(e) OVER o THEN 1 ELSE 0 END AS start "
        "FROM nd WHERE d <= maxd WINDOW o AS (PARTITION BY shape_id, stop_id ORDER BY i)), "
        "grp AS (SELECT *, sum(start) OVER (PARTITION BY shape_id, stop_id ORDER BY i) AS g FROM w), "
        "m AS (SELECT shape_id, stop_id, g, min(d) AS d, arg_min(cum + along, d) AS geo FROM grp GROUP BY shape_id, stop_id, g)"
    )


def _too_many_matches(ctx: Context) -> str:
    limit = int(ctx.param("stop_shape_matches_limit", TOO_MANY_MATCHES))
    return (
        f"WITH {_pairs(ctx)}{_matched(ctx)}, n AS (SELECT shape_id, stop_id, count(*) AS n FROM m GROUP BY shape_id, stop_id HAVING count(*) > {limit}) "
        "SELECT 'stop_times.txt' AS file, min(p.line) AS line, 'stop_id' AS field, p.stop_id AS value, "
        "'stop_id ' || p.stop_id || coalesce(' (' || any_value(p.stop_name) || ')', '') || ' is near shape_id ' || p.shape_id || ' at ' || "
        "any_value(n.n) || ' separate places, so where the trips stop along it is ambiguous' AS message "
        "FROM n JOIN pat p USING (shape_id, stop_id) GROUP BY p.key, p.shape_id, p.stop_id"
    )


def _out_of_order(ctx: Context) -> str:
    # Patterns whose every stop has a potential match; then the earliest feasible position stop by stop.
    return (
        f"WITH RECURSIVE {_pairs(ctx)}{_matched(ctx)}, "
        "ok AS (SELECT p.key FROM pat p LEFT JOIN (SELECT DISTINCT shape_id AS xs, stop_id AS xt FROM m) x "
        "ON x.xs = p.shape_id AND x.xt = p.stop_id GROUP BY p.key HAVING count(*) = count(x.xt)), "
        "c AS (SELECT p.key, p.k, m.geo FROM pat p JOIN m USING (shape_id, stop_id) WHERE p.key IN (SELECT key FROM ok)), "
        "r(key, k, f) AS (SELECT key, 1, min(geo) FROM c WHERE k = 1 GROUP BY key "
        "UNION ALL SELECT r.key, r.k + 1, (SELECT min(c.geo) FROM c WHERE c.key = r.key AND c.k = r.k + 1 AND c.geo >= r.f) "
        "FROM r WHERE r.f IS NOT NULL AND r.k < (SELECT max(k) FROM c WHERE c.key = r.key)), "
        "bad AS (SELECT key, min(k) AS k FROM r WHERE f IS NULL GROUP BY key) "
        "SELECT 'stop_times.txt' AS file, b.line, 'stop_id' AS field, b.stop_id AS value, "
        "'trip_id ' || b.trip_id || ': stop_id ' || b.stop_id || coalesce(' (' || b.stop_name || ')', '') || ' lies before stop_id ' || "
        "a.stop_id || coalesce(' (' || a.stop_name || ')', '') || ' along shape_id ' || b.shape_id || ', though the trip calls there after it' AS message "
        "FROM bad JOIN pat b ON b.key = bad.key AND b.k = bad.k JOIN pat a ON a.key = bad.key AND a.k = bad.k - 1"
    )


def _too_far_user_distance(ctx: Context) -> str:
    # Each stop with shape_dist_traveled is placed between the last shape point at or before that distance and
    # the next one (linear interpolation), on patterns whose last stop and whose shape's last point have a
    # distance above 0. Stops stop_too_far_from_shape already reports (no segment within reach) are left out; that
    # geometric check runs for the stops found too far only.
    return (
        f"WITH {_pairs(ctx)}, "
        "sh AS (SELECT shape_id FROM seg GROUP BY shape_id HAVING arg_max(ud, i) > 0), "
        "pu AS (SELECT * FROM pat WHERE shape_id IN (SELECT shape_id FROM sh) AND key IN "
        "(SELECT key FROM pat GROUP BY key HAVING arg_max(sd, k) > 0) AND sd IS NOT NULL AND lat IS NOT NULL AND lon IS NOT NULL), "
        "pos AS (SELECT pu.key, pu.k, pu.shape_id, pu.stop_id, pu.line, pu.stop_name, pu.lat, pu.lon, pu.sd, "
        "coalesce(max(s.i), 1) AS i FROM pu LEFT JOIN seg s ON s.shape_id = pu.shape_id AND s.ud <= pu.sd "
        "GROUP BY ALL), "
        "loc AS (SELECT pos.*, s.lat AS a_lat, s.lon AS a_lon, s.ud AS a_ud, n.lat AS b_lat, n.lon AS b_lon, n.ud AS b_ud "
        "FROM pos JOIN seg s ON s.shape_id = pos.shape_id AND s.i = pos.i LEFT JOIN seg n ON n.shape_id = pos.shape_id AND n.i = pos.i + 1), "
        "f AS (SELECT *, CASE WHEN b_ud IS NULL OR abs(b_ud - a_ud) < 1e-9 THEN 0 ELSE (sd - a_ud) / (b_ud - a_ud) END AS fr FROM loc), "
        "dd AS (SELECT *, haversine_m(lat, lon, a_lat + fr * (coalesce(b_lat, a_lat) - a_lat), a_lon + fr * (coalesce(b_lon, a_lon) - a_lon)) AS d FROM f), "
        f"cand AS (SELECT p.* FROM pairs p SEMI JOIN (SELECT shape_id, stop_id FROM dd WHERE d > {MAX_M}) x USING (shape_id, stop_id))"
        f"{_matches('cand')}, "
        "geo_far AS (SELECT shape_id, stop_id FROM cand EXCEPT SELECT shape_id, stop_id FROM m) "
        "SELECT 'stop_times.txt' AS file, min(line) AS line, 'shape_dist_traveled' AS field, stop_id AS value, "
        "'stop_id ' || stop_id || coalesce(' (' || any_value(stop_name) || ')', '') || ' is ' || printf('%.0f', max(d)) || "
        f"' m from the point of shape_id ' || shape_id || ' at its shape_dist_traveled, more than {MAX_M:g} m' AS message "
        f"FROM dd ANTI JOIN geo_far USING (shape_id, stop_id) WHERE d > {MAX_M} GROUP BY shape_id, stop_id"
    )


RULES: list[Rule] = [
    Rule("stop_has_too_many_matches_for_shape", WARNING,
         "A stop is near its trips' shape at more than 20 separate places (loops, back and forth), so where the trips stop along the shape is ambiguous.",
         ("file", "line", "stop_id", "shape_id"), _too_many_matches, needs=("shapes", "stop_times", "stops"),
         fix="Check the shape for needless loops near the stop, and the stop's coordinates.",
         why_ja="停留所が、便の経路 (shape) の 20 か所以上と近接しており（往復やループ）、経路上のどこに停車するのか決められません。",
         fix_ja="停留所付近の経路に不要なループがないか、停留所の座標が正しいかを確認してください。"),
    Rule("stops_match_shape_out_of_order", WARNING,
         "Along a trip's shape, a stop lies before the stop the trip calls at just before it, so the stops, the shape or the stop order are wrong.",
         ("file", "line", "trip_id", "stop_id"), _out_of_order, needs=("shapes", "stop_times", "stops"),
         fix="Check the stops' coordinates, the shape's direction and points, and the stop_sequence of the trip.",
         why_ja="便の経路 (shape) に沿って見ると、ある停留所が一つ前に停車する停留所より手前にあります。停留所の位置・経路・停車順のいずれかが誤っています。",
         fix_ja="停留所の座標、経路の向きと点、便の stop_sequence を確認してください。"),
    Rule("stop_too_far_from_shape_using_user_distance", WARNING,
         "Placed on its shape by shape_dist_traveled, a stop is more than 100 m from where it stands, so the distances or the stop are wrong.",
         ("file", "line", "stop_id", "shape_dist_traveled"), _too_far_user_distance, needs=("shapes", "stop_times", "stops"),
         fix="Recompute shape_dist_traveled of the stop_times in the shape's unit, or correct the stop's coordinates.",
         why_ja="stop_times の shape_dist_traveled で経路 (shape) 上に置いた位置が、停留所の座標から 100 m 以上離れています。距離か停留所の位置が誤っています。",
         fix_ja="stop_times の shape_dist_traveled を経路と同じ単位で計算し直すか、停留所の座標を直してください。"),
]
