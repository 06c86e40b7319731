"""Rules on shapes: distances along a shape, shapes no trip uses, trips longer than their shape, stops far from it.

The distance from a stop to its trip's shape is the shortest distance to any segment of the
shape, computed for each distinct (shape, stop) pair in a local flat projection (metres east
and north of the stop), set-based: one join of pairs with segments, one GROUP BY.
"""

from __future__ import annotations

from transforms.rules import stop_times
from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule

#: A trip's last stop within this distance of its shape's end may run slightly past it (a WARNING, not an ERROR).
TRIP_END_TOLERANCE_M = 11.1
#: A stop farther than this from the shape of a trip calling there is reported.
STOP_FAR_FROM_SHAPE_M = 100.0


def stop_shape_distance_sql(points: str, shapes: str = "SELECT * FROM shapes") -> str:
    """Return SQL of (pid, shape_id, d): the shortest distance in metres from each point to any segment of its shape.

    ``points`` is SQL with columns pid, shape_id, lat, lon; ``shapes`` is SQL with shape_id,
    shape_pt_lat, shape_pt_lon and shape_pt_sequence. Distances are in a local flat projection (metres
    east and north of the point), the same for the rule and for the merge's check before unifying stops.
    """
    return (
        f"WITH p AS ({points}), "
        "seg AS (SELECT shape_id, shape_pt_lat AS lat1, shape_pt_lon AS lon1, "
        "coalesce(lead(shape_pt_lat) OVER w, shape_pt_lat) AS lat2, coalesce(lead(shape_pt_lon) OVER w, shape_pt_lon) AS lon2 "
        f"FROM ({shapes}) WHERE shape_pt_lat IS NOT NULL AND shape_pt_lon IS NOT NULL AND shape_id IN (SELECT shape_id FROM p) "
        "WINDOW w AS (PARTITION BY shape_id ORDER BY shape_pt_sequence)), "
        "xy AS (SELECT p.pid, p.shape_id, "
        "(s.lon1 - p.lon) * 111320.0 * cos(radians(p.lat)) AS x1, (s.lat1 - p.lat) * 110540.0 AS y1, "
        "(s.lon2 - p.lon) * 111320.0 * cos(radians(p.lat)) AS x2, (s.lat2 - p.lat) * 110540.0 AS y2 "
        "FROM p JOIN seg s USING (shape_id)) "
        "SELECT pid, shape_id, min(sqrt(pow(x1 + tt * (x2 - x1), 2) + pow(y1 + tt * (y2 - y1), 2))) AS d FROM ("
        "SELECT *, CASE WHEN (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) = 0 THEN 0 "
        "ELSE greatest(0, least(1, -(x1 * (x2 - x1) + y1 * (y2 - y1)) / ((x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)))) END AS tt FROM xy) "
        "GROUP BY pid, shape_id"
    )


def _points() -> str:
    """Return SQL of shape points with the previous point of the same shape (p_lat, p_lon, p_dist, p_seq)."""
    w = "(PARTITION BY shape_id ORDER BY shape_pt_sequence)"
    return (
        f"SELECT *, lag(shape_pt_lat) OVER {w} AS p_lat, lag(shape_pt_lon) OVER {w} AS p_lon, "
        f"lag(shape_dist_traveled) OVER {w} AS p_dist, lag(shape_pt_sequence) OVER {w} AS p_seq, "
        "last_value(shape_dist_traveled IGNORE NULLS) OVER (PARTITION BY shape_id ORDER BY shape_pt_sequence "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS max_prev_dist "
        "FROM shapes WHERE shape_id IS NOT NULL AND shape_pt_sequence IS NOT NULL"
    )


def _decreasing_shape_distance(ctx: Context) -> str:
    return (
        "SELECT 'shapes.txt' AS file, _line AS line, 'shape_dist_traveled' AS field, CAST(shape_dist_traveled AS VARCHAR) AS value, "
        "'shape_id ' || shape_id || ': point ' || shape_pt_sequence || ' has shape_dist_traveled ' || shape_dist_traveled || "
        "', less than the ' || max_prev_dist || ' of an earlier point' AS message "
        f"FROM ({_points()}) WHERE shape_dist_traveled < max_prev_dist"
    )


