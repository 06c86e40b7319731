"""Rules of the Japanese standard bus format (GTFS-JP, 標準的なバス情報フォーマット).

References from the GTFS-JP files (agency_jp.agency_id, trips.jp_office_id, trips.jp_pattern_id,
routes_jp.route_id) are checked while the feed is typed (foreign_key_violation). These rules
check what GTFS-JP adds on top: the files it requires, the _jp files' consistency with the GTFS
files, agency_id as a corporate number, national holidays, and misspelled column names (which
apply to every feed and are read from the header of every file, the ``_columns`` view).
"""

from __future__ import annotations

import unicodedata

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule
from transforms.schema import load_schema

NONE = "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _misspelled_column(ctx: Context) -> str:
    # The header of every file is in _columns, also when the file has no rows (Shibukawa's agency_jp.txt);
    # likely_field is decided once, while the header is read (transforms.canonical.likely_field).
    return (
        "SELECT file, line, \"column\" AS field, likely_field AS value, "
        "'column ' || \"column\" || ' of ' || file || ' is not a known field; did you mean ' || likely_field || '? "
        "Its values are kept as received but not used' AS message "
        "FROM _columns WHERE likely_field IS NOT NULL"
    )


#: Files GTFS-JP requires (beyond those GTFS requires), and why.
JP_REQUIRED = (
    ("fare_attributes", "fare_attributes.txt is required in GTFS-JP: riders must be able to see the fare"),
    ("translations", "translations.txt is required in GTFS-JP: it gives the kana readings of stop names"),
    ("feed_info", "feed_info.txt is required in GTFS-JP: it names the publisher and the period the data covers"),
)


def _missing_required_file(ctx: Context) -> str:
    parts = [
        f"SELECT {_lit(t + '.txt')} AS file, NULL AS line, NULL AS field, NULL AS value, {_lit(msg)} AS message"
        for t, msg in JP_REQUIRED if t not in ctx.present
    ]
    if "fare_attributes" in ctx.present and "fare_rules" not in ctx.present:
        parts.append(
            "SELECT 'fare_rules.txt' AS file, NULL AS line, NULL AS field, NULL AS value, "
            "'fare_rules.txt is missing but fare_attributes.txt has ' || count(*) || ' fares; GTFS-JP requires fare_rules.txt to say which fare applies where' AS message "
            "FROM fare_attributes HAVING count(*) > 1"
        )
    return " UNION ALL ".join(parts) if parts else NONE


def _agency_missing_in_agency_jp(ctx: Context) -> str:
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_id' AS field, agency_id AS value, "
        "'agency_id ' || coalesce(agency_id, '(empty)') || ' (' || coalesce(agency_name, '') || ') has no row in agency_jp.txt' AS message "
        "FROM agency WHERE agency_id IS NULL OR agency_id NOT IN (SELECT agency_id FROM agency_jp WHERE agency_id IS NOT NULL)"
    )


def _corporate_number(ctx: Context) -> str:
    # 法人番号: 13 digits; the first is a check digit = 9 - (sum of the other digits, weighted 1 and 2 from the right) mod 9.
    weighted = " + ".join(
        f"TRY_CAST(substr(agency_id, {14 - n}, 1) AS INTEGER) * {1 if n % 2 else 2}" for n in range(1, 13)
    )
    return (
        "SELECT 'agency.txt' AS file, _line AS line, 'agency_id' AS field, agency_id AS value, "
        "'agency_id ' || agency_id || CASE WHEN regexp_full_match(agency_id, '[0-9]{13}') "
        "THEN ' looks like a corporate number (法人番号) but its check digit is wrong' "
        "ELSE ' is not a 13-digit corporate number (法人番号)' END AS message "
        "FROM agency WHERE agency_id IS NOT NULL AND (NOT regexp_full_match(agency_id, '[0-9]{13}') OR "
        f"TRY_CAST(substr(agency_id, 1, 1) AS INTEGER) <> 9 - (({weighted}) % 9))"
    )


