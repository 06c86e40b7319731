"""MobilityData gtfs-validator v8.0.1 rules Noriba lacked: letter case of names, the service window, the order of
stop_times.txt, ferries' bike allowance, in-seat transfers between modes and networks given twice."""

from __future__ import annotations

from transforms.rules import stop_times
from transforms.rules.calendar import services
from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule

#: Rider-facing names MobilityData wants in mixed case ("Main Street", not "MAIN STREET").
MIXED_CASE_FIELDS = (
    ("agency", "agency.txt", "agency_name"),
    ("stops", "stops.txt", "stop_name"),
    ("routes", "routes.txt", "route_short_name"),
    ("routes", "routes.txt", "route_long_name"),
    ("trips", "trips.txt", "trip_headsign"),
    ("trips", "trips.txt", "trip_short_name"),
)


def _mixed_case(ctx: Context) -> str:
    # As MobilityData: split the value into runs of letters (Java's split: a leading empty run is kept,
    # trailing ones dropped). One run: it must not be all lower case (length > 1). Several runs: among
    # those longer than one character, at least one must mix upper and lower case, when there are two
    # or more of them. Runs of letters without case (kana, kanji, hangul...) are left out: a Japanese
    # name cannot be written in mixed case (docs/validation-parity.md, GTFS-JP).
    # The values of every field first, then the test once: each copy of its Unicode patterns is compiled when the query
    # is planned, which cost more than the test itself on a small feed.
    values = " UNION ALL ".join(
        f"SELECT '{file}' AS file, _line, '{field}' AS field, trim({field}) AS v FROM {table} "
        f"WHERE {field} IS NOT NULL AND trim({field}) <> ''"
        for table, file, field in MIXED_CASE_FIELDS if ctx.has(table) and ctx.filled(table, field))
    if not values:
        return "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"
    # Each distinct value is tested once (a trip_headsign repeats on thousands of trips: Vilnius x16's 374k trips have a few
    # hundred), then its rows are picked.
    return (
        f"WITH vals AS ({values}), bad AS (SELECT v FROM ("
        "SELECT v, list_filter(toks, lambda t: t = '' OR regexp_matches(t, '[\\p{Lu}\\p{Ll}\\p{Lt}]')) AS toks FROM ("
        "SELECT v, CASE WHEN regexp_matches(v, '\\p{L}') THEN "
        "string_split_regex(regexp_replace(v, '[^\\p{L}]+$', ''), '[^\\p{L}]+') ELSE [] END AS toks FROM ("
        "SELECT DISTINCT v FROM vals))) "
        "WHERE list_any_value(list_filter(toks, lambda t: t <> '')) IS NOT NULL AND CASE WHEN len(toks) = 1 THEN "
        "length(toks[1]) > 1 AND regexp_full_match(toks[1], '\\p{Ll}+') "
        "ELSE len(list_filter(toks, lambda t: length(t) <> 1)) >= 2 "
        "AND NOT list_bool_or(list_transform(list_filter(toks, lambda t: length(t) <> 1), "
        "lambda t: regexp_matches(t, '\\p{Lu}') AND regexp_matches(t, '\\p{Ll}'))) END) "
        "SELECT file, _line AS line, field, v AS value, field || ' \"' || v || '\" is written in one letter case' AS message "
        "FROM vals WHERE v IN (SELECT v FROM bad)"
    )


def _edge_space(column: str) -> str:
    """Return a SQL condition: the value of ``column`` starts or ends with a character U+0000-U+0020 (NULL when it is NULL).

    What regexp_matches(v, '^[\\x00-\\x20]|[\\x00-\\x20]$') finds, at a quarter of its CPU (the trip_id and stop_id of Vilnius
    x16's stop_times: 0.2 against 0.8 CPU-s): such a character is one byte below '!' in UTF-8 and no byte of another character
    is, and strings compare by bytes, so the value starts with one when it sorts below '!', and ends with one when its last
    character (v[-1], by code point; right(v, 1) is twice its cost) does; the empty string has neither."""
    c = f'"{column}"'
    return f"({c} <> '' AND ({c} < '!' OR {c}[-1] < '!'))"


