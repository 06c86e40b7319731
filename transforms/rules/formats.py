"""Rules on value formats that typing does not check: URLs, e-mails, phones, colours, time zones,
languages, currencies, enumerations, number ranges, line breaks and id characters.

The checks are generated from the canonical schema (specs/schemas/gtfs.yml): every field of
type ``url`` is checked by invalid_url, and so on, in one scan per table.
"""

from __future__ import annotations

from functools import lru_cache

from transforms.rules.engine import ERROR, WARNING, Context, Rule
from transforms.schema import Field, Table, load_schema

# --- reference lists (Python constants, compared set-based in SQL) -------------------------------


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """Return the IANA time zone names (tzdata)."""
    import zoneinfo

    return tuple(sorted(zoneinfo.available_timezones()))


def languages() -> tuple[str, ...]:
    """Return the known ISO 639 language codes (2 or 3 letters), lower case, plus 'mul' and 'und' (babel's, as pinned
    in transforms/rules/reference.json)."""
    from transforms.rules.reference import languages as pinned

    return pinned()


def currencies() -> dict[str, int]:
    """Return {ISO 4217 code: number of decimal places} (babel's, as pinned in transforms/rules/reference.json)."""
    from transforms.rules.reference import currencies as pinned

    return pinned()


def _values(items) -> str:
    return ", ".join("('" + str(i).replace("'", "''") + "')" for i in items)


def _reference(ctx: Context, name: str, column: str, items) -> str:
    """Return a relation of one column holding ``items``: a table built once per run (a field per time zone or language
    column used to inline the whole list, 45k characters that DuckDB planned again for each)."""
    return ctx.shared(f"ref_{name}", f"SELECT * FROM (VALUES {_values(items)}) r({column})")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- one scan per table: rows where any field fails, unpivoted to one finding per field ------------


def _scan(checks: list[tuple[Table, Field, str, str]], ctx: Context | None = None) -> str:
    """Return SQL over checks (table, field, bad-condition on v, message expression on v): one scan per table.

    ``v`` in the condition and message stands for the field's value; a condition is never true on NULL. Given ``ctx``, the
    tables the feed lacks and the columns it leaves NULL on every row (:meth:`Context.filled`) are left out.
    """
    by_table: dict[str, list[tuple[Table, Field, str, str]]] = {}
    for check in checks:
        if ctx is not None and not (ctx.has(check[0].name) and ctx.filled(check[0].name, check[1].column)):
            continue
        by_table.setdefault(check[0].name, []).append(check)
    parts = []
    for name, group in by_table.items():
        table = group[0][0]
        items, conds = [], []
        for _, f, cond, msg in group:
            col = _q(f.column)
            c = f"coalesce(({_sub(cond, col)}), false)"
            conds.append(c)
            items.append(
                f"{{'field': {_lit(f.name)}, 'value': CAST({col} AS VARCHAR), 'bad': {c}, 'message': {_sub(msg, col)}}}"
            )
        parts.append(
            f"SELECT {_lit(table.file_name)} AS file, line, x.field AS field, x.value AS value, x.message AS message "
            f"FROM (SELECT _line AS line, unnest([{', '.join(items)}]) AS x FROM {_q(name)} WHERE {' OR '.join(conds)}) WHERE x.bad"
        )
    return " UNION ALL ".join(parts) if parts else "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"


def _sub(template: str, col: str) -> str:
    """Return ``template`` with the placeholder ``{v}`` replaced by the column."""
    return template.replace("{v}", col)


def _fields(*types: str, tables: tuple[str, ...] | None = None):
    schema = load_schema()
    for table in schema.tables.values():
        if tables and table.name not in tables:
            continue
        for f in table.fields:
            if f.type in types:
                yield table, f


def _field_msg(f: Field, what: str) -> str:
    return f"{_lit(f.name + ' ')} || '''' || {{v}} || ''' ' || {_lit(what)}"


