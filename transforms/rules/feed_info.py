"""Rules on feed_info.txt: its dates, language and contact, and that it has one row."""

from __future__ import annotations

from transforms.rules.engine import ERROR, WARNING, Context, Rule


def _missing_date(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, _line AS line, CASE WHEN feed_start_date IS NULL THEN 'feed_start_date' ELSE 'feed_end_date' END AS field, NULL AS value, "
        "CASE WHEN feed_start_date IS NULL THEN 'feed_end_date is ' || strftime(feed_end_date, '%Y%m%d') || ' but feed_start_date is empty' "
        "ELSE 'feed_start_date is ' || strftime(feed_start_date, '%Y%m%d') || ' but feed_end_date is empty' END AS message "
        "FROM feed_info WHERE (feed_start_date IS NULL) <> (feed_end_date IS NULL) "
        # an untypable date is reported as invalid_date; do not call it missing
        "AND coalesce(json_extract_string(_untyped, '$.feed_start_date'), json_extract_string(_untyped, '$.feed_end_date')) IS NULL"
    )


def _no_dates(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, _line AS line, 'feed_end_date' AS field, NULL AS value, "
        "'feed_start_date and feed_end_date are both empty, so users cannot tell which period the timetable covers' AS message "
        "FROM feed_info WHERE feed_start_date IS NULL AND feed_end_date IS NULL AND _untyped IS NULL"
    )


def _out_of_order(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, _line AS line, 'feed_end_date' AS field, strftime(feed_end_date, '%Y%m%d') AS value, "
        "'feed_start_date ' || strftime(feed_start_date, '%Y%m%d') || ' is after feed_end_date ' || strftime(feed_end_date, '%Y%m%d') AS message "
        "FROM feed_info WHERE feed_start_date > feed_end_date"
    )


def _lang_mismatch(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, f._line AS line, 'feed_lang' AS field, f.feed_lang AS value, "
        "'feed_lang is ' || f.feed_lang || ' but agency ' || coalesce(a.agency_id, a.agency_name) || ' has agency_lang ' || a.agency_lang AS message "
        "FROM feed_info f, agency a WHERE f.feed_lang IS NOT NULL AND a.agency_lang IS NOT NULL "
        "AND lower(f.feed_lang) <> 'mul' AND lower(f.feed_lang) <> lower(a.agency_lang)"
    )


def _missing_contact(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, _line AS line, 'feed_contact_email' AS field, NULL AS value, "
        "'feed_info.txt has neither feed_contact_email nor feed_contact_url, so users cannot report problems with the data' AS message "
        "FROM feed_info WHERE feed_contact_email IS NULL AND feed_contact_url IS NULL"
    )


def _more_than_one(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, _line AS line, NULL AS field, NULL AS value, "
        "'feed_info.txt must have one row; this is row ' || n || ' (the first is on line ' || first_line || ')' AS message "
        "FROM (SELECT _line, row_number() OVER (ORDER BY _line) AS n, min(_line) OVER () AS first_line FROM feed_info) WHERE n > 1"
    )


RULES: list[Rule] = [
    Rule("missing_feed_info_date", WARNING, "feed_info.txt has one of feed_start_date / feed_end_date without the other.",
         ("file", "line", "field"), _missing_date, needs=("feed_info",),
         fix="Fill in both feed_start_date and feed_end_date (the first and last day the timetable is valid).",
         why_ja="feed_info.txt の有効期間の開始日・終了日の一方だけが書かれています。",
         fix_ja="feed_start_date と feed_end_date の両方に、ダイヤの有効期間の初日と最終日を書いてください。"),
    Rule("missing_feed_info_dates", WARNING, "feed_info.txt gives no feed_start_date and no feed_end_date, so the period the data covers is unknown.",
         ("file", "line"), _no_dates, needs=("feed_info",),
         fix="Fill in feed_start_date and feed_end_date; GTFS-JP requires them.",
         why_ja="feed_info.txt に有効期間（開始日・終了日）が書かれておらず、いつのダイヤか分かりません。",
         fix_ja="feed_start_date と feed_end_date を記入してください（GTFS-JP では必須です）。"),
    Rule("start_and_end_range_out_of_order", ERROR, "feed_info.txt's feed_start_date is after its feed_end_date.",
         ("file", "line", "feed_start_date", "feed_end_date"), _out_of_order, needs=("feed_info",),
         fix="Swap the two dates or correct the wrong one.",
         why_ja="feed_info.txt の開始日 (feed_start_date) が終了日 (feed_end_date) より後になっています。",
         fix_ja="二つの日付を入れ替えるか、誤っている方を直してください。"),
    Rule("feed_info_lang_and_agency_lang_mismatch", WARNING, "feed_info.txt's feed_lang differs from an agency's agency_lang.",
         ("file", "line", "feed_lang", "agency_lang"), _lang_mismatch, needs=("feed_info", "agency"),
         fix="Use the same language code in feed_lang and agency_lang (ja for Japanese), or mul for a multilingual feed.",
         why_ja="feed_info.txt の feed_lang と agency.txt の agency_lang が異なります。",
         fix_ja="feed_lang と agency_lang を同じ言語コードにしてください（日本語は ja）。"),
    Rule("missing_feed_contact_email_and_url", WARNING, "feed_info.txt has neither feed_contact_email nor feed_contact_url, so users cannot report data problems.",
         ("file", "line"), _missing_contact, needs=("feed_info",),
         fix="Add a contact e-mail or a web form address for questions about the data.",
         why_ja="feed_info.txt に問い合わせ先（feed_contact_email・feed_contact_url）がなく、利用者がデータの誤りを連絡できません。",
         fix_ja="データに関する問い合わせ用のメールアドレスか、問い合わせフォームの URL を記入してください。"),
    Rule("more_than_one_entity", WARNING, "feed_info.txt has more than one row; only the first describes the feed.",
         ("file", "line"), _more_than_one, needs=("feed_info",),
         fix="Keep one row in feed_info.txt.",
         why_ja="feed_info.txt に複数の行があります。データ全体の情報は一行だけにしてください。",
         fix_ja="feed_info.txt を一行にしてください。"),
]
