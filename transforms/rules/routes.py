"""Rules on routes: names riders see (missing, too long, repeated, duplicated), descriptions, URLs, colours, use."""

from __future__ import annotations

from transforms.rules.engine import ERROR, WARNING, Context, Rule

SHORT = "lower(trim(route_short_name))"
LONG = "lower(trim(route_long_name))"


def _both_names_missing(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_short_name' AS field, NULL AS value, "
        "'route_id ' || route_id || ' has neither route_short_name nor route_long_name' AS message "
        "FROM routes WHERE coalesce(trim(route_short_name), '') = '' AND coalesce(trim(route_long_name), '') = ''"
    )


def _short_name_too_long(ctx: Context) -> str:
    limit = int(ctx.param("route_short_name_max_length", 12))
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_short_name' AS field, route_short_name AS value, "
        "'route_id ' || route_id || ': route_short_name ' || route_short_name || ' has ' || length(route_short_name) || "
        f"' characters, more than {limit}' AS message "
        f"FROM routes WHERE length(trim(route_short_name)) > {limit}"
    )


def _long_contains_short(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_long_name' AS field, route_long_name AS value, "
        "'route_id ' || route_id || ': route_long_name ' || route_long_name || ' begins with route_short_name ' || route_short_name AS message "
        f"FROM routes WHERE {SHORT} <> '' AND {LONG} <> {SHORT} AND starts_with({LONG}, {SHORT})"
    )


def _names_equal(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_long_name' AS field, route_long_name AS value, "
        "'route_id ' || route_id || ': route_short_name and route_long_name are both ' || route_short_name AS message "
        f"FROM routes WHERE {SHORT} <> '' AND {LONG} = {SHORT}"
    )


def _same_name_and_description(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_desc' AS field, route_desc AS value, "
        "'route_id ' || route_id || ': route_desc repeats the route ' || "
        f"CASE WHEN lower(trim(route_desc)) = {SHORT} THEN 'short name' ELSE 'long name' END || ' ' || route_desc AS message "
        f"FROM routes WHERE lower(trim(route_desc)) IN ({SHORT}, {LONG})"
    )


def _same_route_and_agency_url(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, r._line AS line, 'route_url' AS field, r.route_url AS value, "
        "'route_id ' || r.route_id || ' has the same route_url as the agency_url of agency ' || first(coalesce(a.agency_id, a.agency_name)) AS message "
        "FROM routes r JOIN agency a ON lower(trim(a.agency_url)) = lower(trim(r.route_url)) "
        "AND (r.agency_id IS NULL OR a.agency_id IS NULL OR a.agency_id = r.agency_id) GROUP BY r._line, r.route_id, r.route_url"
    )


def _duplicate_route_name(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_long_name' AS field, coalesce(route_long_name, route_short_name) AS value, "
        "'route_id \"' || route_id || '\" and route_id \"' || first_id || '\" (line ' || first_line || ') have the same route_short_name ' || "
        "coalesce('\"' || route_short_name || '\"', '(empty)') || ' and route_long_name ' || coalesce('\"' || route_long_name || '\"', '(empty)') || "
        "CASE WHEN coalesce(agency_id, '') <> coalesce(first_agency, '') THEN ' (agencies ' || coalesce(agency_id, '(empty)') || ' and ' || coalesce(first_agency, '(empty)') || ')' ELSE '' END || "
        "CASE WHEN route_type <> first_type THEN ' (route_type ' || route_type || ' and ' || first_type || ')' ELSE '' END AS message "
        "FROM (SELECT *, first_value(route_id) OVER w AS first_id, first_value(_line) OVER w AS first_line, "
        "first_value(agency_id) OVER w AS first_agency, first_value(route_type) OVER w AS first_type FROM routes "
        f"WHERE coalesce({SHORT}, '') <> '' OR coalesce({LONG}, '') <> '' "
        f"WINDOW w AS (PARTITION BY coalesce({SHORT}, ''), coalesce({LONG}, '') ORDER BY _line)) WHERE _line <> first_line"
    )


def _luma(col: str) -> str:
    c = f"upper(trim({col}))"
    return (f"(0.30 * CAST('0x' || substr({c}, 1, 2) AS INTEGER) + 0.59 * CAST('0x' || substr({c}, 3, 2) AS INTEGER) "
            f"+ 0.11 * CAST('0x' || substr({c}, 5, 2) AS INTEGER))")


def _color_contrast(ctx: Context) -> str:
    limit = float(ctx.param("route_color_min_luma_difference", 72))
    ok = "regexp_full_match(trim({c}), '[0-9A-Fa-f]{{6}}')"
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_text_color' AS field, route_color || '/' || route_text_color AS value, "
        "'route_id ' || route_id || ': route_text_color ' || route_text_color || ' on route_color ' || route_color || "
        f"' differs in brightness by only ' || CAST(round(abs(l1 - l2)) AS INTEGER) || ' of 255 (at least {limit:g} is needed to be legible)' AS message "
        f"FROM (SELECT *, {_luma('route_color')} AS l1, {_luma('route_text_color')} AS l2 FROM routes "
        f"WHERE {ok.format(c='route_color')} AND {ok.format(c='route_text_color')}) WHERE abs(l1 - l2) < {limit}"
    )


