"""Rules on translations.txt, in both layouts it comes in.

GTFS (and GTFS-JP from its 2nd edition) names the translated table, field and record:
``table_name, field_name, language, translation, record_id, record_sub_id, field_value``.
The GTFS-JP 1st edition layout translates a text wherever it appears: ``trans_id, lang,
translation``, where trans_id is the Japanese text itself. Kana readings use the language
``ja-Hrkt``.
"""

from __future__ import annotations

from transforms.rules.engine import ERROR, INFO, WARNING, Context, Rule
from transforms.schema import load_schema

#: Tables a translation may target, with the field record_id refers to.
TARGETS = {
    "agency": "agency_id",
    "stops": "stop_id",
    "routes": "route_id",
    "trips": "trip_id",
    "stop_times": "trip_id",
    "pathways": "pathway_id",
    "levels": "level_id",
    "feed_info": None,
    "attributions": "attribution_id",
}
#: GTFS-JP tables a GTFS-JP feed may translate too.
JP_TARGETS = {"agency_jp": "agency_id", "office_jp": "office_id", "routes_jp": "route_id", "pattern_jp": "jp_pattern_id"}

NEW = "table_name IS NOT NULL"
OLD = "table_name IS NULL AND trans_id IS NOT NULL"
NONE = "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"


def _targets(ctx: Context) -> dict[str, str | None]:
    return {**TARGETS, **JP_TARGETS} if ctx.profile == "gtfs-jp" else dict(TARGETS)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _unknown_table(ctx: Context) -> str:
    names = ", ".join(_lit(t) for t in _targets(ctx))
    return (
        "SELECT 'translations.txt' AS file, _line AS line, 'table_name' AS field, table_name AS value, "
        f"'table_name ' || table_name || ' is not a table that can be translated ({', '.join(_targets(ctx))})' AS message "
        f"FROM translations WHERE {NEW} AND table_name NOT IN ({names})"
    )


def _unknown_field(ctx: Context) -> str:
    schema = load_schema()
    pairs = ", ".join(f"({_lit(t)}, {_lit(f.name)})" for t in _targets(ctx) for f in schema.tables[t].fields)
    names = ", ".join(_lit(t) for t in _targets(ctx))
    return (
        "SELECT 'translations.txt' AS file, _line AS line, 'field_name' AS field, field_name AS value, "
        "'field_name ' || field_name || ' is not a field of ' || table_name || '.txt' AS message "
        f"FROM translations WHERE {NEW} AND table_name IN ({names}) AND field_name IS NOT NULL "
        f"AND (table_name, field_name) NOT IN (SELECT * FROM (VALUES {pairs}) p(t, f))"
    )


def _unexpected_value(ctx: Context) -> str:
    return (
        "SELECT 'translations.txt' AS file, line, x.field AS field, x.value AS value, x.message AS message FROM ("
        "SELECT _line AS line, unnest(["
        "CASE WHEN table_name = 'feed_info' AND record_id IS NOT NULL THEN {'field': 'record_id', 'value': record_id, 'message': 'feed_info has one row: record_id must be empty'} END, "
        "CASE WHEN table_name = 'feed_info' AND record_sub_id IS NOT NULL THEN {'field': 'record_sub_id', 'value': record_sub_id, 'message': 'feed_info has one row: record_sub_id must be empty'} END, "
        "CASE WHEN table_name = 'feed_info' AND field_value IS NOT NULL THEN {'field': 'field_value', 'value': field_value, 'message': 'feed_info has one row: field_value must be empty'} END, "
        "CASE WHEN table_name <> 'feed_info' AND record_id IS NOT NULL AND field_value IS NOT NULL THEN {'field': 'field_value', 'value': field_value, "
        "'message': 'record_id ' || record_id || ' and field_value are both given; give one of them'} END, "
        "CASE WHEN table_name NOT IN ('feed_info', 'stop_times') AND record_sub_id IS NOT NULL THEN {'field': 'record_sub_id', 'value': record_sub_id, "
        "'message': 'record_sub_id is only used for stop_times; it must be empty for ' || table_name} END"
        f"]) AS x FROM translations WHERE {NEW}) WHERE x IS NOT NULL"
    )


