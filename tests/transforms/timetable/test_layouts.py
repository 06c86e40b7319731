"""Timetable layouts as operators lay them out: several blocks per sheet, a layout per workbook, two routes on a sheet.

Every workbook here is authored in the test with openpyxl (fictional stops and times).
"""

from __future__ import annotations

import io

import openpyxl
import pytest

from tests.transforms.timetable.helpers import config, table, write_input
from transforms.adapters import InputError, adapter_for
from transforms.timetable.config import check_config

STOPS = (
    "id,name,lat,lon,kana\n"
    "S1,みなと駅,43.3000,141.4000,みなとえき\n"
    "S2,市役所前,43.3031,141.4039,しやくしょまえ\n"
    "S3,港前,43.2964,141.3956,みなとまえ\n"
    "S4,北浜海岸,43.2802,141.3740,きたはまかいがん\n"
    "S5,山手,43.3100,141.4100,やまて\n"
    "S6,丘の上,43.3200,141.4200,おかのうえ\n"
)
#: one block: row 0 = trip numbers, row 1 = notes, rows 2.. = stops (name, 発/着, times)
NAMES = ["みなと駅", "市役所前", "港前", "北浜海岸"]


def block(times: list[list[str]], names=NAMES) -> list[list]:
    """Return the rows of one block: 便 row, 備考 row, then a row per stop; ``times`` is one list per trip."""
    rows = [["便", None, *[str(i + 1) for i in range(len(times))]], ["備考", None, *[None] * len(times)]]
    for k, name in enumerate(names):
        rows.append([name, "発", *[t[k] for t in times]])
    return rows


MORNING = [["6:40", "6:44", "6:48", "6:55"], ["7:40", "7:44", "7:48", "7:55"]]
EVENING = [["17:40", "17:44", "17:48", "17:55"], ["18:40", "18:44", "レ", "18:55"]]


