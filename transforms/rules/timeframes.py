"""Rules on timeframes.txt (the times of day a Fares v2 leg rule applies), as MobilityData v8.0.1 checks them."""

from __future__ import annotations

from transforms.rules.engine import ERROR, Context, Rule

_DAY = 24 * 3600


def _only_one_time(ctx: Context) -> str:
    return (
        "SELECT 'timeframes.txt' AS file, _line AS line, CASE WHEN start_time IS NULL THEN 'start_time' ELSE 'end_time' END AS field, "
        "timeframe_group_id AS value, 'timeframe_group_id ' || timeframe_group_id || ' has only ' || "
        "CASE WHEN start_time IS NULL THEN 'end_time' ELSE 'start_time' END || '; give both or neither' AS message "
        "FROM timeframes WHERE (start_time IS NULL) <> (end_time IS NULL)"
    )


def _over_24h(ctx: Context) -> str:
    parts = []
    for f in ("start_time", "end_time"):
        parts.append(
            f"SELECT 'timeframes.txt' AS file, _line AS line, '{f}' AS field, "
            f"printf('%02d:%02d:%02d', {f} // 3600, {f} % 3600 // 60, {f} % 60) AS value, "
            f"'{f} ' || printf('%02d:%02d:%02d', {f} // 3600, {f} % 3600 // 60, {f} % 60) || ' is after 24:00:00' AS message "
            f"FROM timeframes WHERE {f} > {_DAY}"
        )
    return " UNION ALL ".join(parts)


def _overlap(ctx: Context) -> str:
    # As MobilityData: rows of one (timeframe_group_id, service_id) sorted by start_time; a row overlaps the
    # previous one when it starts before the previous one ends. An empty time is the whole day.
    return (
        f"WITH t AS (SELECT _line, timeframe_group_id, service_id, coalesce(start_time, 0) AS s, coalesce(end_time, {_DAY}) AS e "
        "FROM timeframes), o AS (SELECT *, lag(e) OVER w AS prev_e, lag(_line) OVER w AS prev_line FROM t "
        "WINDOW w AS (PARTITION BY timeframe_group_id, service_id ORDER BY s, e, _line)) "
        "SELECT 'timeframes.txt' AS file, _line AS line, 'start_time' AS field, timeframe_group_id AS value, "
        "'timeframe_group_id ' || timeframe_group_id || ' (service_id ' || service_id || ') starts at ' || "
        "printf('%02d:%02d:%02d', s // 3600, s % 3600 // 60, s % 60) || ', before the timeframe of line ' || prev_line || ' ends (' || "
        "printf('%02d:%02d:%02d', prev_e // 3600, prev_e % 3600 // 60, prev_e % 60) || ')' AS message "
        "FROM o WHERE prev_e IS NOT NULL AND s < prev_e"
    )


RULES: list[Rule] = [
    Rule("timeframe_only_start_or_end_time_specified", ERROR,
         "A timeframe has a start_time or an end_time but not both.",
         ("file", "line", "timeframe_group_id"), _only_one_time, needs=("timeframes",),
         fix="Give both start_time and end_time, or neither (the whole day).",
         why_ja="時間帯 (timeframes.txt) に開始時刻か終了時刻の一方しかありません。",
         fix_ja="start_time と end_time の両方を入力するか、両方とも空欄（終日）にしてください。"),
    Rule("timeframe_start_or_end_time_greater_than_twenty_four_hours", ERROR,
         "A timeframe's start_time or end_time is after 24:00:00; timeframes describe one day.",
         ("file", "line", "start_time", "end_time"), _over_24h, needs=("timeframes",),
         fix="Use times from 00:00:00 to 24:00:00.",
         why_ja="時間帯の開始時刻または終了時刻が 24:00:00 より後です。時間帯は一日の中で指定します。",
         fix_ja="00:00:00〜24:00:00 の時刻を入力してください。"),
    Rule("timeframe_overlap", ERROR,
         "Two timeframes of the same timeframe_group_id and service_id overlap, so a time belongs to both.",
         ("file", "line", "timeframe_group_id", "service_id"), _overlap, needs=("timeframes",),
         fix="Make the timeframes of a group end before the next one starts.",
         why_ja="同じ timeframe_group_id・service_id の時間帯が重なっており、ある時刻が両方に属します。",
         fix_ja="同じグループの時間帯は、次の時間帯が始まる前に終わるようにしてください。"),
]