def _equal_distance(kind: str):
    def sql(ctx: Context) -> str:
        limit = float(ctx.param("equal_shape_distance_threshold_m", 1.11))
        d = "haversine_m(p_lat, p_lon, shape_pt_lat, shape_pt_lon)"
        cond = {
            "same": "shape_pt_lat = p_lat AND shape_pt_lon = p_lon",
            "diff": f"NOT (shape_pt_lat = p_lat AND shape_pt_lon = p_lon) AND {d} >= {limit}",
            "below": f"NOT (shape_pt_lat = p_lat AND shape_pt_lon = p_lon) AND {d} < {limit}",
        }[kind]
        return (
            "SELECT 'shapes.txt' AS file, _line AS line, 'shape_dist_traveled' AS field, CAST(shape_dist_traveled AS VARCHAR) AS value, "
            "'shape_id ' || shape_id || ': points ' || p_seq || ' and ' || shape_pt_sequence || ' have the same shape_dist_traveled ' || shape_dist_traveled || "
            f"CASE WHEN shape_pt_lat = p_lat AND shape_pt_lon = p_lon THEN ' and the same coordinates' ELSE ' but are ' || printf('%.2f', {d}) || ' m apart' END AS message "
            f"FROM ({_points()}) WHERE shape_dist_traveled = p_dist AND {cond}"
        )

    return sql


def _unused_shape(ctx: Context) -> str:
    return (
        "SELECT 'shapes.txt' AS file, min(_line) AS line, 'shape_id' AS field, shape_id AS value, "
        "'shape_id ' || shape_id || ' (' || count(*) || ' points) is not used by any trip' AS message "
        "FROM shapes WHERE shape_id NOT IN (SELECT DISTINCT shape_id FROM trips WHERE shape_id IS NOT NULL) GROUP BY shape_id"
    )


def _single_shape_point(ctx: Context) -> str:
    return (
        "SELECT 'shapes.txt' AS file, min(_line) AS line, 'shape_id' AS field, shape_id AS value, "
        "'shape_id ' || shape_id || ' has a single point, so it draws no line' AS message "
        "FROM shapes GROUP BY shape_id HAVING count(*) = 1"
    )


def _trip_exceeds_shape(*, error: bool):
    def sql(ctx: Context) -> str:
        limit = float(ctx.param("trip_distance_exceeds_shape_threshold_m", TRIP_END_TOLERANCE_M))
        op = ">" if error else "<="
        return (
            "WITH sh AS (SELECT shape_id, max(shape_dist_traveled) AS max_d, arg_max(shape_pt_lat, shape_pt_sequence) AS lat, "
            "arg_max(shape_pt_lon, shape_pt_sequence) AS lon FROM shapes GROUP BY shape_id HAVING max(shape_dist_traveled) IS NOT NULL), "
            "tr AS (SELECT st.trip_id, max(st.shape_dist_traveled) AS max_d, arg_max(st.stop_id, st.shape_dist_traveled) AS stop_id, "
            "arg_max(st._line, st.shape_dist_traveled) AS line FROM stop_times st WHERE st.shape_dist_traveled IS NOT NULL GROUP BY st.trip_id), "
            "x AS (SELECT t.trip_id, t.shape_id, tr.max_d AS trip_d, tr.line, tr.stop_id, sh.max_d AS shape_d, "
            "haversine_m(s.stop_lat, s.stop_lon, sh.lat, sh.lon) AS gap FROM trips t JOIN tr USING (trip_id) JOIN sh USING (shape_id) "
            "LEFT JOIN stops s ON s.stop_id = tr.stop_id WHERE tr.max_d > sh.max_d) "
            "SELECT 'stop_times.txt' AS file, line, 'shape_dist_traveled' AS field, CAST(trip_d AS VARCHAR) AS value, "
            "'trip_id ' || trip_id || ' reaches shape_dist_traveled ' || trip_d || ' at stop_id ' || stop_id || ', beyond the end of shape_id ' || shape_id || "
            "' (' || shape_d || '); the stop is ' || coalesce(printf('%.1f', gap), '?') || ' m from the end of the shape' AS message "
            f"FROM x WHERE coalesce(gap, {limit + 1}) {op} {limit}"
        )

    return sql


def _no_shape_distances(ctx: Context) -> str:
    return (
        "SELECT 'trips.txt' AS file, t._line AS line, 'shape_id' AS field, t.shape_id AS value, "
        "'trip_id ' || t.trip_id || ' gives shape_dist_traveled in stop_times.txt, but its shape_id ' || t.shape_id || ' has none in shapes.txt' AS message "
        "FROM trips t WHERE t.trip_id IN (SELECT DISTINCT trip_id FROM stop_times WHERE shape_dist_traveled IS NOT NULL) "
        "AND t.shape_id IN (SELECT shape_id FROM shapes GROUP BY shape_id HAVING count(shape_dist_traveled) = 0)"
    )


