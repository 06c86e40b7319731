"""Rules on stops: locations, the station hierarchy, names, use by trips, and stops that duplicate each other.

Stops closer than a few metres are found with a grid: each stop falls in a cell a little larger
than the distance searched, and is compared only with the stops of its own and the 8
neighbouring cells (an equi-join), never with every other stop.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule

#: location_type with the default (empty = 0, a stop or platform) applied.
LT = "coalesce(location_type, 0)"
#: FeedValidator measures with an earth radius of 6378135 m (haversine); its own checks (stops too close, too far
#: from the parent station) use the same, so that a stop 100.04 m away for it is not 99.93 m for us.
FV_EARTH = 6378135.0 / 6371008.8
TYPE_NAMES = "['stop or platform', 'station', 'entrance or exit', 'generic node', 'boarding area']"


def _type_name(col: str) -> str:
    return f"{TYPE_NAMES}[{col} + 1]"


def _label(alias: str = "") -> str:
    """Return SQL text 'stop_id X (name)' for a stops row."""
    p = f"{alias}." if alias else ""
    return f"('stop_id ' || {p}stop_id || coalesce(' (' || {p}stop_name || ')', ''))"


def _stop_without_location(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, CASE WHEN stop_lat IS NULL THEN 'stop_lat' ELSE 'stop_lon' END AS field, NULL AS value, "
        f"{_label()} || ' is a ' || {_type_name(LT)} || ' without ' || "
        "CASE WHEN stop_lat IS NULL AND stop_lon IS NULL THEN 'stop_lat and stop_lon' WHEN stop_lat IS NULL THEN 'stop_lat' ELSE 'stop_lon' END AS message "
        f"FROM stops WHERE {LT} IN (0, 1, 2) AND (stop_lat IS NULL OR stop_lon IS NULL)"
    )


def _missing_stop_name(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_name' AS field, NULL AS value, "
        f"'stop_id ' || stop_id || ' is a ' || {_type_name(LT)} || ' without stop_name' AS message "
        f"FROM stops WHERE {LT} IN (0, 1, 2) AND (stop_name IS NULL OR trim(stop_name) = '')"
    )


def _points(where: str) -> str:
    """Return SQL of every point of stops and shapes matching ``where`` (lat, lon)."""
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_lat' AS field, stop_lat || ',' || stop_lon AS value, "
        f"{_label()} || ' is at ' || stop_lat || ', ' || stop_lon AS message FROM stops "
        f"WHERE {where.format(lat='stop_lat', lon='stop_lon')} "
        "UNION ALL SELECT 'shapes.txt', _line, 'shape_pt_lat', shape_pt_lat || ',' || shape_pt_lon, "
        "'shape_id ' || shape_id || ' point ' || shape_pt_sequence || ' is at ' || shape_pt_lat || ', ' || shape_pt_lon FROM shapes "
        f"WHERE {where.format(lat='shape_pt_lat', lon='shape_pt_lon')}"
    )


def _point_near_origin(ctx: Context) -> str:
    return _points("abs({lat}) <= 1 AND abs({lon}) <= 1")


def _point_near_pole(ctx: Context) -> str:
    return _points("abs({lat}) >= 89")


def _location_without_parent(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'parent_station' AS field, NULL AS value, "
        f"{_label()} || ' is a ' || {_type_name(LT)} || ' (location_type ' || {LT} || ') and must have a parent_station' AS message "
        f"FROM stops WHERE {LT} IN (2, 3, 4) AND parent_station IS NULL"
    )


def _station_with_parent(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'parent_station' AS field, parent_station AS value, "
        f"{_label()} || ' is a station (location_type 1) but has parent_station ' || parent_station AS message "
        f"FROM stops WHERE {LT} = 1 AND parent_station IS NOT NULL"
    )


def _wrong_parent_type(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, c._line AS line, 'parent_station' AS field, c.parent_station AS value, "
        f"{_label('c')} || ' is a ' || {_type_name('coalesce(c.location_type, 0)')} || ' whose parent_station ' || p.stop_id || "
        f"' is a ' || {_type_name('coalesce(p.location_type, 0)')} || ' (location_type ' || coalesce(p.location_type, 0) || '), expected ' || "
        "CASE WHEN coalesce(c.location_type, 0) = 4 THEN 'a platform (location_type 0)' ELSE 'a station (location_type 1)' END AS message "
        "FROM stops c JOIN stops p ON p.stop_id = c.parent_station "
        "WHERE coalesce(c.location_type, 0) <> 1 AND coalesce(p.location_type, 0) <> CASE WHEN coalesce(c.location_type, 0) = 4 THEN 0 ELSE 1 END"
    )


def _platform_without_parent(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'parent_station' AS field, platform_code AS value, "
        f"{_label()} || ' has platform_code ' || platform_code || ' but no parent_station' AS message "
        f"FROM stops WHERE {LT} = 0 AND platform_code IS NOT NULL AND parent_station IS NULL"
    )


def _stop_without_zone_id(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'zone_id' AS field, NULL AS value, "
        f"{_label()} || ' has no zone_id, but fare_rules.txt sets fares by zone' AS message "
        f"FROM stops WHERE {LT} = 0 AND zone_id IS NULL "
        "AND EXISTS (SELECT 1 FROM fare_rules WHERE origin_id IS NOT NULL OR destination_id IS NOT NULL OR contains_id IS NOT NULL)"
    )


def _same_name_and_description(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_desc' AS field, stop_desc AS value, "
        "'stop_id ' || stop_id || ': stop_desc repeats stop_name ' || stop_name AS message "
        "FROM stops WHERE stop_desc IS NOT NULL AND lower(trim(stop_desc)) = lower(trim(stop_name))"
    )


def _same_stop_and_url(other: str) -> str:
    table, col = ("agency", "agency_url") if other == "agency" else ("routes", "route_url")
    key = "coalesce(agency_id, agency_name)" if other == "agency" else "route_id"

    def sql(ctx: Context) -> str:
        return (
            "SELECT 'stops.txt' AS file, s._line AS line, 'stop_url' AS field, s.stop_url AS value, "
            f"'stop_id ' || s.stop_id || ' has the same stop_url as the {col} of {other} ' || first(o.k) AS message "
            f"FROM stops s JOIN (SELECT {key} AS k, {col} AS u FROM {table}) o ON lower(trim(o.u)) = lower(trim(s.stop_url)) "
            "GROUP BY s._line, s.stop_id, s.stop_url"
        )

    return sql


def _stop_without_stop_time(ctx: Context) -> str:
    # GTFS-Flex: a stop in a location group (location_group_stops.txt) is served through the group, as MobilityData's
    # LocationHasStopTimesValidator counts it
    grouped = (" AND stop_id NOT IN (SELECT stop_id FROM location_group_stops WHERE stop_id IS NOT NULL)"
               if "location_group_stops" in ctx.present else "")
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, stop_id AS value, "
        f"{_label()} || ' is not used by any trip (no row of stop_times.txt refers to it)' AS message "
        f"FROM stops WHERE {LT} = 0 AND stop_id NOT IN (SELECT DISTINCT stop_id FROM stop_times WHERE stop_id IS NOT NULL){grouped}"
    )


def _unused_parent_station(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'stop_id' AS field, stop_id AS value, "
        f"{_label()} || ' is a station but no stop or platform has it as parent_station' AS message "
        f"FROM stops WHERE {LT} = 1 AND stop_id NOT IN (SELECT parent_station FROM stops WHERE {LT} = 0 AND parent_station IS NOT NULL)"
    )


def _unused_station(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, s._line AS line, 'stop_id' AS field, s.stop_id AS value, "
        f"{_label('s')} || CASE WHEN c.n IS NULL THEN ' is a station with no stops or platforms, so no trip uses it' "
        "ELSE ' is a station whose ' || c.n || ' stop(s) are used by no trip' END AS message "
        f"FROM stops s LEFT JOIN (SELECT parent_station, count(*) AS n, count(*) FILTER (WHERE stop_id IN (SELECT DISTINCT stop_id FROM stop_times)) AS used "
        f"FROM stops WHERE {LT} = 0 AND parent_station IS NOT NULL GROUP BY parent_station) c ON c.parent_station = s.stop_id "
        f"WHERE coalesce(s.location_type, 0) = 1 AND coalesce(c.used, 0) = 0"
    )


def _stop_too_far_from_parent(ctx: Context) -> str:
    limit = float(ctx.param("stop_too_far_from_parent_station_m", 100.0))
    return (
        "SELECT 'stops.txt' AS file, line, 'parent_station' AS field, parent_station AS value, "
        "label || ' is ' || CAST(round(d, 2) AS VARCHAR) || ' m from its parent station stop_id ' || parent_station || "
        f"coalesce(' (' || pname || ')', '') || ', more than {limit:g} m' AS message FROM ("
        f"SELECT c._line AS line, c.parent_station, {_label('c')} AS label, p.stop_name AS pname, "
        f"haversine_m(c.stop_lat, c.stop_lon, p.stop_lat, p.stop_lon) * {FV_EARTH} AS d "
        "FROM stops c JOIN stops p ON p.stop_id = c.parent_station WHERE coalesce(p.location_type, 0) = 1 "
        f"AND coalesce(c.location_type, 0) IN (0, 2)) WHERE d > {limit}"
    )


def stops_close_pairs(limit_m: float, where: str = "TRUE") -> str:
    """Return SQL of every pair (a, b) of stops less than ``limit_m`` apart, a.stop_id < b.stop_id, with ``d`` in metres.

    Set-based: stops are bucketed in a grid of cells at least ``limit_m`` wide; each stop is
    joined with the stops of its cell and the 8 around it.
    """
    return (
        f"WITH p AS (SELECT stop_id, stop_name, _line, {LT} AS lt, parent_station, stop_lat AS lat, stop_lon AS lon FROM stops "
        f"WHERE stop_lat IS NOT NULL AND stop_lon IS NOT NULL AND {where}), "
        f"g AS (SELECT {limit_m} / (111320.0 * greatest(cos(radians(least(coalesce(max(abs(lat)), 0), 89.0))), 0.01)) * 1.01 AS c FROM p), "
        "cells AS (SELECT p.*, CAST(floor(lat / g.c) AS BIGINT) AS cy, CAST(floor(lon / g.c) AS BIGINT) AS cx FROM p, g), "
        "probe AS (SELECT a.*, a.cy + dy AS ny, a.cx + dx AS nx FROM cells a, (VALUES (-1), (0), (1)) t1(dy), (VALUES (-1), (0), (1)) t2(dx)) "
        "SELECT a.stop_id AS a_id, a.stop_name AS a_name, a._line AS a_line, a.lt AS a_lt, a.parent_station AS a_parent, "
        "b.stop_id AS b_id, b.stop_name AS b_name, b._line AS b_line, b.lt AS b_lt, b.parent_station AS b_parent, "
        f"haversine_m(a.lat, a.lon, b.lat, b.lon) * {FV_EARTH} AS d "
        "FROM probe a JOIN cells b ON b.cy = a.ny AND b.cx = a.nx AND a.stop_id < b.stop_id "
        f"WHERE haversine_m(a.lat, a.lon, b.lat, b.lon) * {FV_EARTH} < {limit_m}"
    )


def _stops_too_close(ctx: Context) -> str:
    limit = float(ctx.param("stops_too_close_m", 2.0))
    return (
        "SELECT 'stops.txt' AS file, greatest(a_line, b_line) AS line, 'stop_id' AS field, b_id AS value, "
        "CASE WHEN a_lt = 0 AND b_lt = 0 THEN 'The stops ' WHEN a_lt = 1 AND b_lt = 1 THEN 'The stations ' ELSE 'The stop and the station ' END || "
        "'stop_id ' || a_id || coalesce(' \"' || a_name || '\"', '') || ' and stop_id ' || b_id || coalesce(' \"' || b_name || '\"', '') || "
        "' are ' || printf('%.2f', d) || ' m apart and probably represent the same location' || "
        "CASE WHEN a_lt <> b_lt THEN ' (the station is not the parent_station of the stop)' ELSE '' END AS message "
        f"FROM ({stops_close_pairs(limit, f'{LT} IN (0, 1)')}) "
        "WHERE a_lt = b_lt OR (a_lt = 0 AND coalesce(a_parent, '') <> b_id) OR (b_lt = 0 AND coalesce(b_parent, '') <> a_id)"
    )


RULES: list[Rule] = [
    Rule("stop_without_location", ERROR, "A stop, station or entrance has no stop_lat or stop_lon; GTFS requires coordinates for location_type 0, 1 and 2.",
         ("file", "line", "stop_lat", "stop_lon"), _stop_without_location, needs=("stops",),
         fix="Add the stop's latitude and longitude (WGS84, decimal degrees), e.g. from a map.",
         why_ja="停留所・駅・出入口に緯度 (stop_lat) または経度 (stop_lon) がありません。location_type 0・1・2 では座標が必須です。",
         fix_ja="地図などで位置を確認し、緯度・経度（世界測地系の十進数）を入力してください。"),
    Rule("missing_stop_name", ERROR, "A stop, station or entrance has no stop_name; GTFS requires a name for location_type 0, 1 and 2.",
         ("file", "line", "stop_name"), _missing_stop_name, needs=("stops",),
         fix="Give the stop the name riders see on the pole or sign.",
         why_ja="停留所・駅・出入口に名称 (stop_name) がありません。location_type 0・1・2 では名称が必須です。",
         fix_ja="標柱や案内に書かれている停留所名を入力してください。"),
    Rule("point_near_origin", ERROR, "A stop or shape point lies within one degree of latitude 0, longitude 0, which almost always means the coordinates are missing or swapped.",
         ("file", "line", "stop_lat", "shape_pt_lat"), _point_near_origin,
         fix="Enter the real coordinates; check that latitude and longitude are not zero or swapped.",
         why_ja="停留所または経路の点が緯度 0・経度 0 の付近にあります。座標の入れ忘れや入れ違いがほとんどです。",
         fix_ja="正しい座標を入力し、緯度と経度が 0 や逆になっていないか確認してください。"),
    Rule("point_near_pole", ERROR, "A stop or shape point lies within one degree of a pole, which usually means latitude and longitude are swapped.",
         ("file", "line", "stop_lat", "shape_pt_lat"), _point_near_pole,
         fix="Check that latitude and longitude are not swapped (in Japan latitude is about 24-46, longitude 122-154).",
         why_ja="停留所または経路の点が北極・南極の付近にあります。緯度と経度が入れ違っていることが多いです。",
         fix_ja="緯度と経度が逆になっていないか確認してください（日本では緯度 24〜46、経度 122〜154 程度）。"),
    Rule("location_without_parent_station", ERROR, "An entrance, generic node or boarding area (location_type 2, 3, 4) has no parent_station, which GTFS requires.",
         ("file", "line", "parent_station"), _location_without_parent, needs=("stops",),
         fix="Set parent_station to the station (or, for a boarding area, the platform) it belongs to.",
         why_ja="出入口・通路の結節点・乗車位置 (location_type 2・3・4) に親駅 (parent_station) がありません。GTFS では必須です。",
         fix_ja="所属する駅（乗車位置ならホーム）の stop_id を parent_station に入力してください。"),
    Rule("station_with_parent_station", ERROR, "A station (location_type 1) has a parent_station; stations must be at the top of the hierarchy.",
         ("file", "line", "parent_station"), _station_with_parent, needs=("stops",),
         fix="Empty parent_station of the station, or correct its location_type if it is really a stop.",
         why_ja="駅 (location_type 1) に親駅 (parent_station) が指定されています。駅は最上位でなければなりません。",
         fix_ja="駅の parent_station を空欄にするか、実際は停留所なら location_type を直してください。"),
    Rule("wrong_parent_location_type", ERROR, "A stop's parent_station has the wrong location_type (a stop, entrance or node needs a station; a boarding area needs a platform).",
         ("file", "line", "parent_station"), _wrong_parent_type, needs=("stops",),
         fix="Point parent_station to a station (location_type 1), or for a boarding area to a platform (location_type 0).",
         why_ja="親駅 (parent_station) の種別が正しくありません（停留所・出入口・結節点の親は駅、乗車位置の親はホームでなければなりません）。",
         fix_ja="parent_station には駅 (location_type 1) を、乗車位置の場合はホーム (location_type 0) を指定してください。"),
    Rule("platform_without_parent_station", INFO, "A platform (a stop with platform_code) has no parent_station, so apps cannot group it with its station.",
         ("file", "line", "parent_station"), _platform_without_parent, needs=("stops",),
         fix="Add the station as a location_type 1 row and set it as the platform's parent_station.",
         why_ja="のりば番号 (platform_code) のある停留所に親駅 (parent_station) がなく、アプリで駅とまとめて表示できません。",
         fix_ja="駅を location_type 1 の行として追加し、のりばの parent_station に指定してください。"),
    Rule("stop_without_zone_id", INFO, "A stop has no zone_id although fare_rules.txt sets fares by zone, so fares from or to it cannot be computed.",
         ("file", "line", "zone_id"), _stop_without_zone_id, needs=("stops", "fare_rules"),
         fix="Give every stop the zone_id of its fare zone.",
         why_ja="fare_rules.txt がゾーン制の運賃を定めているのに、この停留所に運賃ゾーン (zone_id) がなく、運賃を計算できません。",
         fix_ja="すべての停留所に運賃ゾーンの zone_id を入力してください。"),
    Rule("same_name_and_description_for_stop", WARNING, "A stop's stop_desc repeats its stop_name, which adds nothing for riders.",
         ("file", "line", "stop_desc"), _same_name_and_description, needs=("stops",),
         fix="Empty stop_desc, or describe the stop (side of the street, landmark).",
         why_ja="停留所の説明 (stop_desc) が停留所名 (stop_name) と同じで、利用者に役立つ情報になっていません。",
         fix_ja="stop_desc を空欄にするか、道路のどちら側か・目印などの説明を書いてください。"),
    Rule("same_stop_and_agency_url", WARNING, "A stop's stop_url is the agency's URL; stop_url should be a page about that stop.",
         ("file", "line", "stop_url"), _same_stop_and_url("agency"), needs=("stops",),
         fix="Empty stop_url, or link to the stop's own page.",
         why_ja="停留所の URL (stop_url) が事業者の URL と同じです。stop_url はその停留所のページにしてください。",
         fix_ja="stop_url を空欄にするか、停留所ごとのページを指定してください。"),
    Rule("same_stop_and_route_url", WARNING, "A stop's stop_url is a route's URL; stop_url should be a page about that stop.",
         ("file", "line", "stop_url"), _same_stop_and_url("route"), needs=("stops",),
         fix="Empty stop_url, or link to the stop's own page.",
         why_ja="停留所の URL (stop_url) が路線の URL と同じです。stop_url はその停留所のページにしてください。",
         fix_ja="stop_url を空欄にするか、停留所ごとのページを指定してください。"),
    Rule("stop_without_stop_time", WARNING, "A stop (location_type 0) is used by no trip, so it only clutters maps and journey planners (FeedValidator: \"isn't used in any trips\").",
         ("file", "line", "stop_id"), _stop_without_stop_time, needs=("stops",),
         fix="Delete the unused stop, or add it to the stop_times of the trips that serve it.",
         why_ja="どの便も停車しない停留所 (location_type 0) です。地図や経路検索で利用者を惑わせます。",
         fix_ja="使わない停留所は削除するか、停車する便の stop_times に追加してください。"),
    Rule("unused_parent_station", INFO, "A station (location_type 1) is the parent_station of no stop or platform.",
         ("file", "line", "stop_id"), _unused_parent_station, needs=("stops",),
         fix="Set the station as parent_station of its stops, or delete it.",
         why_ja="どの停留所・のりばの親駅 (parent_station) にもなっていない駅 (location_type 1) です。",
         fix_ja="所属する停留所の parent_station にこの駅を指定するか、駅の行を削除してください。"),
    Rule("unused_station", INFO, "None of a station's stops or platforms is used by any trip.",
         ("file", "line", "stop_id"), _unused_station, needs=("stops",),
         fix="Delete the station and its stops if no service calls there any more.",
         why_ja="この駅に属する停留所・のりばに停車する便が一本もありません。",
         fix_ja="もう運行がないなら、駅とその停留所を削除してください。"),
    Rule("stop_too_far_from_parent_station", WARNING, "A stop or entrance is more than 100 m from its parent station, so one of them is probably misplaced (FeedValidator's check).",
         ("file", "line", "parent_station"), _stop_too_far_from_parent, needs=("stops",),
         fix="Check the coordinates of the stop and of its station, and that parent_station is the right station.",
         why_ja="停留所・出入口が親駅から 100 m 以上離れています。どちらかの位置か、親駅の指定が誤っている可能性があります。",
         fix_ja="停留所と駅の座標、および parent_station が正しい駅か確認してください。"),
    Rule("stops_too_close", WARNING, "Two stops (or two stations, or a stop and a station that is not its parent) are less than 2 m apart and probably represent the same location (FeedValidator's check).",
         ("file", "line", "stop_id"), _stops_too_close, needs=("stops",),
         fix="Merge the two stops into one, or correct the coordinates of the one that is misplaced.",
         why_ja="二つの停留所（または駅同士、親子関係にない停留所と駅）が 2 m 未満しか離れておらず、同じ場所を重複して登録している可能性があります。",
         fix_ja="二つを一つの停留所にまとめるか、位置がずれている方の座標を直してください。"),
]
