"""Rules on service calendars: date ranges, days a service runs, gaps, expiry and coverage.

Every date a service runs is computed set-based (:func:`service_days`): the calendar.txt
weekdays inside its range, minus calendar_dates.txt removals, plus its additions. Rules that
depend on the date use ``ctx.today`` (the version's validation date), never the wall clock.
"""

from __future__ import annotations

from transforms.rules.engine import CALENDAR_DAYS_BUDGET, CALENDAR_DAYS_SQL, ERROR, EXPANDS_CALENDAR, INFO, WARNING, Context, Rule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def service_days() -> str:
    """Return a SQL subquery of (service_id, d): every date on which each service runs."""
    days = ", ".join(WEEKDAYS)
    return (
        f"(SELECT service_id, d FROM ({EXPANDS_CALENDAR} "
        f"SELECT service_id, CAST(unnest(generate_series(CAST(start_date AS TIMESTAMP), CAST(end_date AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE) AS d, {days} "
        "FROM calendar WHERE start_date IS NOT NULL AND end_date IS NOT NULL AND start_date <= end_date) c "
        f"WHERE [{days}][isodow(d)] = 1 "
        "EXCEPT SELECT service_id, date FROM calendar_dates WHERE exception_type = 2 AND date IS NOT NULL "
        "UNION SELECT service_id, date FROM calendar_dates WHERE exception_type = 1 AND date IS NOT NULL)"
    )


def services() -> str:
    """Return a SQL subquery of (service_id, file, line): where each service is defined (its calendar.txt row, else its first calendar_dates.txt row)."""
    return (
        "(SELECT service_id, 'calendar.txt' AS file, _line AS line FROM calendar "
        "UNION ALL SELECT service_id, 'calendar_dates.txt' AS file, min(_line) AS line FROM calendar_dates "
        "WHERE service_id NOT IN (SELECT service_id FROM calendar) GROUP BY service_id)"
    )


def feed_bounds() -> str:
    """Return a SQL subquery of one row (first_day, last_day, first_origin, last_origin): the dates the feed covers.

    As Google's FeedValidator does: feed_info.txt feed_start_date / feed_end_date when given,
    else the earliest start_date or added date and the latest end_date or added date.
    """
    return (
        "(SELECT coalesce(fi.s, least(c.s, cd.s)) AS first_day, coalesce(fi.e, greatest(c.e, cd.e)) AS last_day, "
        "CASE WHEN fi.s IS NOT NULL THEN 'feed_start_date in feed_info.txt' WHEN cd.s < c.s OR c.s IS NULL THEN 'earliest added date in calendar_dates.txt' "
        "ELSE 'earliest start_date in calendar.txt' END AS first_origin, "
        "CASE WHEN fi.e IS NOT NULL THEN 'feed_end_date in feed_info.txt' WHEN cd.e > c.e OR c.e IS NULL THEN 'last added date in calendar_dates.txt' "
        "ELSE 'last end_date in calendar.txt' END AS last_origin "
        "FROM (SELECT min(feed_start_date) AS s, max(feed_end_date) AS e FROM feed_info) fi, "
        "(SELECT min(start_date) AS s, max(end_date) AS e FROM calendar) c, "
        "(SELECT min(date) AS s, max(date) AS e FROM calendar_dates WHERE exception_type = 1) cd)"
    )


def _calendar_file(ctx: Context) -> str:
    return "'calendar.txt'" if "calendar" in ctx.present or "calendar_dates" not in ctx.present else "'calendar_dates.txt'"


# --- calendar.txt rows ---------------------------------------------------------------------------

def _too_long_to_expand(ctx: Context) -> str:
    budget = int(ctx.param("calendar_days_budget", CALENDAR_DAYS_BUDGET))
    return (
        "SELECT 'calendar.txt' AS file, c._line AS line, 'end_date' AS field, CAST(c.end_date AS VARCHAR) AS value, "
        "'calendar.txt runs its services on ' || t.days || ' days in all (rows added up), more than " + f"{budget:,}" + "; "
        "the rules on each day a service runs were left out. The longest row: service_id ' || c.service_id || ' from ' || "
        "strftime(c.start_date, '%Y-%m-%d') || ' to ' || strftime(c.end_date, '%Y-%m-%d') AS message "
        f"FROM calendar c, ({CALENDAR_DAYS_SQL}) t(days) WHERE t.days > {budget} AND c.start_date <= c.end_date "
        "QUALIFY row_number() OVER (ORDER BY c.end_date - c.start_date DESC, c._line) = 1"
    )