def _without_target(ctx: Context) -> str:
    return (
        "SELECT 'translations.txt' AS file, _line AS line, 'record_id' AS field, NULL AS value, "
        "'the translation ' || translation || ' of ' || table_name || '.' || coalesce(field_name, '?') || ' names neither a record_id nor a field_value, "
        "so it is unknown what it translates' AS message "
        f"FROM translations WHERE {NEW} AND table_name <> 'feed_info' AND record_id IS NULL AND field_value IS NULL"
    )


def _foreign_key(ctx: Context) -> str:
    parts = []
    for table, key in _targets(ctx).items():
        if key is None:
            continue
        if table == "stop_times":
            cond = ("NOT EXISTS (SELECT 1 FROM stop_times s WHERE s.trip_id = t.record_id "
                    "AND (t.record_sub_id IS NULL OR CAST(s.stop_sequence AS VARCHAR) = t.record_sub_id OR s.stop_sequence = TRY_CAST(t.record_sub_id AS INTEGER)))")
            what = "'record_id ' || record_id || coalesce(' / record_sub_id ' || record_sub_id, '') || ' is not a trip_id / stop_sequence of stop_times.txt'"
        else:
            cond = f"record_id NOT IN (SELECT {key} FROM {table} WHERE {key} IS NOT NULL)"
            what = f"'record_id ' || record_id || ' is not a {key} of {table}.txt'"
        parts.append(
            f"SELECT 'translations.txt' AS file, _line AS line, 'record_id' AS field, record_id AS value, {what} AS message "
            f"FROM translations t WHERE {NEW} AND table_name = {_lit(table)} AND record_id IS NOT NULL AND {cond}"
        )
    return " UNION ALL ".join(parts)


def _value_not_found(ctx: Context) -> str:
    schema = load_schema()
    sources = []
    for table in _targets(ctx):
        if table == "feed_info" or not ctx.has(table):  # an absent table is empty: it holds no value to find
            continue
        for f in schema.tables[table].fields:
            if f.sql_type != "VARCHAR":
                continue
            wanted = (f"EXISTS (SELECT 1 FROM translations WHERE table_name = {_lit(table)} AND field_name = {_lit(f.name)} "
                      "AND field_value IS NOT NULL AND record_id IS NULL)")
            sources.append(f"SELECT DISTINCT {_lit(table)} AS t, {_lit(f.name)} AS f, \"{f.column}\" AS v FROM {table} WHERE {wanted}")
    sources = sources or ["SELECT NULL::VARCHAR AS t, NULL::VARCHAR AS f, NULL::VARCHAR AS v WHERE false"]
    return (
        f"WITH used AS ({' UNION ALL '.join(sources)}) "
        "SELECT 'translations.txt' AS file, _line AS line, 'field_value' AS field, field_value AS value, "
        "'field_value ' || field_value || ' does not occur in ' || table_name || '.' || field_name || ', so the translation ' || translation || ' is never used' AS message "
        f"FROM translations WHERE {NEW} AND record_id IS NULL AND field_value IS NOT NULL AND table_name <> 'feed_info' "
        "AND (table_name, field_name, field_value) NOT IN (SELECT t, f, v FROM used WHERE v IS NOT NULL) "
        f"AND field_name IS NOT NULL AND table_name IN ({', '.join(_lit(t) for t in _targets(ctx))})"
    )