# --- rules ------------------------------------------------------------------------------------------

URL_RE = r"(?i)(https?|ftp)://[^\s/?#@:]+\.[^\s/?#@:]+(:[0-9]+)?([/?#]\S*)?"
EMAIL_RE = r"[^@\s]+@[^@\s]+\.[^@\s.]+"
PHONE_RE = r"\+?[0-9()\-. /]*[0-9][0-9()\-. /]*((ext|x|内線)\.?\s*[0-9]+)?"
COLOR_RE = r"[0-9A-Fa-f]{6}"
LANG_RE = r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*"


def _invalid_url(ctx: Context) -> str:
    return _scan([(t, f, f"NOT regexp_full_match({{v}}, {_lit(URL_RE)})",
                   _field_msg(f, "is not a full URL starting with http:// or https://"))
                  for t, f in _fields("url")], ctx)


def _invalid_email(ctx: Context) -> str:
    return _scan([(t, f, f"NOT regexp_full_match({{v}}, {_lit(EMAIL_RE)})", _field_msg(f, "is not an e-mail address"))
                  for t, f in _fields("email")], ctx)


def _invalid_phone(ctx: Context) -> str:
    cond = (f"NOT regexp_full_match({{v}}, {_lit(PHONE_RE)}) "
            "OR length(regexp_replace({v}, '[^0-9]', '', 'g')) NOT BETWEEN 3 AND 20")
    msg = ("'''' || {v} || ''' is not a phone number' || CASE WHEN regexp_matches({v}, '[０-９－（）]') "
           "THEN ' (it has full-width digits or hyphens; use half-width 0-9 and -)' ELSE ' (digits, spaces, + - ( ) . only)' END")
    return _scan([(t, f, cond, f"{_lit(f.name + ' ')} || {msg}") for t, f in _fields("phone")], ctx)


def _invalid_color(ctx: Context) -> str:
    return _scan([(t, f, f"NOT regexp_full_match({{v}}, {_lit(COLOR_RE)})",
                   _field_msg(f, "is not a colour as six hexadecimal digits (e.g. FFFFFF, no #)"))
                  for t, f in _fields("color")], ctx)


def _invalid_timezone(ctx: Context) -> str:
    zones = f"(SELECT name FROM {_reference(ctx, 'timezones', 'name', timezones())})"
    return _scan([(t, f, f"{{v}} NOT IN {zones}",
                   f"{_lit(f.name + ' ')} || '''' || {{v}} || ''' is not a time zone of the IANA database' || "
                   "CASE WHEN lower({v}) IN ('jst', 'japan', 'asia/tokyo', '+09:00', 'utc+9', 'gmt+9') THEN ' (for Japan write Asia/Tokyo)' ELSE ' (e.g. Asia/Tokyo)' END")
                  for t, f in _fields("timezone")], ctx)


def _invalid_language(ctx: Context) -> str:
    langs = f"(SELECT code FROM {_reference(ctx, 'languages', 'code', languages())})"
    cond = f"NOT regexp_full_match({{v}}, {_lit(LANG_RE)}) OR lower(split_part({{v}}, '-', 1)) NOT IN {langs}"
    msg = ("'''' || {v} || ''' is not an IETF BCP 47 language code' || "
           "CASE WHEN lower({v}) IN ('jp', 'jpn', 'japanese', '日本語') THEN ' (Japanese is ja)' ELSE ' (e.g. ja, en, ja-Hrkt)' END")
    return _scan([(t, f, cond, f"{_lit(f.name + ' ')} || {msg}") for t, f in _fields("lang")], ctx)


def _invalid_currency(ctx: Context) -> str:
    codes = f"(SELECT code FROM {_reference(ctx, 'currencies', 'code', currencies())})"
    msg = ("'''' || {v} || ''' is not an ISO 4217 currency code' || "
           "CASE WHEN upper({v}) IN ('JPY', 'YEN', '円') OR {v} = '￥' THEN ' (Japanese yen is JPY)' ELSE ' (e.g. JPY, EUR, USD)' END")
    return _scan([(t, f, f"{{v}} NOT IN {codes}", f"{_lit(f.name + ' ')} || {msg}") for t, f in _fields("currency")], ctx)