def _unused_office(ctx: Context) -> str:
    return (
        "SELECT 'office_jp.txt' AS file, _line AS line, 'office_id' AS field, office_id AS value, "
        "'office_id ' || office_id || ' (' || coalesce(office_name, '') || ') is used by no trip (trips.jp_office_id)' AS message "
        "FROM office_jp WHERE office_id NOT IN (SELECT jp_office_id FROM trips WHERE jp_office_id IS NOT NULL)"
    )


def _unused_pattern(ctx: Context) -> str:
    return (
        "SELECT 'pattern_jp.txt' AS file, _line AS line, 'jp_pattern_id' AS field, jp_pattern_id AS value, "
        "'jp_pattern_id ' || jp_pattern_id || ' is used by no trip (trips.jp_pattern_id)' AS message "
        "FROM pattern_jp WHERE jp_pattern_id NOT IN (SELECT jp_pattern_id FROM trips WHERE jp_pattern_id IS NOT NULL)"
    )


def _trip_without_pattern(ctx: Context) -> str:
    return (
        "SELECT 'trips.txt' AS file, _line AS line, 'jp_pattern_id' AS field, NULL AS value, "
        "'trip_id ' || trip_id || ' has no jp_pattern_id although pattern_jp.txt defines route patterns' AS message "
        "FROM trips WHERE jp_pattern_id IS NULL AND EXISTS (SELECT 1 FROM pattern_jp)"
    )


def _route_missing_in_routes_jp(ctx: Context) -> str:
    return (
        "SELECT 'routes.txt' AS file, _line AS line, 'route_id' AS field, route_id AS value, "
        "'route_id ' || route_id || coalesce(' (' || coalesce(route_long_name, route_short_name) || ')', '') || ' has no row in routes_jp.txt' AS message "
        "FROM routes WHERE route_id NOT IN (SELECT route_id FROM routes_jp WHERE route_id IS NOT NULL)"
    )


def _invalid_update_date(ctx: Context) -> str:
    parts = []
    for table in ("routes_jp", "pattern_jp"):
        key = "route_id" if table == "routes_jp" else "jp_pattern_id"
        parts.append(
            f"SELECT '{table}.txt' AS file, _line AS line, 'route_update_date' AS field, route_update_date AS value, "
            f"'{key} ' || {key} || ': route_update_date ' || route_update_date || ' is not a date in YYYYMMDD form' AS message "
            f"FROM {table} WHERE route_update_date IS NOT NULL AND try_strptime(route_update_date, '%Y%m%d') IS NULL"
        )
    return " UNION ALL ".join(parts)


def japanese_holidays() -> tuple[tuple[str, str], ...]:
    """Return (YYYY-MM-DD, name in Japanese) of every national holiday of Japan, 2000-2050 (the ``holidays`` package's, as
    pinned in transforms/rules/reference.json: importing it and computing them took longer than a small feed's rules)."""
    from transforms.rules.reference import japanese_holidays as pinned

    return pinned()


def _holiday_without_exception(ctx: Context) -> str:
    from transforms.rules.calendar import service_days

    values = ", ".join(f"(DATE '{d}', {_lit(n)})" for d, n in japanese_holidays())
    holidays = ctx.shared("ref_jp_holidays", f"SELECT * FROM (VALUES {values}) h(d, name)")  # 900 dates: a table, planned once
    return (
        f"WITH h AS (SELECT d, name FROM {holidays}), sd AS {service_days()}, "
        "weekday AS (SELECT service_id FROM calendar WHERE (monday + tuesday + wednesday + thursday + friday) > 0 AND saturday = 0 AND sunday = 0) "
        "SELECT 'calendar_dates.txt' AS file, NULL AS line, 'date' AS field, strftime(h.d, '%Y%m%d') AS value, "
        "strftime(h.d, '%Y-%m-%d') || ' (' || h.name || ') is a national holiday, but weekday-only service ' || "
        "string_agg(DISTINCT sd.service_id, ', ' ORDER BY sd.service_id) || ' runs as usual and calendar_dates.txt has no exception for that day' AS message "
        "FROM h JOIN sd ON sd.d = h.d JOIN weekday USING (service_id) "
        "WHERE NOT EXISTS (SELECT 1 FROM calendar_dates cd WHERE cd.date = h.d) "
        "AND sd.service_id IN (SELECT service_id FROM trips) GROUP BY h.d, h.name"
    )