def _range_out_of_order(ctx: Context) -> str:
    return (
        "SELECT 'calendar.txt' AS file, _line AS line, 'end_date' AS field, CAST(end_date AS VARCHAR) AS value, "
        "'service_id ' || service_id || ': start_date ' || strftime(start_date, '%Y%m%d') || ' is after end_date ' || strftime(end_date, '%Y%m%d') AS message "
        "FROM calendar WHERE start_date > end_date"
    )


def _no_active_day(ctx: Context) -> str:
    zero = " AND ".join(f"{d} = 0" for d in WEEKDAYS)
    return (
        "SELECT 'calendar.txt' AS file, _line AS line, 'service_id' AS field, service_id AS value, "
        "'service_id ' || service_id || ' has 0 for all seven days of the week' || "
        "CASE WHEN service_id IN (SELECT service_id FROM calendar_dates WHERE exception_type = 1) THEN '; it runs only on the dates calendar_dates.txt adds' ELSE '' END AS message "
        f"FROM calendar WHERE {zero}"
    )


def _never_active(ctx: Context) -> str:
    return (
        f"SELECT s.file, s.line, 'service_id' AS field, s.service_id AS value, "
        "'service_id ' || s.service_id || ' has no date on which it runs' || "
        "CASE WHEN t.n > 0 THEN '; ' || t.n || ' trip(s) use it and never run' ELSE '' END AS message "
        f"FROM {services()} s LEFT JOIN (SELECT service_id, count(*) AS n FROM trips GROUP BY service_id) t USING (service_id) "
        f"WHERE s.service_id NOT IN (SELECT service_id FROM {service_days()})"
    )


def _trip_never_active(ctx: Context) -> str:
    return (
        "SELECT 'trips.txt' AS file, _line AS line, 'service_id' AS field, service_id AS value, "
        "'trip_id ' || trip_id || ' uses service_id ' || service_id || ', which has no date on which it runs' AS message "
        f"FROM trips WHERE service_id IN (SELECT service_id FROM {services()}) "
        f"AND service_id NOT IN (SELECT service_id FROM {service_days()})"
    )


def _unused_service(ctx: Context) -> str:
    return (
        "SELECT s.file, s.line, 'service_id' AS field, s.service_id AS value, "
        "'service_id ' || s.service_id || ' is not used by any trip in trips.txt' AS message "
        f"FROM {services()} s WHERE s.service_id NOT IN (SELECT DISTINCT service_id FROM trips WHERE service_id IS NOT NULL)"
    )


def _expired(ctx: Context) -> str:
    return (
        "SELECT s.file, s.line, 'service_id' AS field, s.service_id AS value, "
        "'service_id ' || s.service_id || ' last runs on ' || strftime(d.last_day, '%Y-%m-%d') || ', before the validation date ' || "
        f"strftime({ctx.today}, '%Y-%m-%d') AS message "
        f"FROM {services()} s JOIN (SELECT service_id, max(d) AS last_day FROM {service_days()} GROUP BY service_id) d USING (service_id) "
        f"WHERE d.last_day < {ctx.today}"
    )


def _big_gap(ctx: Context) -> str:
    limit = int(ctx.param("big_gap_days", 13))
    return (
        "SELECT s.file, s.line, 'service_id' AS field, g.service_id AS value, "
        "'service_id ' || g.service_id || ' does not run for ' || g.gap || ' days, from ' || strftime(g.prev + 1, '%Y-%m-%d') || "
        "' to ' || strftime(g.d - 1, '%Y-%m-%d') AS message "
        f"FROM (SELECT service_id, d, prev, CAST(d - prev - 1 AS INTEGER) AS gap FROM (SELECT service_id, d, lag(d) OVER (PARTITION BY service_id ORDER BY d) AS prev FROM {service_days()})) g "
        f"JOIN {services()} s USING (service_id) WHERE g.gap > {limit}"
    )


