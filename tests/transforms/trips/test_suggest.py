"""transforms.trips.suggest: a starting trips spec for an authored file, that loads and reads the file as suggested."""

from __future__ import annotations

import pytest
import yaml

from tests.transforms.timetable import bombs
from transforms.adapters import InputError
from transforms.trips.spec import check_trips
from transforms.trips.suggest import suggest

DAILY = ("配車実績 日報 2026年4月,,,\n"
         "営業所,運行日,配車件数,状態\n"
         "B01,2026-04-01,\" 1,234 \",完了\n"
         "B01,2026-04-02,16,完了\n"
         "B02,2026-04-01,3,完了\n"
         "B02,2026-04-02,2,キャンセル\n"
         "合計,,\"1,255\",\n")


def _section(text: str) -> dict:
    doc = yaml.safe_load(text)
    assert doc["kind"] == "trips"
    opts, problems = check_trips(doc["trips"], where="suggested.yml")
    assert problems == [], problems
    return doc["trips"]


def test_an_aggregate_file_gets_its_header_footer_count_and_status_and_reads_as_suggested(tmp_path, stage):
    path = tmp_path / "daily.csv"
    path.write_text(DAILY, encoding="utf-8")
    text = suggest(path)
    section = _section(text)
    assert (section["header_row"], section["footer_rows"]) == (2, 1)
    assert section["columns"] == {"pickup_zone": "営業所", "pickup_date": "運行日", "trip_count": "配車件数", "status": "状態"}
    assert section["exclude"] == {"status": ["キャンセル"]}
    assert section["currency"] == "JPY" and yaml.safe_load(text)["timezone"] == "Asia/Tokyo"
    assert "'状態' values in the sample: 完了 (3), キャンセル (1)" in text
    assert "aggregate file: '配車件数' looks like a trip count" in text
    section.pop("files")
    staged, con = stage({"daily.csv": DAILY.encode()}, section)
    assert (staged.rows_in, staged.accepted, staged.quarantined, staged.excluded) == (4, 3, 0, 1)
    assert con.sql("SELECT sum(trip_count) FROM fct").fetchall() == [(1253,)]


def test_date_and_12h_time_columns_are_paired(tmp_path):
    path = tmp_path / "rides.csv"
    path.write_text("ride_id,date,start,end,pickup address,dropoff address,fare\n"
                    "r1,04/01/2026,9:05 AM,9:25 AM,1 Main St,2 Oak Ave,12.50\n"
                    "r2,04/01/2026,11:50 PM,12:10 AM,3 Elm St,4 Pine Rd,\"1,020.00\"\n", encoding="utf-8")
    text = suggest(path)
    section = _section(text)
    assert section["columns"] == {"trip_ref": "ride_id", "pickup_date": "date", "pickup_time_of_day": "start",
                                  "dropoff_time_of_day": "end", "pickup_address": "pickup address",
                                  "dropoff_address": "dropoff address", "fare_amount": "fare"}
    assert section["time"] == {"date_format": "%m/%d/%Y", "time_of_day_format": ["%I:%M %p"], "zone": "local"}
    assert "no coordinates: addresses are kept as text" in text


def test_repeated_header_names_are_shown_as_they_will_be_read(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("pickup_datetime,address,address,,fare\n2026-04-01 10:00:00,a,b,,900\n", encoding="utf-8")
    text = suggest(path)
    assert "repeats the name 'address'; it is read as 'address_2'" in text
    assert "#   address_2: text" in text and "#   column_4: empty in the sample" in text
    assert _section(text)["columns"]["pickup_time"] == "pickup_datetime"


def test_a_sheet_is_read_below_its_title(tmp_path):
    def cell(ref, text):
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'
    rows = [b'<row r="1">' + cell("A1", "Trips April").encode() + b"</row>",
            b'<row r="3">' + (cell("A3", "pickup_time") + cell("B3", "dropoff_time") + cell("C3", "passengers")).encode() + b"</row>",
            b'<row r="4">' + (cell("A4", "2026-04-01 10:00") + cell("B4", "2026-04-01 10:20")).encode() + b'<c r="C4"><v>2</v></c></row>']
    path = bombs.write_xlsx(tmp_path / "t.xlsx", bombs._sheet(rows), sheet="Data")
    text = suggest(path, sheet="Data")
    section = _section(text)
    assert (section["sheet"], section["header_row"], section["format"]) == ("Data", 3, "xlsx")
    assert section["columns"] == {"pickup_time": "pickup_time", "dropoff_time": "dropoff_time", "passengers": "passengers"}
    assert section["time"]["format"] == "%Y-%m-%d %H:%M"


def test_a_file_without_a_pickup_column_asks_for_it(tmp_path):
    path = tmp_path / "kpi.csv"
    path.write_text("Month,Utilization\nDEC,1.33\nJAN,2\n", encoding="utf-8")
    text = suggest(path)
    assert "pickup_time: CHANGE-ME  # CHECK: no column looks like the pickup time; name it here" in text


def test_an_unknown_extension_or_an_empty_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "a.dat").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"a.dat: cannot tell the format from the extension"):
        suggest(tmp_path / "a.dat")
    (tmp_path / "e.csv").write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"e.csv: the file is empty"):
        suggest(tmp_path / "e.csv")