def _duplicate(ctx: Context) -> str:
    new_key = "table_name, field_name, lower(language), record_id, record_sub_id, field_value"
    return (
        "SELECT 'translations.txt' AS file, _line AS line, 'translation' AS field, translation AS value, "
        "'this translation repeats line ' || first_line || ' for the same ' || what || CASE WHEN first_translation <> translation "
        "THEN ' with a different text (' || first_translation || ')' ELSE '' END AS message FROM ("
        f"SELECT _line, translation, min(_line) OVER w AS first_line, first_value(translation) OVER w AS first_translation, "
        "table_name || '.' || coalesce(field_name, '') || ' in ' || coalesce(language, '') AS what "
        f"FROM translations WHERE {NEW} WINDOW w AS (PARTITION BY {new_key} ORDER BY _line) "
        "UNION ALL SELECT _line, translation, min(_line) OVER w, first_value(translation) OVER w, "
        "'trans_id ' || trans_id || ' in ' || coalesce(lang, '') "
        f"FROM translations WHERE {OLD} WINDOW w AS (PARTITION BY trans_id, lower(lang) ORDER BY _line)"
        ") WHERE _line > first_line"
    )


def _old_style(ctx: Context) -> str:
    return (
        "SELECT 'translations.txt' AS file, min(_line) AS line, 'trans_id' AS field, NULL AS value, "
        "'translations.txt uses the GTFS-JP 1st edition layout (trans_id, lang, translation) in ' || count(*) || ' row(s); "
        "GTFS and GTFS-JP from the 2nd edition use table_name, field_name, language, translation, record_id, record_sub_id, field_value' AS message "
        f"FROM translations WHERE {OLD} HAVING count(*) > 0"
    )


#: Texts of a GTFS-JP feed an old-style trans_id may translate.
OLD_STYLE_SOURCES = (
    ("agency", "agency_name"), ("agency_jp", "agency_official_name"), ("stops", "stop_name"), ("stops", "stop_desc"),
    ("stops", "platform_code"), ("routes", "route_short_name"), ("routes", "route_long_name"), ("routes", "route_desc"),
    ("trips", "trip_headsign"), ("trips", "trip_short_name"), ("trips", "jp_trip_desc"), ("stop_times", "stop_headsign"),
    ("office_jp", "office_name"), ("routes_jp", "origin_stop"), ("routes_jp", "via_stop"), ("routes_jp", "destination_stop"),
    ("pattern_jp", "origin_stop"), ("pattern_jp", "via_stop"), ("pattern_jp", "destination_stop"), ("feed_info", "feed_publisher_name"),
)


def _unused_old_style(ctx: Context) -> str:
    texts = " UNION ".join(f"SELECT DISTINCT {f} AS v FROM {t}" for t, f in OLD_STYLE_SOURCES)
    return (
        f"WITH texts AS ({texts}) "
        "SELECT 'translations.txt' AS file, _line AS line, 'trans_id' AS field, trans_id AS value, "
        "'trans_id ' || trans_id || ' (' || coalesce(lang, '') || ': ' || translation || ') matches no name, headsign or description in the feed, so it is never used' AS message "
        f"FROM translations WHERE {OLD} AND trans_id NOT IN (SELECT v FROM texts WHERE v IS NOT NULL) "
        # a name made of the text plus a suffix (e.g. '1番のりば') does not need its own translation
        "AND NOT EXISTS (SELECT 1 FROM texts WHERE v IS NOT NULL AND contains(v, trans_id))"
    )


#: Characters a kana reading may have besides kana: spaces, digits, Latin letters and punctuation.
KANJI = "[\\x{4E00}-\\x{9FFF}\\x{3400}-\\x{4DBF}\\x{F900}-\\x{FAFF}々〆ヶ]"


def _kana_not_kana(ctx: Context) -> str:
    return (
        "SELECT 'translations.txt' AS file, _line AS line, 'translation' AS field, translation AS value, "
        "'the ja-Hrkt reading ' || translation || ' of ' || coalesce(field_value, trans_id, record_id, '?') || ' contains kanji; a reading must be written in kana' AS message "
        f"FROM translations WHERE lower(coalesce(language, lang)) = 'ja-hrkt' AND regexp_matches(translation, '{KANJI}')"
    )


