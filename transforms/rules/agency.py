"""Rules on agencies: one time zone and language for the feed, agency_id where several agencies exist."""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule


def _inconsistent_timezone(ctx: Context) -> str:
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_timezone' AS field, agency_timezone AS value, "
        "'agency ' || coalesce(agency_id, agency_name) || ' uses time zone ' || agency_timezone || ' but ' || first_agency || ' (line ' || first_line || ') uses ' || first_tz AS message "
        "FROM (SELECT *, first_value(agency_timezone) OVER w AS first_tz, first_value(coalesce(agency_id, agency_name)) OVER w AS first_agency, "
        "first_value(_line) OVER w AS first_line FROM agency WHERE agency_timezone IS NOT NULL WINDOW w AS (ORDER BY _line)) "
        "WHERE agency_timezone <> first_tz"
    )


def _inconsistent_lang(ctx: Context) -> str:
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_lang' AS field, agency_lang AS value, "
        "'agency ' || coalesce(agency_id, agency_name) || ' uses language ' || agency_lang || ' but ' || first_agency || ' (line ' || first_line || ') uses ' || first_lang AS message "
        "FROM (SELECT *, first_value(agency_lang) OVER w AS first_lang, first_value(coalesce(agency_id, agency_name)) OVER w AS first_agency, "
        "first_value(_line) OVER w AS first_line FROM agency WHERE agency_lang IS NOT NULL WINDOW w AS (ORDER BY _line)) "
        "WHERE lower(agency_lang) <> lower(first_lang)"
    )


def _missing_agency_id(*, several: bool):
    """Return the SQL maker for an empty agency_id in agency, routes and fare_attributes, with one or several agencies."""
    cond = "> 1" if several else "= 1"

    def sql(ctx: Context) -> str:
        n = "(SELECT count(*) FROM agency)"
        return (
            "SELECT 'agency.txt' AS file, _line AS line, 'agency_id' AS field, NULL AS value, "
            f"'agency ' || coalesce(agency_name, '(no name)') || ' has no agency_id' || CASE WHEN {n} > 1 THEN ' although agency.txt has ' || {n} || ' agencies' ELSE '' END AS message "
            f"FROM agency WHERE agency_id IS NULL AND {n} {cond} "
            "UNION ALL SELECT 'routes.txt', _line, 'agency_id', NULL, "
            f"'route_id ' || route_id || ' has no agency_id' || CASE WHEN {n} > 1 THEN '; agency.txt has ' || {n} || ' agencies, so it is unclear which one runs it' ELSE '' END "
            f"FROM routes WHERE agency_id IS NULL AND {n} {cond} "
            "UNION ALL SELECT 'fare_attributes.txt', _line, 'agency_id', NULL, "
            f"'fare_id ' || fare_id || ' has no agency_id' || CASE WHEN {n} > 1 THEN '; agency.txt has ' || {n} || ' agencies, so it is unclear whose fare it is' ELSE '' END "
            f"FROM fare_attributes WHERE agency_id IS NULL AND {n} {cond}"
        )

    return sql


def _unused_agency(ctx: Context) -> str:
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_id' AS field, agency_id AS value, "
        "'agency_id ' || agency_id || ' (' || coalesce(agency_name, '') || ') runs no route in routes.txt' AS message "
        "FROM agency WHERE agency_id IS NOT NULL AND (SELECT count(*) FROM agency) > 1 "
        "AND agency_id NOT IN (SELECT agency_id FROM routes WHERE agency_id IS NOT NULL)"
    )


def _duplicate_agency_name(ctx: Context) -> str:
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_name' AS field, agency_name AS value, "
        "'agency_id ' || coalesce(agency_id, '(empty)') || ' has the same agency_name ' || agency_name || ' as agency_id ' || coalesce(first_id, '(empty)') || ' on line ' || first_line AS message "
        "FROM (SELECT *, first_value(agency_id) OVER w AS first_id, first_value(_line) OVER w AS first_line "
        "FROM agency WHERE agency_name IS NOT NULL WINDOW w AS (PARTITION BY agency_name ORDER BY _line)) WHERE _line <> first_line"
    )


RULES: list[Rule] = [
    Rule("inconsistent_agency_timezone", ERROR, "Agencies of one feed have different time zones; GTFS requires one time zone for all of them.",
         ("file", "line", "agency_timezone"), _inconsistent_timezone, needs=("agency",),
         fix="Give every agency the same agency_timezone (Asia/Tokyo in Japan); set stop_timezone on stops elsewhere.",
         why_ja="agency.txt の事業者ごとにタイムゾーンが異なります。GTFS では全事業者が同じタイムゾーンでなければなりません。",
         fix_ja="すべての事業者の agency_timezone を同じにしてください（日本では Asia/Tokyo）。"),
    Rule("inconsistent_agency_lang", WARNING, "Agencies of one feed declare different languages.",
         ("file", "line", "agency_lang"), _inconsistent_lang, needs=("agency",),
         fix="Use the same agency_lang for every agency (ja for a Japanese feed).",
         why_ja="agency.txt の事業者ごとに言語 (agency_lang) が異なります。",
         fix_ja="すべての事業者の agency_lang を同じにしてください（日本語のデータなら ja）。"),
    Rule("missing_required_agency_id", ERROR, "agency_id is empty although agency.txt has several agencies, so routes and fares cannot be tied to their agency.",
         ("file", "line", "agency_id"), _missing_agency_id(several=True), needs=("agency",),
         fix="Give every agency an agency_id and put it on every route and fare.",
         why_ja="agency.txt に複数の事業者があるのに agency_id が空欄で、路線や運賃がどの事業者のものか分かりません。",
         fix_ja="すべての事業者に agency_id を付け、各路線・運賃にもその agency_id を書いてください。"),
    Rule("missing_recommended_field", WARNING, "agency_id is empty; with a single agency it is allowed but recommended, so that a second agency can be added later.",
         ("file", "line", "agency_id"), _missing_agency_id(several=False), needs=("agency",),
         fix="Fill in agency_id in agency.txt and the same value in routes.txt (and fare_attributes.txt).",
         why_ja="agency_id が空欄です。事業者が一つなら許されますが、後で事業者を追加できるよう記入が推奨されます。",
         fix_ja="agency.txt に agency_id を記入し、routes.txt（と fare_attributes.txt）にも同じ値を書いてください。"),
    Rule("unused_agency", INFO, "An agency in agency.txt runs no route.",
         ("file", "line", "agency_id"), _unused_agency, needs=("agency",),
         fix="Delete the agency, or set its agency_id on the routes it runs.",
         why_ja="agency.txt の事業者が運行する路線が routes.txt にありません。",
         fix_ja="不要な事業者は削除するか、運行する路線の agency_id にその事業者を指定してください。"),
    Rule("duplicate_agency_name", WARNING, "Two agencies have the same agency_name, which riders cannot tell apart.",
         ("file", "line", "agency_name"), _duplicate_agency_name, needs=("agency",),
         fix="Merge the two agencies, or give each its own name.",
         why_ja="agency.txt に同じ名称の事業者が二つあり、利用者には区別がつきません。",
         fix_ja="一つにまとめるか、それぞれ別の名称にしてください。"),
]
