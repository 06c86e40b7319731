"""Rules on transfers, frequencies, pathways, levels and attributions."""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule



def _transfer_stop_type(ctx: Context) -> str:
    parts = []
    for side in ("from", "to"):
        parts.append(
            f"SELECT 'transfers.txt' AS file, t._line AS line, '{side}_stop_id' AS field, t.{side}_stop_id AS value, "
            f"'{side}_stop_id ' || t.{side}_stop_id || coalesce(' (' || s.stop_name || ')', '') || ' has location_type ' || s.location_type || "
            "'; a transfer must be between stops, platforms or stations (location_type 0 or 1)' AS message "
            f"FROM transfers t JOIN stops s ON s.stop_id = t.{side}_stop_id WHERE coalesce(s.location_type, 0) NOT IN (0, 1)"
        )
    return " UNION ALL ".join(parts)


def _transfer_trip_and_route(ctx: Context) -> str:
    parts = []
    for side in ("from", "to"):
        parts.append(
            f"SELECT 'transfers.txt' AS file, t._line AS line, '{side}_route_id' AS field, t.{side}_route_id AS value, "
            f"'{side}_trip_id ' || t.{side}_trip_id || ' belongs to route_id ' || tr.route_id || ', not to {side}_route_id ' || t.{side}_route_id AS message "
            f"FROM transfers t JOIN trips tr ON tr.trip_id = t.{side}_trip_id WHERE t.{side}_route_id IS NOT NULL AND tr.route_id <> t.{side}_route_id"
        )
    return " UNION ALL ".join(parts)


def _transfer_trip_and_stop(ctx: Context) -> str:
    parts = []
    for side in ("from", "to"):
        parts.append(
            f"SELECT 'transfers.txt' AS file, t._line AS line, '{side}_stop_id' AS field, t.{side}_stop_id AS value, "
            f"'{side}_trip_id ' || t.{side}_trip_id || ' does not call at {side}_stop_id ' || t.{side}_stop_id || ' (nor at a stop of that station)' AS message "
            f"FROM transfers t WHERE t.{side}_trip_id IS NOT NULL AND t.{side}_stop_id IS NOT NULL "
            f"AND t.{side}_trip_id IN (SELECT trip_id FROM trips) AND t.{side}_stop_id IN (SELECT stop_id FROM stops) "
            "AND NOT EXISTS (SELECT 1 FROM stop_times st JOIN stops s ON s.stop_id = st.stop_id "
            f"WHERE st.trip_id = t.{side}_trip_id AND (st.stop_id = t.{side}_stop_id OR s.parent_station = t.{side}_stop_id))"
        )
    return " UNION ALL ".join(parts)


def _mid_trip_in_seat(ctx: Context) -> str:
    edges = ("WITH e AS (SELECT st.trip_id, arg_min(st.stop_id, st.stop_sequence) AS first_stop, arg_max(st.stop_id, st.stop_sequence) AS last_stop "
             "FROM stop_times st GROUP BY st.trip_id) ")
    parts = []
    for side, edge, word in (("from", "last_stop", "last"), ("to", "first_stop", "first")):
        parts.append(
            f"SELECT 'transfers.txt' AS file, t._line AS line, '{side}_stop_id' AS field, t.{side}_stop_id AS value, "
            f"'in-seat transfer (transfer_type ' || t.transfer_type || ') at {side}_stop_id ' || t.{side}_stop_id || ' but the {word} stop of {side}_trip_id ' || "
            f"t.{side}_trip_id || ' is ' || e.{edge} AS message "
            f"FROM transfers t JOIN e ON e.trip_id = t.{side}_trip_id LEFT JOIN stops s ON s.stop_id = e.{edge} "
            f"WHERE t.transfer_type IN (4, 5) AND t.{side}_stop_id IS NOT NULL AND e.{edge} <> t.{side}_stop_id AND coalesce(s.parent_station, '') <> t.{side}_stop_id"
        )
    return edges + " UNION ALL ".join(parts)


def _transfer_distance(*, low: str, high: str | None):
    def sql(ctx: Context) -> str:
        lo = float(ctx.param(low, 2000 if low == "transfer_distance_info_m" else 10_000))
        cond = f"d > {lo}"
        if high:
            cond += f" AND d <= {float(ctx.param(high, 10_000))}"
        return (
            "SELECT 'transfers.txt' AS file, line, 'to_stop_id' AS field, to_id AS value, "
            "'transfer from stop_id ' || from_id || coalesce(' (' || a_name || ')', '') || ' to stop_id ' || to_id || coalesce(' (' || b_name || ')', '') || "
            "' covers ' || printf('%.1f', d / 1000) || ' km' AS message FROM ("
            "SELECT t._line AS line, t.from_stop_id AS from_id, t.to_stop_id AS to_id, a.stop_name AS a_name, b.stop_name AS b_name, "
            "haversine_m(a.stop_lat, a.stop_lon, b.stop_lat, b.stop_lon) AS d FROM transfers t "
            "JOIN stops a ON a.stop_id = t.from_stop_id JOIN stops b ON b.stop_id = t.to_stop_id) "
            f"WHERE {cond}"
        )

    return sql


