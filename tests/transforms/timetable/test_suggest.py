"""`noriba spec suggest` on authored workbooks: the blocks it finds make a layout that reads the whole timetable."""

from __future__ import annotations

import openpyxl

from tests.transforms.timetable.test_layouts import MORNING, SIDE, STACKED, block, notices, run, xlsx
from tests.transforms.timetable.helpers import table
from transforms.specfile import load_yaml_text
from transforms.timetable.suggest import looks_like_timetable, suggest


def suggested(tmp_path, sheets, name="平日.xlsx") -> tuple[str, dict]:
    path = tmp_path / name
    path.write_bytes(xlsx(sheets))
    text = suggest(path)
    return text, load_yaml_text(text, where=name)["timetable"]


def test_two_stacked_blocks_are_found_and_their_layout_reads_both(tmp_path):
    text, tt = suggested(tmp_path, STACKED)
    assert "block 1: stops A3:A6, times C3:D6 (2 trips" in text and "block 2: stops A11:A14, times C11:D14 (2 trips" in text
    assert tt["layout"]["blocks"] == [{"first_stop_row": 3, "last_stop_row": 6, "number_row": 1, "notes_row": 2},
                                      {"first_stop_row": 11, "last_stop_row": 14, "number_row": 9, "notes_row": 10}]
    feed = run(tmp_path / "run", {"平日.xlsx": xlsx(STACKED)}, layout=tt["layout"])
    assert len(table(feed, "trips.txt")) == 4 and not notices(feed, "timetable_cells_outside_layout")


def test_side_by_side_blocks_are_found_and_their_layout_reads_both(tmp_path):
    text, tt = suggested(tmp_path, SIDE)
    assert "block 2: stops F3:F6, times H3:I6" in text
    feed = run(tmp_path / "run", {"平日.xlsx": xlsx(SIDE)}, layout=tt["layout"])
    assert len(table(feed, "trips.txt")) == 4 and not notices(feed, "timetable_cells_outside_layout")


def test_sheets_laid_out_differently_get_a_layout_each(tmp_path):
    shifted = [block(MORNING)[0], block(MORNING)[1], ["行先", None, "北浜海岸", "北浜海岸"], *block(MORNING)[2:]]
    text, tt = suggested(tmp_path, {"平日": [(0, 0, block(MORNING))], "休日": [(0, 0, shifted)], "平日2": [(0, 0, block(MORNING))]})
    assert tt["layout"]["first_stop_row"] == 3
    assert tt["layouts"] == [{"sheet": "休日", "layout": {"trips": "columns", "stop_column": "A", "first_stop_row": 4,
                                                          "first_trip_column": "C", "arrival_departure_column": "B",
                                                          "number_row": 1, "notes_row": 2, "destination_row": 3}}]


def test_time_cells_outside_every_block_are_listed(tmp_path):
    stray = [["6:00", "7:00"], ["8:00", "9:00"]]  # times without stop names: no block
    text, _ = suggested(tmp_path, {"平日": [(0, 0, block(MORNING)), (10, 6, stray)]})
    assert "OUTSIDE every block: 平日!G11:H12 (4 time-like cells)" in text


def test_workbook_of_trip_records_is_not_a_timetable(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["booking", "base", "pickup", "dropoff", "status"])
    for i in range(6):
        ws.append([f"B{i}", "東営業所", f"{8 + i}:05", f"{8 + i}:35", "done"])
    path = tmp_path / "trips.xlsx"
    wb.save(path)
    assert not looks_like_timetable(path)
    (tmp_path / "tt.xlsx").write_bytes(xlsx(STACKED))
    assert looks_like_timetable(tmp_path / "tt.xlsx")


def test_muroran_workbook_gets_the_layout_its_committed_spec_gives():
    from tests.conftest import ROOT, shared

    path = shared("jp-sources", "muroran-donan-timetables-2017", "timetable_weekday_20170401.xls")
    tt = load_yaml_text(suggest(path), where="suggestion")["timetable"]
    spec = load_yaml_text((ROOT / "specs" / "feeds" / "muroran-donan-timetable.yml").read_text(encoding="utf-8"), where="spec")
    committed = {k: v for k, v in spec["timetable"]["layout"].items() if k != "pole_column"}  # のりば numbers are not looked for
    assert tt["layout"] == committed
    assert "OUTSIDE" not in suggest(path)



def test_route_header_row_is_suggested_as_route_row(tmp_path):
    rows = [["便", None, "1", "2"], ["系統", None, "港線", "山手線"], *block(MORNING)[2:]]
    text, tt = suggested(tmp_path, {"平日": [(0, 0, rows)]})
    assert "route row 2 (系統)" in text and tt["layout"]["route_row"] == 2