#: A platform number in a stop name ('（２番のりば）', '1番線') needs no reading of its own.
PLATFORM = "[（(]?[0-9０-９]+番(のりば|乗り場|乗場|線)?[）)]?"


def _missing_kana(ctx: Context) -> str:
    # The GTFS-JP 1st edition composes readings from parts ('川崎駅西口' + '番のりば' for '川崎駅西口51番のりば'):
    # a name is read when no kanji is left after taking out every part that has a reading, longest first.
    return (
        f"WITH names AS (SELECT stop_name, regexp_replace(stop_name, '{PLATFORM}', '', 'g') AS bare, min(_line) AS line, "
        "string_agg(stop_id, ', ' ORDER BY stop_id) AS ids FROM stops "
        f"WHERE stop_name IS NOT NULL AND regexp_matches(regexp_replace(stop_name, '{PLATFORM}', '', 'g'), '{KANJI}') "
        "AND coalesce(location_type, 0) IN (0, 1) GROUP BY stop_name), "
        f"parts AS (SELECT DISTINCT trans_id AS t FROM translations WHERE {OLD} AND lower(lang) = 'ja-hrkt'), "
        "composed AS (SELECT n.stop_name, list(p.t ORDER BY length(p.t) DESC, p.t) AS ts FROM names n JOIN parts p ON contains(n.bare, p.t) GROUP BY n.stop_name) "
        "SELECT 'stops.txt' AS file, n.line, 'stop_name' AS field, n.stop_name AS value, "
        "'stop_name ' || n.stop_name || ' (stop_id ' || n.ids || ') has no kana reading (ja-Hrkt) in translations.txt' AS message "
        "FROM names n LEFT JOIN composed c USING (stop_name) "
        f"WHERE regexp_matches(coalesce(list_reduce(c.ts, lambda acc, t: replace(acc, t, ''), n.bare), n.bare), '{KANJI}') "
        "AND NOT EXISTS (SELECT 1 FROM translations t, stops s WHERE s.stop_name = n.stop_name AND lower(t.language) = 'ja-hrkt' "
        "AND t.table_name = 'stops' AND t.field_name = 'stop_name' AND (t.field_value = s.stop_name OR t.record_id = s.stop_id))"
    )