def _invalid_currency_amount(ctx: Context) -> str:
    decimals = ", ".join(f"('{c}', {d})" for c, d in currencies().items())
    return (
        "SELECT 'fare_attributes.txt' AS file, _line AS line, 'price' AS field, CAST(price AS VARCHAR) AS value, "
        "'fare_id ' || fare_id || ': price ' || CAST(price AS VARCHAR) || ' has more decimal places than ' || currency_type || ' allows (' || d || ')' AS message "
        f"FROM fare_attributes JOIN (VALUES {decimals}) c(code, d) ON c.code = currency_type "
        "WHERE price IS NOT NULL AND abs(price * pow(10, d) - round(price * pow(10, d))) > 1e-6"
    )


#: route_type values: the GTFS basic types and Google's extended types (100-1702).
ROUTE_TYPES = "({v} IN (0, 1, 2, 3, 4, 5, 6, 7, 11, 12) OR {v} BETWEEN 100 AND 1702)"


def _unexpected_enum(ctx: Context) -> str:
    checks = []
    for t, f in _fields("enum"):
        allowed = ", ".join(str(x) for x in f.enum)
        checks.append((t, f, f"{{v}} NOT IN ({allowed})", f"{_lit(f.name + ' ')} || {{v}} || {_lit(' is not one of ' + allowed)}"))
    routes = load_schema().tables["routes"]
    checks.append((routes, routes.field("route_type"), f"NOT {ROUTE_TYPES}",
                   "'route_type ' || {v} || ' is not a GTFS route type (0-7, 11, 12, or an extended type 100-1702; a bus is 3)'"))
    return _scan(checks, ctx)


#: (table, field, condition on v that is out of range, what the range is)
RANGES = (
    ("stops", "stop_lat", "{v} NOT BETWEEN -90 AND 90", "a latitude between -90 and 90"),
    ("stops", "stop_lon", "{v} NOT BETWEEN -180 AND 180", "a longitude between -180 and 180"),
    ("shapes", "shape_pt_lat", "{v} NOT BETWEEN -90 AND 90", "a latitude between -90 and 90"),
    ("shapes", "shape_pt_lon", "{v} NOT BETWEEN -180 AND 180", "a longitude between -180 and 180"),
    ("shapes", "shape_pt_sequence", "{v} < 0", "zero or more"),
    ("shapes", "shape_dist_traveled", "{v} < 0", "zero or more"),
    ("stop_times", "stop_sequence", "{v} < 0", "zero or more"),
    ("stop_times", "shape_dist_traveled", "{v} < 0", "zero or more"),
    ("fare_attributes", "price", "{v} < 0", "zero or more"),
    ("fare_attributes", "transfer_duration", "{v} < 0", "zero or more seconds"),
    ("frequencies", "headway_secs", "{v} <= 0", "more than zero seconds"),
    ("transfers", "min_transfer_time", "{v} < 0", "zero or more seconds"),
    ("routes", "route_sort_order", "{v} < 0", "zero or more"),
    ("pathways", "length", "{v} < 0", "zero or more metres"),
    ("pathways", "traversal_time", "{v} <= 0", "more than zero seconds"),
    ("pathways", "stair_count", "{v} = 0", "a non-zero number of stairs (leave it empty when unknown)"),
    ("pathways", "min_width", "{v} <= 0", "more than zero metres"),
)


def _number_out_of_range(ctx: Context) -> str:
    schema = load_schema()
    checks = []
    for tname, fname, cond, what in RANGES:
        t = schema.tables[tname]
        f = t.field(fname)
        checks.append((t, f, cond, f"{_lit(fname + ' ')} || CAST({{v}} AS VARCHAR) || {_lit(' is out of range: it must be ' + what)}"))
    return _scan(checks, ctx)