def _redundant_exception(ctx: Context) -> str:
    days = ", ".join(f"c.{d}" for d in WEEKDAYS)
    return (
        "SELECT 'calendar_dates.txt' AS file, cd._line AS line, 'exception_type' AS field, CAST(cd.exception_type AS VARCHAR) AS value, "
        "'service_id ' || cd.service_id || ' on ' || strftime(cd.date, '%Y-%m-%d') || CASE WHEN cd.exception_type = 1 "
        "THEN ': the date is added but calendar.txt already runs the service that day' "
        "ELSE ': the date is removed but calendar.txt does not run the service that day' END AS message "
        "FROM calendar_dates cd JOIN calendar c USING (service_id) "
        f"WHERE cd.exception_type IN (1, 2) AND coalesce(cd.date BETWEEN c.start_date AND c.end_date AND [{days}][isodow(cd.date)] = 1, false) = (cd.exception_type = 1)"
    )


def _consecutive_days_without_service(ctx: Context) -> str:
    """As Google FeedValidator: from max(first day, today - (N-1)) to before min(last day, today + 365), runs of N+ days without trips."""
    n = int(ctx.param("service_gap_days", 13))
    return (
        f"WITH run_days AS (SELECT DISTINCT d FROM {service_days()} WHERE service_id IN (SELECT DISTINCT service_id FROM trips)), "
        f"win AS (SELECT greatest(first_day, {ctx.today} - {n - 1}) AS lo, least(last_day, {ctx.today} + 365) AS hi FROM {feed_bounds()} "
        "WHERE first_day IS NOT NULL AND last_day IS NOT NULL), "
        "days AS (SELECT CAST(unnest(generate_series(CAST(lo AS TIMESTAMP), CAST(hi - 1 AS TIMESTAMP), INTERVAL 1 DAY)) AS DATE) AS d FROM win WHERE lo < hi), "
        "idle AS (SELECT d, d - CAST(row_number() OVER (ORDER BY d) AS INTEGER) AS grp FROM days WHERE d NOT IN (SELECT d FROM run_days)) "
        f"SELECT {_calendar_file(ctx)} AS file, NULL AS line, NULL AS field, strftime(min(d), '%Y-%m-%d') || '..' || strftime(max(d), '%Y-%m-%d') AS value, "
        "'There are ' || count(*) || ' consecutive days, from ' || strftime(min(d), '%Y-%m-%d') || ' to ' || strftime(max(d), '%Y-%m-%d') || "
        "', without any scheduled service' AS message "
        f"FROM idle GROUP BY grp HAVING count(*) >= {n}"
    )


def _missing_exceptions(ctx: Context) -> str:
    return (
        f"SELECT 'calendar.txt' AS file, NULL AS line, NULL AS field, NULL AS value, "
        "'All services are defined on a weekly basis from ' || strftime(first_day, '%Y-%m-%d') || ' to ' || strftime(last_day, '%Y-%m-%d') || "
        "' with no single day variations (no row in calendar_dates.txt)' AS message "
        f"FROM {feed_bounds()} WHERE last_day - first_day >= 182 AND NOT EXISTS (SELECT 1 FROM calendar_dates) AND EXISTS (SELECT 1 FROM calendar)"
    )


# --- feed period and validation date ----------------------------------------------------------------

def _expiry(low: int | None, high: int, *, strict: bool = False):
    def sql(ctx: Context) -> str:
        op = "<" if strict else "<="
        lower = f"AND last_day > {ctx.today} + {low} " if low is not None else ""
        return (
            "SELECT CASE WHEN last_origin LIKE '%feed_info%' THEN 'feed_info.txt' WHEN last_origin LIKE '%calendar_dates%' THEN 'calendar_dates.txt' ELSE 'calendar.txt' END AS file, "
            "NULL AS line, CASE WHEN last_origin LIKE '%feed_info%' THEN 'feed_end_date' WHEN last_origin LIKE '%calendar_dates%' THEN 'date' ELSE 'end_date' END AS field, "
            "strftime(last_day, '%Y%m%d') AS value, "
            f"CASE WHEN last_day < {ctx.today} THEN 'The feed expired on ' ELSE 'The feed expires on ' END || strftime(last_day, '%Y-%m-%d') || ' (' || last_origin || '), ' || "
            f"CAST(abs(last_day - {ctx.today}) AS VARCHAR) || CASE WHEN last_day < {ctx.today} THEN ' day(s) before' ELSE ' day(s) after' END || "
            f"' the validation date ' || strftime({ctx.today}, '%Y-%m-%d') AS message "
            f"FROM {feed_bounds()} WHERE last_day {op} {ctx.today} + {high} {lower}"
        )

    return sql