RULES: list[Rule] = [
    Rule("translation_unknown_table_name", WARNING, "A translation names a table that cannot be translated.",
         ("file", "line", "table_name"), _unknown_table, needs=("translations",),
         fix="Use one of agency, stops, routes, trips, stop_times, pathways, levels, feed_info, attributions.",
         why_ja="translations.txt の table_name が、翻訳できるテーブル名になっていません。",
         fix_ja="agency・stops・routes・trips・stop_times・feed_info などのテーブル名（.txt なし）を書いてください。"),
    Rule("translation_unknown_field_name", WARNING, "A translation names a field that its table does not have.",
         ("file", "line", "field_name"), _unknown_field, needs=("translations",),
         fix="Write the field's exact name, e.g. stop_name or trip_headsign.",
         why_ja="translations.txt の field_name が、そのテーブルにない項目名になっています。",
         fix_ja="stop_name や trip_headsign のように、項目名を正確に書いてください。"),
    Rule("translation_unexpected_value", ERROR, "A translation gives a value that must be empty (record_id with field_value, record_sub_id outside stop_times, ids for feed_info).",
         ("file", "line", "field"), _unexpected_value, needs=("translations",),
         fix="Identify the record either by record_id (and record_sub_id for stop_times) or by field_value, not both; leave them empty for feed_info.",
         why_ja="translations.txt で、空欄にすべき項目に値があります（record_id と field_value の両方、stop_times 以外の record_sub_id、feed_info の ID など）。",
         fix_ja="対象は record_id（stop_times では record_sub_id も）か field_value のどちらか一方で指定してください。feed_info では空欄にします。"),
    Rule("translation_without_target", ERROR, "A translation names neither a record_id nor a field_value, so it is unknown what it translates.",
         ("file", "line"), _without_target, needs=("translations",),
         fix="Fill in field_value with the original text (or record_id with the id of the row).",
         why_ja="translations.txt の行に record_id も field_value もなく、何の翻訳か分かりません。",
         fix_ja="field_value に元の文字列（または record_id に対象行の ID）を書いてください。"),
    Rule("translation_foreign_key_violation", ERROR, "A translation's record_id (and record_sub_id) is not an id of the table it names.",
         ("file", "line", "record_id"), _foreign_key, needs=("translations",),
         fix="Correct the record_id, or delete the translation of a row that no longer exists.",
         why_ja="translations.txt の record_id が、指定したテーブルに存在しない ID です。",
         fix_ja="record_id を正しい ID に直すか、もう存在しない行の翻訳を削除してください。"),
    Rule("translation_value_not_found", WARNING, "A translation's field_value does not occur in the field it names, so it is never used.",
         ("file", "line", "field_value"), _value_not_found, needs=("translations",),
         fix="Copy the original text exactly (same characters, full- or half-width) into field_value.",
         why_ja="translations.txt の field_value が、指定した項目のどの値とも一致せず、この翻訳は使われません。",
         fix_ja="元の文字列を全角・半角も含めて正確に field_value に写してください。"),
    Rule("duplicate_translation", WARNING, "Two translations target the same text in the same language.",
         ("file", "line", "translation"), _duplicate, needs=("translations",),
         fix="Keep one translation per text and language.",
         why_ja="同じ文字列・同じ言語の翻訳が二つあります。",
         fix_ja="一つの文字列・言語につき翻訳は一つにしてください。"),
    Rule("old_style_translations", INFO, "translations.txt uses the GTFS-JP 1st edition layout (trans_id, lang, translation), which general GTFS apps do not read.",
         ("file",), _old_style, needs=("translations",),
         fix="Convert to the GTFS layout: table_name, field_name, language, translation, field_value (GTFS-JP 2nd edition and later).",
         why_ja="translations.txt が GTFS-JP 第 1 版の形式（trans_id, lang, translation）で、一般の GTFS アプリでは読まれません。",
         fix_ja="GTFS-JP 第 2 版以降の形式（table_name, field_name, language, translation, field_value）に変換してください。"),
    Rule("unused_translation", INFO, "An old-style translation's trans_id matches no name, headsign or description of the feed.",
         ("file", "line", "trans_id"), _unused_old_style, needs=("translations",),
         fix="Copy the original text exactly into trans_id, or delete the translation.",
         why_ja="translations.txt の trans_id が、データ中のどの名称・行先・説明とも一致せず、この翻訳は使われません。",
         fix_ja="元の文字列を正確に trans_id に写すか、不要な翻訳を削除してください。"),
    Rule("invalid_kana_reading", WARNING, "A kana reading (language ja-Hrkt) contains kanji.",
         ("file", "line", "translation"), _kana_not_kana, needs=("translations",),
         fix="Write the reading in hiragana or katakana.",
         why_ja="読み仮名 (ja-Hrkt) に漢字が含まれています。",
         fix_ja="読み仮名はひらがなかカタカナで書いてください。"),
    Rule("missing_kana_reading", WARNING, "A stop name with kanji has no kana reading (ja-Hrkt) in translations.txt, which GTFS-JP requires.",
         ("file", "line", "stop_name"), _missing_kana, profile="gtfs-jp",
         fix="Add a translations.txt row with language ja-Hrkt and the reading in hiragana for the stop name.",
         why_ja="漢字を含む停留所名に、translations.txt の読み仮名 (ja-Hrkt) がありません。GTFS-JP では必須です。",
         fix_ja="translations.txt に、その停留所名の読み仮名（ひらがな、language は ja-Hrkt）の行を追加してください。"),
]