def _unused_route(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_id' AS field, route_id AS value, "
        "'route_id ' || route_id || coalesce(' (' || coalesce(route_short_name, route_long_name) || ')', '') || ' has no trip in trips.txt' AS message "
        "FROM routes WHERE route_id NOT IN (SELECT DISTINCT route_id FROM trips WHERE route_id IS NOT NULL)"
    )


RULES: list[Rule] = [
    Rule("route_both_short_and_long_name_missing", ERROR, "A route has neither route_short_name nor route_long_name, so riders cannot tell which route it is.",
         ("file", "line", "route_short_name", "route_long_name"), _both_names_missing, needs=("routes",),
         fix="Fill in route_short_name (the number or code on the bus) or route_long_name (the name of the route), or both.",
         why_ja="路線に略称 (route_short_name) も名称 (route_long_name) もなく、利用者がどの路線か分かりません。",
         fix_ja="route_short_name（系統番号など）か route_long_name（路線名）の少なくとも一方を入力してください。"),
    Rule("route_short_name_too_long", WARNING, "A route_short_name is longer than 12 characters; it should be a short code riders use to identify the route, not a name.",
         ("file", "line", "route_short_name"), _short_name_too_long, needs=("routes",),
         fix="Put the name in route_long_name and keep only the route number or code in route_short_name (or leave it empty).",
         why_ja="路線の略称 (route_short_name) が 12 文字を超えています。略称は系統番号などの短い記号にしてください。",
         fix_ja="名称は route_long_name に入れ、route_short_name には系統番号だけを入れてください（なければ空欄で構いません）。"),
    Rule("route_long_name_contains_short_name", WARNING, "A route_long_name begins with its route_short_name; apps show both side by side, so the short name appears twice.",
         ("file", "line", "route_long_name"), _long_contains_short, needs=("routes",),
         fix="Remove the route_short_name from the start of route_long_name.",
         why_ja="路線名 (route_long_name) が略称 (route_short_name) で始まっています。アプリでは両方が並べて表示されるため、略称が二重に表示されます。",
         fix_ja="route_long_name の先頭から略称を取り除いてください。"),
    Rule("route_short_and_long_name_equal", WARNING, "A route's route_short_name and route_long_name are the same; apps show both side by side.",
         ("file", "line", "route_short_name", "route_long_name"), _names_equal, needs=("routes",),
         fix="Keep the value in only one of the two fields (short code in route_short_name, name in route_long_name).",
         why_ja="路線の略称 (route_short_name) と名称 (route_long_name) が同じです。アプリでは両方が並べて表示されます。",
         fix_ja="どちらか一方だけに入力してください（系統番号は route_short_name、路線名は route_long_name）。"),
    Rule("same_name_and_description_for_route", WARNING, "A route's route_desc repeats its short or long name, which adds nothing for riders.",
         ("file", "line", "route_desc"), _same_name_and_description, needs=("routes",),
         fix="Empty route_desc, or describe the route (where it goes, when it runs).",
         why_ja="路線の説明 (route_desc) が略称または路線名と同じで、利用者に役立つ情報になっていません。",
         fix_ja="route_desc を空欄にするか、経由地や運行時間帯などの説明を書いてください。"),
    Rule("same_route_and_agency_url", WARNING, "A route's route_url is its agency's URL; route_url should be a page about that route.",
         ("file", "line", "route_url"), _same_route_and_agency_url, needs=("routes",),
         fix="Empty route_url, or link to the route's own timetable page.",
         why_ja="路線の URL (route_url) が事業者の URL と同じです。route_url はその路線のページにしてください。",
         fix_ja="route_url を空欄にするか、路線ごとの時刻表ページを指定してください。"),
    Rule("duplicate_route_name", WARNING, "Two routes have the same route_short_name and route_long_name, so riders cannot tell them apart (FeedValidator compares them across agencies and route types too).",
         ("file", "line", "route_short_name", "route_long_name"), _duplicate_route_name, needs=("routes",),
         fix="If they are the same route, give their trips one route_id; otherwise make the names different (e.g. add the via stop or direction).",
         why_ja="二つの路線の略称 (route_short_name) と路線名 (route_long_name) の組み合わせが同じで、利用者が区別できません。",
         fix_ja="同じ路線なら便を一つの route_id にまとめ、別の路線なら経由地や行先を加えるなどして名称を区別してください。"),
    Rule("route_color_contrast", WARNING, "A route's route_text_color and route_color are too close in brightness, so the route name is hard to read on its colour.",
         ("file", "line", "route_color", "route_text_color"), _color_contrast, needs=("routes",),
         fix="Use a light text colour (e.g. FFFFFF) on a dark route colour, or a dark one (000000) on a light colour.",
         why_ja="路線の文字色 (route_text_color) と路線色 (route_color) の明るさが近く、路線名が読みにくくなります。",
         fix_ja="暗い路線色には明るい文字色（例: FFFFFF）、明るい路線色には暗い文字色（000000）を指定してください。"),
    Rule("unused_route", WARNING, "A route has no trip in trips.txt, so it never runs.",
         ("file", "line", "route_id"), _unused_route, needs=("routes",),
         fix="Delete the route, or add its trips.",
         why_ja="trips.txt にこの路線の便が一本もなく、運行されません。",
         fix_ja="路線を削除するか、その便を追加してください。"),
]