def _future_feed(ctx: Context) -> str:
    return (
        "SELECT CASE WHEN first_origin LIKE '%feed_info%' THEN 'feed_info.txt' ELSE 'calendar.txt' END AS file, NULL AS line, NULL AS field, "
        "strftime(first_day, '%Y%m%d') AS value, "
        f"'The feed starts on ' || strftime(first_day, '%Y-%m-%d') || ' (' || first_origin || '), after the validation date ' || strftime({ctx.today}, '%Y-%m-%d') AS message "
        f"FROM {feed_bounds()} WHERE first_day > {ctx.today}"
    )


def _trip_window() -> str:
    return f"(SELECT min(d) AS first_trip_day, max(d) AS last_trip_day FROM {service_days()} WHERE service_id IN (SELECT DISTINCT service_id FROM trips))"


def _majority_window() -> str:
    """Return a subquery of one row (first_day, last_day): the dates most trips run, as MobilityData computes it.

    Trips are counted per date (a frequency-based trip counts once per headway); the reference
    count is the one at rank max(90% of the dates, dates - 30) in ascending order, and the window
    runs from the first to the last date with at least 75% of it. Empty when no trip runs on any date.
    """
    return (
        "(WITH per_trip AS (SELECT t.service_id, coalesce(f.n, 1) AS n FROM trips t LEFT JOIN ("
        "SELECT trip_id, sum(1 + CASE WHEN headway_secs > 0 THEN (end_time - start_time - 1) // headway_secs ELSE 0 END) AS n "
        "FROM frequencies GROUP BY trip_id) f USING (trip_id)), "
        "per_service AS (SELECT service_id, sum(n) AS n FROM per_trip GROUP BY service_id), "
        f"per_day AS (SELECT d, sum(p.n) AS n FROM {service_days()} sd JOIN per_service p USING (service_id) GROUP BY d), "
        "ranked AS (SELECT n, row_number() OVER (ORDER BY n) - 1 AS r, count(*) OVER () AS total FROM per_day), "
        "ref AS (SELECT CAST(floor(0.75 * any_value(n)) AS BIGINT) AS threshold FROM ranked "
        "WHERE r = greatest(CAST(floor(total * 0.9) AS BIGINT), total - 30)) "
        "SELECT min(d) AS first_day, max(d) AS last_day FROM per_day, ref WHERE per_day.n >= ref.threshold HAVING count(*) > 0)"
    )


def _not_active_next7(ctx: Context) -> str:
    return (
        f"SELECT {_calendar_file(ctx)} AS file, NULL AS line, NULL AS field, strftime({ctx.today}, '%Y-%m-%d') AS value, "
        f"'Most trips run from ' || strftime(first_day, '%Y-%m-%d') || ' to ' || strftime(last_day, '%Y-%m-%d') || "
        f"', which does not cover the 7 days from ' || strftime({ctx.today}, '%Y-%m-%d') AS message "
        f"FROM {_majority_window()} WHERE first_day > {ctx.today} OR last_day < {ctx.today} + 7"
    )


def _outside_feed_period(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, fi._line AS line, CASE WHEN w.first_trip_day < fi.feed_start_date THEN 'feed_start_date' ELSE 'feed_end_date' END AS field, "
        "strftime(CASE WHEN w.first_trip_day < fi.feed_start_date THEN fi.feed_start_date ELSE fi.feed_end_date END, '%Y%m%d') AS value, "
        "'Trips run from ' || strftime(w.first_trip_day, '%Y-%m-%d') || ' to ' || strftime(w.last_trip_day, '%Y-%m-%d') || "
        "', outside the feed period ' || coalesce(strftime(fi.feed_start_date, '%Y-%m-%d'), '…') || ' to ' || coalesce(strftime(fi.feed_end_date, '%Y-%m-%d'), '…') || ' of feed_info.txt' AS message "
        f"FROM feed_info fi, {_trip_window()} w "
        "WHERE w.first_trip_day < fi.feed_start_date OR w.last_trip_day > fi.feed_end_date"
    )