def _overlapping_frequency(ctx: Context) -> str:
    return (
        "SELECT 'frequencies.txt' AS file, b._line AS line, 'start_time' AS field, gtfs_time(b.start_time) AS value, "
        "'trip_id ' || b.trip_id || ': the period ' || gtfs_time(b.start_time) || '-' || gtfs_time(b.end_time) || ' (line ' || b._line || ') overlaps ' || "
        "gtfs_time(a.start_time) || '-' || gtfs_time(a.end_time) || ' (line ' || a._line || ')' AS message "
        "FROM frequencies a JOIN frequencies b ON a.trip_id = b.trip_id AND a._line < b._line "
        "AND a.start_time < b.end_time AND b.start_time < a.end_time"
    )


def _pathway_wrong_type(ctx: Context) -> str:
    parts = []
    for side in ("from", "to"):
        parts.append(
            f"SELECT 'pathways.txt' AS file, p._line AS line, '{side}_stop_id' AS field, p.{side}_stop_id AS value, "
            f"'pathway_id ' || p.pathway_id || ' {side} stop_id ' || p.{side}_stop_id || ' is a station (location_type 1); pathways connect platforms, entrances, nodes and boarding areas' AS message "
            f"FROM pathways p JOIN stops s ON s.stop_id = p.{side}_stop_id WHERE coalesce(s.location_type, 0) = 1"
        )
    return " UNION ALL ".join(parts)


def _pathway_loop(ctx: Context) -> str:
    return (
        "SELECT 'pathways.txt' AS file, _line AS line, 'to_stop_id' AS field, to_stop_id AS value, "
        "'pathway_id ' || pathway_id || ' starts and ends at stop_id ' || from_stop_id AS message "
        "FROM pathways WHERE from_stop_id = to_stop_id"
    )


def _bidirectional_exit_gate(ctx: Context) -> str:
    return (
        "SELECT 'pathways.txt' AS file, _line AS line, 'is_bidirectional' AS field, CAST(is_bidirectional AS VARCHAR) AS value, "
        "'pathway_id ' || pathway_id || ' is an exit gate (pathway_mode 7) but is_bidirectional is 1' AS message "
        "FROM pathways WHERE pathway_mode = 7 AND is_bidirectional = 1"
    )


def _missing_level_id(ctx: Context) -> str:
    return (
        "SELECT 'stops.txt' AS file, _line AS line, 'level_id' AS field, NULL AS value, "
        "'stop_id ' || stop_id || ' is connected by pathways but has no level_id although levels.txt exists' AS message "
        "FROM stops WHERE level_id IS NULL AND stop_id IN (SELECT from_stop_id FROM pathways UNION SELECT to_stop_id FROM pathways)"
    )


def _attribution_without_role(ctx: Context) -> str:
    return (
        "SELECT 'attributions.txt' AS file, _line AS line, 'is_producer' AS field, NULL AS value, "
        "'attribution ' || coalesce(attribution_id, organization_name) || ' (' || organization_name || ') is neither producer, operator nor authority' AS message "
        "FROM attributions WHERE coalesce(is_producer, 0) = 0 AND coalesce(is_operator, 0) = 0 AND coalesce(is_authority, 0) = 0"
    )