#: Half-width katakana and punctuation (U+FF61-U+FF9F) and their full-width forms (NFKC of each, one character).
HALF_WIDTH = "".join(chr(c) for c in range(0xFF61, 0xFFA0))
FULL_WIDTH = "".join(unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF61, 0xFFA0))


def _half_width_katakana(ctx: Context) -> str:
    # Every text field of every file the feed has; the full-width form is NFKC of the half-width characters
    # only (translate, then NFC joins カ + the combining voiced mark into ガ), so other characters stay as they are.
    parts = []
    for table in load_schema().tables.values():
        if table.name not in ctx.present:
            continue
        for f in table.fields:
            if f.type != "text":
                continue
            col = f'"{f.column}"'
            full = f"nfc_normalize(translate({col}, {_lit(HALF_WIDTH)}, {_lit(FULL_WIDTH)}))"
            parts.append(
                f"SELECT {_lit(table.file_name)} AS file, _line AS line, {_lit(f.name)} AS field, {col} AS value, "
                f"{_lit(f.name + ' ')} || {col} || ' is written in half-width katakana; write it full-width: ' || {full} AS message "
                f"FROM {table.name} WHERE regexp_matches({col}, '[{HALF_WIDTH[0]}-{HALF_WIDTH[-1]}]')"
            )
    return " UNION ALL ".join(parts) if parts else NONE