def _text_fields(table: Table) -> list[Field]:
    return [f for f in table.fields if f.sql_type == "VARCHAR"]


def _new_line(ctx: Context) -> str:
    # contains() of each of the two characters: what regexp_matches({v}, '[\\r\\n]') finds, at a quarter of its CPU (a memchr,
    # not a regular expression: 0.2 against 0.8 CPU-s on the trip_id and stop_id of Vilnius x16's 7.1M stop times)
    # (E'\\n' rather than chr(10): nothing to fold when a small feed's ~100 columns are planned, 37 against 42 ms at kamacitybus)
    checks = [(t, f, "(contains({v}, E'\\n') OR contains({v}, E'\\r'))", f"{_lit(f.name + ' has a line break inside its value')}")
              for t in load_schema().tables.values() for f in _text_fields(t)]
    return _scan(checks, ctx)


def _non_ascii_id(ctx: Context) -> str:
    parts = []
    for t in load_schema().tables.values():
        if not ctx.has(t.name):
            continue
        for f in t.fields:
            if f.type != "id" or f.ref or not ctx.filled(t.name, f.column):
                continue
            col = _q(f.column)
            parts.append(
                f"SELECT {_lit(t.file_name)} AS file, min(_line) AS line, {_lit(f.name)} AS field, {col} AS value, "
                f"{_lit(f.name + ' ')} || '''' || {col} || ''' has characters other than printable ASCII (e.g. Japanese or full-width); ' || "
                f"'some apps cannot use such ids' AS message FROM {_q(t.name)} WHERE regexp_matches({col}, '[^\\x20-\\x7E]') GROUP BY {col}"
            )
    return " UNION ALL ".join(parts) or "SELECT NULL AS file, NULL AS line, NULL AS field, NULL AS value, NULL AS message WHERE false"


