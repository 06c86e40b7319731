import pytest

from tests.transforms.timetable.helpers import STOPS_CSV, WEEKDAY_CSV, config, table, write_input
from transforms.adapters import InputError, adapter_for
from transforms.timetable.adapter import align


def read(folder):
    return adapter_for("timetable").read(folder)


def test_timetable_becomes_gtfs_jp_tables(tmp_path):
    feed = read(write_input(tmp_path, {"平日.csv": WEEKDAY_CSV, "stops.csv": STOPS_CSV}))
    assert {"agency.txt", "agency_jp.txt", "stops.txt", "routes.txt", "routes_jp.txt", "trips.txt", "stop_times.txt",
            "calendar.txt", "calendar_dates.txt", "feed_info.txt", "translations.txt"} <= set(feed.files)
    trips = table(feed, "trips.txt")
    assert [t["trip_id"] for t in trips] == ["R1_weekday_1", "R1_weekday_2"]
    st = [(r["trip_id"], r["stop_id"], r["departure_time"]) for r in table(feed, "stop_times.txt")]
    # 市役所 matches 市役所前 (suffix), レ at 港前 means trip 2 passes without stopping
    assert st == [("R1_weekday_1", "S1", "06:40:00"), ("R1_weekday_1", "S2", "06:44:00"), ("R1_weekday_1", "S3", "06:48:00"),
                  ("R1_weekday_1", "S4", "06:55:00"), ("R1_weekday_2", "S1", "08:05:00"), ("R1_weekday_2", "S2", "08:09:00"),
                  ("R1_weekday_2", "S4", "08:20:00")]
    # line numbers are those of the table written as CSV: header line 1, rows from line 2
    assert feed.files["stop_times.txt"].csv.table.column("_line").to_pylist() == list(range(2, 9))
    kana = {r["field_value"]: r["translation"] for r in table(feed, "translations.txt") if r["language"] == "ja-Hrkt"}
    assert kana["みなと駅"] == "みなとえき"
    assert not [n for n in feed.findings.notices if n.severity == "ERROR"]


def test_unreadable_cell_is_named_in_excel_notation(tmp_path):
    bad = WEEKDAY_CSV.replace("6:44", "6:4x")
    feed = read(write_input(tmp_path, {"平日.csv": bad, "stops.csv": STOPS_CSV}))
    errors = [n for n in feed.findings.notices if n.code == "timetable_invalid_time"]
    assert len(errors) == 1
    assert "平日!C5" in errors[0].message and "'6:4x'" in errors[0].message and "expected a time" in errors[0].message
    assert [q.code for q in feed.findings.quarantine] == ["timetable_invalid_time"]
    assert "平日!C5" in feed.findings.quarantine[0].reason


def test_backwards_trip_is_quarantined_with_its_location(tmp_path):
    bad = WEEKDAY_CSV.replace("6:48", "6:38")
    feed = read(write_input(tmp_path, {"平日.csv": bad, "stops.csv": STOPS_CSV}))
    errors = [n for n in feed.findings.notices if n.code == "timetable_backwards_trip"]
    assert len(errors) == 1 and "平日!C6" in errors[0].message and "06:38:00" in errors[0].message
    # the trip is neither dropped silently nor reordered: its four times are in quarantine, the other trip stays
    assert [t["trip_id"] for t in table(feed, "trips.txt")] == ["R1_weekday_1"]
    assert table(feed, "stop_times.txt")[0]["departure_time"] == "08:05:00"
    assert len([q for q in feed.findings.quarantine if q.code == "timetable_backwards_trip"]) == 4
    summary = next(n for n in feed.findings.notices if n.code == "timetable_read_summary")
    assert summary.message == "7 time cells in 1 sheets: 3 stop times in 1 trips, 0 merged (a stop on two rows), 4 quarantined"


def test_trip_past_midnight_keeps_counting_hours(tmp_path):
    late = WEEKDAY_CSV.replace("8:05", "23:50").replace("8:09", "23:55").replace("8:20", "0:10")
    feed = read(write_input(tmp_path, {"平日.csv": late, "stops.csv": STOPS_CSV}))
    times = [r["departure_time"] for r in table(feed, "stop_times.txt") if r["trip_id"] == "R1_weekday_2"]
    assert times == ["23:50:00", "23:55:00", "24:10:00"]


def test_unmatched_stop_is_reported_with_closest_candidates(tmp_path):
    feed = read(write_input(tmp_path, {"平日.csv": WEEKDAY_CSV.replace("港前", "港町"), "stops.csv": STOPS_CSV}))
    errors = [n for n in feed.findings.notices if n.code == "timetable_stop_not_matched"]
    assert len(errors) == 1
    assert "'港町'" in errors[0].message and "平日!A6" in errors[0].message and "港前 (S3)" in errors[0].message
    # its one time (trip 2 passes it) is quarantined, not guessed
    assert [q.code for q in feed.findings.quarantine] == ["timetable_stop_not_matched"]
    assert "S3" not in {r["stop_id"] for r in table(feed, "stop_times.txt")}