def _stop_too_far_from_shape(ctx: Context) -> str:
    limit = float(ctx.param("stop_too_far_from_shape_m", STOP_FAR_FROM_SHAPE_M))
    # Each (shape, stop) with its first line, first trip and number of trips. When every stop time is in the shared pass (each
    # has a trip_id and a stop_sequence), a trip is counted at its first stop time at the stop (first_visit) rather than by
    # count(DISTINCT trip_id) (1.6 of 1.9 CPU-s at Vilnius x16); only located stops (first_visit not NULL) can be reported.
    # The pass carries each trip's shape by number (shape_k): its rows are grouped by that integer and the few groups named,
    # rather than every stop time joined to trips for its shape_id (0.69 → 0.18 CPU-s for that part at ×16).
    pass_ = stop_times.stop_pass(ctx)
    whole = stop_times.pass_holds_all(ctx)
    return (
        "WITH used AS (SELECT k.shape_id, u.stop_id, u.line, u.trip_id, u.trips FROM (SELECT shape_k, stop_id, min(_line) AS line, "
        f"min(trip_id) AS trip_id, count_if(first_visit) AS trips FROM {pass_} WHERE {whole} AND shape_k IS NOT NULL "
        f"AND stop_id IS NOT NULL AND located GROUP BY shape_k, stop_id) u JOIN ({stop_times.SHAPE_KEYS}) k USING (shape_k) "
        "UNION ALL SELECT t.shape_id, st.stop_id, min(st._line) AS line, min(t.trip_id) AS trip_id, count(DISTINCT t.trip_id) AS trips "
        f"FROM stop_times st JOIN trips t USING (trip_id) WHERE NOT {whole} AND t.shape_id IS NOT NULL AND st.stop_id IS NOT NULL "
        "GROUP BY t.shape_id, st.stop_id), "
        "pts AS (SELECT u.*, s.stop_name, s.stop_lat AS lat, s.stop_lon AS lon FROM used u JOIN stops s USING (stop_id) "
        "WHERE s.stop_lat IS NOT NULL AND s.stop_lon IS NOT NULL AND u.shape_id IN (SELECT shape_id FROM shapes)), "
        f"dist AS ({stop_shape_distance_sql('SELECT stop_id AS pid, shape_id, lat, lon FROM pts')}) "
        "SELECT 'stop_times.txt' AS file, p.line, 'stop_id' AS field, p.stop_id AS value, "
        "'stop_id ' || p.stop_id || coalesce(' (' || p.stop_name || ')', '') || ' is ' || printf('%.0f', d.d) || ' m from shape_id ' || p.shape_id || "
        f"' of the ' || p.trips || ' trip(s) calling there (e.g. trip_id ' || p.trip_id || '), more than {limit:g} m' AS message "
        f"FROM pts p JOIN dist d ON d.pid = p.stop_id AND d.shape_id = p.shape_id WHERE d.d > {limit}"
    )


