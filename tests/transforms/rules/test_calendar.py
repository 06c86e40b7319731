"""Calendar rules: date ranges, days a service runs, gaps, expiry and coverage, and parity with FeedValidator."""

import csv
import re
from datetime import date, timedelta

import pytest

from tests.conftest import shared
from tests.transforms.rules._feed_b import DAY, codes, feed, found, rule, run
from transforms.rules.calendar import RULES

CAL = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
CD = "service_id,date,exception_type\n"
FI = "feed_publisher_name,feed_publisher_url,feed_lang,feed_start_date,feed_end_date\n"
FREQ = "trip_id,start_time,end_time,headway_secs\n"
#: A calendar_dates row that keeps missing_service_exceptions quiet in the passing cases.
ONE_EXCEPTION = CD + "WD,20261103,2\n"


def test_calendar_ending_before_it_starts_is_out_of_order(tmp_path):
    bad = run(tmp_path / "bad", feed(calendar=CAL + "WD,1,1,1,1,1,0,0,20270331,20260401\n"), rule(RULES, "start_and_end_range_out_of_order"))
    (n,) = found(bad, "start_and_end_range_out_of_order")
    assert n["file"] == "calendar.txt" and n["line"] == 2 and "WD" in n["message"]
    assert not run(tmp_path / "good", feed(), rule(RULES, "start_and_end_range_out_of_order")).counts


@pytest.mark.parametrize("start,end,code", [
    ("08:00:00", "08:00:00", "start_and_end_range_equal"),
    ("09:00:00", "08:00:00", "start_and_end_range_out_of_order"),
    ("08:00:00", "09:00:00", None),
])
def test_frequency_periods_must_have_a_length(tmp_path, start, end, code):
    result = run(tmp_path, feed(frequencies=FREQ + f"T1,{start},{end},600\n"), rule(RULES, "start_and_end_range_equal") + rule(RULES, "start_and_end_range_out_of_order"))
    assert codes(result) == ({code} if code else set())
    if code:
        assert "T1" in found(result, code)[0]["message"]


def test_calendar_without_weekdays_is_reported_with_its_added_dates(tmp_path):
    cal = CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\nEV,0,0,0,0,0,0,0,20260401,20270331\n"
    result = run(tmp_path / "bad", feed(calendar=cal, calendar_dates=CD + "EV,20260606,1\n"), rule(RULES, "service_has_no_active_day_of_the_week"))
    (n,) = found(result, "service_has_no_active_day_of_the_week")
    assert n["value"] == "EV" and "calendar_dates.txt adds" in n["message"]
    assert not run(tmp_path / "good", feed(), rule(RULES, "service_has_no_active_day_of_the_week")).counts


def test_service_that_never_runs_and_its_trips_are_reported(tmp_path):
    # Saturdays and Sundays only, within a Monday-to-Friday week: not a single day.
    never = CAL + "WD,0,0,0,0,0,1,1,20260601,20260605\n"
    picked = rule(RULES, "service_never_active") + rule(RULES, "trip_service_never_active")
    result = run(tmp_path / "bad", feed(calendar=never), picked)
    (svc,) = found(result, "service_never_active")
    assert svc["value"] == "WD" and "1 trip(s)" in svc["message"]
    (trip,) = found(result, "trip_service_never_active")
    assert trip["file"] == "trips.txt" and "T1" in trip["message"]
    assert not run(tmp_path / "good", feed(), picked).counts


def test_every_date_removed_means_never_active(tmp_path):
    cal = CAL + "WD,1,0,0,0,0,0,0,20260601,20260608\n"
    result = run(tmp_path, feed(calendar=cal, calendar_dates=CD + "WD,20260601,2\nWD,20260608,2\n"), rule(RULES, "service_never_active"))
    assert codes(result) == {"service_never_active"}


def test_service_no_trip_uses_is_unused(tmp_path):
    cal = CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\nXMAS,0,0,0,0,0,0,0,20261225,20261225\n"
    result = run(tmp_path / "bad", feed(calendar=cal), rule(RULES, "unused_service"))
    assert [n["value"] for n in found(result, "unused_service")] == ["XMAS"]
    assert not run(tmp_path / "good", feed(), rule(RULES, "unused_service")).counts