RULES: list[Rule] = [
    Rule("invalid_url", ERROR, "A URL is not a full http:// or https:// address, so apps cannot open it.",
         ("file", "line", "field", "value"), _invalid_url,
         fix="Write the whole address including https://, e.g. https://www.city.example.jp/bus/.",
         why_ja="URL が http:// または https:// で始まる完全なアドレスになっておらず、アプリから開けません。",
         fix_ja="https:// から始まる完全なアドレスを書いてください（例: https://www.city.example.jp/bus/）。"),
    Rule("invalid_email", ERROR, "An e-mail address is not of the form name@domain.",
         ("file", "line", "field", "value"), _invalid_email,
         fix="Write one e-mail address such as info@example.jp, without spaces or 'mailto:'.",
         why_ja="メールアドレスが name@domain の形になっていません。",
         fix_ja="info@example.jp のように、空白や mailto: を付けずに一つのアドレスを書いてください。"),
    Rule("invalid_phone_number", ERROR, "A phone number has characters other than digits, spaces and + - ( ) . or is too short or long.",
         ("file", "line", "field", "value"), _invalid_phone,
         fix="Write the number with half-width digits and hyphens, e.g. 0123-45-6789; put notes elsewhere.",
         why_ja="電話番号に数字・空白・+ - ( ) . 以外の文字が含まれているか、桁数がおかしいです。",
         fix_ja="半角の数字とハイフンで書いてください（例: 0123-45-6789）。注記は別の欄に書いてください。"),
    Rule("invalid_color", ERROR, "A colour is not six hexadecimal digits such as FF0000 (no # in front).",
         ("file", "line", "field", "value"), _invalid_color,
         fix="Write the colour as six characters 0-9 / A-F, e.g. 00A0E9.",
         why_ja="色の指定が FF0000 のような 16 進数 6 桁になっていません（# は付けません）。",
         fix_ja="0-9 と A-F の 6 文字で書いてください（例: 00A0E9）。"),
    Rule("invalid_timezone", ERROR, "A time zone is not a name from the IANA time zone database, so times cannot be placed on a clock.",
         ("file", "line", "field", "value"), _invalid_timezone,
         fix="Use an IANA name; for Japan it is Asia/Tokyo.",
         why_ja="タイムゾーンが IANA のタイムゾーン名になっていないため、時刻を正しく扱えません。",
         fix_ja="日本の場合は Asia/Tokyo と書いてください。"),
    Rule("invalid_language_code", ERROR, "A language is not an IETF BCP 47 code such as ja, en or ja-Hrkt.",
         ("file", "line", "field", "value"), _invalid_language,
         fix="Use the language code: ja for Japanese (not jp), en for English, ja-Hrkt for kana readings.",
         why_ja="言語コードが ja・en・ja-Hrkt のような BCP 47 の形式になっていません。",
         fix_ja="日本語は ja（jp ではありません）、英語は en、読み仮名は ja-Hrkt と書いてください。"),
    Rule("invalid_currency", ERROR, "A currency is not an ISO 4217 code such as JPY.",
         ("file", "line", "field", "value"), _invalid_currency, needs=("fare_attributes",),
         fix="Write the three capital letters of the currency: JPY for yen.",
         why_ja="通貨が JPY のような ISO 4217 の通貨コードになっていません。",
         fix_ja="円の場合は半角大文字で JPY と書いてください。"),
    Rule("invalid_currency_amount", ERROR, "A price has more decimal places than its currency has (yen has none).",
         ("file", "line", "fare_id", "price", "currency_type"), _invalid_currency_amount, needs=("fare_attributes",),
         fix="Round the price to the currency's unit, e.g. 210 for 210 yen.",
         why_ja="運賃に、その通貨にない小数点以下の桁があります（円には小数がありません）。",
         fix_ja="通貨の単位に合わせて書いてください（例: 210 円なら 210）。"),
    Rule("unexpected_enum_value", WARNING, "A coded field has a value the specification does not define (e.g. direction_id 2, route_type 99).",
         ("file", "line", "field", "value"), _unexpected_enum,
         fix="Use one of the values listed for the field in the specification.",
         why_ja="区分を表す項目に、仕様で定義されていない値が入っています（例: direction_id が 2、route_type が 99）。",
         fix_ja="仕様に定められた値のどれかを入れてください（例: バスの route_type は 3）。"),
    Rule("number_out_of_range", ERROR, "A number is outside the range the field allows (latitude over 90, negative price, zero headway...).",
         ("file", "line", "field", "value"), _number_out_of_range,
         fix="Correct the number; for coordinates check that latitude and longitude are not swapped.",
         why_ja="数値が項目の許す範囲を外れています（緯度が 90 を超える、運賃が負、運行間隔が 0 など）。",
         fix_ja="数値を直してください。座標の場合は緯度と経度が逆になっていないか確認してください。"),
    Rule("new_line_in_value", ERROR, "A value contains a line break, which breaks displays and many CSV readers.",
         ("file", "line", "field"), _new_line,
         fix="Remove the line break from the value (write it on one line).",
         why_ja="値の中に改行が含まれており、表示や多くの CSV 読み込みで問題になります。",
         fix_ja="値の中の改行を取り除き、一行で書いてください。"),
    Rule("non_ascii_or_non_printable_char", WARNING, "An id contains characters other than printable ASCII (e.g. Japanese or full-width), which some apps mishandle.",
         ("file", "line", "field", "value"), _non_ascii_id,
         fix="Prefer ids made of half-width letters, digits, - and _; keep names in the name fields.",
         why_ja="ID に半角英数字以外の文字（日本語や全角文字など）が含まれており、一部のアプリで正しく扱えません。",
         fix_ja="ID は半角英数字と - _ で作り、日本語は名称の項目に書いてください。"),
]