def test_arrival_and_departure_rows_make_one_stop_time(tmp_path):
    tt = ("時刻表,,,\n便,,1,2\n備考,,,\nみなと駅,発,6:40,8:05\n港前,着,6:48,8:12\n港前,発,6:50,8:15\n北浜海岸,着,6:55,8:20\n")
    feed = read(write_input(tmp_path, {"平日.csv": tt, "stops.csv": STOPS_CSV}))
    rows = [r for r in table(feed, "stop_times.txt") if r["trip_id"] == "R1_weekday_1"]
    assert [(r["stop_id"], r["arrival_time"], r["departure_time"]) for r in rows] == [
        ("S1", "06:40:00", "06:40:00"), ("S3", "06:48:00", "06:50:00"), ("S4", "06:55:00", "06:55:00")]


def test_footnote_restricts_a_trip_to_its_service(tmp_path):
    tt = WEEKDAY_CSV.replace("備考,,,", "備考,,,金")
    cal = config()["calendar"]
    cal["services"]["friday"] = {"days": ["fri"], "holidays": "skip"}
    feed = read(write_input(tmp_path, {"平日.csv": tt, "stops.csv": STOPS_CSV},
                            config(footnotes={"金": {"service": "friday"}}, calendar=cal)))
    trips = {t["trip_id"]: (t["service_id"], t["jp_trip_desc"]) for t in table(feed, "trips.txt")}
    assert trips == {"R1_weekday_1": ("weekday", ""), "R1_friday_1": ("friday", "金")}


def test_destination_row_gives_the_headsign(tmp_path):
    tt = WEEKDAY_CSV.replace("備考,,,", "備考,,,\n行先,,北浜海岸,北浜海岸")
    layout = {**config()["layout"], "first_stop_row": 5, "destination_row": 4}
    feed = read(write_input(tmp_path, {"平日.csv": tt, "stops.csv": STOPS_CSV}, config(layout=layout)))
    assert [t["trip_headsign"] for t in table(feed, "trips.txt")] == ["北浜海岸", "北浜海岸"]


def test_trips_down_rows_are_read_like_columns(tmp_path):
    tt = "便,みなと駅,市役所,港前,北浜海岸\n1,6:40,6:44,6:48,6:55\n2,8:05,8:09,レ,8:20\n"
    layout = {"trips": "rows", "stop_row": 1, "first_stop_column": "B", "first_trip_row": 2, "number_column": "A"}
    feed = read(write_input(tmp_path, {"平日.csv": tt, "stops.csv": STOPS_CSV}, config(layout=layout)))
    assert len(table(feed, "stop_times.txt")) == 7
    bad = read(write_input(tmp_path / "b", {"平日.csv": tt.replace("8:09", "8:0y"), "stops.csv": STOPS_CSV}, config(layout=layout)))
    # the reference is in the original sheet: row 3, column C
    assert any("平日!C3" in n.message for n in bad.findings.notices if n.code == "timetable_invalid_time")


def test_same_spreadsheet_same_hash_changed_cell_new_hash(tmp_path):
    a = read(write_input(tmp_path / "a", {"平日.csv": WEEKDAY_CSV, "stops.csv": STOPS_CSV}))
    b = read(write_input(tmp_path / "b", {"平日.csv": WEEKDAY_CSV, "stops.csv": STOPS_CSV}))
    c = read(write_input(tmp_path / "c", {"平日.csv": WEEKDAY_CSV.replace("6:55", "6:56"), "stops.csv": STOPS_CSV}))
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_input_without_settings_is_refused(tmp_path):
    (tmp_path / "平日.csv").write_text(WEEKDAY_CSV, encoding="utf-8")
    with pytest.raises(InputError, match="noriba-timetable.json"):
        read(tmp_path)


def test_alignment_to_a_pattern_tolerates_pole_numbers_and_extra_rows():
    names = ["工大", "東通", "中央町", "中央町", "室蘭港"]
    pattern = ["工大", "東通2", "中央町3", "室蘭港"]
    assert align(names, pattern) == [0, 1, 2, None, 3]


def test_the_demo_timetable_with_its_holiday_sheet_saved_as_ods_gives_the_same_feed(tmp_path):
    """A town that keeps its timetable in LibreOffice: the demo's holiday workbook as the .ods LibreOffice wrote from it
    (tests/transforms/data) gives the same GTFS-JP tables as the .xlsx."""
    import shutil
    from pathlib import Path

    import yaml

    from transforms.timetable.config import with_defaults

    root = Path(__file__).resolve().parents[3]
    spec = yaml.safe_load((root / "specs/feeds/minato-community-timetable.yml").read_text(encoding="utf-8"))
    feeds = {}
    for kind in ("xlsx", "ods"):
        cfg = dict(spec["timetable"])
        cfg["workbooks"] = [{**w, "file": w["file"].replace(".xlsx", f".{kind}")} for w in cfg["workbooks"]]
        folder = tmp_path / kind
        shutil.copytree(root / "demo/inputs/minato-community-timetable", folder)
        if kind == "ods":
            (folder / "timetable_holiday.xlsx").unlink()
            shutil.copy(root / "tests/transforms/data/timetable_holiday.ods", folder / "timetable_holiday.ods")
        feeds[kind] = write_input(folder, {}, with_defaults(cfg))
        feeds[kind] = read(folder)
    for name in ("trips.txt", "stop_times.txt", "calendar.txt", "stops.txt"):
        assert table(feeds["ods"], name) == table(feeds["xlsx"], name), name
    assert any(t["service_id"] != "weekday" for t in table(feeds["ods"], "trips.txt"))  # the holiday sheet's trips are there
