"""GTFS-Flex rules: zones (locations.geojson), location groups, pickup/drop-off windows and booking rules.

Codes, conditions and severities are MobilityData gtfs-validator's (v8.0.1: PickupDropOffWindowValidator,
PickupDropOffTypeValidator, StopTimesGeographyIdPresenceValidator, OverlappingPickupDropOffZoneValidator,
PickupBookingRuleIdValidator, BookingRulesEntityValidator, the GeoJSON loader); docs/validation-parity.md
('GTFS-Flex') compares what they report on the shared Flex feeds. The GeoJSON codes are raised while
locations.geojson is read (transforms/flex/geojson.py) and listed here as 'read' rules.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule
from transforms.rules.read import read_rule

_WINDOW = "(start_pickup_drop_off_window IS NOT NULL OR end_pickup_drop_off_window IS NOT NULL)"


def _row(field: str, value: str, message: str, *, file: str = "stop_times.txt", line: str = "_line") -> str:
    return f"SELECT '{file}' AS file, {line} AS line, '{field}' AS field, {value} AS value, {message} AS message"


def _trip(st: str = "") -> str:
    return f"'trip_id ' || {st}trip_id || ' stop_sequence ' || {st}stop_sequence"


def _forbidden_geography_id(ctx: Context) -> str:
    n = "((stop_id IS NOT NULL)::INT + (location_group_id IS NOT NULL)::INT + (location_id IS NOT NULL)::INT)"
    return (_row("stop_id", "concat_ws(', ', stop_id, location_group_id, location_id)",
                 f"{_trip()} || ': gives ' || {n} || ' of stop_id, location_group_id and location_id; exactly one is allowed'")
            + f" FROM stop_times WHERE {n} > 1")


def _missing_geography_id(ctx: Context) -> str:
    return (_row("stop_id", "NULL", f"{_trip()} || ': none of stop_id, location_group_id or location_id is given'")
            + " FROM stop_times WHERE stop_id IS NULL AND location_group_id IS NULL AND location_id IS NULL")


def _duplicate_geography_id(ctx: Context) -> str:
    return (
        "WITH ids AS (SELECT 'stops.txt' AS file, _line, stop_id AS id, 'stop_id' AS field FROM stops "
        "UNION ALL SELECT 'location_groups.txt', _line, location_group_id, 'location_group_id' FROM location_groups "
        "UNION ALL SELECT 'locations.geojson', _line, location_id, 'id' FROM locations), "
        "many AS (SELECT id FROM ids WHERE id IS NOT NULL GROUP BY id HAVING count(DISTINCT file) > 1) "
        "SELECT i.file, i._line AS line, i.field, i.id AS value, "
        "'id ' || i.id || ' is used by more than one of stops.txt, location_groups.txt and locations.geojson; they share one id space' AS message "
        "FROM ids i JOIN many USING (id) WHERE i.file <> 'stops.txt'"
    )


def _location_fk(ctx: Context) -> str:
    target = "locations.geojson" if "locations" in ctx.present else "locations.geojson (missing)"
    return (_row("location_id", "location_id", f"'location_id ''' || location_id || ''' is not defined in {target} (id)'")
            + " FROM stop_times WHERE location_id IS NOT NULL AND location_id NOT IN (SELECT location_id FROM locations WHERE location_id IS NOT NULL)")


def _missing_window(ctx: Context) -> str:
    return (_row("start_pickup_drop_off_window", "NULL",
                 f"{_trip()} || ': ' || CASE WHEN start_pickup_drop_off_window IS NULL THEN 'start' ELSE 'end' END || "
                 "'_pickup_drop_off_window is empty while the other end of the window is given'")
            + " FROM stop_times WHERE (start_pickup_drop_off_window IS NULL) <> (end_pickup_drop_off_window IS NULL)")


def _invalid_window(ctx: Context) -> str:
    return (_row("end_pickup_drop_off_window", "gtfs_time(end_pickup_drop_off_window)",
                 f"{_trip()} || ': the window ends at ' || gtfs_time(end_pickup_drop_off_window) || ', not after its start ' || "
                 "gtfs_time(start_pickup_drop_off_window)")
            + " FROM stop_times WHERE end_pickup_drop_off_window <= start_pickup_drop_off_window")


def _forbidden_times(ctx: Context) -> str:
    return (_row("arrival_time", "coalesce(gtfs_time(arrival_time), gtfs_time(departure_time))",
                 f"{_trip()} || ': arrival_time/departure_time are given with a pickup/drop-off window; a window replaces them'")
            + f" FROM stop_times WHERE {_WINDOW} AND (arrival_time IS NOT NULL OR departure_time IS NOT NULL)")


def _forbidden_pickup_type(ctx: Context) -> str:
    return (_row("pickup_type", "CAST(pickup_type AS VARCHAR)",
                 f"{_trip()} || ': pickup_type ' || pickup_type || ' is not allowed with a pickup/drop-off window (use 1 or 2)'")
            + f" FROM stop_times WHERE {_WINDOW} AND pickup_type IN (0, 3)")


def _forbidden_drop_off_type(ctx: Context) -> str:
    return (_row("drop_off_type", "CAST(drop_off_type AS VARCHAR)",
                 f"{_trip()} || ': drop_off_type 0 (regular) is not allowed with a pickup/drop-off window (use 1, 2 or 3)'")
            + f" FROM stop_times WHERE {_WINDOW} AND drop_off_type = 0")


def _overlapping_zones(ctx: Context) -> str:
    return (
        "SELECT 'stop_times.txt' AS file, a._line AS line, 'location_id' AS field, a.location_id AS value, "
        "'trip_id ' || a.trip_id || ': zone ' || a.location_id || ' (' || gtfs_time(a.start_pickup_drop_off_window) || '-' || "
        "gtfs_time(a.end_pickup_drop_off_window) || ') overlaps zone ' || b.location_id || ' (line ' || b._line || ', ' || "
        "gtfs_time(b.start_pickup_drop_off_window) || '-' || gtfs_time(b.end_pickup_drop_off_window) || ') in both space and time' AS message "
        "FROM stop_times a JOIN stop_times b ON a.trip_id = b.trip_id AND a._line <> b._line "
        "AND a.location_id IS NOT NULL AND b.location_id IS NOT NULL "
        "AND a.start_pickup_drop_off_window < b.end_pickup_drop_off_window AND a.end_pickup_drop_off_window > b.start_pickup_drop_off_window "
        "JOIN locations la ON la.location_id = a.location_id JOIN locations lb ON lb.location_id = b.location_id "
        "WHERE zones_overlap(la.geometry, lb.geometry)"
    )


def _forbidden_continuous(ctx: Context) -> str:
    # MobilityData's ContinuousPickupDropOffValidator tests continuous_pickup 2 or 3 (its notice text says 0, 2 or 3 of either
    # field); drop-off is tested too here, as the spec forbids both
    return ("SELECT 'stop_times.txt' AS file, st._line AS line, 'start_pickup_drop_off_window' AS field, r.route_id AS value, "
            "'trip_id ' || st.trip_id || ' has a pickup/drop-off window but its route ' || r.route_id || "
            "' has continuous_pickup/continuous_drop_off ' || coalesce(CAST(r.continuous_pickup AS VARCHAR), '') || '/' || "
            "coalesce(CAST(r.continuous_drop_off AS VARCHAR), '') AS message "
            "FROM stop_times st JOIN trips t USING (trip_id) JOIN routes r ON r.route_id = t.route_id "
            "WHERE (st.start_pickup_drop_off_window IS NOT NULL OR st.end_pickup_drop_off_window IS NOT NULL) "
            "AND (r.continuous_pickup IN (2, 3) OR r.continuous_drop_off IN (2, 3))")


def _missing_booking_rule_id(ctx: Context) -> str:
    return (
        _row("pickup_booking_rule_id", "NULL", f"{_trip()} || ': pickup_type 2 (book by phone) but no pickup_booking_rule_id'")
        + " FROM stop_times WHERE pickup_type = 2 AND pickup_booking_rule_id IS NULL UNION ALL "
        + _row("drop_off_booking_rule_id", "NULL", f"{_trip()} || ': drop_off_type 2 (book by phone) but no drop_off_booking_rule_id'")
        + " FROM stop_times WHERE drop_off_type = 2 AND drop_off_booking_rule_id IS NULL"
    )


_ALL = ("prior_notice_duration_min", "prior_notice_duration_max", "prior_notice_last_day", "prior_notice_last_time",
        "prior_notice_start_day", "prior_notice_start_time", "prior_notice_service_id")


def _booking(where: str, field: str, message: str) -> str:
    return (_row(field, "booking_rule_id", f"'booking_rule_id ' || booking_rule_id || ': ' || {message}", file="booking_rules.txt")
            + f" FROM booking_rules WHERE _untyped IS NULL AND ({where})")  # as MobilityData: a row with a value it cannot read is not checked


def _forbidden_fields(booking_type: int, fields: tuple[str, ...], kind: str):
    def sql(ctx: Context) -> str:
        listed = "concat_ws(', ', " + ", ".join(f"CASE WHEN {f} IS NOT NULL THEN '{f}' END" for f in fields) + ")"
        some = " OR ".join(f"{f} IS NOT NULL" for f in fields)
        return _booking(f"booking_type = {booking_type} AND ({some})", "booking_type",
                        f"'booking_type {booking_type} ({kind}) forbids ' || {listed}")
    return sql


def _simple(where: str, field: str, message: str):
    return lambda ctx: _booking(where, field, message)


def _ja(why_ja: str, fix_ja: str) -> dict:
    return {"why_ja": why_ja, "fix_ja": fix_ja}


RULES: list[Rule] = [
    Rule("forbidden_geography_id", ERROR, "A stop_times row gives more than one of stop_id, location_group_id and location_id.",
         ("stop_times.txt", "stop_id"), _forbidden_geography_id, needs=("stop_times",),
         fix="Keep exactly one: stop_id for a stop, location_group_id for a group of stops, location_id for a zone.",
         **_ja("stop_times.txt の 1 行に stop_id・location_group_id・location_id のうち 2 つ以上が書かれています。",
               "どれか 1 つだけにしてください（停留所は stop_id、停留所グループは location_group_id、区域は location_id）。")),
    Rule("missing_required_field", ERROR, "A stop_times row gives none of stop_id, location_group_id and location_id.",
         ("stop_times.txt", "stop_id"), _missing_geography_id, needs=("stop_times",),
         fix="Give the stop (stop_id), the group of stops (location_group_id) or the zone (location_id) the trip serves.",
         **_ja("stop_times.txt の行に stop_id・location_group_id・location_id のどれもありません。",
               "停留所・停留所グループ・区域のいずれかを指定してください。")),
    Rule("duplicate_geography_id", ERROR, "An id is used by more than one of stops.txt, location_groups.txt and locations.geojson.",
         ("file", "id"), _duplicate_geography_id,
         fix="Rename one of them: stop, location group and zone ids share one id space.",
         **_ja("同じ ID が stops.txt・location_groups.txt・locations.geojson のうち複数で使われています。",
               "どちらかの ID を変えてください。停留所・停留所グループ・区域の ID は重複できません。")),
    Rule("foreign_key_violation", ERROR, "A stop_times location_id is not the id of a zone in locations.geojson.",
         ("stop_times.txt", "location_id"), _location_fk, needs=("stop_times",),
         fix="Add the zone to locations.geojson or correct the id.",
         **_ja("stop_times.txt の location_id が locations.geojson の区域にありません。",
               "locations.geojson に区域を追加するか、ID を直してください。")),
    Rule("missing_pickup_or_drop_off_window", ERROR, "Only one of start_pickup_drop_off_window and end_pickup_drop_off_window is given.",
         ("stop_times.txt", "start_pickup_drop_off_window"), _missing_window, needs=("stop_times",),
         fix="Give both ends of the window in which riders may be picked up or dropped off.",
         **_ja("乗降可能時間帯の開始 (start_pickup_drop_off_window) と終了 (end_pickup_drop_off_window) の片方しかありません。",
               "開始と終了の両方を書いてください。")),
    Rule("invalid_pickup_drop_off_window", ERROR, "end_pickup_drop_off_window is not later than start_pickup_drop_off_window.",
         ("stop_times.txt", "end_pickup_drop_off_window"), _invalid_window, needs=("stop_times",),
         fix="Make the window end after it starts (times past midnight are written 24:00:00 and later).",
         **_ja("乗降可能時間帯の終了が開始より後になっていません。",
               "終了時刻を開始時刻より後にしてください（深夜は 24:00:00 以降で書きます）。")),
    Rule("forbidden_arrival_or_departure_time", ERROR, "A stop_times row has a pickup/drop-off window and also arrival_time or departure_time.",
         ("stop_times.txt", "arrival_time"), _forbidden_times, needs=("stop_times",),
         fix="Leave arrival_time and departure_time empty where a window is given.",
         **_ja("乗降可能時間帯がある行に到着・出発時刻 (arrival_time / departure_time) も書かれています。",
               "時間帯を使う行では arrival_time と departure_time を空欄にしてください。")),
    Rule("forbidden_pickup_type", ERROR, "pickup_type 0 or 3 is given on a stop_times row with a pickup/drop-off window.",
         ("stop_times.txt", "pickup_type"), _forbidden_pickup_type, needs=("stop_times",),
         fix="Use pickup_type 2 (book ahead) or 1 (no pickup) with a window.",
         **_ja("乗降可能時間帯がある行の pickup_type が 0（通常乗車）または 3（運転士に連絡）になっています。",
               "pickup_type を 2（要予約）か 1（乗車不可）にしてください。")),
    Rule("forbidden_drop_off_type", ERROR, "drop_off_type 0 is given on a stop_times row with a pickup/drop-off window.",
         ("stop_times.txt", "drop_off_type"), _forbidden_drop_off_type, needs=("stop_times",),
         fix="Use drop_off_type 2 (book ahead), 3 (tell the driver) or 1 (no drop-off) with a window.",
         **_ja("乗降可能時間帯がある行の drop_off_type が 0（通常降車）になっています。",
               "drop_off_type を 2（要予約）・3（運転士に連絡）・1（降車不可）のいずれかにしてください。")),
    Rule("overlapping_zone_and_pickup_drop_off_window", ERROR,
         "Two stop_times rows of one trip have zones that overlap and pickup/drop-off windows that overlap.",
         ("stop_times.txt", "location_id"), _overlapping_zones, needs=("stop_times", "locations"),
         fix="Make the zones of one trip not overlap, or their windows not overlap, so a rider's place and time say which row applies.",
         **_ja("同じ便の 2 つの区域が重なり、乗降可能時間帯も重なっています。利用者の場所と時刻からどちらの行か決まりません。",
               "区域が重ならないようにするか、時間帯をずらしてください。")),
    Rule("forbidden_continuous_pickup_drop_off", ERROR,
         "A trip has a pickup/drop-off window but its route allows continuous pickup or drop-off (continuous_pickup/_drop_off 2 or 3).",
         ("stop_times.txt", "start_pickup_drop_off_window"), _forbidden_continuous, needs=("stop_times", "trips", "routes"),
         fix="Leave continuous_pickup and continuous_drop_off of the route empty (or 1) when its trips use windows.",
         **_ja("乗降可能時間帯を使う便の路線で、自由乗降 (continuous_pickup / continuous_drop_off が 2 か 3) が指定されています。",
               "時間帯を使う路線では continuous_pickup と continuous_drop_off を空欄（または 1）にしてください。")),
    Rule("missing_pickup_drop_off_booking_rule_id", WARNING,
         "pickup_type or drop_off_type is 2 (book ahead) but the row names no booking rule.",
         ("stop_times.txt", "pickup_booking_rule_id"), _missing_booking_rule_id, needs=("stop_times", "booking_rules"),
         fix="Name the booking rule (pickup_booking_rule_id / drop_off_booking_rule_id) that says how to book.",
         **_ja("要予約 (pickup_type / drop_off_type が 2) なのに予約方法 (booking_rule_id) が指定されていません。",
               "pickup_booking_rule_id / drop_off_booking_rule_id に booking_rules.txt の予約ルールを指定してください。")),
    Rule("forbidden_real_time_booking_field_value", ERROR, "A real-time booking rule (booking_type 0) gives prior-notice fields.",
         ("booking_rules.txt", "booking_type"), _forbidden_fields(0, _ALL, "real time"), needs=("booking_rules",),
         fix="Leave every prior_notice_* field empty for booking_type 0, or change the booking type.",
         **_ja("即時予約 (booking_type 0) の予約ルールに事前予約の項目 (prior_notice_*) が書かれています。",
               "booking_type 0 では prior_notice_* を空欄にするか、予約種別を変えてください。")),
    Rule("forbidden_same_day_booking_field_value", ERROR,
         "A same-day booking rule (booking_type 1) gives prior_notice_last_day, prior_notice_last_time or prior_notice_service_id.",
         ("booking_rules.txt", "booking_type"),
         _forbidden_fields(1, ("prior_notice_last_day", "prior_notice_last_time", "prior_notice_service_id"), "same day"),
         needs=("booking_rules",), fix="Give same-day notice with prior_notice_duration_min (and _max) only.",
         **_ja("当日予約 (booking_type 1) の予約ルールに前日以前の締切 (prior_notice_last_day など) が書かれています。",
               "当日予約は prior_notice_duration_min（と _max）だけで書いてください。")),
    Rule("forbidden_prior_day_booking_field_value", ERROR,
         "A prior-day booking rule (booking_type 2) gives prior_notice_duration_min or prior_notice_duration_max.",
         ("booking_rules.txt", "booking_type"),
         _forbidden_fields(2, ("prior_notice_duration_min", "prior_notice_duration_max"), "prior days"), needs=("booking_rules",),
         fix="Give prior-day notice with prior_notice_last_day and prior_notice_last_time.",
         **_ja("前日以前予約 (booking_type 2) の予約ルールに分単位の締切 (prior_notice_duration_min/max) が書かれています。",
               "前日以前予約は prior_notice_last_day と prior_notice_last_time で書いてください。")),
    Rule("missing_prior_notice_duration_min", ERROR, "A same-day booking rule (booking_type 1) has no prior_notice_duration_min.",
         ("booking_rules.txt", "prior_notice_duration_min"),
         _simple("booking_type = 1 AND prior_notice_duration_min IS NULL", "prior_notice_duration_min",
                 "'same-day booking (booking_type 1) needs prior_notice_duration_min'"), needs=("booking_rules",),
         fix="Give how many minutes before the trip a booking must be made.",
         **_ja("当日予約 (booking_type 1) なのに何分前までに予約するか (prior_notice_duration_min) がありません。",
               "prior_notice_duration_min に予約締切（乗車の何分前か）を書いてください。")),
    Rule("invalid_prior_notice_duration_min", ERROR, "prior_notice_duration_max is less than prior_notice_duration_min.",
         ("booking_rules.txt", "prior_notice_duration_min"),
         _simple("prior_notice_duration_max < prior_notice_duration_min", "prior_notice_duration_min",
                 "'prior_notice_duration_max ' || prior_notice_duration_max || ' is less than prior_notice_duration_min ' || prior_notice_duration_min"),
         needs=("booking_rules",), fix="Make the earliest booking (max) at least as far ahead as the latest (min).",
         **_ja("予約受付開始 (prior_notice_duration_max) が締切 (prior_notice_duration_min) より短くなっています。",
               "prior_notice_duration_max を prior_notice_duration_min 以上にしてください。")),
    Rule("forbidden_prior_notice_start_day", ERROR, "prior_notice_start_day is given together with prior_notice_duration_max.",
         ("booking_rules.txt", "prior_notice_start_day"),
         _simple("prior_notice_duration_max IS NOT NULL AND prior_notice_start_day IS NOT NULL", "prior_notice_start_day",
                 "'prior_notice_start_day is given with prior_notice_duration_max; use one or the other'"), needs=("booking_rules",),
         fix="Say when booking opens either in minutes (prior_notice_duration_max) or in days (prior_notice_start_day), not both.",
         **_ja("予約受付開始が分 (prior_notice_duration_max) と日 (prior_notice_start_day) の両方で書かれています。",
               "どちらか一方にしてください。")),
    Rule("prior_notice_last_day_after_start_day", ERROR, "prior_notice_last_day is greater than prior_notice_start_day.",
         ("booking_rules.txt", "prior_notice_last_day"),
         _simple("prior_notice_last_day > prior_notice_start_day", "prior_notice_last_day",
                 "'booking closes ' || prior_notice_last_day || ' days ahead, before it opens (' || prior_notice_start_day || ' days ahead)'"),
         needs=("booking_rules",), fix="Make booking open (start_day) at least as many days ahead as it closes (last_day).",
         **_ja("予約締切日 (prior_notice_last_day) が受付開始日 (prior_notice_start_day) より前の日になっています。",
               "受付開始日を締切日と同じかそれより前にしてください。")),
    Rule("missing_prior_notice_last_day", ERROR, "A prior-day booking rule (booking_type 2) has no prior_notice_last_day.",
         ("booking_rules.txt", "prior_notice_last_day"),
         _simple("booking_type = 2 AND prior_notice_last_day IS NULL", "prior_notice_last_day",
                 "'prior-day booking (booking_type 2) needs prior_notice_last_day'"), needs=("booking_rules",),
         fix="Give how many days before travel booking closes (1 = the day before).",
         **_ja("前日以前予約 (booking_type 2) なのに何日前までに予約するか (prior_notice_last_day) がありません。",
               "prior_notice_last_day に締切日（1 = 前日）を書いてください。")),
    Rule("missing_prior_notice_last_time", ERROR, "A prior-day booking rule (booking_type 2) has no prior_notice_last_time.",
         ("booking_rules.txt", "prior_notice_last_time"),
         _simple("booking_type = 2 AND prior_notice_last_time IS NULL", "prior_notice_last_time",
                 "'prior-day booking (booking_type 2) needs prior_notice_last_time'"), needs=("booking_rules",),
         fix="Give the time of day booking closes on the last day (e.g. 17:00:00).",
         **_ja("前日以前予約 (booking_type 2) なのに締切時刻 (prior_notice_last_time) がありません。",
               "prior_notice_last_time に締切時刻（例 17:00:00）を書いてください。")),
    Rule("forbidden_prior_notice_start_time", ERROR, "prior_notice_start_time is given without prior_notice_start_day.",
         ("booking_rules.txt", "prior_notice_start_time"),
         _simple("prior_notice_start_time IS NOT NULL AND prior_notice_start_day IS NULL", "prior_notice_start_time",
                 "'prior_notice_start_time is given without prior_notice_start_day'"), needs=("booking_rules",),
         fix="Give the day booking opens (prior_notice_start_day) or leave prior_notice_start_time empty.",
         **_ja("受付開始日 (prior_notice_start_day) がないのに受付開始時刻 (prior_notice_start_time) があります。",
               "受付開始日を書くか、受付開始時刻を空欄にしてください。")),
    Rule("missing_prior_notice_start_time", ERROR, "prior_notice_start_day is given without prior_notice_start_time.",
         ("booking_rules.txt", "prior_notice_start_time"),
         _simple("prior_notice_start_day IS NOT NULL AND prior_notice_start_time IS NULL", "prior_notice_start_time",
                 "'prior_notice_start_day is given without prior_notice_start_time'"), needs=("booking_rules",),
         fix="Give the time of day booking opens (prior_notice_start_time).",
         **_ja("受付開始日 (prior_notice_start_day) があるのに受付開始時刻 (prior_notice_start_time) がありません。",
               "prior_notice_start_time に受付開始時刻を書いてください。")),
    # raised while locations.geojson is read (transforms/flex/geojson.py)
    read_rule("malformed_json", ERROR, "locations.geojson is not JSON Noriba can read (bad syntax, not UTF-8, too big or too deeply nested).",
              "file", fix="Check the file with a GeoJSON checker or export it again from the GIS.",
              why_ja="locations.geojson を JSON として読めません（構文の誤り、UTF-8 でない、大きすぎる、入れ子が深すぎる）。",
              fix_ja="GeoJSON チェッカーで確認するか、GIS から書き出し直してください。"),
    read_rule("unsupported_geo_json_type", ERROR, "locations.geojson is not a FeatureCollection.", "file",
              fix="Write the zones as one FeatureCollection of Features.",
              why_ja="locations.geojson が FeatureCollection ではありません。",
              fix_ja="区域を 1 つの FeatureCollection（Feature の集まり）として書いてください。"),
    read_rule("duplicate_geo_json_key", ERROR, "An object of locations.geojson has the same key twice.", "file", "field",
              fix="Remove the repeated key.", why_ja="locations.geojson の同じオブジェクトに同じキーが 2 回あります。",
              fix_ja="重複したキーを削除してください。"),
    read_rule("geo_json_duplicated_element", ERROR, "Two features of locations.geojson have the same id.", "file", "field",
              fix="Give every zone its own id.", why_ja="locations.geojson の 2 つの区域が同じ id です。",
              fix_ja="区域ごとに別の id を付けてください。"),
    read_rule("geo_json_unknown_element", INFO, "locations.geojson has a member GTFS-Flex does not define; it is ignored.", "file", "field",
              fix="Remove it if it is a mistake.", why_ja="locations.geojson に GTFS-Flex で定義されていない項目があります（無視します）。",
              fix_ja="誤りであれば削除してください。"),
    read_rule("missing_required_element", ERROR, "A feature of locations.geojson lacks its id or geometry (or the file its features).",
              "file", "field", fix="Give every feature an id and a Polygon or MultiPolygon geometry.",
              why_ja="locations.geojson の区域に id または形状 (geometry) がありません。",
              fix_ja="すべての区域に id と Polygon / MultiPolygon の形状を付けてください。"),
    read_rule("unsupported_feature_type", ERROR, "An element of the features of locations.geojson is not a Feature.", "file",
              fix="Make every element of 'features' a Feature.", why_ja="locations.geojson の features に Feature 以外の要素があります。",
              fix_ja="features の要素をすべて Feature にしてください。"),
    read_rule("unsupported_geometry_type", ERROR, "A zone of locations.geojson is not a Polygon or MultiPolygon.", "file", "field",
              fix="Draw the zone as a Polygon or MultiPolygon; a point or line is not a service area.",
              why_ja="locations.geojson の区域の形状が Polygon / MultiPolygon ではありません。",
              fix_ja="区域は Polygon か MultiPolygon で描いてください（点や線は区域になりません）。"),
    read_rule("invalid_geometry", ERROR, "A zone of locations.geojson is not a valid polygon (e.g. its boundary crosses itself); "
              "Noriba repairs it with make_valid for its own use.", "file", "field",
              fix="Fix the polygon in the GIS (e.g. 'fix geometries') and export it again.",
              why_ja="locations.geojson の区域の形状が正しい多角形ではありません（境界が自己交差しているなど）。Noriba 内では make_valid で修復して使います。",
              fix_ja="GIS で形状を修正（「ジオメトリの修正」など）して書き出し直してください。"),
]