def _value_whitespace(ctx: Context) -> str:
    # One filtered scan per table over its text columns (numbers, dates and times are typed and lose the spaces).
    from transforms.schema import SQL_TYPES, load_schema

    parts = []
    for table in load_schema().tables.values():
        if table.name not in ctx.present:
            continue
        cols = [f for f in table.fields if f.type not in SQL_TYPES and ctx.filled(table.name, f.column)]
        if not cols:
            continue
        # every row tested by byte comparisons; the few rows found, column by column by the regular expression (the same
        # answer: tests/transforms/rules/test_mobilitydata_v8.py), which costs a small feed less to plan (kamacitybus: 30
        # against 36 ms for the comparisons in both places)
        hits = " OR ".join(_edge_space(f.column) for f in cols)
        sp = "'^[\\x00-\\x20]|[\\x00-\\x20]$'"
        pick = ", ".join(f"CASE WHEN regexp_matches(\"{f.column}\", {sp}) THEN '{f.name}' END" for f in cols)
        parts.append(
            f"SELECT '{table.file_name}' AS file, _line AS line, f AS field, NULL AS value, "
            "'the value of ' || f || ' starts or ends with a space' AS message "
            f"FROM (SELECT _line, unnest(list_filter([{pick}], lambda x: x IS NOT NULL)) AS f FROM \"{table.name}\" WHERE {hits})"
        )
    return " UNION ALL ".join(parts) or "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"


def _missing_feed_info(ctx: Context) -> str:
    # GTFS: feed_info.txt is "Recommended" (required when translations.txt is given). GTFS-JP requires it, which
    # the read step reports as missing_gtfs_jp_required_file; so this rule is for plain GTFS feeds only.
    absent = "feed_info" not in ctx.present and ctx.profile != "gtfs-jp"
    return ("SELECT 'feed_info.txt' AS file, NULL AS line, NULL AS field, NULL AS value, "
            "'feed_info.txt is absent: the publisher, language and period of the data are unknown' AS message "
            f"WHERE {'true' if absent else 'false'}")


def _service_bounds() -> str:
    """Return a subquery of (service_id, first_day, last_day): calendar.txt's range widened by added dates."""
    return (
        "(SELECT service_id, min(s) AS first_day, max(e) AS last_day FROM ("
        "SELECT service_id, start_date AS s, end_date AS e FROM calendar "
        "UNION ALL SELECT service_id, date, date FROM calendar_dates WHERE exception_type = 1) GROUP BY service_id)"
    )


def _future_calendar(ctx: Context) -> str:
    return (
        "SELECT CASE WHEN (SELECT count(*) FROM calendar) > 0 THEN 'calendar.txt' ELSE 'calendar_dates.txt' END AS file, "
        "NULL AS line, NULL AS field, strftime(min(first_day), '%Y%m%d') AS value, "
        f"'every service starts after the validation date ' || strftime({ctx.today}, '%Y-%m-%d') || ': the earliest on ' || "
        "strftime(min(first_day), '%Y-%m-%d') AS message "
        f"FROM {_service_bounds()} HAVING min(first_day) > {ctx.today}"
    )


def _far_future(ctx: Context) -> str:
    years = int(ctx.param("service_far_future_years", 2))
    return (
        "SELECT s.file, s.line, 'service_id' AS field, b.service_id AS value, "
        "'service_id ' || b.service_id || ' runs until ' || strftime(b.last_day, '%Y-%m-%d') || ', more than "
        f"{years} years after the validation date' AS message "
        f"FROM {_service_bounds()} b JOIN {services()} s USING (service_id) "
        f"WHERE b.last_day > {ctx.today} + INTERVAL {years} YEAR"
    )