def xlsx(sheets: dict[str, list[tuple[int, int, list[list]]]], merged: dict[str, list[str]] | None = None) -> bytes:
    """Return an .xlsx with each sheet's grids placed at (0-based row, 0-based column)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, parts in sheets.items():
        ws = wb.create_sheet(name)
        for r0, c0, rows in parts:
            for r, row in enumerate(rows):
                for c, v in enumerate(row):
                    if v is not None:
                        ws.cell(r0 + r + 1, c0 + c + 1, v)
        for rng in (merged or {}).get(name, []):
            ws.merge_cells(rng)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


BASE = {"trips": "columns", "stop_column": "A", "arrival_departure_column": "B", "first_stop_row": 3,
        "first_trip_column": "C", "number_row": 1, "notes_row": 2}


def run(tmp_path, books: dict[str, bytes], **changes):
    cfg = config(workbooks=[{"file": f, "service": "weekday"} for f in books], stops={**config()["stops"], "file": "stops.csv"},
                 **changes)
    assert check_config(cfg) == []
    return adapter_for("timetable").read(write_input(tmp_path, {**books, "stops.csv": STOPS}, cfg))


def notices(feed, code):
    return [n for n in feed.findings.notices if n.code == code]


def departures(feed) -> list[tuple[str, str]]:
    return [(r["trip_id"], r["departure_time"]) for r in table(feed, "stop_times.txt")]


# ---- two stacked blocks -----------------------------------------------------------------------

STACKED = {"平日": [(0, 0, block(MORNING)), (8, 0, block(EVENING))]}  # second block from row 9


def test_two_stacked_blocks_declared_by_range_are_both_read(tmp_path):
    layout = {**BASE, "blocks": [{}, {"first_stop_row": 11, "number_row": 9, "notes_row": 10}]}
    feed = run(tmp_path, {"平日.xlsx": xlsx(STACKED)}, layout=layout)
    trips = table(feed, "trips.txt")
    assert len(trips) == 4
    assert [len([r for r in table(feed, "stop_times.txt") if r["trip_id"] == t["trip_id"]]) for t in trips] == [4, 4, 4, 3]
    # the upper block's stops end above the lower block: no trip fuses both halves of column C
    assert ("R1_weekday_1", "17:40:00") not in departures(feed)
    assert not notices(feed, "timetable_cells_outside_layout")


def test_stacked_blocks_found_by_the_first_stop_repeated(tmp_path):
    feed = run(tmp_path, {"平日.xlsx": xlsx(STACKED)}, layout={**BASE, "repeat": {"marker": "first_stop"}})
    assert len(table(feed, "trips.txt")) == 4
    assert [n.severity for n in feed.findings.notices if n.severity in ("ERROR", "WARNING")] == []


def test_second_block_outside_the_layout_is_warned_naming_its_range(tmp_path):
    layout = {**BASE, "last_stop_row": 6}  # the spec describes the upper block only
    feed = run(tmp_path, {"平日.xlsx": xlsx(STACKED)}, layout=layout)
    assert len(table(feed, "trips.txt")) == 2  # half the timetable ...
    (w,) = notices(feed, "timetable_cells_outside_layout")  # ... never silently
    assert w.severity == "WARNING"
    assert "平日!C11:D14" in w.message and "7 time-like cells" in w.message and "layout.blocks" in w.message


def test_loop_back_to_the_first_stop_is_no_new_block(tmp_path):
    loop = block([["6:40", "6:44", "6:48", "6:55"]], names=["みなと駅", "市役所前", "港前", "みなと駅"])
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, loop)]})}, layout={**BASE, "repeat": {"marker": "first_stop"}})
    assert [r["stop_id"] for r in table(feed, "stop_times.txt")] == ["S1", "S2", "S3", "S1"]


# ---- side-by-side blocks ----------------------------------------------------------------------

SIDE = {"平日": [(0, 0, block(MORNING)), (0, 5, block(EVENING))]}  # second block's stop column is F


def test_side_by_side_blocks_found_by_a_header_marker(tmp_path):
    feed = run(tmp_path, {"平日.xlsx": xlsx(SIDE)}, layout={**BASE, "repeat": {"marker": "便"}})
    assert len(table(feed, "trips.txt")) == 4
    # the left block's trips stop before the right block's stop column: F is no trip, H and I are
    assert [t for t, d in departures(feed) if d == "17:40:00"] == ["R1_weekday_3"]
    assert not notices(feed, "timetable_invalid_time")


def test_side_by_side_blocks_declared_by_range(tmp_path):
    layout = {**BASE, "blocks": [{"last_trip_column": "D"}, {"stop_column": "F", "arrival_departure_column": "G",
                                                             "first_trip_column": "H"}]}
    feed = run(tmp_path, {"平日.xlsx": xlsx(SIDE)}, layout=layout)
    assert len(table(feed, "trips.txt")) == 4


def test_marker_that_is_not_in_the_sheet_names_the_field_to_change(tmp_path):
    feed = run(tmp_path, {"平日.xlsx": xlsx(SIDE), "休日.xlsx": xlsx({"休日": [(0, 0, block(MORNING))]})},
               layout={**BASE, "repeat": {"marker": "便"}},
               layouts=[{"workbook": "平日.xlsx", "layout": {"repeat": {"marker": "系統"}}}])
    (e,) = notices(feed, "timetable_layout_does_not_fit")
    assert "平日.xlsx sheet 平日" in e.message and "'系統'" in e.message and "change layout.repeat.marker" in e.message
    assert len(table(feed, "trips.txt")) == 2  # the other workbook is still read


# ---- a layout per workbook ----------------------------------------------------------------------

def test_each_workbook_has_its_own_layout(tmp_path):
    # the second workbook has a 行先 row above the stops, so its stops start a row lower
    shifted = [block(MORNING)[0], block(MORNING)[1], ["行先", None, "北浜海岸", "北浜海岸"], *block(MORNING)[2:]]
    books = {"A.xlsx": xlsx({"平日": [(0, 0, block(MORNING))]}), "B.xlsx": xlsx({"平日": [(0, 0, shifted)]})}
    override = [{"workbook": "B*.xlsx", "sheet": "平*", "layout": {"first_stop_row": 4, "destination_row": 3}}]
    feed = run(tmp_path, books, layout=BASE, layouts=override)
    assert [t["trip_headsign"] for t in table(feed, "trips.txt")] == ["", "", "北浜海岸", "北浜海岸"]
    assert not [n for n in feed.findings.notices if n.severity == "ERROR"]
    # without the override the 行先 row is read as a stop: the error names the cell and what to do
    bad = run(tmp_path / "bad", books, layout=BASE)
    (e,) = notices(bad, "timetable_stop_not_matched")
    assert "平日!A3" in e.message and "'行先'" in e.message and "stops.overrides" in e.message


def test_layout_override_without_workbook_or_sheet_is_a_spec_error():
    cfg = config(layouts=[{"layout": {"first_stop_row": 4}}, {"sheet": "休日", "layout": {"blocks": [{}, {"stop_column": None}]}}])
    problems = dict(check_config(cfg))
    assert "workbook or sheet" in problems["timetable.layouts[0]"]
    assert "timetable.layouts[1].layout.blocks[1].stop_column" in problems


def test_blocks_and_repeat_together_are_refused():
    problems = dict(check_config(config(layout={**BASE, "blocks": [{}], "repeat": {"marker": "便"}})))
    assert "not both" in problems["timetable.layout.repeat"]


# ---- two routes on one sheet, trips running through -------------------------------------------------

def test_two_routes_in_one_sheet_with_a_through_trip_kept_as_one_trip(tmp_path):
    # 港線 serves みなと駅-港前, 山手線 serves 港前(着/発)-丘の上; the 系統 row says which line each column is
    rows = [
        ["便", None, "1", "2", "3"],
        ["系統", None, "港線", "港線", "山手線"],
        ["みなと駅", "発", "6:40", "7:40", None],
        ["市役所前", "発", "6:44", "7:44", None],
        ["港前", "着", "6:48", "7:48", None],
        ["港前", "発", "6:50", None, "8:00"],
        ["山手", "発", "6:58", None, "8:08"],
        ["丘の上", "着", "7:05", None, "8:15"],
    ]
    layout = {**BASE, "notes_row": None, "route_row": 2}
    layout = {k: v for k, v in layout.items() if v is not None}
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]})}, layout=layout)
    trips = {t["trip_id"]: t["route_id"] for t in table(feed, "trips.txt")}
    assert trips == {"港線_weekday_1": "港線", "港線_weekday_2": "港線", "山手線_weekday_1": "山手線"}
    through = [(r["stop_id"], r["arrival_time"], r["departure_time"]) for r in table(feed, "stop_times.txt")
               if r["trip_id"] == "港線_weekday_1"]
    assert through == [("S1", "06:40:00", "06:40:00"), ("S2", "06:44:00", "06:44:00"), ("S3", "06:48:00", "06:50:00"),
                       ("S5", "06:58:00", "06:58:00"), ("S6", "07:05:00", "07:05:00")]
    routes = {r["route_id"]: (r["route_short_name"]) for r in table(feed, "routes.txt")}
    assert routes == {"港線": "港線", "山手線": "山手線"}
    # a trip without its 系統 goes to route.id, and the cell to fill is named
    rows[1][4] = None
    feed = run(tmp_path / "b", {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]})}, layout=layout)
    (w,) = notices(feed, "timetable_trip_without_route")
    assert "平日!E2" in w.message and "route 'R1'" in w.message


def test_route_per_block(tmp_path):
    layout = {**BASE, "blocks": [{"route": "朝"}, {"first_stop_row": 11, "number_row": 9, "notes_row": 10, "route": "夕"}]}
    feed = run(tmp_path, {"平日.xlsx": xlsx(STACKED)}, layout=layout)
    assert [t["route_id"] for t in table(feed, "trips.txt")] == ["朝", "朝", "夕", "夕"]


# ---- cell locations -------------------------------------------------------------------------------

def test_backwards_arrival_of_a_merged_arrival_departure_stop_is_named_at_its_arrival_cell(tmp_path):
    rows = [
        ["便", None, "1"],
        ["備考", None, None],
        ["みなと駅", "発", "6:40"],
        ["港前", "着", "6:38"],  # the wrong value: 着 before the departure from みなと駅
        [None, "発", "6:50"],  # the name is merged over A4:A5
        ["北浜海岸", "着", "6:55"],
    ]
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]}, merged={"平日": ["A4:A5"]})}, layout=BASE)
    (e,) = notices(feed, "timetable_backwards_trip")
    assert e.message.startswith("平日!C4:") and "06:38:00 at 平日!C4 (港前)" in e.message and "平日!C5" not in e.message
    # 発 before 着 at the same stop: named at the 発 cell, with the 着 it contradicts
    rows[3][2], rows[4][2] = "6:48", "6:46"
    feed = run(tmp_path / "b", {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]}, merged={"平日": ["A4:A5"]})}, layout=BASE)
    (e,) = notices(feed, "timetable_backwards_trip")
    assert e.message.startswith("平日!C5:") and "arrival 06:48:00 at 平日!C4" in e.message


def test_unreadable_workbook_is_listed_after_the_others_are_read(tmp_path):
    books = {"A.xlsx": b"PK\x03\x04 not a workbook", "B.xlsx": xlsx({"平日": [(0, 0, block(MORNING))]})}
    with pytest.raises(InputError) as exc:
        run(tmp_path, books, layout=BASE)
    msg = str(exc.value)
    assert msg.startswith("1 of 2 workbooks could not be read (1 read without that problem): A.xlsx")
    # the same in Japanese for a Japanese feed's officer (printed first by the CLI), naming the file and what to do
    assert exc.value.ja.startswith("2 個のブックのうち 1 個が読み込めませんでした（1 個はこの問題なく読めました）: A.xlsx: ")
    assert "zip が壊れています" in exc.value.ja and "保存し直してください" in exc.value.ja


def test_route_per_column_range_over_the_same_stop_rows(tmp_path):
    three = [*MORNING, ["8:40", "8:44", "8:48", "8:55"]]
    layout = {**BASE, "blocks": [{"last_trip_column": "D", "route": "普通"}, {"first_trip_column": "E", "route": "急行"}]}
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, block(three))]})}, layout=layout)
    assert [t["route_id"] for t in table(feed, "trips.txt")] == ["普通", "普通", "急行"]


def test_block_without_stop_names_names_the_keys_to_change(tmp_path):
    layout = {**BASE, "blocks": [{}, {"stop_column": "F", "arrival_departure_column": "G", "first_trip_column": "H"}]}
    lonely = [[None, None, "9:00", "9:30"], [None, None, "9:10", "9:40"]]  # times, but nothing in F
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, block(MORNING)), (2, 5, lonely)]})}, layout=layout)
    (e,) = notices(feed, "timetable_sheet_without_stops")
    assert "block 2 (layout.blocks[1])" in e.message and "平日!F3" in e.message
    assert "change layout.blocks[1].stop_column or layout.blocks[1].first_stop_row" in e.message
    assert len(table(feed, "trips.txt")) == 2


def test_two_tables_of_trips_down_rows_found_by_the_first_stop(tmp_path):
    head = ["便", *NAMES]
    rows = [head, ["1", *MORNING[0]], ["2", *MORNING[1]], [None], head, ["3", *EVENING[0]], ["4", *EVENING[1]]]
    layout = {"trips": "rows", "stop_row": 1, "first_stop_column": "B", "first_trip_row": 2, "number_column": "A",
              "repeat": {"marker": "first_stop"}}
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]})}, layout=layout)
    assert len(table(feed, "trips.txt")) == 4
    assert [n for n in feed.findings.notices if n.severity in ("ERROR", "WARNING")] == []
    # without the marker the lower table is named as outside the layout (its header row is read as a trip)
    del layout["repeat"]
    feed = run(tmp_path / "b", {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]})}, layout={**layout, "last_trip_row": 3})
    (w,) = notices(feed, "timetable_cells_outside_layout")
    assert "平日!B6:E7" in w.message


def test_marker_found_on_every_row_is_refused_not_read_for_hours(tmp_path):
    rows = block(MORNING) + [["便"]] * 250
    feed = run(tmp_path, {"平日.xlsx": xlsx({"平日": [(0, 0, rows)]})}, layout={**BASE, "repeat": {"marker": "便"}})
    (e,) = notices(feed, "timetable_layout_does_not_fit")
    assert "more than 200 times" in e.message and "layout.repeat.marker" in e.message
