import datetime as dt
import io

import openpyxl

from tests.transforms.timetable.helpers import STOPS_CSV, WEEKDAY_CSV, config, table, write_input
from transforms.adapters import adapter_for
from transforms.timetable.calendar import CalendarPlan, Exception_, Service, calendar_rows, japanese_holidays


def test_japanese_holidays_come_from_the_library_with_substitute_days():
    days = japanese_holidays(dt.date(2026, 4, 1), dt.date(2027, 3, 31))
    assert dt.date(2026, 7, 20) in days  # 海の日
    assert dt.date(2026, 5, 6) in days  # 振替休日 for 憲法記念日 on a Sunday
    assert dt.date(2026, 9, 22) in days  # 国民の休日 between 敬老の日 and 秋分の日
    assert dt.date(2026, 4, 1) not in days


def test_holiday_rules_and_declared_exceptions_make_calendar_dates():
    plan = CalendarPlan(dt.date(2026, 4, 1), dt.date(2027, 3, 31),
                        [Service("平日", ("mon", "tue", "wed", "thu", "fri"), "skip"), Service("日祝", ("sun",), "run")],
                        [Exception_("平日", dt.date(2026, 12, 31), False), Exception_("日祝", dt.date(2026, 7, 20), False),
                         Exception_("平日", dt.date(2027, 1, 3), False), Exception_("日祝", dt.date(2026, 8, 13), True)])
    cal, dates = calendar_rows(plan)
    assert cal[0] == ["平日", "1", "1", "1", "1", "1", "0", "0", "20260401", "20270331"]
    got = {(s, d): t for s, d, t in dates}
    assert got[("平日", "20260429")] == "2" and got[("日祝", "20260429")] == "1"
    assert got[("平日", "20261231")] == "2"
    # the declared exception wins over the holiday rule: 海の日 (a Monday) gets no 'added' row, and calendar.txt
    # already says 日祝 does not run on Mondays, so no row at all
    assert ("日祝", "20260720") not in got
    assert ("平日", "20270103") not in got  # removing a Sunday from 平日 is what calendar.txt says already
    assert got[("日祝", "20260813")] == "1"  # お盆: a Thursday added to the Sunday service


def _triangle_xlsx() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "R1"
    rows = [["みなと駅", "S1"], ["市役所前", "S2", 150], ["港前", "S3", 180, 150], ["北浜海岸", "S4", 220, 180, 150]]
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_triangle_fare_table_becomes_fare_attributes_and_rules(tmp_path):
    fares = {"triangle": {"file": "fares.xlsx", "name_column": "A", "stop_id_column": "B", "first_fare_column": "C",
                          "fare_id": "k_{price}"}}
    feed = adapter_for("timetable").read(write_input(
        tmp_path, {"平日.csv": WEEKDAY_CSV, "stops.csv": STOPS_CSV, "fares.xlsx": _triangle_xlsx()}, config(fares=fares)))
    attrs = {r["fare_id"]: r["price"] for r in table(feed, "fare_attributes.txt")}
    assert attrs == {"k_150": "150", "k_180": "180", "k_220": "220"}
    rules = {(r["origin_id"], r["destination_id"]): r["fare_id"] for r in table(feed, "fare_rules.txt")}
    assert len(rules) == 6  # 4 stops: 4·3/2 origin-destination pairs, in travel direction
    assert rules[("S1", "S4")] == "k_220" and rules[("S2", "S3")] == "k_150" and rules[("S1", "S3")] == "k_180"
    zones = {r["stop_id"]: r["zone_id"] for r in table(feed, "stops.txt")}
    assert zones == {"S1": "S1", "S2": "S2", "S3": "S3", "S4": "S4"}


def test_flat_fare_applies_to_every_route(tmp_path):
    feed = adapter_for("timetable").read(write_input(
        tmp_path, {"平日.csv": WEEKDAY_CSV, "stops.csv": STOPS_CSV}, config(fares={"flat": {"price": 200, "fare_id": "均一"}})))
    assert table(feed, "fare_attributes.txt")[0]["price"] == "200"
    assert [(r["fare_id"], r["route_id"]) for r in table(feed, "fare_rules.txt")] == [("均一", "R1")]