def _beyond_service_window(ctx: Context) -> str:
    return (
        "SELECT 'feed_info.txt' AS file, fi._line AS line, CASE WHEN fi.feed_end_date > w.last_trip_day THEN 'feed_end_date' ELSE 'feed_start_date' END AS field, "
        "strftime(CASE WHEN fi.feed_end_date > w.last_trip_day THEN fi.feed_end_date ELSE fi.feed_start_date END, '%Y%m%d') AS value, "
        "'feed_info.txt says the feed is valid from ' || coalesce(strftime(fi.feed_start_date, '%Y-%m-%d'), '…') || ' to ' || coalesce(strftime(fi.feed_end_date, '%Y-%m-%d'), '…') || "
        "' but trips run only from ' || strftime(w.first_trip_day, '%Y-%m-%d') || ' to ' || strftime(w.last_trip_day, '%Y-%m-%d') AS message "
        f"FROM feed_info fi, {_trip_window()} w "
        "WHERE w.last_trip_day IS NOT NULL AND (fi.feed_end_date > w.last_trip_day OR fi.feed_start_date < w.first_trip_day)"
    )


def _frequency_range_equal(ctx: Context) -> str:
    return (
        "SELECT 'frequencies.txt' AS file, _line AS line, 'end_time' AS field, gtfs_time(end_time) AS value, "
        "'trip_id ' || trip_id || ': start_time and end_time are both ' || gtfs_time(start_time) || ', so the period is empty' AS message "
        "FROM frequencies WHERE start_time = end_time"
    )


def _frequency_out_of_order(ctx: Context) -> str:
    return (
        "SELECT 'frequencies.txt' AS file, _line AS line, 'end_time' AS field, gtfs_time(end_time) AS value, "
        "'trip_id ' || trip_id || ': start_time ' || gtfs_time(start_time) || ' is after end_time ' || gtfs_time(end_time) AS message "
        "FROM frequencies WHERE start_time > end_time"
    )