def _unsorted_stop_times(ctx: Context) -> str:
    """Return the trips whose rows are out of stop_sequence order or not on consecutive lines, by _line.

    When every stop time is in the shared pass (each has a trip_id and a stop_sequence), a trip is fine exactly when its
    lines in stop_sequence order are consecutive (``_line - i`` the same on all its rows, grouped by the integer ``r - i``
    of its first row), so only the other trips' rows go through the window; otherwise every row does."""
    pass_ = stop_times.stop_pass(ctx)
    whole = stop_times.pass_holds_all(ctx)
    rows = (
        f"SELECT trip_id, _line, stop_sequence FROM {pass_} WHERE {whole} AND r - i IN "
        f"(SELECT r - i FROM {pass_} GROUP BY r - i HAVING min(_line - i) <> max(_line - i)) "
        f"UNION ALL SELECT trip_id, _line, stop_sequence FROM stop_times WHERE NOT {whole}"
    )
    return (
        "SELECT 'stop_times.txt' AS file, min(_line) AS line, 'trip_id' AS field, trip_id AS value, "
        "'the stop_times of trip_id ' || trip_id || ' (lines ' || min(_line) || '-' || max(_line) || ') are ' || "
        "CASE WHEN bool_or(prev_seq > stop_sequence) THEN 'not in stop_sequence order' ELSE 'not on consecutive lines' END AS message "
        "FROM (SELECT trip_id, _line, stop_sequence, lag(stop_sequence) OVER (PARTITION BY trip_id ORDER BY _line) AS prev_seq "
        f"FROM ({rows})) GROUP BY trip_id "
        "HAVING bool_or(prev_seq > stop_sequence) OR max(_line) - min(_line) + 1 <> count(*)"
    )


def _missing_bike_allowance(ctx: Context) -> str:
    return (
        "SELECT 'trips.txt' AS file, t._line AS line, 'bikes_allowed' AS field, t.trip_id AS value, "
        "'ferry trip_id ' || t.trip_id || ' (route_id ' || t.route_id || ') does not say whether bikes are allowed' AS message "
        "FROM trips t JOIN routes r USING (route_id) WHERE r.route_type = 4 AND coalesce(t.bikes_allowed, 0) NOT IN (1, 2)"
    )


def _in_seat_route_type(ctx: Context) -> str:
    return (
        "SELECT 'transfers.txt' AS file, x._line AS line, 'to_trip_id' AS field, x.to_trip_id AS value, "
        "'in-seat transfer from trip_id ' || x.from_trip_id || ' (route_type ' || ra.route_type || ') to trip_id ' || "
        "x.to_trip_id || ' (route_type ' || rb.route_type || ') changes mode' AS message "
        "FROM transfers x JOIN trips a ON a.trip_id = x.from_trip_id JOIN routes ra ON ra.route_id = a.route_id "
        "JOIN trips b ON b.trip_id = x.to_trip_id JOIN routes rb ON rb.route_id = b.route_id "
        "WHERE x.transfer_type = 4 AND ra.route_type <> rb.route_type"
    )


def _networks_twice(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, min(line) AS line, 'network_id' AS field, NULL AS value, "
        "'routes.txt has a network_id column and route_networks.txt assigns routes to networks too; use one of them' AS message "
        "FROM _columns WHERE file = 'routes.txt' AND \"column\" = 'network_id' "
        "HAVING count(*) > 0 AND (SELECT count(*) FROM route_networks) > 0"
    )