@pytest.mark.parametrize("day,expired", [(date(2027, 4, 1), True), (date(2027, 3, 31), False), (DAY, False)])
def test_service_whose_last_day_is_before_the_validation_date_is_expired(tmp_path, day, expired):
    result = run(tmp_path, feed(), rule(RULES, "expired_calendar"), day=day)
    assert codes(result) == ({"expired_calendar"} if expired else set())


def test_calendar_dates_removals_count_for_expiry(tmp_path):
    # The last running day (Wednesday 2027-03-31) is removed: the service ends on 2027-03-30.
    result = run(tmp_path, feed(calendar_dates=CD + "WD,20270331,2\n"), rule(RULES, "expired_calendar"), day=date(2027, 3, 31))
    (n,) = found(result, "expired_calendar")
    assert "2027-03-30" in n["message"]


@pytest.mark.parametrize("second,gap", [("20260620", True), ("20260615", False)])
def test_more_than_13_days_between_two_running_days_is_a_big_gap(tmp_path, second, gap):
    files = feed(calendar=None, calendar_dates=CD + f"WD,20260601,1\nWD,{second},1\n")
    result = run(tmp_path, files, rule(RULES, "big_gap_in_service"))
    assert codes(result) == ({"big_gap_in_service"} if gap else set())
    if gap:
        assert "18 days, from 2026-06-02 to 2026-06-19" in found(result, "big_gap_in_service")[0]["message"]


@pytest.mark.parametrize("row,redundant", [
    ("WD,20260601,1", True),   # a Monday the calendar already runs
    ("WD,20260606,2", True),   # a Saturday the calendar does not run
    ("WD,20260601,2", False),  # removing a Monday: a real exception
    ("WD,20260606,1", False),  # adding a Saturday: a real exception
])
def test_exception_that_changes_nothing_is_redundant(tmp_path, row, redundant):
    result = run(tmp_path, feed(calendar_dates=CD + row + "\n"), rule(RULES, "redundant_service_exception"))
    assert codes(result) == ({"redundant_service_exception"} if redundant else set())


def test_thirteen_days_without_any_trip_are_reported_like_feedvalidator(tmp_path):
    removed = "".join(f"WD,{(date(2026, 6, 1) + timedelta(days=i)):%Y%m%d},2\n" for i in range(19) if (date(2026, 6, 1) + timedelta(days=i)).weekday() < 5)
    result = run(tmp_path / "bad", feed(calendar_dates=CD + removed), rule(RULES, "consecutive_days_without_service"))
    (n,) = found(result, "consecutive_days_without_service")
    assert n["message"] == "There are 23 consecutive days, from 2026-05-30 to 2026-06-21, without any scheduled service"
    assert not run(tmp_path / "good", feed(), rule(RULES, "consecutive_days_without_service")).counts


def test_gaps_long_before_the_validation_date_are_not_searched(tmp_path):
    """FeedValidator looks from validation date - 12 days on; an old gap is history."""
    removed = "".join(f"WD,{(date(2026, 4, 6) + timedelta(days=i)):%Y%m%d},2\n" for i in range(19))
    result = run(tmp_path, feed(calendar_dates=CD + removed), rule(RULES, "consecutive_days_without_service"))
    assert not result.counts
    assert codes(run(tmp_path / "then", feed(calendar_dates=CD + removed), rule(RULES, "consecutive_days_without_service"),
                     day=date(2026, 4, 10))) == {"consecutive_days_without_service"}


@pytest.mark.parametrize("files,missing", [
    (feed(), True),
    (feed(calendar_dates=ONE_EXCEPTION), False),
    (feed(calendar=CAL + "WD,1,1,1,1,1,0,0,20260401,20260915\n"), False),  # under six months
])
def test_half_a_year_of_weekly_service_without_exceptions_is_reported(tmp_path, files, missing):
    result = run(tmp_path, files, rule(RULES, "missing_service_exceptions"))
    assert codes(result) == ({"missing_service_exceptions"} if missing else set())


EXPIRY = ["feed_expiration_date7_days", "feed_expiration_date30_days", "feed_expiration_date60_days"]


@pytest.mark.parametrize("days,code", [(-3, "feed_expiration_date7_days"), (5, "feed_expiration_date7_days"),
                                       (20, "feed_expiration_date30_days"), (45, "feed_expiration_date60_days"), (90, None)])
