"""Trip files as operators send them (issue 17), authored here: title rows, footers, repeated headers, date and time in two
columns, aggregate rows with a trip count, a status that says a row is not a trip, numbers written ' 1,234 ' and '-'."""

from __future__ import annotations

import json

import pytest

from tests.transforms.timetable import bombs
from transforms.adapters import InputError
from transforms.trips.spec import check_trips

TIMES = {"currency": "JPY", "time": {"format": "%Y-%m-%d %H:%M", "zone": "local"}}


def _rows(con, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall()


def _codes(staged) -> dict[str, int]:
    return staged.counts_by_code()


# ---- repeated and empty header names -------------------------------------------------------------------------------

DUPLICATE = ("pickup,address,address,,fare\n"
             "2026-04-01 10:00,駅前1-2,山手3-4,,900\n").encode()


def test_repeated_and_empty_column_names_are_kept_distinct_with_a_notice(stage):
    staged, con = stage({"a.csv": DUPLICATE}, {**TIMES, "columns": {
        "pickup_time": "pickup", "pickup_address": "address", "dropoff_address": "address_2", "total_amount": "fare"}})
    assert _rows(con, "SELECT pickup_address, dropoff_address, total_amount FROM fct") == [("駅前1-2", "山手3-4", 900.0)]
    notes = {n.code: n for n in staged.notices}
    assert notes["duplicate_column_name"].file == "a.csv" and notes["duplicate_column_name"].line == 1
    assert "read as 'address_2'" in notes["duplicate_column_name"].message
    assert "read as 'column_4'" in notes["empty_column_name"].message


def test_a_mapped_name_the_header_lacks_lists_the_distinct_names_it_has(stage):
    with pytest.raises(InputError) as exc:
        stage({"a.csv": DUPLICATE}, {**TIMES, "columns": {"pickup_time": "pickup", "trip_count": "address_3"}})
    msg = str(exc.value)
    assert msg.startswith("a.csv: line 1: none of the columns address_3 (trips.columns.trip_count)")
    assert "address, address_2, column_4" in msg and "Name the right column in trips.columns.trip_count" in msg


# ---- title rows above the header, footer rows below the records -------------------------------------------------

TITLED = ("乗車実績報告書 2026年4月,,\n"
          "作成: みなと交通,,\n"
          "\n"
          "pickup,dropoff,fare\n"
          "2026-04-01 10:00,2026-04-01 10:20,900\n"
          "2026-04-01 11:00,2026-04-01 11:05,500\n"
          "合計,,1400\n").encode()
TITLED_SPEC = {**TIMES, "columns": {"pickup_time": "pickup", "dropoff_time": "dropoff", "total_amount": "fare"}}


@pytest.mark.parametrize("header_row", ["auto", 4])
def test_the_header_below_title_rows_is_found_and_the_footer_is_left_out(stage, header_row):
    staged, con = stage({"a.csv": TITLED}, {**TITLED_SPEC, "header_row": header_row, "footer_rows": 1})
    assert _rows(con, "SELECT source_row, total_amount FROM fct ORDER BY 1") == [(1, 900.0), (2, 500.0)]
    assert staged.rows_in == staged.accepted == 2


def test_title_rows_without_header_row_say_which_line_holds_the_header(stage):
    with pytest.raises(InputError) as exc:
        stage({"a.csv": TITLED}, TITLED_SPEC)
    assert "line 4 of a.csv holds the spec's column names: set trips.header_row: 4 (or auto)" in str(exc.value)


def test_a_footer_not_declared_is_quarantined_with_the_column_and_the_fix(stage):
    staged, con = stage({"a.csv": TITLED}, {**TITLED_SPEC, "header_row": "auto"})
    (line, code, reason), = _rows(con, "SELECT line, code, reason FROM quarantine")
    assert (line, code) == (3, "missing_pickup_time")
    assert "'pickup' (trips.columns.pickup_time)" in reason and "Fix: Check time.format" in reason
    assert staged.rows_in == staged.accepted + staged.quarantined == 3


def test_more_footer_rows_than_records_is_refused_with_what_to_lower(stage):
    with pytest.raises(InputError, match=r"a.csv: trips.footer_rows is 9 but the file has only 3 lines under its header; "
                                         r"lower trips.footer_rows"):
        stage({"a.csv": TITLED}, {**TITLED_SPEC, "header_row": 4, "footer_rows": 9})


def test_no_header_found_by_auto_asks_for_its_line(stage):
    with pytest.raises(InputError, match=r"no header found .* set trips.header_row to the line number of the header"):
        stage({"a.csv": b"1,2\n3,4\n"}, {**TIMES, "header_row": "auto", "columns": {"pickup_time": "pickup"}})


def _cell(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def test_a_sheet_with_a_title_a_repeated_header_and_a_total_row(tmp_path, stage):
    rows = [(1, [_cell("A1", "配車実績")]),
            (3, [_cell("A3", "pickup"), _cell("B3", "fare"), _cell("C3", "fare")]),
            (4, [_cell("A4", "2026-04-01 10:00"), '<c r="B4"><v>900</v></c>', '<c r="C4"><v>100</v></c>']),
            (5, [_cell("A5", "合計"), '<c r="B5"><v>900</v></c>'])]
    xml = [f'<row r="{r}">{"".join(cells)}</row>'.encode() for r, cells in rows]
    data = bombs.write_xlsx(tmp_path / "t.xlsx", bombs._sheet(xml)).read_bytes()
    staged, con = stage({"t.xlsx": data}, {**TIMES, "header_row": "auto", "footer_rows": 1,
                                           "columns": {"pickup_time": "pickup", "total_amount": "fare", "tip_amount": "fare_2"}})
    assert _rows(con, "SELECT total_amount, tip_amount FROM fct") == [(900.0, 100.0)]
    (note,) = [n for n in staged.notices if n.code == "duplicate_column_name"]
    assert (note.file, note.line, note.field) == ("t.xlsx", 3, "fare_2")


# ---- date and time of day in two columns ----------------------------------------------------------------------------

DATE_TIME = ("date,start,end,fare\n"
             "2026-04-01,9:05,9:25,900\n"
             "2026/04/01,3:05 PM,3:20 PM,500\n"
             "04/02/2026,11:50 pm,12:10 am,700\n"
             "2026-04-03,25:99,,300\n").encode()
DATE_TIME_SPEC = {"currency": "JPY", "columns": {"pickup_date": "date", "pickup_time_of_day": "start",
                                                  "dropoff_time_of_day": "end", "total_amount": "fare"}}


def test_pickup_and_dropoff_are_built_from_a_date_and_times_of_day_24h_or_12h(stage):
    staged, con = stage({"a.csv": DATE_TIME}, DATE_TIME_SPEC)
    got = _rows(con, "SELECT strftime(pickup_time_local, '%Y-%m-%d %H:%M'), strftime(dropoff_time_local, '%Y-%m-%d %H:%M'), duration_s "
                     "FROM fct ORDER BY source_row")
    assert got == [("2026-04-01 09:05", "2026-04-01 09:25", 1200), ("2026-04-01 15:05", "2026-04-01 15:20", 900),
                   ("2026-04-02 23:50", "2026-04-03 00:10", 1200)]  # past midnight: the next day


def test_an_unreadable_time_of_day_is_quarantined_naming_both_columns_and_the_time_keys(stage):
    staged, con = stage({"a.csv": DATE_TIME}, DATE_TIME_SPEC)
    (line, code, reason, raw), = _rows(con, "SELECT line, code, reason, raw FROM quarantine")
    assert (line, code, json.loads(raw)["start"]) == (4, "missing_pickup_time", "25:99")
    assert "'date' (trips.columns.pickup_date), 'start' (trips.columns.pickup_time_of_day)" in reason
    assert "time.time_of_day_format" in reason


def test_a_time_of_day_without_a_date_is_a_spec_error():
    _, problems = check_trips({"files": ["*.csv"], "columns": {"pickup_time": "ts", "pickup_time_of_day": "t"}}, where="t.yml")
    assert "t.yml: trips.columns.pickup_time_of_day: needs columns.pickup_date too (the date the time of day belongs to)" in problems


# ---- aggregate rows with a trip count, status filter, numbers as written ------------------------------------------

AGGREGATE = ("base,day,trips,status,fare\n"
             "B01,2026-04-01,\" 1,234 \",ok,\" 12,000.5 \"\n"
             "B02,2026-04-01,7,Cancelled,-\n"
             "B03,2026-04-01,many,ok,\n"
             "B04,2026-04-02,0,キャンセル,100\n"
             "B05,2026-04-02,12,ok,\"1,5\"\n").encode()
AGG_SPEC = {"currency": "JPY", "columns": {"pickup_zone": "base", "pickup_date": "day", "trip_count": "trips",
                                           "status": "status", "total_amount": "fare"},
            "exclude": {"status": ["cancelled", "キャンセル"]}}


def test_aggregate_rows_keep_their_trip_count_and_excluded_rows_are_counted_with_their_reason(stage):
    staged, con = stage({"a.csv": AGGREGATE}, AGG_SPEC)
    assert _rows(con, "SELECT pickup_zone, trip_count, total_amount FROM fct ORDER BY 1") == [
        ("B01", 1234, 12000.5), ("B05", 12, None)]  # '1,5' is not a number written with thousands separators
    (f,) = staged.files
    assert (f["rows_in"], f["accepted"], f["quarantined"], f["excluded"]) == (5, 2, 1, 2)
    assert _codes(staged)["excluded_row"] == 2
    notes = sorted(n.message for n in staged.notices if n.code == "excluded_row")
    assert notes[0].startswith("1 rows are not trips: their 'status' is 'Cancelled', which trips.exclude.status lists")


def test_a_trip_count_that_is_not_a_whole_number_is_quarantined_with_what_to_fix(stage):
    staged, con = stage({"a.csv": AGGREGATE}, AGG_SPEC)
    (line, code, reason), = _rows(con, "SELECT line, code, reason FROM quarantine")
    assert (line, code) == (3, "bad_trip_count")
    assert "'trips' (trips.columns.trip_count)" in reason and "remove columns.trip_count" in reason


def test_an_exclude_field_must_be_mapped():
    _, problems = check_trips({"files": ["*.csv"], "columns": {"pickup_time": "ts"}, "exclude": {"status": "Cancelled"}},
                              where="t.yml")
    assert problems == ["t.yml: trips.exclude.status: map columns.status to the column holding it, so its rows can be excluded"]


def test_an_exclude_column_missing_from_the_file_is_refused_not_ignored(stage):
    with pytest.raises(InputError, match=r"trips.columns.status\) \(trips.exclude.status needs it\) is in the header"):
        stage({"a.csv": AGGREGATE}, {**AGG_SPEC, "columns": {**AGG_SPEC["columns"], "status": "booking_status"}})


def test_numbers_with_thousands_separators_spaces_and_dashes(stage):
    data = ("pickup,fare,km\n2026-04-01 10:00, 1,234 ,-\n2026-04-01 11:00,\"-1,000\", \n2026-04-01 12:00,1 234,2.5\n").encode()
    _, con = stage({"a.csv": data.replace(b", 1,234 ,", b",\" 1,234 \",")}, {**TIMES, "columns": {
        "pickup_time": "pickup", "total_amount": "fare", "distance": "km"}})
    assert _rows(con, "SELECT total_amount, distance_km FROM fct ORDER BY source_row") == [
        (1234.0, None), (-1000.0, None), (None, 2.5)]


# ---- zone layer with nothing mapped ---------------------------------------------------------------------------------

def test_a_zone_layer_with_no_zone_or_point_column_is_a_spec_error():
    _, problems = check_trips({"files": ["*.csv"], "zones": {"layer": "city-zones"},
                               "columns": {"pickup_time": "ts", "pickup_address": "addr"}}, where="t.yml")
    assert problems == ["t.yml: trips.zones.layer: names the zone layer 'city-zones' but no column maps to it: map "
                        "columns.pickup_zone / dropoff_zone (zone ids), or columns.pickup_lat and pickup_lon (points, placed "
                        "in zones), or remove zones.layer"]


def test_a_zone_layer_with_points_or_zone_ids_is_accepted():
    for cols in ({"pickup_zone": "z"}, {"pickup_lat": "a", "pickup_lon": "b"}):
        _, problems = check_trips({"files": ["*.csv"], "zones": {"layer": "z"}, "columns": {"pickup_time": "ts", **cols}},
                                  where="t.yml")
        assert problems == []


def test_header_row_on_a_format_without_lines_is_a_spec_error():
    _, problems = check_trips({"files": ["*.jsonl"], "format": "jsonl", "header_row": 2, "columns": {"pickup_time": "ts"}},
                              where="t.yml")
    assert problems == ["t.yml: trips.header_row: applies to csv and xlsx files only; jsonl records name their fields, so remove it"]