RULES: list[Rule] = [
    Rule("calendar_too_long_to_expand", WARNING, "calendar.txt's rows cover more days in all than Noriba expands day by day "
         "(a date range of centuries, or thousands of such rows), so the rules on each day a service runs were not evaluated.",
         ("file", "line", "service_id", "start_date", "end_date"), _too_long_to_expand, needs=("calendar",),
         fix="Give each calendar.txt row the dates the service really runs (start_date and end_date of the timetable's period).",
         why_ja="calendar.txt の運行期間の合計日数が多すぎる（数百年の期間、またはそれが数千行）ため、運行日ごとの検査を行いませんでした。",
         fix_ja="calendar.txt の各行の start_date と end_date を、ダイヤの実際の運行期間にしてください。"),
    Rule("start_and_end_range_out_of_order", ERROR, "A calendar.txt row ends before it starts, so the service never runs.",
         ("file", "line", "service_id", "start_date", "end_date"), _range_out_of_order, needs=("calendar",),
         fix="Swap start_date and end_date, or correct the wrong one.",
         why_ja="calendar.txt の終了日 (end_date) が開始日 (start_date) より前になっており、この運行日は一日も運行されません。",
         fix_ja="start_date と end_date を入れ替えるか、誤っている方の日付を直してください。"),
    Rule("start_and_end_range_out_of_order", ERROR, "A frequencies.txt period ends before it starts.",
         ("file", "line", "trip_id", "start_time", "end_time"), _frequency_out_of_order, needs=("frequencies",),
         fix="Swap start_time and end_time, or correct the wrong one.",
         why_ja="frequencies.txt の終了時刻が開始時刻より前になっています。",
         fix_ja="start_time と end_time を見直してください。"),
    Rule("start_and_end_range_equal", ERROR, "A frequencies.txt period starts and ends at the same time, so it has no departures.",
         ("file", "line", "trip_id", "start_time", "end_time"), _frequency_range_equal, needs=("frequencies",),
         fix="Give the period a real end_time, or delete the row.",
         why_ja="frequencies.txt の開始時刻と終了時刻が同じで、この時間帯に便がありません。",
         fix_ja="正しい終了時刻を入れるか、その行を削除してください。"),
    Rule("service_has_no_active_day_of_the_week", WARNING, "A calendar.txt row has 0 for all seven weekdays, so it runs only on dates calendar_dates.txt adds.",
         ("file", "line", "service_id"), _no_active_day, needs=("calendar",),
         fix="Set 1 for the weekdays the service runs, or move the service to calendar_dates.txt only.",
         why_ja="calendar.txt の行で月曜から日曜までがすべて 0 になっており、calendar_dates.txt で追加した日にしか運行しません。",
         fix_ja="運行する曜日を 1 にしてください。特定日だけの運行なら calendar_dates.txt だけで定義してください。"),
    Rule("service_never_active", WARNING, "A service_id has no date on which it runs (weekdays outside its range, or every date removed), so its trips never run.",
         ("file", "line", "service_id"), _never_active,
         fix="Check the weekdays, start_date and end_date in calendar.txt and the removals (exception_type 2) in calendar_dates.txt.",
         why_ja="この運行日 (service_id) には運行する日が一日もありません（期間内に該当する曜日がない、またはすべて運休日に指定されている）。その便は一度も運行されません。",
         fix_ja="calendar.txt の曜日・開始日・終了日と、calendar_dates.txt の運休指定 (exception_type=2) を確認してください。"),
    Rule("trip_service_never_active", WARNING, "A trip uses a service_id that has no date on which it runs, so the trip is never offered to riders.",
         ("file", "line", "trip_id", "service_id"), _trip_never_active, needs=("trips",),
         fix="Give the trip a service_id that runs, or fix that service's dates.",
         why_ja="この便の運行日 (service_id) には運行する日がなく、利用者に案内されることがありません。",
         fix_ja="運行する service_id を指定するか、その運行日の日付を直してください。"),
    Rule("unused_service", INFO, "A service_id in calendar.txt or calendar_dates.txt is used by no trip.",
         ("file", "line", "service_id"), _unused_service,
         fix="Delete the unused service, or assign it to the trips it was meant for.",
         why_ja="calendar.txt / calendar_dates.txt の運行日 (service_id) を使う便がありません。",
         fix_ja="使わない運行日は削除するか、本来の便に割り当ててください。"),
    Rule("expired_calendar", WARNING, "A service's last date of operation is before the validation date; the dataset should not keep expired services.",
         ("file", "line", "service_id"), _expired,
         fix="Remove the expired service and its trips, or extend its dates if it still runs.",
         why_ja="この運行日 (service_id) の最終運行日が検証日より前で、すでに期限切れです。",
         fix_ja="期限切れの運行日とその便を削除するか、まだ運行しているなら期間を延ばしてください。"),
    Rule("big_gap_in_service", INFO, "A service does not run for more than 13 days in a row between two dates on which it runs.",
         ("file", "line", "service_id"), _big_gap,
         fix="If the break is not intended (e.g. a missing timetable period), add the missing dates.",
         why_ja="この運行日 (service_id) は、運行日と運行日の間に 14 日以上運行しない期間があります。",
         fix_ja="意図しない空白（ダイヤ期間の入れ忘れなど）であれば、抜けている日付を追加してください。"),
    Rule("redundant_service_exception", INFO, "A calendar_dates.txt row adds a date calendar.txt already runs, or removes one it does not run.",
         ("file", "line", "service_id", "date", "exception_type"), _redundant_exception, needs=("calendar", "calendar_dates"),
         fix="Delete the row, or check that it refers to the intended service_id and date.",
         why_ja="calendar_dates.txt の行が、calendar.txt ですでに運行する日を追加しているか、運行しない日を運休にしています。",
         fix_ja="その行を削除するか、service_id と日付が意図どおりか確認してください。"),
    Rule("consecutive_days_without_service", WARNING, "The feed has 13 or more consecutive days on which no trip runs (as Google FeedValidator reports it).",
         ("file",), _consecutive_days_without_service, needs=("trips",),
         fix="Check that the break is intended (e.g. a seasonal service); otherwise add the missing timetable period.",
         why_ja="13 日以上続けて一本も便が運行しない期間があります。",
         fix_ja="季節運行などの意図したものか確認し、そうでなければ抜けているダイヤ期間を追加してください。"),
    Rule("missing_service_exceptions", WARNING, "Services span six months or more on a weekly pattern without any calendar_dates.txt exception (holidays are usually different).",
         ("file",), _missing_exceptions, needs=("calendar",),
         fix="Add holiday and year-end dates to calendar_dates.txt (exception_type 1 to add, 2 to remove).",
         why_ja="半年以上の期間が曜日だけで定義され、calendar_dates.txt に祝日や年末年始などの例外が一つもありません。",
         fix_ja="祝日や年末年始の運行・運休を calendar_dates.txt に追加してください（追加は 1、運休は 2）。"),
    Rule("feed_expiration_date7_days", WARNING, "The feed's last date is within 7 days of the validation date (or already past): publish the next timetable now.",
         ("file", "field"), _expiry(None, 7),
         fix="Publish a feed with the next timetable period, or extend feed_end_date if the timetable continues.",
         why_ja="データの有効期限が検証日から 7 日以内（またはすでに過ぎています）。",
         fix_ja="次のダイヤ期間のデータを公開するか、ダイヤが続くなら feed_end_date を延ばしてください。"),
    Rule("feed_expiration_date30_days", WARNING, "The feed's last date is within 30 days of the validation date.",
         ("file", "field"), _expiry(7, 30),
         fix="Prepare and publish the next timetable period before this date.",
         why_ja="データの有効期限が検証日から 30 日以内です。",
         fix_ja="期限までに次のダイヤ期間のデータを準備して公開してください。"),
    Rule("feed_expiration_date60_days", INFO, "The feed's last date is within 60 days of the validation date (Google FeedValidator: 'This feed will soon expire').",
         ("file", "field"), _expiry(30, 60, strict=True),
         fix="Plan the next timetable period's data.",
         why_ja="データの有効期限が検証日から 60 日以内です。",
         fix_ja="次のダイヤ期間のデータ作成を計画してください。"),
    Rule("future_feed", INFO, "The feed starts after the validation date, so it has no service yet.",
         ("file",), _future_feed,
         fix="Keep publishing the current timetable until this feed starts, or check feed_start_date.",
         why_ja="データの開始日が検証日より後で、まだ運行がありません。",
         fix_ja="このデータが始まるまで現行ダイヤのデータも公開し続けるか、feed_start_date を確認してください。"),
    Rule("trip_coverage_not_active_for_next7_days", WARNING, "The dates most trips run on do not cover the 7 days following the validation date.",
         ("file",), _not_active_next7, needs=("trips",),
         fix="Publish data that covers at least the coming week.",
         why_ja="便の大部分が運行する期間が、検証日からの 7 日間をカバーしていません。",
         fix_ja="少なくとも今後 1 週間をカバーするデータを公開してください。"),
    Rule("service_window_outside_feed_period", INFO, "Trips run on dates outside the feed period declared in feed_info.txt.",
         ("file", "line", "feed_start_date", "feed_end_date"), _outside_feed_period, needs=("feed_info",),
         fix="Make feed_start_date and feed_end_date cover every date the trips run, or drop the dates outside it.",
         why_ja="feed_info.txt に書かれた有効期間の外の日にも便が運行されています。",
         fix_ja="feed_start_date・feed_end_date が運行日をすべて含むようにするか、期間外の日付を削除してください。"),
    Rule("feed_valid_beyond_total_service_window", INFO, "feed_info.txt declares the feed valid on dates where no trip runs.",
         ("file", "line", "feed_start_date", "feed_end_date"), _beyond_service_window, needs=("feed_info",),
         fix="Set feed_start_date and feed_end_date to the dates the timetable covers.",
         why_ja="feed_info.txt の有効期間に、便が一本も運行しない日が含まれています。",
         fix_ja="feed_start_date・feed_end_date をダイヤの対象期間に合わせてください。"),
]