RULES: list[Rule] = [
    Rule("decreasing_shape_distance", ERROR, "Along a shape, a point's shape_dist_traveled is less than an earlier point's, so distances go backwards.",
         ("file", "line", "shape_id", "shape_pt_sequence", "shape_dist_traveled"), _decreasing_shape_distance, needs=("shapes",),
         fix="Recompute shape_dist_traveled so that it grows along the shape, or check shape_pt_sequence.",
         why_ja="経路 (shape) の途中で shape_dist_traveled（起点からの距離）が前の点より小さくなっています。",
         fix_ja="経路に沿って増えていくように shape_dist_traveled を計算し直すか、shape_pt_sequence の順序を確認してください。"),
    Rule("equal_shape_distance_same_coordinates", WARNING, "Two consecutive points of a shape repeat the same place and shape_dist_traveled; one is redundant.",
         ("file", "line", "shape_id", "shape_pt_sequence"), _equal_distance("same"), needs=("shapes",),
         fix="Delete the repeated point.",
         why_ja="経路 (shape) の連続する二点が、同じ座標・同じ shape_dist_traveled の重複になっています。",
         fix_ja="重複している点を削除してください。"),
    Rule("equal_shape_distance_diff_coordinates", ERROR, "Two consecutive points of a shape have the same shape_dist_traveled but are in different places, so distances along the shape are wrong.",
         ("file", "line", "shape_id", "shape_pt_sequence"), _equal_distance("diff"), needs=("shapes",),
         fix="Recompute shape_dist_traveled from the distances between points.",
         why_ja="経路 (shape) の連続する二点の位置が違うのに shape_dist_traveled が同じで、距離が正しくありません。",
         fix_ja="点の間の距離から shape_dist_traveled を計算し直してください。"),
    Rule("equal_shape_distance_diff_coordinates_distance_below_threshold", WARNING, "Two consecutive points of a shape have the same shape_dist_traveled and are less than about a metre apart (a rounding of distances).",
         ("file", "line", "shape_id", "shape_pt_sequence"), _equal_distance("below"), needs=("shapes",),
         fix="Write shape_dist_traveled with more decimals, or delete the nearly repeated point.",
         why_ja="経路 (shape) の連続する二点が 1 m ほどしか離れておらず、shape_dist_traveled が同じです（距離の丸めによるもの）。",
         fix_ja="shape_dist_traveled の小数の桁を増やすか、ほぼ重複している点を削除してください。"),
    Rule("unused_shape", WARNING, "A shape is used by no trip.",
         ("file", "line", "shape_id"), _unused_shape, needs=("shapes",),
         fix="Delete the shape, or set it as the shape_id of the trips that follow it.",
         why_ja="どの便にも使われていない経路 (shape) です。",
         fix_ja="経路を削除するか、その経路を走る便の shape_id に指定してください。"),
    Rule("single_shape_point", WARNING, "A shape has a single point, so it cannot draw the route.",
         ("file", "line", "shape_id"), _single_shape_point, needs=("shapes",),
         fix="Add the shape's other points, or delete it and its use by trips.",
         why_ja="経路 (shape) の点が一つしかなく、線を描けません。",
         fix_ja="経路の残りの点を追加するか、経路と便からの参照を削除してください。"),
    Rule("trip_distance_exceeds_shape_distance", ERROR, "A trip's last shape_dist_traveled is beyond the end of its shape, and its last stop is far from the shape's end.",
         ("file", "line", "trip_id", "shape_dist_traveled"), _trip_exceeds_shape(error=True), needs=("shapes", "stop_times"),
         fix="Extend the shape to the trip's last stop, or correct shape_dist_traveled in stop_times.txt.",
         why_ja="便の最後の shape_dist_traveled が経路 (shape) の終点を越えており、最後の停留所も経路の終点から離れています。",
         fix_ja="経路を最後の停留所まで延ばすか、stop_times.txt の shape_dist_traveled を直してください。"),
    Rule("trip_distance_exceeds_shape_distance_below_threshold", WARNING, "A trip's last shape_dist_traveled is slightly beyond the end of its shape, though its last stop is at the shape's end.",
         ("file", "line", "trip_id", "shape_dist_traveled"), _trip_exceeds_shape(error=False), needs=("shapes", "stop_times"),
         fix="Make shape_dist_traveled of the last stop at most the shape's last distance (rounding).",
         why_ja="便の最後の shape_dist_traveled が経路 (shape) の終点をわずかに越えています（停留所は経路の終点にあります）。",
         fix_ja="最後の停留所の shape_dist_traveled を経路の最終距離以下にしてください（丸めの誤差）。"),
    Rule("trip_with_shape_dist_traveled_but_no_shape_distances", INFO, "A trip gives shape_dist_traveled for its stops but its shape gives none, so the distances cannot be placed on the shape.",
         ("file", "line", "trip_id", "shape_id"), _no_shape_distances, needs=("shapes", "stop_times"),
         fix="Add shape_dist_traveled to the shape's points (same unit), or remove it from stop_times.txt.",
         why_ja="便の stop_times には shape_dist_traveled があるのに、経路 (shape) にはなく、距離を経路上に対応付けられません。",
         fix_ja="経路の点にも同じ単位で shape_dist_traveled を追加するか、stop_times.txt から削除してください。"),
    Rule("stop_too_far_from_shape", WARNING, "A stop is more than 100 m from the shape of a trip that calls there, so the stop or the shape is misplaced.",
         ("file", "line", "stop_id", "shape_id"), _stop_too_far_from_shape, needs=("shapes", "stop_times", "stops"),
         fix="Check the stop's coordinates, and that the trip has the right shape_id and the shape follows the road.",
         why_ja="停留所が、そこに停車する便の経路 (shape) から 100 m 以上離れています。停留所か経路の位置が誤っています。",
         fix_ja="停留所の座標、便の shape_id、経路が道路に沿っているかを確認してください。"),
]