def test_feed_end_date_close_to_the_validation_date_is_reported_once(tmp_path, days, code):
    end = DAY + timedelta(days=days)
    files = feed(feed_info=FI + f"Town,https://example.jp,ja,20260401,{end:%Y%m%d}\n")
    picked = [r for c in EXPIRY for r in rule(RULES, c)]
    result = run(tmp_path, files, picked)
    assert codes(result) == ({code} if code else set())
    if code:
        (n,) = found(result, code)
        assert n["file"] == "feed_info.txt" and n["field"] == "feed_end_date" and f"{end:%Y-%m-%d}" in n["message"]


def test_without_feed_info_the_last_calendar_date_is_the_expiry(tmp_path):
    result = run(tmp_path, feed(), rule(RULES, "feed_expiration_date7_days"), day=date(2027, 3, 28))
    (n,) = found(result, "feed_expiration_date7_days")
    assert n["file"] == "calendar.txt" and "end_date in calendar.txt" in n["message"]


@pytest.mark.parametrize("day,future", [(date(2026, 3, 1), True), (DAY, False)])
def test_feed_starting_after_the_validation_date_is_future(tmp_path, day, future):
    assert codes(run(tmp_path, feed(), rule(RULES, "future_feed"), day=day)) == ({"future_feed"} if future else set())


@pytest.mark.parametrize("day,uncovered", [(date(2027, 3, 28), True), (date(2026, 3, 30), True), (DAY, False)])
def test_trips_must_cover_the_next_seven_days(tmp_path, day, uncovered):
    result = run(tmp_path, feed(), rule(RULES, "trip_coverage_not_active_for_next7_days"), day=day)
    assert codes(result) == ({"trip_coverage_not_active_for_next7_days"} if uncovered else set())


@pytest.mark.parametrize("start,end,code", [
    ("20260501", "20261231", "service_window_outside_feed_period"),
    ("20260401", "20271231", "feed_valid_beyond_total_service_window"),
    ("20260401", "20270331", None),
])
def test_feed_info_period_and_trip_dates_must_agree(tmp_path, start, end, code):
    picked = rule(RULES, "service_window_outside_feed_period") + rule(RULES, "feed_valid_beyond_total_service_window")
    result = run(tmp_path, feed(feed_info=FI + f"Town,https://example.jp,ja,{start},{end}\n"), picked)
    assert codes(result) == ({code} if code else set())


# --- parity with Google FeedValidator on real GTFS-JP feeds ----------------------------------------

#: FeedValidator's run date is not in its logs; its gap and expiry warnings on the 87 feeds are all
#: reproduced for validation dates from 2019-04-29 to 2019-05-18 (2019-04-28 and 2019-05-20 do not).
FEEDVALIDATOR_DAY = date(2019, 5, 1)
PEER = {
    "consecutive_days_without_service": re.compile(r"There are \d+ consecutive days, from \S+ to \S+, without any scheduled service"),
    "missing_service_exceptions": re.compile(r"All services are defined on a weekly basis from \S+ to \S+ with no single day variations"),
}


def _peer_log(feed_zip: str) -> str:
    corpus = shared("gtfs", "jp", "corpus-2019")
    rows = {r["feed_zip"]: r["output_dir"] for r in csv.DictReader((corpus / "expected" / "summary.csv").open(encoding="utf-8"))}
    return " ".join((corpus / "expected" / rows[feed_zip] / "log.txt").read_text(encoding="utf-8").split())


@pytest.mark.parametrize("feed_zip", [
    "GTFS(nagaibus-gunma-jp).zip", "city_uozu_omotenashi_gtfs.zip", "gtfs.0002.express.GMA.zip", "gtfs.1022.minakamimachi_com.zip",
    "gtfs.0003.lim.GMA.zip", "gtfs.1028.fujiokashi_com.zip", "GTFS_TSUAIRPORTLINE.zip", "chutetsu.zip", "133.zip",
])
def test_gaps_exceptions_and_expiry_match_feedvalidator(tmp_path, feed_zip):
    zip_path = shared("gtfs", "jp", "corpus-2019", "feeds", feed_zip)
    log = _peer_log(feed_zip)
    picked = [r for r in RULES if r.code in (*PEER, *EXPIRY)]
    result = run(tmp_path, zip_path, picked, profile="gtfs-jp", day=FEEDVALIDATOR_DAY)
    for code, pattern in PEER.items():
        ours = sorted(n["message"] for n in found(result, code))
        theirs = sorted(pattern.findall(log))
        assert [o[: len(t)] for o, t in zip(ours, theirs)] == theirs and len(ours) == len(theirs), code
    soon = "This feed will soon expire" in log
    assert bool(codes(result) & set(EXPIRY)) == soon


