import datetime as dt

import pytest

from transforms.timetable.times import BAD, BLANK, NOT_RUN, PASS, TIME, format_seconds, parse_time_cell


@pytest.mark.parametrize("value,expected", [
    ("5:30", "05:30:00"), ("05:30", "05:30:00"), ("530", "05:30:00"), ("0530", "05:30:00"), (530.0, "05:30:00"),
    ("5:30:15", "05:30:15"), ("24:10", "24:10:00"), ("25:05", "25:05:00"), ("５：３０", "05:30:00"), ("7.05", "07:05:00"),
    ("6:40発", "06:40:00"),
])
def test_written_times_are_read(value, expected):
    cell = parse_time_cell(value)
    assert cell.kind == TIME
    assert format_seconds(cell.seconds) == expected


def test_excel_day_fractions_and_time_cells_are_read():
    assert format_seconds(parse_time_cell(5.5 / 24).seconds) == "05:30:00"
    assert format_seconds(parse_time_cell((24 + 10 / 60) / 24).seconds) == "24:10:00"  # 1.00694…
    assert format_seconds(parse_time_cell(dt.time(5, 30)).seconds) == "05:30:00"
    assert format_seconds(parse_time_cell(dt.timedelta(hours=24, minutes=10)).seconds) == "24:10:00"
    # openpyxl reads a [h]:mm cell holding 1.00694 as 1899-12-31 00:10
    assert format_seconds(parse_time_cell(dt.datetime(1899, 12, 31, 0, 10)).seconds) == "24:10:00"
    # a number in a time-formatted cell is a day fraction even when it is whole (0 = midnight)
    assert format_seconds(parse_time_cell(0.0, is_time_format=True).seconds) == "00:00:00"


@pytest.mark.parametrize("value", ["レ", "↓", "|", "｜"])
def test_pass_markers(value):
    assert parse_time_cell(value).kind == PASS


@pytest.mark.parametrize("value", ["=", "‖", "＝"])
def test_not_run_markers(value):
    assert parse_time_cell(value).kind == NOT_RUN


def test_declared_markers_replace_the_defaults():
    assert parse_time_cell("通", pass_markers=("通",)).kind == PASS
    assert parse_time_cell("レ", pass_markers=("通",)).kind == BAD


def test_blank_cells_are_blank():
    assert parse_time_cell(None).kind == BLANK
    assert parse_time_cell("  ").kind == BLANK


@pytest.mark.parametrize("value", ["7:6x", "12:75", "運休", "9999", -1.0, True])
def test_unreadable_cells_say_what_was_expected(value):
    cell = parse_time_cell(value)
    assert cell.kind == BAD
    assert "5:30" in cell.expected and "24:10" in cell.expected