RULES: list[Rule] = [
    Rule("misspelled_column", WARNING, "A column name is not a known field but is close to one the header lacks (e.g. agency_offilcal_name "
         "for agency_official_name), so its values are not used; the header is checked even when the file has no rows. "
         "A typo gets this notice only (no unknown_column).",
         ("file", "field"), _misspelled_column,
         fix="In the first line of the file, rename the column shown in [ ] to the field shown after = (e.g. agency_offilcal_name to agency_official_name).",
         why_ja="列名が仕様の項目名と一致しませんが、よく似た項目があります（例: agency_offilcal_name → agency_official_name）。この列の値は使われません。データ行のないファイルでも 1 行目の列名を確認します。",
         fix_ja="ファイル 1 行目の [ ] 内の列名を、= の後に示した正しい項目名に書き直してください（例: agency_offilcal_name → agency_official_name）。"),
    Rule("missing_gtfs_jp_required_file", ERROR, "A file GTFS-JP requires (fare_attributes, fare_rules when there are several fares, translations, feed_info) is absent.",
         ("file",), _missing_required_file, profile="gtfs-jp",
         fix="Add the file; see the GTFS-JP specification for its fields.",
         why_ja="標準的なバス情報フォーマットで必須のファイル（運賃・翻訳・提供情報など）がありません。",
         fix_ja="ファイルを追加してください。項目は標準的なバス情報フォーマットの仕様を参照してください。"),
    Rule("agency_missing_in_agency_jp", WARNING, "An agency of agency.txt has no row in agency_jp.txt (its official name, address and representative).",
         ("file", "line", "agency_id"), _agency_missing_in_agency_jp, profile="gtfs-jp", needs=("agency_jp",),
         fix="Add a row to agency_jp.txt with the same agency_id.",
         why_ja="agency.txt の事業者に対応する行が agency_jp.txt にありません（正式名称・住所・代表者）。",
         fix_ja="同じ agency_id の行を agency_jp.txt に追加してください。"),
    Rule("agency_id_not_corporate_number", INFO, "GTFS-JP recommends the agency's 13-digit corporate number (法人番号) as agency_id; this one is not a valid one.",
         ("file", "line", "agency_id"), _corporate_number, profile="gtfs-jp", needs=("agency",),
         fix="Use the corporate number from the National Tax Agency's site (houjin-bangou.nta.go.jp), also in routes.txt and agency_jp.txt.",
         why_ja="標準的なバス情報フォーマットでは agency_id に 13 桁の法人番号を使うことが推奨されていますが、この値は有効な法人番号ではありません。",
         fix_ja="国税庁法人番号公表サイトで法人番号を確認し、agency.txt・routes.txt・agency_jp.txt の agency_id に使ってください。"),
    Rule("unused_office", INFO, "An office of office_jp.txt is used by no trip.",
         ("file", "line", "office_id"), _unused_office, profile="gtfs-jp", needs=("office_jp",),
         fix="Set the office on its trips (trips.jp_office_id), or delete it.",
         why_ja="office_jp.txt の営業所がどの便にも使われていません。",
         fix_ja="その営業所が担当する便の jp_office_id に設定するか、不要なら削除してください。"),
    Rule("unused_pattern_jp", INFO, "A route pattern of pattern_jp.txt is used by no trip.",
         ("file", "line", "jp_pattern_id"), _unused_pattern, profile="gtfs-jp", needs=("pattern_jp",),
         fix="Set the pattern on its trips (trips.jp_pattern_id), or delete it.",
         why_ja="pattern_jp.txt の系統がどの便にも使われていません。",
         fix_ja="その系統の便の jp_pattern_id に設定するか、不要なら削除してください。"),
    Rule("trip_without_jp_pattern", WARNING, "A trip has no jp_pattern_id although pattern_jp.txt defines route patterns.",
         ("file", "line", "trip_id"), _trip_without_pattern, profile="gtfs-jp", needs=("pattern_jp",),
         fix="Set jp_pattern_id on the trip.",
         why_ja="pattern_jp.txt で系統が定義されているのに、この便に jp_pattern_id がありません。",
         fix_ja="便に jp_pattern_id を設定してください。"),
    Rule("route_missing_in_routes_jp", WARNING, "A route of routes.txt has no row in routes_jp.txt (its update date, origin, via and destination).",
         ("file", "line", "route_id"), _route_missing_in_routes_jp, profile="gtfs-jp", needs=("routes_jp",),
         fix="Add a row to routes_jp.txt with the same route_id.",
         why_ja="routes.txt の路線に対応する行が routes_jp.txt にありません（更新日・起点・経過地・終点）。",
         fix_ja="同じ route_id の行を routes_jp.txt に追加してください。"),
    Rule("invalid_jp_update_date", WARNING, "route_update_date of routes_jp.txt or pattern_jp.txt is not a date in YYYYMMDD form.",
         ("file", "line", "route_update_date"), _invalid_update_date, profile="gtfs-jp",
         fix="Write the date the route was last changed as YYYYMMDD, e.g. 20260401.",
         why_ja="routes_jp.txt / pattern_jp.txt のダイヤ改正日 (route_update_date) が YYYYMMDD 形式の日付になっていません。",
         fix_ja="ダイヤ改正日を YYYYMMDD 形式（例: 20260401）で書いてください。"),
    Rule("holiday_without_service_exception", WARNING, "On a national holiday a weekday-only service runs as usual and calendar_dates.txt has no exception; Japanese buses usually run a holiday timetable.",
         ("file", "date"), _holiday_without_exception, profile="gtfs-jp", needs=("calendar", "trips"),
         fix="If the holiday timetable differs, add the holiday to calendar_dates.txt (remove the weekday service, add the holiday service).",
         why_ja="祝日に平日ダイヤがそのまま運行する設定で、calendar_dates.txt にその日の例外がありません。多くのバスは祝日に休日ダイヤで運行します。",
         fix_ja="祝日のダイヤが異なる場合は、calendar_dates.txt に祝日を追加してください（平日ダイヤを運休 2、休日ダイヤを運行 1）。"),
    Rule("half_width_katakana", WARNING, "A name is written in half-width katakana (ﾊﾞｽ), common in municipal data; apps, "
         "speech readers and search treat it as different text from the full-width form (バス) riders type.",
         ("file", "line", "field"), _half_width_katakana,
         fix="Replace the value with the full-width form shown after 'write it full-width:' (NFKC of the half-width characters).",
         why_ja="名称が半角カタカナ（ﾊﾞｽ）で書かれています。アプリの検索や読み上げでは全角（バス）と別の文字として扱われます。",
         fix_ja="値を「write it full-width:」の後に示した全角の表記に書き換えてください（半角カナのみを全角に直したもの）。"),
]