def test_coverage_follows_the_dates_most_trips_run_not_a_single_late_trip(tmp_path):
    """As MobilityData: one trip running on after the main timetable ends does not make the feed "covered"."""
    cal = ("service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
           "WD,1,1,1,1,1,0,0,20260401,20260603\nLATE,1,1,1,1,1,0,0,20260401,20270331\n")
    trips = "route_id,service_id,trip_id\n" + "".join(f"R1,WD,T{i}\n" for i in range(1, 9)) + "R1,LATE,T9\n"
    st = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n" + "".join(
        f"T{i},08:00:00,08:00:00,S1,1\nT{i},08:10:00,08:10:00,S2,2\n" for i in range(1, 10))
    picked = rule(RULES, "trip_coverage_not_active_for_next7_days")
    assert codes(run(tmp_path / "a", feed(calendar=cal, trips=trips, stop_times=st), picked, day=date(2026, 6, 1)))
    assert not codes(run(tmp_path / "b", feed(calendar=cal, trips=trips, stop_times=st), picked, day=date(2026, 5, 1)))


def test_a_feed_without_any_service_date_gets_no_gap_or_coverage_notice(tmp_path):
    """Without calendar files missing_calendar_and_calendar_date_files says it all (as FeedValidator: no effective dates, no gap search)."""
    picked = rule(RULES, "consecutive_days_without_service") + rule(RULES, "trip_coverage_not_active_for_next7_days")
    assert not run(tmp_path, feed(calendar=None), picked).counts


def test_a_calendar_of_centuries_is_said_once_and_its_day_by_day_rules_are_left_out(tmp_path):
    """10,000 calendar.txt rows of 0001-01-01..9999-12-31 would expand to 3.6e10 service days in each rule that looks at
    every day a service runs (hours of work and spill); the rules that do not expand the calendar still run."""
    rows = "".join(f"S{k},1,1,1,1,1,1,1,00010101,99991231\n" for k in range(10_000))
    result = run(tmp_path, feed(calendar=CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\n" + rows), RULES)
    (n,) = found(result, "calendar_too_long_to_expand")
    total = 10_000 * ((date(9999, 12, 31) - date(1, 1, 1)).days + 1) + 365
    assert (n["file"], n["line"], n["field"]) == ("calendar.txt", 3, "end_date")
    assert f"on {total} days in all" in n["message"] and "service_id S0 from 0001-01-01 to 9999-12-31" in n["message"]
    for code in DAY_BY_DAY:
        assert code not in result.seconds, code  # left out, not run
    assert "unused_service" in result.seconds and "unused_service" in codes(result)  # the 10,000 services no trip uses


#: Rules that look at each day a service runs (transforms/rules/calendar.py service_days).
DAY_BY_DAY = ("service_never_active", "trip_service_never_active", "expired_calendar", "big_gap_in_service",
              "consecutive_days_without_service", "trip_coverage_not_active_for_next7_days")


def test_a_calendar_within_the_budget_is_checked_day_by_day_and_nothing_is_said_of_its_length(tmp_path):
    files = feed(calendar=CAL + "WD,1,1,1,1,1,0,0,20260401,20270331\nOLD,1,1,1,1,1,0,0,20200101,20200131\n")
    under = run(tmp_path / "under", files, RULES)
    assert "calendar_too_long_to_expand" not in codes(under) and "expired_calendar" in codes(under)
    assert [code for code in DAY_BY_DAY if code not in under.seconds] == []
    over = run(tmp_path / "over", files, RULES, params={"calendar_days_budget": 100})
    assert "calendar_too_long_to_expand" in codes(over) and "expired_calendar" not in codes(over)
    assert codes(over) - {"calendar_too_long_to_expand"} == codes(under) - set(DAY_BY_DAY)