RULES: list[Rule] = [
    Rule("transfer_with_invalid_stop_location_type", ERROR, "A transfer starts or ends at an entrance, node or boarding area; transfers connect stops, platforms or stations.",
         ("file", "line", "from_stop_id", "to_stop_id"), _transfer_stop_type, needs=("transfers",),
         fix="Use the stop, platform or station (location_type 0 or 1) instead.",
         why_ja="乗換 (transfers.txt) の乗換元・乗換先が出入口・結節点・乗車位置になっています。乗換は停留所・のりば・駅の間で定義します。",
         fix_ja="停留所・のりば・駅 (location_type 0 または 1) の stop_id を指定してください。"),
    Rule("transfer_with_invalid_trip_and_route", ERROR, "A transfer names a trip and a route, but the trip does not belong to that route.",
         ("file", "line", "from_trip_id", "from_route_id"), _transfer_trip_and_route, needs=("transfers",),
         fix="Correct the route_id or the trip_id (or leave the route_id empty when a trip is given).",
         why_ja="乗換で指定した便 (trip_id) が、同じ行で指定した路線 (route_id) に属していません。",
         fix_ja="route_id か trip_id を直してください（trip_id を指定するなら route_id は空欄でも構いません）。"),
    Rule("transfer_with_invalid_trip_and_stop", ERROR, "A transfer names a trip and a stop, but the trip does not call at that stop.",
         ("file", "line", "from_trip_id", "from_stop_id"), _transfer_trip_and_stop, needs=("transfers",),
         fix="Correct the stop_id or the trip_id of the transfer.",
         why_ja="乗換で指定した便 (trip_id) が、指定した停留所 (stop_id) に停車しません。",
         fix_ja="乗換の stop_id か trip_id を直してください。"),
    Rule("transfer_with_suspicious_mid_trip_in_seat", WARNING, "An in-seat transfer (transfer_type 4 or 5) is not at the last stop of the first trip or the first stop of the next one.",
         ("file", "line", "from_stop_id", "to_stop_id"), _mid_trip_in_seat, needs=("transfers",),
         fix="Put the in-seat transfer where the first trip ends and the next one starts.",
         why_ja="車内での乗継 (transfer_type 4・5) が、前の便の終点・次の便の始発以外の停留所で定義されています。",
         fix_ja="車内乗継は、前の便が終わり次の便が始まる停留所で定義してください。"),
    Rule("transfer_distance_too_large", WARNING, "A transfer connects two stops more than 10 km apart, which riders cannot walk.",
         ("file", "line", "from_stop_id", "to_stop_id"), _transfer_distance(low="transfer_distance_warning_m", high=None), needs=("transfers",),
         fix="Check the stop_ids and the coordinates of both stops.",
         why_ja="乗換の二つの停留所が 10 km 以上離れており、歩いて乗り換えられません。",
         fix_ja="二つの stop_id と座標を確認してください。"),
    Rule("transfer_distance_above_2_km", INFO, "A transfer connects two stops between 2 and 10 km apart.",
         ("file", "line", "from_stop_id", "to_stop_id"), _transfer_distance(low="transfer_distance_info_m", high="transfer_distance_warning_m"), needs=("transfers",),
         fix="Check that such a long transfer is intended.",
         why_ja="乗換の二つの停留所が 2〜10 km 離れています。",
         fix_ja="このように長い乗換が意図どおりか確認してください。"),
    Rule("overlapping_frequency", ERROR, "Two frequencies.txt periods of the same trip overlap, so the departures in the overlap are ambiguous.",
         ("file", "line", "trip_id", "start_time", "end_time"), _overlapping_frequency, needs=("frequencies",),
         fix="Make the periods follow each other (the end_time of one is the start_time of the next).",
         why_ja="frequencies.txt で同じ便の運行間隔の時間帯が重なっており、重なった時間の発車が曖昧です。",
         fix_ja="一つの時間帯の終了時刻が次の時間帯の開始時刻になるよう、重ならないようにしてください。"),
    Rule("pathway_to_wrong_location_type", ERROR, "A pathway starts or ends at a station (location_type 1); pathways connect locations inside a station.",
         ("file", "line", "from_stop_id", "to_stop_id"), _pathway_wrong_type, needs=("pathways",),
         fix="Connect the pathway to the station's entrance, platform or node instead.",
         why_ja="構内通路 (pathways.txt) の端が駅 (location_type 1) になっています。通路は駅の中の場所同士をつなぎます。",
         fix_ja="駅の出入口・のりば・結節点の stop_id を指定してください。"),
    Rule("pathway_loop", WARNING, "A pathway starts and ends at the same place.",
         ("file", "line", "from_stop_id", "to_stop_id"), _pathway_loop, needs=("pathways",),
         fix="Correct from_stop_id or to_stop_id, or delete the pathway.",
         why_ja="構内通路の始点と終点が同じ場所です。",
         fix_ja="from_stop_id か to_stop_id を直すか、通路を削除してください。"),
    Rule("bidirectional_exit_gate", ERROR, "An exit gate (pathway_mode 7) is marked bidirectional; exit gates can only be passed one way.",
         ("file", "line", "is_bidirectional"), _bidirectional_exit_gate, needs=("pathways",),
         fix="Set is_bidirectional to 0 and order from_stop_id and to_stop_id in the direction of exit.",
         why_ja="出口専用改札 (pathway_mode 7) が双方向 (is_bidirectional=1) になっています。出口改札は一方向にしか通れません。",
         fix_ja="is_bidirectional を 0 にし、出る方向に from_stop_id → to_stop_id を並べてください。"),
    Rule("missing_level_id", ERROR, "levels.txt exists but a location connected by pathways has no level_id.",
         ("file", "line", "level_id"), _missing_level_id, needs=("levels", "pathways"),
         fix="Set the level_id of every location that pathways connect.",
         why_ja="levels.txt があるのに、構内通路でつながる場所に階 (level_id) が指定されていません。",
         fix_ja="構内通路でつながるすべての場所に level_id を入力してください。"),
    Rule("attribution_without_role", WARNING, "An attribution says neither producer, operator nor authority, so its role is unknown.",
         ("file", "line", "is_producer", "is_operator", "is_authority"), _attribution_without_role, needs=("attributions",),
         fix="Set at least one of is_producer, is_operator, is_authority to 1.",
         why_ja="attributions.txt の組織が、作成者・運行者・管轄者のいずれにもなっていません。",
         fix_ja="is_producer・is_operator・is_authority の少なくとも一つを 1 にしてください。"),
]