RULES: list[Rule] = [
    Rule("mixed_case_recommended_field", WARNING,
         "A rider-facing name is written all in capitals or all in small letters; names read best in mixed case.",
         ("file", "line", "field"), _mixed_case,
         fix="Write the name as it is printed on signs, e.g. \"Main Street\" rather than \"MAIN STREET\".",
         why_ja="利用者に表示する名称が英字の大文字だけ（または小文字だけ）で書かれています。英字の名称は大文字と小文字を混ぜて書くと読みやすくなります。かな・漢字の部分は対象外です。",
         fix_ja="看板などの表記どおり、例えば「MAIN STREET」ではなく「Main Street」と書いてください。"),
    Rule("missing_recommended_file", WARNING,
         "feed_info.txt, which GTFS recommends (and requires with translations.txt), is absent.",
         ("file",), _missing_feed_info,
         fix="Add feed_info.txt with the publisher's name and URL, the language and the period the data covers.",
         why_ja="GTFS で推奨されている feed_info.txt がありません（translations.txt がある場合は必須です）。",
         fix_ja="提供者名・URL・言語・データの有効期間を書いた feed_info.txt を追加してください。"),
    Rule("leading_or_trailing_whitespaces", WARNING,
         "A text value starts or ends with spaces, which apps show or compare wrongly.",
         ("file", "line", "field"), _value_whitespace,
         fix="Remove the spaces before and after the value.",
         why_ja="値の前後に空白があり、アプリで表示や照合が正しくできません。",
         fix_ja="値の前後の空白を取り除いてください。"),
    Rule("future_calendar", INFO,
         "Every service starts after the validation date, so nothing runs today.",
         ("file",), _future_calendar,
         fix="Keep publishing the current timetable until this one starts.",
         why_ja="すべての運行日 (service) が検証日より後に始まっており、今日運行する便がありません。",
         fix_ja="このデータが始まるまで、現行ダイヤのデータも公開し続けてください。"),
    Rule("service_extends_far_in_the_future", INFO,
         "A service runs until more than 2 years after the validation date; timetables rarely hold that long.",
         ("file", "line", "service_id"), _far_future,
         fix="Check the end_date (or the last added date) of the service.",
         why_ja="運行日 (service) の終了日が検証日から 2 年以上先です。それほど先まで有効なダイヤは稀です。",
         fix_ja="その service の end_date（または最後の追加日）を確認してください。"),
    Rule("unsorted_stop_times", INFO,
         "A trip's rows in stop_times.txt are not in stop_sequence order or not together in the file, which slows consumers down.",
         ("file", "line", "trip_id"), _unsorted_stop_times, needs=("stop_times",),
         fix="Write each trip's stop_times on consecutive lines, in stop_sequence order.",
         why_ja="stop_times.txt で、一つの便の行が stop_sequence の順に並んでいないか、連続した行になっていません。利用側の処理が遅くなります。",
         fix_ja="各便の stop_times を連続した行に、stop_sequence の順で書いてください。"),
    Rule("missing_bike_allowance", WARNING,
         "A ferry trip (route_type 4) does not say whether bikes are allowed (bikes_allowed empty or 0).",
         ("file", "line", "trip_id"), _missing_bike_allowance, needs=("trips", "routes"),
         fix="Set bikes_allowed to 1 (allowed) or 2 (not allowed) on every ferry trip.",
         why_ja="フェリーの便 (route_type 4) に自転車の持込可否 (bikes_allowed) がありません（空欄または 0）。",
         fix_ja="フェリーのすべての便で bikes_allowed を 1（可）または 2（不可）にしてください。"),
    Rule("inconsistent_route_type_for_in_seat_transfer", WARNING,
         "An in-seat transfer (transfer_type 4) joins two trips of different route types; a rider cannot stay seated across modes.",
         ("file", "line", "from_trip_id", "to_trip_id"), _in_seat_route_type, needs=("transfers",),
         fix="Check the trip_ids, or use another transfer_type.",
         why_ja="車内乗継 (transfer_type 4) の前後の便の交通手段 (route_type) が異なります。異なる交通手段の間で座ったまま乗り継ぐことはできません。",
         fix_ja="trip_id を確認するか、別の transfer_type を使ってください。"),
    Rule("route_networks_specified_in_more_than_one_file", ERROR,
         "Routes are assigned to networks both by routes.network_id and by route_networks.txt; the specification allows one of them.",
         ("file", "field"), _networks_twice, needs=("route_networks",),
         fix="Keep route_networks.txt and drop the network_id column of routes.txt, or the other way round.",
         why_ja="路線の系統網 (network) が routes.txt の network_id と route_networks.txt の両方で指定されています。仕様ではどちらか一方だけです。",
         fix_ja="route_networks.txt を残して routes.txt の network_id 列を削除するか、その逆にしてください。"),
]
